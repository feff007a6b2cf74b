"""Cartoon avatar faces drawn from DiceBear style files, with exact landmark positions.

DiceBear styles (package ``dicebear_styles``) describe an avatar as a tree of SVG elements in which named
*components* (eyes, nose, mouth, hair, head ...) are placed by a ``transform`` and filled from one of several
*variants*. This module walks that tree itself instead of calling ``dicebear.Avatar``: it picks the variants and
colours with our own seeded generator, adds a random move/scale to each facial part, and — because it composes
every transform on the way down — knows the exact matrix from each part's own coordinates to the output pixels.

Landmarks are *anchors* of a part, measured once per (style, component, variant) by rasterising that variant
alone in its own coordinate system (see :func:`part_anchors`) and then mapped through the part's matrix:

* ``left_eye`` / ``right_eye``: the ``eyes`` component holds both eyes. Its ink is split at the widest empty
  column gap near the middle (at the least-inked column when the eyes touch); each eye is the alpha-weighted
  centroid of its side — thin lashes weigh little, so it sits on the eye itself.
* ``left_brow`` / ``right_brow``: the same for ``eyebrows``.
* ``nose``: alpha-weighted centroid of the lowest 35 % of the nose ink (the drawn tip / nostril mark), moved
  onto the nearest solidly drawn pixel (a hooked nose's centroid would fall inside the hook).
* ``mouth_left`` / ``mouth_right``: the leftmost / rightmost ink column of the mouth, at the alpha-weighted mean
  row of the ink within 4 % of the mouth width from that end. Detached marks smaller than a quarter of the main
  stroke (dimples, dots) are left out first.
* ``mouth``: the mouth ink's horizontal middle, at the alpha-weighted mean row of the central 20 % of columns
  (on the lip line for a closed mouth, inside the opening for an open one).
* ``chin``: the bottom of the face shape below the mouth. In a render of the face shape alone (skin fill left
  out, outline only), each column within the mouth's width is followed down from the mouth's default centre
  to its first outline run; the chin is the middle of the lowest such run (the jaw's lowest point — lorelei
  draws the jaw as tapering strokes with a break there, so the point can sit at a stroke's thin end). For
  ``avataaars`` (no outline) it is the lowest point of the jaw arc read from the path data, ``(140, 186)``.

Anchors are measured at 500 pixels along the part box's longer side (several times finer than a 256-pixel
output) and cached per process; the first items of a run pay for the measuring.

Hair variants that would hide the eyes or the brows, or show too little hair for a colour label
(:func:`hair_leaves_face_free`), are redrawn. Components that would hide landmarks or carry hair-like colours
(glasses, beards, hats, hair accessories, gestures) are never drawn.

Left / right are as seen in the image (the :mod:`facetool.faces` convention), decided after the mapping, so a
mirrored avatar names its points correctly. Pixel centres are at integers (:mod:`facetool.align`): canvas point
``u`` lands on pixel ``(u - view_x) * size / view_width - 0.5``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HAIR_CLASSES = ("black", "brown", "blonde", "grey")

#: Palette of each hair class (sRGB hex). Classes are far apart in lightness / chroma, so the mean colour of a
#: rendered hair region (shading overlays included) is still nearest to its own class (:func:`classify_hair`).
HAIR_PALETTES: dict[str, tuple[str, ...]] = {
    "black": ("#1c1a1a", "#26211f", "#16181d"),
    "brown": ("#4e2f1d", "#6a4129", "#7a5034", "#5b3a26"),
    "blonde": ("#dcb66e", "#e8cb8a", "#cfa85c", "#f0dba6"),
    "grey": ("#8e8e8e", "#a8a8a8", "#c4c4c4", "#9a9ea3"),
}

#: Human skin tones shared by every style (light to dark).
SKIN_TONES = ("#ffe9dc", "#f9d9c1", "#f2c9a5", "#e7b48a", "#d39a6e", "#b27650", "#8a5538", "#6a3f2a")

LANDMARKS = (
    "left_brow",
    "right_brow",
    "left_eye",
    "right_eye",
    "nose",
    "mouth_left",
    "mouth_right",
    "mouth",
    "chin",
)
POINTS5 = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

# Parts whose anchors come in left/right pairs, named in the part's own coordinates ("a" = smaller x).
_PAIRS = {"eyes": ("left_eye", "right_eye"), "eyebrows": ("left_brow", "right_brow")}


@dataclass(frozen=True)
class Move:
    """Random placement of one part, in canvas units (translation) and a factor (scale about its centre)."""

    dx: float = 0.0
    dy: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)


@dataclass(frozen=True)
class StyleSpec:
    """What we draw from one DiceBear style and how we randomise it."""

    name: str
    #: Output crop of the canvas: x, y, width, height (canvas units), square.
    view: tuple[float, float, float, float]
    #: Components never drawn (they would hide landmarks or the hair colour).
    hidden: tuple[str, ...] = ()
    #: Variant pools narrowed to these names (default: every variant).
    pools: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: (component, colour name) -> colour name used instead inside that component's own elements.
    recolour: dict[tuple[str, str], str] = field(default_factory=dict)
    #: Colour names filled from the item's hair / skin colour.
    hair_colours: tuple[str, ...] = ()
    skin_colours: tuple[str, ...] = ()
    #: Colour names left out when measuring the face outline for the chin (fills, not lines).
    fill_colours: tuple[str, ...] = ()
    #: Part moves. "eyebrows" moves with "eyes" plus its own move.
    moves: dict[str, Move] = field(default_factory=dict)
    #: The face shape: a component name, or "canvas:i,j" = those top-level canvas elements.
    face: str = "head"
    #: Face-shape scale ranges (x, y) about ``face_origin`` (face's own coordinates).
    face_scale: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 1.0), (1.0, 1.0))
    face_origin: tuple[float, float] = (0.0, 0.0)
    #: Fixed chin in the face's own coordinates, when it cannot be measured from an outline.
    chin: tuple[float, float] | None = None
    #: The hair component (its variants are kept only where they leave the eyes free, :func:`hair_over_part`).
    hair: str = "hair"


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Views frame the head with the eyes at about 0.44-0.47 of the height and the chin at about 0.8. Moves are in
# the parts' own units, which equal canvas units in these styles (their nesting only translates): roughly
# +-2 % of the view for eyes and mouth, keeping brows above eyes above nose above mouth above chin.
# Part moves shared by the two line-art styles (same face geometry): ±dx, ±dy in canvas units, scale range.
LINE_ART_MOVES = {
    "eyes": Move(14, 16, (0.9, 1.1)),
    "eyebrows": Move(6, 10, (0.9, 1.1)),
    "nose": Move(10, 14, (0.85, 1.15)),
    "mouth": Move(16, 16, (0.85, 1.15)),
}

STYLES: dict[str, StyleSpec] = {
    "lorelei": StyleSpec(
        name="lorelei",
        view=(130.0, 100.0, 800.0, 800.0),
        hidden=("beard", "glasses", "hairAccessories"),
        hair_colours=("hair",),
        skin_colours=("skin",),
        fill_colours=("skin",),
        moves=LINE_ART_MOVES,
        face="head",
        face_scale=((0.95, 1.05), (0.95, 1.06)),
        face_origin=(294.0, 150.0),
    ),
    "notionists": StyleSpec(
        name="notionists",
        view=(450.0, 340.0, 900.0, 900.0),
        hidden=("beard", "glasses", "gesture"),
        pools={"hair": tuple(f"variant{i:02d}" for i in range(1, 64))},  # not "hat"
        recolour={("hair", "ink"): "hair", ("head", "paper"): "skin"},
        hair_colours=("hair",),
        skin_colours=("skin",),
        fill_colours=("paper", "skin"),
        moves=LINE_ART_MOVES,
        face="head",
        face_scale=((0.95, 1.05), (0.95, 1.05)),
        face_origin=(292.0, 200.0),
    ),
    "avataaars": StyleSpec(
        name="avataaars",
        view=(30.0, 10.0, 220.0, 220.0),
        hidden=("accessories", "facialHair"),
        pools={
            # hair only (no hats, hijab, turban); "vomit" and "eating" mouths and "cry", "hearts", "xDizzy" eyes
            # reach far beyond the mouth / eye they stand for
            "top": _names(
                "bigHair bob bun curly curvy dreads dreads01 dreads02 frida frizzle fro longButNotTooLong "
                "miaWallace shaggy shaggyMullet shavedSides shortCurly shortFlat shortRound shortWaved sides "
                "straight01 straight02 straightAndStrand theCaesar theCaesarAndSidePart"
            ),
            "eyes": _names("closed default eyeRoll happy side squint surprised wink"),
            "mouth": _names("concerned default disbelief grimace sad screamOpen serious smile tongue twinkle"),
        },
        hair_colours=("hair",),
        skin_colours=("skin",),
        moves={
            "eyes": Move(3, 4, (0.9, 1.1)),
            "eyebrows": Move(1.5, 2.5, (0.9, 1.1)),
            "nose": Move(2, 3, (0.85, 1.2)),
            "mouth": Move(3, 4, (0.85, 1.15)),
        },
        face="canvas:0,1",
        face_scale=((0.95, 1.05), (1.0, 1.0)),
        face_origin=(140.0, 36.0),
        chin=(140.0, 186.0),
        hair="top",
    ),
}

DEFAULT_STYLES = ("lorelei", "notionists", "avataaars")


# ----------------------------------------------------------------------------------------------------
# Style files
# ----------------------------------------------------------------------------------------------------


def styles_folder() -> Path:
    import dicebear_styles

    return Path(next(iter(dicebear_styles.__path__)))


@functools.cache
def load_style(name: str) -> dict[str, Any]:
    """The DiceBear style definition (parsed JSON) of ``name``."""
    path = styles_folder() / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def style_licence(name: str) -> dict[str, str]:
    """{"name", "url", "text"} of a style, as written in its JSON."""
    lic = load_style(name).get("meta", {}).get("license", {})
    return {"name": lic.get("name", ""), "url": lic.get("url", ""), "text": lic.get("text", "")}


@functools.cache
def styles_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dicebear-styles")
    except PackageNotFoundError:
        return "unknown"


def _component(style: dict[str, Any], name: str) -> dict[str, Any]:
    comp = style["components"][name]
    return style["components"][comp["extends"]] if "extends" in comp else comp


# ----------------------------------------------------------------------------------------------------
# SVG transforms as 3x3 matrices
# ----------------------------------------------------------------------------------------------------

_TRANSFORM_RE = re.compile(r"(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)")


def parse_transform(text: str | None) -> np.ndarray:
    """SVG ``transform`` attribute -> (3, 3) matrix (child coordinates -> parent coordinates)."""
    m = np.eye(3)
    if not text:
        return m
    for kind, args in _TRANSFORM_RE.findall(text):
        v = [float(a) for a in re.split(r"[\s,]+", args.strip()) if a]
        if kind == "matrix":
            t = np.array([[v[0], v[2], v[4]], [v[1], v[3], v[5]], [0, 0, 1]])
        elif kind == "translate":
            t = _translate(v[0], v[1] if len(v) > 1 else 0.0)
        elif kind == "scale":
            t = np.diag([v[0], v[1] if len(v) > 1 else v[0], 1.0])
        elif kind == "rotate":
            a = math.radians(v[0])
            r = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
            t = _translate(v[1], v[2]) @ r @ _translate(-v[1], -v[2]) if len(v) == 3 else r
        elif kind == "skewX":
            t = np.array([[1, math.tan(math.radians(v[0])), 0], [0, 1, 0], [0, 0, 1]])
        else:
            t = np.array([[1, 0, 0], [math.tan(math.radians(v[0])), 1, 0], [0, 0, 1]])
        m = m @ t
    return m


def _translate(x: float, y: float) -> np.ndarray:
    return np.array([[1.0, 0, x], [0, 1.0, y], [0, 0, 1]])


def _scale_about(sx: float, sy: float, x: float, y: float) -> np.ndarray:
    return _translate(x, y) @ np.diag([sx, sy, 1.0]) @ _translate(-x, -y)


def _svg_matrix(m: np.ndarray) -> str:
    return "matrix({})".format(" ".join(_num(v) for v in (m[0, 0], m[1, 0], m[0, 1], m[1, 1], m[0, 2], m[1, 2])))


def _num(v: float) -> str:
    return f"{v:.6f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


def map_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) points through a (3, 3) matrix."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return p @ m[:2, :2].T + m[:2, 2]


# ----------------------------------------------------------------------------------------------------
# One avatar: the random draw, its SVG and its landmarks
# ----------------------------------------------------------------------------------------------------


@dataclass
class AvatarDraw:
    """Everything random about one avatar (JSON-friendly)."""

    style: str
    variants: dict[str, str]  # component -> variant; components absent here are not drawn
    moves: dict[str, list[float]]  # component -> [dx, dy, scale] in its own units
    face: list[float]  # face-shape scale [sx, sy]
    colours: dict[str, str]  # colour name -> hex
    hair: str  # hair class
    hair_rgb: list[int]
    skin_rgb: list[int]
    background_rgb: list[int]
    flip: bool

    def to_dict(self) -> dict[str, Any]:
        """The geometry of the draw (colours and style are labelled separately)."""
        return {
            "variants": dict(sorted(self.variants.items())),
            "moves": {k: [round(x, 4) for x in v] for k, v in sorted(self.moves.items())},
            "face": [round(x, 4) for x in self.face],
            "flip": self.flip,
        }


def random_draw(style_name: str, rng: np.random.Generator, hair: str | None = None) -> AvatarDraw:
    """Draw variants, part moves, face shape, colours and mirroring for one avatar of ``style_name``."""
    spec = STYLES[style_name]
    style = load_style(style_name)
    variants: dict[str, str] = {}
    # Sorted names: the draw order (hence every item) does not depend on the JSON's key order.
    for name in sorted(style["components"]):
        comp = style["components"][name]
        if name in spec.hidden:
            continue
        pool = spec.pools.get(name) or tuple(_component(style, name)["variants"])
        probability = _component(style, name).get("probability", 100)
        shown = rng.random() * 100 < probability
        pick = pool[int(rng.integers(len(pool)))]
        # Redraw hair that would hide the eyes or brows (a few draws; only the drawn variants get measured).
        tries = 0
        while name == spec.hair and not hair_leaves_face_free(style_name, pick):
            tries += 1
            if tries > 200:
                raise ValueError(f"{style_name}: no hair variant leaves the face free")
            pick = pool[int(rng.integers(len(pool)))]
        if shown and "extends" not in comp:
            variants[name] = pick
    moves: dict[str, list[float]] = {}
    for name in sorted(spec.moves):
        move = spec.moves[name]
        moves[name] = [
            float(rng.uniform(-move.dx, move.dx)),
            float(rng.uniform(-move.dy, move.dy)),
            float(rng.uniform(*move.scale)),
        ]
    if "eyebrows" in moves and "eyes" in moves:  # brows ride on the eyes so they never cross them
        moves["eyebrows"][0] += moves["eyes"][0]
        moves["eyebrows"][1] += moves["eyes"][1]
    face = [float(rng.uniform(*spec.face_scale[0])), float(rng.uniform(*spec.face_scale[1]))]
    hair_class = hair if hair is not None else HAIR_CLASSES[int(rng.integers(len(HAIR_CLASSES)))]
    palette = HAIR_PALETTES[hair_class]
    hair_hex = palette[int(rng.integers(len(palette)))]
    skin_hex = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    background = _background(rng)
    colours = {}
    for name, entry in style.get("colors", {}).items():
        values = entry.get("values") or ["#000000"]
        colours[name] = values[int(rng.integers(len(values)))]
    colours.update(dict.fromkeys(spec.hair_colours, hair_hex))
    colours.update(dict.fromkeys(spec.skin_colours, skin_hex))
    if style_name == "avataaars":
        # Clothes must not take the hair's colour family, or a hair-colour check on the image would be ambiguous.
        colours["clothes"] = ("#262e33", "#65c9ff", "#5199e4", "#25557c", "#a7ffc4", "#ff488e", "#ff5c5c")[
            int(rng.integers(7))
        ]
    flip = bool(rng.random() < 0.5)
    return AvatarDraw(
        style=style_name,
        variants=variants,
        moves=moves,
        face=face,
        colours=colours,
        hair=hair_class,
        hair_rgb=hex_to_rgb(hair_hex),
        skin_rgb=hex_to_rgb(skin_hex),
        background_rgb=background,
        flip=flip,
    )


def _background(rng: np.random.Generator) -> list[int]:
    """White half the time, otherwise a light flat tint (value >= 0.93, saturation <= 0.15)."""
    import colorsys

    if rng.random() < 0.5:
        return [255, 255, 255]
    h, s, v = rng.random(), rng.uniform(0.04, 0.15), rng.uniform(0.93, 1.0)
    return [int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, s, v)]


def hex_to_rgb(text: str) -> list[int]:
    text = text.lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    return [int(text[i : i + 2], 16) for i in (0, 2, 4)]


def _rgb_hex(rgb: list[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


@dataclass
class _Placed:
    matrix: np.ndarray  # part coordinates -> canvas (after the mirroring)
    variant: str


class _Composer:
    """Walks a style's element tree into SVG text, recording every drawn component's matrix."""

    def __init__(self, draw: AvatarDraw, colours: dict[str, str] | None = None, nested: bool = True) -> None:
        self.nested = nested  # False: leave nested components out (a part measured on its own)
        self.draw = draw
        self.spec = STYLES[draw.style]
        self.style = load_style(draw.style)
        self.colours = draw.colours if colours is None else colours
        self.placed: dict[str, _Placed] = {}
        self.face_matrix: np.ndarray | None = None

    def canvas(self, root: np.ndarray) -> str:
        elements = self.style["canvas"]["elements"]
        face_indices: set[int] = set()
        if self.spec.face.startswith("canvas:"):
            face_indices = {int(i) for i in self.spec.face.split(":", 1)[1].split(",")}
        out: list[str] = []
        face_t = self._face_transform()
        for i, element in enumerate(elements):
            if i in face_indices:
                self.face_matrix = root @ face_t
                out.append(f'<g transform="{_svg_matrix(face_t)}">')
                out.append(self.element(element, root @ face_t, None))
                out.append("</g>")
            else:
                out.append(self.element(element, root, None))
        return "".join(out)

    def _face_transform(self) -> np.ndarray:
        sx, sy = self.draw.face
        return _scale_about(sx, sy, *self.spec.face_origin)

    def element(self, el: dict[str, Any], matrix: np.ndarray, owner: str | None) -> str:
        kind = el.get("type")
        if kind == "text":
            value = el.get("value")
            return _escape(value) if isinstance(value, str) else ""
        if kind == "component":
            return self.component(el, matrix)
        if kind != "element":
            return ""
        name = el["name"]
        attrs = el.get("attributes") or {}
        inner = matrix @ parse_transform(attrs.get("transform") if isinstance(attrs.get("transform"), str) else None)
        children = "".join(self.element(c, inner, owner) for c in el.get("children", []))
        return f"<{name}{self.attributes(attrs, owner)}>{children}</{name}>"

    def component(self, el: dict[str, Any], matrix: np.ndarray) -> str:
        if not self.nested:
            return ""
        name = el["name"]
        comp_def = self.style["components"].get(name, {})
        source = comp_def.get("extends", name)
        variant = self.draw.variants.get(source)
        if variant is None:
            return ""
        comp = _component(self.style, name)
        attrs = dict(el.get("attributes") or {})
        ref = parse_transform(attrs.pop("transform", None))
        extra = np.eye(3)
        move = self.draw.moves.get(name)
        if move is not None:
            dx, dy, s = move
            extra = _translate(dx, dy) @ _scale_about(s, s, comp["width"] / 2, comp["height"] / 2)
        if name == self.spec.face:
            extra = extra @ self._face_transform()
        inner = matrix @ ref @ extra
        self.placed.setdefault(name, _Placed(inner, variant))
        body = "".join(self.element(c, inner, name) for c in comp["variants"][variant]["elements"])
        return f'<g transform="{_svg_matrix(ref @ extra)}"{self.attributes(attrs, name)}>{body}</g>'

    def attributes(self, attrs: dict[str, Any], owner: str | None) -> str:
        parts = []
        for key, value in attrs.items():
            if key == "transform" and not isinstance(value, str):
                continue
            if isinstance(value, dict):
                if value.get("type") != "color":
                    continue
                colour = self.spec.recolour.get((owner or "", value["name"]), value["name"])
                value = self.colours.get(colour, "none")
            parts.append(f' {key}="{_escape(str(value))}"')
        return "".join(parts)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _root_matrix(spec: StyleSpec, flip: bool) -> np.ndarray:
    if not flip:
        return np.eye(3)
    x, _, w, _ = spec.view
    return np.array([[-1.0, 0, 2 * x + w], [0, 1, 0], [0, 0, 1]])


def _view_to_pixels(spec: StyleSpec, size: int) -> np.ndarray:
    x, y, w, h = spec.view
    return np.array([[size / w, 0, -x * size / w - 0.5], [0, size / h, -y * size / h - 0.5], [0, 0, 1]])


def compose_svg(draw: AvatarDraw, size: int, colours: dict[str, str] | None = None) -> tuple[str, _Composer]:
    """The avatar's SVG document (``size`` x ``size`` pixels) and the composer holding every part's matrix.

    ``colours`` overrides the draw's colour table (used to measure what a colour covers).
    """
    spec = STYLES[draw.style]
    root = _root_matrix(spec, draw.flip)
    composer = _Composer(draw, colours)
    body = composer.canvas(root)
    x, y, w, h = spec.view
    root_attrs = "".join(f' {k}="{_escape(str(v))}"' for k, v in load_style(draw.style).get("attributes", {}).items())
    background = _rgb_hex(draw.background_rgb)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{_num(x)} {_num(y)} {_num(w)} {_num(h)}" '
        f'width="{size}" height="{size}"{root_attrs}>'
        f'<rect x="{_num(x - 1)}" y="{_num(y - 1)}" width="{_num(w + 2)}" height="{_num(h + 2)}" fill="{background}"/>'
        f'<g transform="{_svg_matrix(root)}">{body}</g></svg>'
    )
    return svg, composer


def rasterise(svg: str, size: int) -> np.ndarray:
    """SVG text (opaque: it paints its own background) -> (size, size, 3) uint8 RGB."""
    return _cairo_rgba(svg, size, size)[:, :, :3].copy()


def _cairo_rgba(svg: str, width: int, height: int) -> np.ndarray:
    """Rasterise SVG text with cairosvg straight into memory: (height, width, 4) uint8 RGBA, colour
    premultiplied by alpha. (Skips the PNG round trip, which costs more than the drawing on large renders.)"""
    from cairosvg.parser import Tree
    from cairosvg.surface import PNGSurface

    surface = PNGSurface(Tree(bytestring=svg.encode("utf-8")), None, 96, output_width=width, output_height=height)
    image = surface.cairo
    image.flush()
    stride = image.get_stride()
    raw = np.frombuffer(image.get_data(), dtype=np.uint8).reshape(height, stride)[:, : width * 4]
    bgra = raw.reshape(height, width, 4)  # cairo ARGB32 is B, G, R, A in memory on little-endian machines
    if np.little_endian:
        return bgra[:, :, [2, 1, 0, 3]].copy()
    return bgra[:, :, [1, 2, 3, 0]].copy()


def landmarks(draw: AvatarDraw, composer: _Composer, size: int) -> dict[str, list[float]]:
    """Exact landmark pixels {name: [x, y]} of a composed avatar (see the module docstring)."""
    spec = STYLES[draw.style]
    to_px = _view_to_pixels(spec, size)
    points: dict[str, np.ndarray] = {}
    for part in ("eyes", "eyebrows", "nose", "mouth"):
        placed = composer.placed.get(part)
        if placed is None:
            continue
        anchors = part_anchors(draw.style, part, placed.variant)
        mapped = {k: map_points(to_px @ placed.matrix, v)[0] for k, v in anchors.items()}
        if part in _PAIRS:
            a, b = sorted((mapped["a"], mapped["b"]), key=lambda p: p[0])
            points[_PAIRS[part][0]], points[_PAIRS[part][1]] = a, b
        elif part == "mouth":
            a, b = sorted((mapped["a"], mapped["b"]), key=lambda p: p[0])
            points["mouth_left"], points["mouth_right"], points["mouth"] = a, b, mapped["centre"]
        else:
            points["nose"] = mapped["tip"]
    chin = _chin_local(draw, composer)
    if chin is not None:
        matrix = composer.face_matrix if composer.face_matrix is not None else composer.placed[spec.face].matrix
        points["chin"] = map_points(to_px @ matrix, chin)[0]
    return {k: [round(float(points[k][0]), 3), round(float(points[k][1]), 3)] for k in LANDMARKS if k in points}


def _chin_local(draw: AvatarDraw, composer: _Composer) -> np.ndarray | None:
    spec = STYLES[draw.style]
    if spec.chin is not None:
        return np.array(spec.chin)
    placed = composer.placed.get(spec.face)
    if placed is None:
        return None
    return np.array(face_chin(draw.style, spec.face, placed.variant))


# ----------------------------------------------------------------------------------------------------
# Anchors measured by rasterising one variant alone
# ----------------------------------------------------------------------------------------------------

_INK = 0.04  # alpha above which a pixel counts as drawn (avataaars' nose is a 16 % black shade)


def _variant_alpha(style_name: str, component: str, variant: str, hide: tuple[str, ...] = ()) -> tuple:
    """Alpha (H, W) float of one variant drawn alone, and the (3, 3) matrix pixel -> part coordinates.

    Nested components are left out; colour names in ``hide`` are not painted. The view is the part's box with a
    50 % margin each side (drawings may overflow their box), at 500 pixels along the box's longer side.
    """
    comp = _component(load_style(style_name), component)
    w, h = float(comp["width"]), float(comp["height"])
    elements = comp["variants"][variant]["elements"]
    return _elements_alpha(style_name, component, elements, (-0.5 * w, -0.5 * h, 2 * w, 2 * h), 1000.0, hide)


def _elements_alpha(
    style_name: str,
    owner: str,
    elements: list[dict[str, Any]],
    view: tuple[float, float, float, float],
    pixels: float,
    hide: tuple[str, ...] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Alpha (H, W) of ``elements`` (of component ``owner``, nested components left out) painted black over
    ``view`` (x, y, w, h in the owner's coordinates) at ``pixels`` along its longer side; and the matrix
    pixel centre -> owner coordinates."""
    style = load_style(style_name)
    spec = STYLES[style_name]
    names = [*style.get("colors", {}), *spec.hair_colours, *spec.skin_colours]
    colours = {name: ("none" if name in hide else "#000000") for name in names}
    draw = AvatarDraw(style_name, {}, {}, [1.0, 1.0], colours, "black", [0, 0, 0], [0, 0, 0], [0, 0, 0], False)
    composer = _Composer(draw, nested=False)
    body = "".join(composer.element(e, np.eye(3), owner) for e in elements)
    x0, y0, vw, vh = view
    k = pixels / max(vw, vh)
    pw, ph = max(1, int(round(vw * k))), max(1, int(round(vh * k)))
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{_num(x0)} {_num(y0)} {_num(vw)} {_num(vh)}" '
        f'width="{pw}" height="{ph}" fill="none" preserveAspectRatio="none">{body}</svg>'
    )
    alpha = _cairo_rgba(svg, pw, ph)[:, :, 3].astype(np.float64) / 255.0
    to_owner = np.array([[vw / pw, 0, x0 + 0.5 * vw / pw], [0, vh / ph, y0 + 0.5 * vh / ph], [0, 0, 1]])
    return alpha, to_owner


