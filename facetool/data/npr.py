"""Non-photorealistic rendering ops for pseudo-drawings: XDoG lines, edge-tangent flow, smooth strokes.

APDrawingGAN (Yi et al. 2019, §6) pre-trains on photos paired with NPR line drawings — two-tone XDoG lines plus
a jaw line drawn from landmarks, since filters miss the jaw where skin meets skin with little contrast. This
module holds the image operations; :mod:`facetool.data.drawings` assembles them into pairs.

XDoG (Winnemöller, Kyprianidis & Olsen 2012): with Gaussian blurs :math:`G_\\sigma` and :math:`G_{k\\sigma}` of
the luminance, the sharpened image :math:`S = (1 + p) G_\\sigma - p G_{k\\sigma} = G_\\sigma + p\\,D` (where
:math:`D = G_\\sigma - G_{k\\sigma}` is the difference of Gaussians) is soft-thresholded,
:math:`T = 1` where :math:`S \\ge \\varepsilon`, else :math:`1 + \\tanh(\\varphi (S - \\varepsilon))`. Its tone
term :math:`G_\\sigma` fills every region darker than :math:`\\varepsilon` with black — the woodcut look, but
also black blotches on dark hair and backgrounds. For pen drawings we weight it with ``tone``:
:math:`S = (1 - \\text{tone}) + \\text{tone}\\, G_\\sigma + p\\, D`; ``tone=1`` is the paper's operator,
``tone=0`` keeps only the edges (a flat region gives :math:`S = 1`, white paper, whatever its brightness).

Importing this module does not import torch; every function does it lazily.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

REFERENCE_SIZE = 256  # the crop side the pixel-valued defaults below were tuned at


@dataclass(frozen=True)
class XDoGParams:
    """Parameters of :func:`xdog_lines`, tuned on 256² portrait crops (see :meth:`scaled` for other sizes).

    The defaults were chosen by looking at contact sheets of ~20 generated faces (soft studio light, bright skin,
    dark and blond hair, busy backgrounds): with ``p = 50`` and ``epsilon = 0.72`` a pixel turns to ink where
    the (flow-smoothed) DoG of L*/100 dips below about -0.005 on bright skin, -0.003 in dark hair — eyelids,
    brows, nostrils, the mouth line, hair strands — while skin pores and gentle shading stay white.

    Attributes:
        sigma: inner Gaussian of the DoG, px; sets the line width (1.5–3 px at 0.7, with ``pre_sigma``).
        k: ratio of the outer to the inner Gaussian (1.6 approximates a Laplacian of Gaussian).
        p: sharpening strength; larger finds fainter edges (and more texture).
        epsilon: threshold on the sharpened image; darker than this turns to ink.
        phi: steepness of the soft threshold; large gives two tones with a thin anti-aliased rim.
        tone: weight of the tone term (0: lines only, 1: Winnemöller's operator with filled dark areas). At
            0.15 a flat area never turns to ink (S >= 0.85 > epsilon), but darker areas need less contrast to
            draw a line: dark hair gets more strands.
        pre_sigma: Gaussian pre-smoothing of the luminance, px, against skin pores and JPEG blocks.
        flow_sigma: length of the smoothing along the edge-tangent flow, px (0 turns the flow step off);
            joins broken line pieces and removes dots that lie across no edge.
        tensor_sigma: integration scale of the structure tensor that gives the flow, px.
        min_area: connected ink regions smaller than this many pixels (at 256²) are erased as specks.
    """

    sigma: float = 0.7
    k: float = 1.6
    p: float = 50.0
    epsilon: float = 0.72
    phi: float = 12.0
    tone: float = 0.15
    pre_sigma: float = 0.6
    flow_sigma: float = 2.5
    tensor_sigma: float = 2.0
    min_area: float = 12.0

    def scaled(self, size: int) -> XDoGParams:
        """The same look at a ``size``² crop: lengths grow with the side, areas with its square."""
        f = size / REFERENCE_SIZE
        return replace(
            self,
            sigma=self.sigma * f,
            pre_sigma=self.pre_sigma * f,
            flow_sigma=self.flow_sigma * f,
            tensor_sigma=self.tensor_sigma * f,
            min_area=self.min_area * f * f,
        )

    def jittered(self, rng: np.random.Generator, amount: float) -> XDoGParams:
        """A random variation for data variety: sigma, p and epsilon scaled by up to ``1 ± amount``."""
        if amount <= 0:
            return self
        u = rng.uniform(-amount, amount, size=3)
        return replace(
            self,
            sigma=self.sigma * (1 + u[0]),
            p=self.p * (1 + u[1]),
            epsilon=min(0.95, self.epsilon * (1 + u[2] / 4)),
        )

    def as_dict(self) -> dict[str, float]:
        return {f.name: round(float(getattr(self, f.name)), 4) for f in fields(self)}


def _kernel(sigma: float) -> int:
    return max(3, 2 * math.ceil(3 * sigma) + 1)


def blur(x: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of (B, C, H, W) with a kernel of ±3 sigma (identity for sigma <= 0)."""
    from kornia.filters import gaussian_blur2d

    if sigma <= 0:
        return x
    k = _kernel(sigma)
    return gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="replicate")


