"""Faces photographed tight, as users give them: the card's measure of the crop paddings (``-O padding``).

    python -m facetool_cartoon.tight --photos PHOTOS --cartoons CARTOONS [--scales 1.1,1.4,2.0]
                                     [--paddings border,edge-colour,auto] [--limit N] [--json]

``PHOTOS``: a labelled photo folder (``facetool data photos`` + ``facetool data labels``). Each photo's largest
face is cut out as a square of side SCALE × the larger side of its 68 points' box and resized to 112² (a face box
from a group photo, or a tight portrait, like insightface's 112² samples), then drawn with each padding and the
photo's own hair colour; the labelled points moved with the cut stand in for a detector's, so every padding sees
the same alignment. Per scale and padding: ``hair`` (the hair meter reads the colour asked), ``nme`` (the
evaluation regressor on the avatar against those points, as ``facetool evaluate``), ``change`` (mean absolute
difference from the uncut photo's avatar) and ``fid`` against CARTOONS' test split; the uncut photos as a row too.

``evaluate -O tight=F`` cuts crops that are already aligned; this cuts the photo before alignment, which is what
decides how much of the crop lies past the photo (``facetool.align.AUTO_EDGE_COLOUR_BELOW``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

TIGHT_SIDE = 112


def _tight_cut(image: np.ndarray, points68: np.ndarray, points5: np.ndarray, scale: float):
    """(H, W, 3) photo -> (112², 3) square around the face, ``scale`` × its landmark box, and the 5 points in it."""
    from PIL import Image

    low, high = points68.min(0), points68.max(0)
    half = scale * (high - low).max() / 2
    x0, y0 = np.round((low + high) / 2 - half)
    side = int(round(2 * half))
    cut = Image.fromarray(image).crop((int(x0), int(y0), int(x0) + side, int(y0) + side))
    factor = TIGHT_SIDE / side
    return np.asarray(cut.resize((TIGHT_SIDE, TIGHT_SIDE), Image.BICUBIC)), (points5 - [x0, y0]) * factor


def measure_tight(photos: str | Path, cartoons: str | Path | None, scales=(1.1, 1.4, 2.0),
                  paddings=("border", "edge-colour", "auto"), limit: int | None = None,
                  weights: str | Path | None = None) -> dict[str, dict[str, float]]:  # fmt: skip
    """{"uncut" | "<scale> <padding>": {"hair", "nme", "change", "fid" (with ``cartoons``), "faces"}}."""
    from facetool.align import crop_faces, estimate_alignment, get_template, transform_points
    from facetool.data.faceinfo import faces_from_json, read_label_file
    from facetool.data.labels import list_photos
    from facetool.imageio import read_image, to_tensor
    from facetool.methods import resolve_weights
    from facetool.plugins import get_host

    from .evaluation import EVAL_REGRESSOR, aligned_nme
    from .hair import avatar_hair, load_meter
    from .landmarks import load_regressor

    spec = get_host().generators.get("cartoon")
    runner = spec.load(spec.options(hair="brown"), "cpu", resolve_weights(spec, weights))
    template = get_template("avatar")
    regressor, meter = load_regressor(EVAL_REGRESSOR, "cpu"), load_meter(device="cpu")
    values: dict[str, dict[str, list]] = {}

    def draw(photo: np.ndarray, points5: np.ndarray, padding: str, colour: str, key: str, uncut=None):
        points = torch.as_tensor(points5, dtype=torch.float32)[None]
        matrix = estimate_alignment(points, template, 128)
        crop = crop_faces(to_tensor(photo), matrix, 128, padding)
        points = transform_points(points, matrix)
        runner.hair = colour
        with torch.inference_mode():
            avatar = runner(crop, points)
            row = values.setdefault(key, {"hair": [], "nme": [], "change": [], "avatars": []})
            row["hair"].append(avatar_hair(meter, avatar)[0] == colour)
            row["nme"].append(float(aligned_nme(regressor(avatar), points)[0]))
            row["change"].append(0.0 if uncut is None else float((avatar - uncut).abs().mean()))
            row["avatars"].append(avatar[0])
        return avatar

    done = 0
    for path, _ in list_photos(Path(photos)):
        data = read_label_file(Path(photos) / "labels" / f"{path.stem}.json")
        faces = faces_from_json(data) if data else None
        colour = ((data or {}).get("hair") or {}).get("class")
        if not faces or colour is None or faces[0].points68 is None:
            continue
        image, face = read_image(path), faces[0]
        points68, points5 = np.asarray(face.points68), np.asarray(face.points5)
        uncut = draw(image, points5, "border", colour, "uncut")
        for scale in scales:
            cut, moved = _tight_cut(image, points68, points5, scale)
            for padding in paddings:
                draw(cut, moved, padding, colour, f"{scale} {padding}", uncut)
        done += 1
        if limit and done >= limit:
            break
    real = None
    if cartoons:
        from facetool.data.datasets import ManifestDataset
        from facetool.metrics.features import load_backbone

        backbone = load_backbone()
        split = "test" if (Path(cartoons) / "splits.json").is_file() else None
        held = ManifestDataset(cartoons, roles=("cartoon",), split=split, size=128)
        real = backbone(torch.stack([held[i]["cartoon"] for i in range(len(held))]))
    report: dict[str, dict[str, float]] = {}
    for key, row in values.items():
        report[key] = {name: round(float(np.mean(row[name])), 4) for name in ("hair", "nme", "change")}
        report[key]["faces"] = len(row["hair"])
        if real is not None:
            from facetool.metrics.fid import fid_from_features

            report[key]["fid"] = round(fid_from_features(backbone(torch.stack(row["avatars"])), real), 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="labelled photo folder")
    parser.add_argument("--cartoons", type=Path, default=None, help="cartoon folder for FID (its test split)")
    parser.add_argument("--scales", default="1.1,1.4,2.0")
    parser.add_argument("--paddings", default="border,edge-colour,auto")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    report: Any = measure_tight(args.photos, args.cartoons, tuple(float(s) for s in args.scales.split(",")),
                                tuple(args.paddings.split(",")), args.limit, args.weights)  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for key, row in report.items():
        print(f"{key:>18}  " + "  ".join(f"{name} {value}" for name, value in row.items()))


if __name__ == "__main__":
    main()
