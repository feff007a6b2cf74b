"""The avatar's cut-out: which pixels of a generated avatar are head and hair, and which are its plain background.

Pasted back as a square, an avatar's pale background covers the photo around the head. The avatars are drawn on
a plain background, so the background is the region connected to the crop's border whose colour stays close to
the border's own colour; the rest (head, hair) is opaque. Two ellipses placed on the avatar template bound the
guess: everything inside the face ellipse is kept, nothing outside the head ellipse (shoulders, corners) is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Ellipses in units of the crop side (template "avatar"): centre x, centre y, half width, half height.
FACE_ELLIPSE = (0.5, 0.53, 0.25, 0.3)
HEAD_ELLIPSE = (0.5, 0.45, 0.37, 0.45)


def ellipse(size: int, shape: tuple[float, float, float, float], softness: float, device=None) -> Tensor:
    """(S, S) in [0, 1]: 1 inside the ellipse, a linear ramp of ``softness`` (fraction of the side) at its edge."""
    cx, cy, rx, ry = shape
    coords = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    y, x = coords[:, None], coords[None, :]
    radius = (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2).sqrt()
    return ((1 - radius) * min(rx, ry) / max(softness, 1e-6) + 0.5).clamp(0, 1)


def background_colour(images: Tensor, ring: int) -> Tensor:
    """(B, 3, S, S) -> (B, 3): the median colour of the outer ``ring`` pixels (the top half of the crop's border,
    where the avatars have no clothes)."""
    top = images[:, :, :ring, :].flatten(2)
    sides = images[:, :, : images.shape[-2] // 2, :ring].flatten(2)
    right = images[:, :, : images.shape[-2] // 2, -ring:].flatten(2)
    return torch.cat([top, sides, right], dim=2).median(dim=2).values


def plain_region(avatars: Tensor, tolerance: float = 0.16) -> tuple[Tensor, Tensor]:
    """The avatars' plain background: ((B, 1, S, S) binary mask, (B, 3) its colour).

    The pixels connected to the crop's border whose colour (lightly blurred: the grain is not an edge) stays within
    ``tolerance`` (RGB distance) of :func:`background_colour` (the median of the top edge and upper sides)."""
    import kornia

    size = avatars.shape[-1]
    sigma = max(0.5, size / 128)
    smooth = kornia.filters.gaussian_blur2d(avatars, (5, 5), (sigma, sigma))
    colour = background_colour(smooth, max(2, size // 32))
    candidate = ((smooth - colour[:, :, None, None]).norm(dim=1, keepdim=True) < tolerance).float()
    edge = torch.zeros_like(candidate)
    rim = max(1, size // 64)
    edge[..., :rim, :] = edge[..., -rim:, :] = edge[..., :, :rim] = edge[..., :, -rim:] = 1
    return grow(edge * candidate, candidate), colour


def avatar_alpha(avatars: Tensor, tolerance: float = 0.16) -> Tensor:
    """Paste-back mask of generated avatars.

    Args:
        avatars: (B, 3, S, S) in [0, 1], aligned to the avatar template.
        tolerance: RGB distance to the background colour under which a border-connected pixel is background.

    Returns:
        (B, 1, S, S) in [0, 1]: 1 on head and hair, 0 on the background, soft edges.
    """
    import kornia

    size = avatars.shape[-1]
    sigma = max(0.5, size / 128)
    background, _ = plain_region(avatars, tolerance)
    kernel = torch.ones(9, 9, device=avatars.device)
    keep = kornia.morphology.closing(1 - background, kernel)  # fill the notches the grain leaves in the outline
    face = ellipse(size, FACE_ELLIPSE, 0.02, avatars.device).expand_as(keep)
    keep = grow(face, torch.maximum(keep, face))  # only what touches the face: no islands of photo hair
    alpha = keep * ellipse(size, HEAD_ELLIPSE, 0.08, avatars.device)
    soft = kornia.filters.gaussian_blur2d(alpha, (9, 9), (2 * sigma, 2 * sigma))
    # The soft edge lies inside the head, not across its outline: a blur centred on the outline pastes a ring of
    # the avatar's pale backdrop around every head (half the glow on 200 held-out photos: the model card).
    return ((2 * soft - 1).clamp(0, 1) * alpha).clamp(0, 1)


def flatten_background(avatars: Tensor, tolerance: float = 0.16) -> Tensor:
    """(B, 3, S, S) avatars in [0, 1] -> the same with their plain background painted one colour.

    The nets draw the cartoons' plain backgrounds speckled (16 base channels, CPU-trained: the model card); the
    region is found as :func:`plain_region` finds it and filled with its median colour, with a soft edge so the
    head's outline is not cut. Head, hair, shoulders — anything not of the background's colour — stay as drawn, and
    so does the template's face oval whatever its colour (a face as pale or dark as its background)."""
    import kornia

    size = avatars.shape[-1]
    sigma = max(0.5, size / 128)
    background, colour = plain_region(avatars, tolerance)
    background = background * (1 - ellipse(size, FACE_ELLIPSE, 0.02, avatars.device))
    soft = kornia.filters.gaussian_blur2d(background, (5, 5), (sigma, sigma)) * background  # soft inside only
    return avatars * (1 - soft) + colour[:, :, None, None] * soft


def grow(seeds: Tensor, within: Tensor) -> Tensor:
    """(B, 1, S, S) binary masks -> the part of ``within`` 8-connected to ``seeds`` (geodesic dilation)."""
    reached = seeds * within
    for _ in range(2 * seeds.shape[-1]):
        grown = F.max_pool2d(reached, 3, stride=1, padding=1) * within
        if torch.equal(grown, reached):
            break
        reached = grown
    return reached
