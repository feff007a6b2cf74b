"""The ``generate`` task: faces made from noise, optionally shaped by a landmark layout.

A generate method's runner is called as ``runner(count, seed, layout) -> (count, 3, S, S)`` in [0, 1]: ``count``
images from noise drawn with ``seed`` (same seed, same images), each following ``layout`` when given.

Layout: where a face's parts sit, as ``{name: (x, y)}`` in the unit square of the method's aligned crop (pixel =
value * S, pixel centres at integers), names from :data:`LAYOUT_POINTS`. On disk (``--landmarks FILE``)::

    {"size": 128,
     "points": {"left_eye": [48.5, 58.9], "right_eye": [78.3, 58.9], "nose": [63.1, 73.4],
                "mouth_left": [53.4, 84.9], "mouth_right": [73.4, 84.9], "chin": [63.5, 101.9]}}

``size`` is the side of the square the pixel coordinates refer to (left / right as seen in the image); a method
uses the points it knows and says which it misses. ``--like IMAGE`` measures a layout from a photo's face: its
detected landmarks aligned with the method's template (:func:`layout_from_face`), or, when no detector finds a face
(a drawing, a cartoon), from the method's own landmark predictor if its runner has ``layout_from_image``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UsageError
from .faces import Face

#: Layout point names, in this order wherever a method stores them as an array.
LAYOUT_POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right", "chin")
#: iBUG 68-point index of the chin (menton).
CHIN_68 = 8

Layout = dict[str, tuple[float, float]]


def read_layout(path: Path) -> Layout:
    """A landmarks JSON file (format in the module docstring), or a ``facetool generate --json`` record holding one
    under ``"layout"`` -> unit-square layout; UsageError, in one line, for anything malformed."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"--landmarks {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"--landmarks {path}: not a JSON file ({err})") from None
    if isinstance(data, dict) and "points" not in data and "layout" in data:  # a `facetool generate --json` record
        if data["layout"] is None:
            raise UsageError(f"--landmarks {path}: this generate --json record has no layout (made without "
                             "--like or --landmarks)")  # fmt: skip
        data = data["layout"]
    if not isinstance(data, dict) or not isinstance(data.get("points"), dict):
        raise UsageError(f'--landmarks {path}: expected {{"size": S, "points": {{name: [x, y], ...}}}}')
    size = data.get("size")
    if not isinstance(size, (int, float)) or isinstance(size, bool) or size <= 0:
        raise UsageError(f"--landmarks {path}: size must be a positive number (the side the pixels refer to)")
    layout: Layout = {}
    for name, value in data["points"].items():
        if name not in LAYOUT_POINTS:
            raise UsageError(f"--landmarks {path}: unknown point {name!r}; known: {', '.join(LAYOUT_POINTS)}")
        ok = isinstance(value, (list, tuple)) and len(value) == 2
        if not ok or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in value):
            raise UsageError(f"--landmarks {path}: point {name} must be [x, y] numbers")
        layout[name] = ((float(value[0]) + 0.5) / size, (float(value[1]) + 0.5) / size)
    if not layout:
        raise UsageError(f"--landmarks {path}: no points")
    return layout


def layout_record(layout: Layout, size: int) -> dict[str, Any]:
    """A layout as the landmarks file holds it: ``{"size": size, "points": {name: [x, y]}}`` in pixels of a
    ``size``² crop (what :func:`read_layout` reads back)."""
    points = {k: [round(x * size - 0.5, 3), round(y * size - 0.5, 3)] for k, (x, y) in layout.items()}
    return {"size": size, "points": points}


def write_layout(path: Path, layout: Layout, size: int) -> None:
    """The inverse of :func:`read_layout` (pixels of a ``size``² crop)."""
    from .data.common import write_bytes_atomic

    write_bytes_atomic(Path(path), (json.dumps(layout_record(layout, size), indent=1) + "\n").encode())


def layout_from_face(face: Face, template: str, size: int) -> Layout:
    """A detected face -> its layout in the method's aligned crop: the 5 points (and the chin when the face has 68
    points) through the similarity that aligns the face to ``template``."""
    import torch

    from .align import estimate_alignment, get_template, transform_points

    points = np.asarray(face.points5, dtype=np.float64)
    names = list(LAYOUT_POINTS[:5])
    if face.points68 is not None:
        points = np.vstack([points, np.asarray(face.points68, dtype=np.float64)[CHIN_68]])
        names.append("chin")
    matrix = estimate_alignment(torch.as_tensor(face.points5, dtype=torch.float64)[None], get_template(template), size)
    moved = transform_points(torch.as_tensor(points)[None], matrix)[0].numpy()
    return {name: ((x + 0.5) / size, (y + 0.5) / size) for name, (x, y) in zip(names, moved, strict=True)}


def image_grid(images: Any, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """(N, 3, S, S) in [0, 1] -> one (H, W, 3) uint8 grid, white gaps, ceil(sqrt(N)) columns by default."""
    array = (np.asarray(images.detach().float().clamp(0, 1).cpu()) * 255).round().astype(np.uint8)
    count, _, height, width = array.shape
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    grid = np.full((rows * (height + pad) - pad, columns * (width + pad) - pad, 3), 255, np.uint8)
    for i, image in enumerate(array):
        r, c = divmod(i, columns)
        grid[r * (height + pad) : r * (height + pad) + height, c * (width + pad) : c * (width + pad) + width] = (
            image.transpose(1, 2, 0)
        )
    return grid
