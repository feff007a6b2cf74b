"""FaceVision's measures on held-out faces, each comparable with a mean-face baseline.

- Depth: scale-invariant MAE and RMSE on the target's face mask, in crop pixels. The prediction is first fitted to
  the target by an offset and a scale (least squares on the mask): a single photo fixes neither the distance to the
  face nor its depth scale (weak perspective), so only the shape is judged.
- Correspondence: mean Euclidean error of the predicted canonical coordinates (PNCC, [0, 1]³) on the pixels both
  masks cover, and the mask IoU.
- Baseline: the same measures of the *mean face*: the training set's mean depth and correspondence maps in the
  aligned crop (:func:`mean_maps`). A method should be well under it (issue 6's goal: ≤ 0.5×).
"""

from __future__ import annotations

import numpy as np


def scale_invariant_depth_errors(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(MAE, RMSE) of ``pred`` fitted to ``target`` by offset and scale on ``mask``; (S, S) arrays, pixels."""
    m = np.asarray(mask, bool) & np.isfinite(pred) & np.isfinite(target)
    if m.sum() < 2:
        return float("nan"), float("nan")
    p, t = pred[m].astype(np.float64), target[m].astype(np.float64)
    p, t = p - p.mean(), t - t.mean()
    scale = float(p @ t / (p @ p)) if (p @ p) > 0 else 0.0
    residual = scale * p - t
    return float(np.abs(residual).mean()), float(np.sqrt((residual**2).mean()))


def correspondence_error(
    pred: np.ndarray, target: np.ndarray, pred_mask: np.ndarray, target_mask: np.ndarray
) -> tuple[float, float]:
    """(mean |pred - target| over pixels in both masks, IoU of the masks); maps (S, S, 3) in [0, 1]."""
    a, b = np.asarray(pred_mask, bool), np.asarray(target_mask, bool)
    both, either = a & b, a | b
    iou = float(both.sum() / either.sum()) if either.any() else float("nan")
    if not both.any():
        return float("nan"), iou
    return float(np.linalg.norm(pred[both] - target[both], axis=1).mean()), iou


def mean_maps(depths: list[np.ndarray], correspondences: list[np.ndarray], masks: list[np.ndarray]):
    """The mean face of a training set: (mean depth over the faces covering each pixel, NaN where none does; mean
    correspondence likewise; the majority mask)."""
    m = np.stack([np.asarray(x, bool) for x in masks]).astype(np.float64)
    count = m.sum(axis=0)
    depth = np.stack([np.nan_to_num(d) for d in depths]) * m
    corr = np.stack(correspondences) * m[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_depth = np.where(count > 0, depth.sum(axis=0) / count, np.nan)
        mean_corr = np.where(count[..., None] > 0, corr.sum(axis=0) / count[..., None], 0.0)
    return mean_depth, mean_corr, count > len(masks) / 2
