"""``facetool evaluate`` on a tiny generated paired folder with a known (identity) network."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facetool import hookimpl
from facetool.errors import FacetoolError, UsageError
from facetool.methods import MethodSpec
from facetool.train.spec import TrainSpec


def _identity_spec(name="fake-identity"):
    def evaluate(outputs, batch, options):
        return {"brightness": outputs.mean(dim=(1, 2, 3)).tolist()}

    return MethodSpec(
        name=name, task="stylize", load=lambda o, d, w: None, description="identity", input_size=16, sizes=(16,),
        train=TrainSpec(build=lambda setup: None, streams=lambda o: {"pair": ("photo", "copy")}),
        network=lambda options, weights: torch.nn.Identity(), evaluate=evaluate,
    )  # fmt: skip


class _Backbone:  # mean colour + spread: cheap, deterministic features for tests that do not need the asset
    name = "test-backbone"
    dim = 4

    def __call__(self, images):
        x = images.expand(-1, 3, -1, -1)
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(1, 2, 3))[:, None]], dim=1).double().numpy()


def _png(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def pairs(tmp_path):
    """6 items with identical photo / copy PNGs (16²): 3 train, 3 test."""
    root = tmp_path / "pairs"
    rng = np.random.default_rng(0)
    lines = []
    for i in range(6):
        item_id = f"{i:06d}"
        image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        photo = _png(root / "photo" / f"{item_id}.png", image)
        copy = _png(root / "copy" / f"{item_id}.png", image)
        record = {"id": item_id, "file": f"photo/{item_id}.png", "sha256": photo,
                  "files": {"copy": {"path": f"copy/{item_id}.png", "sha256": copy}}, "labels": {}}  # fmt: skip
        lines.append(json.dumps(record))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    ids = [f"{i:06d}" for i in range(6)]
    (root / "splits.json").write_text(json.dumps({"train": ids[:3], "test": ids[3:]}))
    return root


def test_identity_on_identical_pairs_is_perfect_and_reproducible(pairs, tmp_path):
    from facetool.evaluate import evaluate_method

    spec = _identity_spec()
    first = evaluate_method(spec, pairs, None, None, out_dir=tmp_path / "a", backbone=_Backbone(), batch_size=2)
    metrics = first["metrics"]
    assert first["count"] == 3 and first["split"] == "test" and metrics["paired"] == 3
    assert metrics["l1"] == 0.0 and metrics["ssim"] == pytest.approx(1.0, abs=1e-6) and metrics["psnr"] == 100.0
    assert abs(metrics["fid"]) < 1e-6  # outputs and targets are the same images
    assert first["roles"] == {"input": "photo", "target": "copy"}
    assert 0.3 < metrics["brightness"] < 0.7  # the method's own metric, averaged
    evaluate_method(spec, pairs, None, None, out_dir=tmp_path / "b", backbone=_Backbone(), batch_size=3)
    assert (tmp_path / "a" / "metrics.json").read_bytes() == (tmp_path / "b" / "metrics.json").read_bytes()
    from facetool.imageio import read_image

    grid = read_image(tmp_path / "a" / "grid.png")
    assert grid.shape == (3 * 16 + 2 * 2, 3 * 16 + 2 * 2, 3)
    assert evaluate_method(spec, pairs, None, None, split="all", limit=4, backbone=_Backbone())["count"] == 4


def test_a_changed_output_is_measured(pairs):
    from facetool.evaluate import evaluate_method

    darker = _identity_spec()
    darker = MethodSpec(**{**darker.__dict__, "network": lambda o, w: _Scale(0.5)})
    metrics = evaluate_method(darker, pairs, None, None, backbone=_Backbone())["metrics"]
    assert 0.1 < metrics["l1"] < 0.4 and metrics["ssim"] < 0.99 and metrics["psnr"] < 20 and metrics["fid"] > 0.01


class _Scale(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def test_clear_errors(pairs, tmp_path):
    from safetensors.torch import save_file

    from facetool.evaluate import evaluate_method

    spec = _identity_spec()
    with pytest.raises(UsageError, match="manifest.jsonl"):
        evaluate_method(spec, tmp_path, None, None, backbone=_Backbone())
    (pairs / "splits.json").rename(tmp_path / "splits.json")
    with pytest.raises(FacetoolError, match="no split"):
        evaluate_method(spec, pairs, None, None, backbone=_Backbone())
    assert evaluate_method(spec, pairs, None, None, split="all", backbone=_Backbone())["count"] == 6
    other = MethodSpec(
        **{**spec.__dict__, "train": TrainSpec(build=None, streams=lambda o: {"p": ("photo", "drawing")})}
    )
    with pytest.raises(FacetoolError, match="roles photo, drawing|roles drawing"):
        evaluate_method(other, pairs, None, None, split="all", backbone=_Backbone())
    weights = tmp_path / "w.safetensors"
    save_file({"G.x": torch.zeros(1)}, str(weights), metadata={"method": "pix2pix"})
    with pytest.raises(FacetoolError, match="of method pix2pix, not fake-identity"):
        evaluate_method(spec, pairs, weights, None, split="all", backbone=_Backbone())
    with pytest.raises(UsageError, match="--split"):
        evaluate_method(spec, pairs, None, None, split="val", backbone=_Backbone())


class _Plugin:
    @hookimpl
    def register_generators(self, register):
        register(_identity_spec())


def test_cli_evaluate_json_and_errors(pairs, tmp_path, monkeypatch):
    from facetool.cli import build_app
    from facetool.plugins import get_host

    from conftest import require_assets

    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    require_assets("age-net-v1-onnx")
    get_host().register_object(_Plugin(), "fake")
    args = ["evaluate", "fake-identity", "--data", str(pairs), "--json", "--out", str(tmp_path / "e")]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["backbone"].startswith("age-net-v1") and document["metrics"]["l1"] == 0.0
    assert abs(document["metrics"]["fid"]) < 1e-3 and (tmp_path / "e" / "grid.png").is_file()
    assert "Examples" in CliRunner().invoke(build_app(), ["evaluate", "--help"]).stdout
    bad = CliRunner().invoke(build_app(), ["evaluate", "fake-identity", "--data", str(tmp_path / "none")])
    assert bad.exit_code == 2 and "Traceback" not in bad.stderr and "manifest.jsonl" in bad.stderr
