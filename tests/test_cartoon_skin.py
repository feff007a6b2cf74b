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


def test_a_tone_between_two_classes_blends_their_modulations_and_a_class_is_its_own_row():
    from facetool_cartoon.net import ClassModulation, interpolate_rows

    table = torch.tensor([[0.0, 10.0], [2.0, 20.0], [4.0, 60.0]])
    assert torch.equal(interpolate_rows(table, torch.tensor([0.0, 1.0, 2.0])), table)
    assert interpolate_rows(table, torch.tensor([0.5, 1.25])).tolist() == [[1.0, 15.0], [2.5, 30.0]]
    assert interpolate_rows(table, torch.tensor([-1.0, 7.0])).tolist() == [[0.0, 10.0], [4.0, 60.0]]  # clamped
    assert interpolate_rows(table[:1], torch.tensor([0.4])).tolist() == [[0.0, 10.0]]  # one class: its row
    assert interpolate_rows(table, torch.tensor([float("nan")])).tolist() == [[0.0, 10.0]]  # no position: the first
    blended = interpolate_rows(table.bfloat16(), torch.tensor([1.5]))  # a bf16 net (--precision bf16): bf16 rows
    assert blended.dtype == torch.bfloat16 and blended.float().tolist() == [[3.0, 40.0]]
    modulation = ClassModulation(3, 4)
    with torch.no_grad():
        modulation.table.weight.normal_(0, 0.5)
    x = torch.randn(3, 4, 5, 5)
    classes = torch.tensor([0, 1, 2])
    assert torch.equal(modulation(x, classes), modulation(x, classes.float()))  # a class drawn as before
    halfway = modulation(x, torch.full((3,), 0.5))
    ends = (modulation(x, torch.zeros(3).long()) + modulation(x, torch.ones(3).long())) / 2
    assert torch.allclose(halfway, ends, atol=1e-6)  # affine in gamma and beta: the blend of the two outputs


def test_auto_finds_the_position_whose_avatar_skin_measures_as_the_photos():
    from facetool_cartoon.skin import matched_positions

    knots = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0])
    drawn = torch.tensor([[70.0, 50.0, 30.0, 10.0, -10.0]] * 4 + [[40.0, 45.0, 20.0, 25.0, 0.0]])
    photo = torch.tensor([60.0, 30.0, 80.0, -30.0, 22.0])
    positions = matched_positions(photo, drawn, knots).tolist()
    # between knots linearly; lighter or darker than anything drawn: the nearest end; a wobbly curve: its first
    # bracket (45 -> 20 holds 22)
    assert positions == pytest.approx([0.25, 1.0, 0.0, 2.0, 0.96])
    nan = float("nan")
    odd = matched_positions(torch.tensor([nan, 80.0]), torch.tensor([[70.0, 50, 30, 10, -10], [nan, 75, 30, 10, -10]]),
                            knots)  # fmt: skip
    assert odd.tolist() == [0.0, 0.5]  # a photo without a reading: the first knot; a NaN drawing is never nearest


def test_the_runner_draws_auto_and_numbered_tones_and_says_which(one_thread):
    from facetool_cartoon.runner import CartoonRunner

    torch.manual_seed(0)
    net = ConditionalResnetGenerator(ConditionalResnetConfig(extra=5, base=4, blocks=1, skins=3)).eval()
    with torch.no_grad():
        for module in net.modules():
            if module.__class__.__name__ == "ClassModulation":
                module.table.weight.normal_(0, 0.5)
    crops, points = torch.rand(2, 3, SIZE, SIZE), torch.tensor([POINTS, POINTS])
    auto = CartoonRunner(net, "cpu", hair="brown", isolate="none")  # two faces: not isolated, as the one below
    drawn = auto(crops, points)
    assert len(auto.chosen_skin) == 2 and all(0 <= t <= 2 for t in auto.chosen_skin)
    assert all(note.startswith("skin ") and note.endswith(f"({t:.2f})") for note, t in
               zip(auto.notes, auto.chosen_skin, strict=True))  # fmt: skip
    again = CartoonRunner(net, "cpu", hair="brown", skin=str(auto.chosen_skin[0]), isolate="none")(crops[:1],
                                                                                                  points[:1])
    assert torch.allclose(again, drawn[:1], atol=0.02)  # the position auto printed draws the same avatar
    grey = crops.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)  # no typology angle: the grey class, as a position
    auto(grey, points)
    assert auto.chosen_skin == crop_skin_class(grey, points).float().tolist()
    half = CartoonRunner(net, "cpu", hair="brown", skin="0.5")(crops, points)
    light, medium = (CartoonRunner(net, "cpu", hair="brown", skin=t)(crops, points) for t in ("light", "medium"))
    assert not torch.equal(half, light) and not torch.equal(half, medium)


