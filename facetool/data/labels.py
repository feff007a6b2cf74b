"""``facetool data labels``: per-photo face labels, a hair-colour class and a person (foreground) mask.

For each photo ``<stem>`` of a folder this writes ``labels/<stem>.json``::

    {"width", "height",
     "faces": [Face.to_dict(): box, score, points5, points68, landmarks3d (478, 3), pose, blendshapes], largest first,
     "hair": {"class": black|brown|blonde|grey, "lab": median CIELAB, "rgb", "confidence", "pixels"} or null,
     "mask": "labels/<stem>.mask.png" (relative to the photos folder) or null}

plus ``labels/<stem>.mask.png`` (0 background, 255 person) and ``labels/manifest.jsonl``. A photo without a face
gets a record with ``faces: []`` and no hair or mask (both are seeded from the face).

Foreground mask — a GrabCut-like iterative colour segmentation, without graph cuts or a learned model:

1. Geometry. The largest face's 68 points give a face frame (origin at brow height midway between the jaw's
   ends, one unit down = brows to chin, one unit across = jaw width). In it a *prior* probability of "person" is
   laid out like GrabCut's rectangle: a head ellipse (skull and hair room) and everything below ear level are
   likely person (neck, shoulders, clothes, long hair — and some background, to be peeled off); beside the head
   above the ears is likely background. The face hull is certain person; the top border strip and the side strips
   above ear level, outside the enlarged head ellipse, are certain background.
2. Colour models. On a downscaled copy (long side :data:`WORK_SIDE`) in CIELAB, two Gaussian mixtures (person,
   background) are fitted by weighted EM. The first background model sees only the certain background (beside the
   head there may be long hair, and a background model that starts out knowing hair colours never lets hair be
   person); the first person model sees the likely-person region minus the pixels plainly of the certain
   background's colour (a white wall filling half the region would otherwise teach it white). Later fits weigh
   every pixel by its current person probability ``q``.
3. Iteration. ``logit q = logit prior + colour log-likelihood ratio + smoothness * (2 * neighbours' q - 1)``,
   where the neighbours' q is weighted by colour similarity — one mean-field step of a contrast-sensitive Potts
   prior (what GrabCut's graph cut enforces exactly), so pixels follow their neighbourhood except across colour
   edges. Models and ``q`` are re-estimated :data:`ITERATIONS` times.
4. Clean-up and full resolution. ``q`` is thresholded, only the region connected to the face is kept, holes are
   filled, and ``q`` is upsampled; in the band where it is uncertain the colour models are evaluated on the
   full-resolution pixels so the edge follows the real colour boundary instead of the coarse grid.

Hair colour — measured, not learned:

1. Region. In the face frame: the band from just above the brows up to 1.3 face units above them (head top plus
   hair volume), at most 0.9 jaw widths to each side, plus the temples beside the upper face; only person-mask
   pixels (drops the background behind the head).
2. Skin removal. A Gaussian of CIELAB skin colour is fitted on the cheeks and nose (inside the face, between eyes
   and mouth); region pixels within a Mahalanobis distance of :data:`SKIN_DISTANCE` of it are forehead or ears, not
   hair, and are dropped.
3. Colour. The remaining pixels are split into three colour clusters (k-means in CIELAB); hair fills most of the
   region, so the largest cluster is the hair and its median is the reported colour (leftover forehead, background
   seen through strands or a bright highlight end up in the smaller clusters).
4. Class, from lightness L* and the *pigment chroma* C* of that colour — the part of (a*, b*) along hue
   :data:`PIGMENT_HUE` (hair pigments only make red-orange to yellow hues; a blue or green cast is reflected light,
   not hair colour): ``grey`` when C* < :data:`GREY_CHROMA` and L* >= :data:`GREY_LIGHTNESS` (bright but
   colourless: grey, silver, white); ``black`` when C* < :data:`BLACK_CHROMA` and L* < :data:`BLACK_LIGHTNESS`
   (dark and colourless — dark brown keeps a warm chroma, which separates it from black far better than lightness
   does); ``blonde`` when L* >= :data:`BLONDE_LIGHTNESS`, or when C* >= :data:`GOLDEN_CHROMA` with a hue past
   :data:`GOLDEN_HUE` (strongly yellow: golden hair in shade); otherwise ``brown`` (includes auburn and red).
   Confidence: the distance to the nearest class boundary (over :data:`MARGIN_L` lightness, :data:`MARGIN_C`
   chroma or :data:`MARGIN_HUE` hue units), capped at 1, times the fraction of the expected hair area that was
   found (capped at 1): bald heads and hats give few pixels and a low confidence. Colour alone cannot tell
   platinum blonde from white, nor grey from ash blonde, and deep shade turns dark brown into black.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    import numpy as np

    from facetool.faces import Face

HAIR_CLASSES = ("black", "brown", "blonde", "grey")
# Hair thresholds (CIELAB, D65; L* 0-100, chroma in a*b* units); see the module docstring.
GREY_CHROMA = 7.0
GREY_LIGHTNESS = 38.0
BLACK_CHROMA = 4.5
BLACK_LIGHTNESS = 30.0
BLONDE_LIGHTNESS = 45.0
GOLDEN_CHROMA, GOLDEN_HUE = 20.0, 60.0  # strongly yellow hair is blonde even in shade
PIGMENT_HUE = 45.0  # degrees: the a*b* direction along which hair pigment chroma is measured
MARGIN_HUE = 10.0
MARGIN_L, MARGIN_C = 8.0, 3.0  # lightness and chroma distances that count as a clear margin
SKIN_DISTANCE = 2.5
MIN_HAIR_PIXELS = 30  # at the work resolution; fewer and the region holds no measurable hair

# Mask settings.
WORK_SIDE = 160  # long side of the working copy: masks are about the outline, not strands of hair
COMPONENTS = 5  # Gaussians per colour model
ITERATIONS = 5
UNIFORM_LAB_LOG_DENSITY = -math.log(100 * 200 * 200)  # a colour spread evenly over the CIELAB gamut's box
BACKGROUND_COLOUR_MARGIN = math.log(50.0)  # "plainly background-coloured": 50x likelier than an arbitrary colour
FIT_STRIDE = 3  # models are fitted on every third pixel: 3x faster, the same colours
SMOOTHNESS = 2.5  # weight of the neighbourhood term (logit units at full agreement)
NEIGHBOUR_RADIUS = 2  # pixels (at the work size) of the neighbourhood term
EDGE_SIGMA = 8.0  # Lab distance at which a neighbour's vote has fallen to 0.6
COLOUR_WEIGHT = 0.5  # scale of the colour log-likelihood ratio
HEAD_CENTRE, HEAD_AXES = -0.25, (0.62, 0.95)  # head-and-hair ellipse in face units (v centre; u, v semi-axes)
SURE_BG_HEAD = 1.15  # border pixels outside this multiple of the head ellipse are certain background
EAR_V = 0.4  # face units under the brows: below this, beside the head, shoulders and clothes may start

HELP = """Per-photo labels: faces (68 points, 3D mesh, pose), a hair-colour class and a person mask.

