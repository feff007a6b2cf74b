"""The pencil-sketch runner: a colour dodge of the grayscale face with its blurred negative."""

from __future__ import annotations

import kornia
import torch
from torch import nn


def pencil_sketch(image: torch.Tensor, sigma: float, gamma: float) -> torch.Tensor:
    """Sketch of an RGB image.

    Args:
        image: (B, 3, H, W) in [0, 1].
        sigma: blur in pixels at H = 256 (scaled with H so every size looks alike).
        gamma: exponent applied to the result (> 1 darkens strokes).

    Returns:
        (B, 1, H, W) in [0, 1]: white paper, dark strokes where the photo has edges.
    """
    gray = kornia.color.rgb_to_grayscale(image)
    s = sigma * image.shape[-1] / 256
    k = int(2 * round(3 * s) + 1)
    blurred_negative = kornia.filters.gaussian_blur2d(1 - gray, (k, k), (s, s), border_type="replicate")
    # Colour dodge: flat areas (gray ≈ blur) go white, edges stay dark.
    dodge = gray / (1 - blurred_negative).clamp_min(1e-3)
    return dodge.clamp(0, 1).pow(gamma)


class PencilSketch(nn.Module):
    def __init__(self, options) -> None:
        super().__init__()
        self.sigma, self.gamma = options.blur, options.darkness

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """crops: (B, 3, S, S) in [0, 1] -> (B, 1, S, S) in [0, 1]."""
        return pencil_sketch(crops, self.sigma, self.gamma)
