"""Random geometric augmentation of images together with their landmarks: one matrix moves both.

A draw is a similarity about the image centre — rotation, zoom, shift — so the landmark labels stay exact: the
image is resampled with kornia's ``warp_affine`` and the points go through the very same (B, 2, 3) matrix.
Pixel convention of :mod:`facetool.align`: pixel centres at integers, ``warp_affine(..., align_corners=True)``.
:func:`move_parts` moves each point on its own instead, the image bent with it by a thin-plate spline
(:func:`tps_warp`). Colour (:func:`color_jitter`) and cut-off sides (:func:`cut_edges`) leave the points alone.

Example::

    generator = torch.Generator().manual_seed(0)
    images, points = augment(images, points, generator)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = [
    "apply_affine", "augment", "color_jitter", "crowd_sides", "cut_edges", "cut_sides", "move_parts", "random_affine",
    "tps_warp", "transform_points",
]  # fmt: skip


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


def tps_warp(image: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Bend each image so that its ``source`` points land on ``target``, its four corners and edge midpoints fixed.

    A thin-plate spline (kornia) through the points and the 8 border anchors: the picture moves smoothly, most near
    the points that moved; the anchors stay put and the edges between them move little.

    Args:
        image: :math:`(B, C, H, W)` float.
        source: :math:`(B, N, 2)` pixels (centres at integers) of parts in ``image``.
        target: :math:`(B, N, 2)` where each should be after the warp.

    Returns:
        :math:`(B, C, H, W)`; a part drawn at ``source[b, k]`` now sits at ``target[b, k]``.
    """
    import torch
    from kornia.geometry import create_meshgrid
    from kornia.geometry.transform import get_tps_transform

    batch, _, height, width = image.shape
    w, h = width - 1, height - 1
    frame = [[0, 0], [w / 2, 0], [w, 0], [0, h / 2], [w, h / 2], [0, h], [w / 2, h], [w, h]]
    anchors = torch.tensor(frame, device=image.device, dtype=image.dtype).expand(batch, -1, -1)
    scale = torch.tensor([2 / w, 2 / h], device=image.device, dtype=image.dtype)

    def unit(points: torch.Tensor) -> torch.Tensor:  # the corner-aligned frame of grid_sample(align_corners=True)
        return torch.cat([points.to(image.dtype), anchors], 1) * scale - 1

    # Each output pixel samples from where the spline sends it: the spline is fitted target -> source.
    centres = unit(source)
    kernel, affine = get_tps_transform(unit(target), centres)
    # The spline at every pixel, f(p) = a0 + A p + sum_k w_k U(|p - c_k|), U(r) = r² log r = ½ r² log r². kornia's
    # warp_image_tps forms a (B, H*W, N, 2) product for it, a fifth of a CPU training step at 128² (measured); two
    # matmuls give the same map (as close to float64 as kornia's) in a third of the time.
    grid = create_meshgrid(height, width, normalized_coordinates=True, device=image.device, dtype=image.dtype)
    grid = grid.reshape(1, -1, 2).expand(batch, -1, -1)
    norms = grid.square().sum(-1, keepdim=True) + centres.square().sum(-1)[:, None]
    squared = torch.baddbmm(norms, grid, centres.transpose(1, 2), alpha=-2).clamp_(min=1e-20)  # r² at a centre: 0
    sources = torch.baddbmm(affine[:, :1], squared.log().mul_(squared), kernel * 0.5) + grid @ affine[:, 1:]
    return torch.nn.functional.grid_sample(image, sources.view(batch, height, width, 2), mode="bilinear",
                                           padding_mode="border", align_corners=True)  # fmt: skip


