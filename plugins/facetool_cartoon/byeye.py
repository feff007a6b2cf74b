"""``--hair auto`` against hair colours a person named by eye (:data:`BY_EYE`), alone and among neighbours.

The data factory's hair labels come from the very labeller ``--hair auto`` runs, so agreeing with them says how
stable the reading is, not whether it is right (the labels and a person agree on 0.60 of the 80 test faces, 0.79
counting the colours a person would also accept: model card, "`--hair auto` by eye"). This scores the pick against
the person instead, on the photos the labels were written for, found by their sha256.

    python -m facetool_cartoon.byeye PHOTOS [--crowd] [--drawn]

PHOTOS: a ``facetool data photos`` folder labelled by ``facetool data labels`` (the faces' points are read from
``labels/<stem>.json``). ``--crowd``: each person between two others, as in a group photo (:func:`three_across`).
``--drawn``: the avatars drawn too (shipped net), their hair read by the hair meter and scored the same way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

BY_EYE = Path(__file__).parent / "hair_by_eye.json"
# Neighbours' faces this many eye distances from the person's: heads side by side, as people stand in a group
# photo (about 400 px on the factory's 512² photos, whose eyes are ~125 px apart).
NEIGHBOUR_SPACING = 3.2


def three_across(photos: list[np.ndarray], centres: list[np.ndarray], spacing: float) -> tuple[np.ndarray, float]:
    """Three photos of one scale (left neighbour, person, right neighbour; (H, W, 3) uint8 each, the same H) and
    their face centres (x, y) -> (one picture with the faces ``spacing`` px apart in a row, every column taken from
    the photo whose face is nearest; the x offset of the person's photo in it)."""
    height, width = photos[1].shape[:2]
    offset = spacing
    person_x = offset + centres[1][0]
    offsets = [person_x + (k - 1) * spacing - centres[k][0] for k in range(3)]
    columns = np.arange(int(round(width + 2 * spacing)))
    owner = np.abs(columns[None, :] - (person_x + (np.arange(3)[:, None] - 1) * spacing)).argmin(0)
    canvas = np.empty((height, len(columns), 3), np.uint8)
    for k in range(3):
        mine = columns[owner == k]
        # past a photo's side its edge column repeats, as the crop's own padding would
        canvas[:, mine] = photos[k][:, np.clip(mine - int(round(offsets[k])), 0, width - 1)]
    return canvas, offset


def hair_by_eye(photos: str | Path, crowd: bool = False, labels: str | Path = BY_EYE,
                drawn: Any = None) -> dict[str, Any]:  # fmt: skip
    """How often ``--hair auto`` names what a person named, on the by-eye photos found in ``photos``:
    {"faces", "strict" (the colour named), "lenient" (any colour the person would accept), "misses": [[file, eye,
    pick]]}. Faces read as stylize reads them: aligned to the avatar template at 128², 68 points, padding ``auto``;
    no hair measured counts as brown, as in the runner. With ``crowd`` each person stands between the photos before
    and after it (:func:`three_across`). ``drawn``: a :class:`.runner.CartoonRunner` (``--hair auto``): each avatar
    is drawn too and the hair meter's reading of it scored the same way ("drawn_strict", "drawn_lenient") — what a
    user sees."""
    import torch

    from facetool.align import crop_faces, estimate_alignment, get_template, transform_points
    from facetool.data.common import read_manifest
    from facetool.imageio import read_image

    from .hair import photo_hair
    from .runner import TEMPLATE

    folder = Path(photos)
    named = json.loads(Path(labels).read_text())["faces"]
    found = []
    for record in read_manifest(folder):
        eye = named.get(record.get("sha256", ""))
        faces_file = folder / "labels" / f"{Path(record['file']).stem}.json"
        if eye is None or eye[0] == "none" or not faces_file.is_file():
            continue
        faces = json.loads(faces_file.read_text())["faces"]
        if faces and faces[0].get("points68"):
            face = faces[0]
            points = np.array(face["points5"], np.float32), np.array(face["points68"], np.float32)
            found.append((record["file"], eye, read_image(folder / record["file"]), points))
    template = get_template(TEMPLATE)
    hits, lenient, misses = 0, 0, []
    drawn_hits, drawn_lenient = 0, 0
    if drawn is not None:
        from .hair import avatar_hair, load_meter

        meter = load_meter()
    for i, (name, eye, image, (points5, points68)) in enumerate(found):
        if crowd:
            trio = [found[(i + 1) % len(found)], found[i], found[i - 1]]
            spacing = NEIGHBOUR_SPACING * float(np.linalg.norm(points5[1] - points5[0]))
            image, dx = three_across([t[2] for t in trio], [t[3][0].mean(0) for t in trio], spacing)
            points5, points68 = points5 + [dx, 0], points68 + [dx, 0]
        photo = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255
        matrices = estimate_alignment(torch.tensor(points5, dtype=torch.float32)[None], template, 128)
        crop = crop_faces(photo, matrices, 128, "auto")[0]
        moved = [transform_points(torch.tensor(p, dtype=torch.float32)[None], matrices)[0] for p in (points5, points68)]
        pick = photo_hair(crop, *moved) or "brown"
        hits += pick == eye[0]
        lenient += pick in eye
        if pick not in eye:
            misses.append([name, eye[0], pick])
        if drawn is not None:
            seen = avatar_hair(meter, drawn(crop[None], moved[0][None], moved[1][None]))[0]
            drawn_hits += seen == eye[0]
            drawn_lenient += seen in eye
    count = max(len(found), 1)
    record = {"faces": len(found), "strict": round(hits / count, 3), "lenient": round(lenient / count, 3)}
    if drawn is not None:
        record |= {"drawn_strict": round(drawn_hits / count, 3), "drawn_lenient": round(drawn_lenient / count, 3)}
    return record | {"misses": misses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", help="a facetool data photos folder, labelled (facetool data labels)")
    parser.add_argument("--crowd", action="store_true", help="each person between two others")
    parser.add_argument("--drawn", action="store_true", help="also draw each avatar (shipped net) and score its hair")
    args = parser.parse_args()
    runner = None
    if args.drawn:
        from . import CartoonRunOptions, _load

        # crowded: the person alone, as stylize isolates each face of a group photo before drawing it
        runner = _load(CartoonRunOptions(isolate="blur" if args.crowd else "auto"), "cpu", None)
    print(json.dumps(hair_by_eye(args.photos, args.crowd, drawn=runner)))


if __name__ == "__main__":
    main()
