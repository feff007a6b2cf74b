"""Andrew Loomis's head construction as 3D curves, turned by a head pose and drawn as clean lines (pure numpy).

The construction lives in a *head frame*: x to the image's right for a frontal face (the subject's left), y up,
z out of the face towards the camera, unit = the radius of the cranium ball centred at the origin. The pieces:

* the ball, with both sides sliced off at ``|x| = SIDE_CUT``; each cut is a circle of radius ``SIDE_RADIUS``
  (the *side plane*);
* the brow line on the ball's equator, continuing across the side planes through their centres;
* the hairline and the nose-base line level with the top and the bottom of the side-plane circle, so the face is
  three equal thirds (hairline–brow, brow–nose base, nose base–chin) of ``SIDE_RADIUS`` each — the last one may be
  stretched by a factor ``lower`` so the chin lands on a real face's chin (Loomis: "adjust the chin to the face");
* the centre line: the ball's mid-sagittal great circle from the brow over the crown, plus the face's front from
  the brow down the nose base to the chin;
* the chin line and the two jaw lines, from the back of each side plane down to the chin; once a side is turned
  away, its outline runs over the cheek instead of the (then hidden) back of the jaw.

A pose (yaw, pitch, roll in degrees, MediaPipe's convention: yaw > 0 the face turns to the image's left, pitch > 0
it looks up, roll > 0 it leans clockwise in the image) rotates the frame; an orthographic projection drops z and
flips y to the image's downward y. Hidden parts are left out: a point is drawn when the surface it lies on faces
the camera (for the ball, its own position vector is the normal); jaw and cheek lines are drawn where the cut ball
does not hide them.

Image coordinates everywhere: x right, y down. "Unit" 2D coordinates are centred on the ball's centre with the
ball's radius as unit; :func:`place` maps them to pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SIDE_CUT = 2.0 / 3.0  # a sixth of the ball's width is sliced off each side
SIDE_RADIUS = math.sqrt(1.0 - SIDE_CUT**2)  # ≈ 0.745: radius of the side plane = one third of the face
THIRD = SIDE_RADIUS
HAIR_Y, BROW_Y, NOSE_Y, CHIN_Y = THIRD, 0.0, -THIRD, -2.0 * THIRD
# Depths of the face's front, measured: on 5 faces turned 18-32° (evalfaces), the horizontal offsets between dlib's
# inner-brow midpoint, subnasale (33) and menton (8) put the nose base 0.17-0.26 units in front of the brow point
# and the chin 0.0-0.12 behind it. With these depths the fitted points land on the landmarks of turned faces too.
NOSE_Z = 1.2
CHIN_Z = 0.95
CHIN_HALF_WIDTH, CHIN_DEPTH = 0.32, 0.30  # the chin line: a small arc, its ends CHIN_DEPTH behind its front
JAW_START_DEG = 235.0  # where the jaw leaves the side-plane circle (0 front, 90 top, 180 back, 270 bottom)
GONION = (0.58, -1.12, -0.15)  # the jaw's corner on the +x side
#: The +x side's outline over the cheek (brow line's end, cheekbone, lower cheek) when that side is turned away.
CHEEK = ((SIDE_CUT, BROW_Y, SIDE_RADIUS), (0.72, -0.45, 0.55), (0.6, -1.05, 0.4))
FAR_SIDE_DEG = 10.0  # a side turned away further than this shows its cheek outline instead of its jaw
LOWER_RANGE = (0.8, 1.4)  # allowed stretch of the lower third (nose base–chin) relative to the middle one

#: 3D points of the construction (head frame) that a later measure can compare with a drawing's or a photo's.
KEY_POINTS_3D: dict[str, tuple[float, float, float]] = {
    "sphere_centre": (0.0, 0.0, 0.0),
    "centre_top": (0.0, 1.0, 0.0),  # crown: the top of the centre line
    "hairline": (0.0, HAIR_Y, SIDE_CUT),
    "brow": (0.0, BROW_Y, 1.0),  # the centre line crosses the brow line
    "nose_base": (0.0, NOSE_Y, NOSE_Z),
    "chin": (0.0, CHIN_Y, CHIN_Z),  # the bottom of the centre line (moved by ``lower``)
    "brow_end_left": (-SIDE_CUT, BROW_Y, SIDE_RADIUS),  # "left"/"right": image side of a frontal face
    "brow_end_right": (SIDE_CUT, BROW_Y, SIDE_RADIUS),
    "side_centre_left": (-SIDE_CUT, 0.0, 0.0),
    "side_centre_right": (SIDE_CUT, 0.0, 0.0),
}

#: Construction key points fitted onto 68-point landmarks (iBUG indices averaged), with their weights. Only points
#: on the face's midline: their depth is known well enough, and brow + nose base fix scale and place, the chin the
#: lower third.
FIT_LANDMARKS: dict[str, tuple[tuple[int, ...], float]] = {
    "brow": ((21, 22), 1.0),  # between the inner eyebrow ends: the brow line on the face's midline
    "nose_base": ((33,), 1.0),  # subnasale
    "chin": ((8,), 1.0),  # menton
}

#: Relative stroke width of each line family in :func:`render_lines`.
LINE_WEIGHTS: dict[str, float] = {"hairline": 0.6, "side_cross": 0.6}

_STEPS = 96  # samples per full circle; finer than the 4x supersampled raster needs at 256²


# ----------------------------------------------------------------------------------------------------
# Pose
# ----------------------------------------------------------------------------------------------------


def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def head_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head frame -> camera frame (x right, y up, z towards the viewer), (3, 3).

    ``R = Ry(-yaw) Rx(-pitch) Rz(-roll)`` with right-handed rotations: exactly the matrix whose decomposition
    ``yaw = atan2(-R02, R22), pitch = asin(R12), roll = atan2(-R10, R11)`` (the MediaPipe detector's) gives the
    angles back. Checks: yaw > 0 sends the face's front (0, 0, 1) to x < 0 (image left); pitch > 0 sends it to
    y > 0 (up); roll > 0 sends the head's x axis to y < 0, i.e. its right end down: clockwise in the image.
    """
    return _ry(-math.radians(yaw)) @ _rx(-math.radians(pitch)) @ _rz(-math.radians(roll))


