"""WGAN-GP with landmark loss (work in progress): nets, one training step per variant on tiny cartoons, the
predictor's training, and the runner's seeds and layouts. (The penalty's value and gradient: test_losses.py.)"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import kornia
import numpy as np
import pytest
import torch
from facetool_wgan_landmark import DEFAULT_LAYOUT, WganRunner
from facetool_wgan_landmark.net import Critic, CriticConfig, LayoutGenerator, LayoutGeneratorConfig
from facetool_wgan_landmark.train import VARIANTS, layout_error, layout_points

from facetool.generate import LAYOUT_POINTS

SIZE = 32


def test_generator_follows_its_layout_input_and_the_critic_has_no_batch_norm(one_thread):
    torch.manual_seed(0)
    g = LayoutGenerator(LayoutGeneratorConfig(z_dim=8, size=SIZE, base=4, max_channels=16, layout_points=6)).eval()
    z = torch.randn(2, 8)
    layout = torch.tensor([[[10.0, 12.0], [20, 12], [15, 17], [11, 22], [19, 22], [15, 27]]] * 2)
    a, b = g(z, layout), g(z, layout + 3)
    assert a.shape == (2, 3, SIZE, SIZE) and a.abs().max() <= 1 and (a - b).abs().mean() > 1e-4
    with pytest.raises(ValueError, match="layout"):
        g(z)
    critic = Critic(CriticConfig(size=SIZE, base=4, max_channels=16))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())
    assert critic(torch.rand(3, 3, SIZE, SIZE)).shape == (3,)


def test_a_warping_generator_moves_its_face_with_the_layout(one_thread):
    from facetool_wgan_landmark.train import canonical_layout

    torch.manual_seed(0)
    canonical = canonical_layout()
    config = LayoutGeneratorConfig(z_dim=8, size=SIZE, base=4, max_channels=16, layout_points=6, warp=True,
                                   canonical=canonical)  # fmt: skip
    g = LayoutGenerator(config).eval()
    z, layout = torch.randn(2, 8), torch.tensor([canonical] * 2) * SIZE - 0.5
    drawn = g(z, layout)
    assert torch.allclose(drawn, g._draw(z, layout), atol=1e-5)  # the canonical layout: no warp
    moved = g(z, layout + torch.tensor([4.0, 0.0]))  # every point 4 px right: the same face, 4 px right
    assert torch.allclose(moved[..., 4:], drawn[..., :-4], atol=1e-5) and not torch.allclose(moved, drawn)
    saved = LayoutGeneratorConfig.from_dict(json.loads(json.dumps(config.to_dict())))  # as in a checkpoint
    loaded = LayoutGenerator(saved).eval()
    loaded.load_state_dict(g.state_dict())
    assert torch.allclose(loaded(z, layout + torch.tensor([4.0, 0.0])), moved, atol=1e-6)


def test_a_generator_trained_unwarped_is_warped_at_run_time_unless_told_not_to(tmp_path, one_thread):
    from facetool_wgan_landmark import WganRunOptions

    from facetool.plugins import get_host
    from facetool.train.checkpoint import TrainState, export_weights

    torch.manual_seed(0)
    config = LayoutGeneratorConfig(z_dim=8, size=SIZE, base=4, max_channels=16, layout_points=6)
    g = LayoutGenerator(config)
    for weight in g.parameters():  # a net that draws something (a fresh one's output is near flat grey)
        weight.data.normal_(0, 0.5)
    weights = export_weights(tmp_path / "g.safetensors", {"G": g}, torch.float32,
                             TrainState(method="wgan-landmark", configs={"G": config}))  # fmt: skip
    spec = get_host().generators.get("wgan-landmark")
    warped, as_trained = (spec.load(WganRunOptions(warp=w), "cpu", weights) for w in (True, False))
    assert spec.load(None, "cpu", weights).generator.config.warp  # on by default
    right = {name: (x + 4 / SIZE, y) for name, (x, y) in DEFAULT_LAYOUT.items()}  # every point 4 px right
    mean = as_trained(2, 5, None)
    assert mean.std() > 0.05  # a face-like field to compare, not flat grey
    assert torch.allclose(warped(2, 5, None), mean, atol=1e-5)  # the mean layout: nothing to warp
    assert torch.allclose(warped(2, 5, right)[..., 4:], mean[..., :-4], atol=1e-5)  # the same face, 4 px right
    assert not torch.allclose(as_trained(2, 5, right)[..., 4:], mean[..., :-4], atol=1e-3)  # the net's own attempt


def test_a_resumed_run_keeps_the_generator_it_was_saved_with(one_thread):
    from types import SimpleNamespace

    from facetool_wgan_landmark.train import WganTrainer, WganTrainOptions, canonical_layout

    unwarped = LayoutGeneratorConfig(z_dim=8, size=SIZE, base=4, layout_points=6)
    warped = LayoutGeneratorConfig(z_dim=8, size=SIZE, base=4, layout_points=6, warp=True, canonical=canonical_layout())
    for asked, saved in ((True, unwarped), (False, warped)):  # options that would build the other one
        options = WganTrainOptions(g_base=4, d_base=4, z_dim=8, warp=asked)
        setup = SimpleNamespace(options=options, size=SIZE, device="cpu", saved_configs={"G": saved})
        assert WganTrainer(setup).nets["G"].config.warp is saved.warp
        assert WganTrainer(SimpleNamespace(**{**vars(setup), "saved_configs": {}})).nets["G"].config.warp is asked


def test_the_conditional_critic_scores_a_face_with_its_layout(one_thread):
    from facetool_wgan_landmark.train import WganTrainOptions

    torch.manual_seed(0)
    critic = Critic(CriticConfig(size=SIZE, base=4, max_channels=16, layout_points=6))
    images = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    layout = torch.tensor([[[10.0, 12.0], [20, 12], [15, 17], [11, 22], [19, 22], [15, 27]]] * 2)
    scores = critic(images, layout)
    assert scores.shape == (2,) and not torch.allclose(scores, critic(images, layout + 4))
    with pytest.raises(ValueError, match="layout"):
        critic(images)
    with pytest.raises(ValueError, match="critic-layout"):
        WganTrainOptions(variant="plain", critic_layout=True)


def test_layout_points_and_error():
    labels = {"size": 128, "points": {n: [64.0, 64.0] for n in LAYOUT_POINTS}}
    assert np.allclose(
        layout_points(labels, 32), [[15.625, 15.625]] * 6
    )  # (64 + 0.5) / 4 - 0.5: centres scale about -0.5
    assert layout_points({"points": {"nose": [1, 2]}}, 32) is None
    a = torch.zeros(1, 6, 2)
    assert layout_error(a, a + torch.tensor([3.0, 4.0]), 100).item() == pytest.approx(0.05)


def test_point_weights_scale_each_point_s_share_of_the_loss(tmp_path):
    from facetool_wgan_landmark.train import WganTrainOptions
    from typer.testing import CliRunner

    from facetool.cli import build_app

    weights = WganTrainOptions(point_weights="1,1,4,1,1,1").layout_weights()
    assert weights == pytest.approx((2 / 3, 2 / 3, 8 / 3, 2 / 3, 2 / 3, 2 / 3))  # mean 1: λ keeps its size
    assert WganTrainOptions().layout_weights() is None
    target = torch.zeros(1, 6, 2)
    moved = target + torch.tensor([0.0, 6.0])  # every point 6 px off
    assert layout_error(moved, target, 128, weights).item() == pytest.approx(6 / 128)  # mean-1 weights: unchanged
    nose_only = target + torch.tensor([[0.0, 0.0]] * 2 + [[0.0, 6.0]] + [[0.0, 0.0]] * 3)
    assert layout_error(nose_only, target, 128, weights).item() == pytest.approx(6 * 8 / 3 / 6 / 128)  # 2.67×
    moved.requires_grad_(True)
    layout_error(moved, target, 128, weights).backward()
    pull = moved.grad.norm(dim=-1)[0]
    assert pull[2] / pull[0] == pytest.approx(4.0) and pull[0] == pytest.approx(pull[5])
    for bad in ("1,2", "1,1,x,1,1,1", "0,0,0,0,0,0", "1,1,-1,1,1,1", "1,1,nan,1,1,1"):
        with pytest.raises(ValueError, match="point-weights"):
            WganTrainOptions(point_weights=bad)
    result = CliRunner().invoke(build_app(), ["train", "wgan-landmark", "--data", str(tmp_path), "--out",
                                      str(tmp_path / "run"), "-T", "point-weights=1,2"])  # fmt: skip
    assert result.exit_code == 2 and "point-weights" in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_jitter_moves_each_face_and_its_layout_alike(one_thread):
    from types import SimpleNamespace

    from facetool_wgan_landmark.train import WganTrainer, WganTrainOptions

    layouts = torch.tensor([[[10.0, 12.0], [21, 12], [15, 17], [11, 22], [19, 22], [15, 26]]] * 4)
    images = -torch.ones(4, 3, SIZE, SIZE)  # a dark face with one bright dot on its chin point
    images[:, :, 26, 15] = 1.0
    fake = SimpleNamespace(_labelled=lambda batch: (images, layouts),
                           setup=SimpleNamespace(generator=torch.Generator().manual_seed(0)))  # fmt: skip
    moved, moved_layouts = WganTrainer._reals(fake, {}, 0.2)
    assert not torch.allclose(moved_layouts, layouts)
    for image, layout in zip(moved, moved_layouts, strict=True):
        row, column = divmod(int(image[0].argmax()), SIZE)
        assert abs(column - layout[5, 0]) <= 1 and abs(row - layout[5, 1]) <= 1
    assert WganTrainer._reals(fake, {}, 0.0)[1] is layouts
    with pytest.raises(ValueError, match="jitter"):
        WganTrainOptions(jitter=0.5)


def test_parts_move_each_point_on_its_own_and_bend_the_face_with_it(one_thread):
    from types import SimpleNamespace

    from facetool_wgan_landmark.train import WganTrainer, WganTrainOptions

    layouts = torch.tensor([[[40.0, 48.0], [84, 48], [60, 68], [44, 88], [76, 88], [60, 104]]] * 4)  # 128²
    images = -torch.ones(4, 3, 128, 128)  # a dark face, a bright blob on its nose point
    images[:, :, 68, 60] = 1.0
    images = kornia.filters.gaussian_blur2d(images, (7, 7), (1.5, 1.5))
    fake = SimpleNamespace(_labelled=lambda batch: (images, layouts),
                           setup=SimpleNamespace(generator=torch.Generator().manual_seed(0)))  # fmt: skip
    moved, moved_layouts = WganTrainer._reals(fake, {}, 0.0, 3.0)
    offsets = moved_layouts - layouts
    assert offsets.abs().max() > 2 and offsets.abs().max() <= 7.5 + 1e-4  # sd 3 px, clipped at 2.5 sd
    assert (offsets[:, 2] - offsets[:, 0]).norm(dim=-1).min() > 0.5  # the nose moved apart from the eye
    for image, layout in zip(moved, moved_layouts, strict=True):
        row, column = divmod(int(image[0].argmax()), 128)
        assert abs(column - layout[2, 0]) <= 1 and abs(row - layout[2, 1]) <= 1
    with pytest.raises(ValueError, match="parts"):
        WganTrainOptions(parts=9)


@pytest.fixture
def cartoons(tmp_path):
    from facetool.data.common import save_png

    rng = np.random.default_rng(0)
    root, lines = tmp_path / "cartoons", []
    for i in range(10):
        item, path = f"{i:06d}", f"cartoon/{i:06d}.png"
        digest = save_png(root / path, (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8))
        points = {n: [float(v) for v in rng.uniform(8, 24, 2)] for n in LAYOUT_POINTS}
        lines.append(json.dumps({"id": item, "file": path, "files": {"cartoon": {"path": path, "sha256": digest}},
                                 "labels": {"size": SIZE, "points": points}}))  # fmt: skip
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def split_cartoons(cartoons, tmp_path):
    """The cartoons with a split: the predictor's printed error is on held-out faces."""
    import shutil

    from facetool.data.splits import split_folder

    root = shutil.copytree(cartoons, tmp_path / "split-cartoons")
    split_folder(root, 0.3)
    return root


