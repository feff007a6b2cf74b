"""FaceVision (work in progress): the two-decoder generator and one training step on tiny maps data."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import torch
from facetool_facevision.net import FaceVisionConfig, FaceVisionNet

SIZE = 32


def test_one_encoder_two_heads_and_both_get_gradient(one_thread):
    net = FaceVisionNet(FaceVisionConfig(levels=3, base=4, max_channels=8))
    depth, correspondence = net(torch.rand(2, 3, SIZE, SIZE) * 2 - 1)
    assert depth.shape == (2, 1, SIZE, SIZE) and correspondence.shape == (2, 3, SIZE, SIZE)
    (depth.mean() + correspondence.mean()).backward()
    assert all(p.grad is not None for p in net.encoder.parameters())
    assert not hasattr(net, "down")  # one encoder only: the second U-Net's is not kept


def test_one_training_step(tmp_path, one_thread):
    from facetool.data.common import save_png
    from facetool.plugins import get_host
    from facetool.train.loop import run_training

    rng = np.random.default_rng(0)
    root, lines = tmp_path / "maps", []
    for i in range(4):
        item, files = f"{i:06d}", {}
        arrays = {
            "photo": rng.random((SIZE, SIZE, 3)),
            "pncc": rng.random((SIZE, SIZE, 3)),
            "depth": rng.random((SIZE, SIZE)),
        }
        for role, array in arrays.items():
            path = f"{role}/{item}.png"
            files[role] = {"path": path, "sha256": save_png(root / path, (array * 255).astype(np.uint8))}
        lines.append(json.dumps({"id": item, "file": files["photo"]["path"], "files": files, "labels": {}}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    spec = dataclasses.replace(get_host().generators.get("facevision"), sizes=(SIZE,))
    run = run_training(spec, tmp_path / "run", data=[root], steps=1, batch_size=2, size=SIZE,
                       options=spec.train.options(base=4, d_base=4))  # fmt: skip
    losses = json.loads((tmp_path / "run" / "losses.jsonl").read_text().splitlines()[0])
    assert {"G_L1_depth", "G_grad_depth", "G_L1_pncc", "G_grad_pncc"} <= set(losses)
    assert all(np.isfinite(v) for v in losses.values()) and run.weights.is_file()