def pose_from_rotation(rotation: np.ndarray) -> dict[str, float]:
    """Inverse of :func:`head_rotation`: (3, 3) -> {"yaw", "pitch", "roll"} in degrees."""
    r = np.asarray(rotation, dtype=np.float64)
    return {
        "yaw": math.degrees(math.atan2(-r[0, 2], r[2, 2])),
        "pitch": math.degrees(math.asin(max(-1.0, min(1.0, r[1, 2])))),
        "roll": math.degrees(math.atan2(-r[1, 0], r[1, 1])),
    }


def rotate_pose_in_image(pose: dict[str, float], angle: float) -> dict[str, float]:
    """The pose seen in an image turned ``angle`` degrees clockwise (e.g. an aligned crop of the photo).

    Turning the image is a rotation about the camera's axis applied after the head's own rotation, so for a turned
    head it is not simply added to the roll; the composed matrix is decomposed again.
    """
    rotation = _rz(-math.radians(angle)) @ head_rotation(pose["yaw"], pose["pitch"], pose["roll"])
    return pose_from_rotation(rotation)


# ----------------------------------------------------------------------------------------------------
# Curves in the head frame: (points (N, 3), normals (N, 3) or None); a point shows when its normal faces the
# camera, or (None) when the cut ball does not hide it.
# ----------------------------------------------------------------------------------------------------


def _arc(start: float, stop: float, full_steps: int = _STEPS) -> np.ndarray:
    """Angles in radians from start to stop (degrees), about ``full_steps`` per turn."""
    n = max(2, int(math.ceil(abs(stop - start) / 360.0 * full_steps)) + 1)
    return np.radians(np.linspace(start, stop, n))


def _side_rim(side: int) -> np.ndarray:
    """The side-plane circle on the ``side`` (+1: x > 0) of the ball, (N, 3)."""
    t = _arc(0.0, 360.0)
    return np.stack([np.full_like(t, side * SIDE_CUT), SIDE_RADIUS * np.sin(t), SIDE_RADIUS * np.cos(t)], -1)


def _polyline(points, per_segment: int = 12) -> np.ndarray:
    """Straight segments through (K, 3) points, each cut into ``per_segment`` steps -> (M, 3)."""
    p = np.asarray(points, dtype=np.float64)
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    dense = [a + t * (b - a) for a, b in zip(p[:-1], p[1:], strict=True)]
    return np.concatenate([*dense, p[-1:]])


