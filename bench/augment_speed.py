"""The two run-time image ops of a layout-conditioned training step, each against the plain form it replaced.

    python bench/augment_speed.py [--batch 40] [--size 128] [--repeats 10]

- ``tps_warp`` (``-T parts``, the parts predictor's recipe): our spline evaluation (two matmuls) vs kornia's
  ``warp_image_tps`` on the same fit, 6 points moved by N(0, 3²) px plus the 8 border anchors.
- ``gaussian_heatmaps`` (the layout generator's input at every block, approach A's heatmaps): separable
  (two 1-D exps and a product) vs one exp per pixel.

Median seconds of ``--repeats`` calls, interleaved so machine load hits both alike, and the ratio; also the largest
difference between the two outputs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def kornia_tps(image: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """tps_warp as it was: the same frame and fit, kornia's per-pixel product."""
    from kornia.geometry.transform import get_tps_transform, warp_image_tps

    batch, _, height, width = image.shape
    w, h = width - 1, height - 1
    frame = [[0, 0], [w / 2, 0], [w, 0], [0, h / 2], [w, h / 2], [0, h], [w / 2, h], [w, h]]
    anchors = torch.tensor(frame, dtype=image.dtype).expand(batch, -1, -1)
    scale = torch.tensor([2 / w, 2 / h], dtype=image.dtype)

    def unit(points: torch.Tensor) -> torch.Tensor:
        return torch.cat([points, anchors], 1) * scale - 1

    kernel, affine = get_tps_transform(unit(target), unit(source))
    return warp_image_tps(image, unit(source), kernel, affine, align_corners=True, padding_mode="border")


def exp_per_pixel(points: torch.Tensor, size: tuple[int, int], sigma: float) -> torch.Tensor:
    height, width = size
    ys = torch.arange(height, dtype=points.dtype).view(1, 1, height, 1)
    xs = torch.arange(width, dtype=points.dtype).view(1, 1, 1, width)
    dx, dy = xs - points[..., 0, None, None], ys - points[..., 1, None, None]
    return torch.exp(-(dx**2 + dy**2) / (2 * sigma**2))


def timed(calls: dict, repeats: int) -> dict[str, tuple[float, torch.Tensor]]:
    times: dict[str, list[float]] = {name: [] for name in calls}
    outputs = {}
    for _ in range(repeats + 1):  # the first round warms up
        for name, call in calls.items():
            start = time.perf_counter()
            outputs[name] = call()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(t[1:]), outputs[name]) for name, t in times.items()}


def main() -> None:
    from facetool.data.augment import tps_warp
    from facetool.nets.layers import gaussian_heatmaps

    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=40)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    b, s = args.batch, args.size
    image = torch.rand(b, 3, s, s, generator=gen)
    source = torch.rand(b, 6, 2, generator=gen) * s * 0.5 + s * 0.25
    target = source + (torch.randn(b, 6, 2, generator=gen) * 3 * s / 128).clamp(-7.5, 7.5)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {b}, {s}²")
    print(f"{'op':<20} {'new s':>9} {'old s':>9} {'old/new':>8} {'max |diff|':>11}")
    rows = {
        "tps_warp": {"new": lambda: tps_warp(image, source, target), "old": lambda: kornia_tps(image, source, target)},
        "gaussian_heatmaps": {
            "new": lambda: gaussian_heatmaps(source, (s, s), 3.0 * s / 128),
            "old": lambda: exp_per_pixel(source, (s, s), 3.0 * s / 128),
        },
    }
    for op, calls in rows.items():
        found = timed(calls, args.repeats)
        (new, a), (old, o) = found["new"], found["old"]
        print(f"{op:<20} {new:9.4f} {old:9.4f} {old / new:8.1f} {(a - o).abs().max().item():11.2e}")


if __name__ == "__main__":
    main()