def blur_pair(x: Tensor, sigma_a: float, sigma_b: float) -> tuple[Tensor, Tensor]:
    """Two Gaussian blurs of (B, C, H, W) in one kornia call (sigmas > 0) -> two (B, C, H, W)."""
    import torch
    from kornia.filters import gaussian_blur2d

    b = x.shape[0]
    k = _kernel(max(sigma_a, sigma_b))
    sigmas = torch.tensor([[sigma_a, sigma_a]] * b + [[sigma_b, sigma_b]] * b, dtype=x.dtype, device=x.device)
    both = gaussian_blur2d(torch.cat([x, x], 0), (k, k), sigmas, border_type="replicate")
    return both[:b], both[b:]


def luminance(image: Tensor) -> Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> (B, 1, H, W) CIELAB lightness L*/100 in [0, 1].

    L* rather than luma: it is perceptually even, so a crease in dark hair and one in bright skin with the same
    visible contrast give the same DoG response (XDoG was designed on L*). Computed directly (linear-light Y,
    then the CIE cube-root curve): a full RGB->Lab conversion costs three times as much for the same L*.
    """
    import torch

    x = image.clamp(0.0, 1.0)
    linear = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    weights = torch.tensor([0.2126, 0.7152, 0.0722], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    y = (linear * weights).sum(1, keepdim=True)
    f = torch.where(y > 0.008856, y.clamp_min(0.008856) ** (1.0 / 3.0), 7.787 * y + 16.0 / 116.0)
    return (1.16 * f - 0.16).clamp(0.0, 1.0)


def edge_tangent_flow(lum: Tensor, tensor_sigma: float) -> Tensor:
    """Unit edge-tangent field of an image from its smoothed structure tensor.

    Args:
        lum: (B, 1, H, W).
        tensor_sigma: integration scale in px.

    Returns:
        (B, 2, H, W) the (x, y) direction of least change (along edges); arbitrary but finite in flat areas.
    """
    import torch
    from kornia.filters import spatial_gradient

    g = spatial_gradient(lum, mode="sobel", normalized=True)[:, 0]  # (B, 2, H, W): d/dx, d/dy
    gx, gy = g[:, :1], g[:, 1:]
    j = blur(torch.cat([gx * gx, gx * gy, gy * gy], 1), tensor_sigma)
    jxx, jxy, jyy = j[:, :1], j[:, 1:2], j[:, 2:]
    # Orientation of the dominant gradient, then turn 90° to follow the edge.
    theta = 0.5 * torch.atan2(2 * jxy, jxx - jyy) + math.pi / 2
    return torch.cat([torch.cos(theta), torch.sin(theta)], 1)


def flow_smooth(x: Tensor, tangent: Tensor, sigma: float, bins: int = 12) -> Tensor:
    """Gaussian smoothing of ``x`` along the edge-tangent direction (the second pass of a flow-based DoG).

    Kang et al. integrate along curved streamlines of the flow; here each pixel is smoothed along the straight
    line through it in its tangent direction — over ``±2 sigma`` px (a few pixels) the flow barely turns, and
    the straight version is a single convolution: the map is filtered with ``bins`` oriented line kernels
    (Gaussian profile along the line, bilinearly splatted) and each pixel blends the two bins nearest its own
    tangent angle. Responses that lie on a coherent edge reinforce, isolated ones fade.

    Args:
        x: (B, C, H, W).
        tangent: (B, 2, H, W) unit vectors from :func:`edge_tangent_flow`.
        sigma: px along the flow; <= 0 returns ``x``.
        bins: orientations over 180°.

    Returns:
        (B, C, H, W).
    """
    import torch
    import torch.nn.functional as F

    if sigma <= 0:
        return x
    b, c, h, w = x.shape
    kernels = _line_kernels(round(float(sigma), 3), bins).to(dtype=x.dtype, device=x.device)
    radius = kernels.shape[-1] // 2
    padded = F.pad(x.reshape(b * c, 1, h, w), (radius, radius, radius, radius), mode="replicate")
    responses = F.conv2d(padded, kernels).view(b, c, bins, h, w)
    # Tangent angle in [0, pi) -> fractional bin; blend the two neighbouring bins (wrapping at 180°).
    f = torch.atan2(tangent[:, 1], tangent[:, 0]).remainder(math.pi) * (bins / math.pi)  # (B, H, W)
    lo = f.floor()
    frac = (f - lo)[:, None]  # (B, 1, H, W)
    lo_idx = lo.long().remainder(bins)[:, None, None].expand(b, c, 1, h, w)
    hi_idx = (lo_idx + 1).remainder(bins)
    return (1 - frac) * responses.gather(2, lo_idx)[:, :, 0] + frac * responses.gather(2, hi_idx)[:, :, 0]


@functools.lru_cache(maxsize=8)
def _line_kernels(sigma: float, bins: int) -> Tensor:
    """(bins, 1, K, K) normalised line kernels: a Gaussian (std ``sigma``) along a line at angle k·180°/bins."""
    import torch

    radius = max(1, math.ceil(2 * sigma))
    size = 2 * radius + 1
    s = np.arange(-2 * radius, 2 * radius + 1) / 2.0  # half-pixel steps along the line
    weight = np.exp(-0.5 * (s / sigma) ** 2)
    kernels = np.zeros((bins, size, size))
    for k in range(bins):
        theta = math.pi * k / bins
        x = radius + s * math.cos(theta)
        y = radius + s * math.sin(theta)
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        fx, fy = x - x0, y - y0
        for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            xi, yi = np.clip(x0 + dx, 0, size - 1), np.clip(y0 + dy, 0, size - 1)
            np.add.at(kernels[k], (yi, xi), weight * wgt)
        kernels[k] /= kernels[k].sum()
    return torch.from_numpy(kernels[:, None].astype(np.float32))


def xdog_lines(image: Tensor, params: XDoGParams | None = None) -> Tensor:
    """XDoG line drawing of an RGB image (extended difference of Gaussians, optionally flow-smoothed).

    Args:
        image: (B, 3, H, W) RGB in [0, 1].
        params: pixel-valued parameters for this resolution (use ``XDoGParams().scaled(size)``).

    Returns:
        (B, 1, H, W) in [0, 1]: 1 white paper, 0 ink, nearly two-tone (a thin soft rim from the tanh).
        Specks are not removed here (see :func:`remove_specks`).
    """
    import torch

    params = params or XDoGParams()
    lum = luminance(image)
    # Pre-smoothing folds into both DoG blurs (Gaussians compose: variances add), and the two blurs run as one
    # batched call with a sigma per batch entry.
    inner = math.hypot(params.pre_sigma, params.sigma)
    outer = math.hypot(params.pre_sigma, params.sigma * params.k)
    g1, g2 = blur_pair(lum, inner, outer)
    dog = g1 - g2
    if params.flow_sigma > 0:
        dog = flow_smooth(dog, edge_tangent_flow(g1, params.tensor_sigma), params.flow_sigma)
    sharp = (1.0 - params.tone) + params.tone * g1 + params.p * dog
    soft = 1.0 + torch.tanh(params.phi * (sharp - params.epsilon))
    return torch.where(sharp >= params.epsilon, torch.ones_like(soft), soft).clamp(0.0, 1.0)


def remove_specks(drawing: np.ndarray, min_area: float, ink_below: int = 128) -> np.ndarray:
    """Erase connected ink regions smaller than ``min_area`` pixels (8-connected) to paper white.

    drawing: (H, W) uint8, 255 paper. Returns a new array.
    """
    from scipy import ndimage

    ink = drawing < ink_below
    if min_area <= 1 or not ink.any():
        return drawing.copy()
    # Label the grown ink (soft rims included) so a line's anti-aliased border goes with its core.
    grown = drawing < 250
    labels, count = ndimage.label(grown, structure=np.ones((3, 3), bool))
    core_area = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=count + 1)
    small = core_area < min_area
    small[0] = False
    out = drawing.copy()
    out[small[labels]] = 255
    return out


# ---------------------------------------------------------------------------------------------- strokes


def catmull_rom(points: np.ndarray, samples_per_segment: int = 8) -> np.ndarray:
    """A centripetal Catmull-Rom curve through ``points`` (N, 2), N >= 2 -> (M, 2) dense polyline.

    Centripetal parametrisation (alpha 0.5) never overshoots into loops or cusps when points bunch up, as
    landmark points at the chin and ears do. The ends are extended by mirroring the neighbour point.
    """
    p = np.asarray(points, dtype=np.float64)
    if len(p) < 2:
        return p.copy()
    padded = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    out = [p[:1]]
    t = np.linspace(0.0, 1.0, samples_per_segment + 1)[1:, None]
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1], padded[i], padded[i + 1], padded[i + 2]
        t0 = 0.0
        t1 = t0 + max(np.linalg.norm(p1 - p0), 1e-6) ** 0.5
        t2 = t1 + max(np.linalg.norm(p2 - p1), 1e-6) ** 0.5
        t3 = t2 + max(np.linalg.norm(p3 - p2), 1e-6) ** 0.5
        u = t1 + t * (t2 - t1)
        a1 = (t1 - u) / (t1 - t0) * p0 + (u - t0) / (t1 - t0) * p1
        a2 = (t2 - u) / (t2 - t1) * p1 + (u - t1) / (t2 - t1) * p2
        a3 = (t3 - u) / (t3 - t2) * p2 + (u - t2) / (t3 - t2) * p3
        b1 = (t2 - u) / (t2 - t0) * a1 + (u - t0) / (t2 - t0) * a2
        b2 = (t3 - u) / (t3 - t1) * a2 + (u - t1) / (t3 - t1) * a3
        out.append((t2 - u) / (t2 - t1) * b1 + (u - t1) / (t2 - t1) * b2)
    return np.vstack(out)


def draw_strokes(size: int, curves: list[np.ndarray], width: float, supersample: int = 4) -> np.ndarray:
    """Anti-aliased black strokes on white paper.

    Drawn with PIL at ``supersample``× with round joins and caps, then box-downsampled: the edge coverage gives
    a one-pixel soft rim, the core stays pure black.

    Args:
        size: output side in px.
        curves: polylines, each (N, 2) in output pixel coordinates (pixel centres at integers).
        width: stroke width in output px.

    Returns:
        (size, size) uint8, 255 paper, 0 ink.
    """
    from PIL import Image, ImageDraw

    s = supersample
    canvas = Image.new("L", (size * s, size * s), 255)
    pen = ImageDraw.Draw(canvas)
    w = max(1, round(width * s))
    for curve in curves:
        pts = (np.asarray(curve, dtype=np.float64) + 0.5) * s - 0.5  # pixel centres of the big canvas
        xy = [(float(x), float(y)) for x, y in pts]
        if len(xy) >= 2:
            # Dense polylines turn by a few degrees per vertex, so plain mitre-less joins leave no visible notch
            # (PIL's rounded joins cost ten times as much).
            pen.line(xy, fill=0, width=w)
        for x, y in (xy[0], xy[-1]):  # round caps
            pen.ellipse([x - w / 2, y - w / 2, x + w / 2, y + w / 2], fill=0)
    return np.asarray(canvas.reduce(s))


# ---------------------------------------------------------------------------------------------- edge maps


def thin_edges(prob: Tensor, low: float = 0.25, high: float = 0.5, tensor_sigma: float = 1.5) -> Tensor:
    """Thin a soft edge-probability map (e.g. HED's) into one-pixel centre lines.

    Non-maximum suppression across the edge, with the across-direction taken from the structure tensor of the
    map (on a ridge its own gradient vanishes, but the tensor of the two flanks points across it), then
    hysteresis: a thin pixel above ``low`` is kept when its 8-connected piece reaches ``high`` somewhere.

    Args:
        prob: (1, 1, H, W) in [0, 1].
        low, high: hysteresis thresholds on ``prob``.
        tensor_sigma: integration scale of the structure tensor, px.

    Returns:
        (1, 1, H, W) float, 1 on the kept centre lines, 0 elsewhere.
    """
    import torch
    import torch.nn.functional as F
    from scipy import ndimage

    tangent = edge_tangent_flow(prob, tensor_sigma)
    normal = torch.cat([-tangent[:, 1:], tangent[:, :1]], 1)
    _, _, h, w = prob.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=prob.dtype), torch.arange(w, dtype=prob.dtype), indexing="ij")
    base = torch.stack([xs, ys], 0)[None]
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=prob.dtype).view(1, 2, 1, 1)
    neighbours = []
    for sign in (1.0, -1.0):
        grid = ((base + sign * normal) * scale - 1.0).permute(0, 2, 3, 1)
        neighbours.append(F.grid_sample(prob, grid, mode="bilinear", padding_mode="border", align_corners=True))
    ridge = (prob >= neighbours[0]) & (prob >= neighbours[1])
    candidate = (ridge & (prob > low))[0, 0].numpy()
    strong = (ridge & (prob > high))[0, 0].numpy()
    labels, count = ndimage.label(candidate, structure=np.ones((3, 3), bool))
    keep = np.zeros(count + 1, bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False
    return torch.from_numpy(keep[labels].astype(np.float32))[None, None]


def lines_from_centres(centres: Tensor, width: float) -> Tensor:
    """Render one-pixel centre lines as soft strokes of about ``width`` px.

    centres: (B, 1, H, W) 0/1. Returns (B, 1, H, W) in [0, 1], 1 paper, 0 ink.
    """
    # A Gaussian spreads a 1-px line to a profile whose integral is 1; scaling it so that the profile is
    # saturated over ``width`` px and clamping gives a solid core with a soft rim.
    sigma = max(width / 2.5, 0.4)
    spread = blur(centres, sigma) * (math.sqrt(2 * math.pi) * sigma) * 1.6
    return (1.0 - spread).clamp(0.0, 1.0)
