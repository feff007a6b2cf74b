"""What the end-to-end benchmarks share: the photo resized to a long side, the method's default runner and the
default detector, loaded once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def load_e2e(method: str, photo: Path, side: int) -> dict[str, Any]:
    """{image (H, W, 3) uint8 with long side ``side``, size_wh, spec, weights, runner, det_spec, detector}."""
    from PIL import Image

    from facetool.imageio import read_image
    from facetool.methods import resolve_weights
    from facetool.pipeline import load_detector
    from facetool.plugins import get_host

    image = read_image(photo)
    scale = side / max(image.shape[:2])
    size_wh = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    image = np.asarray(Image.fromarray(image).resize(size_wh, Image.Resampling.BICUBIC))
    spec = get_host().generators.get(method)
    weights = resolve_weights(spec, None)
    det_spec, detector = load_detector(None)
    return {"image": image, "size_wh": size_wh, "spec": spec, "weights": weights,
            "runner": spec.load(None, "cpu", weights), "det_spec": det_spec, "detector": detector}  # fmt: skip
