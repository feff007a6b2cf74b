"""Skin tone: the class a photo's or a cartoon's skin falls in, and whether an avatar's skin follows the person's.

Both skins are read on the same patch — an ellipse between the eyes and the mouth (cheeks and nose; brows, lips and
hairline left out) — as the median CIE Lab of its lit pixels (:data:`LIT_BAND`: no shading, nostrils, drawn lines
or highlights). The tone classes are what a generator trained with ``-T skin=true`` is told (``--skin``); ``auto``
draws the position between them whose avatar skin has the photo's typology angle (:func:`matched_positions`, via
``runner.auto_tones``; a black-and-white photo: its :func:`crop_skin_class`). ``facetool evaluate cartoon`` scores
how the avatars' skin follows the photos' (``skin_agreement``, ``skin_r``; model card, "Skin tone as a condition"
and "Skin tone between the classes").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

#: Bounds of the skin-tone classes (``net.SKIN_TONES``: light, medium, dark) on the individual typology angle,
#: ITA = atan2(L* - 50, b*) in degrees — the dermatologists' skin-colour scale (Chardon et al. 1991), which reads
#: a measured skin with less weight on its lightness alone than L* does. Its six categories grouped in pairs:
#: very light and light (> 41°), intermediate and tan (10°-41°), brown and dark (< 10°). The cartoon palette's eight
#: tones fall 4 / 1 / 3 (``facetool.data.avatars.SKIN_TONES``: ITA 78° ... -42°).
ITA_BOUNDS = (41.0, 10.0)


def typology_angle(lab: Tensor) -> Tensor:
    """(..., 3) CIE Lab -> (...) the individual typology angle in degrees."""
    return torch.atan2(lab[..., 0] - 50, lab[..., 2]) * (180 / math.pi)


def skin_class(lab: Tensor) -> Tensor:
    """(B, 3) skin Lab -> (B,) int64 class: 0 light, 1 medium, 2 dark (:data:`ITA_BOUNDS`)."""
    angle = typology_angle(lab)
    return (angle <= ITA_BOUNDS[0]).long() + (angle <= ITA_BOUNDS[1]).long()


def rgb_skin_class(rgb: Tensor) -> Tensor:
    """(B, 3) flat skin colours in [0, 1] (a cartoon's ``skin_rgb`` label / 255) -> (B,) int64 class."""
    from kornia.color import rgb_to_lab

    return skin_class(rgb_to_lab(rgb.float().clamp(0, 1)[:, :, None, None])[:, :, 0, 0])


def crop_skin_class(images: Tensor, points5: Tensor, lab: Tensor | None = None) -> Tensor:
    """(B, 3, S, S) face crops in [0, 1] with their (B, 5, 2) landmarks -> (B,) int64 skin class; a black-and-white
    crop by its skin's lightness alone (:func:`grey_skin_class`). ``lab``: their :func:`skin_lab`, if read already."""
    if lab is None:
        lab = skin_lab(images, skin_patch(points5, images.shape[-1]))
    classes = skin_class(lab)
    grey = black_and_white(images)
    if grey.any():
        classes[grey] = grey_skin_class(lab[grey, 0])
    return classes


#: A black-and-white photo has no b*, so no typology angle: its lit skin's L* at or above the first bound is light,
#: below the second dark. Fit on the 719 training crops (seed 0) turned grey, against their colour photos' classes
#: (agreement 0.890; always "light" would give 0.779); held out: 0.881 test, 0.833 val (model card, "Skin tone").
GREY_SKIN_BOUNDS = (64.5, 53.0)


def grey_skin_class(lightness: Tensor, bounds: tuple[float, float] = GREY_SKIN_BOUNDS) -> Tensor:
    """(B,) skin L* of black-and-white photos -> (B,) int64 class."""
    return (lightness < bounds[0]).long() + (lightness < bounds[1]).long()


def black_and_white(images: Tensor) -> Tensor:
    """(B, 3, S, S) in [0, 1] -> (B,) bool, as :func:`.hair.is_monochrome` decides."""
    from .hair import is_monochrome

    pixels = (images.detach().float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return torch.tensor([is_monochrome(p) for p in pixels], device=images.device)


def grey_skin_fit(crops: str | Path, split: str | None = "train") -> dict[str, Any]:
    """The :data:`GREY_SKIN_BOUNDS` that best give a labelled crop folder's colour classes from its crops turned
    black-and-white (PIL's luma), with the share of crops they agree on; ``split="test"`` etc. to score instead
    (the bounds in use, no fit)."""
    import numpy as np
    from PIL import Image

    from facetool.data.datasets import ManifestDataset

    data = ManifestDataset(crops, roles=("photo",), split=split, size=128)
    colour, grey = [], []
    for i in range(len(data)):
        photo, points = data[i]["photo"][None], data[i]["points5"][None]
        pixels = (photo[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        luma = Image.fromarray(pixels).convert("L").convert("RGB")
        flat = torch.from_numpy(np.array(luma)).permute(2, 0, 1)[None].float() / 255
        colour.append(int(crop_skin_class(photo, points)[0]))
        grey.append(float(skin_lab(flat, skin_patch(points, 128))[0, 0]))
    want, lightness = torch.tensor(colour), torch.tensor(grey)
    if split != "train":
        hits = grey_skin_class(lightness) == want
        return {"faces": len(want), "bounds": GREY_SKIN_BOUNDS, "agreement": round(float(hits.float().mean()), 3)}
    best = max((float((grey_skin_class(lightness, (a, b)) == want).float().mean()), a, b)
                for a in np.arange(40, 90, 0.5) for b in np.arange(30, 80, 0.5) if b <= a)  # fmt: skip
    return {"faces": len(want), "bounds": (float(best[1]), float(best[2])), "agreement": round(best[0], 3),
            "classes": torch.bincount(want, minlength=3).tolist()}  # fmt: skip


def matched_positions(photo_value: Tensor, avatar_values: Tensor, knots: Tensor | Sequence[float]) -> Tensor:
    """(B,) a skin measure of each photo (its typology angle, or its lightness), (B, K) the same measure of its
    avatars drawn at the (K,) ascending tone positions ``knots`` -> (B,) float: for each face the position whose
    avatar skin measures as the photo's, read linearly between the first two neighbouring knots that bracket it; the
    knot nearest in value where none does (a skin lighter or darker than any the net draws for this face). NaN
    readings never bracket nor come nearest; a photo read as NaN gets the first knot."""
    out = []
    knots = knots.tolist() if isinstance(knots, Tensor) else [float(k) for k in knots]  # one device sync at most
    for want, drawn in zip(photo_value.tolist(), avatar_values.tolist(), strict=True):
        position = knots[0]  # a photo without a reading (NaN): the first knot
        if not math.isnan(want):
            position = None
            for k in range(len(drawn) - 1):
                a, b = drawn[k], drawn[k + 1]
                if min(a, b) <= want <= max(a, b):  # False when either is NaN
                    share = 0.0 if a == b else (want - a) / (b - a)
                    position = knots[k] + share * (knots[k + 1] - knots[k])
                    break
            if position is None:
                gaps = [abs(d - want) if not math.isnan(d) else math.inf for d in drawn]
                position = knots[gaps.index(min(gaps))]
        out.append(position)
    return torch.tensor(out, dtype=torch.float32, device=photo_value.device)


def skin_patch(points5: Tensor, size: int) -> Tensor:
    """(B, 5, 2) landmarks in crop pixels -> (B, S, S) bool: an ellipse centred between the eye centre and the mouth
    centre, 0.45 × 0.35 eye distances across."""
    eyes, mouth = (points5[:, 0] + points5[:, 1]) / 2, (points5[:, 3] + points5[:, 4]) / 2
    centre = (eyes + mouth) / 2
    eye_distance = (points5[:, 1] - points5[:, 0]).norm(dim=-1).clamp(min=1.0)
    coords = torch.arange(size, dtype=torch.float32, device=points5.device)
    x = (coords[None, None, :] - centre[:, 0, None, None]) / (0.45 * eye_distance[:, None, None])
    y = (coords[None, :, None] - centre[:, 1, None, None]) / (0.35 * eye_distance[:, None, None])
    return x**2 + y**2 <= 1


#: The patch's pixels a skin colour is read from, as lightness quantiles: its lit part. Shading, which a photo's light
#: puts on a face and a colorimeter does not see, darkens the lower half; the top 5 % are highlights (and an
#: avatar's drawn lines fall below). On 803 generated crops, read from the 25-90 % band "dark" took in 91, mostly
#: light-skinned people in shadow or warm light (of ten looked at: nine); from this band 27 (model card).
LIT_BAND = (0.6, 0.95)


def skin_lab(images: Tensor, patch: Tensor) -> Tensor:
    """(B, 3, S, S) RGB in [0, 1] and (B, S, S) patches -> (B, 3) the skin's Lab (L* 0-100): the median of the
    patch's pixels in :data:`LIT_BAND`."""
    from kornia.color import rgb_to_lab

    lab = rgb_to_lab(images.float().clamp(0, 1))
    out = []
    for i in range(len(images)):
        pixels = lab[i][:, patch[i]] if int(patch[i].sum()) >= 4 else lab[i].flatten(1)  # a tiny face: all of it
        low, high = torch.quantile(pixels[0], LIT_BAND[0]), torch.quantile(pixels[0], LIT_BAND[1])
        out.append(pixels[:, (pixels[0] >= low) & (pixels[0] <= high)].median(dim=1).values)
    return torch.stack(out)


def save_skin_grid(crops: str | Path, out: str | Path, count: int = 8, split: str | None = "test",
                   weights: str | Path | None = None) -> list[float]:  # fmt: skip
    """The model card's skin figure: ``count`` faces of a labelled crop folder, evenly spaced from the lightest to
    the darkest photo skin (typology angle), in columns; rows: the photo, the avatar with ``--skin auto`` as it was
    (the photo's class), as it is (:func:`.runner.auto_tones`), then light, medium, dark — own hair, cleaned and on a
    plain backdrop as ``stylize`` draws them. Written as JPEG (quality 90); returns the auto positions drawn."""
    import numpy as np
    from PIL import Image

    from facetool.data.datasets import ManifestDataset

    from . import _generator, variant_weights
    from .cutout import flatten_background
    from .runner import auto_tones, condition_inputs, draw_avatars

    generator = _generator(Path(weights) if weights else variant_weights("local")).eval()
    data = ManifestDataset(crops, roles=("photo",), split=split, size=128)
    items = [data[i] for i in range(len(data))]
    angles = torch.cat([typology_angle(skin_lab(x["photo"][None], skin_patch(x["points5"][None], 128))) for x in items])
    order = angles.argsort(descending=True)  # lightest first
    picks = order[torch.linspace(0, len(order) - 1, count).round().long()].tolist()
    batch = ManifestDataset.collate([items[i] for i in picks])
    photos, points = batch["photo"].float(), batch["points5"].float()
    hair = [(labels or {}).get("hair") or "brown" for labels in batch["labels"]]
    with torch.inference_mode():
        labels, heatmaps = condition_inputs(generator, photos, points, hair)
        positions = auto_tones(generator, photos, points, labels, heatmaps)
        tones = [crop_skin_class(photos, points).float(), positions] + [torch.full((count,), t) for t in (0.0, 1, 2)]
        drawn = [flatten_background(draw_avatars(generator, photos, points, hair, "median", t)) for t in tones]
    rows = [photos, *drawn]
    sheet = torch.cat([torch.cat(list(row), dim=2) for row in rows], dim=1)
    pixels = (sheet.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(out, quality=90)
    return [round(float(p), 2) for p in positions]