def _spline(control: list, per_segment: int = 10) -> np.ndarray:
    """Uniform Catmull-Rom curve through (K, 3) control points -> (M, 3), both ends included."""
    c = np.asarray(control, dtype=np.float64)
    padded = np.concatenate([2 * c[:1] - c[1:2], c, 2 * c[-1:] - c[-2:-1]])
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    pieces = []
    for p0, p1, p2, p3 in zip(padded[:-3], padded[1:-2], padded[2:-1], padded[3:], strict=True):
        pieces.append(
            0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3)
        )
    return np.concatenate([*pieces, c[-1:]])


def _jaw(side: int) -> np.ndarray:
    """From the back of the side plane (below the ear) down to the jaw's corner, then forward to the chin's end."""
    a = math.radians(JAW_START_DEG)
    start = (side * SIDE_CUT, SIDE_RADIUS * math.sin(a), SIDE_RADIUS * math.cos(a))
    corner = np.array([side * GONION[0], GONION[1], GONION[2]])
    chin_end = np.array([side * CHIN_HALF_WIDTH, CHIN_Y, CHIN_Z - CHIN_DEPTH])
    # Two points close to the corner keep it a rounded angle rather than a wide curve.
    before = corner + 0.15 * (np.asarray(start) - corner)
    after = corner + 0.15 * (chin_end - corner)
    return _spline([start, before, after, chin_end], 24)


def _cheek(side: int) -> np.ndarray:
    """The far side's outline: from the brow line's end down over the cheekbone and the jaw to the chin's end."""
    return _spline(
        [(side * p[0], p[1], p[2]) for p in CHEEK] + [(side * CHIN_HALF_WIDTH, CHIN_Y, CHIN_Z - CHIN_DEPTH)], 16
    )


def _stretch_lower(points: np.ndarray, lower: float) -> np.ndarray:
    """Stretch the face below the nose-base line vertically by ``lower`` (head frame, (N, 3) -> (N, 3))."""
    out = np.array(points, dtype=np.float64)
    below = out[:, 1] < NOSE_Y
    out[below, 1] = NOSE_Y + (out[below, 1] - NOSE_Y) * lower
    return out


#: Visibility of a curve: by the normals given with it, or (None) wherever the cut ball does not hide it.
Curve = tuple[np.ndarray, "np.ndarray | None"]


def _curves_3d(side_faces: dict[int, float], lower: float) -> dict[str, list[Curve]]:
    """Every line of the construction as (points, normals or None) in the head frame.

    side_faces: how much each side plane faces the camera (the z of its turned normal), keyed by side ±1.
    """
    curves: dict[str, list[Curve]] = {k: [] for k in LINE_NAMES}

    t = _arc(-90.0, 90.0)
    hairline = np.stack([SIDE_CUT * np.sin(t), np.full_like(t, HAIR_Y), SIDE_CUT * np.cos(t)], -1)
    curves["hairline"].append((hairline, hairline))  # on the ball, the normal is the point itself
    half = math.degrees(math.asin(SIDE_CUT))  # the equator meets the side planes here
    t = _arc(-half, half)
    equator = np.stack([np.sin(t), np.zeros_like(t), np.cos(t)], -1)
    curves["brow"].append((equator, equator))

    # Centre line: the mid-sagittal great circle from the brow over the crown to the back of the skull...
    t = _arc(0.0, 240.0)
    great = np.stack([np.zeros_like(t), np.sin(t), np.cos(t)], -1)
    curves["centre"].append((great, great))
    # ...and the face's front from the brow down to the chin.
    front = _stretch_lower(_polyline([(0.0, BROW_Y, 1.0), (0.0, NOSE_Y, NOSE_Z), (0.0, CHIN_Y, CHIN_Z)]), lower)
    curves["centre"].append((front, np.tile([0.0, 0.0, 1.0], (len(front), 1))))

    # Nose-base line: half an ellipse from one side plane's bottom, round the face's front, to the other's; the
    # chin line: a small arc. Their normals are the ellipses' own (horizontal) normals.
    t = _arc(-90.0, 90.0)
    nose = np.stack([SIDE_CUT * np.sin(t), np.full_like(t, NOSE_Y), NOSE_Z * np.cos(t)], -1)
    curves["nose"].append((nose, np.stack([np.sin(t) / SIDE_CUT, np.zeros_like(t), np.cos(t) / NOSE_Z], -1)))
    chin = np.stack(
        [CHIN_HALF_WIDTH * np.sin(t), np.full_like(t, CHIN_Y), CHIN_Z - CHIN_DEPTH + CHIN_DEPTH * np.cos(t)], -1
    )
    chin_normals = np.stack([np.sin(t) / CHIN_HALF_WIDTH, np.zeros_like(t), np.cos(t) / CHIN_DEPTH], -1)
    curves["chin"].append((_stretch_lower(chin, lower), chin_normals))

    for side in (-1, 1):
        facing = side_faces[side]
        rim = _side_rim(side)
        # The rim is the edge between the side plane and the ball: it shows where either of the two faces the
        # camera, so a side plane turned slightly away still shows the front of its rim (no jump at yaw 0).
        rim_normals = rim if facing <= 0 else np.tile([side, 0.0, 0.0], (len(rim), 1))
        curves["side_plane"].append((rim, rim_normals))
        plane_normals = np.tile([side * 1.0, 0.0, 0.0], (25, 1))
        across = [(side * SIDE_CUT, BROW_Y, SIDE_RADIUS), (side * SIDE_CUT, BROW_Y, -SIDE_RADIUS)]
        down = [(side * SIDE_CUT, SIDE_RADIUS, 0.0), (side * SIDE_CUT, -SIDE_RADIUS, 0.0)]
        curves["brow"].append((_polyline(across, 24), plane_normals))  # the brow line goes on across the side
        curves["side_cross"].append((_polyline(down, 24), plane_normals))
        # The jaw, from below the ear to the chin, is drawn while its side is seen or nearly so; once the head is
        # turned away from it by more than FAR_SIDE_DEG, the face's outline on that side runs over the cheek instead
        # (the real jaw's back is then hidden behind the cheek).
        outline = _jaw(side) if facing > -math.sin(math.radians(FAR_SIDE_DEG)) else _cheek(side)
        curves["jaw"].append((_stretch_lower(outline, lower), None))
    return curves


