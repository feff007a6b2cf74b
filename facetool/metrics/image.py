"""Per-item image metrics of paired data: L1, SSIM, PSNR and (for line drawings) chamfer distance.

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


#: Chamfer distances are capped at this fraction of the image side (a missing stroke costs the cap, not the
#: distance to whatever ink happens to be farthest away).
CHAMFER_CAP = 1 / 8


def chamfer(output: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Symmetric chamfer distance between line drawings, in pixels per item: (B, C, H, W) x2 -> (B,).

    Both are binarised (ink: luma below ``threshold``); the value is the mean of the two directions — the average
    distance from each output ink pixel to the nearest target ink, and from each target ink pixel to the nearest
    output ink — each capped at ``CHAMFER_CAP`` of the side. A side without ink counts the cap, unless both are
    blank (0). 0 = same lines.
    """
    import torch

    from facetool.losses.image import truncated_distance_transform

    output, target = match_channels(output, target)
    out_ink = (to_luma(output.float()) < threshold).float()
    tgt_ink = (to_luma(target.float()) < threshold).float()
    cap = max(1.0, CHAMFER_CAP * output.shape[-1])
    to_target = truncated_distance_transform(tgt_ink, cap)
    to_output = truncated_distance_transform(out_ink, cap)

    def directed(ink, distances):
        count = ink.flatten(1).sum(1)
        mean = (ink * distances).flatten(1).sum(1) / count.clamp_min(1)
        return torch.where(count > 0, mean, torch.full_like(mean, cap))

    value = 0.5 * (directed(out_ink, to_target) + directed(tgt_ink, to_output))
    both_blank = (out_ink.flatten(1).sum(1) == 0) & (tgt_ink.flatten(1).sum(1) == 0)
    return torch.where(both_blank, torch.zeros_like(value), value)