def test_predictor_trains_and_round_trips(cartoons, split_cartoons, tmp_path, one_thread):
    from facetool_wgan_landmark.predictor import load_predictor, save_predictor, train_predictor

    predictor, record = train_predictor(split_cartoons, steps=3, batch=4, size=SIZE)
    assert record["train_items"] + record["test_items"] == 10 and record["test_items"] > 0  # held out
    assert np.isfinite(record["test_error"]) and record["colour"] is False
    from facetool.errors import UsageError

    with pytest.raises(UsageError, match="no splits.json"):  # tested on what it trained on: refused
        train_predictor(cartoons, steps=1, batch=2, size=SIZE)
    coloured, record_c = train_predictor(split_cartoons, steps=3, batch=4, size=SIZE, colour=True)
    assert record_c["colour"] is True and record_c["test_error"] != record["test_error"]  # other images seen
    _, record_p = train_predictor(split_cartoons, steps=3, batch=4, size=SIZE, parts=3.0)
    assert record_p["parts"] == 3.0 and record_p["test_error"] != record["test_error"]  # parts moved on their own
    path = tmp_path / "p.safetensors"
    save_predictor(predictor, path, record)
    loaded = load_predictor(path)
    images = torch.rand(2, 3, SIZE, SIZE)
    assert torch.allclose(loaded(images), predictor(images), atol=0.5)  # fp16 storage
    from facetool_wgan_landmark.predictor import measure_predictor

    measured = measure_predictor(path, split_cartoons, size=SIZE)  # the saved file, measured again
    assert measured["test_items"] == record["test_items"]
    assert measured["test_error"] == pytest.approx(record["test_error"], abs=2e-3)  # fp16 storage


