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


def skin_inputs(generator: ConditionalResnetGenerator, crops: Tensor, points5: Tensor | None,
                skin: list[str] | None) -> Tensor | None:  # fmt: skip
    """(B,) skin-tone classes for a generator trained with them (None for one without): the names given, or (None)
    each crop's own, measured between its eyes and mouth (:func:`.skin.crop_skin_class`)."""
    if not generator.config.skins:
        return None
    if skin is not None:
        return torch.tensor([SKIN_TONES.index(s) for s in skin], device=crops.device)
    from .skin import crop_skin_class

    if points5 is None:
        points5 = get_template(TEMPLATE).tensor(crops.shape[-1], device=crops.device).expand(len(crops), 5, 2)
    return crop_skin_class(crops.float(), points5.to(crops.device, torch.float32))


def draw_avatars(generator: ConditionalResnetGenerator, crops: Tensor, points5: Tensor | None, hair: list[str],
                 clean: str = "none", skin: list[str] | None = None) -> Tensor:  # fmt: skip
    """crops (B, 3, S, S) in [0, 1] (+ their (B, 5, 2) landmarks) -> the generator's avatars (B, 3, S, S) in [0, 1]
    with these hair colours (and skin tones: None = each crop's own, for a net trained with them), cleaned as
    ``clean`` says (:func:`clean_avatars`)."""
    labels, heatmaps = condition_inputs(generator, crops, points5, hair)
    tones = skin_inputs(generator, crops, points5, skin)
    return clean_avatars(((generator(crops * 2 - 1, labels, heatmaps, tones) + 1) / 2).clamp(0, 1), clean)


def clean_avatars(avatars: Tensor, clean: str) -> Tensor:
    """(B, 3, S, S) avatars in [0, 1] -> the same after ``-O clean``: ``median`` a 3×3 median per channel (the
    2-px checkerboard of transposed convolutions and the specks go, flat areas and lines stay), ``none`` as is."""
    if clean == "none":
        return avatars
    from kornia.filters import median_blur

    return median_blur(avatars, (3, 3))


class CartoonRunner:
    """crops (B, 3, S, S) in [0, 1] (+ ``points5`` (B, 5, 2) crop pixels) -> avatars (B, 3, S, S) in [0, 1].

    ``hair``: a colour name, or ``auto``: each crop's hair measured by :func:`.hair.photo_hair` (brown when no hair
    is found: a hat, a bald head). ``skin``: a tone name, or ``auto`` (each crop's own; only nets trained with skin
    tones take it). ``chosen`` / ``chosen_skin`` hold the hair colours / skin tones of the last call (``chosen_skin``
    empty for a net without tones), ``notes`` what ``auto`` picked, one line per face (printed by ``stylize``)."""

    takes_points5 = True

    def __init__(self, generator: ConditionalResnetGenerator, device: str, hair: str = "auto",
                 padding: str = "auto", plain_backdrop: bool = True, clean: str = "median",
                 skin: str = "auto") -> None:  # fmt: skip
        self.generator, self.device, self.hair = generator.to(device).eval(), device, hair
        self.skin = skin
        self.crop_padding = padding  # read by facetool.stylize
        self.plain_backdrop = plain_backdrop  # -O backdrop=plain: the speckled background painted over
        self.clean = clean
        self.chosen: list[str] = []
        self.chosen_skin: list[str] = []

    def __call__(self, crops: Tensor, points5: Tensor | None = None) -> Tensor:
        crops = crops.to(self.device, torch.float32)
        if self.hair == "auto":
            from .hair import photo_hair

            self.chosen = [photo_hair(crop, None if points5 is None else points5[i]) or "brown"
                           for i, crop in enumerate(crops)]  # fmt: skip
        else:
            self.chosen = [self.hair] * len(crops)
        with torch.inference_mode():
            if not self.generator.config.skins:
                self.chosen_skin = []
            elif self.skin == "auto":
                classes = skin_inputs(self.generator, crops, points5, None)
                self.chosen_skin = [SKIN_TONES[int(c)] for c in classes]
            else:
                self.chosen_skin = [self.skin] * len(crops)
            avatars = draw_avatars(self.generator, crops, points5, self.chosen, self.clean, self.chosen_skin or None)
            if self.plain_backdrop:
                from .cutout import flatten_background

                avatars = flatten_background(avatars)
            return avatars

    @property
    def notes(self) -> list[str]:
        """What ``auto`` measured on each face of the last call ("hair black, skin light"); empty when nothing was
        left to ``auto``."""
        picked = []
        if self.hair == "auto":
            picked.append([f"hair {h}" for h in self.chosen])
        if self.skin == "auto" and self.chosen_skin:
            picked.append([f"skin {s}" for s in self.chosen_skin])
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
                 clean: str = "none", skin: str = "auto") -> None:  # fmt: skip
        super().__init__()
        self.generator, self.hair, self.crop_padding, self.skin = generator, hair, padding, skin
        self.clean = clean  # what the evaluation applies to its avatars (forward stays the bare generator)

    def forward(self, crops: Tensor) -> Tensor:
        # One crop's condition expanded to the batch: a list as long as the batch would be traced as a constant, and
        # an exported model would then run at the traced batch size only.
        batch = crops.shape[0]
        labels, heatmaps = condition_inputs(self.generator, crops[:1], None, [self.hair])
        labels = labels.expand(batch)
        heatmaps = None if heatmaps is None else heatmaps.expand(batch, -1, -1, -1)
        tone = "medium" if self.skin == "auto" else self.skin  # fixed, as the hair: no measurement in the graph
        tones = skin_inputs(self.generator, crops[:1], None, [tone])
        tones = None if tones is None else tones.expand(batch)
        return (self.generator(crops * 2 - 1, labels, heatmaps, tones) + 1) / 2

    def extra_repr(self) -> str:
        return f"hair={self.hair}, skin={self.skin}"