LINE_NAMES = ("cranium", "side_plane", "side_cross", "hairline", "brow", "nose", "chin", "centre", "jaw")


def _visible_runs(points: np.ndarray, facing: np.ndarray, eps: float = 1e-9) -> list[np.ndarray]:
    """Split a curve into its visible runs, (N, 3) and (N,) -> list of (M, 3).

    Where visibility changes between two samples the run ends at the linearly interpolated ``facing == 0``
    crossing, so clipped lines end exactly at the silhouette instead of at the last sample.
    """
    shown = facing > eps
    runs: list[np.ndarray] = []
    start = None
    for i in range(len(points) + 1):
        inside = i < len(points) and shown[i]
        if inside and start is None:
            start = i
        elif not inside and start is not None:
            run = [points[start:i]]
            if start > 0:  # entering: prepend the crossing
                run.insert(0, _crossing(points[start - 1], points[start], facing[start - 1], facing[start])[None])
            if i < len(points):  # leaving: append the crossing
                run.append(_crossing(points[i - 1], points[i], facing[i - 1], facing[i])[None])
            joined = np.concatenate(run)
            if len(joined) >= 2:
                runs.append(joined)
            start = None
    return runs


def _behind_ball(points: np.ndarray, towards_camera: np.ndarray) -> np.ndarray:
    """Whether the cut ball hides each point, (N, 3) head frame -> (N,) bool.

    The ray from the point towards the camera is tested against the solid ball ∩ the slab ``|x| < SIDE_CUT``: a
    point on the solid's far side, or below and behind it, is hidden. Grazing rays (a side plane seen edge-on) do
    not count, so a frontal face keeps its jaws.
    """
    q, v = np.asarray(points, dtype=np.float64), np.asarray(towards_camera, dtype=np.float64)
    # Sphere: |q + t v|^2 = 1 with |v| = 1.
    b = q @ v
    disc = b * b - ((q * q).sum(1) - 1.0)
    root = np.sqrt(np.maximum(disc, 0.0))
    t0, t1 = -b - root, -b + root
    # Slab |x| < SIDE_CUT along the ray.
    inner = SIDE_CUT - 1e-6
    if abs(v[0]) < 1e-9:
        s0 = np.where(np.abs(q[:, 0]) < inner, -np.inf, np.inf)
        s1 = np.where(np.abs(q[:, 0]) < inner, np.inf, -np.inf)
    else:
        a0, a1 = (-inner - q[:, 0]) / v[0], (inner - q[:, 0]) / v[0]
        s0, s1 = np.minimum(a0, a1), np.maximum(a0, a1)
    start = np.maximum(np.maximum(t0, s0), 1e-6)
    stop = np.minimum(t1, s1)
    return (disc > 0) & (stop > start + 1e-6)


