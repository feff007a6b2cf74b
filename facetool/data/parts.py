"""Face-part regions of an aligned crop: the boxes and masks APDrawingGAN's local generators work on.

APDrawingGAN (Yi et al. 2019) draws eyes, nose, mouth, hair and background with separate local networks.
At 256² its part rectangles are centred on the landmarks with fixed sizes — eyes 40 high × 56 wide, nose
48 × 48, mouth 40 × 64 — and scale with the crop side. Hair and background come from a foreground (person)
mask when one exists; otherwise from a geometric rule (see :func:`person_region`).

Coordinates: crop pixels, x right, y down, pixel centres at integers; a box ``(x1, y1, x2, y2)`` covers
rows ``y1:y2`` and columns ``x1:x2`` (end exclusive), so ``x2 - x1`` is its width.
"""

from __future__ import annotations

import numpy as np

REFERENCE_SIZE = 256
#: (height, width) of each rectangular part at 256², from the APDrawingGAN paper.
PART_SIZES: dict[str, tuple[int, int]] = {
    "left_eye": (40, 56),
    "right_eye": (40, 56),
    "nose": (48, 48),
    "mouth": (40, 64),
}
PARTS = (*PART_SIZES, "hair", "background")


def part_centres(points5: np.ndarray) -> dict[str, np.ndarray]:
    """points5 (5, 2) in crop pixels -> the (x, y) centre of each rectangular part (mouth: between corners)."""
    p = np.asarray(points5, dtype=np.float64).reshape(5, 2)
    return {"left_eye": p[0], "right_eye": p[1], "nose": p[2], "mouth": (p[3] + p[4]) / 2}


def part_size(name: str, size: int) -> tuple[int, int]:
    """(height, width) in px of a rectangular part in a ``size``² crop."""
    h, w = PART_SIZES[name]
    f = size / REFERENCE_SIZE
    return max(1, round(h * f)), max(1, round(w * f))


def part_boxes(points5: np.ndarray, size: int) -> dict[str, tuple[int, int, int, int]]:
    """Rectangles of the eyes, nose and mouth, centred on the landmarks, with the paper's sizes.

    A box that would stick out of the crop is shifted inside (keeping its size), so every box is a valid slice.

    Args:
        points5: (5, 2) left eye, right eye, nose, mouth left, mouth right, in crop pixels.
        size: crop side.

    Returns:
        name -> (x1, y1, x2, y2) ints, end exclusive.
    """
    boxes = {}
    for name, (cx, cy) in part_centres(points5).items():
        h, w = part_size(name, size)
        # The box spans pixel centres x1 .. x2-1, whose middle is x1 + (w - 1) / 2 = cx.
        x1 = int(np.clip(round(cx - (w - 1) / 2), 0, size - w))
        y1 = int(np.clip(round(cy - (h - 1) / 2), 0, size - h))
        boxes[name] = (x1, y1, x1 + w, y1 + h)
    return boxes