@functools.cache
def part_anchors(style_name: str, component: str, variant: str) -> dict[str, np.ndarray]:
    """Anchors of one part variant in its own coordinates: eyes/eyebrows {"a","b"}, nose {"tip"},
    mouth {"a","b","centre"} ("a" has the smaller x). See the module docstring for the definitions."""
    alpha, to_part = _variant_alpha(style_name, component, variant)
    ink = np.where(alpha > _INK, alpha, 0.0)
    if not ink.any():
        raise ValueError(f"{style_name} {component} {variant} draws nothing")
    cols = np.flatnonzero(ink.sum(0))
    rows = np.flatnonzero(ink.sum(1))
    c0, c1, r0, r1 = cols[0], cols[-1], rows[0], rows[-1]

    def centroid(mask_cols: slice, mask_rows: slice = slice(None)) -> np.ndarray:
        """Alpha-weighted centroid (pixels) of ``ink`` within the given columns / rows."""
        sub = ink[mask_rows, mask_cols]
        x_first = mask_cols.start or 0
        y_first = mask_rows.start or 0
        weight = sub.sum()
        cx = (sub.sum(0) * np.arange(x_first, x_first + sub.shape[1])).sum() / weight
        cy = (sub.sum(1) * np.arange(y_first, y_first + sub.shape[0])).sum() / weight
        return np.array([cx, cy])

    def to_local(p: np.ndarray) -> np.ndarray:
        return map_points(to_part, p)[0]

    if component in _PAIRS:
        split = _split_column(ink.sum(0), c0, c1)
        return {"a": to_local(centroid(slice(c0, split))), "b": to_local(centroid(slice(split, c1 + 1)))}
    if component == "nose":
        top = int(round(r1 - 0.35 * (r1 - r0)))
        low = centroid(slice(None), slice(top, r1 + 1))
        # snap onto the drawn line: a hooked nose's centroid falls inside the hook, off the ink
        yy, xx = np.nonzero(alpha >= 0.5 * alpha.max())
        nearest = int(np.argmin(np.hypot(xx - low[0], yy - low[1])))
        return {"tip": to_local(np.array([xx[nearest], yy[nearest]], dtype=np.float64))}
    if component == "mouth":
        ink = _main_pieces(ink)
        cols = np.flatnonzero(ink.sum(0))
        c0, c1 = cols[0], cols[-1]
        band = max(1, int(round(0.04 * (c1 - c0))))
        left = np.array([c0, centroid(slice(c0, c0 + band + 1))[1]])
        right = np.array([c1, centroid(slice(c1 - band, c1 + 1))[1]])
        mid = 0.5 * (c0 + c1)
        half = max(1, int(round(0.1 * (c1 - c0))))
        centre = np.array([mid, centroid(slice(int(mid) - half, int(mid) + half + 1))[1]])
        return {"a": to_local(left), "b": to_local(right), "centre": to_local(centre)}
    raise ValueError(f"no anchors defined for component {component!r}")


