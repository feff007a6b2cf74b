"""Inference: aligned crops -> avatars, with the hair colour (and, for nets trained with it, the skin tone) asked for
or measured on each crop."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from facetool.align import get_template
from facetool.nets.layers import gaussian_heatmaps

from .net import HAIR_COLOURS, SKIN_TONES, ConditionalResnetGenerator

TEMPLATE = "avatar"


def condition_inputs(generator: ConditionalResnetGenerator, crops: Tensor, points5: Tensor | None,
                     hair: list[str]) -> tuple[Tensor, Tensor | None]:  # fmt: skip
    """(labels (B,), heatmaps (B, 5, S, S) or None) for a generator, from the crops' landmarks (None: the template's
    points, i.e. an already aligned face) and hair names."""
    size = crops.shape[-1]
    labels = torch.tensor([HAIR_COLOURS.index(h) for h in hair], device=crops.device)
    if not generator.config.labels:
        labels = torch.zeros_like(labels)
    if not generator.config.extra:
        return labels, None
    if points5 is None:
        points5 = get_template(TEMPLATE).tensor(size, device=crops.device).expand(len(crops), 5, 2)
    return labels, gaussian_heatmaps(
        points5.to(crops.device, torch.float32), (size, size), generator.config.heatmap_sigma * size / 128
    )


def skin_inputs(generator: ConditionalResnetGenerator, crops: Tensor, skin: list[str | float] | None) -> Tensor | None:
    """(B,) float tone positions for a generator trained with skin tones (None for one without, or for ``skin`` None:
    auto, :func:`auto_tones`): each a tone name (light 0, medium 1, dark 2) or a position between them."""
    if not generator.config.skins or skin is None:
        return None
    return torch.tensor([tone_position(s) for s in skin], dtype=torch.float32, device=crops.device)


def tone_position(skin: str | float) -> float:
    """A tone name (``net.SKIN_TONES``) or a number -> its position on the tone scale, 0 (light) to 2 (dark)."""
    return float(SKIN_TONES.index(skin)) if isinstance(skin, str) and skin in SKIN_TONES else float(skin)


def per_face(setting: str, faces: int, what: str) -> list[str]:
    """``--hair`` / ``--skin`` -> one entry per face: a single value is every face's; a comma list gives each face its
    own, face0 (the largest, as ``stylize`` numbers them) first, and must have one entry per face."""
    from facetool.errors import UsageError

    entries = setting.split(",")
    if len(entries) == 1:
        return entries * faces
    if len(entries) != faces:
        raise UsageError(f"--{what} {setting}: {len(entries)} values for {faces} face{'s' * (faces != 1)}; give "
                         "one for every face, or one per face (face0, the largest, first)")  # fmt: skip
    return entries


def tone_name(position: float) -> str:
    """A tone position -> its tone's name ("light"), or the two it lies between ("light-medium")."""
    nearest = min(len(SKIN_TONES) - 1, max(0, round(position)))
    if abs(position - nearest) < 0.1:
        return SKIN_TONES[nearest]
    low = min(len(SKIN_TONES) - 2, max(0, int(position)))
    return f"{SKIN_TONES[low]}-{SKIN_TONES[low + 1]}"


#: Tone positions at which ``auto`` draws each face to find where its skin meets the photo's (:func:`auto_tones`).
AUTO_KNOTS = (0.0, 0.5, 1.0, 1.5, 2.0)


def auto_tones(generator: ConditionalResnetGenerator, crops: Tensor, points5: Tensor | None, labels: Tensor,
               heatmaps: Tensor | None) -> Tensor:  # fmt: skip
    """(B,) float tone positions for ``--skin auto``: each face drawn at :data:`AUTO_KNOTS`, its avatar's skin read on
    the patch between the eyes and the mouth, and the position kept where the avatar's typology angle is the photo's
    (:func:`.skin.matched_positions`). Why not the photo's class: a class spans a range of skins and the net draws
    each at one end (light as near-white paper: a pale mask pasted into a real photo); between the knots it draws
    the skin between (model card, "Skin tone between the classes"). A black-and-white photo has no angle: its class
    (:func:`.skin.grey_skin_class`) is its position (matching the lightness instead was measured and lost on the
    class the person's colour photo has)."""
    from .skin import black_and_white, grey_skin_class, matched_positions, skin_lab, skin_patch, typology_angle

    if points5 is None:
        points5 = get_template(TEMPLATE).tensor(crops.shape[-1], device=crops.device).expand(len(crops), 5, 2)
    patch = skin_patch(points5.to(crops.device, torch.float32), crops.shape[-1])
    photo_lab = skin_lab(crops.float(), patch)
    grey = black_and_white(crops)
    positions = torch.zeros(len(crops), device=crops.device)
    positions[grey] = grey_skin_class(photo_lab[grey, 0]).float()
    colour = ~grey
    if colour.any():
        # All knots in one call: each colour face repeated once per knot, knot-major.
        k, count = len(AUTO_KNOTS), int(colour.sum())
        tones = torch.tensor(AUTO_KNOTS, device=crops.device).repeat_interleave(count)
        heat = None if heatmaps is None else heatmaps[colour].repeat(k, 1, 1, 1)
        drawn = generator(crops[colour].repeat(k, 1, 1, 1) * 2 - 1, labels[colour].repeat(k), heat, tones)
        angles = typology_angle(skin_lab(((drawn + 1) / 2).clamp(0, 1).float(), patch[colour].repeat(k, 1, 1)))
        positions[colour] = matched_positions(typology_angle(photo_lab[colour]), angles.view(k, count).T, AUTO_KNOTS)
    return positions


