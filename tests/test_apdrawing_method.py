"""APDrawingGAN plugin: regions, the hierarchical generator, one training step, loading and running weights."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from facetool_apdrawing.net import (
    APDrawingConfig,
    APDrawingDConfig,
    APDrawingDiscriminators,
    APDrawingGenerator,
    Regions,
    discriminator_views,
    global_levels,
    part_layers,
)
from facetool_apdrawing.regions import BOX_PARTS, boxes_for, crop_boxes, merge_parts, place_boxes

from facetool.align import get_template
from facetool.errors import UsageError

SIZE = 64
TINY = {"global_levels": 3, "base": 4, "max_channels": 8, "local_base": 4, "local_max_channels": 8,
        "mask_part_base": 4, "fusion_channels": 4}  # fmt: skip


def _points(size: int = SIZE, batch: int = 2) -> torch.Tensor:
    return get_template("portrait").tensor(size).expand(batch, 5, 2).clone()


def test_part_boxes_have_the_papers_sizes_and_scale():
    for size, scale in ((256, 1), (512, 2)):
        boxes = boxes_for(_points(size, 1), size)
        sizes = {name: (b[0][3] - b[0][1], b[0][2] - b[0][0]) for name, b in boxes.items()}
        assert sizes == {"left_eye": (40 * scale, 56 * scale), "right_eye": (40 * scale, 56 * scale),
                         "nose": (48 * scale, 48 * scale), "mouth": (40 * scale, 64 * scale)}  # fmt: skip
    assert [global_levels(s) for s in (128, 256, 512)] == [6, 7, 8]  # the paper's 8 at 512²
    assert [part_layers(s) for s in (64, 128, 256, 512)] == [1, 2, 3, 3]


def test_parts_go_back_where_they_came_from_and_merge_darkest():
    image = torch.rand(2, 1, SIZE, SIZE) * 2 - 1
    boxes = [(4, 6, 14, 12), (30, 40, 40, 46)]
    patch = crop_boxes(image, boxes).requires_grad_(True)
    canvas = place_boxes(patch, boxes, SIZE)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        torch.testing.assert_close(canvas[i, :, y1:y2, x1:x2], image[i, :, y1:y2, x1:x2])
        outside = canvas[i].clone()
        outside[:, y1:y2, x1:x2] = 1.0
        assert torch.all(outside == 1.0)  # white paper elsewhere
    canvas.sum().backward()
    assert torch.all(patch.grad == 1.0)
    a, b = torch.tensor([[[[0.5, -1.0]]]]), torch.tensor([[[[-0.2, 1.0]]]])
    assert merge_parts([a, b]).flatten().tolist() == pytest.approx([-0.2, -1.0])


def test_generator_draws_every_part_and_fuses(one_thread):
    torch.manual_seed(0)
    generator = APDrawingGenerator(APDrawingConfig(**TINY))
    photo = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    regions = Regions.from_points(_points(), SIZE)
    drawing = generator(photo, regions)
    assert drawing.output.shape == drawing.global_drawing.shape == drawing.merged.shape == (2, 1, SIZE, SIZE)
    assert set(drawing.local_drawings) == {*BOX_PARTS, "hair", "background"}
    assert drawing.local_drawings["mouth"].shape == (2, 1, 10, 16)  # 40×64 at 256², scaled to 64²
    # Hair and background drawings are white paper outside their masks.
    hair = drawing.local_drawings["hair"]
    assert torch.all(hair[regions.hair.expand_as(hair) == 0] == 1.0)
    # The merged canvas is white where no part works: the cheek between the eye and mouth boxes.
    covered = torch.zeros(2, 1, SIZE, SIZE, dtype=torch.bool)
    for name in BOX_PARTS:
        for i, (x1, y1, x2, y2) in enumerate(regions.boxes[name]):
            covered[i, :, y1:y2, x1:x2] = True
    free = ~covered & (regions.hair == 0) & (regions.background == 0)
    assert free.any() and torch.all(drawing.merged[free] == 1.0)
    # Every local net receives gradient through the fusion.
    drawing.output.mean().backward()
    for name, net in generator.local_nets.items():
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters()), name

    views = discriminator_views(photo, drawing.output.detach(), regions, local=True)
    d_config = APDrawingDConfig(base=4, mask_part_base=4, layers=2, part_layers=part_layers(SIZE))
    logits = APDrawingDiscriminators(d_config)(views)
    assert set(logits) == {"global", *BOX_PARTS, "hair", "background"}
    assert views["hair"].shape[1] == 5 and views["nose"].shape[1] == 4


def test_without_local_nets_the_output_is_the_global_drawing(one_thread):
    generator = APDrawingGenerator(APDrawingConfig(**{**TINY, "local": False}))
    drawing = generator(torch.zeros(1, 3, SIZE, SIZE), Regions.from_points(_points(batch=1), SIZE))
    assert drawing.merged is None and drawing.output is drawing.global_drawing
    assert not hasattr(generator, "local_nets")


def _pairs(root: Path, count: int = 6) -> Path:
    """Random photo / drawing pairs with the portrait template's 5 points as labels, and a split."""
    from facetool.data.common import save_png

    rng = np.random.default_rng(0)
    points = (get_template("portrait").tensor(SIZE) + 0.0).tolist()
    lines = []
    for i in range(count):
        item, files = f"{i:06d}", {}
        drawing = np.full((SIZE, SIZE), 255, np.uint8)
        drawing[rng.integers(0, SIZE, 40), rng.integers(0, SIZE, 40)] = 0
        for role, array in (("photo", (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)), ("drawing", drawing)):
            files[role] = {"path": f"{role}/{item}.png", "sha256": save_png(root / role / f"{item}.png", array)}
        record = {"id": item, "file": files["photo"]["path"], "files": files, "labels": {"points5": points}}
        lines.append(json.dumps(record))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    ids = [f"{i:06d}" for i in range(count)]
    (root / "splits.json").write_text(json.dumps({"train": ids[2:], "test": ids[:2]}))
    return root