def _main_pieces(ink: np.ndarray, keep: float = 0.25) -> np.ndarray:
    """``ink`` without the detached small marks (dimples, tongue-tip dots) under ``keep`` x the largest piece,
    so mouth corners sit on the mouth line."""
    from scipy import ndimage

    labels, count = ndimage.label(ink > 0)
    if count <= 1:
        return ink
    areas = ndimage.sum_labels(np.ones_like(ink), labels, index=np.arange(1, count + 1))
    kept = np.flatnonzero(areas >= keep * areas.max()) + 1
    return np.where(np.isin(labels, kept), ink, 0.0)


def _split_column(profile: np.ndarray, c0: int, c1: int) -> int:
    """Column between the two halves of a pair: the middle of the widest empty gap in the central 60 %,
    else the least-inked column there."""
    lo, hi = c0 + int(0.2 * (c1 - c0)), c0 + int(0.8 * (c1 - c0))
    window = profile[lo : hi + 1]
    empty = window <= 1e-9
    best, best_len, start = None, 0, None
    for i, e in enumerate(np.append(empty, False)):
        if e and start is None:
            start = i
        elif not e and start is not None:
            if i - start > best_len:
                best, best_len = (start + i - 1) // 2, i - start
            start = None
    if best is None:
        best = int(np.argmin(window))
    return lo + best