def _crossing(a: np.ndarray, b: np.ndarray, fa: float, fb: float) -> np.ndarray:
    t = fa / (fa - fb) if fa != fb else 0.5
    return a + float(np.clip(t, 0.0, 1.0)) * (b - a)


# ----------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------


def to_unit_2d(points: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head-frame points (N, 3) -> unit image coordinates (N, 2) (x right, y down, ball centre at 0)."""
    turned = np.asarray(points, dtype=np.float64) @ head_rotation(yaw, pitch, roll).T
    return np.stack([turned[:, 0], -turned[:, 1]], -1)


def construction_lines(yaw: float, pitch: float, roll: float, lower: float = 1.0) -> dict[str, list[np.ndarray]]:
    """The visible lines of the Loomis construction for a pose, in unit image coordinates.

    Args:
        yaw, pitch, roll: degrees (yaw > 0 face turned to the image's left, pitch > 0 up, roll > 0 clockwise).
        lower: length of the lower third (nose base–chin) relative to the other two; 1 is Loomis's canon.

    Returns:
        {name: [polyline (N, 2), ...]} for the names of :data:`LINE_NAMES`: ``cranium`` (the ball's outline),
        ``side_plane``, ``side_cross``, ``hairline``, ``brow``, ``nose``, ``chin``, ``centre``, ``jaw``; x right,
        y down, the ball's centre at (0, 0) and its radius 1. A family may be empty (a side plane turned away).
    """
    rotation = head_rotation(yaw, pitch, roll)
    towards_camera = rotation[2]  # the camera's +z axis in the head frame
    side_faces = {side: float(rotation[2, 0] * side) for side in (-1, 1)}
    t = _arc(0.0, 360.0, 128)
    lines: dict[str, list[np.ndarray]] = {name: [] for name in LINE_NAMES}
    lines["cranium"].append(np.stack([np.cos(t), np.sin(t)], -1))  # orthographic: a ball always projects to a circle
    for name, curves in _curves_3d(side_faces, lower).items():
        for points, normals in curves:
            if normals is None:
                facing = np.where(_behind_ball(points, towards_camera), -1.0, 1.0)
            else:
                facing = normals @ towards_camera
            turned = points @ rotation.T
            lines[name].extend(np.stack([run[:, 0], -run[:, 1]], -1) for run in _visible_runs(turned, facing))
    return lines


def key_points_3d(lower: float = 1.0) -> dict[str, np.ndarray]:
    """:data:`KEY_POINTS_3D` with the chin moved for ``lower``, {name: (3,)} in the head frame."""
    names = list(KEY_POINTS_3D)
    points = _stretch_lower(np.array([KEY_POINTS_3D[n] for n in names]), lower)
    return dict(zip(names, points, strict=True))


def key_points(yaw: float, pitch: float, roll: float, lower: float = 1.0) -> dict[str, np.ndarray]:
    """Key points in unit image coordinates, {name: (2,)}."""
    points = key_points_3d(lower)
    flat = to_unit_2d(np.stack(list(points.values())), yaw, pitch, roll)
    return dict(zip(points, flat, strict=True))


def visible_sides(yaw: float, pitch: float, roll: float) -> list[str]:
    """Which side planes face the camera: a subset of ["left", "right"] (image sides of a frontal face)."""
    rotation = head_rotation(yaw, pitch, roll)
    return [name for name, side in (("left", -1), ("right", 1)) if rotation[2, 0] * side > 1e-6]


@dataclass(frozen=True)
class Placement:
    """Where a construction goes in an image: ``pixel = unit * scale + centre``; ``lower`` as in
    :func:`construction_lines`; ``rms``: weighted residual of the fitted key points in pixels."""

    scale: float
    centre: np.ndarray
    lower: float
    rms: float

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Unit coordinates (..., 2) -> pixels."""
        return np.asarray(points, dtype=np.float64) * self.scale + self.centre


def fit_placement(yaw: float, pitch: float, roll: float, points68: np.ndarray, fit_lower: bool = True) -> Placement:
    """Scale, centre (and lower third) that put the turned construction's key points on a face's 68 landmarks.

    The rotation is the pose's and is not refitted, so the drawing keeps the 3D head angle instead of absorbing
    landmark noise into an extra in-plane turn. The model ``landmark = scale * (u + g * v) + centre``, with ``u`` a
    key point's unit projection and ``v`` how the chin moves per unit of ``g = lower - 1``, is linear in
    (scale, scale * g, centre): one weighted least-squares solve. A ``lower`` outside :data:`LOWER_RANGE` is
    clamped and the rest refitted.

    Args:
        yaw, pitch, roll: degrees, in the frame of ``points68``.
        points68: (68, 2) landmarks in pixels.
        fit_lower: False keeps Loomis's equal thirds (lower = 1).
    """
    p68 = np.asarray(points68, dtype=np.float64).reshape(68, 2)
    names = list(FIT_LANDMARKS)
    base = to_unit_2d(np.stack([key_points_3d(1.0)[n] for n in names]), yaw, pitch, roll)
    moved = to_unit_2d(np.stack([key_points_3d(2.0)[n] for n in names]), yaw, pitch, roll) - base  # per unit g
    dst = np.stack([p68[list(FIT_LANDMARKS[n][0])].mean(0) for n in names])
    sqrt_w = np.sqrt(np.repeat([FIT_LANDMARKS[n][1] for n in names], 2))

    def solve(with_lower: bool, g: float) -> tuple[float, float, np.ndarray]:
        # Rows: x and y of each point; columns: scale, (scale * g), centre x, centre y.
        u = (base + (0.0 if with_lower else g) * moved).reshape(-1)
        cols = [u] + ([moved.reshape(-1)] if with_lower else [])
        cols += [np.tile([1.0, 0.0], len(names)), np.tile([0.0, 1.0], len(names))]
        design = np.stack(cols, -1) * sqrt_w[:, None]
        sol = np.linalg.lstsq(design, dst.reshape(-1) * sqrt_w, rcond=None)[0]
        scale = float(sol[0])
        return scale, (float(sol[1]) / scale if with_lower and scale > 1e-9 else g), sol[-2:]

    scale, g, centre = solve(fit_lower, 0.0)
    lo, hi = LOWER_RANGE
    if fit_lower and not lo - 1.0 <= g <= hi - 1.0:
        scale, g, centre = solve(False, float(np.clip(g, lo - 1.0, hi - 1.0)))
    residual = scale * (base + g * moved) + centre - dst
    w = sqrt_w[::2] ** 2
    rms = float(math.sqrt((w * (residual**2).sum(1)).sum() / w.sum()))
    return Placement(scale=scale, centre=np.asarray(centre, dtype=np.float64), lower=1.0 + g, rms=rms)


def place(lines: dict[str, list[np.ndarray]], placement: Placement) -> dict[str, list[np.ndarray]]:
    """Unit coordinates -> pixels for every polyline."""
    return {name: [placement.apply(p) for p in polylines] for name, polylines in lines.items()}


def render_lines(
    lines: dict[str, list[np.ndarray]],
    size: int,
    width: float,
    weights: dict[str, float] | None = None,
    supersample: int = 4,
) -> np.ndarray:
    """Draw polylines as anti-aliased black strokes on white.

    Strokes are drawn ``supersample`` times larger with round caps, then box-filtered down, so edges get smooth
    coverage values.

    Args:
        lines: {name: [polyline (N, 2)]} in output pixels (pixel centres at integers).
        size: the output side S.
        width: stroke width in output pixels (times ``weights[name]``, default :data:`LINE_WEIGHTS`).

    Returns:
        (S, S) uint8, 255 = paper.
    """
    from PIL import Image, ImageDraw

    weights = LINE_WEIGHTS if weights is None else weights
    k = int(supersample)
    canvas = Image.new("L", (size * k, size * k), 255)
    draw = ImageDraw.Draw(canvas)
    for name, polylines in lines.items():
        stroke = max(1.0, width * weights.get(name, 1.0) * k)
        radius = stroke / 2.0
        for poly in polylines:
            # Output pixel centre x lands on the centre of its k x k block: x * k + (k - 1) / 2.
            pts = np.asarray(poly, dtype=np.float64) * k + (k - 1) / 2.0
            if len(pts) < 2 or not np.isfinite(pts).all():
                continue
            # No join shapes: the polylines turn a few degrees per vertex, so plain joins differ from round ones by
            # at most 16/255 after the box filter (measured), and drawing is 2.5x faster.
            draw.line([tuple(p) for p in pts], fill=0, width=int(round(stroke)))
            for x, y in (pts[0], pts[-1]):  # round caps
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=0)
    return np.asarray(canvas.reduce(k))


# Public names for code that re-draws constructions (the Loomis plugin's pose estimate).
curves_3d = _curves_3d
behind_ball = _behind_ball
