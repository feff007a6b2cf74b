"""Face alignment: fit a similarity to five landmarks, crop the face, paste the processed crop back.

Pixel convention (everywhere in this module, and in :mod:`facetool.faces`): x to the right, y down, and the
centre of pixel ``(row i, column j)`` is at ``(x=j, y=i)``; a ``W``-wide image spans ``x`` in
``[-0.5, W - 0.5]``. This is OpenCV's and insightface's convention and the one kornia's ``warp_affine`` uses
for its pixel matrices, so a matrix ``M`` (photo pixel -> crop pixel) sends photo pixel centre ``p`` exactly
onto the crop pixel that samples it. Template points live in the unit square and map to ``template * size``
crop pixels, which makes ``"arcface"`` at ``size=112`` identical to insightface's ``norm_crop``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from kornia.geometry.transform import warp_affine
from torch import Tensor

from facetool.errors import UsageError

__all__ = [
    "AUTO_EDGE_COLOUR_BELOW",
    "TEMPLATES",
    "AlignTemplate",
    "crop_faces",
    "estimate_alignment",
    "feather_mask",
    "get_template",
    "invert_affine",
    "paste_back",
    "transform_points",
    "umeyama",
]


def _check_shape(name: str, x: Tensor, ndim: int, tail: tuple[int, ...] = ()) -> None:
    if x.ndim != ndim or tuple(x.shape[x.ndim - len(tail) :]) != tail:
        want = ", ".join(["*"] * (ndim - len(tail)) + [str(t) for t in tail])
        raise ValueError(f"{name} must have shape ({want}), got {tuple(x.shape)}")


# ----------------------------------------------------------------------------------------------------
# Similarity fit
# ----------------------------------------------------------------------------------------------------


def umeyama(src: Tensor, dst: Tensor, weights: Tensor | None = None) -> Tensor:
    r"""Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping src to dst.

    Minimises :math:`\sum_n w_n \lVert s R\, x_n + t - y_n \rVert^2` over :math:`s > 0`, :math:`R \in SO(2)`
    and :math:`t` (Umeyama 1991). In 2D, :math:`sR` is multiplication by one complex number :math:`z`, so the
    problem is a weighted linear regression :math:`y = z x + t` in :math:`\mathbb{C}` with the closed form
    :math:`z = \sum w \bar{x} y / \sum w |x|^2` on centred points. That is Umeyama's SVD solution with the
    reflection already excluded, but without an SVD, whose gradient is undefined for repeated singular
    values (e.g. a square of points) — so this stays smooth and differentiable everywhere.

    Args:
        src: source points :math:`(B, N, 2)`, :math:`N \ge 2`.
        dst: destination points :math:`(B, N, 2)`.
        weights: non-negative per-point weights :math:`(B, N)`; ``None`` weighs all points equally.

    Returns:
        the transform :math:`(B, 2, 3)`, ``dst ≈ M[:, :, :2] @ src + M[:, :, 2]``.
    """
    _check_shape("src", src, 3, (2,))
    if dst.shape != src.shape or src.shape[1] < 2:
        raise ValueError(f"src and dst must both be (B, N>=2, 2), got {tuple(src.shape)} and {tuple(dst.shape)}")
    if weights is None:
        weights = torch.ones(src.shape[:2], device=src.device, dtype=src.dtype)
    elif weights.shape != src.shape[:2]:
        raise ValueError(f"weights must have shape {tuple(src.shape[:2])}, got {tuple(weights.shape)}")
    eps = torch.finfo(src.dtype).tiny
    w = weights / weights.sum(dim=1, keepdim=True).clamp_min(eps)  # (B, N), sums to 1
    w2 = w[..., None]

    mu_src = (w2 * src).sum(dim=1)  # (B, 2)
    mu_dst = (w2 * dst).sum(dim=1)
    xs, ys = src - mu_src[:, None], dst - mu_dst[:, None]

    # z = a + ib = sum(w * conj(x) * y) / sum(w * |x|^2): a is the dot product, b the 2D cross product.
    var = (w * (xs * xs).sum(-1)).sum(1).clamp_min(eps)  # all src points equal -> scale 0, not NaN
    a = (w * (xs * ys).sum(-1)).sum(1) / var
    b = (w * (xs[..., 0] * ys[..., 1] - xs[..., 1] * ys[..., 0])).sum(1) / var

    linear = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], -2)  # (B, 2, 2) = s R
    t = mu_dst - (linear @ mu_src[..., None])[..., 0]
    return torch.cat([linear, t[..., None]], dim=-1)


def invert_affine(matrices: Tensor) -> Tensor:
    r"""Invert affine transforms.

    Args:
        matrices: :math:`(B, 2, 3)`, non-singular linear part.

    Returns:
        :math:`(B, 2, 3)` with ``transform_points(transform_points(p, M), invert_affine(M)) == p``.
    """
    _check_shape("matrices", matrices, 3, (2, 3))
    # Closed-form 2x2 inverse: exact enough, differentiable, and needs no LAPACK on any backend.
    a, b, tx = matrices[:, 0].unbind(-1)
    c, d, ty = matrices[:, 1].unbind(-1)
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    itx = -(ia * tx + ib * ty)
    ity = -(ic * tx + id_ * ty)
    return torch.stack([torch.stack([ia, ib, itx], -1), torch.stack([ic, id_, ity], -1)], -2)


def transform_points(points: Tensor, matrices: Tensor) -> Tensor:
    r"""Apply affine transforms to points.

    Args:
        points: :math:`(B, N, 2)` pixel coordinates ``(x, y)``.
        matrices: :math:`(B, 2, 3)`.

    Returns:
        :math:`(B, N, 2)`.
    """
    _check_shape("points", points, 3, (2,))
    _check_shape("matrices", matrices, 3, (2, 3))
    return points @ matrices[:, :, :2].transpose(1, 2) + matrices[:, None, :, 2]


# ----------------------------------------------------------------------------------------------------
# Templates
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlignTemplate:
    """Where the five landmarks go in the crop.

    Attributes:
        name: what ``--template`` / a method spec refers to.
        points: five ``(x, y)`` in the unit square of the crop — left eye, right eye, nose, mouth left, mouth
            right (left/right as seen in the image); crop pixel = point * size.
        description: one line.
    """

    name: str
    points: tuple[tuple[float, float], ...]
    description: str = ""

    def __post_init__(self) -> None:
        if len(self.points) != 5 or any(len(p) != 2 for p in self.points):
            raise ValueError(f"template {self.name}: points must be five (x, y) pairs")

    def tensor(self, size: float = 1.0, device=None, dtype=None) -> Tensor:
        """The points scaled to crop pixels, :math:`(5, 2)`."""
        return torch.tensor(self.points, device=device, dtype=dtype or torch.float32) * size


# insightface's arcface_dst: mean 5-point landmarks of its 112x112 recognition crops (eye centres, nose tip,
# mouth corners, as RetinaFace/MTCNN mark them).
_ARCFACE_112 = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


def _mean_face(eye_distance: float, eye_y: float) -> tuple[tuple[float, float], ...]:
    """The arcface landmark shape, mirrored to be left-right symmetric, scaled so the eye centres are
    ``eye_distance`` apart and placed with their midpoint at ``(0.5, eye_y)`` (unit-square coordinates).

    Reusing arcface's proportions (nose 0.57, mouth 1.15 inter-eye distances below the eyes, mouth 0.83 wide)
    keeps the template consistent with what 5-point detectors actually output, so the least-squares fit
    spreads no systematic shape error into rotation or scale.
    """
    (lex, ley), (rex, rey), (_, ny), (mlx, mly), (mrx, mry) = _ARCFACE_112
    unit = rex - lex
    eyes_y = (ley + rey) / 2
    nose_dy = (ny - eyes_y) / unit
    mouth_dy = ((mly + mry) / 2 - eyes_y) / unit
    mouth_dx = (mrx - mlx) / 2 / unit
    d = eye_distance
    return (
        (0.5 - d / 2, eye_y),
        (0.5 + d / 2, eye_y),
        (0.5, eye_y + d * nose_dy),
        (0.5 - d * mouth_dx, eye_y + d * mouth_dy),
        (0.5 + d * mouth_dx, eye_y + d * mouth_dy),
    )


TEMPLATES: dict[str, AlignTemplate] = {
    t.name: t
    for t in (
        AlignTemplate(
            "arcface",
            tuple((x / 112, y / 112) for x, y in _ARCFACE_112),
            "tight insightface crop (eyes to mouth, chin at the edge); for recognition / identity losses",
        ),
        # Portrait drawing needs the whole head, hair and the start of the shoulders, but also as many pixels
        # on the face as possible at 256². Inter-eye distance 0.25 of the width is FFHQ's scale (its crop side
        # is 4x the eye distance), which at 256² leaves 64 px between the eyes and is known to fit the whole
        # head: the crown lands ~1.6 eye distances above the eyes, the chin ~1.45 below. FFHQ puts the eyes at
        # y≈0.47; moving them up to 0.44 trades a little empty space above the hair for neck and shoulders
        # (chin ≈ 0.80, leaving ~20% of the height below it), which drawings of a bust need and which keeps
        # the collar line from being cut at the chin.
        AlignTemplate(
            "portrait",
            _mean_face(eye_distance=0.25, eye_y=0.44),
            "loose head-and-shoulders crop (hair, chin, some neck); for portrait drawing at 256²/512²",
        ),
        # The layout of the data factory's cartoon faces (``facetool data cartoons``, 128²): the mean of 1000
        # cartoons' exact 5 points ((p + 0.5) / 128), made left-right symmetric. Photos cut with it meet cartoons at
        # the same place and scale; what a similarity cannot match (cartoon mouths sit 0.87 eye distances below the
        # eyes, photo mouths ~1.15) is left to the method's landmark constraint.
        AlignTemplate(
            "avatar",
            ((0.383, 0.464), (0.617, 0.464), (0.497, 0.577), (0.422, 0.667), (0.578, 0.667)),
            "cartoon-avatar layout (head, hair, a little neck); for photo <-> cartoon translation at 128²",
        ),
        # The 5-point approximation of FFHQ's alignment as used by GFPGAN/facexlib (their 512² values / 512);
        # for StyleGAN-family generators trained on FFHQ.
        AlignTemplate(
            "ffhq",
            tuple(
                (x / 512, y / 512)
                for x, y in (
                    (192.98138, 239.94708),
                    (318.90277, 240.19360),
                    (256.63416, 314.01935),
                    (201.26117, 371.41043),
                    (313.08905, 371.15118),
                )
            ),
            "FFHQ-style crop (whole head, little neck); for StyleGAN-family models",
        ),
    )
}


def get_template(name: str) -> AlignTemplate:
    """Look a template up by name; an unknown name raises :class:`UsageError` listing the known ones."""
    try:
        return TEMPLATES[name]
    except KeyError:
        known = ", ".join(sorted(TEMPLATES))
        raise UsageError(f"unknown alignment template {name!r}; known templates: {known}") from None


def estimate_alignment(points5: Tensor, template: AlignTemplate, size: int) -> Tensor:
    r"""Similarity that brings detected landmarks onto a template.

    Args:
        points5: :math:`(B, 5, 2)` landmarks in photo pixels, in :class:`AlignTemplate` order.
        template: where they should land.
        size: side of the square crop in pixels.

    Returns:
        :math:`(B, 2, 3)` photo pixel -> crop pixel.
    """
    _check_shape("points5", points5, 3, (5, 2))
    dtype = points5.dtype if points5.is_floating_point() else torch.float32
    src = points5.to(dtype)
    dst = template.tensor(size, device=src.device, dtype=dtype).expand_as(src)
    return umeyama(src, dst)


# ----------------------------------------------------------------------------------------------------
# Crop and paste back
# ----------------------------------------------------------------------------------------------------


#: ``padding_mode="auto"``: below this share of a crop inside the photo, fill the rest with one colour. A photo cut
#: tight to the face leaves most of a large-template crop (avatar) past its edge, and repeating the edge there draws
#: streaks across the head; ordinary photos, the training crops among them (avatar template: 0.57 inside at the 5th
#: percentile of generated portraits), stay above it and are filled as before (``border``).
AUTO_EDGE_COLOUR_BELOW = 0.5


def crop_faces(image: Tensor, matrices: Tensor, size: int, padding_mode: str = "border") -> Tensor:
    r"""Cut aligned face crops out of a photo.

    Bilinear sampling with ``align_corners=True``: kornia then reads ``matrices`` in the module's
    integer-pixel-centre convention (older kornia releases normalised pixel matrices corner-aligned whatever
    the flag, so ``False`` would have shifted crops by a fraction of a pixel there).

    Args:
        image: :math:`(1, C, H, W)` (shared by every face) or :math:`(B, C, H, W)`, float.
        matrices: :math:`(B, 2, 3)` photo pixel -> crop pixel, from :func:`estimate_alignment`.
        size: crop side in pixels.
        padding_mode: what is sampled outside the photo: ``border`` (repeat the edge, no black wedges the
            network would read as content), ``zeros``, ``reflection`` or ``edge-colour`` (one flat colour, the
            median of the photo's outermost pixels: a face cropped tight then looks like a face before a plain
            background instead of a face with streaks; see :func:`edge_colour`), or ``auto``: ``edge-colour`` for a
            face whose crop lies less than :data:`AUTO_EDGE_COLOUR_BELOW` inside the photo, ``border`` for the rest.

    Returns:
        :math:`(B, C, size, size)`.
    """
    _check_shape("image", image, 4)
    _check_shape("matrices", matrices, 3, (2, 3))
    batch = matrices.shape[0]
    if image.shape[0] not in (1, batch):
        raise ValueError(f"image batch {image.shape[0]} does not match {batch} matrices")
    if padding_mode == "auto":
        inside = crop_faces(torch.ones_like(image[:, :1]), matrices, size, "zeros")
        tight = inside.mean(dim=(1, 2, 3)) < AUTO_EDGE_COLOUR_BELOW
        crops = crop_faces(image, matrices, size, "border")
        if tight.any():
            flat = crops * inside + edge_colour(image) * (1 - inside)
            crops = torch.where(tight[:, None, None, None], flat, crops)
        return crops
    if padding_mode == "edge-colour":  # the photo's median once, not once per face
        crops = crop_faces(image, matrices, size, "border")
        inside = crop_faces(torch.ones_like(image[:, :1]), matrices, size, "zeros")
        return crops * inside + edge_colour(image) * (1 - inside)
    image = image.expand(batch, -1, -1, -1)
    return warp_affine(
        image,
        matrices.to(image.dtype),
        (size, size),
        mode="bilinear",
        padding_mode=padding_mode,
        align_corners=True,
    )


def edge_colour(image: Tensor) -> Tensor:
    r"""The median colour of each image's outermost rows and columns: :math:`(B, C, H, W) \to (B, C, 1, 1)`."""
    ring = torch.cat([image[..., 0, :], image[..., -1, :], image[..., :, 0], image[..., :, -1]], dim=-1)
    return ring.median(dim=-1).values[..., None, None]


