"""Landmark NME: how far one set of face points lies from a reference set, in inter-ocular distances.

NME = mean over points of the point-to-point distance ÷ the inter-ocular distance of the reference. The
normaliser depends on the layout: the outer eye corners (iBUG 300-W points 36 and 45; ``normaliser="pupils"``: the
centres of points 36-41 and 42-47) for 68 points, the eye centres (points 0 and 1 of
:data:`facetool.faces.POINTS5_NAMES`) for 5 points. Both are numpy-only and accept leading batch dimensions.
"""

from __future__ import annotations

import numpy as np

#: Indices of the two points whose distance normalises the error, per layout.
INTEROCULAR_POINTS = {68: (36, 45), 5: (0, 1)}


def _as_points(points: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim < 2 or array.shape[-1] != 2 or array.shape[-2] not in INTEROCULAR_POINTS:
        layouts = " or ".join(f"({n}, 2)" for n in INTEROCULAR_POINTS)
        raise ValueError(f"{name}: expected points of shape (*, {layouts}), got {array.shape}")
    return array


def interocular_distance(points: np.ndarray, normaliser: str = "corners") -> np.ndarray | float:
    r"""Distance between the eyes of a landmark set: outer eye corners (68 points) or eye centres (5 points).

    Args:
        points: :math:`(*, N, 2)` x, y landmarks with :math:`N` = 68 (iBUG 300-W) or 5 (left eye, right eye,
            nose, mouth left, mouth right).
        normaliser: for 68 points, ``"corners"`` (outer eye corners, 300-W's inter-ocular) or ``"pupils"`` (eye
            centres, inter-pupil); 5 points always use their eye centres.

    Returns:
        :math:`(*)` distances in the points' units; a float for a single :math:`(N, 2)` set.

    Example:
        >>> p = np.zeros((5, 2)); p[1] = (3.0, 4.0)
        >>> interocular_distance(p)
        5.0
    """
    p = _as_points(points, "points")
    if normaliser not in ("corners", "pupils"):
        raise ValueError(f"normaliser must be corners or pupils, not {normaliser!r}")
    if normaliser == "pupils" and p.shape[-2] == 68:
        left, right = p[..., 36:42, :].mean(axis=-2), p[..., 42:48, :].mean(axis=-2)
    else:
        a, b = INTEROCULAR_POINTS[p.shape[-2]]
        left, right = p[..., a, :], p[..., b, :]
    distance = np.linalg.norm(left - right, axis=-1)
    return float(distance) if distance.ndim == 0 else distance


def nme(points: np.ndarray, reference: np.ndarray, normaliser: str = "corners") -> np.ndarray | float:
    r"""Normalised mean error of ``points`` against ``reference``.

    The mean Euclidean distance between corresponding points, divided by the reference's
    :func:`interocular_distance`. 0 means identical points; 0.1 means the points are off by a tenth of the eye
    distance on average. A reference whose eyes coincide gives ``inf`` (or ``nan`` for identical sets).

    Args:
        points: :math:`(*, N, 2)` the measured landmarks (e.g. found on a generated image).
        reference: :math:`(*, N, 2)` the landmarks they are compared with (same :math:`N`: 68 or 5); the
            normaliser is taken from these.
        normaliser: see :func:`interocular_distance`.

    Returns:
        :math:`(*)` NME values; a float for a single pair of :math:`(N, 2)` sets.

    Example:
        >>> ref = np.zeros((5, 2)); ref[1] = (10.0, 0.0)
        >>> nme(ref + (0.0, 1.0), ref)
        0.1
    """
    p, r = _as_points(points, "points"), _as_points(reference, "reference")
    if p.shape[-2] != r.shape[-2]:
        raise ValueError(f"points and reference differ in layout: {p.shape[-2]} and {r.shape[-2]} points")
    error = np.linalg.norm(p - r, axis=-1).mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = error / interocular_distance(r, normaliser)
    return float(value) if np.ndim(value) == 0 else value