def test_layout_predictor_measures_the_shipped_files_without_training(split_cartoons, tmp_path, one_thread):
    from typer.testing import CliRunner

    from facetool.cli import build_app

    def run(*args):
        return CliRunner().invoke(build_app(), ["layout-predictor", "--cartoons", str(split_cartoons), *args])

    result = run("--measure", "shipped")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(r["file"]).name for r in lines] == ["predictor.safetensors", "predictor-check.safetensors",
        "predictor-colour.safetensors", "predictor-parts.safetensors", "predictor-parts-check.safetensors"]  # fmt: skip
    held_out = len(json.loads((split_cartoons / "splits.json").read_text())["test"])
    assert all(r["test_items"] == held_out and np.isfinite(r["test_error"]) for r in lines)
    assert run("--measure", "shipped", "-o", str(tmp_path / "p.safetensors")).exit_code == 2
    result = run()
    assert result.exit_code == 2 and "--output FILE: where to write the predictor" in result.stderr
    result = run("--measure", str(tmp_path / "none.safetensors"))
    assert result.exit_code == 2 and "no such file" in result.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_one_training_step_of_every_variant_and_the_runner(
    cartoons, split_cartoons, tmp_path, variant, one_thread, monkeypatch
):
    from facetool_wgan_landmark import predictor as predictor_module
    from facetool_wgan_landmark.predictor import save_predictor, train_predictor

    from facetool.plugins import get_host
    from facetool.train.loop import run_training

    p, record = train_predictor(split_cartoons, steps=1, batch=2, size=SIZE)
    save_predictor(p, tmp_path / "p.safetensors", record)
    monkeypatch.setattr(predictor_module, "shipped_predictor_path", lambda: tmp_path / "p.safetensors")
    spec = dataclasses.replace(get_host().generators.get("wgan-landmark"), sizes=(SIZE,), input_size=SIZE)
    ours = variant == "layout"  # the jittered and parts-moved path, the conditional critic and the warp train too
    options = spec.train.options(variant=variant, g_base=4, d_base=4, z_dim=8, jitter=0.1 if ours else 0.0,
                                 critic_layout=ours, warp=ours, parts=2.0 if ours else 0.0,
                                 point_weights="1,1,4,1,1,1" if variant == "loss" else "")  # fmt: skip
    run = run_training(spec, tmp_path / variant, data=[cartoons], steps=1, batch_size=10, size=SIZE, options=options)
    losses = json.loads((tmp_path / variant / "losses.jsonl").read_text().splitlines()[0])
    assert {"D_wasserstein", "GP", "G_adv"} <= set(losses)
    assert ("layout_error" in losses) == (variant != "plain") and all(np.isfinite(v) for v in losses.values())
    runner = spec.load(None, "cpu", run.weights)
    a, b = runner(3, 7, None), runner(3, 7, None)
    assert a.shape == (3, 3, SIZE, SIZE) and torch.equal(a, b) and not torch.equal(a, runner(3, 8, None))
    layout = {**DEFAULT_LAYOUT, "chin": (0.5, 0.95)}
    if variant == "layout":
        assert not torch.equal(runner(3, 7, layout), a)  # the same noise drawn with another chin
    else:
        from facetool.errors import UsageError

        with pytest.raises(UsageError, match="take no layout"):
            runner(1, 0, layout)


