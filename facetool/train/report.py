"""What a run shows a person: the sample grid and the loss-curve picture (Pillow only, no plotting library)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Colours of the curves, one per loss (cycled).
PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))


def image_grid(columns: Sequence[Any], gap: int = 2) -> np.ndarray:
    """Columns of images side by side, one row per item.

    columns: tensors (B, C, H, W) in [0, 1] with C = 1 or 3 and one B; each column may have its own H, W (resized
    to the first column's). Returns (B·H + gaps, N·W + gaps, 3) uint8 with white gaps.
    """
    import torch
    import torch.nn.functional as F

    first = columns[0]
    b, _, h, w = first.shape
    tiles = []
    for column in columns:
        column = column.detach().float().cpu().clamp(0, 1)
        if column.shape[1] == 1:
            column = column.expand(-1, 3, -1, -1)
        if column.shape[-2:] != (h, w):
            column = F.interpolate(column, size=(h, w), mode="bilinear", align_corners=False)
        tiles.append(column[:, :3])
    grid = torch.ones(3, b * h + (b - 1) * gap, len(tiles) * w + (len(tiles) - 1) * gap)
    for i in range(b):
        for j, column in enumerate(tiles):
            grid[:, i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = column[i]
    return (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def smooth(values: Sequence[float], span: int) -> list[float]:
    """Exponential moving average with the given span (≈ the number of steps it averages over)."""
    alpha = 2.0 / (span + 1.0)
    out, running = [], None
    for v in values:
        running = v if running is None else running + alpha * (v - running)
        out.append(running)
    return out


def loss_curve(history: Sequence[Mapping[str, float]], width: int = 900, panel_height: int = 160) -> np.ndarray:
    """One panel per loss over the steps: the raw values faint, an EMA bold; the y range printed on each panel.

    history: records {"step": int, <loss>: float, …}. Returns (H, W, 3) uint8.
    """
    from PIL import Image, ImageDraw

    names = sorted({k for record in history for k in record if k != "step"})
    names = names or ["(no losses)"]
    margin_left, margin = 70, 18
    height = len(names) * (panel_height + margin) + margin
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for index, name in enumerate(names):
        top = margin + index * (panel_height + margin)
        box = (margin_left, top + 14, width - 10, top + panel_height)
        draw.rectangle(box, outline=(180, 180, 180))
        draw.text((margin_left, top), name, fill=(0, 0, 0))
        points = [(r["step"], r[name]) for r in history if name in r and math.isfinite(r[name])]
        if len(points) < 2:
            continue
        steps = [p[0] for p in points]
        values = [p[1] for p in points]
        trend = smooth(values, max(5, len(values) // 50))
        lo, hi = min(values), max(values)
        # Outlier spikes would flatten the panel: clip its range at the 1st / 99th percentile of the raw values.
        ordered = sorted(values)
        lo = ordered[int(0.01 * (len(ordered) - 1))]
        hi = ordered[int(0.99 * (len(ordered) - 1))]
        if hi <= lo:
            hi = lo + 1e-6
        s0, s1 = steps[0], max(steps[-1], steps[0] + 1)

        def xy(step: float, value: float, box=box, s0=s0, s1=s1, lo=lo, hi=hi) -> tuple[float, float]:
            x = box[0] + (box[2] - box[0]) * (step - s0) / (s1 - s0)
            v = min(max(value, lo), hi)
            return x, box[3] - (box[3] - box[1]) * (v - lo) / (hi - lo)

        colour = PALETTE[index % len(PALETTE)]
        faint = tuple(int(c + (255 - c) * 0.7) for c in colour)
        draw.line([xy(s, v) for s, v in zip(steps, values, strict=True)], fill=faint, width=1)
        draw.line([xy(s, v) for s, v in zip(steps, trend, strict=True)], fill=colour, width=2)
        draw.text((4, box[1]), f"{hi:.4g}", fill=(90, 90, 90))
        draw.text((4, box[3] - 10), f"{lo:.4g}", fill=(90, 90, 90))
        draw.text((box[0], box[3] + 2), f"step {s0}", fill=(90, 90, 90))
        draw.text((box[2] - 70, box[3] + 2), f"step {steps[-1]}", fill=(90, 90, 90))
    return np.asarray(image)