def _polygon_mask(size: int, polygons: list[np.ndarray], ellipses: list[tuple] = ()) -> np.ndarray:
    """Filled polygons (each (N, 2)) and ellipses ((cx, cy, rx, ry, angle_deg)) -> (size, size) bool."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (size, size), 0)
    pen = ImageDraw.Draw(canvas)
    for poly in polygons:
        pen.polygon([(float(x), float(y)) for x, y in poly], fill=255)
    for cx, cy, rx, ry, angle in ellipses:
        t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
        c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        x, y = rx * np.cos(t), ry * np.sin(t)
        pts = np.stack([cx + c * x - s * y, cy + s * x + c * y], 1)
        pen.polygon([(float(a), float(b)) for a, b in pts], fill=255)
    return np.asarray(canvas) > 127


def _face_frame(points5: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(eye midpoint, unit right vector along the eyes, unit up vector, eye distance) of a face."""
    p = np.asarray(points5, dtype=np.float64).reshape(5, 2)
    mid = (p[0] + p[1]) / 2
    across = p[1] - p[0]
    d = max(float(np.linalg.norm(across)), 1e-6)
    right = across / d
    up = np.array([right[1], -right[0]])  # y grows downward, so "up" is right turned counter-clockwise
    return mid, right, up, d


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Monotone-chain convex hull of (N, 2) points -> (M, 2), counter-clockwise in x-right/y-up terms
    (the order :func:`facetool.data.labels.convex_fill` expects)."""
    pts = sorted({(float(x), float(y)) for x, y in points})
    if len(pts) < 3:
        return np.asarray(pts)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    upper: list = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.asarray(lower[:-1] + upper[:-1])


def face_region(points68: np.ndarray, size: int, forehead: float = 0.55) -> np.ndarray:
    """The face proper (skin from chin to hairline): hull of the 68 points with the brows lifted.

    dlib's points stop at the brows, so the brow points are copied ``forehead`` eye-distances further up (along
    the face's own up direction) to cover the forehead up to a typical hairline.

    Returns: (size, size) bool.
    """
    p = np.asarray(points68, dtype=np.float64).reshape(68, 2)
    _, _, up, d = _face_frame(_points5_from_68(p))
    lifted = p[17:27] + up * forehead * d
    return _polygon_mask(size, [convex_hull(np.vstack([p, lifted]))])


def _points5_from_68(p: np.ndarray) -> np.ndarray:
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def head_ellipse(points5: np.ndarray, size: int, grow: float = 1.0) -> np.ndarray:
    """Where head and hair usually are: an ellipse in the face's own axes (eye distance ``d``).

    Centred ``0.3 d`` above the eye midpoint with semi-axes ``1.7 d`` across and ``2.1 d`` along the face
    (times ``grow``): the crown sits ~1.6 d above the eyes, the chin ~1.45 d below, and most hair stays within
    ~1.6 d of the face's centre line. Long hair, hats and big hairstyles stick out of it.

    Returns: (size, size) bool.
    """
    mid, right, up, d = _face_frame(points5)
    centre = mid + up * 0.3 * d
    angle = float(np.degrees(np.arctan2(right[1], right[0])))
    return _polygon_mask(size, [], [(centre[0], centre[1], 1.7 * d * grow, 2.1 * d * grow, angle)])


def shoulders(points5: np.ndarray, size: int) -> np.ndarray:
    """Neck and shoulders: below the mouth, a trapezoid widening from ``1.6 d`` at the mouth to ``4 d`` at
    ``2.5 d`` below it, then straight down. Returns (size, size) bool."""
    _, right, up, d = _face_frame(points5)
    p = np.asarray(points5, dtype=np.float64).reshape(5, 2)
    mouth = (p[3] + p[4]) / 2
    far = mouth - up * 2.5 * d
    deep = far - up * 4.0 * d  # carry the widest part on past the bottom of any crop
    trapezoid = np.array(
        [mouth - right * 0.8 * d, mouth + right * 0.8 * d, far + right * 2.0 * d, deep + right * 2.0 * d]
        + [deep - right * 2.0 * d, far - right * 2.0 * d]
    )
    return _polygon_mask(size, [trapezoid])


def person_region(points5: np.ndarray, size: int, foreground: np.ndarray | None = None) -> np.ndarray:
    """Where the person is in a crop: head, hair, neck and shoulders. Returns (size, size) bool.

    Without a mask, the rule :func:`head_ellipse` ∪ :func:`shoulders`. With a person mask (``facetool data
    labels`` writes one), its head part is trusted within a 1.25× larger ellipse — colour segmentation
    sometimes leaks into the background above the head, never by that much — and the shoulders come from the
    rule, because those masks are about the head and often leave clothes out.
    """
    body = shoulders(points5, size)
    if foreground is None:
        return head_ellipse(points5, size) | body
    fg = np.asarray(foreground).astype(bool)
    if fg.shape != (size, size):
        raise ValueError(f"foreground must be ({size}, {size}), got {fg.shape}")
    return (fg & head_ellipse(points5, size, grow=1.25)) | body


def hair_and_background(
    points5: np.ndarray, size: int, points68: np.ndarray | None = None, foreground: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(hair, background) bool masks of a crop.

    Background is everything outside :func:`person_region`. Hair is the head part of it — the person mask
    within the 1.25× head ellipse, or without a mask the head ellipse itself — outside the face region
    (:func:`face_region`, or an ellipse from the five points) and above the chin line; long hair below the chin
    is left out, since there the mask cannot tell it from neck and clothes.

    Args:
        points5: (5, 2) in crop pixels.
        size: crop side.
        points68: (68, 2) in crop pixels, or None.
        foreground: (size, size) bool/uint8 person mask warped into the crop (non-zero = person), or None.
    """
    mid, right, up, d = _face_frame(points5)
    person = person_region(points5, size, foreground)
    if foreground is None:
        head = head_ellipse(points5, size)
    else:
        head = np.asarray(foreground).astype(bool) & head_ellipse(points5, size, grow=1.25)
    if points68 is not None:
        face = face_region(points68, size)
        chin = np.asarray(points68, dtype=np.float64).reshape(68, 2)[8]
    else:
        centre = mid - up * 0.25 * d  # brows-to-chin ellipse: 1 d above the eyes to 1.5 d below
        angle = float(np.degrees(np.arctan2(right[1], right[0])))
        face = _polygon_mask(size, [], [(centre[0], centre[1], 1.1 * d, 1.25 * d, angle)])
        chin = mid - up * 1.45 * d
    ys, xs = np.mgrid[0:size, 0:size]
    height_above_chin = (xs - chin[0]) * up[0] + (ys - chin[1]) * up[1]
    hair = head & ~face & (height_above_chin > 0)
    return hair, ~person


def part_masks(
    points5: np.ndarray, size: int, points68: np.ndarray | None = None, foreground: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Masks of every part: the four rectangles of :func:`part_boxes`, hair and background.

    Returns:
        name -> (size, size) uint8, 255 inside, 0 outside; names in :data:`PARTS` order.
    """
    masks = {}
    for name, (x1, y1, x2, y2) in part_boxes(points5, size).items():
        m = np.zeros((size, size), np.uint8)
        m[y1:y2, x1:x2] = 255
        masks[name] = m
    hair, background = hair_and_background(points5, size, points68, foreground)
    masks["hair"] = hair.astype(np.uint8) * 255
    masks["background"] = background.astype(np.uint8) * 255
    return masks