def feather_mask(size: int, feather: float = 0.1, device=None, dtype=None) -> Tensor:
    r"""Blending weight of a crop: 1 inside, easing to 0 at the border.

    The ramp is a smoothstep of the distance to the outermost pixel centres over ``feather * size`` pixels:
    its slope is zero at both ends, so the blend has no visible edge where the ramp starts or stops (a linear
    ramp leaves a Mach band there). The outermost pixels are exactly 0, so once warped the mask is 0 along
    the crop's footprint edge and nothing sampled beyond the crop can leak in. Built separably (product of a
    row and a column profile), which rounds the corners.

    Args:
        size: crop side in pixels.
        feather: ramp width as a fraction of ``size``, in ``[0, 0.5]``; 0 gives a hard all-ones mask.

    Returns:
        :math:`(1, 1, size, size)` in ``[0, 1]``.
    """
    if not 0.0 <= feather <= 0.5:
        raise ValueError(f"feather must be in [0, 0.5], got {feather}")
    dtype = dtype or torch.float32
    if feather == 0.0 or size < 3:
        return torch.ones(1, 1, size, size, device=device, dtype=dtype)
    i = torch.arange(size, device=device, dtype=dtype)
    dist = torch.minimum(i, size - 1 - i)  # pixels from the outermost pixel centre
    t = (dist / (feather * size)).clamp(0.0, 1.0)
    ramp = t * t * (3.0 - 2.0 * t)  # smoothstep
    return (ramp[:, None] * ramp[None, :])[None, None]


