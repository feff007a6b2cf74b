"""``facetool reconstruct`` through the CLI with a fake method: one mesh per face, in the photo's frame."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from facetool import hookimpl
from facetool.cli import build_app
from facetool.export.mesh import Mesh
from facetool.imageio import write_image
from facetool.methods import MethodSpec
from facetool.plugins import get_host
from facetool.reconstruct import to_photo_frame

from conftest import FixedDetectorPlugin, two_faces

pv = pytest.importorskip("pyvista")

FACES = two_faces()


def _dome_runner(crops):
    """A square of vertices over the crop centre, the middle one nearest: (mesh in crop pixels, maps)."""
    size = crops.shape[-1]
    results = []
    for _ in range(crops.shape[0]):
        ys, xs = np.mgrid[0:5, 0:5]
        cols, rows = size / 2 + (xs - 2) * 4, size / 2 + (ys - 2) * 4
        z = 10 - ((xs - 2) ** 2 + (ys - 2) ** 2)
        vertices = np.stack([cols.ravel(), -rows.ravel(), z.ravel()], 1)
        faces = [(r * 5 + c, r * 5 + c + 1, (r + 1) * 5 + c + 1) for r in range(4) for c in range(4)]
        results.append((Mesh(vertices, np.array(faces)), {"depth": np.ones((size, size), np.float32)}))
    return results


class FakePlugins:
    @hookimpl
    def register_generators(self, register):
        register(MethodSpec(name="dome", task="reconstruct", load=lambda o, d, w: _dome_runner, description="test",
                            sizes=(64,), input_size=64))  # fmt: skip


@pytest.fixture
def photo(tmp_path, monkeypatch):
    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    get_host().register_object(FakePlugins(), "fake")
    get_host().register_object(FixedDetectorPlugin(), "fixed")
    path = tmp_path / "photo.png"
    write_image(path, np.full((300, 400, 3), 120, np.uint8))
    return path


def test_one_mesh_per_face_in_the_photo_frame_with_maps(photo, tmp_path):
    out = tmp_path / "face.ply"
    result = CliRunner().invoke(build_app(), ["reconstruct", str(photo), "-o", str(out), "--maps-dir",
                                              str(tmp_path / "maps")])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    meshes = [pv.read(tmp_path / f"face.face{i}.ply") for i in range(2)]
    for mesh, face in zip(meshes, FACES, strict=True):
        assert mesh.n_points == 25 and mesh.n_cells == 16
        nearest = np.asarray(mesh.points)[np.argmax(mesh.points[:, 2])]
        eyes = np.asarray(face.points5)[:2].mean(axis=0)
        assert abs(nearest[0] - eyes[0]) < 3  # back over the face, in photo pixels (y up: -row)
    assert (tmp_path / "maps" / "face.face0.depth.npy").is_file()
    assert (tmp_path / "maps" / "face.face1.depth.png").is_file()


def test_usage_errors(photo, tmp_path):
    bad = CliRunner().invoke(build_app(), ["reconstruct", str(photo), "-o", str(tmp_path / "face.fbx")])
    assert bad.exit_code == 2 and ".ply" in bad.stderr and "folder ending in /" in bad.stderr
    bare = CliRunner().invoke(build_app(), ["reconstruct", str(photo), "-o", str(tmp_path / "face")])
    assert bare.exit_code == 2 and "no suffix" in bare.stderr and not (tmp_path / "face").exists()


def test_output_folder_to_be_made_gets_ply_per_face(photo, tmp_path):
    result = CliRunner().invoke(build_app(), ["reconstruct", str(photo), "-o", f"{tmp_path / 'meshes'}/"])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "meshes").iterdir()) == ["photo.face0.ply", "photo.face1.ply"]


def test_json_lists_each_inputs_meshes_and_a_failed_input(photo, tmp_path):
    import json

    result = CliRunner().invoke(build_app(), ["reconstruct", str(photo), "-o", str(tmp_path / "f.ply"), "--json"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)  # one input: one record, nothing else on stdout
    assert record["input"] == str(photo) and record["faces"] == 2 and record["previews"] == []
    assert record["meshes"] == [{"file": str(tmp_path / f"f.face{i}.ply"), "vertices": 25, "triangles": 16}
                                for i in range(2)]  # fmt: skip
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    result = CliRunner().invoke(build_app(), ["reconstruct", str(photo), str(broken), "-o", f"{tmp_path}/m/", "--json"])
    assert result.exit_code == 1 and "1 of 2 images failed" in result.stderr
    records = json.loads(result.stdout)  # several inputs: a list, the failed one as {"input", "error"}
    assert [r["input"] for r in records] == [str(photo), str(broken)] and records[0]["faces"] == 2
    assert set(records[1]) == {"input", "error"}
    result = CliRunner().invoke(build_app(), ["reconstruct", str(broken), "-o", str(tmp_path / "b.ply"), "--json"])
    assert result.exit_code == 1 and set(json.loads(result.stdout)) == {"input", "error"}


def test_json_of_a_failed_preview_keeps_the_meshes_written(photo, tmp_path, monkeypatch):
    import json

    import facetool.export.preview as preview
    from facetool.errors import FacetoolError

    def no_gl(mesh, png):
        raise FacetoolError(f"preview of {mesh}: cannot render offscreen (no GL); the mesh is written")

    monkeypatch.setattr(preview, "render_preview", no_gl)
    args = ["-o", str(tmp_path / "f.ply"), "--preview", str(tmp_path / "p.png"), "--json"]
    result = CliRunner().invoke(build_app(), ["reconstruct", str(photo), "--face", "0", *args])
    record = json.loads(result.stdout)
    assert result.exit_code == 1 and "cannot render offscreen" in record["error"]
    assert [m["file"] for m in record["meshes"]] == [str(tmp_path / "f.ply")] and (tmp_path / "f.ply").is_file()


def test_to_photo_frame_inverts_the_crop_similarity():
    matrix = np.array([[0.5, 0.0, -10.0], [0.0, 0.5, -20.0]])  # photo -> crop: half size, shifted
    mesh = Mesh(np.array([[0.0, 0.0, 4.0], [10.0, -10.0, 2.0], [10.0, 0.0, 0.0]]), np.array([[0, 1, 2]]))
    back = to_photo_frame(mesh, matrix)
    np.testing.assert_allclose(back.vertices, [[20.0, -40.0, 8.0], [40.0, -60.0, 4.0], [40.0, -40.0, 0.0]])


def test_bake_texture_paints_each_texel_from_where_its_uv_lies_in_the_photo():
    from facetool.reconstruct import bake_texture, texture_size

    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 100:] = 255  # right half white
    # a quad over the photo's x 50..150, y 20..80, its UVs the unit square (v up: photo row 20 is v = 1)
    vertices = np.array([[50.0, -80.0, 0.0], [150.0, -80.0, 0.0], [150.0, -20.0, 0.0], [50.0, -20.0, 0.0]])
    mesh = Mesh(vertices, np.array([[0, 1, 2], [0, 2, 3]]), uvs=np.array([[0, 0], [1, 0], [1, 1], [0, 1]]))
    texture = bake_texture(mesh, image, 16)
    assert texture.shape == (16, 16, 3)
    assert (texture[:, :7] == 0).all() and (texture[:, 9:] == 255).all()  # photo x 100 is the atlas' middle
    assert texture_size(mesh) == 256 and texture_size(Mesh(vertices * 10, mesh.faces)) == 2048


def test_preview_renders_each_mesh_or_fails_in_one_line(photo, tmp_path):
    from facetool.errors import FacetoolError
    from facetool.export.preview import render_preview
    from facetool.imageio import read_image

    broken = tmp_path / "broken.ply"
    broken.write_bytes(b"ply\nnot a mesh")
    with pytest.raises(FacetoolError, match="cannot render offscreen") as info:
        render_preview(broken, tmp_path / "broken.png")
    assert "\n" not in str(info.value) and not (tmp_path / "broken.png").exists()

    result = CliRunner().invoke(build_app(), ["reconstruct", str(photo), "-m", "dome", "-o", str(tmp_path / "f.ply"),
                                              "--preview", str(tmp_path / "f.png")])  # fmt: skip
    if result.exit_code == 1 and "cannot render offscreen" in result.stderr:
        pytest.skip(f"no offscreen OpenGL here: {result.stderr.strip()}")
    assert result.exit_code == 0, result.output
    for i in range(2):  # two faces: one mesh and one preview each
        image = read_image(tmp_path / f"f.face{i}.png")
        assert image.shape[1] == 2 * image.shape[0] and (image < 200).any()  # something drawn on white
    for suffix in (".glb", ".gltf"):  # a scene of blocks when read back: drawn as one surface
        args = ["-o", str(tmp_path / f"s{suffix}"), "--preview", str(tmp_path / f"s{suffix}.png"), "--face", "0"]
        result = CliRunner().invoke(build_app(), ["reconstruct", str(photo), "-m", "dome", *args])
        assert result.exit_code == 0 and (read_image(tmp_path / f"s{suffix}.png") < 200).any(), result.output
    bad = CliRunner().invoke(build_app(), ["reconstruct", str(photo), "-m", "dome", "--preview", "p.jpg"])
    assert bad.exit_code == 2 and "--preview" in bad.stderr
    args = ["-o", str(tmp_path / "g.obj"), "--preview", str(tmp_path / "g.texture.png")]
    clash = CliRunner().invoke(build_app(), ["reconstruct", str(photo), "-m", "dome", "--face", "largest", *args])
    assert clash.exit_code == 2 and "would overwrite" in clash.stderr
    before = photo.read_bytes()
    over_input = CliRunner().invoke(build_app(), ["reconstruct", str(photo), "-m", "dome", "--face", "largest",
                                                  "-o", str(tmp_path / "h.ply"), "--preview", str(photo)])  # fmt: skip
    assert over_input.exit_code == 2 and "is an input" in over_input.stderr and photo.read_bytes() == before