def test_runner_reads_a_drawing_layout_with_the_predictor(cartoons, split_cartoons, tmp_path, monkeypatch, one_thread):
    from facetool_wgan_landmark import predictor as predictor_module
    from facetool_wgan_landmark.predictor import save_predictor, train_predictor

    p, record = train_predictor(split_cartoons, steps=1, batch=2, size=SIZE)
    save_predictor(p, tmp_path / "p.safetensors", record)
    monkeypatch.setattr(predictor_module, "colour_predictor_path", lambda: tmp_path / "p.safetensors")
    runner = WganRunner(LayoutGenerator(LayoutGeneratorConfig(z_dim=8, size=SIZE, base=4, layout_points=6)), "cpu")
    layout = runner.layout_from_image((np.random.default_rng(0).random((50, 40, 3)) * 255).astype(np.uint8))
    assert list(layout) == list(LAYOUT_POINTS) and all(0 <= v <= 1 for xy in layout.values() for v in xy)


def test_evaluate_measures_layout_error_and_fid(cartoons, split_cartoons, tmp_path, monkeypatch, one_thread):
    from facetool_wgan_landmark import predictor as predictor_module
    from facetool_wgan_landmark.predictor import save_predictor, train_predictor
    from typer.testing import CliRunner

    from facetool.cli import build_app
    from facetool.train.checkpoint import TrainState, export_weights

    from conftest import require_assets

    require_assets("age-net-v1-onnx")
    p, record = train_predictor(split_cartoons, steps=1, batch=2, size=SIZE)
    save_predictor(p, tmp_path / "p.safetensors", record)
    monkeypatch.setattr(predictor_module, "shipped_predictor_path", lambda: tmp_path / "p.safetensors")
    monkeypatch.setattr(predictor_module, "check_predictor_path", lambda: tmp_path / "p.safetensors")
    monkeypatch.setattr(predictor_module, "parts_predictor_path", lambda: tmp_path / "p.safetensors")
    monkeypatch.setattr(predictor_module, "parts_check_predictor_path", lambda: tmp_path / "p.safetensors")
    config = LayoutGeneratorConfig(z_dim=8, size=SIZE, base=4, layout_points=6)
    weights = export_weights(tmp_path / "g.safetensors", {"G": LayoutGenerator(config)}, torch.float32,
                             TrainState(method="wgan-landmark", configs={"G": config}))  # fmt: skip
    args = [
        "evaluate",
        "wgan-landmark",
        "--data",
        str(cartoons),
        "--weights",
        str(weights),
        "--split",
        "all",
        "--json",
    ]  # fmt: skip (the weights' own size is used)
    done = CliRunner().invoke(build_app(), args)
    assert done.exit_code == 0, done.output
    metrics = json.loads(done.stdout)["metrics"]
    assert metrics["layout_error"] > 0 and metrics["layout_error_real"] > 0 and np.isfinite(metrics["fid"])
    assert metrics["layout_error_check"] == pytest.approx(metrics["layout_error"])  # the same predictor thrice
    assert metrics["layout_error_parts"] == pytest.approx(metrics["layout_error"])
    assert metrics["layout_error_parts_check"] == pytest.approx(metrics["layout_error"])
    # An untrained reader may see too little of an exact move (then None); what it reports is a finite ratio.
    follows = [metrics[f"follow_{part}"] for part in ("eyes", "nose", "mouth")]
    assert all(v is None or np.isfinite(v) for v in follows), metrics
    # Both parts readers are this one file here, so they read the same faces alike.
    checks = [metrics[f"follow_{part}_check"] for part in ("eyes", "nose", "mouth")]
    assert checks == pytest.approx(follows), metrics


