"""A small z-buffered triangle rasteriser in torch (orthographic; for depth / correspondence / mask maps).

Pixel convention as in :mod:`facetool.align`: x to the right, y down, pixel ``(row i, column j)`` has its centre at
``(x=j, y=i)``. A pixel belongs to a triangle when its centre lies inside it or on its edges (so meshes have no
cracks along shared edges); the z-buffer keeps, per pixel, the fragment with the smallest z (nearest the camera),
ties going to the lower triangle id, so the result does not depend on the order work is done in.

How it stays fast without a loop over triangles:

1. Setup (float64, per triangle): the bounding box clipped to the image, and the barycentric weights and z as
   affine functions of the pixel offset from the box corner (small offsets keep float32 rounding far below the
   inside-test tolerance).
2. Candidates: triangles are grouped by the power-of-two class of their box's longer side (a handful of groups
   for a face mesh) and each group is tested on one padded (G, h, w) grid of offsets — broadcast multiply-adds,
   no per-pixel gathers. Cost grows with the covered pixels, not with pixels × triangles; very large triangles
   are split into chunks to bound memory.
3. Z-buffer: each fragment becomes one int64 key, (order-preserving bits of float32 z) << 32 | triangle id, and
   one ``scatter_reduce(amin)`` per group keeps the nearest fragment per pixel, ties to the lower id.
4. Attributes are interpolated only at the visible pixels.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from torch import Tensor

_CANDIDATE_CHUNK = 1 << 22  # candidate pixels per grid: bounds memory for very large triangles


class Raster(NamedTuple):
    """What :func:`rasterize` returns.

    Attributes:
        attributes: (C, H, W) interpolated vertex attributes; 0 where no triangle covers the pixel.
        mask: (H, W) bool, True where some triangle covers the pixel centre.
        triangle_id: (H, W) int64 id of the visible triangle, -1 where none.
        barycentric: (H, W, 3) weights of the visible triangle's vertices at the pixel centre; 0 where none.
    """

    attributes: Tensor
    mask: Tensor
    triangle_id: Tensor
    barycentric: Tensor


def rasterize(
    vertices: Tensor,
    triangles: Tensor,
    attributes: Tensor | None,
    size: tuple[int, int],
    *,
    eps: float = 1e-6,
) -> Raster:
    r"""Rasterise a triangle mesh with a z-buffer and interpolate per-vertex attributes.

    Projection is orthographic: ``x, y`` are already pixel coordinates and ``z`` only orders the fragments, so
    linear interpolation in screen space is exact for ``z`` and for any attribute that varies affinely over each
    3D triangle. Either winding is accepted (no back-face culling: the z-buffer resolves what is hidden);
    degenerate (zero-area) triangles draw nothing.

    Args:
        vertices: :math:`(V, 3)` float ``x, y`` in pixels (pixel centres at integers) and ``z`` (smaller =
            nearer).
        triangles: :math:`(F, 3)` integer vertex ids.
        attributes: :math:`(V, C)` float per-vertex values to interpolate (depth, canonical coordinates,
            UVs...), or ``None`` for none (``C = 0``).
        size: ``(H, W)`` of the output.
        eps: tolerance of the inside test on barycentric weights, so pixel centres exactly on a shared edge are
            not lost to rounding in both neighbours.

    Returns:
        :class:`Raster`: attributes :math:`(C, H, W)`, mask :math:`(H, W)`, triangle_id :math:`(H, W)`,
        barycentric :math:`(H, W, 3)`.

    Example:
        >>> import torch
        >>> v = torch.tensor([[0.0, 0.0, 1.0], [9.0, 0.0, 1.0], [0.0, 9.0, 1.0]])
        >>> out = rasterize(v, torch.tensor([[0, 1, 2]]), v[:, 2:], (10, 10))
        >>> int(out.mask.sum())  # the 55 pixel centres with x + y <= 9
        55
    """
    import torch

    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {tuple(vertices.shape)}")
    if triangles.ndim != 2 or triangles.shape[1] != 3:
        raise ValueError(f"triangles must have shape (F, 3), got {tuple(triangles.shape)}")
    if attributes is not None and (attributes.ndim != 2 or attributes.shape[0] != vertices.shape[0]):
        raise ValueError(f"attributes must have shape ({vertices.shape[0]}, C), got {tuple(attributes.shape)}")
    height, width = int(size[0]), int(size[1])
    device = vertices.device
    dtype = vertices.dtype if vertices.is_floating_point() else torch.float32
    tris = triangles.to(device=device, dtype=torch.long)
    channels = 0 if attributes is None else attributes.shape[1]
    setup = _setup(vertices, tris, height, width, dtype)

    # Z-buffer as one int64 per pixel: (order-preserving bits of float32 z) << 32 | triangle id. A single
    # scatter-amin then keeps the nearest fragment and, on equal z, the lowest triangle id: order-free.
    empty = torch.iinfo(torch.long).max
    best = torch.full((height * width,), empty, device=device, dtype=torch.long)
    for pixel, tri, z in _fragments(setup, width, height, eps):
        best.scatter_reduce_(0, pixel, _depth_key(z) | tri, reduce="amin")

    mask = best != empty
    pixel = mask.nonzero()[:, 0]
    tri = best.index_select(0, pixel) & 0xFFFFFFFF
    triangle_id = torch.full((height * width,), -1, device=device, dtype=torch.long)
    triangle_id.index_copy_(0, pixel, tri)
    bary, _ = _evaluate(setup, tri, pixel % width, pixel // width)
    weights = torch.zeros(height * width, 3, device=device, dtype=dtype)
    weights.index_copy_(0, pixel, bary)
    image = torch.zeros(channels, height * width, device=device, dtype=dtype)
    if channels:
        corner_ids = tris.index_select(0, tri).reshape(-1)
        corner_values = attributes.to(device=device, dtype=dtype).index_select(0, corner_ids).reshape(-1, 3, channels)
        values = bary[:, 0:1] * corner_values[:, 0]
        values.addcmul_(bary[:, 1:2], corner_values[:, 1]).addcmul_(bary[:, 2:3], corner_values[:, 2])
        image.index_copy_(1, pixel, values.T)
    return Raster(
        attributes=image.reshape(channels, height, width),
        mask=mask.reshape(height, width),
        triangle_id=triangle_id.reshape(height, width),
        barycentric=weights.reshape(height, width, 3),
    )


def _depth_key(z: Tensor) -> Tensor:
    """float z (N,) -> int64 (N,) whose signed order is z's order, shifted into the upper 32 bits."""
    import torch

    bits = z.to(torch.float32).contiguous().view(torch.int32).long()
    # IEEE floats order like sign-magnitude integers: flip the magnitude bits of negatives to get two's complement.
    bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return bits << 32