@functools.cache
def face_chin(style_name: str, component: str, variant: str) -> tuple[float, float]:
    """Chin of a face-shape variant in its own coordinates: of the first outline runs below the mouth's default
    centre, column by column across the mouth's width (skin fill left out), the lowest one's middle."""
    spec = STYLES[style_name]
    style = load_style(style_name)
    mouth = _default_part_centre(style, component, variant, "mouth")
    alpha, to_part = _variant_alpha(style_name, component, variant, hide=spec.fill_colours)
    to_pixel = np.linalg.inv(to_part)
    mx, my = map_points(to_pixel, mouth)[0]
    half = 0.5 * _component(style, "mouth")["width"] / to_part[0, 0]
    best: tuple[int, int, int] | None = None  # (first ink row, column, run end)
    for col in range(int(mx - half), int(mx + half) + 1):
        column = alpha[int(my) :, col] > 0.5
        if not column.any():
            continue  # a gap in the line (lorelei draws the jaw with breaks)
        start = int(np.argmax(column))
        end = start + (int(np.argmin(column[start:])) if not column[start:].all() else column.size - start)
        if best is None or start > best[0]:
            best = (start, col, end)
    if best is None:
        raise ValueError(f"{style_name} {component} {variant}: no outline below the mouth")
    start, col, end = best
    y = int(my) + 0.5 * (start + end - 1)
    return tuple(float(v) for v in map_points(to_part, np.array([col, y]))[0])


