"""WGAN-GP with landmark loss (issue 8): the generator, the critic and the landmark predictor.

Generator: DCGAN-style — z (B, z_dim) -> 4×4 -> five ×2 upsamplings (nearest + 3×3 conv, no checkerboard) -> S = 128,
batch norm, tanh. With ``layout_points > 0`` (variant b) the layout's Gaussian heatmaps are concatenated to every
block's input at that block's resolution, so the face can follow a requested shape from the first 4×4 on. With
``warp`` it draws the face in a canonical frame and a similarity warp (the core's least-squares ``umeyama`` over
the layout's points; kornia) puts it where the layout asks: the position, size and tilt of the parts are then
followed by construction and the net learns only what no such map explains (0.026 of the data's 0.045 mean
distance to its mean layout). Not a full affine map: its shear and uneven scale (0.023 left) drew slanted,
squashed heads in a first trial.

Critic: stride-2 convs 128 -> 4, LeakyReLU, **no batch norm** (the gradient penalty is per sample; batch norm couples
samples) — layer norm over each sample's channels and pixels instead (GroupNorm with one group), then a linear score.
With ``layout_points > 0`` it also reads the layout's heatmaps beside the image (a conditional critic): it then
scores whether a face *and its layout* look like a real pair, so drawn parts, not marks a predictor reads, follow it.

Predictor: a small CNN that reads the layout points of an illustration face (eyes, nose, mouth corners, chin).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facetool.nets.layers import DictConfig, gaussian_heatmaps, init_weights


@dataclass
class LayoutGeneratorConfig(DictConfig):
    z_dim: int = 128
    size: int = 128
    base: int = 32  # channels at the last (128²) block; ×2 per halving, capped at max_channels
    max_channels: int = 256
    layout_points: int = 0  # 0: plain WGAN-GP / variant (a); 6: variant (b), heatmaps of LAYOUT_POINTS
    heatmap_sigma: float = 3.0  # px at 128²
    warp: bool = False  # draw in the canonical frame, then warp (similarity) onto the layout
    canonical: tuple[tuple[float, float], ...] = ()  # (K, 2) the canonical layout in units of the side


def layout_heatmaps(layout: Tensor, size: int, resolution: int, sigma: float) -> Tensor:
    """(B, K, 2) pixels at ``size`` -> (B, K, R, R) Gaussian maps at ``resolution``; ``sigma`` in px at 128²."""
    scale = resolution / size
    points = (layout + 0.5) * scale - 0.5
    return gaussian_heatmaps(points, (resolution, resolution), max(0.5, sigma * size / 128 * scale))


def _channels(c: LayoutGeneratorConfig, resolution: int) -> int:
    return min(c.max_channels, c.base * (c.size // resolution))


class LayoutGenerator(nn.Module):
    """(z (B, z_dim), layout (B, K, 2) pixels or None) -> images (B, 3, S, S) in [-1, 1]."""

    def __init__(self, config: LayoutGeneratorConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or LayoutGeneratorConfig()
        if c.size < 8 or c.size & (c.size - 1):
            raise ValueError("size must be a power of two >= 8")
        if c.warp and (not c.layout_points or len(c.canonical) != c.layout_points):
            raise ValueError("warp needs layout_points and a canonical layout of as many points")
        first = _channels(c, 4)
        self.project = nn.Linear(c.z_dim, first * 16)
        self.blocks = nn.ModuleList()
        resolution, channels = 4, first
        while resolution < c.size:
            out = _channels(c, resolution * 2)
            self.blocks.append(nn.ModuleDict({
                "conv": nn.Conv2d(channels + c.layout_points, out, 3, padding=1),
                "norm": nn.BatchNorm2d(out),
            }))  # fmt: skip
            resolution, channels = resolution * 2, out
        self.to_rgb = nn.Conv2d(channels + c.layout_points, 3, 3, padding=1)
        init_weights(self)

    def heatmaps(self, layout: Tensor, resolution: int) -> Tensor:
        return layout_heatmaps(layout, self.config.size, resolution, self.config.heatmap_sigma)

    def forward(self, z: Tensor, layout: Tensor | None = None) -> Tensor:
        c = self.config
        if c.layout_points and (layout is None or layout.shape[1:] != (c.layout_points, 2)):
            raise ValueError(f"this generator needs a (B, {c.layout_points}, 2) layout")
        if c.warp:
            return self._warped(z, layout)
        return self._draw(z, layout)

    def _warped(self, z: Tensor, layout: Tensor) -> Tensor:
        from kornia.geometry.transform import warp_affine

        from facetool.align import invert_affine, transform_points, umeyama

        c = self.config
        layout = layout.float()
        canonical = torch.tensor(c.canonical, device=layout.device) * c.size - 0.5
        transform = umeyama(canonical.expand(len(layout), -1, -1), layout)  # a similarity: no shear
        # What the similarity cannot explain stays in the layout the net is given, pulled back into its frame.
        face = self._draw(z, transform_points(layout, invert_affine(transform)))
        # Border padding: the cartoons' backgrounds are plain, so a face moved in repeats its background.
        return warp_affine(face, transform.to(face.dtype), (c.size, c.size), padding_mode="border", align_corners=True)

    def _draw(self, z: Tensor, layout: Tensor | None) -> Tensor:
        c = self.config
        x = F.relu(self.project(z)).view(len(z), -1, 4, 4)
        for block in self.blocks:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            if c.layout_points:
                x = torch.cat([x, self.heatmaps(layout.to(x.dtype), x.shape[-1])], 1)
            x = F.relu(block["norm"](block["conv"](x)))
        if c.layout_points:
            x = torch.cat([x, self.heatmaps(layout.to(x.dtype), x.shape[-1])], 1)
        return torch.tanh(self.to_rgb(x))


@dataclass
class CriticConfig(DictConfig):
    size: int = 128
    base: int = 32
    max_channels: int = 256
    layer_norm: bool = True
    layout_points: int = 0  # > 0: a conditional critic that also reads the layout's heatmaps
    heatmap_sigma: float = 3.0  # px at 128²


class Critic(nn.Module):
    """(images (B, 3, S, S) in [-1, 1], layout (B, K, 2) pixels or None) -> (B,) scores (unbounded)."""

    def __init__(self, config: CriticConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or CriticConfig()
        layers: list[nn.Module] = []
        resolution, channels = c.size, 3 + c.layout_points
        while resolution > 4:
            out = min(c.max_channels, c.base * (c.size // resolution))
            first = resolution == c.size
            layers.append(nn.Conv2d(channels, out, 4, stride=2, padding=1))
            if c.layer_norm and not first:
                layers.append(nn.GroupNorm(1, out))  # layer norm of each sample: no coupling across the batch
            layers.append(nn.LeakyReLU(0.2))
            resolution, channels = resolution // 2, out
        self.features = nn.Sequential(*layers)
        self.score = nn.Linear(channels * 16, 1)
        init_weights(self)

    def forward(self, images: Tensor, layout: Tensor | None = None) -> Tensor:
        c = self.config
        if c.layout_points:
            if layout is None or layout.shape[1:] != (c.layout_points, 2):
                raise ValueError(f"this critic needs a (B, {c.layout_points}, 2) layout")
            maps = layout_heatmaps(layout.to(images.dtype), c.size, images.shape[-1], c.heatmap_sigma)
            images = torch.cat([images, maps * 2 - 1], 1)  # in [-1, 1] like the image
        return self.score(self.features(images).flatten(1))[:, 0]


@dataclass
class PredictorConfig(DictConfig):
    points: int = 6
    base: int = 16


class LandmarkPredictor(nn.Module):
    """images (B, 3, S, S) in [0, 1] -> (B, points, 2) pixel (x, y) of the input's size; reads at 64²."""

    def __init__(self, config: PredictorConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or PredictorConfig()
        layers: list[nn.Module] = []
        channels = 3
        for i in range(4):  # 64 -> 4
            out = c.base * 2**i
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(),
                       nn.Conv2d(out, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.ReLU()]  # fmt: skip
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels * 16, c.points * 2)

    def forward(self, images: Tensor) -> Tensor:
        size = images.shape[-1]
        small = F.interpolate(images, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
        unit = torch.sigmoid(self.head(self.features(small * 2 - 1).flatten(1)))  # the crop's unit square
        return unit.view(len(images), self.config.points, 2) * size - 0.5
