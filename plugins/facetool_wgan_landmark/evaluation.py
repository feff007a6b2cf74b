"""``facetool evaluate wgan-landmark --data CARTOONS``: issue 8's Table I, measured.

For every held-out face (its layout l from the labels, else the predictor's): one generated face from seeded
noise, drawn with l when the weights take a layout. Metrics:

- ``layout_error``: the predictor's points on the generated face against l, mean distance in units of the image
  side (the paper's landmark loss, normalised so 0.01 = 1.28 px at 128²). For weights that take no layout l is
  simply a real face's layout — exactly the paper's measure; for ours it is the layout asked for.
- ``layout_error_check``: the same, read by the check predictor (``weights/predictor-check.safetensors``, another
  seed; None without that file): the variants with the landmark loss were trained against the first predictor,
  never against this one (``layout_error_check_real``: its own error on the real faces).
- ``layout_error_real``: the predictor on the real faces themselves (its own error: the floor).
- ``fid``: the core's age-net features of the generated faces against the real held-out faces; ``fid_floor``: the
  same count of training faces against them.
"""

from __future__ import annotations

from typing import Any

import torch


def measure(net: Any, request: Any) -> Any:
    from facetool.data.datasets import ManifestDataset
    from facetool.errors import UsageError
    from facetool.evaluate import Measured
    from facetool.metrics.features import load_backbone
    from facetool.metrics.fid import fid_from_features

    from .predictor import check_predictor_path, load_predictor, shipped_predictor_path
    from .train import layout_error, layout_points

    if net is None:
        raise UsageError("wgan-landmark has no outputs to score with --oracle: use layout_error_real / fid_floor")
    generator = net.to(request.device).eval()
    predictor = load_predictor(shipped_predictor_path(), request.device)
    check_path = check_predictor_path()
    checker = load_predictor(check_path, request.device) if check_path.exists() else None
    size = generator.config.size
    data = ManifestDataset(request.data_dir, roles=("cartoon",), split=request.split, size=size)
    count = min(len(data), request.limit) if request.limit else len(data)
    noise = torch.Generator().manual_seed(request.seed)
    errors, checked, real_errors, check_real, fakes, reals, grid = [], [], [], [], [], [], []
    for start in range(0, count, request.batch_size):
        items = [data[i] for i in range(start, min(start + request.batch_size, count))]
        images = torch.stack([item["cartoon"] for item in items]).to(request.device)
        labelled = [layout_points(item["labels"], size) for item in items]
        with torch.inference_mode():
            predicted_real = predictor(images)
            if all(p is not None for p in labelled):
                layouts = torch.tensor(labelled, dtype=torch.float32, device=images.device)
                real_errors.append(layout_error(predicted_real, layouts, size))
                if checker is not None:
                    check_real.append(layout_error(checker(images), layouts, size))
            else:
                layouts = predicted_real
            z = torch.randn(len(items), generator.config.z_dim, generator=noise).to(request.device)
            fake = ((generator(z, layouts if generator.config.layout_points else None) + 1) / 2).clamp(0, 1)
            errors.append(layout_error(predictor(fake), layouts, size))
            if checker is not None:
                checked.append(layout_error(checker(fake), layouts, size))
        fakes.append(fake.cpu())
        reals.append(images.cpu())
        grid += [(images[i].cpu(), fake[i].cpu()) for i in range(len(items))]
    backbone = load_backbone()
    real_features = backbone(torch.cat(reals))
    metrics: dict[str, Any] = {
        "layout_error": torch.cat(errors).mean().item(),
        "layout_error_check": torch.cat(checked).mean().item() if checked else None,
        "layout_error_real": torch.cat(real_errors).mean().item() if real_errors else None,
        "layout_error_check_real": torch.cat(check_real).mean().item() if check_real else None,
        "fid": fid_from_features(backbone(torch.cat(fakes)), real_features),
    }
    if request.split == "test":
        train = ManifestDataset(request.data_dir, roles=("cartoon",), split="train", size=size)
        picks = torch.randperm(len(train), generator=torch.Generator().manual_seed(request.seed))[:count]
        metrics["fid_floor"] = fid_from_features(backbone(torch.stack([train[int(i)]["cartoon"] for i in picks])),
                                                 real_features)  # fmt: skip
    notes = {
        "layout_error": "predictor on generated faces vs the layout of a held-out face, / image side",
        "grid": "rows: held-out face, the face generated with its layout (or from noise alone)",
        "fid": f"{backbone.name} features vs {count} held-out faces",
    }
    return Measured(metrics=metrics, roles={"input": "layout", "target": "cartoon"}, count=count, grid=grid,
                    notes=notes)  # fmt: skip