def draw_avatars(generator: ConditionalResnetGenerator, crops: Tensor, points5: Tensor | None, hair: list[str],
                 clean: str = "none", skin: list[str | float] | Tensor | None = None) -> Tensor:  # fmt: skip
    """crops (B, 3, S, S) in [0, 1] (+ their (B, 5, 2) landmarks) -> the generator's avatars (B, 3, S, S) in [0, 1]
    with these hair colours (and skin tones — names, positions, or a (B,) tensor of positions; None = auto,
    :func:`auto_tones` — for a net trained with them), cleaned as ``clean`` says (:func:`clean_avatars`)."""
    labels, heatmaps = condition_inputs(generator, crops, points5, hair)
    tones = skin if isinstance(skin, Tensor) else skin_inputs(generator, crops, skin)
    if tones is None and generator.config.skins:
        tones = auto_tones(generator, crops, points5, labels, heatmaps)
    return clean_avatars(((generator(crops * 2 - 1, labels, heatmaps, tones) + 1) / 2).clamp(0, 1), clean)


def clean_avatars(avatars: Tensor, clean: str) -> Tensor:
    """(B, 3, S, S) avatars in [0, 1] -> the same after ``-O clean``: ``median`` a 3×3 median per channel (the
    2-px checkerboard of transposed convolutions and the specks go, flat areas and lines stay), ``flat`` painted in
    a few flat colours (:func:`.flat.flat_colours`), ``none`` as is."""
    if clean == "none":
        return avatars
    if clean == "flat":
        from .flat import flat_colours

        return flat_colours(avatars)
    from kornia.filters import median_blur

    return median_blur(avatars, (3, 3))


