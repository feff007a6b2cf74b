"""The shipped Loomis weights: what the package holds, and what they draw on real and generated photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from typer.testing import CliRunner

from facetool.cli import build_app
from facetool.imageio import read_image
from facetool.methods import resolve_weights
from facetool.plugins import get_host

from conftest import require_assets

METHODS = ("loomis-pix2pix", "loomis-cyclegan")


@pytest.mark.parametrize("method", METHODS)
def test_weights_are_small_fp16_safetensors_that_describe_themselves(method):
    path = Path(resolve_weights(get_host().generators.get(method)))
    assert path.suffix == ".safetensors" and path.stat().st_size <= 20 * 2**20
    assert (path.parent / "MODEL_CARD.md").is_file()
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
        dtypes = {str(handle.get_slice(k).get_dtype()) for k in handle.keys()}  # noqa: SIM118 - not iterable
    spec = get_host().generators.get(method)
    assert meta["method"] == method and json.loads(meta["train_settings"])["size"] == spec.input_size
    assert dtypes <= {"F16", "I64"}, dtypes


@pytest.mark.parametrize("method", METHODS)
def test_stylize_draws_lines_on_the_face_and_keeps_the_rest(method, sample_path, tmp_path):
    require_assets("dlib-shape-predictor-68", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")
    out = tmp_path / "out.png"
    result = CliRunner().invoke(build_app(), ["stylize", str(sample_path), "--method", method, "-o", str(out)])
    assert result.exit_code == 0, result.output
    photo, drawn = read_image(sample_path).astype(float), read_image(out).astype(float)
    assert drawn.shape == photo.shape
    darker = (photo - drawn).mean(axis=2) > 40  # construction lines are multiplied over the photo
    face = darker[60:260, 150:330]  # the astronaut's head and its construction ball
    assert face.mean() > 0.01, "no lines over the face"
    assert darker[400:, :].mean() < 0.005 and darker[:, :100].mean() < 0.005  # away from the head: the photo


def test_lines_alone_go_on_a_white_page_unless_asked_otherwise(sample_path, tmp_path):
    require_assets("dlib-shape-predictor-68", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")
    photo = read_image(sample_path).astype(float)
    for extra, page in (([], "white"), (["--background", "photo"], "photo")):
        out = tmp_path / f"{page}.png"
        args = ["stylize", str(sample_path), "-m", "loomis-pix2pix", "-O", "style=lines", *extra, "-o", str(out)]
        result = CliRunner().invoke(build_app(), args)
        assert result.exit_code == 0, result.output
        corner = read_image(out).astype(float)[400:, :100]  # far from the head
        if page == "white":
            assert corner.min() >= 250  # paper, not the photo (and no white square pasted on it)
        else:
            assert np.abs(corner - photo[400:, :100]).max() < 2


@pytest.mark.heavy
@pytest.mark.parametrize("method", ["loomis-pix2pix"])
def test_construction_turns_with_the_head_on_unseen_faces(method, tmp_path):
    """Fresh faces (seed 99: never trained on): the drawn construction's yaw must follow the photo's clearly
    better than a construction that never turns (the training median pose drawn for every face)."""
    require_assets("random-face-mapping-bin", "random-face-synthesis-bin", "dlib-shape-predictor-68")
    app, runner = build_app(), CliRunner()
    photos, pairs = tmp_path / "photos", tmp_path / "loomis"
    for args in (
        ["data", "photos", "--count", "24", "--seed", "99", "--out", str(photos)],
        ["data", "labels", str(photos)],
        ["data", "loomis", str(photos), "--out", str(pairs)],
        ["data", "split", str(pairs), "--test", "0"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", method, "--data", str(pairs), "--split", "all", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)["metrics"]
    poses = [json.loads(line)["labels"]["pose"] for line in (pairs / "manifest.jsonl").read_text().splitlines()]
    yaws = np.array([p["yaw"] for p in poses])
    constant = np.abs(yaws - np.median(yaws)).mean()  # generous: the median of these very faces
    assert metrics["yaw_error_deg"] < 0.6 * constant, (metrics, constant)
