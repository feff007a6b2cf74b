"""PatchGAN discriminator (pix2pix / CycleGAN): a fully convolutional net whose every output logit judges one
patch of the input.

``layers`` 4×4 stride-2 convs (the first without norm), one 4×4 stride-1 conv and a 4×4 stride-1 conv to one
channel, LeakyReLU 0.2 in between. ``layers = 3`` gives the 70×70 receptive field and a 30×30 logit map at 256².
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from facetool.nets.layers import NORMS, DictConfig, check_choice, init_weights, norm_layer, norm_uses_bias

__all__ = ["PatchGAN", "PatchGANConfig", "patchgan_convs", "receptive_field"]

KERNEL = 4


@dataclass
class PatchGANConfig(DictConfig):
    """PatchGAN hyper-parameters. ``in_channels`` is the discriminator input: for a conditional GAN
    (pix2pix) the condition and the image concatenated, e.g. 3 + 3 = 6."""

    in_channels: int = 6
    base: int = 64
    layers: int = 3
    norm: str = "batch"
    max_channels: int = 512

    def __post_init__(self) -> None:
        check_choice("PatchGANConfig", "norm", self.norm, NORMS)
        if self.layers < 1:
            raise ValueError(f"PatchGANConfig.layers must be >= 1, got {self.layers}")


def patchgan_convs(config: PatchGANConfig) -> list[tuple[int, int, int]]:
    """The conv stack as (in_channels, out_channels, stride), input side first."""
    chans = [config.in_channels] + [min(config.base * 2**i, config.max_channels) for i in range(config.layers + 1)]
    convs = [(chans[i], chans[i + 1], 2) for i in range(config.layers)]
    convs.append((chans[-2], chans[-1], 1))
    convs.append((chans[-1], 1, 1))
    return convs


def receptive_field(config: PatchGANConfig) -> int:
    """Side of the input square one output logit sees: ``1 + sum((k - 1) * product of earlier strides)``."""
    field, jump = 1, 1
    for _, _, stride in patchgan_convs(config):
        field += (KERNEL - 1) * jump
        jump *= stride
    return field


class PatchGAN(nn.Module):
    """(B, in_channels, H, W) → (B, 1, H', W') logits (no sigmoid: the GAN loss decides), H' = H/2**layers - 2.

    Weights are drawn from the global torch RNG (N(0, 0.02)) at construction.
    """

    def __init__(self, config: PatchGANConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or PatchGANConfig()
        bias = norm_uses_bias(config.norm)
        convs = patchgan_convs(config)
        layers: list[nn.Module] = []
        for i, (cin, cout, stride) in enumerate(convs):
            first, final = i == 0, i == len(convs) - 1
            layers.append(nn.Conv2d(cin, cout, KERNEL, stride=stride, padding=1, bias=bias or first or final))
            if not (first or final):
                layers.append(norm_layer(config.norm, cout))
            if not final:
                layers.append(nn.LeakyReLU(0.2))
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)
