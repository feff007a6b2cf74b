"""Approach B (issue 7): move a cartoon onto a photo's layout with the 2D map that best takes the cartoon's
landmarks to the photo's (least squares over K >= 3 pairs), warped with kornia. The issue's map is a full affine;
a similarity (rotation, one scale, shift) is the option that does not stretch the cartoon along one axis."""

from __future__ import annotations

import torch
from torch import Tensor

#: The maps ``warp_to_layout`` can fit.
WARPS = ("affine", "similarity")


def _check_pairs(source: Tensor, target: Tensor, least: int) -> None:
    if source.shape != target.shape or source.shape[-2] < least or source.shape[-1] != 2:
        raise ValueError(f"need (B, K >= {least}, 2) point pairs, got {tuple(source.shape)} and {tuple(target.shape)}")


def fit_affine(source: Tensor, target: Tensor) -> Tensor:
    """Least-squares affine maps: source (B, K, 2), target (B, K, 2) points, K >= 3 -> (B, 2, 3) matrices M with
    ``target ≈ M @ [x, y, 1]``. Solved per item through the SVD-based pseudo-inverse (stable when the points are
    nearly collinear: the minimum-norm solution)."""
    _check_pairs(source, target, 3)
    ones = torch.ones_like(source[..., :1])
    design = torch.cat([source, ones], dim=-1)  # (B, K, 3)
    solution = torch.linalg.pinv(design) @ target  # (B, 3, 2)
    return solution.transpose(-1, -2)


def fit_similarity(source: Tensor, target: Tensor) -> Tensor:
    """Least-squares similarity maps (Umeyama's closed form, no reflection): source (B, K, 2), target (B, K, 2),
    K >= 2 -> (B, 2, 3) matrices ``[s R | t]`` minimising ``Σ ‖s R p + t − q‖²``."""
    _check_pairs(source, target, 2)
    mu_s, mu_t = source.mean(dim=-2, keepdim=True), target.mean(dim=-2, keepdim=True)
    s, t = source - mu_s, target - mu_t
    cov = t.transpose(-1, -2) @ s / source.shape[-2]  # (B, 2, 2)
    u, sigma, vh = torch.linalg.svd(cov)
    # flip the weakest axis when the best orthogonal map would be a mirror: a face is never drawn mirrored here
    d = torch.sign(torch.linalg.det(u @ vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    flip = torch.stack([torch.ones_like(d), d], dim=-1)  # (B, 2)
    rotation = (u * flip.unsqueeze(-2)) @ vh
    variance = s.pow(2).sum(dim=(-1, -2)) / source.shape[-2]  # (B,)
    scale = (sigma * flip).sum(dim=-1) / variance.clamp_min(1e-12)
    linear = scale[:, None, None] * rotation
    shift = mu_t.squeeze(-2) - (linear @ mu_s.transpose(-1, -2)).squeeze(-1)
    return torch.cat([linear, shift.unsqueeze(-1)], dim=-1)


def apply_affine(matrices: Tensor, points: Tensor) -> Tensor:
    """matrices (B, 2, 3), points (B, K, 2) -> (B, K, 2)."""
    return points @ matrices[..., :2].transpose(-1, -2) + matrices[..., 2].unsqueeze(-2)


def warp_to_layout(image: Tensor, source: Tensor, target: Tensor, kind: str = "affine") -> tuple[Tensor, Tensor]:
    """Warp images (B, C, H, W) so their landmarks ``source`` land as near ``target`` as a map of ``kind`` (one of
    ``WARPS``) allows; returns (warped images, the (B, 2, 3) matrices). Pixels from outside the image take the
    border colour (a cartoon's background), not black."""
    from kornia.geometry.transform import warp_affine

    if kind not in WARPS:
        raise ValueError(f"warp must be one of {', '.join(WARPS)}, got {kind!r}")
    matrices = (fit_affine if kind == "affine" else fit_similarity)(source, target)
    warped = warp_affine(image, matrices.to(image.dtype), dsize=(image.shape[-2], image.shape[-1]),
                         padding_mode="border", align_corners=True)  # fmt: skip
    return warped, matrices
