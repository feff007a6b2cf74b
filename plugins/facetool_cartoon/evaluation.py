"""``facetool evaluate cartoon``: the issue's measured replacement for the paper's human scores.

``--data`` is a photo-crop folder (``facetool data crops``, avatar template, its test split by default); every
photo is drawn once per hair colour. Metrics:

- ``hair_accuracy``: the share of avatars whose hair the :class:`.hair.HairMeter` reads as the colour asked for
  (over all photos × 4 colours), and ``hair_accuracy_<colour>`` per colour. ``hair_meter_accuracy`` is the
  meter's own accuracy on held-out real cartoons (its record): the metric cannot be trusted beyond it.
- ``auto_hair_pick`` / ``auto_hair_avatar``: ``--hair auto`` as ``stylize`` runs it (framed by the item's 68 points
  where it has them), on the photos with a hair label: the share whose hair it reads as the label, and the share
  whose avatar, drawn in the colour it read, the meter reads as the label — the user's end-to-end hair colour.
- ``nme``: landmark agreement — the evaluation regressor's 5 points on each avatar against the photo's labelled
  points, after the similarity that best aligns them (so only the layout counts, not where the face sits),
  over the photo's eye distance. ``nme_photo`` is the same regressor on the photos themselves (how much of
  ``nme`` is the regressor's own error); ``nme_template`` is the avatar template's fixed layout against the
  photos' (what an avatar that ignores the person's layout would score).
- ``-O tight=F`` cuts each photo's four sides by the fraction F and fills what was cut as ``facetool stylize``
  fills a crop past the photo with the same ``-O padding`` (a face photographed tight); ``tight_change`` is then
  the mean absolute difference, in [0, 1], between each avatar (own hair colour) and the uncut photo's.
- ``checkerboard`` and ``grain`` (:mod:`facetool.metrics.texture`) of the avatars (own hair colour): the spectrum's
  peaks at the upsampling artefacts' frequencies, and the speckle a 3×3 median removes; with ``-O cartoons`` also
  ``checkerboard_real`` / ``grain_real`` of the held-out cartoons, what a clean drawing scores.
- ``-O crowd=F`` puts a slice F of the side wide from two other photos' faces at each photo's left and right edge
  (what a crop of a group photo holds; within a batch, so a batch of one gets itself mirrored).
- ``-O grey=true`` draws from the photos made black-and-white (PIL's luma); the skin they are scored against, and
  ``skin_r``'s photo side, stay the colour photo's (the uncut one with ``-O tight``); the hair colours asked are as
  without it.
- ``-O isolate`` as ``facetool stylize`` applies it (:mod:`.isolate`: all but the person blurred): ``auto``, the
  default, on ``-O crowd`` runs only (the stand-in for a group photo's crops), ``blur`` on every run; the hair
  ``auto`` reads stays the unblurred photo's.
- Every avatar is cleaned as ``facetool stylize`` cleans it (``-O clean``, default ``median``; ``-O clean=none``
  measures the net as it draws, as every row of the card before 2026-12-01 was).
- ``fid``: age-net features (the core's offline backbone) of one avatar per photo (the photo's own hair colour)
  against the held-out cartoons given by ``-O cartoons=DIR`` (test split); ``fid_floor`` is the train split's
  cartoons against the same held-out ones, the same count.

The evaluation regressor (``weights/landmarks-eval.safetensors``) is a separate, longer fine-tune than the one
approach A's loss trains against (``weights/landmarks.safetensors``), so ``nme`` is not the quantity A minimised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .net import HAIR_COLOURS

EVAL_REGRESSOR = Path(__file__).parent / "weights" / "landmarks-eval.safetensors"


def aligned_nme(points: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(B, 5, 2) points vs (B, 5, 2) reference -> (B,) NME after the least-squares similarity points -> reference,
    over the reference's eye-centre distance."""
    from facetool.align import transform_points, umeyama

    moved = transform_points(points.double(), umeyama(points.double(), reference.double()))
    eyes = (reference[:, 0] - reference[:, 1]).double().norm(dim=-1).clamp_min(1e-6)
    return ((moved - reference.double()).norm(dim=-1).mean(dim=-1) / eyes).float()