def move_parts(
    image: torch.Tensor,
    points: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    sigma: float = 3.0,
    max_move: float = 2.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Move each landmark on its own by a random offset and bend the image with it (:func:`tps_warp`).

    :func:`augment` moves all points by one similarity, so the distance between the eyes always scales with the
    head: a landmark net trained only on that can read the eyes off the head's outline and barely see eyes that sit
    wider on the same head. With parts moved apart, closer, up and down on their own it must look at the parts.

    Args:
        image: :math:`(B, C, H, W)` float.
        points: :math:`(B, N, 2)` landmark pixels.
        generator: torch generator (CPU) for reproducible draws.
        sigma: the offsets' standard deviation, px per axis.
        max_move: offsets clipped at this many ``sigma``, so neighbouring parts keep their order.

    Returns:
        (image :math:`(B, C, H, W)`, points :math:`(B, N, 2)`).
    """
    import torch

    if image.ndim != 4 or points.ndim != 3 or points.shape[0] != image.shape[0] or not image.is_floating_point():
        raise ValueError(f"move_parts wants float (B, C, H, W) and (B, N, 2), got {image.shape}, {points.shape}")
    offsets = (torch.randn(points.shape, generator=generator) * sigma).clamp(-max_move * sigma, max_move * sigma)
    moved = points + offsets.to(points.device, points.dtype)
    return tps_warp(image, points, moved), moved


def color_jitter(
    image: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    hue: float = 0.5,
    saturation: tuple[float, float] = (0.0, 1.5),
    brightness: float = 0.15,
    contrast: tuple[float, float] = (0.7, 1.3),
    grayscale: float = 0.2,
) -> torch.Tensor:
    r"""One random hue turn, saturation, brightness and contrast per item, and grey for some: colour stops being a cue.

    A net that reads geometry (landmarks) off images trained this way must find the parts by their shapes, so a
    generator trained against it cannot please it with a colour blob where a part should be.

    Args:
        image: :math:`(B, 3, H, W)` float RGB in [0, 1].
        generator: torch generator (CPU) for reproducible draws.
        hue: the hue turns uniformly by up to ± this fraction of the full circle (0.5: any hue).
        saturation: range of the saturation factor (0: grey).
        brightness: added uniformly in ± this.
        contrast: range of the factor that scales each image about its mean.
        grayscale: chance that an item is made grey after the rest.

    Returns:
        :math:`(B, 3, H, W)` in [0, 1].
    """
    import torch
    from kornia.color import rgb_to_grayscale
    from kornia.enhance import adjust_hue, adjust_saturation

    if image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
        raise ValueError(f"color_jitter wants a float (B, 3, H, W) image, got {image.dtype} {tuple(image.shape)}")
    batch = image.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        draw = torch.rand(batch, generator=generator).to(image.device, image.dtype)
        return (low + (high - low) * draw).view(batch, 1, 1, 1)

    out = adjust_hue(image, uniform(-hue, hue).flatten() * 2 * math.pi)
    out = adjust_saturation(out, uniform(*saturation).flatten())
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * uniform(*contrast) + mean + uniform(-brightness, brightness)
    grey = (torch.rand(batch, generator=generator) < grayscale).to(image.device).view(batch, 1, 1, 1)
    out = torch.where(grey, rgb_to_grayscale(out).expand_as(out), out)
    return out.clamp(0, 1)


def cut_edges(
    image: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    chance: float = 0.5,
    max_cut: float = 0.35,
    fill: str = "border",
) -> torch.Tensor:
    r"""Make some items look like a photo that ends inside the crop: sides cut, what was cut filled.

    :func:`facetool.align.crop_faces` fills what lies past a photo's edge (by default by repeating the edge), so a
    face cropped tight reaches a net with filled margins; training on such items teaches it that case.
    Each item is cut with probability ``chance``; then each of its four sides, with probability 1/2, by a uniform
    fraction of the side up to ``max_cut``; what was cut is filled as ``fill`` says (:func:`cut_sides`).

    Args:
        image: :math:`(B, C, H, W)`.
        generator: torch generator (CPU) for reproducible draws.

    Returns:
        :math:`(B, C, H, W)`, the same dtype.
    """
    import torch

    if image.ndim != 4 or not 0 <= chance <= 1 or not 0 <= max_cut < 0.5:
        raise ValueError(f"cut_edges wants (B, C, H, W), chance 0-1 and max_cut below 0.5; got {tuple(image.shape)}")
    batch = image.shape[0]
    picked = torch.rand(batch, generator=generator) < chance
    sides = (torch.rand(batch, 4, generator=generator) < 0.5) & picked[:, None]
    cuts = torch.rand(batch, 4, generator=generator) * max_cut * sides
    return cut_sides(image, cuts, fill)


def cut_sides(image: torch.Tensor, cuts: torch.Tensor, fill: str = "border") -> torch.Tensor:
    r"""Cut each item's sides by the fractions given and fill what was cut (by default: the kept edge repeated).

    Args:
        image: :math:`(B, C, H, W)`.
        cuts: :math:`(B, 4)` or :math:`(4,)` fractions of the side (left, top, right, bottom), each below 0.5.
        fill: ``border`` (the kept edge repeated), ``edge-colour`` (one flat colour, the median of the kept part's
            outermost pixels) or ``auto`` (``edge-colour`` where less than
            :data:`facetool.align.AUTO_EDGE_COLOUR_BELOW` of the item is kept): as :func:`facetool.align.crop_faces`
            fills what lies past a photo.

    Returns:
        :math:`(B, C, H, W)`, the same dtype.
    """
    import torch

    batch, _, height, width = image.shape
    cuts = torch.as_tensor(cuts, dtype=torch.float64).expand(batch, 4)
    if cuts.min() < 0 or cuts.max() >= 0.5 or fill not in ("border", "edge-colour", "auto"):
        raise ValueError("cut_sides wants fractions from 0 to below 0.5 and fill border, edge-colour or auto")
    from facetool.align import AUTO_EDGE_COLOUR_BELOW

    kept_share = (1 - cuts[:, 0] - cuts[:, 2]) * (1 - cuts[:, 1] - cuts[:, 3])
    out = image.clone()
    for b in torch.nonzero(cuts.amax(dim=1) > 0).flatten().tolist():
        left, top = int(cuts[b, 0] * width), int(cuts[b, 1] * height)
        right, bottom = width - 1 - int(cuts[b, 2] * width), height - 1 - int(cuts[b, 3] * height)
        rows = torch.arange(height, device=image.device).clamp(top, bottom)
        cols = torch.arange(width, device=image.device).clamp(left, right)
        out[b] = image[b][:, rows][:, :, cols]
        if fill == "edge-colour" or (fill == "auto" and kept_share[b] < AUTO_EDGE_COLOUR_BELOW):
            from facetool.align import edge_colour

            kept = image[b : b + 1, :, top : bottom + 1, left : right + 1]
            inside = torch.zeros_like(out[b, :1])
            inside[:, top : bottom + 1, left : right + 1] = 1
            out[b] = out[b] * inside + edge_colour(kept)[0] * (1 - inside)
    return out


def crowd_sides(image: torch.Tensor, fraction: float) -> torch.Tensor:
    r"""Each aligned face crop with neighbours at its sides, as a crop of a group photo has: the left and right
    ``fraction`` of its width replaced by the middle of other items' faces (the next item's at the left, the one
    before at the right; a batch of one crowds itself, mirrored).

    Args:
        image: :math:`(B, C, H, W)` aligned crops (each face in the middle).
        fraction: width of each side's strip, a fraction of W below 0.5.

    Returns:
        :math:`(B, C, H, W)`, the same dtype.
    """
    import torch

    if not 0 <= fraction < 0.5:
        raise ValueError("crowd_sides wants a fraction from 0 to below 0.5")
    width = image.shape[-1]
    strip = int(round(fraction * width))
    if strip == 0:
        return image.clone()
    others = image.flip(-1) if len(image) == 1 else image
    start = (width - strip) // 2  # the neighbour's face: its crop's middle columns
    out = image.clone()
    out[..., :strip] = torch.roll(others, -1, dims=0)[..., start : start + strip]
    out[..., width - strip :] = torch.roll(others, 1, dims=0)[..., start : start + strip]
    return out
