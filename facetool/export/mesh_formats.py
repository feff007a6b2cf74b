"""The core's mesh formats as exporters (registered through ``register_exporters`` like a plugin's) and writing a
mesh through whichever registered exporter owns its suffix. Kept apart from :mod:`facetool.export.mesh` so that
registering them at start-up imports neither numpy nor the mesh libraries."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import UsageError

MESH_SUFFIXES = (".ply", ".obj", ".stl", ".vtp", ".gltf", ".glb")
_DESCRIPTIONS = {".ply": "PLY, binary, vertex colours", ".obj": "Wavefront OBJ + MTL + texture PNG",
                 ".stl": "STL, binary", ".vtp": "VTK PolyData, binary", ".gltf": "glTF 2.0, JSON with embedded buffers",
                 ".glb": "glTF 2.0, binary"}  # fmt: skip


def _write(mesh: Any, path: Path) -> Path:
    from .mesh import write_mesh

    return write_mesh(mesh, path)


def _exporters() -> tuple[Any, ...]:
    from ..exporters import ExporterSpec

    return tuple(ExporterSpec(name=suffix[1:], kind="mesh", suffixes=(suffix,), export=_write,
                              description=f"mesh: {_DESCRIPTIONS[suffix]}") for suffix in MESH_SUFFIXES)  # fmt: skip


#: The core's mesh exporters.
MESH_EXPORTERS = _exporters()


def companion_files(path: Path) -> tuple[Path, ...]:
    """Files a textured mesh at ``path`` writes beside itself: for OBJ its ``.mtl`` and ``.texture.png`` (not
    ``<stem>.png``, which is what a user names a preview or a render of ``<stem>.obj``)."""
    path = Path(path)
    if path.suffix.lower() != ".obj":
        return ()
    return path.with_suffix(".mtl"), path.with_name(f"{path.stem}.texture.png")


def mesh_exporters() -> dict[str, Any]:
    """Suffix -> the registered mesh exporter writing it (the core's and any plugin's). A suffix two exporters claim
    stays with facetool's own, else the first by name; the other is left out for it, with one warning."""
    from ..plugins import get_host, warn

    host = get_host()
    specs = [spec for spec in host.exporters.all().values() if spec.kind == "mesh"]
    specs.sort(key=lambda spec: not host.is_builtin(host.exporters.owner(spec.name)))  # stable: then by name
    chosen: dict[str, Any] = {}
    for spec in specs:
        for suffix in spec.suffixes:
            if suffix not in chosen:
                chosen[suffix] = spec
            elif (spec.name, suffix) not in _WARNED:
                _WARNED.add((spec.name, suffix))
                warn(f"mesh exporter '{spec.name}' left out for {suffix} (exporter '{chosen[suffix].name}' writes it)")
    return chosen


_WARNED: set[tuple[str, str]] = set()


def export_mesh(mesh: Any, path: str | os.PathLike) -> Path:
    """Write ``mesh`` (:class:`facetool.export.mesh.Mesh`) through the registered exporter for its suffix;
    UsageError naming the formats otherwise."""
    path = Path(path)
    exporters = mesh_exporters()
    spec = exporters.get(path.suffix.lower())
    if spec is None:
        raise UsageError(f"{path}: mesh formats are {', '.join(sorted(exporters))}")
    path.parent.mkdir(parents=True, exist_ok=True)
    spec.export(mesh, path)
    return path
