"""The shipped FaceVision weights on a real photo: a face-shaped mesh in every format, loading back as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from typer.testing import CliRunner

from facetool.cli import build_app
from facetool.methods import resolve_weights
from facetool.plugins import get_host

from conftest import require_assets

pv = pytest.importorskip("pyvista")
trimesh = pytest.importorskip("trimesh")
DETECTOR_ASSETS = ("dlib-shape-predictor-68", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")
ASTRONAUT = Path(__file__).resolve().parent.parent / "samples" / "astronaut.png"


def test_weights_are_small_fp16_safetensors_with_a_model_card_and_mean_face():
    spec = get_host().generators.get("facevision")
    path = Path(resolve_weights(spec))
    assert path.suffix == ".safetensors" and path.stat().st_size <= 20 * 2**20
    assert (path.parent / "MODEL_CARD.md").is_file() and (path.parent / "mean_face.npz").is_file()
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata()["method"] == "facevision"
        names = handle.keys()
        assert all(handle.get_slice(k).get_dtype() == "F16" for k in names)


@pytest.fixture(scope="module")
def meshes(tmp_path_factory):
    require_assets(*DETECTOR_ASSETS)
    folder = tmp_path_factory.mktemp("fv")
    stated = {}
    for suffix in (".ply", ".obj", ".glb"):
        result = CliRunner().invoke(build_app(), ["reconstruct", str(ASTRONAUT), "-o", str(folder / f"face{suffix}")])
        assert result.exit_code == 0, result.stderr
        vertices, faces = map(int, re.search(r"\((\d+) vertices, (\d+) faces\)", result.stdout).groups())
        stated[suffix] = (folder / f"face{suffix}", vertices, faces)
    return stated


def test_every_file_loads_back_with_the_stated_counts(meshes):
    counts = {(v, f) for _, v, f in meshes.values()}
    assert len(counts) == 1  # the same face whatever the format
    ((vertices, faces),) = counts
    assert 2000 < vertices < 20000 and 4000 < faces < 40000  # the paper: 5-8k / 10-15k at 128²
    for suffix, (path, _, _) in meshes.items():
        loaded = pv.read(path) if suffix != ".glb" else None
        if loaded is not None:
            assert loaded.n_cells == faces and np.isfinite(loaded.points).all()
            if suffix == ".ply":
                assert loaded.n_points == vertices
        mesh = trimesh.load(path, force="mesh", process=False)
        assert len(mesh.faces) == faces and np.isfinite(mesh.vertices).all()


def test_the_mesh_is_a_face_seen_from_the_camera(meshes):
    from facetool.imageio import read_image
    from facetool.pipeline import detect_faces, load_detector

    mesh = pv.read(meshes[".ply"][0])
    normals = mesh.compute_normals(cell_normals=True, point_normals=False).cell_data["Normals"]
    areas = mesh.compute_cell_sizes(length=False, volume=False).cell_data["Area"]
    assert areas[normals[:, 2] > 0].sum() / areas.sum() > 0.95  # normals face the camera (+z)
    tip = mesh.points[np.argmax(mesh.points[:, 2])]  # the nearest point ...
    det_spec, detector = load_detector(None)
    (face,) = detect_faces(detector, read_image(ASTRONAUT), det_spec.name)[:1]
    nose = np.asarray(face.points5)[2]
    eyes = np.linalg.norm(np.subtract(face.points5[0], face.points5[1]))
    assert np.hypot(tip[0] - nose[0], -tip[1] - nose[1]) < 0.5 * eyes  # ... is the nose
    width = np.ptp(mesh.points[:, 0])
    assert 1.5 * eyes < width < 4 * eyes  # the face, not the whole photo


def test_the_textured_obj_opens_with_its_texture(meshes):
    path = meshes[".obj"][0]
    loaded = trimesh.load(path, process=False)
    assert loaded.visual.kind == "texture"
    texture = np.asarray(loaded.visual.material.image.convert("RGB"))
    assert texture.shape[0] >= 256 and texture.std() > 10  # painted from the photo, not blank
    uv = loaded.visual.uv
    assert ((uv >= 0) & (uv <= 1)).all()
