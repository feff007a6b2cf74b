"""The shipped APDrawingGAN weights on a real photo: every face drawn in lines, the rest white paper."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from typer.testing import CliRunner

from facetool.cli import build_app
from facetool.imageio import read_image, write_image
from facetool.methods import resolve_weights
from facetool.plugins import get_host

from conftest import require_assets

DETECTOR_ASSETS = ("dlib-shape-predictor-68", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")


def _stylize(*args: str) -> None:
    result = CliRunner().invoke(build_app(), ["stylize", *args, "--method", "apdrawing"])
    assert result.exit_code == 0, result.stderr


def _detect(path: Path) -> list[dict]:
    result = CliRunner().invoke(build_app(), ["detect", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["faces"]


def test_weights_are_small_fp16_safetensors_with_a_model_card():
    spec = get_host().generators.get("apdrawing")
    path = Path(resolve_weights(spec))
    assert path.suffix == ".safetensors" and path.stat().st_size <= 20 * 2**20
    assert (path.parent / "MODEL_CARD.md").is_file()
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
        dtypes = {str(handle.get_slice(k).get_dtype()) for k in handle.keys()}  # noqa: SIM118 - not iterable
    assert meta["method"] == "apdrawing" and json.loads(meta["train_settings"])["size"] == spec.input_size
    assert dtypes <= {"F16", "I64"}, dtypes
    options = json.loads(meta["train_options"])
    assert options["lambda_dt"] > 0 and options["local"] and options["init"]  # the second stage, from pre-training
    card = (path.parent / "MODEL_CARD.md").read_text().lower()
    assert all(word in card for word in ("fid", "chamfer", "pix2pix", "wall time", "held-out"))


def _ink_near(drawing: np.ndarray, point, radius: int) -> float:
    """Share of ink pixels (< 128) in the square of ``radius`` around ``point`` (x, y)."""
    x, y = (int(round(v)) for v in point)
    window = drawing[max(0, y - radius) : y + radius, max(0, x - radius) : x + radius]
    return float((window < 128).mean())


@pytest.mark.parametrize("gray", [False, True], ids=["colour", "grayscale"])
def test_draws_the_features_in_lines_on_white_paper(sample_path, sample_image, tmp_path, gray, one_thread):
    require_assets(*DETECTOR_ASSETS)
    photo = sample_path
    if gray:
        photo = tmp_path / "gray.png"
        write_image(photo, np.repeat(sample_image.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8))
    out = tmp_path / "out.png"
    _stylize(str(photo), "-o", str(out))
    drawing = read_image(out)[..., 0]
    assert drawing.shape == sample_image.shape[:2]
    faces = _detect(sample_path)
    points = np.asarray(faces[0]["points5"])
    eye_distance = float(np.linalg.norm(points[1] - points[0]))
    # Eyes and mouth are drawn: ink around each landmark.
    for point in (points[0], points[1], (points[3] + points[4]) / 2):
        assert _ink_near(drawing, point, round(0.25 * eye_distance)) > 0.04
    # A line drawing, not a photo: within the head, mostly paper, some ink, few mid-grays (no photo texture).
    centre = points.mean(axis=0)
    r = round(1.6 * eye_distance)
    head = drawing[int(centre[1]) - r : int(centre[1]) + r, int(centre[0]) - r : int(centre[0]) + r]
    ink, paper = (head < 128).mean(), (head > 200).mean()
    assert 0.03 < ink < 0.35 and paper > 0.55, (ink, paper)
    assert ((head >= 64) & (head <= 192)).mean() < 0.15
    # Far from the face, the page is white.
    assert (drawing[-40:, -40:] > 250).all() and (drawing[:20, -40:] > 250).all()


def test_every_face_of_a_two_person_photo_is_drawn(sample_image, tmp_path, one_thread):
    require_assets(*DETECTOR_ASSETS)
    pair = np.concatenate([sample_image, sample_image[:, ::-1]], axis=1)  # two people, side by side
    photo, out = tmp_path / "two.png", tmp_path / "out.png"
    write_image(photo, pair)
    _stylize(str(photo), "-o", str(out))
    drawing = read_image(out)[..., 0]
    faces = _detect(photo)
    assert len(faces) == 2
    for face in faces:
        points = np.asarray(face["points5"])
        eye_distance = float(np.linalg.norm(points[1] - points[0]))
        for point in points[:2]:
            assert _ink_near(drawing, point, round(0.25 * eye_distance)) > 0.04
