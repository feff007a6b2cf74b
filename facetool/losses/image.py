"""Image reconstruction losses: L1, L1 of image gradients, masked L1 and a chamfer loss on distance transforms.

The chamfer loss is APDrawingGAN's distance-transform loss (Yi et al. 2019) made differentiable on both sides.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _check_same_shape(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")


def _check_bchw(name: str, image: Tensor) -> None:
    if image.ndim != 4:
        raise ValueError(f"{name} must be (B, C, H, W), got shape {tuple(image.shape)}")


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error.

    Args:
        pred: :math:`(B, *)`.
        target: :math:`(B, *)`.

    Returns:
        scalar.
    """
    _check_same_shape(pred, target)
    return (pred - target).abs().mean()


def image_gradients(image: Tensor) -> tuple[Tensor, Tensor]:
    """Forward differences: :math:`(B, C, H, W)` -> :math:`(B, C, H, W-1)` along x, :math:`(B, C, H-1, W)` along y.

    Plain differences rather than a Sobel filter: no border padding, so a constant image has exactly zero gradient.
    """
    _check_bchw("image", image)
    return image[..., :, 1:] - image[..., :, :-1], image[..., 1:, :] - image[..., :-1, :]


def gradient_l1(pred: Tensor, target: Tensor, mask: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    r"""L1 of image gradients :math:`\mathrm{mean}|\nabla_x p - \nabla_x t| + \mathrm{mean}|\nabla_y p - \nabla_y t|`.

    Blind to a constant offset between ``pred`` and ``target``; penalises blur and misplaced edges. With ``mask``,
    only differences between two masked pixels count (the means run over those pairs): a map that is only defined
    on a region (a face's depth) is not judged by the jump at the region's border.

    Args:
        pred: :math:`(B, C, H, W)`.
        target: :math:`(B, C, H, W)`.
        mask: optional weights in [0, 1] broadcastable to ``pred``, e.g. :math:`(B, 1, H, W)`.
        eps: keeps an empty mask at loss 0 instead of 0/0.

    Returns:
        scalar.
    """
    _check_same_shape(pred, target)
    pred_dx, pred_dy = image_gradients(pred)
    target_dx, target_dy = image_gradients(target)
    if mask is None:
        return (pred_dx - target_dx).abs().mean() + (pred_dy - target_dy).abs().mean()
    weights = mask.to(pred.dtype).expand_as(pred)
    wx = weights[..., :, 1:] * weights[..., :, :-1]
    wy = weights[..., 1:, :] * weights[..., :-1, :]
    x = (wx * (pred_dx - target_dx).abs()).sum() / wx.sum().clamp_min(eps)
    return x + (wy * (pred_dy - target_dy).abs()).sum() / wy.sum().clamp_min(eps)


def masked_l1(pred: Tensor, target: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    r"""Mean absolute error over the masked elements: :math:`\sum m |p - t| / \sum m`.

    Args:
        pred: :math:`(B, C, H, W)`.
        target: :math:`(B, C, H, W)`.
        mask: weights in [0, 1] broadcastable to ``pred``, e.g. :math:`(B, 1, H, W)`; counted once per channel.
        eps: keeps an empty mask at loss 0 instead of 0/0.

    Returns:
        scalar.
    """
    _check_same_shape(pred, target)
    weights = mask.to(pred.dtype).expand_as(pred)
    return (weights * (pred - target).abs()).sum() / weights.sum().clamp_min(eps)


def truncated_distance_transform(mask: Tensor, max_distance: float = 10.0) -> Tensor:
    """Exact Euclidean distance to the nearest nonzero pixel, capped at ``max_distance``; not differentiable.

    Separable: the vertical distance to the nearest source in each column (running max/min of source rows), then
    the minimum over ``|dx| <= ceil(max_distance)`` of ``dx**2 + that**2`` (Felzenszwalb & Huttenlocher, truncated
    to the cap's reach) as shifted minimums. Pixels outside the image are no source. A mask without sources gives
    ``max_distance``. (kornia's ``distance_transform`` cascades convolutions instead: 25 s for four 256x256 masks
    on this CPU.)

    Args:
        mask: :math:`(B, C, H, W)`; pixels above 0.5 are the sources.
        max_distance: the cap, in pixels.

    Returns:
        :math:`(B, C, H, W)` distances in pixels, float32 or the mask's floating dtype.
    """
    _check_bchw("mask", mask)
    reach = int(math.ceil(max_distance))
    dtype = mask.dtype if mask.is_floating_point() else torch.float32
    far = float((reach + 1) ** 2)  # any value beyond reach**2 means "no source within reach"
    with torch.no_grad():
        sources = mask > 0.5
        height, width = sources.shape[-2:]
        rows = torch.arange(height, device=mask.device, dtype=dtype)[:, None].expand(height, width)
        above = torch.where(sources, rows, -far).cummax(dim=-2).values
        below = torch.where(sources, rows, 2 * far + height).flip(-2).cummin(dim=-2).values.flip(-2)
        column = torch.minimum(rows - above, below - rows).clamp_max(reach + 1) ** 2
        padded = F.pad(column, (reach, reach, 0, 0), value=far)
        squared = column
        for dx in range(1, reach + 1):
            squared = torch.minimum(squared, padded[..., reach + dx : reach + dx + width] + dx * dx)
            squared = torch.minimum(squared, padded[..., reach - dx : reach - dx + width] + dx * dx)
        return squared.sqrt().clamp_max(max_distance)


def soft_distance_transform(ink: Tensor, max_distance: float = 10.0, temperature: float = 0.25) -> Tensor:
    r"""Differentiable distance to the nearest ink for a soft ink map, capped at ``max_distance``.

    A pixel :math:`q` with ink :math:`P(q) \in [0, 1]` is a source whose cost is its distance plus the ink it
    lacks, scaled to the cap: :math:`\lVert p - q\rVert + R\,(1 - P(q))`. The distance is the soft minimum of these
    costs over the disc of radius :math:`R` (``max_distance``) with temperature :math:`\tau`:

    .. math::
        D(p) = \max\Big(0,\; -\tau \log \sum_{\lVert q - p\rVert \le R}
               \exp\big(-(\lVert p - q\rVert + R\,(1 - P(q))) / \tau\big)\Big)

    For a binary map this is the Euclidean distance transform capped at :math:`R` (a paper pixel is a source at
    distance :math:`R`, so :math:`D \le R`), less the soft minimum's bias where several sources tie (about
    :math:`\tau \log k` for :math:`k` near-equal ones: 0.2 px at 3 px from a straight line at the default
    :math:`\tau`); the clamp at 0 removes that bias on ink pixels. The gradient is bounded:
    :math:`|\partial D(p) / \partial P(q)| \le R`. One :math:`(2R+1)^2` convolution, in float32 at least.

    Args:
        ink: :math:`(B, C, H, W)` ink in [0, 1] (1: ink).
        max_distance: the cap :math:`R`, in pixels.
        temperature: :math:`\tau`, in pixels; smaller is closer to the hard minimum, ``R / temperature <= 80``.

    Returns:
        :math:`(B, C, H, W)` distances in pixels, in [0, R].
    """
    _check_bchw("ink", ink)
    if not 0 < max_distance <= 80 * temperature:
        raise ValueError(f"need 0 < max_distance <= 80 * temperature, got {max_distance} and {temperature}")
    reach = int(math.ceil(max_distance))
    dtype = torch.promote_types(ink.dtype, torch.float32)
    offsets = torch.arange(-reach, reach + 1, device=ink.device, dtype=dtype)
    radius = torch.sqrt(offsets[:, None] ** 2 + offsets[None, :] ** 2)
    # Disc kernel exp(-|o|/tau); exp(R*P/tau) factors out exp(-R/tau), so exponents stay within +-80 (no underflow).
    kernel = torch.where(radius <= max_distance, torch.exp(-radius / temperature), 0.0)
    batch, channels, height, width = ink.shape
    weights = torch.exp(max_distance * ink.to(dtype).reshape(batch * channels, 1, height, width) / temperature)
    sums = F.conv2d(F.pad(weights, (reach,) * 4), kernel[None, None])
    distance = max_distance - temperature * torch.log(sums)
    return distance.clamp_min(0.0).reshape(batch, channels, height, width).to(ink.dtype)


def _weighted_mean(values: Tensor, weights: Tensor, eps: float = 1e-6) -> Tensor:
    """Per sample: :math:`\\sum w v / \\sum w` over (C, H, W) -> :math:`(B,)`."""
    return (weights * values).flatten(1).sum(1) / weights.flatten(1).sum(1).clamp_min(eps)


def chamfer_dt_terms(
    pred_ink: Tensor,
    target_ink: Tensor,
    max_distance: float = 10.0,
    temperature: float = 0.25,
) -> tuple[Tensor, Tensor]:
    r"""The two directions of :func:`chamfer_dt_loss`: (generated -> target, target -> generated), each a scalar.

    With :math:`P` the predicted ink, :math:`T` the binarised target ink, :math:`DT^{ink}_T`, :math:`DT^{paper}_T`
    the target's exact distance transforms to its ink and to its paper (capped at :math:`R`), and
    :math:`D^{ink}_P`, :math:`D^{paper}_P` the soft distance transforms of :math:`P` and :math:`1 - P`
    (:func:`soft_distance_transform`), per sample:

    .. math::
        \mathrm{gen\to target} = \frac{\sum P\,DT^{ink}_T}{\sum P} + \frac{\sum (1-P)\,DT^{paper}_T}{\sum (1-P)}
        \qquad
        \mathrm{target\to gen} = \frac{\sum T\,D^{ink}_P}{\sum T} + \frac{\sum (1-T)\,D^{paper}_P}{\sum (1-T)}

    then the mean over the batch. The first weights the target's distances by the soft prediction, so its gradient
    :math:`\partial/\partial P(p) \propto DT_T(p) - \text{mean}` tells each pixel whether ink there lies near a
    target line (APDrawingGAN's code thresholds the prediction here and sends no gradient). The second needs the
    prediction's own distance transform, made differentiable by the soft one (the paper uses nets trained to
    regress it).
    """
    _check_bchw("pred_ink", pred_ink)
    _check_same_shape(pred_ink, target_ink)
    target = (target_ink > 0.5).to(pred_ink.dtype)
    target_to_ink = truncated_distance_transform(target, max_distance)
    target_to_paper = truncated_distance_transform(1.0 - target, max_distance)
    gen_to_target = _weighted_mean(target_to_ink, pred_ink) + _weighted_mean(target_to_paper, 1.0 - pred_ink)

    pred_to_ink = soft_distance_transform(pred_ink, max_distance, temperature)
    pred_to_paper = soft_distance_transform(1.0 - pred_ink, max_distance, temperature)
    target_to_gen = _weighted_mean(pred_to_ink, target) + _weighted_mean(pred_to_paper, 1.0 - target)
    return gen_to_target.mean(), target_to_gen.mean()


def chamfer_dt_loss(
    pred_ink: Tensor,
    target_ink: Tensor,
    max_distance: float = 10.0,
    temperature: float = 0.25,
) -> Tensor:
    r"""Chamfer distance both ways between a soft predicted drawing and a binary target drawing, in pixels.

    The sum of the two terms of :func:`chamfer_dt_terms` (see there for the formula). Both polarities count: ink
    placed far from the target's lines, and paper left where the target has lines, and the same from the target's
    side. Distances are capped at ``max_distance``, so a line far off costs the cap rather than dominating. It is 0
    when ``pred_ink`` equals the target's ink exactly. Drawings in [-1, 1] with white paper convert with
    ``ink = (1 - image) / 2``.

    Args:
        pred_ink: :math:`(B, C, H, W)` predicted ink in [0, 1] (1: ink), differentiable.
        target_ink: :math:`(B, C, H, W)` target ink; binarised at 0.5.
        max_distance: the distance cap :math:`R`, in pixels.
        temperature: soft minimum temperature of the prediction's distance transform, in pixels.

    Returns:
        scalar.
    """
    gen_to_target, target_to_gen = chamfer_dt_terms(pred_ink, target_ink, max_distance, temperature)
    return gen_to_target + target_to_gen


class L1Loss(nn.Module):
    """:func:`l1_loss` as a module."""

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return l1_loss(pred, target)


class GradientL1Loss(nn.Module):
    """:func:`gradient_l1` as a module."""

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return gradient_l1(pred, target)


class MaskedL1Loss(nn.Module):
    """:func:`masked_l1` as a module: ``forward(pred, target, mask)``."""

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        return masked_l1(pred, target, mask)


class ChamferDTLoss(nn.Module):
    """:func:`chamfer_dt_loss` as a module: ``forward(pred_ink, target_ink)``."""

    def __init__(self, max_distance: float = 10.0, temperature: float = 0.25) -> None:
        super().__init__()
        self.max_distance = max_distance
        self.temperature = temperature

    def forward(self, pred_ink: Tensor, target_ink: Tensor) -> Tensor:
        return chamfer_dt_loss(pred_ink, target_ink, self.max_distance, self.temperature)

    def extra_repr(self) -> str:
        return f"max_distance={self.max_distance}, temperature={self.temperature}"
