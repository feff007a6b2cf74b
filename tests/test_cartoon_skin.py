"""Skin tone in the cartoon method: the tone classes, the generator's skin modulation (an identity at the start, so
``--init`` can add it to a trained net), training with ``-T skin=true`` / ``-T g-train=skin``, ``--skin`` and the
evaluation's skin scores."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from facetool_cartoon.net import SKIN_TONES, ConditionalResnetConfig, ConditionalResnetGenerator
from facetool_cartoon.skin import (
    GREY_SKIN_BOUNDS,
    crop_skin_class,
    grey_skin_class,
    rgb_skin_class,
    skin_class,
    skin_lab,
    skin_patch,
    typology_angle,
)
from facetool_cartoon.train import skin_indices
from test_cartoon_method import POINTS, SIZE, _folder


def _hex(colour: str) -> list[float]:
    return [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]


def test_the_cartoon_palette_falls_light_to_dark_by_the_typology_angle():
    from facetool.data.avatars import SKIN_TONES as PALETTE

    classes = rgb_skin_class(torch.tensor([_hex(c) for c in PALETTE]))
    assert classes.tolist() == [0, 0, 0, 0, 1, 2, 2, 2]  # ITA 78° … −42°: light > 41° > medium > 10° > dark
    assert typology_angle(torch.tensor([[50.0, 10.0, 20.0]])).item() == pytest.approx(0.0)
    assert typology_angle(torch.tensor([[70.0, 10.0, 20.0]])).item() == pytest.approx(45.0)
    assert skin_class(torch.tensor([[70.0, 10.0, 20.0], [60.0, 10.0, 20.0], [40.0, 10.0, 20.0]])).tolist() == [0, 1, 2]


def test_a_crop_is_classed_by_the_skin_between_its_eyes_and_mouth():
    crops = torch.ones(3, 3, SIZE, SIZE)
    for i, colour in enumerate(("#f9d9c1", "#d39a6e", "#6a3f2a")):
        crops[i, :, 14:26, 10:22] = torch.tensor(_hex(colour))[:, None, None]  # the patch; the rest is white paper
    assert crop_skin_class(crops, torch.tensor([POINTS] * 3)).tolist() == [0, 1, 2]
    # a black-and-white crop has no b*: classed by its skin's lightness against GREY_SKIN_BOUNDS
    grey = crops.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1).clone()
    lightness = skin_lab(grey, skin_patch(torch.tensor([POINTS] * 3), SIZE))[:, 0]
    assert crop_skin_class(grey, torch.tensor([POINTS] * 3)).tolist() == grey_skin_class(lightness).tolist()
    assert grey_skin_class(
        torch.tensor([GREY_SKIN_BOUNDS[0], GREY_SKIN_BOUNDS[1], GREY_SKIN_BOUNDS[1] - 1])
    ).tolist() == [0, 1, 2]
    # a cartoon's skin_rgb label wins over the measurement; an item without one is measured
    labels = [{"skin_rgb": [106, 63, 42]}, {}, None]
    assert skin_indices(crops, torch.tensor([POINTS] * 3), labels).tolist() == [2, 1, 2]


def test_the_skin_modulation_starts_as_the_identity_and_then_tells_the_tones_apart(one_thread):
    torch.manual_seed(0)
    plain = ConditionalResnetGenerator(ConditionalResnetConfig(extra=5, base=4, blocks=1)).eval()
    skinned = ConditionalResnetGenerator(ConditionalResnetConfig(extra=5, base=4, blocks=1, skins=3)).eval()
    missing, unexpected = skinned.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(".skin." in k for k in missing)
    x, labels, heat = torch.rand(2, 3, 16, 16) * 2 - 1, torch.tensor([0, 2]), torch.rand(2, 5, 16, 16)
    with torch.no_grad():
        before = plain(x, labels, heat)
        for tone in range(3):
            assert torch.equal(skinned(x, labels, heat, torch.full((2,), tone)), before)
        for module in skinned.modules():
            if module.__class__.__name__ == "ClassModulation":
                module.table.weight.normal_(0, 0.5)
        dark, light = skinned(x, labels, heat, torch.full((2,), 2)), skinned(x, labels, heat, torch.zeros(2).long())
    assert (dark - light).abs().mean() > 1e-3
    with pytest.raises(ValueError, match="skin-tone"):
        skinned(x, labels, heat)


@pytest.fixture
def domains(tmp_path):
    rng = np.random.default_rng(1)
    photos = _folder(tmp_path / "crops", "photo", ["brown", "black", "blonde", "grey"], rng)
    cartoons = _folder(tmp_path / "cartoons", "cartoon", ["blonde", "grey", "black", "brown"], rng)
    manifest = cartoons / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    for record, rgb in zip(records, ([249, 217, 193], [106, 63, 42], None, [211, 154, 110]), strict=True):
        if rgb:
            record["labels"]["skin_rgb"] = rgb
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    return photos, cartoons


def _spec():
    from facetool.plugins import get_host

    return dataclasses.replace(get_host().generators.get("cartoon"), sizes=(SIZE,), input_size=SIZE)


def test_a_trained_net_gains_skin_tones_through_init_and_only_the_modulation_learns(domains, tmp_path, one_thread):
    from facetool.errors import UsageError
    from facetool.train.checkpoint import load_weights
    from facetool.train.loop import run_training

    spec = _spec()
    small = {"g_base": 4, "g_blocks": 1, "d_base": 4}
    first = run_training(spec, tmp_path / "plain", data=list(domains), steps=1, batch_size=2, size=SIZE,
                         options=spec.train.options(**small))  # fmt: skip
    options = spec.train.options(skin=True, g_train="skin", skin_lr=1e-3, **small)
    logs: list[str] = []
    run = run_training(spec, tmp_path / "skin", data=list(domains), steps=2, batch_size=2, size=SIZE,
                       options=options, init=first.weights, log=logs.append)  # fmt: skip
    assert any("G gained new parameters" in line for line in logs), logs
    nets = {}
    for name, path in (("plain", first.weights), ("skin", run.weights)):
        config = ConditionalResnetConfig(extra=5, base=4, blocks=1, skins=3 if name == "skin" else 0)
        nets[name] = ConditionalResnetGenerator(config)
        load_weights(path, {"G": nets[name]})
    trained, start = nets["skin"].state_dict(), nets["plain"].state_dict()
    assert all(torch.equal(trained[k], start[k]) for k in start)  # the base G is frozen
    assert any(trained[k].abs().sum() > 0 for k in trained if ".skin." in k)  # the modulation learned
    # a change that is not a GROWS field is still refused
    with pytest.raises(UsageError, match="g_base|base"):
        run_training(spec, tmp_path / "wider", data=list(domains), steps=1, batch_size=2, size=SIZE,
                     options=spec.train.options(skin=True, g_base=8, g_blocks=1, d_base=4),
                     init=first.weights)  # fmt: skip
    runner = spec.load(spec.options(skin="dark"), "cpu", run.weights)
    out = runner(torch.rand(2, 3, SIZE, SIZE), torch.tensor([POINTS, POINTS]))
    assert out.shape == (2, 3, SIZE, SIZE) and out.min() >= 0 and out.max() <= 1
    assert spec.load(None, "cpu", run.weights)(torch.rand(1, 3, SIZE, SIZE)).shape == (1, 3, SIZE, SIZE)  # auto
    net = spec.network(spec.options(skin="light"), run.weights)
    assert net(torch.rand(3, 3, SIZE, SIZE)).shape == (3, 3, SIZE, SIZE)


@pytest.mark.parametrize(
    ("key", "value"), [("skin", True), ("g_train", "skin"), ("g_train", "most"), ("skin_lr", 1e-3)]
)
def test_skin_training_options_refuse_what_cannot_work(key, value):
    from facetool_cartoon.train import CartoonTrainOptions

    with pytest.raises(ValueError):
        CartoonTrainOptions(**{key: value}, **({"variant": "baseline"} if key == "skin" else {}))


def test_skin_flag_needs_weights_trained_with_tones(tmp_path):
    from typer.testing import CliRunner

    from facetool.cli import build_app
    from facetool.data.common import save_png
    from facetool.train.checkpoint import TrainState, export_weights

    image = tmp_path / "in.png"
    save_png(image, np.zeros((64, 64, 3), np.uint8))
    before = image.read_bytes()
    config = ConditionalResnetConfig(extra=5, base=4, blocks=1)  # a net trained without tones (the 2026-11 kind)
    plain = export_weights(tmp_path / "plain.safetensors", {"G": ConditionalResnetGenerator(config)}, torch.float32,
                           TrainState(method="cartoon", configs={"G": config}))  # fmt: skip
    app = build_app()
    args = ["stylize", str(image), "--method", "cartoon", "--weights", str(plain)]
    result = CliRunner().invoke(app, [*args, "--skin", "dark"])
    assert result.exit_code == 2 and "trained without skin tones" in result.stderr
    result = CliRunner().invoke(app, ["stylize", str(image), "--method", "cartoon", "--skin", "olive"])
    assert result.exit_code == 2 and "skin must be one of" in result.stderr
    result = CliRunner().invoke(app, ["stylize", str(image), "--method", "apdrawing", "--skin", "dark"])
    assert result.exit_code == 2 and "no skin setting" in result.stderr
    assert image.read_bytes() == before  # untouched input
    assert SKIN_TONES == ("light", "medium", "dark")


@pytest.mark.parametrize("skins", [0, 3])
def test_evaluate_scores_skin_for_every_net_and_each_tone_for_nets_with_tones(domains, tmp_path, skins, one_thread):
    from typer.testing import CliRunner

    from facetool.cli import build_app
    from facetool.train.checkpoint import TrainState, export_weights

    from conftest import require_assets

    require_assets("mtcnn-onet")
    torch.manual_seed(0)
    config = ConditionalResnetConfig(extra=5, base=4, blocks=1, skins=skins)
    weights = export_weights(tmp_path / "c.safetensors", {"G": ConditionalResnetGenerator(config)}, torch.float32,
                             TrainState(method="cartoon", configs={"G": config}))  # fmt: skip
    photos, _ = domains
    args = ["evaluate", "cartoon", "--data", str(photos), "--weights", str(weights), "--split", "all", "--json"]
    done = CliRunner().invoke(build_app(), args)
    assert done.exit_code == 0, done.output
    metrics = json.loads(done.stdout)["metrics"]
    assert 0 <= metrics["skin_agreement"] <= 1 and -1 <= metrics["skin_r"] <= 1
    assert ("skin_accuracy" in metrics) == bool(skins)
    if skins:
        tones = [metrics[f"skin_accuracy_{t}"] for t in SKIN_TONES]
        assert metrics["skin_accuracy"] == pytest.approx(np.mean(tones)) and all(0 <= t <= 1 for t in tones)
