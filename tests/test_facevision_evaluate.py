"""``facetool evaluate facevision``: depth / correspondence / mesh measures beside the mean face, on tiny maps data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facetool.cli import build_app

SIZE = 32


def _dome_item(rng, shift: float):
    """A face-like dome: depth px (NaN outside), PNCC (S, S, 3), mask, photo, nose tip (x, y)."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    cx, cy = SIZE / 2 + shift, SIZE / 2
    radius = np.hypot(cols - cx, rows - cy)
    mask = radius < SIZE * 0.35
    depth = np.where(mask, SIZE * 0.3 - radius * 0.5, np.nan)
    pncc = np.zeros((SIZE, SIZE, 3))
    pncc[mask] = np.stack(
        [(cols[mask] - cx) / SIZE + 0.5, 0.5 - (rows[mask] - cy) / SIZE, np.full(mask.sum(), 0.8)], axis=1
    )
    photo = (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
    return depth, pncc, mask, photo, [cx, cy]


@pytest.fixture
def maps(tmp_path):
    from facetool.data.common import save_png
    from facetool.data.maps import depth_png

    rng = np.random.default_rng(0)
    root, lines, ids = tmp_path / "maps", [], []
    for i in range(20):
        item = f"{i:06d}"
        depth, pncc, mask, photo, nose = _dome_item(rng, shift=(i % 5) - 2.0)
        arrays = {"photo": photo, "pncc": (pncc * 255).round().astype(np.uint8), "depth": depth_png(depth, SIZE),
                  "mask": mask.astype(np.uint8) * 255}  # fmt: skip
        files = {}
        for role, array in arrays.items():
            files[role] = {"path": f"{role}/{item}.png", "sha256": save_png(root / f"{role}/{item}.png", array)}
        labels = {"size": SIZE, "nose_tip": [*nose, 0.0]}
        lines.append(json.dumps({"id": item, "file": files["photo"]["path"], "files": files, "labels": labels}))
        ids.append(item)
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    (root / "splits.json").write_text(json.dumps({"train": ids[:16], "test": ids[16:]}))
    return root


def _spec():
    import dataclasses

    from facetool.plugins import get_host

    return dataclasses.replace(get_host().generators.get("facevision"), sizes=(SIZE,), input_size=SIZE)


def test_oracle_is_perfect_and_the_mean_face_is_not(maps, one_thread):
    from facetool.evaluate import evaluate_method

    spec = _spec()
    result = evaluate_method(spec, maps, None, spec.options(), size=SIZE, oracle=True)
    m = result["metrics"]
    assert result["count"] == 4 and result["roles"]["target"] == "depth+pncc+mask"
    assert m["depth_mae"] < 0.05 and m["corr_error"] < 0.01 and m["mask_iou"] == 1.0  # PNG rounding only
    assert m["baseline_depth_mae"] > 0.05 and m["baseline_corr_error"] > 0.01  # the faces are shifted
    assert m["depth_mae_ratio"] < 0.5 and "train items" in result["notes"]["baseline"]
    assert m["normals_to_camera"] > 0.99 and m["nose_px"] < 2.0 and m["vertices"] > 100
    assert "backbone" not in result


def test_a_tiny_net_is_measured_and_the_cli_writes_metrics_and_grid(maps, tmp_path, one_thread):
    from facetool_facevision.net import FaceVisionConfig, FaceVisionNet

    from facetool.train.checkpoint import TrainState, export_weights

    torch.manual_seed(0)
    config = FaceVisionConfig(levels=3, base=4, max_channels=8)
    weights = export_weights(tmp_path / "fv.safetensors", {"G": FaceVisionNet(config)}, torch.float32,
                             TrainState(method="facevision", configs={"G": config}))  # fmt: skip
    app, out = build_app(), tmp_path / "eval"
    args = ["evaluate", "facevision", "--data", str(maps), "--weights", str(weights), "--size", "128", "--json"]
    done = CliRunner().invoke(app, [*args, "-o", str(out)])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["metrics"]["depth_mae"] > 0 and result["metrics"]["depth_mae_ratio"] is not None
    assert (out / "metrics.json").is_file() and (out / "grid.png").is_file()
    bad = CliRunner().invoke(app, [*args, "--nme", "dlib"])
    assert bad.exit_code == 2 and "measures its own outputs" in bad.stderr