def test_tone_names_and_positions():
    from facetool_cartoon.runner import tone_name, tone_position

    assert [tone_position(t) for t in ("light", "medium", "dark", "0.5", 1.7)] == [0.0, 1.0, 2.0, 0.5, 1.7]
    assert [tone_name(p) for p in (0.0, 0.05, 0.5, 1.0, 1.62, 2.0)] == [
        "light", "light", "light-medium", "medium", "medium-dark", "dark"]  # fmt: skip


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


def test_the_cards_skin_grid_spans_the_folders_skins_in_six_rows(domains, tmp_path, one_thread):
    from facetool_cartoon.skin import save_skin_grid
    from PIL import Image

    from facetool.train.checkpoint import TrainState, export_weights

    torch.manual_seed(0)
    config = ConditionalResnetConfig(extra=5, base=4, blocks=1, skins=3)
    weights = export_weights(tmp_path / "c.safetensors", {"G": ConditionalResnetGenerator(config)}, torch.float32,
                             TrainState(method="cartoon", configs={"G": config}))  # fmt: skip
    photos, _ = domains
    positions = save_skin_grid(photos, tmp_path / "grid.jpg", count=3, split=None, weights=weights)
    assert len(positions) == 3 and all(0 <= p <= 2 for p in positions)
    assert Image.open(tmp_path / "grid.jpg").size == (3 * 128, 6 * 128)


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
    for wrong in ("olive", "2.5", "-1"):
        result = CliRunner().invoke(app, ["stylize", str(image), "--method", "cartoon", "--skin", wrong])
        assert result.exit_code == 2 and "skin must be one of" in result.stderr and "0 (light) to 2" in result.stderr
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
    assert 0 <= metrics["auto_hair_avatar"] <= 1 and 0 <= metrics["auto_hair_pick"] <= 1  # --hair auto end to end
    assert ("skin_accuracy" in metrics) == bool(skins)
    if skins:
        tones = [metrics[f"skin_accuracy_{t}"] for t in SKIN_TONES]
        assert metrics["skin_accuracy"] == pytest.approx(np.mean(tones)) and all(0 <= t <= 1 for t in tones)


def test_hair_and_skin_may_be_given_per_face_and_auto_reads_only_the_rest(one_thread, monkeypatch):
    import facetool_cartoon.hair as hair
    from facetool_cartoon import CartoonRunOptions
    from facetool_cartoon.runner import CartoonRunner, per_face

    from facetool.errors import UsageError

    assert per_face("black", 3, "hair") == ["black"] * 3
    assert per_face("auto,black", 2, "hair") == ["auto", "black"]
    with pytest.raises(UsageError, match="--hair auto,black: 2 values for 3 faces"):
        per_face("auto,black", 3, "hair")
    assert CartoonRunOptions(hair="auto,grey", skin="dark,0.5,auto").skin == "dark,0.5,auto"
    with pytest.raises(ValueError, match="hair must be one of"):
        CartoonRunOptions(hair="auto,purple")
    with pytest.raises(ValueError, match="skin must be one of"):
        CartoonRunOptions(skin="light,3")

    read = []
    monkeypatch.setattr(hair, "photo_hair", lambda crop, p5=None, p68=None: read.append(crop) or "blonde")
    torch.manual_seed(0)
    net = ConditionalResnetGenerator(ConditionalResnetConfig(extra=5, base=4, blocks=1, skins=3)).eval()
    crops, points = torch.rand(3, 3, SIZE, SIZE), torch.tensor([POINTS] * 3)
    alone = CartoonRunner(net, "cpu", hair="auto", skin="auto", isolate="none")
    alone(crops[1:2], points[1:2])
    runner = CartoonRunner(net, "cpu", hair="grey,auto,black", skin="dark,auto,0.5", isolate="none")
    runner(crops, points)
    assert runner.chosen == ["grey", "blonde", "black"] and len(read) == 2  # only face1's hair was read, twice
    assert torch.equal(read[0], read[1])
    # face1's tone measured as when it is drawn alone; the others as given
    assert runner.chosen_skin == [2.0, alone.chosen_skin[0], 0.5]
    assert runner.notes[1].startswith("hair blonde, skin ")