class CartoonRunner:
    """crops (B, 3, S, S) in [0, 1] (+ ``points5`` (B, 5, 2) and, where the detector has them, ``points68``
    (B, 68, 2), crop pixels) -> avatars (B, 3, S, S) in [0, 1].

    ``hair``: a colour name, or ``auto``: each crop's hair measured by :func:`.hair.photo_hair` (brown when no hair
    is found: a hat, a bald head). ``skin``: a tone name, a position between them (0 light to 2 dark), or ``auto``
    (each crop's own, :func:`auto_tones`; only nets trained with skin tones take it). ``chosen`` / ``chosen_skin``
    hold the hair colours / tone positions of the last call (``chosen_skin`` empty for a net without tones), ``notes``
    what ``auto`` picked, one line per face (printed by ``stylize``)."""

    takes_points5 = True
    takes_points68 = True  # the hair labeller frames the head better from them (:func:`.hair.photo_hair`)

    def __init__(self, generator: ConditionalResnetGenerator, device: str, hair: str = "auto",
                 padding: str = "auto", plain_backdrop: bool = True, clean: str = "median",
                 skin: str = "auto", isolate: str = "auto") -> None:  # fmt: skip
        self.generator, self.device, self.hair = generator.to(device).eval(), device, hair
        self.skin = skin
        self.isolate = isolate  # -O isolate: everything but the person blurred before G draws (.isolate)
        self.crop_padding = padding  # read by facetool.stylize
        self.plain_backdrop = plain_backdrop  # -O backdrop=plain: the speckled background painted over
        self.clean = clean
        self.chosen: list[str] = []
        self.chosen_skin: list[float] = []

    def __call__(self, crops: Tensor, points5: Tensor | None = None, points68: Tensor | None = None) -> Tensor:
        crops = crops.to(self.device, torch.float32)
        from .hair import photo_hair

        hairs = per_face(self.hair, len(crops), "hair")
        self.chosen = [(photo_hair(crop, None if points5 is None else points5[i],
                                  None if points68 is None else points68[i]) or "brown") if hair == "auto" else hair
                       for i, (crop, hair) in enumerate(zip(crops, hairs, strict=True))]  # fmt: skip
        from .isolate import isolate_people, wants_isolation

        # A call holds one photo's faces: more than one is a group photo. After the hair is read: the mask's edge
        # may take a little hair with it.
        if wants_isolation(self.isolate, crowded=len(crops) > 1):
            template = get_template(TEMPLATE).tensor(crops.shape[-1], device=crops.device)
            crops = isolate_people(crops, template.expand(len(crops), -1, -1) if points5 is None else points5,
                                   points68)  # fmt: skip
        with torch.inference_mode():
            tones = None
            if self.generator.config.skins:
                skins = per_face(self.skin, len(crops), "skin")
                tones = torch.tensor([0.0 if s == "auto" else tone_position(s) for s in skins], device=crops.device)
                measured = [i for i, s in enumerate(skins) if s == "auto"]  # each such face's own tone
                if measured:
                    some = crops[measured]
                    where = None if points5 is None else points5[measured]
                    labels, heatmaps = condition_inputs(self.generator, some, where, [self.chosen[i] for i in measured])
                    tones[measured] = auto_tones(self.generator, some, where, labels, heatmaps)
            self.chosen_skin = [] if tones is None else [round(float(t), 2) for t in tones]
            avatars = draw_avatars(self.generator, crops, points5, self.chosen, self.clean, tones)
            if self.plain_backdrop:
                from .cutout import flatten_background

                avatars = flatten_background(avatars)
            return avatars

    @property
    def notes(self) -> list[str]:
        """What ``auto`` measured on each face of the last call ("hair black, skin light-medium (0.42)": the tone, or
        the two it lies between, and the position drawn); empty when nothing was left to ``auto``."""
        picked = []
        if "auto" in self.hair.split(","):
            picked.append([f"hair {h}" for h in self.chosen])
        if "auto" in self.skin.split(",") and self.chosen_skin:
            picked.append([f"skin {tone_name(t)} ({t:.2f})" for t in self.chosen_skin])
        return [", ".join(parts) for parts in zip(*picked, strict=True)] if picked else []

    def paste_mask(self, avatars: Tensor) -> Tensor:
        """(B, 3, S, S) avatars -> (B, 1, S, S): head and hair, not the plain background (see :mod:`.cutout`)."""
        from .cutout import avatar_alpha

        with torch.inference_mode():
            return avatar_alpha(avatars.float())


class FixedConditionCartoon(nn.Module):
    """The bare generator for ``facetool export`` / benchmarks: (B, 3, S, S) [0, 1] aligned crops -> avatars in
    [0, 1], one fixed hair colour, the template's landmark layout. ``crop_padding``: how its crops are filled past
    the photo (what the evaluation's ``-O tight`` simulates). ``skin``: one fixed tone for a net trained with them
    (``auto``: medium here; the evaluation, which uses only the generator, measures each crop's own)."""

    def __init__(self, generator: ConditionalResnetGenerator, hair: str = "brown", padding: str = "auto",
                 clean: str = "none", skin: str = "auto", isolate: str = "none") -> None:  # fmt: skip
        super().__init__()
        self.generator, self.hair, self.crop_padding, self.skin = generator, hair, padding, skin
        # What the evaluation applies to its crops before drawing (-O isolate) and to its avatars after (-O clean);
        # forward stays the bare generator.
        self.isolate, self.clean = isolate, clean

    def forward(self, crops: Tensor) -> Tensor:
        # One crop's condition expanded to the batch: a list as long as the batch would be traced as a constant, and
        # an exported model would then run at the traced batch size only.
        batch = crops.shape[0]
        labels, heatmaps = condition_inputs(self.generator, crops[:1], None, [self.hair])
        labels = labels.expand(batch)
        heatmaps = None if heatmaps is None else heatmaps.expand(batch, -1, -1, -1)
        tone = "medium" if self.skin == "auto" else self.skin  # fixed, as the hair: no measurement in the graph
        tones = skin_inputs(self.generator, crops[:1], [tone])
        tones = None if tones is None else tones.expand(batch)
        return (self.generator(crops * 2 - 1, labels, heatmaps, tones) + 1) / 2

    def extra_repr(self) -> str:
        return f"hair={self.hair}, skin={self.skin}"
