"""Fit the dlib plugin's mean 68-point shape in HOG-box units from a folder of face photos.

    python bench/calibrate_dlib.py PHOTOS... -o plugins/facetool_dlib/mean_shape.json

For each upright frontal face HOG finds, the predictor's 68 points (on HOG's own box, as dlib was trained) are
expressed in box units (box = unit square); the mean over faces is the template the plugin fits crops to.
"""

from __future__ import annotations

import argparse
import json

import dlib
import numpy as np

from facetool.assets import asset_path
from facetool.imageio import expand_inputs, read_image


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("photos", nargs="+")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    hog = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(asset_path("dlib-shape-predictor-68")))
    shapes = []
    for path in expand_inputs(args.photos):
        image = read_image(path)
        for r in hog(image, 1):
            pts = np.array([(p.x, p.y) for p in predictor(image, r).parts()], dtype=np.float64)
            side = (r.width() + r.height()) / 2
            centre = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
            shapes.append((pts - centre) / side + 0.5)
    mean = np.mean(shapes, axis=0)
    data = {"faces": len(shapes), "mean68": [[round(float(x), 5), round(float(y), 5)] for x, y in mean]}
    with open(args.output, "w") as fh:
        json.dump(data, fh)
    print(f"{len(shapes)} faces -> {args.output}")


if __name__ == "__main__":
    main()
