"""Mesh files: every format loads back in pyvista and trimesh with the vertices and faces written."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from facetool import hookimpl
from facetool.errors import UsageError
from facetool.export.mesh import MESH_SUFFIXES, Mesh, write_mesh

pv = pytest.importorskip("pyvista")
trimesh = pytest.importorskip("trimesh")


def _grid_mesh(n: int = 6) -> Mesh:
    ys, xs = np.mgrid[0:n, 0:n]
    vertices = np.stack([xs.ravel(), ys.ravel(), np.sin(xs.ravel() / 2.0)], 1).astype(np.float32)
    faces = []
    for r in range(n - 1):
        for c in range(n - 1):
            a, b, d, e = r * n + c, r * n + c + 1, (r + 1) * n + c, (r + 1) * n + c + 1
            faces += [(a, b, e), (a, e, d)]
    colors = (np.arange(n * n * 3).reshape(-1, 3) * 7 % 256).astype(np.uint8)
    uvs = np.stack([xs.ravel() / (n - 1), ys.ravel() / (n - 1)], 1)
    texture = np.zeros((8, 8, 3), np.uint8)
    texture[:, :4] = 255
    return Mesh(vertices, np.array(faces), colors=colors, uvs=uvs, texture=texture)


@pytest.mark.parametrize("suffix", MESH_SUFFIXES)
def test_every_format_loads_back_with_its_counts(tmp_path, suffix):
    mesh = _grid_mesh()
    path = write_mesh(mesh, tmp_path / f"face{suffix}")
    assert path.is_file() and path.stat().st_size > 0
    if suffix in (".ply", ".obj", ".stl", ".vtp"):
        loaded = pv.read(path)
        assert loaded.n_cells == len(mesh.faces)
        if suffix != ".stl":  # STL stores each triangle's corners: no shared vertices
            assert loaded.n_points == len(mesh.vertices)
    loaded = trimesh.load(path, force="mesh", process=False) if suffix != ".vtp" else None
    if loaded is not None:
        assert len(loaded.faces) == len(mesh.faces)
        if suffix not in (".stl", ".obj"):  # trimesh splits OBJ vertices per uv seam; STL has none shared
            assert len(loaded.vertices) == len(mesh.vertices)
        assert np.isfinite(loaded.vertices).all()
    umask = os.umask(0o022)
    os.umask(umask)
    for written in tmp_path.iterdir():  # not mkstemp's private 0600
        assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~umask, written.name
    if suffix == ".glb":
        assert path.read_bytes()[:4] == b"glTF"  # binary glTF, not JSON
    if suffix == ".ply":
        assert b"binary" in path.read_bytes()[:200]
        np.testing.assert_array_equal(pv.read(path).point_data["RGB"], mesh.colors)


def test_textured_obj_names_its_material_and_texture(tmp_path):
    path = write_mesh(_grid_mesh(), tmp_path / "face.obj")
    assert (tmp_path / "face.mtl").read_text().strip().endswith("map_Kd face.texture.png")
    assert (tmp_path / "face.texture.png").is_file()
    loaded = trimesh.load(path, process=False)
    assert loaded.visual.kind == "texture" and loaded.visual.material.image.size == (8, 8)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_bad_meshes_and_formats():
    with pytest.raises(UsageError, match="mesh formats"):
        write_mesh(_grid_mesh(), "face.fbx")
    with pytest.raises(ValueError, match="NaN"):
        Mesh(np.full((3, 3), np.nan), np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="do not exist"):
        Mesh(np.zeros((3, 3)), np.array([[0, 1, 3]]))


class _ClaimsPly:
    @hookimpl
    def register_exporters(self, register):
        from facetool.exporters import ExporterSpec

        register(ExporterSpec(name="aply", kind="mesh", suffixes=(".ply", ".aply"), export=print, description="test"))


def test_a_plugin_mesh_exporter_cannot_take_a_core_suffix(monkeypatch, capsys):
    from facetool.export.mesh_formats import mesh_exporters
    from facetool.plugins import get_host

    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    get_host().register_object(_ClaimsPly(), "aaa")  # sorts before the core's "ply" by name
    chosen = mesh_exporters()
    assert chosen[".ply"].name == "ply" and chosen[".aply"].name == "aply"
    assert "mesh exporter 'aply' left out for .ply (exporter 'ply' writes it)" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".ply", ".glb"])
def test_a_name_near_the_folders_limit_is_written(tmp_path, suffix):
    path = write_mesh(_grid_mesh(), tmp_path / ("n" * (250 - len(suffix)) + suffix))  # its temp file must fit too
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == [path.name]
