"""Landmark-guided CartoonGAN's nets: a ResNet generator conditioned on a hair-colour label (and optionally on
landmark heatmaps), and a PatchGAN whose first layer is masked by the label.

Hair conditioning (issue 7): the one-hot label of the 4 colours is broadcast to (B, 4, H, W) planes and concatenated
to the input of *every* generator layer at that layer's resolution, so no layer can drop it. The discriminator's
first conv has one group of filters per label and keeps only the group of the item's label (a label mask): it
judges "a real cartoon with this hair colour", not just "a real cartoon". Landmark heatmaps (approach A) ride along
with the label planes, so the layout reaches every layer too.

Skin tone (not in the paper; ``skins`` > 0): a constant plane per class would reach each layer only as a
per-channel constant, which the instance norm right after it removes again (all but the last, unnormalised layer,
and away from zero-padded borders: the ways the hair planes get through). So the skin class instead scales and
shifts each normalised feature map (a conditional instance norm: ``x * (1 + gamma[c]) + beta[c]``), with gamma and
beta starting at zero, so a net trained without it starts a skin-conditioned run drawing exactly what it drew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facetool.nets.layers import UPSAMPLES, DictConfig, check_choice, init_weights, norm_layer, norm_uses_bias

HAIR_COLOURS = ("black", "brown", "blonde", "grey")
#: Skin-tone classes, light to dark (:func:`.skin.skin_class`: the individual typology angle of the skin's Lab).
SKIN_TONES = ("light", "medium", "dark")


def label_planes(labels: Tensor, count: int, size: tuple[int, int]) -> Tensor:
    """labels (B,) int64 -> (B, count, H, W) float32 one-hot planes; count 0 (no label) gives (B, 0, H, W)."""
    if count == 0:
        return labels.new_zeros((labels.shape[0], 0, *size), dtype=torch.float32)
    return F.one_hot(labels, count).to(torch.float32)[:, :, None, None].expand(-1, -1, *size)


@dataclass
class ConditionalResnetConfig(DictConfig):
    """CycleGAN's ResNet generator (c7s1, two stride-2 downs, ``blocks`` residual blocks, two ups, c7s1) with
    ``labels`` one-hot planes and ``extra`` condition channels (landmark heatmaps) fed to every layer."""

    in_channels: int = 3
    out_channels: int = 3
    labels: int = len(HAIR_COLOURS)
    extra: int = 0
    base: int = 32
    blocks: int = 9
    norm: str = "instance"
    heatmap_sigma: float = 3.0  # width of the landmark heatmaps it was trained on, px at 128² (the runner's too)
    # deconv: CycleGAN's 3×3 stride-2 transposed convs (the 2026-11 weights); resize: bilinear ×2 then a 3×3 conv,
    # whose uneven overlap cannot paint the 2-px checkerboard the deconv nets show in flat hair and skin.
    upsample: str = "deconv"
    # skin-tone classes that modulate every normalised layer (0: none, the 2026-11 weights); a net saved with 0
    # starts a run with more unchanged (the new scales and shifts start at zero): --init may add them.
    skins: int = 0

    GROWS: ClassVar[tuple[str, ...]] = ("skins",)

    def __post_init__(self) -> None:
        check_choice("ConditionalResnetConfig", "upsample", self.upsample, UPSAMPLES)
        if not 0 <= self.skins <= 16:
            raise ValueError("ConditionalResnetConfig.skins must be 0 to 16")

    @property
    def condition_channels(self) -> int:
        return self.labels + self.extra


class ClassModulation(nn.Module):
    """(x (B, C, H, W), classes (B,) int64) -> x * (1 + gamma[class]) + beta[class], per channel; zero at the start
    (the identity). Float ``classes`` (B,) are positions on the class scale, 0 to classes - 1: gamma and beta are
    interpolated linearly between the two nearest classes (:func:`interpolate_rows`)."""

    def __init__(self, classes: int, channels: int) -> None:
        super().__init__()
        self.table = nn.Embedding(classes, 2 * channels)
        nn.init.zeros_(self.table.weight)

    def forward(self, x: Tensor, classes: Tensor) -> Tensor:
        rows = interpolate_rows(self.table.weight, classes) if classes.is_floating_point() else self.table(classes)
        gamma, beta = rows.to(x.dtype)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + gamma) + beta


def interpolate_rows(table: Tensor, positions: Tensor) -> Tensor:
    """table (K, D), positions (B,) float -> (B, D): rows blended linearly between the two nearest, positions clamped
    to [0, K - 1] (no extrapolation: past the last class the modulation was never trained).

    Why: the skin tones are ordered (light -> dark) and a photo's skin often falls between two of them; a modulation
    between two learned ones draws a skin between theirs (model card, "Skin tone between the classes")."""
    last = table.shape[0] - 1
    # float32 whatever the table's dtype (bf16 would round 1.999 to 2); NaN (no position) as the first class
    positions = torch.nan_to_num(positions.float(), nan=0.0).clamp(0, last)
    low = positions.floor().long().clamp(max=max(last - 1, 0))
    high = (low + 1).clamp(max=last)
    weight = (positions - low.float())[:, None]
    return torch.lerp(table[low].float(), table[high].float(), weight).to(table.dtype)


class ConditionedConv(nn.Module):
    """conv over [x, condition resized to x's size] -> norm (-> skin modulation) -> activation; reflect padding for
    stride 1. ``upsample`` makes it a ×2 layer: ``deconv`` a transposed conv, ``resize`` bilinear ×2 first (the
    condition then joins at the new size). ``skins``: classes of the modulation after the norm (0: none)."""

    def __init__(self, cin: int, cond: int, cout: int, kernel: int, stride: int = 1, norm: str | None = "instance",
                 activation: str = "relu", upsample: str | None = None, skins: int = 0) -> None:  # fmt: skip
        super().__init__()
        bias = norm is None or norm_uses_bias(norm)
        self.up: nn.Module = nn.Identity()
        if upsample == "resize":
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        if upsample == "deconv":
            self.pad: nn.Module = nn.Identity()
            self.conv: nn.Module = nn.ConvTranspose2d(cin + cond, cout, kernel, stride=2, padding=1, output_padding=1,
                                                      bias=bias)  # fmt: skip
        elif stride == 1:
            self.pad = nn.ReflectionPad2d(kernel // 2)
            self.conv = nn.Conv2d(cin + cond, cout, kernel, bias=bias)
        else:
            self.pad = nn.Identity()
            self.conv = nn.Conv2d(cin + cond, cout, kernel, stride=stride, padding=kernel // 2, bias=bias)
        self.norm = norm_layer(norm, cout) if norm else nn.Identity()
        self.activation = {"relu": nn.ReLU(), "tanh": nn.Tanh(), "none": nn.Identity()}[activation]
        self.skin = ClassModulation(skins, cout) if skins and norm else None

    def forward(self, x: Tensor, condition: Tensor, skin: Tensor | None = None) -> Tensor:
        x = self.up(x)
        if condition.shape[1]:  # 0: an unconditioned generator (the ablation's baseline)
            if condition.shape[-2:] != x.shape[-2:]:
                condition = F.interpolate(condition, size=x.shape[-2:], mode="bilinear", align_corners=False)
            x = torch.cat([x, condition], 1)
        x = self.norm(self.conv(self.pad(x)))
        if self.skin is not None:
            if skin is None:
                raise ValueError("this generator needs skin-tone classes")
            x = self.skin(x, skin)
        return self.activation(x)


class ConditionedResidualBlock(nn.Module):
    """x + (conv3 norm ReLU conv3 norm)(x), the condition concatenated before both convs."""

    def __init__(self, channels: int, cond: int, norm: str, skins: int = 0) -> None:
        super().__init__()
        self.first = ConditionedConv(channels, cond, channels, 3, norm=norm, skins=skins)
        self.second = ConditionedConv(channels, cond, channels, 3, norm=norm, activation="none", skins=skins)

    def forward(self, x: Tensor, condition: Tensor, skin: Tensor | None = None) -> Tensor:
        return x + self.second(self.first(x, condition, skin), condition, skin)


class ConditionalResnetGenerator(nn.Module):
    """(image (B, in, H, W) in [-1, 1], labels (B,) int64, extra (B, extra, H, W) or None, skin (B,) int64 or None)
    -> (B, out, H, W) in [-1, 1]; H and W multiples of 4. ``skin`` is needed when ``config.skins`` > 0: classes, or
    float positions between them (:class:`ClassModulation`)."""

    def __init__(self, config: ConditionalResnetConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or ConditionalResnetConfig()
        cond, k = c.condition_channels, c.skins
        chans = [c.base, c.base * 2, c.base * 4]
        layers: list[nn.Module] = [ConditionedConv(c.in_channels, cond, chans[0], 7, norm=c.norm, skins=k)]
        layers += [ConditionedConv(chans[i], cond, chans[i + 1], 3, stride=2, norm=c.norm, skins=k) for i in range(2)]
        layers += [ConditionedResidualBlock(chans[2], cond, c.norm, skins=k) for _ in range(c.blocks)]
        layers += [ConditionedConv(chans[i], cond, chans[i - 1], 3, norm=c.norm, upsample=c.upsample, skins=k)
                   for i in (2, 1)]  # fmt: skip
        layers.append(ConditionedConv(chans[0], cond, c.out_channels, 7, norm=None, activation="tanh"))
        self.layers = nn.ModuleList(layers)
        init_weights(self)

    def condition(self, labels: Tensor, extra: Tensor | None, size: tuple[int, int]) -> Tensor:
        planes = label_planes(labels, self.config.labels, size)
        if self.config.extra:
            if extra is None or extra.shape[1] != self.config.extra:
                raise ValueError(f"this generator needs {self.config.extra} extra condition channels")
            planes = torch.cat([planes, extra.to(planes.dtype)], 1)
        return planes

    def forward(self, image: Tensor, labels: Tensor, extra: Tensor | None = None, skin: Tensor | None = None) -> Tensor:
        if image.shape[-1] % 4 or image.shape[-2] % 4:
            raise ValueError(f"image size {tuple(image.shape[-2:])} must be a multiple of 4")
        if self.config.skins and skin is None:
            raise ValueError(f"this generator needs skin-tone classes (0 to {self.config.skins - 1})")
        condition = self.condition(labels, extra, (image.shape[-2], image.shape[-1])).to(image.dtype)
        x = image
        for layer in self.layers:
            x = layer(x, condition, skin)
        return x


@dataclass
class LabelMaskedPatchGANConfig(DictConfig):
    """70×70 PatchGAN (3 stride-2 layers) whose first layer has ``base`` filters per label, only the label's kept."""

    in_channels: int = 3
    labels: int = len(HAIR_COLOURS)
    base: int = 64
    layers: int = 3
    norm: str = "instance"


class LabelMaskedPatchGAN(nn.Module):
    """(image (B, in, H, W), labels (B,)) -> (B, 1, H', W') logits."""

    def __init__(self, config: LabelMaskedPatchGANConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or LabelMaskedPatchGANConfig()
        self.first = nn.Conv2d(c.in_channels, c.base * c.labels, 4, stride=2, padding=1)
        layers: list[nn.Module] = [nn.LeakyReLU(0.2)]
        channels = c.base
        for i in range(1, c.layers + 1):
            out = c.base * min(2**i, 8)
            stride = 2 if i < c.layers else 1
            layers += [nn.Conv2d(channels, out, 4, stride=stride, padding=1, bias=norm_uses_bias(c.norm)),
                       norm_layer(c.norm, out), nn.LeakyReLU(0.2)]  # fmt: skip
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, padding=1))
        self.rest = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, image: Tensor, labels: Tensor) -> Tensor:
        c = self.config
        features = self.first(image)
        batch, _, height, width = features.shape
        features = features.view(batch, c.labels, c.base, height, width)
        mask = F.one_hot(labels, c.labels).to(features.dtype)[:, :, None, None, None]
        return self.rest((features * mask).sum(dim=1))
