"""Approach B (issue 7): move a cartoon onto a photo's layout with the 2D map that best takes the cartoon's
landmarks to the photo's (least squares over K >= 3 pairs), warped with kornia. The issue's map is a full affine;
a similarity (rotation, one scale, shift) is the option that does not stretch the cartoon along one axis."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads with the first fit, not when the options check a warp's name
    from torch import Tensor

#: The maps ``warp_to_layout`` can fit.
WARPS = ("affine", "similarity")


def fit_affine(source: Tensor, target: Tensor) -> Tensor:
    """Least-squares affine maps: source (B, K, 2), target (B, K, 2) points, K >= 3 -> (B, 2, 3) matrices M with
    ``target ≈ M @ [x, y, 1]``. Solved per item through the SVD-based pseudo-inverse (stable when the points are
    nearly collinear: the minimum-norm solution)."""
    if source.shape != target.shape or source.shape[-2] < 3 or source.shape[-1] != 2:
        raise ValueError(f"need (B, K >= 3, 2) point pairs, got {tuple(source.shape)} and {tuple(target.shape)}")
    import torch

    ones = torch.ones_like(source[..., :1])
    design = torch.cat([source, ones], dim=-1)  # (B, K, 3)
    solution = torch.linalg.pinv(design) @ target  # (B, 3, 2)
    return solution.transpose(-1, -2)


def warp_to_layout(image: Tensor, source: Tensor, target: Tensor, kind: str = "affine") -> tuple[Tensor, Tensor]:
    """Warp images (B, C, H, W) so their landmarks ``source`` land as near ``target`` as a map of ``kind`` (one of
    ``WARPS``) allows; returns (warped images, the (B, 2, 3) matrices). Pixels from outside the image take the
    border colour (a cartoon's background), not black."""
    from kornia.geometry.transform import warp_affine

    if kind not in WARPS:
        raise ValueError(f"warp must be one of {', '.join(WARPS)}, got {kind!r}")
    from facetool.align import umeyama  # the core's least-squares similarity

    matrices = (fit_affine if kind == "affine" else umeyama)(source, target)
    warped = warp_affine(image, matrices.to(image.dtype), dsize=(image.shape[-2], image.shape[-1]),
                         padding_mode="border", align_corners=True)  # fmt: skip
    return warped, matrices
