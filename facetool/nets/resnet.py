"""ResNet generator in the CycleGAN style (Johnson et al. 2016 / Zhu et al. 2017).

c7s1-64, d128, d256, ``blocks`` residual blocks, u128, u64, c7s1-out: a 7×7 stem, two stride-2 downsamplings,
residual blocks at 1/4 resolution, two ×2 upsamplings and a 7×7 head. Any input size works: the input is padded
to a multiple of 4 and the output cropped back.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from facetool.nets.layers import (
    ACTIVATIONS,
    NORMS,
    PAD_MODES,
    UPSAMPLES,
    DictConfig,
    activation_layer,
    check_choice,
    crop_from_padded,
    init_weights,
    norm_layer,
    norm_uses_bias,
    pad_to_multiple,
)

__all__ = ["ResidualBlock", "ResnetConfig", "ResnetGenerator"]

DOWNSAMPLINGS = 2


@dataclass
class ResnetConfig(DictConfig):
    """ResNet generator hyper-parameters (defaults: CycleGAN's ``resnet_9blocks``, 11.4 M parameters).

    ``padding``: the padding of every 3×3/7×7 conv (``reflect`` as CycleGAN, against border artefacts) and of
    the input up to a multiple of 4. ``upsample``: ``deconv`` (3×3 stride-2 transposed conv) or ``resize``
    (bilinear ×2 then 3×3 conv, no checkerboard).
    """

    in_channels: int = 3
    out_channels: int = 3
    base: int = 64
    blocks: int = 9
    norm: str = "instance"
    padding: str = "reflect"
    max_channels: int = 256
    dropout: float = 0.0
    upsample: str = "deconv"
    final_activation: str = "tanh"

    def __post_init__(self) -> None:
        check_choice("ResnetConfig", "norm", self.norm, NORMS)
        check_choice("ResnetConfig", "padding", self.padding, PAD_MODES)
        check_choice("ResnetConfig", "upsample", self.upsample, UPSAMPLES)
        check_choice("ResnetConfig", "final_activation", self.final_activation, ACTIVATIONS)
        if self.blocks < 0:
            raise ValueError(f"ResnetConfig.blocks must be >= 0, got {self.blocks}")


def _padded_conv(cin: int, cout: int, kernel: int, padding: str, bias: bool) -> list[nn.Module]:
    """Same-size conv; reflect/replicate padding is a separate layer, zeros padding is the conv's own."""
    if padding == "zeros":
        return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias)]
    pad = nn.ReflectionPad2d(kernel // 2) if padding == "reflect" else nn.ReplicationPad2d(kernel // 2)
    return [pad, nn.Conv2d(cin, cout, kernel, bias=bias)]


class ResidualBlock(nn.Module):
    """x + (pad, conv3, norm, ReLU, [dropout], pad, conv3, norm)(x); (B, C, H, W) → (B, C, H, W)."""

    def __init__(self, channels: int, norm: str, padding: str, dropout: float = 0.0) -> None:
        super().__init__()
        bias = norm_uses_bias(norm)
        layers = [*_padded_conv(channels, channels, 3, padding, bias), norm_layer(norm, channels), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [*_padded_conv(channels, channels, 3, padding, bias), norm_layer(norm, channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN ResNet generator; (B, in_channels, H, W) → (B, out_channels, H, W) for any H, W.

    Weights are drawn from the global torch RNG (N(0, 0.02)) at construction.
    """

    def __init__(self, config: ResnetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ResnetConfig()
        bias = norm_uses_bias(config.norm)
        chans = [min(config.base * 2**i, config.max_channels) for i in range(DOWNSAMPLINGS + 1)]

        layers: list[nn.Module] = [
            *_padded_conv(config.in_channels, chans[0], 7, config.padding, bias),
            norm_layer(config.norm, chans[0]),
            nn.ReLU(),
        ]
        for i in range(DOWNSAMPLINGS):
            layers += [
                nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1, bias=bias),
                norm_layer(config.norm, chans[i + 1]),
                nn.ReLU(),
            ]
        layers += [ResidualBlock(chans[-1], config.norm, config.padding, config.dropout) for _ in range(config.blocks)]
        for i in range(DOWNSAMPLINGS, 0, -1):
            if config.upsample == "deconv":
                up = [nn.ConvTranspose2d(chans[i], chans[i - 1], 3, stride=2, padding=1, output_padding=1, bias=bias)]
            else:
                up = [
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                    *_padded_conv(chans[i], chans[i - 1], 3, config.padding, bias),
                ]
            layers += [*up, norm_layer(config.norm, chans[i - 1]), nn.ReLU()]
        layers += [
            *_padded_conv(chans[0], config.out_channels, 7, config.padding, bias=True),
            activation_layer(config.final_activation),
        ]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        size = (x.shape[-2], x.shape[-1])
        pad_mode = "reflect" if self.config.padding == "zeros" else self.config.padding
        x, offset = pad_to_multiple(x, 2**DOWNSAMPLINGS, pad_mode)
        return crop_from_padded(self.model(x), offset, size)