class _Backbone:  # cheap deterministic features: FID's machinery without the asset
    name, dim = "test", 2

    def __call__(self, images):
        return torch.stack([images.mean(dim=(1, 2, 3)), images.std(dim=(1, 2, 3))], 1).double().numpy()


def _spec():
    """The registered method, allowed to train at the tests' tiny size."""
    from facetool.plugins import get_host

    return dataclasses.replace(get_host().generators.get("apdrawing"), sizes=(SIZE, 256, 512))


def test_pretrain_then_train_and_run_the_weights(tmp_path, one_thread):
    from facetool.stylize import stylize_photo
    from facetool.train.loop import run_training

    spec = _spec()
    data = _pairs(tmp_path / "pairs")
    options = spec.train.options
    run_training(spec, tmp_path / "pre", data=[data], steps=1, batch_size=2, size=SIZE,
                       options=options(lambda_dt=0.0, base=4, d_base=4))  # fmt: skip
    first = json.loads((tmp_path / "pre" / "losses.jsonl").read_text().splitlines()[0])
    assert "G_DT" not in first and {"G_gan_local", "G_local", "G_L1"} <= set(first)
    run = run_training(spec, tmp_path / "run", data=[data], steps=1, batch_size=2, size=SIZE,
                       options=options(base=4, d_base=4, init=str(tmp_path / "pre")))  # fmt: skip
    losses = json.loads((tmp_path / "run" / "losses.jsonl").read_text().splitlines()[0])
    assert all(np.isfinite(v) for v in losses.values()) and losses["G_DT"] > 0

    net = spec.network(None, run.weights)
    assert net.takes_points5
    photo = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        default = net(photo)
        placed = net(photo, points5=_points())
    assert default.shape == (2, 1, SIZE, SIZE) and 0 <= float(default.min()) <= float(default.max()) <= 1
    torch.testing.assert_close(default, placed)  # no points: the template's, where an aligned crop has them

    pytest.importorskip("onnxruntime")
    from facetool.export.onnx import export_onnx

    # The exported graph draws the template's part positions, for any batch.
    report = export_onnx(net, tmp_path / "apdrawing.onnx", torch.rand(1, 3, SIZE, SIZE))
    assert report["max_abs_diff"] < 1e-4 and report["inputs"][0]["shape"][0] == "batch"

    runner = spec.load(None, "cpu", run.weights)
    seen = []

    def spy(crops, points5=None):
        seen.append(points5)
        return runner(crops, points5=points5)

    spy.takes_points5 = True
    image = (np.random.default_rng(1).random((120, 100, 3)) * 255).astype(np.uint8)
    from facetool.faces import Face

    template = get_template("portrait").tensor(SIZE).numpy()
    face_points = template * 1.2 + np.array([10.0, 5.0])  # the face at 1.2× the crop scale, shifted
    face = Face(box=np.array([0.0, 0.0, 90.0, 90.0]), score=1.0, points5=face_points)
    (result,) = stylize_photo(image, spy, "portrait", [face], SIZE, background="white")
    assert result.shape == image.shape
    torch.testing.assert_close(seen[0][0], torch.as_tensor(template), atol=1e-3, rtol=0)
    # facetool evaluate hands the network each item's 5 points and measures the strokes' chamfer distance.
    from facetool.evaluate import evaluate_method

    calls = []
    network = spec.network

    def recording_network(options, weights):
        net = network(options, weights)
        forward = net.forward
        net.forward = lambda photo, points5=None: calls.append(points5) or forward(photo, points5)
        return net

    metrics = evaluate_method(dataclasses.replace(spec, network=recording_network), data, run.weights, None,
                              size=SIZE, backbone=_Backbone())["metrics"]  # fmt: skip
    assert calls and calls[0].shape == (2, 5, 2) and 0 < metrics["chamfer"] < SIZE / 8
    with pytest.raises(UsageError, match="of method apdrawing, not pix2pix"):
        from facetool.models.common import load_trained_net

        load_trained_net(run.weights, "G", method="pix2pix")