class _Setup(NamedTuple):
    """Per-triangle data: barycentric weights and z as affine functions of pixel offsets from the box corner."""

    planes: Tensor  # (F, 4, 3): rows w0, w1, w2, z; columns: coefficient of dx, of dy, value at the box corner
    box: Tensor  # (F, 4) long: x0, y0 (first pixel centre of the clipped box), width, height (0 when empty)


def _setup(vertices: Tensor, tris: Tensor, height: int, width: int, dtype) -> _Setup:
    """Triangle setup in float64 (F is small), so the float per-fragment work needs no large coordinates: the
    weights are evaluated at small offsets from each box corner, which keeps rounding far below ``eps``."""
    import torch

    corners = vertices.to(torch.float64)[tris]  # (F, 3, 3)
    x, y, z = corners.unbind(-1)  # each (F, 3)
    x0 = x.amin(1).ceil().clamp(0, width)
    y0 = y.amin(1).ceil().clamp(0, height)
    box_w = (x.amax(1).floor().clamp(-1, width - 1) - x0 + 1).clamp_min(0)
    box_h = (y.amax(1).floor().clamp(-1, height - 1) - y0 + 1).clamp_min(0)
    area2 = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0])
    degenerate = ~(area2.abs() > 1e-12) | ~torch.isfinite(area2)  # zero area, NaN or infinite vertices
    box_w = torch.where(degenerate, torch.zeros_like(box_w), box_w)
    safe_area2 = torch.where(degenerate, torch.ones_like(area2), area2)
    # w_i(p) = edge(v_{i+1}, v_{i+2}, p) / area2, an affine function of p = (x0 + dx, y0 + dy).
    nxt, nxt2 = [1, 2, 0], [2, 0, 1]
    ax, ay = x[:, nxt], y[:, nxt]  # (F, 3): v_{i+1}
    bx, by = x[:, nxt2], y[:, nxt2]  # v_{i+2}
    coef_x = -(by - ay) / safe_area2[:, None]
    coef_y = (bx - ax) / safe_area2[:, None]
    at_corner = ((bx - ax) * (y0[:, None] - ay) - (by - ay) * (x0[:, None] - ax)) / safe_area2[:, None]
    weights = torch.stack([coef_x, coef_y, at_corner], -1)  # (F, 3, 3)
    z_plane = (weights * z[:, :, None]).sum(1, keepdim=True)  # z = sum_i w_i z_i, affine too: (F, 1, 3)
    planes = torch.cat([weights, z_plane], 1).to(dtype)
    box = torch.stack([x0, y0, box_w, box_h], -1).long()
    return _Setup(planes, box)


