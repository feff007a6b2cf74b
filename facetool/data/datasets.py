"""Training-side reading of a data folder: ``ManifestDataset`` gives each item's role files as tensors.

Imported by training code only (it imports torch at the top); the CLI modules never import it, so
``facetool --help`` stays fast. Reading the files themselves (:func:`load_role_array`) needs numpy and Pillow only.

::

    from facetool.data.datasets import ManifestDataset
    data = ManifestDataset("data/apdrawing", roles=("photo", "drawing"), split="train", size=256)
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True, collate_fn=ManifestDataset.collate)
    batch = next(iter(loader))  # batch["photo"]: (8, 3, 256, 256), batch["drawing"]: (8, 1, 256, 256)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from facetool.data.show import points_and_pose, roles_of
from facetool.errors import FacetoolError, UsageError

#: Channels each role is read with (other roles: 3). Drawings, depth and masks are single-channel maps.
ROLE_CHANNELS = {"photo": 3, "cartoon": 3, "pncc": 3, "loomis": 1, "drawing": 1, "depth": 1, "mask": 1}
#: Roles holding per-pixel labels or measurements: resized with nearest neighbour, never blended.
NEAREST_ROLES = {"mask"}


def load_role_array(path: Path, channels: int, size: tuple[int, int] | None = None, nearest: bool = False) -> Any:
    """One role file -> (C, H, W) float32 numpy in [0, 1].

    path: image (8/16-bit, grayscale, RGB, RGBA composited over white, palette) or ``.npy`` (H, W) / (H, W, C),
    uint8 / uint16 scaled by their range, float kept as is. channels: 1 (luma) or 3 (RGB). size: (H, W) to resize.
    """
    from PIL import Image, ImageOps

    path = Path(path)
    if path.suffix.lower() == ".npy":
        array = np.load(path, allow_pickle=False)
        image = None
    else:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            array = np.asarray(image)
            array = array.astype(np.float32) / (65535.0 if array.dtype != np.float32 else 1.0)
        else:
            if image.mode in ("RGBA", "LA", "PA", "P"):
                rgba = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
            array = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    array = _to_unit_float(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] != channels:
        if channels == 1:
            array = array[:, :, :3] @ np.array([0.299, 0.587, 0.114], np.float32)[:, None]
        else:
            array = np.repeat(array[:, :, :1], 3, axis=2) if array.shape[2] == 1 else array[:, :, :3]
    if size is not None and array.shape[:2] != tuple(size):
        array = _resize(array, size, nearest)
    return np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32)


def _to_unit_float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if array.dtype == bool:
        return array.astype(np.float32)
    return array.astype(np.float32)


def _resize(array: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
    """(H, W, C) float -> (h, w, C), channel by channel through Pillow's float mode (no 8-bit rounding)."""
    from PIL import Image

    h, w = size
    resample = Image.NEAREST if nearest else Image.BICUBIC
    planes = [np.asarray(Image.fromarray(array[:, :, c]).resize((w, h), resample)) for c in range(array.shape[2])]
    out = np.stack(planes, axis=2)
    return out if nearest else np.clip(out, 0.0, 1.0)


def _file_size(path: Path) -> tuple[int, int] | None:
    """(H, W) of an image or .npy file, read from its header."""
    if path.suffix.lower() == ".npy":
        return tuple(np.load(path, mmap_mode="r").shape[:2])
    from PIL import Image

    with Image.open(path) as image:
        return image.height, image.width


class ManifestDataset(Dataset):
    """The items of a data folder (``manifest.jsonl``), optionally one side of ``splits.json``.

    Args:
        root: the folder.
        roles: roles every returned item has (items lacking one are left out; see ``skipped``).
        split: "train", "test" or None (all items).
        size: None (files' own size), an int (square) or (H, W).
        channels: per-role channel overrides of :data:`ROLE_CHANNELS`.

    Item: {"id": str, <role>: (C, H, W) float32 tensor in [0, 1] per role, "labels": dict, and, when labels have
    5 points, "points5": (5, 2) float32 tensor in pixels of the returned size; likewise "points68": (68, 2) when
    they have 68 (``facetool data crops``)}.
    """

    def __init__(
        self,
        root: str | Path,
        roles: Sequence[str] = ("photo", "drawing"),
        split: str | None = "train",
        size: int | tuple[int, int] | None = None,
        channels: dict[str, int] | None = None,
    ) -> None:
        from facetool.data.common import MANIFEST, read_manifest

        self.root = Path(root)
        if not (self.root / MANIFEST).is_file():
            raise UsageError(f"{self.root}: no {MANIFEST} (not a folder made by a facetool data command)")
        if split not in (None, "train", "test"):
            raise UsageError(f"split {split!r}: must be 'train', 'test' or None")
        self.roles = tuple(roles)
        self.size = (size, size) if isinstance(size, int) else (tuple(size) if size is not None else None)
        self.channels = {r: (channels or {}).get(r, ROLE_CHANNELS.get(r, 3)) for r in self.roles}
        records = read_manifest(self.root)
        if split is not None:
            from facetool.data.splits import read_splits

            keep = set(read_splits(self.root)[split])
            records = [r for r in records if r["id"] in keep]
        self.items = []
        self.skipped = 0
        for record in records:
            files = roles_of(record)
            if all(role in files for role in self.roles):
                self.items.append((record, {role: self.root / files[role] for role in self.roles}))
            else:
                self.skipped += 1
        if not self.items:
            raise FacetoolError(f"{self.root}: no {split or 'items'} with roles {', '.join(self.roles)}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record, paths = self.items[index]
        item: dict[str, Any] = {"id": record["id"], "labels": record.get("labels") or {}}
        for role in self.roles:
            array = load_role_array(paths[role], self.channels[role], self.size, role in NEAREST_ROLES)
            item[role] = torch.from_numpy(array)
        found = points_and_pose(item["labels"])[0]
        dense = item["labels"].get("points68")
        for name, points, count in (("points5", found.get("points5"), 5), ("points68", dense, 68)):
            if points is None or (name == "points68" and np.size(points) != 2 * count):  # 5 points must be 5
                continue
            p = np.asarray(points, dtype=np.float32).reshape(count, 2)
            reference = paths["photo"] if "photo" in paths else paths[self.roles[0]]
            source_size = _file_size(reference)
            if self.size is not None and source_size is not None:
                # pixel centres at integers: scale about the -0.5 edge
                p = (p + 0.5) * np.array([self.size[1] / source_size[1], self.size[0] / source_size[0]]) - 0.5
            item[name] = torch.from_numpy(p.astype(np.float32))
        return item

    @staticmethod
    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        """Stack tensors; keep ids and labels (ragged JSON) as lists. Use as a DataLoader ``collate_fn``."""
        out: dict[str, Any] = {}
        for key in dict.fromkeys(k for item in batch for k in item):  # every key any item has ("flipped" …)
            values = [b.get(key) for b in batch]
            tensors = all(isinstance(v, torch.Tensor) for v in values)
            out[key] = torch.stack(values) if tensors else values
        return out
