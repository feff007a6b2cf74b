"""``-O clean=flat``: the avatar painted in a few flat colours, as the training cartoons are.

The 16-channel generator keeps some of the photo's shading and grain (card, "Flat colours"); a cartoon's skin, hair
and background are each one colour. Each avatar is smoothed with edges kept (two bilateral passes), its colours are
clustered in Lab (k-means from luminance quantiles, so the result does not depend on a seed), clusters nearer than
``merge`` ΔE are joined (so a face's shading becomes one skin colour rather than bands), every pixel takes its
cluster's colour, and a 3×3 median removes the single pixels left at the clusters' borders.
"""

from __future__ import annotations

import torch
from torch import Tensor


def kmeans_lab(points: Tensor, clusters: int, iterations: int) -> tuple[Tensor, Tensor]:
    """(B, N, 3) Lab points -> ((B, K, 3) centres, (B, N) assignment); centres start at luminance quantiles."""
    batch, count, _ = points.shape
    order = points[..., 0].argsort(dim=1)
    start = order[:, torch.linspace(0, count - 1, clusters, device=points.device).long()]
    centres = torch.gather(points, 1, start[..., None].expand(-1, -1, 3))
    for _ in range(iterations):
        assign = torch.cdist(points, centres).argmin(dim=2)
        sums = torch.zeros_like(centres).scatter_add_(1, assign[..., None].expand(-1, -1, 3), points)
        ones = torch.ones_like(points[..., 0])
        counts = torch.zeros(batch, clusters, device=points.device).scatter_add_(1, assign, ones)
        # An empty cluster keeps its centre (it may win pixels back in the next pass).
        centres = torch.where(counts[..., None] > 0, sums / counts.clamp_min(1)[..., None], centres)
    return centres, torch.cdist(points, centres).argmin(dim=2)


def merge_close(centres: Tensor, assign: Tensor, merge: float) -> Tensor:
    """One image's (K, 3) centres and (N,) assignment -> (N, 3) colours, after joining, nearest pair first, the
    clusters whose centres are under ``merge`` apart (the joined centre is the pixel-weighted mean)."""
    centres = centres.clone()
    counts = torch.bincount(assign, minlength=len(centres)).to(centres.dtype)
    assign = assign.clone()
    while True:
        alive = (counts > 0).nonzero().flatten()
        if len(alive) < 2:
            break
        gaps = torch.cdist(centres[alive], centres[alive]).fill_diagonal_(float("inf"))
        nearest = int(gaps.argmin())
        if gaps.flatten()[nearest] >= merge:
            break
        keep, drop = alive[nearest // len(alive)], alive[nearest % len(alive)]
        total = counts[keep] + counts[drop]
        centres[keep] = (centres[keep] * counts[keep] + centres[drop] * counts[drop]) / total
        counts[keep], counts[drop] = total, 0
        assign[assign == drop] = keep
    return centres[assign]


def flat_colours(avatars: Tensor, clusters: int = 10, merge: float = 12.0, iterations: int = 8) -> Tensor:
    """Avatars painted in flat colours.

    Args:
        avatars: (B, 3, S, S) in [0, 1].
        clusters: colours found per avatar before joining.
        merge: clusters whose Lab centres are closer than this (ΔE) become one.
        iterations: k-means passes.

    Returns:
        (B, 3, S, S) in [0, 1], each avatar in at most ``clusters`` colours.
    """
    import kornia

    smooth = avatars
    for _ in range(2):
        smooth = kornia.filters.bilateral_blur(smooth, (5, 5), 0.1, (1.5, 1.5))
    batch, _, height, width = smooth.shape
    lab = kornia.color.rgb_to_lab(smooth).flatten(2).transpose(1, 2)  # (B, N, 3)
    centres, assign = kmeans_lab(lab, clusters, iterations)
    painted = torch.stack([merge_close(centres[i], assign[i], merge) for i in range(batch)])
    rgb = kornia.color.lab_to_rgb(painted.transpose(1, 2).reshape(batch, 3, height, width)).clamp(0, 1)
    return kornia.filters.median_blur(rgb, (3, 3))
