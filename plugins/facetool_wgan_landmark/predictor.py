"""The landmark predictor P: trained on the data factory's cartoon faces and their exact layout points, then frozen
for the landmark loss, ``--like`` on drawings and the evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .net import LandmarkPredictor, PredictorConfig
from .train import layout_error, layout_points, mirror_layout


def shipped_predictor_path() -> Path:
    return Path(__file__).parent / "weights" / "predictor.safetensors"


def colour_predictor_path() -> Path:
    """P's recipe trained on every hue, saturation and grey (``--colour``): it finds the parts by their shapes, so
    ``--like`` reads a drawing of any colours with it (a landmark loss against it: ``-T predictor=`` this; card)."""
    return Path(__file__).parent / "weights" / "predictor-colour.safetensors"


def check_predictor_path() -> Path:
    """A second predictor, same recipe, another seed: the generators were never trained against it, so it scores
    their layouts without the risk that they learnt to please the first one."""
    return Path(__file__).parent / "weights" / "predictor-check.safetensors"


def parts_predictor_path() -> Path:
    """P's recipe with each part also moved on its own (``--parts 3``): it reads a part where it is drawn rather than
    where the head's outline puts it (P does not see a nose moved alone), so the evaluation's part readings use it."""
    return Path(__file__).parent / "weights" / "predictor-parts.safetensors"


def parts_check_predictor_path() -> Path:
    """The parts predictor's recipe, another seed (1), as long: it reads parts as well (card), and no generator here
    was trained against it, so it scores the follow ratios of one trained against the parts predictor."""
    return Path(__file__).parent / "weights" / "predictor-parts-check.safetensors"


def _load_split(folder: Path, split: str | None, size: int) -> tuple[Tensor, Tensor]:
    from facetool.data.datasets import ManifestDataset

    data = ManifestDataset(folder, roles=("cartoon",), split=split, size=size)
    images, layouts = [], []
    for i in range(len(data)):
        item = data[i]
        points = layout_points(item["labels"], size)
        if points is not None:
            images.append(item["cartoon"])
            layouts.append(points)
    if not images:
        from facetool.errors import UsageError

        raise UsageError(f"{folder}: no items with layout points (facetool data cartoons makes them)")
    return torch.stack(images), torch.tensor(layouts, dtype=torch.float32)


def train_predictor(cartoons: str | Path, *, steps: int = 2000, batch: int = 32, lr: float = 1e-3, size: int = 128,
                    seed: int = 0, colour: bool = False, parts: float = 0.0, log: Any = None,
                    ) -> tuple[LandmarkPredictor, dict[str, Any]]:  # fmt: skip
    """Train P on a cartoon folder's train split (augmented: rotate / zoom / shift with the points, mirror; with
    ``colour`` also any hue, saturation, brightness, contrast and grey; with ``parts`` > 0 each point first moved on
    its own by that many px, sd, the image bent with it) and measure its layout error on the test split. Returns
    (P in eval mode, record)."""
    from facetool.data.augment import augment, color_jitter, move_parts

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    folder = Path(cartoons)
    if not (folder / "splits.json").is_file():  # the error it prints must be on faces it never trained on
        from facetool.errors import UsageError

        raise UsageError(f"--cartoons {folder}: no splits.json; run facetool data split {folder} first")
    train_x, train_l = _load_split(folder, "train", size)
    test_x, test_l = _load_split(folder, "test", size)
    predictor = LandmarkPredictor(PredictorConfig())
    optimizer = torch.optim.Adam(predictor.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for step in range(1, steps + 1):
        pick = torch.randint(0, len(train_x), (batch,), generator=generator)
        images, points = train_x[pick], train_l[pick]
        if parts:  # P then reads each part where it is, not where the head's outline says it should be (card)
            images, points = move_parts(images, points, generator, sigma=parts)
        images, points = augment(images, points, generator)
        flip = torch.rand(batch, generator=generator) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        points = torch.where(flip[:, None, None], mirror_layout(points, size), points)
        if colour:  # P then finds parts by shape: a generator trained against it cannot answer with a colour blob
            images = color_jitter(images, generator)
        loss = layout_error(predictor(images), points, size).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if log is not None and (step % 200 == 0 or step == steps):
            log(f"step {step}/{steps}  train error {loss.item():.4f}")
    predictor.eval()
    with torch.no_grad():
        error = layout_error(predictor(test_x), test_l, size)
    record = {"steps": steps, "batch": batch, "lr": lr, "seed": seed, "colour": colour, "parts": parts,
              "train_items": len(train_x), "test_items": len(test_x), "test_error": round(error.mean().item(), 5),
              "test_error_px": round(error.mean().item() * size, 3), "size": size}  # fmt: skip
    return predictor, record


def shipped_predictor_paths() -> list[Path]:
    """Every predictor file that ships (P, its check, colour, parts, the parts check), in the card's order."""
    return [shipped_predictor_path(), check_predictor_path(), colour_predictor_path(), parts_predictor_path(),
            parts_check_predictor_path()]  # fmt: skip


def measure_predictor(path: str | Path, cartoons: str | Path, size: int = 128) -> dict[str, Any]:
    """A saved predictor's layout error on a cartoon folder's test split (what training prints as ``test_error``)."""
    folder = Path(cartoons)
    if not (folder / "splits.json").is_file():
        from facetool.errors import UsageError

        raise UsageError(f"--cartoons {folder}: no splits.json; run facetool data split {folder} first")
    test_x, test_l = _load_split(folder, "test", size)
    with torch.no_grad():
        error = layout_error(load_predictor(path)(test_x), test_l, size)
    return {"file": str(path), "test_items": len(test_x), "test_error": round(error.mean().item(), 5),
            "test_error_px": round(error.mean().item() * size, 3)}  # fmt: skip


def save_predictor(predictor: LandmarkPredictor, path: str | Path, record: dict[str, Any]) -> None:
    from facetool.models.common import save_net_with_record

    save_net_with_record(path, predictor, {"net": "layout-predictor", "config": predictor.config.to_dict(), **record})


def load_predictor(path: str | Path, device: str = "cpu") -> LandmarkPredictor:
    """P from :func:`save_predictor` (fp32, eval mode, frozen)."""
    from safetensors.torch import load_file

    from facetool.models.common import net_record

    config = PredictorConfig.from_dict(net_record(path)["config"])
    predictor = LandmarkPredictor(config)
    state = load_file(str(path))
    predictor.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    predictor.requires_grad_(False)
    return predictor.to(device).eval()