def measure(net: Any, request: Any) -> Any:
    """``MethodSpec.measure`` of cartoon; ``net``: :class:`.runner.FixedConditionCartoon` (its generator is used
    with every hair colour and the photos' landmarks)."""
    from facetool.data.augment import crowd_sides, cut_sides
    from facetool.data.datasets import ManifestDataset
    from facetool.errors import UsageError
    from facetool.evaluate import Measured
    from facetool.metrics.features import load_backbone
    from facetool.metrics.fid import fid_from_features
    from facetool.metrics.image import to_luma
    from facetool.metrics.texture import checkerboard, grain
    from facetool.models.common import net_record

    from .cutout import flatten_background
    from .hair import avatar_hair, load_meter, photo_hair, shipped_meter_path
    from .isolate import isolate_people, wants_isolation
    from .landmarks import load_regressor
    from .net import SKIN_TONES
    from .runner import draw_avatars
    from .skin import crop_skin_class, skin_class, skin_lab, skin_patch

    if net is None:
        raise UsageError("cartoon has no targets to score with --oracle: its data is unpaired")
    generator = net.generator.to(request.device).eval()
    data = ManifestDataset(request.data_dir, roles=("photo",), split=request.split, size=request.size)
    count = min(len(data), request.limit) if request.limit else len(data)
    regressor = load_regressor(EVAL_REGRESSOR, request.device)
    meter = load_meter(device=request.device)
    tight = float(getattr(request.options, "tight", 0.0) or 0.0)
    grey = bool(getattr(request.options, "grey", False))
    crowd = float(getattr(request.options, "crowd", 0.0) or 0.0)
    padding = getattr(net, "crop_padding", "border")  # filled as stylize's crops are
    clean = getattr(net, "clean", "none")  # and cleaned as stylize cleans them (-O clean)
    # The person alone before drawing, as stylize does (-O isolate; auto: crowded crops only).
    isolate = wants_isolation(getattr(net, "isolate", "none"), crowded=crowd > 0)
    template = None
    values: dict[str, list[float]] = {}
    lightness: list[tuple[float, float]] = []  # (photo, avatar) skin L*
    avatars_for_fid, grid = [], []

    def add(name: str, items: Any) -> None:
        values.setdefault(name, []).extend(float(v) for v in items)

    for start in range(0, count, request.batch_size):
        batch = ManifestDataset.collate([data[i] for i in range(start, min(start + request.batch_size, count))])
        photos, points = batch["photo"].to(request.device), batch["points5"].to(request.device)
        coloured = photos  # what the skin is scored against
        if grey:  # a black-and-white photo: its luma (PIL's weights) in all three channels
            photos = to_luma(photos).expand_as(photos)
        if crowd:  # neighbours at the edges, as in a group photo; the skin is still scored on the photo's own face
            photos = crowd_sides(photos, crowd)
        full = photos
        if tight:
            photos = cut_sides(photos, torch.full((4,), tight), fill=padding)
        own = [(labels or {}).get("hair") or "brown" for labels in batch["labels"]]
        dense = batch.get("points68")  # a stacked tensor, a list (some items lack them: None) or missing
        dense = [None] * len(photos) if dense is None else dense
        drawn = isolate_people(photos, points, dense) if isolate else photos  # what G draws from
        if template is None:
            from facetool.align import get_template

            template = get_template("avatar").tensor(photos.shape[-1], device=photos.device)
        with torch.inference_mode():
            add("nme_photo", aligned_nme(regressor(photos), points))
            add("nme_template", aligned_nme(template.expand_as(points), points))
            rows: dict[str, torch.Tensor] = {}
            reads: dict[str, list[str]] = {}  # the meter's reading of each avatar, per colour asked
            for colour in HAIR_COLOURS:
                avatars = draw_avatars(generator, drawn, points, [colour] * len(photos), clean).float()
                rows[colour] = avatars
                reads[colour] = read = avatar_hair(meter, avatars)
                add("hair_accuracy", [r == colour for r in read])
                add(f"hair_accuracy_{colour}", [r == colour for r in read])
                add("nme", aligned_nme(regressor(avatars), points))
            own_avatars = torch.stack([rows[c][i] for i, c in enumerate(own)])
            # --hair auto end to end, as stylize runs it (68 points where the item has them): the photo's hair read,
            # and the meter's reading of the avatar drawn in that colour (drawn above), against the photo's label.
            for i, labels in enumerate(batch["labels"]):
                if (labels or {}).get("hair") not in HAIR_COLOURS:
                    continue
                pick = photo_hair(photos[i], points[i], dense[i]) or "brown"
                add("auto_hair_pick", [pick == own[i]])
                add("auto_hair_avatar", [reads[pick][i] == own[i]])
            # Skin: the avatar's tone class (own hair, the tone stylize picks) against the photo's, both read on the
            # patch between the photo's eyes and mouth; for a net trained with tones, each tone asked for too.
            patch = skin_patch(points, photos.shape[-1])
            photo_lab, avatar_lab = skin_lab(coloured, patch), skin_lab(own_avatars, patch)
            add("skin_agreement", skin_class(avatar_lab) == crop_skin_class(coloured, points, photo_lab))  # auto's pick
            lightness += list(zip(photo_lab[:, 0].tolist(), avatar_lab[:, 0].tolist(), strict=True))
            if generator.config.skins:
                for index, tone in enumerate(SKIN_TONES):
                    toned = draw_avatars(generator, drawn, points, own, clean, [tone] * len(photos)).float()
                    hit = skin_class(skin_lab(toned, patch)) == index
                    add("skin_accuracy", hit)
                    add(f"skin_accuracy_{tone}", hit)
            add("checkerboard", checkerboard(own_avatars))
            add("grain", grain(own_avatars))
            if tight:  # how much of the avatar the cut changed: a net that draws the streaks changes a lot
                whole = isolate_people(full, points, dense) if isolate else full
                uncut = draw_avatars(generator, whole, points, own, clean).float()
                add("tight_change", (own_avatars - uncut).abs().mean(dim=(1, 2, 3)))
        avatars_for_fid.append(own_avatars.cpu())
        for i in range(len(photos)):
            grid.append((photos[i].cpu(), *(rows[c][i].cpu() for c in HAIR_COLOURS)))
    metrics: dict[str, Any] = {name: float(np.mean(v)) for name, v in values.items()}
    metrics["hair_meter_accuracy"] = net_record(shipped_meter_path()).get("test_accuracy")
    pairs = np.array(lightness)
    metrics["skin_r"] = float(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]) if len(pairs) > 2 else None
    notes = {
        "hair": "share of avatars the hair meter reads as the colour asked for (photos × 4 colours)",
        "nme": "eval regressor on avatars vs the photos' labelled 5 points, similarity-aligned, / eye distance",
        "skin_agreement": "share of avatars (own hair, skin as stylize picks) whose skin tone class is the photo's "
        "(light / medium / dark by the typology angle, read between the eyes and the mouth)",
        "skin_r": "Pearson r of the photo's and the avatar's skin lightness (L*)",
        "auto_hair_pick": "--hair auto: share of labelled photos whose hair it reads as the label (68 points where "
        "the data has them)",
        "auto_hair_avatar": "--hair auto end to end: share of labelled photos whose avatar, drawn in the colour auto "
        "read, the hair meter reads as the photo's label",
        "skin_accuracy": "nets trained with skin tones: share of avatars whose skin reads as the tone asked (× 3)",
        "checkerboard": "log10 spectrum peak at the ×2 upsampling artefacts' frequencies (real drawings: about 0)",
        "grid": "rows: photo, then the avatar with black, brown, blonde, grey hair",
    }
    reference = getattr(request.options, "cartoons", "") or ""
    if reference:
        backbone = load_backbone()
        folder = Path(reference)
        split = (folder / "splits.json").is_file()
        held = ManifestDataset(folder, roles=("cartoon",), split="test" if split else None, size=request.size)
        cartoons = torch.stack([held[i]["cartoon"] for i in range(len(held))])
        real = backbone(cartoons)
        metrics["checkerboard_real"] = float(checkerboard(cartoons).mean())
        metrics["grain_real"] = float(grain(cartoons).mean())
        fake = backbone(torch.cat(avatars_for_fid))
        metrics["fid"] = fid_from_features(fake, real)
        # What stylize gives by default (-O backdrop=plain): the same avatars, their plain background painted over.
        plain = torch.cat([flatten_background(a) for a in avatars_for_fid])
        metrics["fid_plain"] = fid_from_features(backbone(plain), real)
        if split:
            train = ManifestDataset(folder, roles=("cartoon",), split="train", size=request.size)
            picks = torch.randperm(len(train), generator=torch.Generator().manual_seed(request.seed))[: len(held)]
            metrics["fid_floor"] = fid_from_features(backbone(torch.stack([train[int(i)]["cartoon"] for i in picks])),
                                                     real)  # fmt: skip
        notes["fid"] = f"{backbone.name} features, avatars (own hair colour) vs {len(held)} held-out cartoons"
        notes["fid_plain"] = "the same with the avatars' plain background painted one colour (stylize's default)"
    else:
        metrics["fid"] = None
        notes["fid"] = "not measured: give the held-out cartoons with -O cartoons=DIR"
    return Measured(metrics=metrics, roles={"input": "photo", "target": "cartoon"}, count=count, grid=grid,
                    notes=notes)  # fmt: skip
