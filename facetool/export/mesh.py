"""Mesh files: ``.ply`` (binary, vertex colours), ``.obj`` (+ ``.mtl`` + texture PNG), ``.stl``, ``.vtp``, ``.gltf``
and ``.glb`` (real binary glTF: pyvista's ``export_gltf`` writes JSON text even for ``.glb``, so glTF goes
through trimesh).

Every file is written to a temporary name beside the target and renamed, so a crash never leaves half a mesh; an
OBJ's ``.mtl`` and texture are renamed into place before the ``.obj`` that names them. pyvista / trimesh are
imported only here (``pip install facetool[mesh]``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..imageio import atomic_output, write_image
from .mesh_formats import MESH_SUFFIXES, companion_files

__all__ = ["MESH_SUFFIXES", "Mesh", "write_mesh"]


@dataclass
class Mesh:
    """A triangle mesh: vertices (N, 3) float32, faces (M, 3) int, optional colors (N, 3) uint8, uvs (N, 2) in
    [0, 1] (v up, as OBJ and glTF's loaders expect after their own flips) and a texture image (H, W, 3) uint8."""

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray | None = None
    uvs: np.ndarray | None = None
    texture: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3 or self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"need vertices (N, 3) and faces (M, 3), got {self.vertices.shape}, {self.faces.shape}")
        if len(self.faces) and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise ValueError("faces index vertices that do not exist")
        if not np.isfinite(self.vertices).all():
            raise ValueError("vertices hold NaN or inf")


@contextmanager
def _atomic(path: Path):
    """Yield a temporary path beside ``path`` (same suffix, for writers that take a file name and pick the format
    from it); rename it onto ``path`` when the block succeeds. Byte and text output goes through
    :func:`facetool.imageio.atomic_output` instead."""
    from ..imageio import _file_mode_for

    # The temp name is capped: a target name near the folder's limit must not fail for its temp file.
    handle, temp = tempfile.mkstemp(prefix=f".{path.stem[:100]}.", suffix=path.suffix, dir=path.parent)
    os.fchmod(handle, _file_mode_for(path))  # mkstemp's 0600 would hide the mesh from other users
    os.close(handle)
    try:
        yield Path(temp)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _polydata(mesh: Mesh):
    import pyvista as pv

    cells = np.hstack([np.full((len(mesh.faces), 1), 3), mesh.faces]).ravel()
    poly = pv.PolyData(mesh.vertices, cells)
    if mesh.colors is not None:
        poly.point_data["RGB"] = np.asarray(mesh.colors, dtype=np.uint8)
    return poly


def _write_pyvista(mesh: Mesh, path: Path) -> None:
    poly = _polydata(mesh)
    with _atomic(path) as temp:
        if path.suffix == ".ply" and mesh.colors is not None:
            poly.save(temp, binary=True, texture="RGB")
        else:
            poly.save(temp, binary=True)


def _write_gltf(mesh: Mesh, path: Path) -> None:
    import trimesh

    visual = None
    if mesh.uvs is not None and mesh.texture is not None:
        from PIL import Image

        visual = trimesh.visual.TextureVisuals(uv=mesh.uvs, image=Image.fromarray(mesh.texture))
    elif mesh.colors is not None:
        visual = trimesh.visual.ColorVisuals(vertex_colors=mesh.colors)
    tri = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, visual=visual, process=False)
    data = tri.export(file_type=path.suffix[1:])
    if isinstance(data, dict):  # .gltf: JSON plus buffers; embed them so one file is the whole model
        data = trimesh.exchange.gltf.export_gltf(tri, embed_buffers=True)["model.gltf"]
    with atomic_output(path, "wb") as handle:
        handle.write(data if isinstance(data, bytes) else data.encode())


def _rows(row: str, values: np.ndarray) -> str:
    """Format every row of ``values`` (N, k) with ``row`` in one call (a Python loop costs ~10× more)."""
    return ((row + "\n") * len(values)) % tuple(values.ravel().tolist()) if len(values) else ""


def _write_obj(mesh: Mesh, path: Path) -> None:
    """OBJ with vertex colours as the common ``v x y z r g b`` extension; with uvs + texture an MTL and PNG."""
    textured = mesh.uvs is not None and mesh.texture is not None
    parts = [f"mtllib {path.stem}.mtl\n"] if textured else []
    columns, row = [mesh.vertices.astype(np.float64)], "v %.6f %.6f %.6f"
    if mesh.colors is not None:
        columns.append(np.asarray(mesh.colors, dtype=np.float64) / 255.0)
        row += " %.4f %.4f %.4f"
    parts.append(_rows(row, np.hstack(columns)))
    index = mesh.faces.astype(np.int64) + 1
    if textured:
        parts += [_rows("vt %.6f %.6f", mesh.uvs.astype(np.float64)), "usemtl face\n"]
        parts.append(_rows("f %d/%d %d/%d %d/%d", np.repeat(index, 2, axis=1)))
    else:
        parts.append(_rows("f %d %d %d", index))
    if textured:  # the files the OBJ names go into place first
        material, texture = companion_files(path)
        write_image(texture, mesh.texture)
        with atomic_output(material, "w") as handle:
            handle.write(f"newmtl face\nKa 1 1 1\nKd 1 1 1\nmap_Kd {texture.name}\n")
    with atomic_output(path, "w") as handle:
        handle.write("".join(parts))


WRITERS: dict[str, Callable[[Mesh, Path], None]] = {
    ".ply": _write_pyvista,
    ".stl": _write_pyvista,
    ".vtp": _write_pyvista,
    ".obj": _write_obj,
    ".gltf": _write_gltf,
    ".glb": _write_gltf,
}


def write_mesh(mesh: Mesh, path: str | os.PathLike) -> Path:
    """Write ``mesh`` in the format its suffix names (:data:`MESH_SUFFIXES`); returns the path."""
    path = Path(path)
    writer = WRITERS.get(path.suffix.lower())
    if writer is None:
        raise UsageError(f"{path}: mesh formats are {', '.join(MESH_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer(mesh, path)
    return path