def paste_back(
    canvas: Tensor,
    crops: Tensor,
    matrices: Tensor,
    masks: Tensor | None = None,
    feather: float = 0.1,
    darken: bool = False,
) -> Tensor:
    r"""Warp processed crops back into the photo and alpha-blend them, one after the other.

    Each crop and its mask go through the same inverse warp, so the blend weight follows the crop's exact
    footprint (no seam), and only the footprint's bounding box is warped, so many faces on a large photo
    stay cheap. Pixels no crop covers keep their exact value.

    Args:
        canvas: :math:`(1, C, H, W)` float, the photo (or a white page) to paste onto.
        crops: :math:`(B, C, s, s)` processed crops, same channels as ``canvas``.
        matrices: :math:`(B, 2, 3)` photo pixel -> crop pixel, the ones the crops were cut with.
        masks: optional :math:`(B, 1, s, s)` in ``[0, 1]`` (e.g. a face parsing mask); multiplied by the
            feather mask.
        feather: ramp width of :func:`feather_mask`.
        darken: blend ``min(canvas, crop)`` instead of the crop: for drawings on white paper, where a crop's
            paper must not erase the strokes a neighbouring face's crop already put there.

    Returns:
        :math:`(1, C, H, W)`, a new tensor.
    """
    _check_shape("canvas", canvas, 4)
    _check_shape("crops", crops, 4)
    _check_shape("matrices", matrices, 3, (2, 3))
    batch, channels, s = crops.shape[0], crops.shape[1], crops.shape[-1]
    if canvas.shape[0] != 1 or canvas.shape[1] != channels or crops.shape[-2] != s or matrices.shape[0] != batch:
        raise ValueError(
            f"need canvas (1, C, H, W), crops (B, C, s, s), matrices (B, 2, 3); got {tuple(canvas.shape)}, "
            f"{tuple(crops.shape)}, {tuple(matrices.shape)}"
        )
    height, width = canvas.shape[-2:]
    dtype = canvas.dtype
    alpha = feather_mask(s, feather, device=canvas.device, dtype=dtype).expand(batch, 1, s, s)
    if masks is not None:
        if masks.shape != (batch, 1, s, s):
            raise ValueError(f"masks must have shape {(batch, 1, s, s)}, got {tuple(masks.shape)}")
        alpha = alpha * masks.to(dtype)

    inverse = invert_affine(matrices.to(dtype))  # crop pixel -> photo pixel
    # Crop footprint: the outer edges of the crop, [-0.5, s - 0.5]², in photo pixels.
    edge = torch.tensor([[-0.5, -0.5], [s - 0.5, -0.5], [-0.5, s - 0.5], [s - 0.5, s - 0.5]], dtype=dtype)
    corners = transform_points(edge.to(canvas.device).expand(batch, 4, 2), inverse)
    lo = corners.amin(dim=1).floor().long().tolist()
    hi = corners.amax(dim=1).ceil().long().tolist()

    out = canvas.clone()
    for k in range(batch):
        x0, y0 = max(lo[k][0], 0), max(lo[k][1], 0)
        x1, y1 = min(hi[k][0] + 1, width), min(hi[k][1] + 1, height)
        if x0 >= x1 or y0 >= y1:
            continue  # the face lies entirely outside the canvas
        # Same warp restricted to the box: shift the output origin to (x0, y0).
        shift = torch.tensor([[0.0, 0.0, -x0], [0.0, 0.0, -y0]], device=canvas.device, dtype=dtype)
        box_m = inverse[k : k + 1] + shift
        size_hw = (y1 - y0, x1 - x0)
        # Colour: border padding, so the crop is never blended with black; the mask alone decides coverage
        # and is 0 outside the footprint (zeros padding).
        rgb = warp_affine(crops[k : k + 1].to(dtype), box_m, size_hw, padding_mode="border", align_corners=True)
        a = warp_affine(alpha[k : k + 1], box_m, size_hw, padding_mode="zeros", align_corners=True)
        region = out[:, :, y0:y1, x0:x1]
        if darken:
            rgb = torch.minimum(region, rgb)
        # lerp leaves the canvas bit-exact wherever a == 0.
        out[:, :, y0:y1, x0:x1] = torch.lerp(region, rgb, a.clamp(0.0, 1.0))
    return out