def _default_part_centre(style: dict[str, Any], component: str, variant: str, part: str) -> np.ndarray:
    """Centre of ``part``'s box in ``component``'s coordinates, where the variant (or the canvas) places it."""

    def find(elements: list[dict[str, Any]], matrix: np.ndarray) -> np.ndarray | None:
        for el in elements:
            attrs = el.get("attributes") or {}
            t = attrs.get("transform") if isinstance(attrs.get("transform"), str) else None
            if el.get("type") == "component" and el.get("name") == part:
                comp = _component(style, part)
                return map_points(matrix @ parse_transform(t), [comp["width"] / 2, comp["height"] / 2])[0]
            found = find(el.get("children", []), matrix @ parse_transform(t))
            if found is not None:
                return found
        return None

    inside = find(_component(style, component)["variants"][variant]["elements"], np.eye(3))
    if inside is not None:
        return inside
    # Parts placed on the canvas beside the face (notionists): bring the canvas position into face coordinates.
    on_canvas = find(style["canvas"]["elements"], np.eye(3))
    face_ref = find_component_matrix(style, component)
    if on_canvas is None or face_ref is None:
        raise ValueError(f"cannot find where {part} sits relative to {component}")
    return map_points(np.linalg.inv(face_ref), on_canvas)[0]


