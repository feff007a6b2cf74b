"""What the cartoon plugin ships: its landmark regressors and hair meter (small safetensors with a model card that
records their held-out scores), and a clear line instead of a traceback while no generator weights ship."""

from __future__ import annotations

import json

import numpy as np
from facetool_cartoon import variant_weights
from safetensors import safe_open
from typer.testing import CliRunner

from facetool.cli import build_app

FOLDER = variant_weights("local").parent


def _record(name: str) -> dict:
    with safe_open(str(FOLDER / name), framework="pt") as handle:
        return json.loads(handle.metadata()["facetool"])


def test_helper_nets_ship_small_with_their_held_out_scores_in_the_card():
    card = (FOLDER / "MODEL_CARD.md").read_text()
    for name in ("landmarks.safetensors", "landmarks-eval.safetensors", "hair-meter.safetensors"):
        assert (FOLDER / name).stat().st_size < 2**20 and f"`{name}`" in card
    meter = _record("hair-meter.safetensors")
    assert meter["test_accuracy"] >= 0.95 and meter["test_items"] >= 100
    for name in ("landmarks.safetensors", "landmarks-eval.safetensors"):
        after = _record(name)["nme_after"]
        assert after["cartoon"] < 0.1 and after["photo"] < 0.1  # from ~0.35 for the released O-Net
        assert str(after["cartoon"]) in card and str(after["photo"]) in card


def test_without_shipped_generator_weights_stylize_says_so_in_one_line(tmp_path):
    from facetool.data.common import save_png

    if variant_weights("local").is_file():
        return  # weights ship: the message is not reachable
    image = tmp_path / "in.png"
    save_png(image, np.zeros((64, 64, 3), np.uint8))
    result = CliRunner().invoke(build_app(), ["stylize", str(image), "--method", "cartoon", "--aligned"])
    assert result.exit_code == 1 and "no local weights ship yet" in result.stderr
    assert "Traceback" not in result.output
