"""Per-item image metrics of paired data: L1, SSIM and PSNR between an output and its target.

All take (B, C, H, W) float tensors in [0, 1] and return (B,) float tensors, one value per item. When the channel
counts differ (a 3-channel output against a 1-channel drawing) both are compared as luma.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: PSNR of identical images would be infinite (not JSON): the MSE is floored so the ceiling is 100 dB.
PSNR_MSE_FLOOR = 1e-10


def to_luma(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 1, H, W) ITU-R 601 luma; (B, 1, H, W) is returned as is."""
    if x.shape[1] == 1:
        return x
    weights = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x[:, :3] * weights).sum(dim=1, keepdim=True)


def match_channels(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pair with equal channel counts: unchanged when they agree, else both as luma."""
    if a.shape[:1] + a.shape[2:] != b.shape[:1] + b.shape[2:]:
        raise ValueError(f"images differ in batch or size: {tuple(a.shape)} and {tuple(b.shape)}")
    return (a, b) if a.shape[1] == b.shape[1] else (to_luma(a), to_luma(b))


def l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference per item: (B, C, H, W) x2 -> (B,)."""
    output, target = match_channels(output, target)
    return (output - target).abs().flatten(1).mean(dim=1)


def psnr(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per item, peak 1: (B, C, H, W) x2 -> (B,); at most 100 dB."""
    output, target = match_channels(output, target)
    mse = (output - target).pow(2).flatten(1).mean(dim=1).clamp_min(PSNR_MSE_FLOOR)
    return -10.0 * mse.log10()


def ssim(output: torch.Tensor, target: torch.Tensor, window_size: int = 11) -> torch.Tensor:
    """Mean structural similarity per item (Gaussian window 11, sigma 1.5, peak 1): (B, C, H, W) x2 -> (B,).

    ``kornia.metrics.ssim`` gives the SSIM map; its mean over channels and pixels is the item's SSIM (1 = equal).
    """
    from kornia.metrics import ssim as ssim_map

    output, target = match_channels(output, target)
    return ssim_map(output.float(), target.float(), window_size, max_val=1.0).flatten(1).mean(dim=1)