def find_component_matrix(style: dict[str, Any], name: str) -> np.ndarray | None:
    """Matrix of the first canvas-level reference to component ``name`` (its own coordinates -> canvas)."""
    for el in style["canvas"]["elements"]:
        attrs = el.get("attributes") or {}
        if el.get("type") == "component" and el.get("name") == name:
            return parse_transform(attrs.get("transform"))
    return None


@functools.cache
def hair_over_part(style_name: str, variant: str, part: str) -> float:
    """Fraction of ``part``'s reach (its box grown by its largest move) that hair ``variant`` paints over the face.

    Only the hair drawn after the face counts (lorelei nests the face inside the hair, with back hair before it).
    """
    spec = STYLES[style_name]
    style = load_style(style_name)
    _, composer = compose_svg(_neutral_draw(style_name, variant), 64)
    comp = _component(style, part)
    w, h = comp["width"], comp["height"]
    move = spec.moves.get(part, Move())
    gx = move.dx + (move.scale[1] - 1) * w / 2
    gy = move.dy + (move.scale[1] - 1) * h / 2
    corners = np.array([[-gx, -gy], [w + gx, h + gy]])
    box = map_points(np.linalg.inv(composer.placed[spec.hair].matrix) @ composer.placed[part].matrix, corners)
    (x0, y0), (x1, y1) = box.min(0), box.max(0)
    elements = _component(style, spec.hair)["variants"][variant]["elements"]
    face_at = [i for i, el in enumerate(elements) if _contains(el, spec.face)]
    front = elements[face_at[-1] + 1 :] if face_at else elements
    if not front:
        return 0.0
    alpha, _ = _elements_alpha(style_name, spec.hair, front, (x0, y0, x1 - x0, y1 - y0), 96.0)
    return float((alpha > 0.5).mean())


