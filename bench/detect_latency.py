"""Warm detection latency per detector and photo size (median of N runs after one warm-up run).

    python bench/detect_latency.py [--runs 5] [--detectors dlib,mtcnn,mediapipe]

Photos are built from the repo's sample (one face) by scaling and tiling, so the run needs nothing but the repo
and the fetched assets. Ratios are to the dlib detector with MTCNN proposals, flip averaging and refinement
off, in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facetool.imageio import read_image
from facetool.pipeline import close_detector, detect_faces, load_detector

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "astronaut.png"


def photos() -> dict[str, np.ndarray]:
    face = Image.fromarray(read_image(SAMPLE))
    out = {"512x512 (1 face)": np.asarray(face)}
    wide = Image.new("RGB", (1920, 1080), (120, 120, 120))
    for i, x in enumerate((100, 1100)):
        tile = face.resize((700, 700)) if i == 0 else face.resize((700, 700)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        wide.paste(tile, (x, 200))
    out["1920x1080 (2 faces)"] = np.asarray(wide)
    out["150x150 (1 face)"] = np.asarray(face.resize((150, 150), Image.Resampling.LANCZOS))
    return out


def timed(detector, image: np.ndarray, runs: int) -> tuple[float, int]:
    faces = detect_faces(detector, image)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        detect_faces(detector, image)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(faces)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--detectors", default="dlib,mtcnn,mediapipe")
    args = parser.parse_args()
    configs = [("dlib -D proposals=hog,flip/refine off", "dlib", ["proposals=hog", "flip=false", "refine=0"])]
    configs += [(name, name, []) for name in args.detectors.split(",")]
    images = photos()
    results: dict[tuple[str, str], tuple[float, int]] = {}
    for label, name, options in configs:
        _, det = load_detector(name, options)
        try:
            for photo, image in images.items():
                results[(label, photo)] = timed(det, image, args.runs)
        finally:
            close_detector(det)
    base_label = configs[0][0]
    print(f"{'detector':40} {'photo':20} {'faces':>5} {'ms':>8} {'÷ hog-only':>12}")
    for (label, photo), (seconds, count) in results.items():
        ratio = seconds / results[(base_label, photo)][0]
        print(f"{label:40} {photo:20} {count:5d} {seconds * 1000:8.1f} {ratio:12.2f}")


if __name__ == "__main__":
    main()
