"""FaceVision: the two-decoder generator, one training step on tiny maps data, the runner's textured mesh."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
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
            "mask": rng.random((SIZE, SIZE)) > 0.3,
        }
        for role, array in arrays.items():
            path = f"{role}/{item}.png"
            files[role] = {"path": path, "sha256": save_png(root / path, (array * 255).astype(np.uint8))}
        lines.append(json.dumps({"id": item, "file": files["photo"]["path"], "files": files, "labels": {}}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    spec = dataclasses.replace(get_host().generators.get("facevision"), sizes=(SIZE,), input_size=SIZE)
    run = run_training(spec, tmp_path / "run", data=[root], steps=1, batch_size=2, size=SIZE,
                       options=spec.train.options(base=4, d_base=4))  # fmt: skip
    losses = json.loads((tmp_path / "run" / "losses.jsonl").read_text().splitlines()[0])
    assert {"G_L1_depth", "G_grad_depth", "G_L1_pncc", "G_grad_pncc"} <= set(losses)
    assert all(np.isfinite(v) for v in losses.values()) and run.weights.is_file()


def test_runner_builds_a_textured_mesh_and_maps_from_weights(tmp_path, one_thread):
    from facetool.plugins import get_host
    from facetool.train.checkpoint import TrainState, export_weights

    torch.manual_seed(0)
    config = FaceVisionConfig(levels=3, base=4, max_channels=8)
    net = FaceVisionNet(config)
    with torch.no_grad():  # a face in the middle: correspondence bright there, black around
        net.correspondence_decoder[0][1].bias.fill_(0.0)
    path = export_weights(tmp_path / "fv.safetensors", {"G": net}, torch.float32,
                          TrainState(method="facevision", configs={"G": config}))  # fmt: skip
    spec = get_host().generators.get("facevision")
    runner = spec.load(spec.options(detail=0.0), "cpu", path)
    results = runner(torch.rand(2, 3, SIZE, SIZE))
    assert len(results) == 2
    for mesh, maps in results:
        assert set(maps) == {"depth", "correspondence", "mask"} and maps["correspondence"].shape == (SIZE, SIZE, 3)
        assert len(mesh.vertices) > 10 and len(mesh.faces) > 10
        assert mesh.uvs.shape == (len(mesh.vertices), 2) and mesh.texture is None  # the core bakes it
        assert ((mesh.uvs >= 0) & (mesh.uvs <= 1)).all() and np.isfinite(mesh.vertices).all()
    from facetool.reconstruct import reconstruct_photo

    photo = (np.random.default_rng(0).random((SIZE * 3, SIZE * 3, 3)) * 255).astype(np.uint8)
    (face,) = reconstruct_photo(photo, runner, "portrait", None, SIZE)
    assert face.mesh.texture.shape == (256, 256, 3) and face.mesh.texture.std() > 0  # painted from the photo


def test_weights_of_another_generator_type_are_refused_in_one_line(tmp_path, one_thread):
    from facetool.errors import FacetoolError
    from facetool.nets.unet import UNet, UNetConfig
    from facetool.plugins import get_host
    from facetool.train.checkpoint import TrainState, export_weights

    config = UNetConfig(levels=3, base=4, max_channels=8)
    path = export_weights(tmp_path / "unet.safetensors", {"G": UNet(config)}, torch.float32,
                          TrainState(method="facevision", configs={"G": config}))  # fmt: skip
    spec = get_host().generators.get("facevision")
    with pytest.raises(FacetoolError, match="is a UNetConfig, not a FaceVisionConfig"):
        spec.network(None, path)