For every photo of PHOTOS_DIR — a folder of images, or a folder made by facetool data photos — writes
labels/<stem>.json (faces with box, 5 and 68 points, MediaPipe's 478 landmarks, head pose and blendshapes; hair
class black / brown / blonde / grey with its colour and a confidence), labels/<stem>.mask.png (255 = person) and
labels/manifest.jsonl. Resumable; a photo that changed is labelled again. Photos without a face get a record too.

[b]Examples[/b]

  facetool data labels data/photos

  facetool data labels my_portraits/ --out my_portraits/labels --no-mesh
"""


# --------------------------------------------------------------------------------------------- colour


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 sRGB -> (..., 3) float32 CIELAB (D65 white): L* in [0, 100], a*, b* about [-128, 127]."""
    import numpy as np

    c = np.asarray(rgb, dtype=np.float32) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array([[0.4124, 0.2126, 0.0193], [0.3576, 0.7152, 0.1192], [0.1805, 0.0722, 0.9505]], np.float32)
    xyz = np.einsum("...i,ij->...j", linear, to_xyz)  # einsum: a 3x3 product is too small for BLAS threads
    xyz /= np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """(..., 3) CIELAB -> (..., 3) uint8 sRGB (for reporting a colour)."""
    import numpy as np

    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    xyz = np.where(f > 6 / 29, f**3, (116 * f - 16) * 27 / 24389) * np.array([0.95047, 1.0, 1.08883])
    linear = xyz @ np.array([[3.2406, -0.9689, 0.0557], [-1.5372, 1.8758, -0.2040], [-0.4986, 0.0415, 1.0570]])
    linear = np.clip(linear, 0, 1)
    c = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(np.round(c * 255), 0, 255).astype(np.uint8)


