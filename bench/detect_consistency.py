"""Face counts and landmark consistency of the dlib detector vs plain dlib, under transforms of real photos.

    python bench/detect_consistency.py [PHOTO ...]      (default: samples/astronaut.png)

No annotated photos are available offline, so this measures what can be measured without ground truth: each
photo (one face expected) is transformed — grayscale, down-scaled to 150 px, mirrored, rotated 15/30/45° — and
the 68 points found on the transformed photo are mapped back and compared (NME, inter-ocular) with the points
found on the original by the same detector. A detector that misses a face or moves its landmarks under these
transforms shows it here. "plain dlib" is HOG (upsample 1) + the 68-point predictor on HOG's box, as dlib's
examples run it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from facetool.assets import asset_path
from facetool.faces import nme
from facetool.imageio import read_image
from facetool.pipeline import detect_faces, load_detector

ROOT = Path(__file__).resolve().parent.parent


class PlainDlib:
    def __init__(self) -> None:
        import dlib

        self.dlib = dlib
        self.hog = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(asset_path("dlib-shape-predictor-68")))

    def detect(self, image):
        out = []
        for r in self.hog(image, 1):
            out.append(np.array([(p.x, p.y) for p in self.predictor(image, r).parts()], dtype=np.float64))
        return out


def transforms(image: np.ndarray):
    """(name, transformed image, function mapping points back to the original)."""
    h, w = image.shape[:2]
    pil = Image.fromarray(image)
    yield "grayscale", np.asarray(pil.convert("L").convert("RGB")), lambda p: p
    k = max(h, w) / 150
    small = pil.resize((round(w / k), round(h / k)), Image.Resampling.LANCZOS)
    yield "150 px", np.asarray(small), lambda p, k=k: (p + 0.5) * k - 0.5

    def unmirror(p):
        from facetool_dlib.detector import FLIP68

        q = p.copy()
        q[:, 0] = w - 1 - q[:, 0]
        return q[FLIP68]

    yield "mirrored", np.ascontiguousarray(image[:, ::-1]), unmirror
    centre = np.array([w / 2, h / 2])
    for deg in (15, 30, 45):
        rotated = pil.rotate(deg, resample=Image.Resampling.BICUBIC, center=tuple(centre))
        a = np.deg2rad(deg)

        def back(p, a=a):
            q = p - centre
            return np.c_[q[:, 0] * np.cos(a) - q[:, 1] * np.sin(a), q[:, 0] * np.sin(a) + q[:, 1] * np.cos(a)] + centre

        yield f"rotated {deg}°", np.asarray(rotated), back


def main() -> None:
    photos = [Path(p) for p in sys.argv[1:]] or [ROOT / "samples" / "astronaut.png"]
    ours = load_detector("dlib")[1]
    plain = PlainDlib()

    def run_ours(image):
        return [f.points68.astype(np.float64) for f in detect_faces(ours, image)]

    rows = {}
    for path in photos:
        image = read_image(path)
        for label, run in (("facetool dlib", run_ours), ("plain dlib", plain.detect)):
            found = run(image)
            if len(found) != 1:
                rows.setdefault((label, "original"), []).append((len(found), np.nan))
                continue
            reference = found[0]
            rows.setdefault((label, "original"), []).append((1, 0.0))
            for name, transformed, back in transforms(image):
                pts = run(transformed)
                # score the face nearest the reference (extra detections are counted, not scored)
                errors = [nme(back(p), reference) for p in pts]
                rows.setdefault((label, name), []).append((len(pts), min(errors) if errors else np.nan))
    print(f"{len(photos)} photo(s), one face each")
    print(f"{'detector':14} {'variant':12} {'faces found (want 1)':>22} {'missed':>7} {'mean NME':>9} {'max NME':>8}")
    for (label, name), values in rows.items():
        counts = [c for c, _ in values]
        errs = np.array([e for _, e in values], dtype=float)
        missed = int(np.isnan(errs).sum())
        mean = np.nanmean(errs) if missed < len(errs) else np.nan
        worst = np.nanmax(errs) if missed < len(errs) else np.nan
        counts_text = f"{min(counts)}–{max(counts)}"
        print(f"{label:14} {name:12} {counts_text:>22} {missed:7d} {mean:9.4f} {worst:8.4f}")


if __name__ == "__main__":
    main()
