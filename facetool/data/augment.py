"""Random geometric augmentation of images together with their landmarks: one matrix moves both.

A draw is a similarity about the image centre — rotation, zoom, shift — so the landmark labels stay exact: the
image is resampled with kornia's ``warp_affine`` and the points go through the very same (B, 2, 3) matrix.
Pixel convention of :mod:`facetool.align`: pixel centres at integers, ``warp_affine(..., align_corners=True)``.

Example::

    generator = torch.Generator().manual_seed(0)
    images, points = augment(images, points, generator)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["apply_affine", "augment", "random_affine", "transform_points"]


def random_affine(
    batch: int,
    size: tuple[int, int],
    generator: torch.Generator | None = None,
    *,
    max_rotation: float = 15.0,
    scale: tuple[float, float] = (1.0, 1.3),
    max_shift: float = 0.1,
    points: torch.Tensor | None = None,
    margin: float = 2.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    r"""Draw ``batch`` similarities (old pixel -> new pixel) about the image centre.

    Each is ``p' = s R(a) (p - c) + c + t`` with ``a`` uniform in ``[-max_rotation, max_rotation]`` degrees
    (positive turns the picture clockwise on screen, y pointing down), ``s`` uniform in ``scale`` and each
    component of ``t`` uniform in ``[-max_shift, max_shift] x`` the image side. With ``points`` the shift range
    is narrowed per item so every point stays ``margin`` pixels inside the image whenever that is possible
    (when it is not, the points are centred instead).

    Args:
        batch: number of matrices.
        size: (H, W) of the images.
        generator: torch generator for reproducible draws (CPU).
        points: :math:`(B, N, 2)` optional pixel points to keep inside.

    Returns:
        :math:`(B, 2, 3)` matrices.
    """
    import torch

    dtype = dtype or (points.dtype if points is not None and points.is_floating_point() else torch.float32)
    height, width = size
    u = torch.rand(batch, 4, generator=generator, dtype=torch.float64)
    angle = (2 * u[:, 0] - 1) * math.radians(max_rotation)
    factor = scale[0] + (scale[1] - scale[0]) * u[:, 1]
    cos, sin = torch.cos(angle) * factor, torch.sin(angle) * factor
    linear = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
    centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)
    base = centre - linear @ centre  # translation that keeps the centre fixed
    extent = torch.tensor([width - 1, height - 1], dtype=torch.float64)
    low = torch.full((batch, 2), -1.0, dtype=torch.float64) * max_shift * extent
    high = -low
    if points is not None and points.shape[1] > 0:
        moved = points.to(torch.float64).cpu() @ linear.transpose(1, 2) + base[:, None, :]
        fit_low = margin - moved.amin(1)  # shift needed to keep the left/top-most point inside
        fit_high = extent - margin - moved.amax(1)
        feasible = fit_low <= fit_high
        low_c, high_c = torch.maximum(low, fit_low), torch.minimum(high, fit_high)
        empty = low_c > high_c  # the shift range and the fit range do not meet: take the fit range's nearest end
        nearest = torch.where(fit_low > high, fit_low, fit_high)
        low_c = torch.where(empty, nearest, low_c)
        high_c = torch.where(empty, nearest, high_c)
        middle = 0.5 * (fit_low + fit_high)
        low = torch.where(feasible, low_c, middle)
        high = torch.where(feasible, high_c, middle)
    shift = low + (high - low) * u[:, 2:4]
    matrices = torch.cat([linear, (base + shift)[:, :, None]], -1)
    return matrices.to(device=device if device is not None else "cpu", dtype=dtype)


def transform_points(points: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    r"""Points through affine matrices.

    Args:
        points: :math:`(B, N, 2)`.
        matrices: :math:`(B, 2, 3)`.

    Returns:
        :math:`(B, N, 2)`.
    """
    m = matrices.to(points.dtype if points.is_floating_point() else matrices.dtype)
    return points.to(m.dtype) @ m[:, :, :2].transpose(1, 2) + m[:, None, :, 2]


def apply_affine(
    image: torch.Tensor,
    points: torch.Tensor,
    matrices: torch.Tensor,
    padding_mode: str = "border",
    fill_value: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Warp images and move their points with the same matrices.

    Args:
        image: :math:`(B, C, H, W)` float, or uint8 (resampled in float, rounded back).
        points: :math:`(B, N, 2)` pixels.
        matrices: :math:`(B, 2, 3)` old pixel -> new pixel.
        padding_mode: what fills the uncovered border: ``border`` (repeat the edge), ``zeros``, ``reflection``,
            or ``fill`` with ``fill_value`` (:math:`(C,)` or :math:`(B, C)`, e.g. each cartoon's background).

    Returns:
        (image :math:`(B, C, H, W)` same dtype, points :math:`(B, N, 2)`).
    """
    import torch
    from kornia.geometry.transform import warp_affine

    work = image if image.is_floating_point() else image.float()
    fill = None
    if padding_mode == "fill":
        if fill_value is None:
            raise ValueError("padding_mode 'fill' needs a fill_value")
        fill = torch.as_tensor(fill_value, device=work.device, dtype=work.dtype)
        fill = fill[..., None, None] if fill.ndim == 2 else fill  # (B, C) -> (B, C, 1, 1) broadcasts
    warped = warp_affine(
        work,
        matrices.to(device=work.device, dtype=work.dtype),
        (image.shape[-2], image.shape[-1]),
        mode="bilinear",
        padding_mode=padding_mode,
        align_corners=True,
        fill_value=fill,
    )
    if not image.is_floating_point():
        info = torch.iinfo(image.dtype)
        warped = warped.round().clamp(info.min, info.max).to(image.dtype)
    return warped, transform_points(points, matrices.to(points.device))


def augment(
    image: torch.Tensor,
    points: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    max_rotation: float = 15.0,
    scale: tuple[float, float] = (1.0, 1.3),
    max_shift: float = 0.1,
    keep_inside: bool = True,
    padding_mode: str = "border",
    fill_value: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One random rotation (±15°), zoom (1.0–1.3) and shift (±10 %) per item, applied to image and points alike.

    Args:
        image: :math:`(B, C, H, W)` float or uint8.
        points: :math:`(B, N, 2)` landmark pixels (centres at integers).
        generator: torch generator (CPU) for reproducible draws.
        keep_inside: narrow the shift so the points stay inside the image when they can.
        padding_mode, fill_value: what fills the uncovered border (see :func:`apply_affine`).

    Returns:
        (image :math:`(B, C, H, W)`, points :math:`(B, N, 2)`).
    """
    if image.ndim != 4 or points.ndim != 3 or points.shape[-1] != 2 or points.shape[0] != image.shape[0]:
        raise ValueError(f"augment wants image (B, C, H, W) and points (B, N, 2), got {image.shape}, {points.shape}")
    matrices = random_affine(
        image.shape[0],
        (image.shape[-2], image.shape[-1]),
        generator,
        max_rotation=max_rotation,
        scale=scale,
        max_shift=max_shift,
        points=points if keep_inside else None,
        dtype=points.dtype if points.is_floating_point() else None,
    )
    return apply_affine(image, points, matrices, padding_mode, fill_value)
