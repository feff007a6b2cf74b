"""Head angle of a drawn Loomis construction, by analysis-by-synthesis (numpy + scipy, no torch).

A drawing shows a pose when the construction of :mod:`facetool.data.loomis_draw` turned to that pose, and placed on
the face's brow / nose-base / chin points the way the data factory places it, lies on the drawing's lines. So every
candidate pose of a coarse grid is drawn (as densely sampled points, not pixels) and scored by a symmetric truncated
chamfer distance to the drawing's ink; the best few are refined by a shrinking local search.

The placement comes from the face, never from the drawing, so a drawing whose lines are right but shifted costs more;
and nothing of the label's pose enters the search, so a blank drawing gets an arbitrary pose and the highest cost.

Cost units: pixels of the input drawing, each distance truncated at ``size / 16`` (16 px at 256²): 0 = every line
of the drawing lies on the fitted construction and back; the truncation = nothing matches (a blank page).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from facetool.data import loomis_draw as ld

#: Coarse search grid (degrees): the data factory's poses of generated faces lie well inside it.
YAW_GRID = np.arange(-60.0, 60.1, 10.0)
PITCH_GRID = np.arange(-40.0, 40.1, 10.0)
ROLL_GRID = np.arange(-30.0, 30.1, 10.0)
REFINE_STEPS = (5.0, 2.5, 1.25, 0.6)  # local search steps after the grid, degrees
TOP_K = 12  # grid candidates re-scored with the symmetric cost
WORK_SIZE = 128  # the drawing is scored at this side: 1 px here is 2 px at 256², finer than a stroke
INK_THRESHOLD = 0.3  # ink (1 - luma) above this is a line
DENSIFY = 4  # points inserted per construction sample: ~0.7 px spacing at 128² for a 45 px ball


@dataclass(frozen=True)
class PoseEstimate:
    """yaw, pitch, roll in degrees (the crop frame, :mod:`facetool.data.loomis_draw`'s convention); ``cost`` the
    symmetric chamfer distance in pixels of the drawing (lower is better)."""

    yaw: float
    pitch: float
    roll: float
    cost: float


def anchors_from_landmarks(points68: Any) -> np.ndarray:
    """68 iBUG landmarks (68, 2) px -> the fit's anchors (3, 2): brow, nose base, chin, as ``fit_placement`` uses."""
    p68 = np.asarray(points68, dtype=np.float64).reshape(68, 2)
    return np.stack([p68[list(ld.FIT_LANDMARKS[n][0])].mean(0) for n in ld.FIT_LANDMARKS])


def anchors_from_labels(labels: dict[str, Any], size: int) -> np.ndarray:
    """A Loomis pair's labels -> anchors (3, 2) in pixels of a ``size``² drawing.

    The labels' ``key_points`` are the fitted construction's own brow / nose-base / chin points, within the fit's
    residual (``fit_rms``, under a pixel) of the landmarks; they are stored in pixels of ``labels["size"]``.
    """
    points = labels.get("key_points") or {}
    missing = [n for n in ld.FIT_LANDMARKS if n not in points]
    if missing:
        raise ValueError(f"labels have no key_points {', '.join(missing)} (not a facetool data loomis item)")
    source = float(labels.get("size", size))
    anchors = np.array([points[n] for n in ld.FIT_LANDMARKS], dtype=np.float64)
    return (anchors + 0.5) * (size / source) - 0.5  # pixel centres at integers


def estimate_pose(
    drawing: Any,
    anchors: Any,
    *,
    work_size: int = WORK_SIZE,
    grids: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> PoseEstimate:
    """The head pose a construction drawing shows.

    Args:
        drawing: (S, S) (or (1, S, S)) lines in [0, 1], dark on white.
        anchors: (3, 2) brow, nose-base, chin pixels in the drawing (:func:`anchors_from_landmarks` or
            :func:`anchors_from_labels`), or the face's (68, 2) landmarks.
        work_size: side the drawing is scored at.
        grids: yaw, pitch, roll values (degrees) of the coarse search; None: :data:`YAW_GRID` … :data:`ROLL_GRID`.
    """
    image = np.asarray(drawing, dtype=np.float32)
    image = image.reshape(image.shape[-2:]) if image.ndim == 3 else image
    if image.ndim != 2 or image.shape[0] != image.shape[1]:
        raise ValueError(f"drawing must be (S, S) or (1, S, S), got {np.asarray(drawing).shape}")
    anchors = np.asarray(anchors, dtype=np.float64)
    anchors = anchors_from_landmarks(anchors) if anchors.shape == (68, 2) else anchors.reshape(3, 2)
    size = image.shape[0]
    target = _Target(image, work_size)
    dst = (anchors + 0.5) * (work_size / size) - 0.5
    to_input = size / work_size

    yaw, pitch, roll = np.meshgrid(*(grids or (YAW_GRID, PITCH_GRID, ROLL_GRID)), indexing="ij")
    poses = np.stack([yaw.ravel(), pitch.ravel(), roll.ravel()], -1)
    # The grid is ranked by the one-way cost on the raw samples (segment-length weighted: no need to densify).
    coarse = target.one_sided(_Candidates(poses, dst, densify=1))
    seeds = poses[np.argsort(coarse, kind="stable")[:TOP_K]]
    costs = target.symmetric(_Candidates(seeds, dst))
    best, best_cost = seeds[int(np.argmin(costs))], float(costs.min())

    offsets = np.stack(np.meshgrid(*[[-1.0, 0.0, 1.0]] * 3, indexing="ij"), -1).reshape(-1, 3)
    offsets = offsets[np.abs(offsets).sum(1) > 0]
    for step in REFINE_STEPS:
        for _ in range(3):  # a few moves per step size: the basin is found, this walks to its bottom
            near = best + step * offsets
            near[:, 1] = np.clip(near[:, 1], -85.0, 85.0)
            near_costs = target.symmetric(_Candidates(near, dst))
            i = int(np.argmin(near_costs))
            if near_costs[i] >= best_cost:
                break
            best, best_cost = near[i], float(near_costs[i])
    return PoseEstimate(float(best[0]), float(best[1]), float(best[2]), best_cost * to_input)


def angle_error(a: float, b: float) -> float:
    """|a - b| in degrees, wrapped to [0, 180]."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


# ----------------------------------------------------------------------------------------------------
# The drawing's side: ink, its distance transform
# ----------------------------------------------------------------------------------------------------


class _Target:
    """A drawing at the work size: its ink pixels and the truncated distance to the nearest ink."""

    def __init__(self, image: np.ndarray, work_size: int) -> None:
        from scipy.ndimage import distance_transform_edt

        self.size = work_size
        self.tau = work_size / 16.0
        ink = 1.0 - _resize(np.clip(image, 0.0, 1.0), work_size)
        lines = ink > INK_THRESHOLD
        self.ink_points = np.argwhere(lines)[:, ::-1].astype(np.float64)  # (M, 2) x, y
        self.ink_weights = ink[lines].astype(np.float64)
        if lines.any():
            self.distance = np.minimum(distance_transform_edt(~lines), self.tau)
        else:
            self.distance = np.full((work_size, work_size), self.tau)

    def one_sided(self, cands: _Candidates) -> np.ndarray:
        """Mean truncated distance from each candidate's lines to the ink, (K,) in work pixels."""
        costs = []
        for mid, length in cands.segments():
            xi, yi = np.rint(mid[:, 0]).astype(int), np.rint(mid[:, 1]).astype(int)
            inside = (xi >= 0) & (xi < self.size) & (yi >= 0) & (yi < self.size)
            d = np.where(inside, self.distance[yi.clip(0, self.size - 1), xi.clip(0, self.size - 1)], self.tau)
            costs.append((d * length).sum() / max(length.sum(), 1e-9))
        return np.array(costs)

    def symmetric(self, cands: _Candidates) -> np.ndarray:
        """Half the sum of both directions' mean truncated distances, (K,) in work pixels."""
        from scipy.spatial import cKDTree

        there = self.one_sided(cands)
        if not len(self.ink_points):
            return 0.5 * (there + self.tau)
        back = np.empty(len(there))
        for k, points in enumerate(cands.visible_points()):
            d, _ = cKDTree(points).query(self.ink_points, distance_upper_bound=self.tau)
            back[k] = (np.minimum(d, self.tau) * self.ink_weights).sum() / self.ink_weights.sum()
        return 0.5 * (there + back)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize((size, size), Image.BOX))


# ----------------------------------------------------------------------------------------------------
# The construction's side: many poses at once
# ----------------------------------------------------------------------------------------------------


def _rotations(poses: np.ndarray) -> np.ndarray:
    """(K, 3) yaw, pitch, roll degrees -> (K, 3, 3) :func:`loomis_draw.head_rotation` matrices."""
    y, p, r = (np.radians(-poses[:, i]) for i in range(3))
    zero, one = np.zeros_like(y), np.ones_like(y)

    def stack(rows):
        return np.stack([np.stack(row, -1) for row in rows], -2)

    ry = stack([[np.cos(y), zero, np.sin(y)], [zero, one, zero], [-np.sin(y), zero, np.cos(y)]])
    rx = stack([[one, zero, zero], [zero, np.cos(p), -np.sin(p)], [zero, np.sin(p), np.cos(p)]])
    rz = stack([[np.cos(r), -np.sin(r), zero], [np.sin(r), np.cos(r), zero], [zero, zero, one]])
    return ry @ rx @ rz


def _fit_placements(rotations: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`loomis_draw.fit_placement` for K rotations at once: (scale (K,), lower (K,), centre (K, 2)).

    Same model and clamping; anchors instead of the 68 points (the fit only ever reads their means).
    """
    names = list(ld.FIT_LANDMARKS)
    p1 = np.stack([ld.key_points_3d(1.0)[n] for n in names])
    p2 = np.stack([ld.key_points_3d(2.0)[n] for n in names])
    flip = np.array([1.0, -1.0])
    base = (p1 @ rotations.transpose(0, 2, 1))[..., :2] * flip  # (K, n, 2)
    moved = ((p2 - p1) @ rotations.transpose(0, 2, 1))[..., :2] * flip
    sqrt_w = np.sqrt(np.repeat([ld.FIT_LANDMARKS[n][1] for n in names], 2))
    n = len(names)
    ones_x = np.tile([1.0, 0.0], n)
    ones_y = np.tile([0.0, 1.0], n)
    k = len(rotations)
    b = dst.reshape(-1) * sqrt_w

    def solve(columns: list[np.ndarray]) -> np.ndarray:
        design = np.stack(columns, -1) * sqrt_w[None, :, None]  # (K, 2n, C)
        gram = design.transpose(0, 2, 1) @ design
        return np.linalg.solve(gram, (design.transpose(0, 2, 1) @ b)[..., None])[..., 0]

    cx, cy = np.broadcast_to(ones_x, (k, 2 * n)), np.broadcast_to(ones_y, (k, 2 * n))
    sol = solve([base.reshape(k, -1), moved.reshape(k, -1), cx, cy])
    scale = sol[:, 0]
    g = np.where(scale > 1e-9, sol[:, 1] / np.where(scale > 1e-9, scale, 1.0), 0.0)
    centre = sol[:, 2:]
    lo, hi = ld.LOWER_RANGE
    clamp = (g < lo - 1.0) | (g > hi - 1.0)
    if clamp.any():
        gc = np.clip(g[clamp], lo - 1.0, hi - 1.0)
        u = (base[clamp] + gc[:, None, None] * moved[clamp]).reshape(int(clamp.sum()), -1)
        sol2 = solve([u, cx[clamp], cy[clamp]])
        scale, g, centre = scale.copy(), g.copy(), centre.copy()
        scale[clamp], g[clamp], centre[clamp] = sol2[:, 0], gc, sol2[:, 1:]
    return scale, 1.0 + g, centre


@lru_cache(maxsize=16)
def _curve_set(key: tuple[bool, bool, bool, bool], densify: int) -> dict[str, np.ndarray]:
    """The head-frame curves for one visibility state of the sides (see :func:`_state`), lower = 1, with
    ``densify`` - 1 points inserted between samples.

    Returns arrays over all points: "points" (N, 3), "normals" (N, 3) (zeros where the cut ball decides),
    "by_ball" (N,) bool, "next" (N,) bool (the point and the next one belong to one curve).
    """
    # A side-facing value that reproduces the state in loomis_draw's tests (facing <= 0, facing > -sin 10°).
    s = math.sin(math.radians(ld.FAR_SIDE_DEG))
    facing = {}
    for side, (away, jaw) in ((-1, key[:2]), (1, key[2:])):
        facing[side] = (0.0 if jaw else -2.0 * s) if away else 1.0
    points, normals, by_ball, nxt = [], [], [], []
    for curves in ld.curves_3d(facing, 1.0).values():
        for pts, nrm in curves:
            t = np.linspace(0.0, 1.0, densify + 1)[:-1, None, None]
            dense = (pts[:-1][None] + t * (pts[1:] - pts[:-1])[None]).transpose(1, 0, 2).reshape(-1, 3)
            dense = np.concatenate([dense, pts[-1:]])
            if nrm is None:
                dense_n = np.zeros_like(dense)
            else:
                dn = (nrm[:-1][None] + t * (nrm[1:] - nrm[:-1])[None]).transpose(1, 0, 2).reshape(-1, 3)
                dense_n = np.concatenate([dn, nrm[-1:]])
            points.append(dense)
            normals.append(dense_n)
            by_ball.append(np.full(len(dense), nrm is None))
            link = np.ones(len(dense), dtype=bool)
            link[-1] = False
            nxt.append(link)
    return {
        "points": np.concatenate(points),
        "normals": np.concatenate(normals),
        "by_ball": np.concatenate(by_ball),
        "next": np.concatenate(nxt),
    }


def _state(f: float) -> tuple[bool, bool, bool, bool]:
    """Visibility state of both sides for ``f`` = how much the +x side faces the camera (``R[2, 0]``).

    Per side (-1 then +1): (turned away: facing <= 0, still drawn with its jaw: facing > -sin FAR_SIDE_DEG).
    """
    s = math.sin(math.radians(ld.FAR_SIDE_DEG))
    return (-f <= 0, -f > -s, f <= 0, f > -s)


@lru_cache(maxsize=4)
def _circle(densify: int) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, 96 * densify + 1)
    return np.stack([np.cos(t), np.sin(t)], -1)


class _Candidates:
    """K poses placed on the face: their visible construction as pixel points and segments at the work size."""

    def __init__(self, poses: np.ndarray, dst: np.ndarray, densify: int = DENSIFY) -> None:
        self.poses = np.asarray(poses, dtype=np.float64).reshape(-1, 3)
        rotations = _rotations(self.poses)
        circle = _circle(densify)
        scale, lower, centre = _fit_placements(rotations, dst)
        self.points, self.visible, self.next = [], [], []
        for k, rotation in enumerate(rotations):
            curves = _curve_set(_state(float(rotation[2, 0])), densify)
            pts = curves["points"].copy()
            below = pts[:, 1] < ld.NOSE_Y
            pts[below, 1] = ld.NOSE_Y + (pts[below, 1] - ld.NOSE_Y) * lower[k]
            camera = rotation[2]
            facing = curves["normals"] @ camera
            if curves["by_ball"].any():
                hidden = ld.behind_ball(pts[curves["by_ball"]], camera)
                facing[curves["by_ball"]] = np.where(hidden, -1.0, 1.0)
            turned = pts @ rotation.T
            unit = np.concatenate([np.stack([turned[:, 0], -turned[:, 1]], -1), circle])
            self.points.append(unit * scale[k] + centre[k])
            visible = np.concatenate([facing > 1e-9, np.ones(len(circle), dtype=bool)])
            nxt = np.concatenate([curves["next"], np.arange(len(circle)) < len(circle) - 1])
            self.visible.append(visible)
            self.next.append(nxt & visible & np.roll(visible, -1))

    def segments(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per candidate (the point count depends on which sides show): the visible segments' midpoints (N, 2)
        and lengths (N,)."""
        out = []
        for pts, link in zip(self.points, self.next, strict=True):
            after = np.roll(pts, -1, axis=0)
            out.append((0.5 * (pts + after)[link], np.linalg.norm(after - pts, axis=-1)[link]))
        return out

    def visible_points(self) -> list[np.ndarray]:
        return [p[v] for p, v in zip(self.points, self.visible, strict=True)]


# ----------------------------------------------------------------------------------------------------
# The method's evaluate hook
# ----------------------------------------------------------------------------------------------------


def luma(image: Any) -> np.ndarray:
    """(C, S, S) or (S, S) in [0, 1] -> (S, S) float32 (ITU-R 601 weights for 3 channels)."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        return a
    if a.shape[0] == 3:
        return np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), a, axes=1)
    return a[0]


def _lines_over(image: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """Lines back from ``photo * lines``: (C, S, S) both -> (S, S); channel sums make it exact, and pixels too dark
    to tell count as paper."""
    ink_sum, photo_sum = np.asarray(image, np.float32).sum(0), np.asarray(photo, np.float32).sum(0)
    return np.where(photo_sum > 0.05, np.clip(ink_sum / np.maximum(photo_sum, 1e-6), 0.0, 1.0), 1.0)


def evaluate(outputs: Any, batch: dict[str, Any], options: Any = None) -> dict[str, list[float]]:
    """Per item: the pose the generated drawing shows against the labelled pose of the photo (crop frame).

    Args:
        outputs: (B, 1|3, S, S) generated drawings in [0, 1] (lines on white: the net's own output).
        batch: the dataset's batch: ``labels`` (list of dicts with ``pose`` and ``key_points``).
        options: the method's :class:`~facetool_loomis.LoomisOptions`; with ``style="over-photo"`` the outputs are
            the lines multiplied over ``batch["photo"]``, and the lines are recovered by dividing it out.

    Returns:
        {"yaw_error_deg", "pitch_error_deg", "roll_error_deg": absolute angle errors, "construction_match": the
        symmetric chamfer distance (pixels of the output, lower is better) of the best-fitting construction}.
    """
    array = outputs.detach().float().cpu().numpy() if hasattr(outputs, "detach") else np.asarray(outputs)
    result: dict[str, list[float]] = {
        "yaw_error_deg": [],
        "pitch_error_deg": [],
        "roll_error_deg": [],
        "construction_match": [],
    }
    photos = batch.get("photo") if getattr(options, "style", "lines") == "over-photo" else None
    if photos is not None:
        photos = photos.detach().float().cpu().numpy() if hasattr(photos, "detach") else np.asarray(photos)
    for i, (image, labels) in enumerate(zip(array, batch["labels"], strict=True)):
        drawing = luma(image) if photos is None else _lines_over(image, photos[i])
        estimate = estimate_pose(drawing, anchors_from_labels(labels, drawing.shape[0]))
        pose = labels["pose"]
        result["yaw_error_deg"].append(angle_error(estimate.yaw, float(pose["yaw"])))
        result["pitch_error_deg"].append(angle_error(estimate.pitch, float(pose["pitch"])))
        result["roll_error_deg"].append(angle_error(estimate.roll, float(pose["roll"])))
        result["construction_match"].append(estimate.cost)
    return result
