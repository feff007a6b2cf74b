"""Annotated previews: boxes, 5 and 68 points drawn over the photo (Pillow, no torch)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .faces import Face

_POINT5_COLOURS = ((255, 60, 60), (60, 120, 255), (60, 220, 60), (255, 200, 0), (255, 0, 220))


def annotate(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    """image: (H, W, 3) uint8 RGB. Returns a copy with each face's box, index, 68 points (white) and 5 points."""
    pil = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(pil)
    scale = max(1.0, max(pil.size) / 800)
    width = max(1, int(round(2 * scale)))
    # The index is what --face N and per-face settings (--hair auto,black) name: readable at a glance, on a dark
    # plate so it shows on any photo.
    font = ImageFont.load_default(size=max(12, int(round(14 * scale))))
    for index, face in enumerate(faces):
        x1, y1, x2, y2 = (float(v) for v in face.box)
        r = max(1.5, 0.012 * max(face.width, face.height))
        draw.rectangle([x1, y1, x2, y2], outline=(0, 255, 0), width=width)
        label = f"face{index} {face.score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        top_left = (x1, max(0.0, y1 - (bottom - top) - 4 * scale))  # the label sits just above the box
        plate = [*top_left, top_left[0] + right - left + 4, top_left[1] + bottom - top + 4]
        draw.rectangle(plate, fill=(0, 0, 0))
        draw.text((top_left[0] + 2 - left, top_left[1] + 2 - top), label, fill=(0, 255, 0), font=font)
        if face.points68 is not None:
            for x, y in face.points68:
                draw.ellipse([x - r * 0.6, y - r * 0.6, x + r * 0.6, y + r * 0.6], fill=(255, 255, 255))
        for (x, y), colour in zip(face.points5, _POINT5_COLOURS, strict=True):
            draw.ellipse([x - r, y - r, x + r, y + r], outline=colour, width=width)
    return np.asarray(pil)
