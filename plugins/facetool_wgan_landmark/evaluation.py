"""``facetool evaluate wgan-landmark --data CARTOONS``: issue 8's Table I, measured.

For every held-out face (its layout l from the labels, else the predictor's): one generated face from seeded
noise, drawn with l when the weights take a layout. Metrics:

- ``layout_error``: the predictor's points on the generated face against l, mean distance in units of the image
  side (the paper's landmark loss, normalised so 0.01 = 1.28 px at 128²). For weights that take no layout l is
  simply a real face's layout — exactly the paper's measure; for ours it is the layout asked for.
- ``layout_error_check``: the same, read by the check predictor (``weights/predictor-check.safetensors``, another
  seed; None without that file): the variants with the landmark loss were trained against the first predictor,
  never against this one (``layout_error_check_real``: its own error on the real faces).
- ``layout_error_parts``: the same, read by the parts predictor (``weights/predictor-parts.safetensors``, trained
  with each part also moved on its own: it sees where a part is drawn, P partly reads it off the head's outline;
  ``layout_error_parts_real`` its own error). Not independent for a generator trained against it (``-T predictor``):
  ``layout_error_parts_check`` is — the same recipe, another seed (``weights/predictor-parts-check.safetensors``).
- ``follow_eyes``, ``follow_nose``, ``follow_mouth`` (layout-taking weights, with the parts predictor's file): each
  face drawn again with one part of its layout moved (eyes and mouth 8.4 px wider, the nose 7.7 px lower), the parts
  predictor's reading of that move against its reading of the first face bent exactly so (:mod:`.follow`): ~1
  follows; a net that ignores the point scores ~0, or ~0.1–0.3 with the run-time warp (the card's ignoring twin).
  ``follow_eyes_check`` etc.: the same faces read by the second parts predictor.
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

    from .follow import FollowMeter
    from .predictor import (
        check_predictor_path,
        load_predictor,
        parts_check_predictor_path,
        parts_predictor_path,
        shipped_predictor_path,
    )
    from .train import layout_error, layout_points

    if net is None:
        raise UsageError("wgan-landmark has no outputs to score with --oracle: use layout_error_real / fid_floor")
    generator = net.to(request.device).eval()
    predictor = load_predictor(shipped_predictor_path(), request.device)
    # Optional readers (None without their file): each adds layout_error_<name> and layout_error_<name>_real.
    paths = {"check": check_predictor_path(), "parts": parts_predictor_path()}
    paths["parts_check"] = parts_check_predictor_path()
    readers = {name: load_predictor(path, request.device) if path.exists() else None for name, path in paths.items()}
    size = generator.config.size
    takes_layout = bool(generator.config.layout_points)

    def draw(z: torch.Tensor, layouts: torch.Tensor | None) -> torch.Tensor:
        return ((generator(z, layouts if takes_layout else None) + 1) / 2).clamp(0, 1)

    # Only the parts predictors see a nose moved alone: without their files the follow_* are not measured.
    followers = {key: readers[name] for key, name in (("", "parts"), ("_check", "parts_check"))
                 if readers[name] is not None}  # fmt: skip
    follow = FollowMeter(draw, followers, size) if takes_layout and followers else None
    data = ManifestDataset(request.data_dir, roles=("cartoon",), split=request.split, size=size)
    count = min(len(data), request.limit) if request.limit else len(data)
    noise = torch.Generator().manual_seed(request.seed)
    errors: dict[str, list[torch.Tensor]] = {}
    fakes, reals, grid = [], [], []
    for start in range(0, count, request.batch_size):
        items = [data[i] for i in range(start, min(start + request.batch_size, count))]
        images = torch.stack([item["cartoon"] for item in items]).to(request.device)
        labelled = [layout_points(item["labels"], size) for item in items]
        with torch.inference_mode():
            predicted_real = predictor(images)
            if all(p is not None for p in labelled):
                layouts = torch.tensor(labelled, dtype=torch.float32, device=images.device)
                errors.setdefault("real", []).append(layout_error(predicted_real, layouts, size))
                for name, reader in readers.items():
                    if reader is not None:
                        errors.setdefault(f"{name}_real", []).append(layout_error(reader(images), layouts, size))
            else:
                layouts = predicted_real
            z = torch.randn(len(items), generator.config.z_dim, generator=noise).to(request.device)
            fake = draw(z, layouts)
            errors.setdefault("", []).append(layout_error(predictor(fake), layouts, size))
            for name, reader in readers.items():
                if reader is not None:
                    errors.setdefault(name, []).append(layout_error(reader(fake), layouts, size))
            if follow is not None:
                follow.add(z, layouts, fake)
        fakes.append(fake.cpu())
        reals.append(images.cpu())
        grid += [(images[i].cpu(), fake[i].cpu()) for i in range(len(items))]
    backbone = load_backbone()
    real_features = backbone(torch.cat(reals))
    keys = {"layout_error": "", "layout_error_real": "real"}
    for name in readers:
        keys |= {f"layout_error_{name}": name, f"layout_error_{name}_real": f"{name}_real"}
    metrics: dict[str, Any] = {
        key: torch.cat(errors[k]).mean().item() if k in errors else None for key, k in keys.items()
    }
    metrics["fid"] = fid_from_features(backbone(torch.cat(fakes)), real_features)
    if follow is not None:
        metrics.update(follow.result())
    if request.split == "test":
        train = ManifestDataset(request.data_dir, roles=("cartoon",), split="train", size=size)
        picks = torch.randperm(len(train), generator=torch.Generator().manual_seed(request.seed))[:count]
        metrics["fid_floor"] = fid_from_features(backbone(torch.stack([train[int(i)]["cartoon"] for i in picks])),
                                                 real_features)  # fmt: skip
    notes = {
        "layout_error": "predictor on generated faces vs the layout of a held-out face, / image side",
        "grid": "rows: held-out face, the face generated with its layout (or from noise alone)",
        "fid": f"{backbone.name} features vs {count} held-out faces",
        "follow": "a part moved alone in the layout: its move on the generated face / on the face bent exactly",
    }
    return Measured(metrics=metrics, roles={"input": "layout", "target": "cartoon"}, count=count, grid=grid,
                    notes=notes)  # fmt: skip
