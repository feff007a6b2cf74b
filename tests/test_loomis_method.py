"""The Loomis plugin: its two methods, the head-angle metric, and its net on a tiny exported weights file."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from facetool_loomis import LoomisOptions, geometry, register_generators

from facetool.data import loomis_draw as ld
from facetool.errors import FacetoolError, UsageError
from facetool.methods import resolve_weights
from facetool.plugins import get_host

# A face's brow, nose-base and chin landmarks (iBUG 21/22, 33, 8) in a 128² crop; the rest unused by the fit.
P68 = np.full((68, 2), 64.0)
P68[21], P68[22], P68[33], P68[8] = (60.0, 50.0), (68.0, 50.0), (65.0, 80.0), (64.0, 112.0)


@pytest.fixture(autouse=True)
def coarse_grid(monkeypatch):
    """A coarser grid (5 × 5 × 5) than the default: keeps the file fast; the refinement still walks to the minimum."""
    monkeypatch.setattr(geometry, "YAW_GRID", np.arange(-45.0, 45.1, 22.5))
    monkeypatch.setattr(geometry, "PITCH_GRID", np.arange(-30.0, 30.1, 15.0))
    monkeypatch.setattr(geometry, "ROLL_GRID", np.arange(-20.0, 20.1, 10.0))


def _methods():
    specs = []
    register_generators(specs.append)
    return {s.name: s for s in specs}


def _drawing(yaw, pitch, roll, size=128):
    placement = ld.fit_placement(yaw, pitch, roll, P68 * size / 128)
    lines = ld.place(ld.construction_lines(yaw, pitch, roll, placement.lower), placement)
    return ld.render_lines(lines, size, size / 128) / 255.0


def test_methods_registered():
    methods = _methods()
    assert set(methods) == {"loomis-pix2pix", "loomis-cyclegan"}
    for name, spec in methods.items():
        assert (spec.task, spec.template, spec.sizes, spec.background) == ("stylize", "portrait", (128, 256), "photo")
        assert spec.input_size == (128 if name == "loomis-pix2pix" else 256)  # what each shipped model was trained at
        assert spec.weights == f"facetool_loomis:weights/{name}.safetensors"
        assert spec.options is LoomisOptions and spec.version == "1"
        assert spec.evaluate is not None and spec.network is not None
    assert methods["loomis-pix2pix"].train.streams(None) == {"pair": ("photo", "loomis")}
    assert methods["loomis-cyclegan"].train.streams(None) == {"A": ("photo",), "B": ("loomis",)}
    with pytest.raises(ValueError):
        LoomisOptions(style="ink")


def test_missing_default_weights_is_one_clear_error():
    spec = _methods()["loomis-pix2pix"]
    missing = dataclasses.replace(spec, weights="facetool_loomis:weights/not-there.safetensors")
    with pytest.raises(FacetoolError, match="missing from the install"):
        resolve_weights(missing)


def test_batched_fit_is_loomis_draw_fit():
    for pose in [(20.0, 10.0, 5.0), (-50.0, -30.0, 20.0), (40.0, 35.0, -25.0)]:
        want = ld.fit_placement(*pose, P68)
        scale, lower, centre = geometry._fit_placements(
            geometry._rotations(np.array([pose])), geometry.anchors_from_landmarks(P68)
        )
        np.testing.assert_allclose([scale[0], lower[0]], [want.scale, want.lower], rtol=1e-9)
        np.testing.assert_allclose(centre[0], want.centre, atol=1e-9)


@pytest.mark.parametrize("pose", [(25.0, -12.0, 7.0), (-38.0, 16.0, -11.0)])
def test_estimate_pose_recovers_a_drawn_pose(pose):
    estimate = geometry.estimate_pose(_drawing(*pose), P68, work_size=96)
    found = (estimate.yaw, estimate.pitch, estimate.roll)
    assert max(geometry.angle_error(a, b) for a, b in zip(found, pose, strict=True)) < 2.0, found
    assert estimate.cost < 1.0  # pixels


def test_no_construction_costs_most():
    drawn = geometry.estimate_pose(_drawing(10.0, 5.0, 0.0), P68, work_size=96).cost
    blank = geometry.estimate_pose(np.ones((128, 128)), P68, work_size=96).cost
    rng = np.random.default_rng(0)
    from PIL import Image, ImageDraw

    page = Image.new("L", (128, 128), 255)
    pen = ImageDraw.Draw(page)
    for _ in range(20):
        pen.line([tuple(rng.uniform(0, 128, 2)) for _ in range(3)], fill=0, width=1)
    scribble = geometry.estimate_pose(np.asarray(page) / 255.0, P68, work_size=96).cost
    assert blank == pytest.approx(128 / 16)  # the truncation: nothing matches
    assert drawn < 1.0 and 2.0 < scribble < blank


def test_evaluate_hook():
    poses = [(15.0, 8.0, -4.0), (-20.0, -6.0, 3.0)]
    size = 128
    drawings = torch.tensor(np.stack([_drawing(*p, size) for p in poses]), dtype=torch.float32)[:, None]
    labels = []
    for yaw, pitch, roll in poses:
        placement = ld.fit_placement(yaw, pitch, roll, P68)
        keys = ld.key_points(yaw, pitch, roll, placement.lower)
        labels.append(
            {
                "pose": {"yaw": yaw, "pitch": pitch, "roll": roll},
                "key_points": {n: placement.apply(keys[n]).tolist() for n in ld.FIT_LANDMARKS},
                "size": size,
            }
        )
    # The labels name the second pose for the first drawing: its error must show.
    swapped = [labels[1], labels[0]]
    result = geometry.evaluate(drawings.expand(-1, 3, -1, -1), {"labels": labels}, LoomisOptions(style="lines"))
    assert set(result) == {"yaw_error_deg", "pitch_error_deg", "roll_error_deg", "construction_match"}
    assert all(len(v) == 2 for v in result.values())
    assert max(result["yaw_error_deg"] + result["pitch_error_deg"] + result["roll_error_deg"]) < 2.0
    wrong = geometry.evaluate(drawings[:1], {"labels": swapped[:1]}, None)
    assert wrong["yaw_error_deg"][0] > 25.0
    # over-photo outputs: the lines are divided back out of the photo
    photo = torch.rand(2, 3, size, size) * 0.8 + 0.2
    over = geometry.evaluate(photo * drawings, {"labels": labels, "photo": photo}, LoomisOptions())
    np.testing.assert_allclose(over["yaw_error_deg"], result["yaw_error_deg"], atol=0.5)
    # the method's hook gets the bare network's lines whatever -O style says, so it never divides by the photo
    spec = get_host().generators.get("loomis-pix2pix")
    hooked = spec.evaluate(drawings, {"labels": labels, "photo": photo}, LoomisOptions(style="over-photo"))
    assert hooked == geometry.evaluate(drawings, {"labels": labels}, LoomisOptions(style="lines"))


def test_network_loads_exported_weights_and_runs(tmp_path):
    from facetool.nets.unet import UNet, UNetConfig
    from facetool.train.checkpoint import TrainState, export_weights

    torch.manual_seed(0)
    config = UNetConfig(in_channels=3, out_channels=3, levels=3, base=4, max_channels=8)
    generator = UNet(config)
    path = export_weights(
        tmp_path / "w.safetensors",
        {"G": generator},
        torch.float16,
        TrainState(method="loomis-pix2pix", configs={"G": config}),
    )
    spec = _methods()["loomis-pix2pix"]
    photo = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        lines = spec.network(LoomisOptions(style="lines"), path)(photo)
    assert lines.shape == (2, 1, 32, 32) and float(lines.min()) >= 0.0 and float(lines.max()) <= 1.0
    runner = spec.load(LoomisOptions(), "cpu", path)
    over = runner(photo)
    assert over.shape == (2, 3, 32, 32)
    torch.testing.assert_close(over, photo * lines)
    with pytest.raises(UsageError, match="not loomis-cyclegan"):
        _methods()["loomis-cyclegan"].network(LoomisOptions(), path)