class Gaussians:
    """A Gaussian mixture over (N, D) features, fitted by weighted EM (weights = soft membership of the class)."""

    def __init__(self, components: int) -> None:
        self.components = components
        self.means: np.ndarray | None = None

    def fit(self, x: np.ndarray, weight: np.ndarray, steps: int = 3) -> Gaussians:
        """x: (N, D); weight: (N,) in [0, 1]. Warm-starts from the previous fit."""
        import numpy as np

        k = self.components
        if self.means is None:
            # Initial split: quantiles of lightness, the dominant axis of natural colour variation.
            order = np.argsort(x[:, 0], kind="stable")
            groups = np.array_split(order, k)
            resp = np.zeros((len(x), k), dtype=np.float64)
            for j, g in enumerate(groups):
                resp[g, j] = 1.0
        else:
            resp = self._responsibilities(x)
        for step in range(steps):
            if step:
                resp = self._responsibilities(x)
            self._m_step(x, resp * weight[:, None])
        return self

    def _m_step(self, x: np.ndarray, resp: np.ndarray) -> None:
        import numpy as np

        mass = resp.sum(0) + 1e-6
        self.weights = mass / mass.sum()
        self.means = (resp.T @ x) / mass[:, None]
        d = x.shape[1]
        covs = []
        for j in range(self.components):
            centred = x - self.means[j]
            cov = (centred * resp[:, j : j + 1]).T @ centred / mass[j]
            covs.append(cov + np.eye(d) * 4.0)  # floor of 2 Lab units: a flat region must not collapse a Gaussian
        self.covs = np.array(covs)
        chol = np.linalg.cholesky(self.covs)
        self._whiten = np.linalg.inv(chol).transpose(0, 2, 1)  # (x - mean) @ whiten has unit covariance
        self._log_det = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)

    def _component_log_prob(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        x = np.asarray(x, dtype=np.float32)
        out = np.empty((len(x), self.components), dtype=np.float32)
        for j in range(self.components):
            # einsum rather than @: a (N, 3) x (3, 3) product is too small for BLAS threads to pay off
            z = np.einsum("nd,de->ne", x - self.means[j].astype(np.float32), self._whiten[j].astype(np.float32))
            out[:, j] = -0.5 * np.einsum("nd,nd->n", z, z) - 0.5 * self._log_det[j] + math.log(self.weights[j])
        return out - 0.5 * x.shape[1] * math.log(2 * math.pi)

    def _responsibilities(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        lp = self._component_log_prob(x)
        lp -= lp.max(1, keepdims=True)
        p = np.exp(lp)
        return p / p.sum(1, keepdims=True)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """(N, D) -> (N,) log density."""
        import numpy as np

        lp = self._component_log_prob(x)
        top = lp.max(1)
        return top + np.log(np.exp(lp - top[:, None]).sum(1))


# --------------------------------------------------------------------------------------------- geometry


class FaceFrame:
    """Coordinates of a face: ``u`` across (jaw widths, + to the image right for an upright face), ``v`` down
    (brows-to-chin lengths), origin at the brows' height midway between the jaw's ends (the middle of the skull
    even when the face is turned). Built from the 68 points (5 points as a fallback)."""

    def __init__(self, face: Face) -> None:
        import numpy as np

        if face.points68 is not None:
            p = face.points68.astype(np.float64)
            self.origin = p[17:27].mean(0)
            chin = p[8]
            self.width = float(np.linalg.norm(p[16] - p[0]))
        else:  # 5 points: the brows sit about 0.35 eye-to-mouth distances above the eyes
            p = face.points5.astype(np.float64)
            eyes, mouth = p[:2].mean(0), p[3:].mean(0)
            self.origin = eyes - 0.35 * (mouth - eyes)
            chin = mouth + 0.55 * (mouth - eyes)
            self.width = float(np.linalg.norm(p[1] - p[0]) * 2.1)
        down = chin - self.origin
        self.height = float(np.linalg.norm(down))
        self.down = down / max(self.height, 1e-6)
        self.across = np.array([self.down[1], -self.down[0]])  # down turned a quarter: image-right when upright
        if face.points68 is not None:
            # A turned face's brows sit off the head's middle; the jaw's ends (at the ears) straddle the skull.
            jaw_middle = (p[0] + p[16]) / 2
            self.origin = self.origin + float((jaw_middle - self.origin) @ self.across) * self.across
        self.face = face

    def uv(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (any shape) -> (u, v) face coordinates."""
        dx, dy = xs - self.origin[0], ys - self.origin[1]
        u = (dx * self.across[0] + dy * self.across[1]) / max(self.width, 1e-6)
        v = (dx * self.down[0] + dy * self.down[1]) / max(self.height, 1e-6)
        return u, v

    def hull(self, shape: tuple[int, int], scale: float = 1.0, shrink: float = 0.9) -> np.ndarray:
        """(H, W) bool: inside the convex hull of the face points (shrunk towards their centre), at ``scale``."""
        import numpy as np

        pts = self.face.points68 if self.face.points68 is not None else self.face.points5
        pts = np.asarray(pts, dtype=np.float64) * scale
        centre = pts.mean(0)
        return convex_fill(centre + (pts - centre) * shrink, shape)


def convex_fill(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(N, 2) points -> (H, W) bool mask of their convex hull (pixel centres at integers)."""
    import numpy as np

    from facetool.data.parts import convex_hull

    hull = convex_hull(points)
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    inside = np.ones(shape, dtype=bool)
    for a, b in zip(hull, np.roll(hull, -1, axis=0), strict=True):
        inside &= (b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0]) >= 0
    return inside


# --------------------------------------------------------------------------------------------- filters


def neighbour_weights(lab: np.ndarray, radius: int, sigma: float) -> list[tuple[int, int, np.ndarray]]:
    """Contrast-sensitive weights of the (2r+1)² - 1 neighbours of every pixel: exp(-|dLab|² / 2 sigma²).

    lab: (H, W, 3). Returns [(dy, dx, (H, W) weights)]; a weight is 0 where the neighbour is off the image.
    """
    import numpy as np

    h, w = lab.shape[:2]
    out = []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy == 0 and dx == 0:
                continue
            shifted = _shift(lab, dy, dx)
            weight = np.exp(-((lab - shifted) ** 2).sum(-1) / (2 * sigma**2))
            valid = np.zeros((h, w), dtype=bool)
            valid[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = True
            out.append((dy, dx, np.where(valid, weight, 0.0)))
    return out


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out[y, x] = a[y + dy, x + dx], edges replicated."""
    import numpy as np

    h, w = a.shape[:2]
    ys = np.clip(np.arange(h) + dy, 0, h - 1)
    xs = np.clip(np.arange(w) + dx, 0, w - 1)
    return a[ys][:, xs]


def edge_aware_mean(q: np.ndarray, weights: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
    """(H, W) -> the weighted mean of each pixel's neighbours (similar colours count, edges do not)."""
    total = sum(wt * _shift(q, dy, dx) for dy, dx, wt in weights)
    norm = sum(wt for _, _, wt in weights)
    return total / (norm + 1e-6)


def connected_to(seed: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """(H, W) bool: the ``allowed`` pixels 4-connected to a ``seed`` pixel (geodesic dilation to convergence)."""
    import numpy as np

    region = seed & allowed
    while True:
        grown = region.copy()
        grown[1:] |= region[:-1]
        grown[:-1] |= region[1:]
        grown[:, 1:] |= region[:, :-1]
        grown[:, :-1] |= region[:, 1:]
        grown &= allowed
        if np.array_equal(grown, region):
            return region
        # Several steps per comparison: the comparison costs as much as a step.
        for _ in range(7):
            nxt = grown.copy()
            nxt[1:] |= grown[:-1]
            nxt[:-1] |= grown[1:]
            nxt[:, 1:] |= grown[:, :-1]
            nxt[:, :-1] |= grown[:, 1:]
            grown = nxt & allowed
        region = grown


# --------------------------------------------------------------------------------------------- mask


def _prior(frame: FaceFrame, shape: tuple[int, int], scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prior foreground probability (H, W), certain-foreground and certain-background masks, at ``scale``.

    Laid out like GrabCut's rectangle: beside the head, above the ears, is background unless colour says
    otherwise; everything lower (neck, shoulders, clothes, long hair, some background) starts as person, and the
    background colours learnt above peel the background off it.
    """
    import numpy as np

    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = frame.uv(xs / scale, ys / scale)
    head = (u / HEAD_AXES[0]) ** 2 + ((v - HEAD_CENTRE) / HEAD_AXES[1]) ** 2  # 1 on the head ellipse
    # Soft steps (a hard step would print its straight edge into the mask where colour is undecided).
    in_head = 1 / (1 + np.exp((np.sqrt(head) - 1) / 0.06))
    low = 1 / (1 + np.exp(-(v - EAR_V) / 0.12))
    prior = 0.2 + np.maximum(0.55 * in_head, 0.35 * low)
    sure_fg = frame.hull(shape, scale, 0.85)
    border = max(2, round(0.03 * max(h, w)))
    strip = np.zeros(shape, dtype=bool)
    strip[:border] = True
    strip[:, :border] |= v[:, :border] < EAR_V
    strip[:, -border:] |= v[:, -border:] < EAR_V
    sure_bg = strip & (head > SURE_BG_HEAD**2)
    return prior, sure_fg, sure_bg


def foreground_mask(image: np.ndarray, face: Face) -> np.ndarray:
    """The person (face, hair, neck, body) against the background.

    Args:
        image: (H, W, 3) uint8 RGB.
        face: the face that seeds the person (68 points preferred).

    Returns:
        (H, W) bool, True on the person. See the module docstring for the method.
    """
    import numpy as np
    from PIL import Image

    h, w = image.shape[:2]
    frame = FaceFrame(face)
    q, sure_fg, fg, bg = person_probability(image, frame)
    person = connected_to(sure_fg, q > 0.5)
    person = fill_holes(person)
    q = np.where(person, np.maximum(q, 0.5 + 1e-3), np.minimum(q, 0.5 - 1e-3))  # the cleaned decision, kept soft
    # Full resolution: upsample q; where it is uncertain, let the full-resolution colours decide the edge.
    q_full = np.asarray(Image.fromarray(q.astype(np.float32)).resize((w, h), Image.BILINEAR))
    band = (q_full > 0.15) & (q_full < 0.85)
    if band.any():
        pixels = srgb_to_lab(image[band])
        llr = np.clip(fg.log_prob(pixels) - bg.log_prob(pixels), -12, 12)
        qb = np.clip(q_full[band], 1e-3, 1 - 1e-3)
        q_full = q_full.copy()
        q_full[band] = 1 / (1 + np.exp(-(np.log(qb / (1 - qb)) + COLOUR_WEIGHT * llr)))
    return q_full > 0.5


def person_probability(image: np.ndarray, frame: FaceFrame) -> tuple[np.ndarray, np.ndarray, Gaussians, Gaussians]:
    """Steps 1-3 of the mask on the downscaled photo.

    Returns (q, sure_fg, fg, bg): (h, w) person probability and certain-person mask at the work size, and the
    two colour models.
    """
    import numpy as np
    from PIL import Image

    h, w = image.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(image).resize((sw, sh), Image.BOX)) if scale < 1 else image
    scale = (sw / w + sh / h) / 2
    x = srgb_to_lab(small).reshape(-1, 3)
    prior, sure_fg, sure_bg = _prior(frame, (sh, sw), scale)
    prior_logit = np.log(prior / (1 - prior))
    sample = slice(None, None, FIT_STRIDE)
    fg, bg = Gaussians(COMPONENTS), Gaussians(COMPONENTS)
    # The first background model sees only the certain background: beside the head there may be long hair, and
    # a background model that starts out knowing hair colours never lets hair be person.
    bg.fit(x[sample], sure_bg.reshape(-1)[sample].astype(np.float64))
    # First person model: GrabCut's rectangle (the likely-person region) minus what plainly has the certain
    # background's colour — a white wall filling half the rectangle would otherwise teach the person model white.
    typical_bg = (bg.log_prob(x) > UNIFORM_LAB_LOG_DENSITY + BACKGROUND_COLOUR_MARGIN).reshape(sh, sw)
    q = np.where((prior >= 0.5) & ~typical_bg, 1.0, 0.0)
    q[sure_fg], q[sure_bg] = 1.0, 0.0
    # GrabCut's pairwise term is contrast-sensitive (cheap to cut along colour edges); here the neighbourhood
    # average that pulls each pixel towards its neighbours' decision weighs neighbours by colour similarity.
    weights = neighbour_weights(x.reshape(sh, sw, 3), NEIGHBOUR_RADIUS, EDGE_SIGMA)
    for step in range(ITERATIONS):
        flat = q.reshape(-1)
        fg.fit(x[sample], flat[sample])
        if step:
            bg.fit(x[sample], 1 - flat[sample])
        llr = np.clip(fg.log_prob(x) - bg.log_prob(x), -12, 12).reshape(sh, sw)
        logit = prior_logit + COLOUR_WEIGHT * llr + SMOOTHNESS * (2 * edge_aware_mean(q, weights) - 1)
        q = 1 / (1 + np.exp(-logit))
        q[sure_fg], q[sure_bg] = 1.0, 0.0
    return q, sure_fg, fg, bg


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool -> the same with its holes filled: background is only what reaches the image's border."""
    return ~connected_to(_border(mask.shape), ~mask)


def _border(shape: tuple[int, int]) -> np.ndarray:
    import numpy as np

    b = np.zeros(shape, dtype=bool)
    b[0] = b[-1] = b[:, 0] = b[:, -1] = True
    return b


# --------------------------------------------------------------------------------------------- hair


def hair_region(frame: FaceFrame, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: where head hair is expected (before mask and skin removal); see the module docstring."""
    import numpy as np

    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    u, v = frame.uv(xs, ys)
    crown = (v < -0.12) & (v > -1.3) & (np.abs(u) < 0.9)
    temples = (v >= -0.12) & (v < 0.45) & (np.abs(u) > 0.5) & (np.abs(u) < 0.9)
    return crown | temples


def hair_chroma(lab: np.ndarray) -> tuple[float, float]:
    """Lab colour -> (chroma along the hair-pigment hues, hue in degrees).

    Hair pigments only make red-orange to yellow hues (a*, b* >= 0); a blue or green cast on hair is light
    reflected from the surroundings, so the chroma that counts is the part of (a*, b*) along :data:`PIGMENT_HUE`.
    """
    a, b = float(lab[1]), float(lab[2])
    along = a * math.cos(math.radians(PIGMENT_HUE)) + b * math.sin(math.radians(PIGMENT_HUE))
    return max(0.0, along), math.degrees(math.atan2(b, a))


def classify_hair(lightness: float, chroma: float, hue: float = 0.0) -> tuple[str, float]:
    """(L*, pigment chroma, hue) of the hair colour -> (class, margin).

    The margin is the distance to the nearest boundary of the class's region, in units of :data:`MARGIN_L`
    (lightness) and :data:`MARGIN_C` (chroma), so 1 means comfortably inside. Thresholds: module docstring.
    """
    to_grey = (chroma - GREY_CHROMA) / MARGIN_C if lightness >= GREY_LIGHTNESS else math.inf
    to_black = (chroma - BLACK_CHROMA) / MARGIN_C if lightness < BLACK_LIGHTNESS else math.inf
    golden = min((chroma - GOLDEN_CHROMA) / MARGIN_C, (hue - GOLDEN_HUE) / MARGIN_HUE)
    if chroma < GREY_CHROMA and lightness >= GREY_LIGHTNESS:
        return "grey", min((GREY_CHROMA - chroma) / MARGIN_C, (lightness - GREY_LIGHTNESS) / MARGIN_L)
    if chroma < BLACK_CHROMA and lightness < BLACK_LIGHTNESS:
        return "black", min((BLACK_CHROMA - chroma) / MARGIN_C, (BLACK_LIGHTNESS - lightness) / MARGIN_L)
    if lightness >= BLONDE_LIGHTNESS or golden > 0:
        return "blonde", min(max((lightness - BLONDE_LIGHTNESS) / MARGIN_L, golden), to_grey)
    return "brown", min((BLONDE_LIGHTNESS - lightness) / MARGIN_L, to_grey, to_black, -golden)


def hair_colour(image: np.ndarray, face: Face, mask: np.ndarray | None) -> dict[str, Any] | None:
    """Hair colour of one face.

    Args:
        image: (H, W, 3) uint8 RGB.
        face: the face (68 points preferred).
        mask: (H, W) bool person mask, or None (then the background is not excluded).

    Returns:
        {"class", "lab": [L, a, b], "rgb": [r, g, b], "confidence" in [0, 1], "pixels", "share"}, or None when
        the region holds no measurable hair (a bald head, a hat).
    """
    import numpy as np
    from PIL import Image

    h, w = image.shape[:2]
    frame = FaceFrame(face)
    # Work where the face is about 100 px across: enough pixels, and the cost does not grow with the photo.
    scale = min(1.0, 100.0 / max(frame.width, 1.0))
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    if scale < 1:
        small = np.asarray(Image.fromarray(image).resize((sw, sh), Image.BOX))
        mask = None if mask is None else np.asarray(Image.fromarray(mask).resize((sw, sh), Image.NEAREST))
    else:
        small = image
    frame_small = FaceFrame(_scaled_face(face, (sw / w + sh / h) / 2))
    lab = srgb_to_lab(small)
    region = hair_region(frame_small, (sh, sw))
    if mask is not None:
        region &= mask
    expected = int(region.sum()) if mask is None else int(hair_region(frame_small, (sh, sw)).sum())
    skin = _skin_pixels(frame_small, lab)
    candidates = lab[region]
    if len(skin) >= 10 and len(candidates):
        mean = skin.mean(0)
        cov = np.cov(skin.T) + np.eye(3) * 4.0
        d = candidates - mean
        distance = np.sqrt(np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d))
        candidates = candidates[distance > SKIN_DISTANCE]
    if len(candidates) < MIN_HAIR_PIXELS:
        return None
    colour, share = dominant_colour(candidates)
    chroma, hue = hair_chroma(colour)
    name, margin = classify_hair(float(colour[0]), chroma, hue)
    coverage = min(1.0, len(candidates) / max(0.25 * expected, 1))
    confidence = min(1.0, margin) * coverage
    return {
        "class": name,
        "lab": [round(float(c), 1) for c in colour],
        "rgb": [int(c) for c in lab_to_srgb(colour)],
        "confidence": round(float(confidence), 3),
        "pixels": int(len(candidates)),
        "share": round(share, 3),  # of those pixels, the fraction in the hair's colour cluster
    }


def dominant_colour(lab: np.ndarray, clusters: int = 3) -> tuple[np.ndarray, float]:
    """(N, 3) Lab pixels -> (median Lab of the largest colour cluster, its share of the pixels).

    Hair fills most of the hair region; what else got in (a bit of forehead, background seen through strands) forms
    smaller clusters, so the largest one is the hair. Clusters: k-means started from lightness quantiles.
    """
    import numpy as np

    centres = np.quantile(lab, (np.arange(clusters) + 0.5) / clusters, axis=0)
    for _ in range(10):
        nearest = ((lab[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.array([lab[nearest == k].mean(0) if (nearest == k).any() else centres[k] for k in range(clusters)])
    counts = np.bincount(nearest, minlength=clusters)
    best = int(counts.argmax())
    return np.median(lab[nearest == best], axis=0), float(counts[best] / len(lab))


def _scaled_face(face: Face, scale: float) -> Face:
    from facetool.faces import Face

    return Face(
        box=face.box * scale,
        score=face.score,
        points5=face.points5 * scale,
        points68=None if face.points68 is None else face.points68 * scale,
    )


def _skin_pixels(frame: FaceFrame, lab: np.ndarray) -> np.ndarray:
    """(N, 3) Lab of cheeks and nose: inside the face hull, between the eyes and the mouth, away from the sides."""
    import numpy as np

    shape = lab.shape[:2]
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    u, v = frame.uv(xs, ys)
    cheeks = frame.hull(shape, 1.0, 0.9) & (v > 0.3) & (v < 0.62) & (np.abs(u) < 0.32)
    return lab[cheeks]


# --------------------------------------------------------------------------------------------- the job


def list_photos(folder: Path) -> list[tuple[Path, str | None]]:
    """(path, licence) of every photo in ``folder``: the image files of a data command's manifest when it has one,
    else the folder's own image files, else those of its ``photos/`` subfolder."""
    from facetool.data.common import MANIFEST, read_manifest
    from facetool.errors import UsageError
    from facetool.imageio import IMAGE_SUFFIXES

    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    entries: list[tuple[Path, str | None]] = []
    if (folder / MANIFEST).is_file():
        for record in read_manifest(folder):
            rel = record.get("file")
            if rel and Path(rel).suffix.lower() in IMAGE_SUFFIXES and (folder / rel).is_file():
                entries.append((folder / rel, record.get("licence")))
    from facetool.outputs import is_own_output, own_output_markers

    markers = own_output_markers()  # a folder stylized before holds drawings named a.apdrawing.png: not photos
    for candidate in (folder, folder / "photos"):
        if entries or not candidate.is_dir():
            continue
        entries = [
            (p, None)
            for p in sorted(candidate.iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES
            and p.is_file()
            and not p.name.startswith(".")
            and not is_own_output(p, markers)  # also the person masks data labels writes, a.mask.png
        ]
    if not entries:
        raise UsageError(f"{folder}: no photos found (looked in the folder and its photos/ subfolder)")
    return entries


def label_photo(image: np.ndarray, faces: list[Face]) -> tuple[dict[str, Any] | None, np.ndarray | None]:
    """Hair and mask of a photo from its (largest-first) faces: (hair or None, (H, W) bool mask or None)."""
    if not faces:
        return None, None
    mask = foreground_mask(image, faces[0])
    return hair_colour(image, faces[0], mask), mask


def make_labels(
    photos_dir: Path, out: Path | None = None, *, mesh: bool = True, labeler: Any = None
) -> tuple[int, int]:
    """Label every photo of ``photos_dir`` into ``out`` (default ``photos_dir/labels``); returns (made, skipped)."""
    import json
    import os

    import numpy as np

    from facetool.data.common import Manifest, file_record, run_items, save_png, sha256_file, write_bytes_atomic
    from facetool.data.faceinfo import faces_to_json
    from facetool.errors import UsageError
    from facetool.imageio import read_image

    photos_dir = Path(photos_dir)
    out = Path(out) if out is not None else photos_dir / "labels"
    if out.resolve() == photos_dir.resolve():
        raise UsageError(
            f"--out {out}: the photo folder itself; labels go in a folder of their own (default {out}/labels)"
        )
    photos = list_photos(photos_dir)
    by_id: dict[str, tuple[Path, str | None]] = {}
    for path, licence in photos:
        if path.stem in by_id:
            raise UsageError(f"{photos_dir}: {by_id[path.stem][0].name} and {path.name} share the name {path.stem!r}")
        by_id[path.stem] = (path, licence)
    manifest = Manifest.open(out, "labels")
    # A photo changed since it was labelled (or labelled without the mesh when it is now wanted) is labelled again.
    digests = {ident: sha256_file(path) for ident, (path, _) in by_id.items()}
    for ident, record in list(manifest.records.items()):
        stale = record.get("photo", {}).get("sha256") != digests.get(ident)
        if stale or (mesh and not record.get("labels", {}).get("mesh", False)):
            del manifest.records[ident]
    state: dict[str, Any] = {"labeler": labeler}

    def make(index: int, ident: str) -> dict[str, Any]:
        from facetool.data.faceinfo import FaceLabeler

        path, licence = by_id[ident]
        if state["labeler"] is None:
            state["labeler"] = FaceLabeler(mesh=mesh)
        image = read_image(path)
        faces = state["labeler"].label(image)
        hair, mask = label_photo(image, faces)
        files = {}
        mask_rel = None
        if mask is not None:
            mask_path = out / f"{ident}.mask.png"
            files["mask"] = file_record(out, mask_path, save_png(mask_path, mask.astype(np.uint8) * 255))
            mask_rel = Path(os.path.relpath(mask_path, photos_dir)).as_posix()
        data = faces_to_json(faces, image.shape[1], image.shape[0], hair=hair, mask=mask_rel)
        json_path = out / f"{ident}.json"
        digest = write_bytes_atomic(json_path, (json.dumps(data, separators=(",", ":")) + "\n").encode())
        pose = faces[0].pose if faces and faces[0].pose is not None else None
        return {
            "id": ident,
            "file": file_record(out, json_path, digest)["path"],
            "sha256": digest,
            "seed": None,
            "source": "facetool data labels: dlib 68 points + MediaPipe mesh; classical hair colour and mask",
            "licence": licence or "labels of a user photo: same terms as the photo",
            "photo": {"path": Path(os.path.relpath(path, out)).as_posix(), "sha256": digests[ident]},
            "files": files,
            "labels": {
                "faces": len(faces),
                "mesh": mesh,
                "hair": None if hair is None else hair["class"],
                "pose": None if pose is None else {k: round(float(v), 1) for k, v in pose.items()},
            },
        }

    try:
        return run_items(manifest, list(by_id), make, "labelling photos")
    finally:
        if state["labeler"] is not None and labeler is None:
            state["labeler"].close()


def register_cli(data_app: typer.Typer) -> None:
    @data_app.command("labels", help=HELP, no_args_is_help=True)
    def labels(
        photos_dir: Path = typer.Argument(..., help="Folder of photos (or made by facetool data photos)."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: PHOTOS_DIR/labels)."),
        no_mesh: bool = typer.Option(False, "--no-mesh", help="Skip MediaPipe (no 478-point mesh, pose, blendshapes)."),
    ) -> None:
        target = out if out is not None else photos_dir / "labels"
        made, skipped = make_labels(photos_dir, out, mesh=not no_mesh)
        typer.echo(f"labels: made {made}, skipped {skipped} (already done) -> {target}")