def _neutral_draw(style_name: str, hair_variant: str) -> AvatarDraw:
    """Every shown part at its first variant, unmoved, default colours, with the given hair."""
    spec = STYLES[style_name]
    style = load_style(style_name)
    variants = {
        name: next(iter(_component(style, name)["variants"]))
        for name, comp in style["components"].items()
        if name not in spec.hidden and "extends" not in comp
    }
    variants[spec.hair] = hair_variant
    colours = {name: (entry.get("values") or ["#000000"])[0] for name, entry in style.get("colors", {}).items()}
    colours.update(dict.fromkeys(spec.skin_colours, SKIN_TONES[2]))
    colours.update(dict.fromkeys(spec.hair_colours, HAIR_PALETTES["brown"][0]))
    return AvatarDraw(style_name, variants, {}, [1.0, 1.0], colours, "brown", [0] * 3, [0] * 3, [255] * 3, False)


@functools.cache
def hair_area(style_name: str, variant: str) -> float:
    """Share of the image that hair ``variant`` covers on an unmoved avatar.

    One small render with the hair in magenta (no style paints faces magenta); shading overlays on the hair
    keep it magenta-ish, so a pixel counts when red and blue both far exceed green.
    """
    draw = _neutral_draw(style_name, variant)
    draw.colours.update(dict.fromkeys(STYLES[style_name].hair_colours, "#ff00ff"))
    rgb = rasterise(compose_svg(draw, 48)[0], 48).astype(np.int16)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return float(((r - g > 120) & (b - g > 120) & (np.abs(r - b) < 40)).mean())