def _setup(options, size=SIZE):
    from facetool.train.spec import Amp, TrainSetup

    return TrainSetup(options=options, size=size, steps=2, batch_size=2, device="cpu", seed=0, amp=Amp("fp32", "cpu"))


def test_init_loads_the_pretrained_nets_and_refuses_others(tmp_path, one_thread):
    from facetool_apdrawing.train import APDrawingOptions, APDrawingTrainer

    from facetool.models.common import load_trained_net
    from facetool.train.checkpoint import TrainState, export_weights

    torch.manual_seed(0)
    pre = APDrawingTrainer(_setup(APDrawingOptions(base=4, d_base=4)))
    state = TrainState(method="apdrawing", configs=pre.configs)
    path = export_weights(tmp_path / "pre.safetensors", {"G": pre.nets["G"]}, torch.float32, state)
    torch.manual_seed(1)  # another draw of the initial weights: init must replace them
    trainer = APDrawingTrainer(_setup(APDrawingOptions(base=4, d_base=4, init=str(path))))
    for name, tensor in pre.nets["G"].state_dict().items():
        torch.testing.assert_close(trainer.nets["G"].state_dict()[name], tensor, msg=name)
    assert isinstance(load_trained_net(path, "G", method="apdrawing", build=APDrawingGenerator), APDrawingGenerator)

    with pytest.raises(UsageError, match="generator differs.*base 4 vs 8"):
        APDrawingTrainer(_setup(APDrawingOptions(base=8, d_base=4, init=str(path))))
    other = export_weights(tmp_path / "other.safetensors", {"G": pre.nets["G"]}, torch.float32,
                           TrainState(method="pix2pix", configs=pre.configs))  # fmt: skip
    with pytest.raises(UsageError, match="method pix2pix, not apdrawing"):
        APDrawingTrainer(_setup(APDrawingOptions(base=4, d_base=4, init=str(other))))


def test_items_without_points_are_one_clear_error(one_thread):
    from facetool_apdrawing.train import APDrawingOptions, APDrawingTrainer

    trainer = APDrawingTrainer(_setup(APDrawingOptions(base=4, d_base=4)))
    pair = {"photo": torch.rand(2, 3, SIZE, SIZE), "drawing": torch.rand(2, 1, SIZE, SIZE)}
    for points in (None, [torch.zeros(5, 2), None]):  # no labels at all; labels on some items only
        batch = {"pair": {**pair, **({} if points is None else {"points5": points})}}
        with pytest.raises(UsageError, match="5-point labels on every item"):
            trainer.train_step(batch, 0)


def test_a_person_mask_moves_the_hair_region(one_thread):
    from facetool_apdrawing.net import APDrawingNet

    generator = APDrawingGenerator(APDrawingConfig(**TINY)).eval()
    net = APDrawingNet(generator, get_template("portrait").tensor())
    photo = torch.rand(2, 3, SIZE, SIZE)
    everyone = torch.ones(2, 1, SIZE, SIZE)
    with torch.no_grad():
        plain, masked = net(photo), net(photo, foreground=everyone)
    assert plain.shape == masked.shape == (2, 1, SIZE, SIZE)
    rule = Regions.from_points(_points(), SIZE)
    person = Regions.from_points(_points(), SIZE, everyone)
    assert person.background.sum() < rule.background.sum()  # all person: only the rule's shoulders' outside stays
    assert not torch.equal(plain, masked)
