"""Hair colour of an aligned crop.

Photos (``--hair auto``): the core's hair labeller (:func:`facetool.data.labels.hair_colour`, the one that labelled
the training photos), run on the crop with its 5 points and its own person mask.

Avatars (the evaluation's hair accuracy): :class:`HairMeter`, a small CNN trained on the cartoon set's exact hair
labels. The photo labeller reads cartoons poorly (69.5 % on the 105 held-out cartoons: their black outlines and
flat palettes are not what its region and thresholds were set on), so the avatars are judged by a net that learned
what a cartoon's hair of each colour looks like, checked on held-out cartoons before it is trusted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facetool.align import get_template

from .net import HAIR_COLOURS


def _face(points5: np.ndarray, points68: np.ndarray | None = None):
    from facetool.faces import Face

    low, high = points5.min(0), points5.max(0)
    pad = (high - low).max() * 0.6
    dense = None if points68 is None else points68.astype(np.float32)
    return Face(box=np.concatenate([low - pad, high + pad]), score=1.0, points5=points5.astype(np.float32),
                points68=dense)  # fmt: skip


def photo_hair(crop: Tensor, points5: Tensor | None = None, points68: Tensor | None = None) -> str | None:
    """crop (3, S, S) in [0, 1] aligned to the avatar template; points5 (5, 2) crop pixels (None: the template's),
    points68 (68, 2) when the detector gave them -> "black" | "brown" | "blonde" | "grey", or None when the crop
    shows no measurable hair. With 68 points the labeller frames the head from the jaw and brows as the data
    factory's labels were made (held-out agreement with them 0.780 -> 0.854 test, 0.708 -> 0.833 val; model card,
    "`--hair auto` with 68 points"); 5 points give only the eyes, nose and mouth."""
    from facetool.data.labels import foreground_mask, hair_colour

    size = crop.shape[-1]
    if points5 is None:
        points5 = get_template("avatar").tensor(size)
    image = (crop.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    dense = None if points68 is None else points68.detach().float().cpu().numpy()
    face = _face(points5.detach().float().cpu().numpy(), dense)
    found = hair_colour(image, face, foreground_mask(image, face))
    if found is None:
        return None
    return grey_photo_hair(found["lab"][0]) if is_monochrome(image) else found["class"]


# A black-and-white photo keeps only the hair's lightness, and the labeller's colour rules then call any hair of
# mid lightness grey (no chroma) and brown hair black (its black threshold is L* < 30). Lightness alone, set on
# the hair of 200 generated photos (seed 0) turned grey, against their colour labels: darker than L* 10 black,
# lighter than 54 blonde, else brown; never grey — a grey photo cannot tell grey hair from the rest. On 200 other
# photos (seed 1) it names the colour photo's label for 52.5 % of them, the colour rules 34.0 % (model card).
GREY_PHOTO_BLACK_BELOW = 10.0
GREY_PHOTO_BLONDE_FROM = 54.0


def grey_photo_hair(lightness: float) -> str:
    """Hair L* (0-100) measured on a black-and-white photo -> "black" | "brown" | "blonde"."""
    if lightness < GREY_PHOTO_BLACK_BELOW:
        return "black"
    return "blonde" if lightness >= GREY_PHOTO_BLONDE_FROM else "brown"


def is_monochrome(image: np.ndarray, spread: int = 6) -> bool:
    """(H, W, 3) uint8 -> whether it is a black-and-white picture: 98 % of its pixels have R, G and B within
    ``spread`` of each other (JPEG noise and a scanner's faint tint stay under it; sepia does not)."""
    channels = image.astype(np.int16)
    return bool(np.percentile(channels.max(axis=2) - channels.min(axis=2), 98) <= spread)


def auto_hair_agreement(crops: str | Path, split: str | None = None, use_points68: bool = True) -> dict[str, Any]:
    """How often ``--hair auto`` names a labelled crop folder's hair label (``facetool data crops``), on each crop
    as it is and made black-and-white (PIL's luma): {"faces", "colour", "grey", "grey_confusion": {label: {pick:
    count}}}. No hair measured counts as brown, as in the runner. ``use_points68``: the crops' 68 points too, as
    ``stylize`` gives them when the detector has them (False: the 5 points alone)."""
    from PIL import Image

    from facetool.data.datasets import ManifestDataset

    faces, hits, confusion = 0, {"colour": 0, "grey": 0}, {}
    for record, files in ManifestDataset(crops, roles=("photo",), split=split).items:
        label = record["labels"].get("hair")
        if label not in HAIR_COLOURS:
            continue
        faces += 1
        picture = Image.open(files["photo"]).convert("RGB")
        points5 = torch.tensor(record["labels"]["points5"], dtype=torch.float32)
        dense = record["labels"].get("points68") if use_points68 else None
        points68 = None if dense is None else torch.tensor(dense, dtype=torch.float32)
        for kind, image in (("colour", picture), ("grey", picture.convert("L").convert("RGB"))):
            crop = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
            pick = photo_hair(crop, points5, points68) or "brown"
            hits[kind] += pick == label
            if kind == "grey":
                confusion.setdefault(label, {}).setdefault(pick, 0)
                confusion[label][pick] += 1
    rates = {kind: round(count / max(faces, 1), 3) for kind, count in hits.items()}
    return {"faces": faces, **rates, "grey_confusion": confusion}


def hair_batch(images: Tensor, points5: Tensor | None = None) -> list[str | None]:
    """images (B, 3, S, S) in [0, 1] -> one class (or None) per image."""
    return [photo_hair(image, None if points5 is None else points5[i]) for i, image in enumerate(images)]


class HairMeter(nn.Module):
    """avatars (B, 3, S, S) in [0, 1] -> (B, 4) logits over :data:`.net.HAIR_COLOURS` (read at 64²)."""

    def __init__(self, base: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for i in range(4):  # 64 -> 4
            out = base * 2**i
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, len(HAIR_COLOURS))

    def forward(self, images: Tensor) -> Tensor:
        small = F.interpolate(images, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
        return self.head(self.features(small * 2 - 1).mean(dim=(2, 3)))


def train_hair_meter(cartoons: str | Path, *, steps: int = 1500, batch: int = 32, lr: float = 1e-3,
                     seed: int = 0) -> tuple[HairMeter, dict[str, Any]]:  # fmt: skip
    """Train :class:`HairMeter` on a cartoon folder's train split (augmented: rotate / zoom / shift, mirror) and
    measure its accuracy on the test split. Returns (meter in eval mode, record)."""
    from facetool.data.augment import augment
    from facetool.data.datasets import ManifestDataset

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    folder = Path(cartoons)
    split = (folder / "splits.json").is_file()
    train = ManifestDataset(folder, roles=("cartoon",), split="train" if split else None, size=128)
    test = ManifestDataset(folder, roles=("cartoon",), split="test" if split else None, size=128)

    def load(data: Any, indices: list[int]) -> tuple[Tensor, Tensor]:
        items = [data[i] for i in indices]
        labels = torch.tensor([HAIR_COLOURS.index(it["labels"]["hair"]) for it in items])
        return torch.stack([it["cartoon"] for it in items]), labels

    meter = HairMeter()
    optimizer = torch.optim.Adam(meter.parameters(), lr=lr)
    for _ in range(steps):
        images, labels = load(train, torch.randint(0, len(train), (batch,), generator=generator).tolist())
        images, _ = augment(images, torch.zeros(len(images), 1, 2) + 64, generator, keep_inside=False)
        flip = torch.rand(len(images), generator=generator) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        loss = F.cross_entropy(meter(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    meter.eval()
    with torch.no_grad():
        images, labels = load(test, list(range(len(test))))
        accuracy = (meter(images).argmax(1) == labels).float().mean().item()
    record = {"steps": steps, "batch": batch, "lr": lr, "seed": seed, "train_items": len(train),
              "test_items": len(test), "test_accuracy": round(accuracy, 4)}  # fmt: skip
    return meter, record


def shipped_meter_path() -> Path:
    return Path(__file__).parent / "weights" / "hair-meter.safetensors"


def save_meter(meter: HairMeter, path: str | Path, record: dict[str, Any]) -> None:
    from facetool.models.common import save_net_with_record

    save_net_with_record(path, meter, {"net": "hair-meter", **record}, dtype=torch.float32)


def load_meter(path: str | Path | None = None, device: str = "cpu") -> HairMeter:
    from safetensors.torch import load_file

    meter = HairMeter()
    meter.load_state_dict(load_file(str(path or shipped_meter_path())))
    return meter.to(device).eval()


def avatar_hair(meter: HairMeter, avatars: Tensor) -> list[str]:
    """avatars (B, 3, S, S) in [0, 1] -> the meter's colour name per avatar."""
    with torch.no_grad():
        return [HAIR_COLOURS[i] for i in meter(avatars.float()).argmax(1).tolist()]