#: Largest share of the eyes' / brows' reach that hair drawn over the face may cover.
HAIR_OVER_EYES = 0.02
HAIR_OVER_BROWS = 0.12
#: Least share of the image the hair must cover (a hair-colour label needs hair to see).
HAIR_MIN_AREA = 0.06


def hair_leaves_face_free(style_name: str, variant: str) -> bool:
    """Whether hair ``variant`` is worth drawing: it leaves the eyes (and mostly the brows) visible wherever the
    parts move, and shows enough hair for its colour to be seen."""
    return (
        hair_over_part(style_name, variant, "eyes") <= HAIR_OVER_EYES
        and hair_over_part(style_name, variant, "eyebrows") <= HAIR_OVER_BROWS
        and hair_area(style_name, variant) >= HAIR_MIN_AREA
    )


def _contains(element: dict[str, Any], component: str) -> bool:
    if element.get("type") == "component" and element.get("name") == component:
        return True
    return any(_contains(child, component) for child in element.get("children", []))


# ----------------------------------------------------------------------------------------------------
# Hair colour
# ----------------------------------------------------------------------------------------------------


def _lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB 0..255 (..., 3) -> CIELAB (D65)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def classify_hair(rgb: list[float] | np.ndarray) -> str:
    """Hair class of a (mean) colour: the class of the nearest palette colour in CIELAB."""
    target = _lab(np.asarray(rgb, dtype=np.float64))
    best, best_d = HAIR_CLASSES[0], math.inf
    for name, palette in HAIR_PALETTES.items():
        for hex_colour in palette:
            d = float(np.linalg.norm(_lab(np.array(hex_to_rgb(hex_colour))) - target))
            if d < best_d:
                best, best_d = name, d
    return best


def hair_coverage(draw: AvatarDraw, size: int) -> np.ndarray:
    """(size, size) float in [0, 1]: how much of each pixel is painted with the hair colour."""
    return colour_coverage(draw, size, STYLES[draw.style].hair_colours)


def colour_coverage(draw: AvatarDraw, size: int, names: tuple[str, ...]) -> np.ndarray:
    """(size, size) float in [0, 1]: how much of each pixel is painted with the colours ``names``.

    Rendered twice, with those colours set to black and to white: a pixel's change is its coverage (shading
    overlays drawn over them count in proportion).
    """
    images = []
    for probe in ("#000000", "#ffffff"):
        colours = dict(draw.colours)
        colours.update(dict.fromkeys(names, probe))
        svg, _ = compose_svg(draw, size, colours)
        images.append(rasterise(svg, size).astype(np.float64))
    return np.clip((images[1] - images[0]).mean(-1) / 255.0, 0.0, 1.0)


# ----------------------------------------------------------------------------------------------------
# Convenience
# ----------------------------------------------------------------------------------------------------


def render_avatar(draw: AvatarDraw, size: int) -> tuple[np.ndarray, dict[str, list[float]]]:
    """(size, size, 3) uint8 RGB image and its landmarks {name: [x, y]} (pixels, centres at integers)."""
    svg, composer = compose_svg(draw, size)
    return rasterise(svg, size), landmarks(draw, composer, size)


def points5(points: dict[str, list[float]]) -> list[list[float]]:
    """The five points in facetool order (left eye, right eye, nose, mouth left, mouth right)."""
    return [points[name] for name in POINTS5]
