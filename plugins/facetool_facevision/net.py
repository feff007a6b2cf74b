"""FaceVision's generator: one U-Net encoder, two decoders (depth, correspondence), skips into both.

Built from the core U-Net's blocks (:class:`facetool.nets.unet.UNet`): the encoder of one U-Net and the decoders
of two, so every block, the padding to a multiple of ``2**levels`` and the init are the core's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from facetool.nets.layers import DictConfig, crop_from_padded, pad_to_multiple
from facetool.nets.unet import UNet, UNetConfig


@dataclass
class FaceVisionConfig(DictConfig):
    """Generator hyper-parameters: the core U-Net's, one encoder, heads of ``depth_channels`` and
    ``correspondence_channels`` outputs (tanh, [-1, 1])."""

    levels: int = 7
    base: int = 32
    max_channels: int = 128
    norm: str = "instance"
    depth_channels: int = 1
    correspondence_channels: int = 3


class FaceVisionNet(nn.Module):
    """photo (B, 3, S, S) in [-1, 1] -> (depth (B, 1, S, S), correspondence (B, 3, S, S)), both in [-1, 1]."""

    def __init__(self, config: FaceVisionConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or FaceVisionConfig()
        common = {"levels": config.levels, "base": config.base, "max_channels": config.max_channels,
                  "norm": config.norm, "in_channels": 3}  # fmt: skip
        depth = UNet(UNetConfig(out_channels=config.depth_channels, **common))
        correspondence = UNet(UNetConfig(out_channels=config.correspondence_channels, **common))
        self.encoder = depth.down
        self.depth_decoder = depth.up
        self.correspondence_decoder = correspondence.up  # its own encoder is dropped: the heads share one

    def _decode(self, up: nn.ModuleList, skips: list[Tensor]) -> Tensor:
        y = up[-1](skips[-1])
        for i in range(self.config.levels - 2, -1, -1):
            y = up[i](torch.cat([skips[i], y], dim=1))
        return y

    def forward(self, photo: Tensor) -> tuple[Tensor, Tensor]:
        size = (photo.shape[-2], photo.shape[-1])
        x, offset = pad_to_multiple(photo, 2**self.config.levels, "reflect")
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        depth = crop_from_padded(self._decode(self.depth_decoder, skips), offset, size)
        correspondence = crop_from_padded(self._decode(self.correspondence_decoder, skips), offset, size)
        return depth, correspondence


class FaceVisionMaps(nn.Module):
    """The bare inference net in the data's own encodings: photo (B, 3, S, S) in [0, 1] -> (depth (B, 1, S, S) as a
    fraction of S — ``facetool data maps``' depth PNG / 65535 —, correspondence (B, 3, S, S) PNCC), both in [0, 1]."""

    def __init__(self, net: FaceVisionNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, photo: Tensor) -> tuple[Tensor, Tensor]:
        depth, correspondence = self.net(photo * 2 - 1)
        return ((depth + 1) * 0.5).clamp(0, 1), ((correspondence + 1) * 0.5).clamp(0, 1)
