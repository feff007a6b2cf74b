"""Warm ``facetool stylize`` of a 1-megapixel photo with one face, end to end, split by stage.

    python bench/stylize_e2e.py [--method apdrawing] [--rounds 7] [--photo PHOTO] [--side 1024]

The photo (default: the repo's astronaut, resized so its long side is ``--side``: 1024² = 1.05 MP) is stylized
``--rounds`` times after one warm-up with the method's default weights and the default detector, in one process.
Stages: detect (the detector on the whole photo), align (similarity fit + crop), G (the method's runner on the
crop), paste (inverse warp + feathered blend onto the canvas); medians of the rounds. File reading and writing
are left out (they depend on the disk, not on facetool). Also printed: the generator's conv GFLOP at the crop
size and its achieved GFLOP/s ÷ fp32 matmul GFLOP/s (2048², timed in the same rounds).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default="apdrawing")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--photo", type=Path, default=ROOT / "samples" / "astronaut.png")
    parser.add_argument("--side", type=int, default=1024, help="long side the photo is resized to")
    args = parser.parse_args()

    from e2e_setup import load_e2e

    from facetool.align import crop_faces, estimate_alignment, get_template, paste_back, transform_points
    from facetool.imageio import from_tensor, to_tensor
    from facetool.nets.layers import conv_flops
    from facetool.pipeline import detect_faces

    setup = load_e2e(args.method, args.photo, args.side)
    image, size_wh, spec, weights = setup["image"], setup["size_wh"], setup["spec"], setup["weights"]
    runner, det_spec, detector = setup["runner"], setup["det_spec"], setup["detector"]
    size, template = spec.input_size, get_template(spec.template)
    takes_points = getattr(runner, "takes_points5", False)
    background = spec.background

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    stages: dict[str, list[float]] = {"detect": [], "align": [], "G": [], "paste": [], "total": []}
    matmul: list[float] = []
    faces_found = 0
    for round_index in range(args.rounds + 1):
        t0 = time.perf_counter()
        faces = detect_faces(detector, image, det_spec.name)[:1]
        t1 = time.perf_counter()
        photo = to_tensor(image)
        points = torch.as_tensor(np.stack([f.points5 for f in faces]), dtype=torch.float32)
        matrices = estimate_alignment(points, template, size)
        crops = crop_faces(photo, matrices, size)
        t2 = time.perf_counter()
        extras = {"points5": transform_points(points, matrices)} if takes_points else {}
        result = runner(crops, **extras).clamp(0, 1)
        result = result.expand(-1, 3, -1, -1) if result.shape[1] == 1 else result
        t3 = time.perf_counter()
        canvas = photo if background == "photo" else torch.ones_like(photo)
        from_tensor(paste_back(canvas, result, matrices, feather=0.08, darken=background == "white")[0].clamp(0, 1))
        t4 = time.perf_counter()
        start = time.perf_counter()
        a @ b
        mm = time.perf_counter() - start
        if round_index == 0:
            faces_found = len(faces)
            continue  # warm-up
        for name, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True):
            value_list = stages[name]
            value_list.append(value)
        matmul.append(mm)

    peak = 2 * 2048**3 / min(matmul) / 1e9
    net = spec.network(None, weights)
    flops = conv_flops(net, (1, 3, size, size))
    g = statistics.median(stages["G"])
    print(f"method {spec.name} at {size}², weights {weights}; detector {det_spec.name}; photo {size_wh[0]}×"
          f"{size_wh[1]} ({size_wh[0] * size_wh[1] / 1e6:.2f} MP), {faces_found} face; threads "
          f"{torch.get_num_threads()}; medians of {args.rounds} warm rounds")  # fmt: skip
    for name, values in stages.items():
        print(f"  {name:6} {1000 * statistics.median(values):8.1f} ms")
    print(f"  generator: {flops / 1e9:.2f} GFLOP (convs), {flops / 1e9 / g:.1f} GFLOP/s achieved end to end in G; "
          f"fp32 matmul {peak:.1f} GFLOP/s; ratio {flops / 1e9 / g / peak:.2f}")  # fmt: skip
    total = statistics.median(stages["total"])
    print(f"  target: total <= 1.0 s -> {'met' if total <= 1.0 else 'NOT met'} ({total:.2f} s)")


if __name__ == "__main__":
    main()
