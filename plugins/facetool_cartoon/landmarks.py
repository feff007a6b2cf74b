"""Approach A's landmark regressor (issue 7): MTCNN's O-Net run on the whole aligned crop, fine-tuned on the data
factory's exact cartoon landmarks (and the photos' labelled 5 points) so one differentiable net reads the layout of
real, cartoon and generated faces alike — the landmark consistency loss ‖R(G(x, l)) − l‖ needs gradients through R.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facetool.nets.mtcnn import ONet

ONET_SIZE = 48


class LandmarkRegressor(nn.Module):
    """image (B, 3, S, S) in [0, 1] -> (B, 5, 2) pixel (x, y), pixel centres at integers: left eye, right eye, nose,
    mouth left, mouth right (as seen in the image)."""

    def __init__(self, onet: ONet | None = None) -> None:
        super().__init__()
        self.onet = onet if onet is not None else ONet()

    def forward(self, image: Tensor) -> Tensor:
        size = image.shape[-1]
        small = F.interpolate(image, size=(ONET_SIZE, ONET_SIZE), mode="bilinear", antialias=True, align_corners=False)
        _, _, points = self.onet((small * 255 - 127.5) / 128)  # O-Net's input normalisation
        return points * size - 0.5  # the crop's [0, 1] continuous coordinates -> pixel centres


def pretrained_regressor(device: str = "cpu") -> LandmarkRegressor:
    """The regressor starting from MTCNN's released O-Net (asset ``mtcnn-onet``)."""
    from facetool.nets.loaders import load_mtcnn

    return LandmarkRegressor(load_mtcnn(device).onet).to(device)


def interocular_nme(pred: Tensor, target: Tensor) -> Tensor:
    """(B, 5, 2) each -> (B,) mean point error over the distance between the target's eye centres."""
    eyes = (target[:, 0] - target[:, 1]).norm(dim=-1).clamp_min(1e-6)
    return (pred - target).norm(dim=-1).mean(dim=-1) / eyes


# ------------------------------------------------------------------------------------------------ fine-tuning


def _batch(dataset: Any, role: str, indices: list[int]) -> tuple[Tensor, Tensor]:
    items = [dataset[i] for i in indices]
    return torch.stack([it[role] for it in items]), torch.stack([it["points5"] for it in items])


def _jitter(images: Tensor, points: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """The GAN's own augmentation (rotate ±15°, zoom 1–1.3, shift) and a random mirror, points moved alike."""
    from facetool.data.augment import augment

    images, points = augment(images, points, generator)
    flip = torch.rand(len(images), generator=generator) < 0.5
    mirrored = points.clone()
    mirrored[..., 0] = images.shape[-1] - 1 - mirrored[..., 0]
    mirrored = mirrored[:, [1, 0, 2, 4, 3]]
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    return images, torch.where(flip[:, None, None], mirrored, points)


def finetune_regressor(
    cartoons: str | Path,
    photos: str | Path,
    *,
    steps: int = 800,
    batch: int = 16,
    lr: float = 1e-4,
    size: int = 128,
    seed: int = 0,
    log: Any = None,
) -> tuple[LandmarkRegressor, dict[str, Any]]:
    """Fine-tune the released O-Net on a cartoon folder (``facetool data cartoons``: exact points) and a photo-crop
    folder (``facetool data crops``: the labelled 5 points) together, ``batch`` of each per step, both augmented.

    Returns the regressor (eval mode, CPU) and {"nme": {"cartoon", "photo"} before/after on the test splits}.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    domains = {"cartoon": Path(cartoons), "photo": Path(photos)}
    train = {role: _dataset(folder, role, "train", size) for role, folder in domains.items()}
    test = {role: _dataset(folder, role, "test", size) for role, folder in domains.items()}
    regressor = pretrained_regressor()

    def measure() -> dict[str, float]:
        regressor.eval()
        with torch.no_grad():
            out = {}
            for role, data in test.items():
                x, p = _batch(data, role, list(range(len(data))))
                out[role] = round(interocular_nme(regressor(x), p).mean().item(), 4)
        regressor.train()
        return out

    before = measure()
    optimizer = torch.optim.Adam(regressor.parameters(), lr=lr)
    for step in range(1, steps + 1):
        xs, ps = [], []
        for role, data in train.items():
            indices = torch.randint(0, len(data), (batch,), generator=generator).tolist()
            x, p = _jitter(*_batch(data, role, indices), generator)
            xs.append(x)
            ps.append(p)
        loss = interocular_nme(regressor(torch.cat(xs)), torch.cat(ps)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if log is not None and (step % 100 == 0 or step == steps):
            log(f"step {step}/{steps}  train NME {loss.item():.4f}")
    after = measure()
    return regressor.eval(), {"nme_before": before, "nme_after": after, "steps": steps, "batch": batch, "lr": lr,
                              "seed": seed, "train_items": {r: len(d) for r, d in train.items()},
                              "test_items": {r: len(d) for r, d in test.items()}}  # fmt: skip


def _dataset(folder: Path, role: str, split: str, size: int) -> Any:
    from facetool.data.datasets import ManifestDataset

    if not (folder / "splits.json").is_file():  # the held-out NME it prints must be on items it never trained on
        from facetool.errors import UsageError

        raise UsageError(f"{folder}: no splits.json; run facetool data split {folder} first")
    _check_template(folder)
    return ManifestDataset(folder, roles=(role,), split=split, size=size)


def _check_template(folder: Path) -> None:
    """Photo crops must be aligned as the avatars are (the points are learnt in that frame)."""
    from facetool.data.common import read_manifest
    from facetool.errors import UsageError

    from .runner import TEMPLATE

    made_with = {(r.get("labels") or {}).get("template") for r in read_manifest(folder)} - {None}
    if made_with and made_with != {TEMPLATE}:
        raise UsageError(
            f"{folder}: crops at the {', '.join(sorted(made_with))} template; make them with facetool data crops "
            f"PHOTOS --template {TEMPLATE}"
        )


def save_regressor(regressor: LandmarkRegressor, path: str | Path, card: dict[str, Any]) -> None:
    """fp16 safetensors with the fine-tuning record in the metadata, written atomically."""
    from facetool.models.common import save_net_with_record

    save_net_with_record(path, regressor, {"net": "cartoon-landmarks", **card})


def load_regressor(path: str | Path, device: str = "cpu") -> LandmarkRegressor:
    """A regressor saved by :func:`save_regressor` (fp32, eval mode, frozen)."""
    from safetensors.torch import load_file

    regressor = LandmarkRegressor()
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    regressor.load_state_dict(state)
    for parameter in regressor.parameters():
        parameter.requires_grad_(False)
    return regressor.to(device).eval()


def shipped_regressor_path() -> Path:
    """The fine-tuned regressor that ships with the plugin (``weights/landmarks.safetensors``)."""
    return Path(__file__).parent / "weights" / "landmarks.safetensors"