def _evaluate(setup: _Setup, tri: Tensor, px: Tensor, py: Tensor) -> tuple[Tensor, Tensor]:
    """Barycentric weights (N, 3) and z (N,) of pixel centres (px, py) in triangles ``tri`` (N,)."""
    planes = setup.planes.index_select(0, tri)  # (N, 4, 3)
    box = setup.box.index_select(0, tri)
    dx = (px - box[:, 0]).to(planes.dtype)[:, None]
    dy = (py - box[:, 1]).to(planes.dtype)[:, None]
    values = planes[:, :, 0] * dx + planes[:, :, 1] * dy + planes[:, :, 2]  # (N, 4)
    return values[:, :3], values[:, 3]


def _fragments(setup: _Setup, width: int, height: int, eps: float):
    """Yield ``(flat pixel index, triangle id, z)`` of every pixel centre inside a triangle, in batches.

    Triangles are grouped by the power-of-two class of their box's longer side; each group is evaluated on one
    padded (G, h, w) grid of pixel offsets, so the work is a few broadcast multiply-adds (no integer division,
    no per-candidate gathers). A handful of groups keeps the per-call overhead low; the padding this wastes on
    thin boxes costs less than more groups would (measured on the face mesh). Large groups are split, by
    triangles, so that a grid holds at most about ``_CANDIDATE_CHUNK`` candidates (a single triangle is never split).
    """
    import torch

    x0, y0, box_w, box_h = setup.box.unbind(-1)
    live = (box_w * box_h > 0).nonzero()[:, 0]
    if live.numel() == 0:
        return
    longest = torch.maximum(box_w, box_h).index_select(0, live)
    key = torch.ceil(torch.log2(longest.double())).long()
    order = torch.argsort(key, stable=True)
    live, key = live.index_select(0, order), key.index_select(0, order)
    _, counts = torch.unique_consecutive(key, return_counts=True)
    device, dtype = setup.planes.device, setup.planes.dtype
    start = 0
    for count in counts.tolist():
        group = live[start : start + count]
        start += count
        gw, gh = box_w.index_select(0, group), box_h.index_select(0, group)
        grid_w, grid_h = int(gw.max()), int(gh.max())
        step = max(1, _CANDIDATE_CHUNK // (grid_w * grid_h))
        dx = torch.arange(grid_w, device=device)
        dy = torch.arange(grid_h, device=device)
        fx = dx.to(dtype)[None, None, :]  # (1, 1, w)
        fy = dy.to(dtype)[None, :, None]  # (1, h, 1)
        for lo in range(0, count, step):
            tri = group[lo : lo + step]
            planes = setup.planes.index_select(0, tri)  # (G, 4, 3)
            # Offsets beyond a triangle's own box (padding, or outside the image) get -inf in w0: never inside.
            out_x = torch.where(dx < gw[lo : lo + step, None], 0.0, -math.inf).to(dtype)[:, None, :]  # (G, 1, w)
            out_y = torch.where(dy < gh[lo : lo + step, None], 0.0, -math.inf).to(dtype)[:, :, None]  # (G, h, 1)
            inside = None
            for k in range(3):
                along_x = planes[:, k, 0, None, None] * fx  # (G, 1, w)
                along_y = planes[:, k, 1, None, None] * fy + planes[:, k, 2, None, None]  # (G, h, 1)
                if k == 0:
                    along_x, along_y = along_x + out_x, along_y + out_y
                ok = (along_x + along_y) >= -eps  # one full-size add and compare per weight
                inside = ok if inside is None else inside.logical_and_(ok)
            g, iy, ix = inside.nonzero(as_tuple=True)
            tri_of = tri.index_select(0, g)
            z_plane = planes[:, 3].index_select(0, g)  # z only where inside
            z = z_plane[:, 0] * ix.to(dtype) + z_plane[:, 1] * iy.to(dtype) + z_plane[:, 2]
            px = x0.index_select(0, tri_of) + ix
            py = y0.index_select(0, tri_of) + iy
            yield py * width + px, tri_of, z