@pytest.mark.parametrize(
    ("which", "bound"),
    [
        ("shipped_predictor_path", 0.015),
        ("colour_predictor_path", 0.016),
        ("check_predictor_path", 0.025),
        ("parts_predictor_path", 0.016),
        ("parts_check_predictor_path", 0.016),
    ],
)
def test_the_shipped_predictors_are_small_and_the_card_states_their_held_out_error(which, bound):
    from facetool_wgan_landmark import predictor as predictor_module
    from facetool_wgan_landmark.predictor import load_predictor
    from safetensors import safe_open

    path = getattr(predictor_module, which)()
    assert path.stat().st_size < 2**20
    with safe_open(str(path), "pt") as handle:
        record = json.loads(handle.metadata()["facetool"])
    assert record["test_error"] < bound and record["test_items"] >= 100
    assert str(record["test_error"]) in (path.parent / "MODEL_CARD.md").read_text()
    assert load_predictor(path)(torch.rand(1, 3, 128, 128)).shape == (1, 6, 2)


def test_the_colour_predictor_reads_grey_and_recoloured_cartoons_as_well_as_coloured_ones(tmp_path, one_thread):
    """New factory cartoons (another seed than the training data's): the colour predictor finds the parts whatever
    their colours, P does not — why --like reads drawings with the former."""
    import kornia
    from facetool_wgan_landmark import predictor
    from facetool_wgan_landmark.train import layout_error

    from facetool.data.cartoons import make_cartoons

    make_cartoons(tmp_path / "c", 24, seed=7)
    images, layouts = predictor._load_split(tmp_path / "c", None, 128)
    grey = kornia.color.rgb_to_grayscale(images).expand_as(images)
    turned = kornia.enhance.adjust_hue(images, 2.0)  # radians: greens and blues where skin and hair were
    errors = {}
    with torch.inference_mode():
        for name, path in (("colour", predictor.colour_predictor_path()), ("P", predictor.shipped_predictor_path())):
            reader = predictor.load_predictor(path)
            errors[name] = [layout_error(reader(x), layouts, 128).mean().item() for x in (images, grey, turned)]
    plain, on_grey, on_turned = errors["colour"]
    assert plain < 0.025 and on_grey < 1.25 * plain and on_turned < 1.25 * plain, errors
    assert errors["P"][1] > 1.5 * errors["P"][0] and errors["P"][2] > 1.5 * errors["P"][0], errors


def test_weights_of_another_method_are_refused_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from facetool.cli import build_app
    from facetool.methods import resolve_weights
    from facetool.plugins import get_host

    other = resolve_weights(get_host().generators.get("loomis-pix2pix"), None)
    args = ["generate", "--method", "wgan-landmark", "--weights", str(other), "-o", str(tmp_path / "x.png")]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 2 and "not wgan-landmark" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "x.png").exists()
