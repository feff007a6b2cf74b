"""Per-image texture faults of generated images, measured without a target: checkerboard and grain.

Both take (B, C, H, W) float tensors in [0, 1] and return (B,) float tensors. Neither has an absolute scale worth
quoting alone: compare a generator's outputs with real images of the kind it imitates, measured the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .image import to_luma

if TYPE_CHECKING:
    import torch

#: Upsampling by 2 twice (CycleGAN's decoder) repeats its kernel every 2 and every 4 output pixels: the artefacts
#: sit at the frequencies that are multiples of a quarter of the side.
CHECKER_PERIODS = 4
#: Half-width of the spectrum neighbourhood a peak is compared with.
CHECKER_NEIGHBOURS = 2


def checkerboard(images: torch.Tensor) -> torch.Tensor:
    """How far the luma spectrum peaks at the upsampling artefacts' frequencies: (B, C, H, W) -> (B,).

    For every frequency (k·H/4, l·W/4) but zero, the log10 ratio of its power to the median power of the 5×5 bins
    around it (itself left out), averaged. A periodic pattern of period 2 or 4 (a transposed convolution's
    uneven overlap) is a sharp peak there; picture content has a smooth spectrum, so real images score near a
    constant a little below 0 (the median of a noisy spectrum exceeds most single bins). H and W multiples of 4.
    """
    import torch

    h, w = images.shape[-2:]
    if h % CHECKER_PERIODS or w % CHECKER_PERIODS:
        raise ValueError(f"image size {h}x{w} must be a multiple of {CHECKER_PERIODS}")
    luma = to_luma(images.float())[:, 0]
    power = torch.fft.fft2(luma - luma.mean(dim=(-2, -1), keepdim=True)).abs().pow(2) + 1e-12
    r = CHECKER_NEIGHBOURS
    offsets = [(i, j) for i in range(-r, r + 1) for j in range(-r, r + 1) if (i, j) != (0, 0)]
    ratios = []
    for k in range(CHECKER_PERIODS):
        for m in range(CHECKER_PERIODS):
            if k == m == 0:
                continue
            u, v = k * h // CHECKER_PERIODS, m * w // CHECKER_PERIODS
            around = torch.stack([power[:, (u + i) % h, (v + j) % w] for i, j in offsets], dim=1)
            ratios.append((power[:, u, v] / around.median(dim=1).values).log10())
    return torch.stack(ratios, dim=1).mean(dim=1)


def grain(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between the luma and its 3×3 median, on the 0-1 scale: (B, C, H, W) -> (B,).

    A median keeps flat areas and straight edges and removes specks, so this is the speckle left in what should be
    flat: near 0 for flat-coloured drawings, larger for noisy ones.
    """
    from kornia.filters import median_blur

    luma = to_luma(images.float())
    return (luma - median_blur(luma, (3, 3))).abs().flatten(1).mean(dim=1)
