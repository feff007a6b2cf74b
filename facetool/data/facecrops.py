"""``facetool data crops``: aligned face crops of labelled photos — the photo domain of unpaired methods.

Each face of each photo (from ``PHOTOS_DIR/labels``, made by ``facetool data labels``) becomes one item: the crop
``photo/<stem>_<k>.png`` at ``--template`` / ``--size`` and labels carrying what an unpaired method conditions on,
in crop pixels::

    {"photo": "000012.png", "face_index": 0, "template": "avatar", "size": 128, "matrix": [[...], [...]],
     "points5": [[x, y], ...], "points68": [...] or null, "pose": {...} or null,
     "hair": "black" | "brown" | "blonde" | "grey" | null, "hair_confidence": float or null}

The hair class is the labels' one, which ``facetool data labels`` measures for the largest face only: other faces
get ``null`` (a consumer decides whether to skip them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

HELP = """Aligned face crops of labelled photos (one item per face) with their landmarks, pose and hair class in
crop pixels: the photo side of unpaired training (photo <-> cartoon). Needs PHOTOS_DIR/labels from facetool data
labels.

[b]Examples[/b]

  facetool data crops data/photos --out data/photo-crops --template avatar --size 128
"""


def _round(points: Any) -> list[list[float]]:
    return [[round(float(x), 3), round(float(y), 3)] for x, y in points]


class CropsJob:
    """Plans the face ids of a labelled photo folder, then cuts each face's crop on demand (resumable)."""

    def __init__(self, photos_dir: Path, out: Path, size: int, template: str, seed: int) -> None:
        from facetool.data.common import Manifest, read_manifest
        from facetool.data.faceinfo import faces_from_json, read_label_file
        from facetool.data.labels import list_photos
        from facetool.errors import FacetoolError, UsageError

        self.photos_dir, self.out, self.size, self.template, self.seed = photos_dir, out, size, template, seed
        self.manifest = Manifest.open(out, "crops")
        for record in self.manifest.records.values():  # one folder, one geometry
            made = record.get("labels", {})
            if (made.get("size"), made.get("template")) != (size, template):
                raise UsageError(f"--out {out}: holds crops made with --size {made.get('size')} --template "
                                 f"{made.get('template')}; use another folder")  # fmt: skip
        self.origin = {Path(r.get("file", "")).name: r for r in read_manifest(photos_dir)}
        self.plan: dict[str, tuple[Path, dict[str, Any], Any, int]] = {}
        self.ids: list[str] = []
        unlabelled = 0
        for photo, _ in list_photos(photos_dir):
            label_path = photos_dir / "labels" / f"{photo.stem}.json"
            try:
                data = read_label_file(label_path, photo)
                faces = faces_from_json(data) if data is not None else None
            except (ValueError, KeyError, TypeError) as err:
                raise FacetoolError(f"{label_path}: unreadable labels ({err}); re-run facetool data labels") from None
            if faces is None:
                unlabelled += 1
                continue
            for k, face in enumerate(faces):
                item_id = f"{photo.stem}_{k}"
                if item_id in self.plan:
                    raise UsageError(f"{photo}: two photos in {photos_dir} share the name {photo.stem!r}")
                self.plan[item_id] = (photo, data, face, k)
                self.ids.append(item_id)
        if unlabelled and not self.ids:
            raise UsageError(f"{photos_dir}: no labels/ for its photos; run facetool data labels {photos_dir} first")
        self.unlabelled = unlabelled
        self._cache: tuple[Path, Any] | None = None

    def make(self, index: int, item_id: str) -> dict[str, Any]:
        from facetool.data.common import file_record, item_seed, save_png
        from facetool.data.crops import alignment_matrix, crop_image, warp_points
        from facetool.errors import FacetoolError
        from facetool.imageio import read_image

        photo, data, face, k = self.plan[item_id]
        if self._cache is None or self._cache[0] != photo:
            self._cache = (photo, read_image(photo))
        image = self._cache[1]
        if (data.get("height"), data.get("width")) not in ((None, None), image.shape[:2]):
            raise FacetoolError(f"{photo}: its labels are for another image size; re-run facetool data labels")
        matrix = alignment_matrix(face.points5, self.template, self.size)
        rel = f"photo/{item_id}.png"
        digest = save_png(self.out / rel, crop_image(image, matrix, self.size))
        hair = data.get("hair") if k == 0 else None  # labels measure the largest face's hair only
        origin = self.origin.get(photo.name, {})
        return {
            "id": item_id,
            "file": rel,
            "sha256": digest,
            "seed": item_seed(self.seed, index),
            "source": origin.get("source", str(photo)),
            "licence": origin.get("licence", "as the source photo"),
            "files": {"photo": file_record(self.out, self.out / rel, digest)},
            "labels": {
                "photo": photo.name,
                "face_index": k,
                "template": self.template,
                "size": self.size,
                "matrix": [[round(float(v), 6) for v in row] for row in matrix],
                "points5": _round(warp_points(face.points5, matrix)),
                "points68": None if face.points68 is None else _round(warp_points(face.points68, matrix)),
                "pose": face.pose,
                "hair": hair.get("class") if isinstance(hair, dict) else None,
                "hair_confidence": hair.get("confidence") if isinstance(hair, dict) else None,
            },
        }


def make_crops(photos_dir: Path, out: Path, size: int = 128, template: str = "avatar", seed: int = 0) -> dict:
    """Run the job; returns {"made", "skipped", "faces", "unlabelled"}."""
    from facetool.align import get_template
    from facetool.data.common import run_items, torch_threads
    from facetool.errors import UsageError

    photos_dir, out = Path(photos_dir), Path(out)
    if not photos_dir.is_dir():
        raise UsageError(f"{photos_dir}: not a folder of photos")
    if out.resolve() == photos_dir.resolve():
        raise UsageError(f"--out {out}: choose a folder other than the photo folder")
    if not 32 <= size <= 1024:
        raise UsageError(f"--size must be between 32 and 1024, got {size}")
    get_template(template)
    job = CropsJob(photos_dir, out, size, template, seed)
    with torch_threads(1):
        made, skipped = run_items(job.manifest, job.ids, job.make, "crops", source_of=lambda i: job.plan[i][0])
    return {"made": made, "skipped": skipped, "faces": len(job.ids), "unlabelled": job.unlabelled}


def register_cli(data_app: typer.Typer) -> None:
    @data_app.command("crops", help=HELP)
    def crops_command(
        photos_dir: Path = typer.Argument(..., help="Folder of photos with labels/ (facetool data labels)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
        size: int = typer.Option(128, "--size", help="Crop side in pixels."),
        template: str = typer.Option("avatar", "--template", help="Alignment template of facetool.align."),
        seed: int = typer.Option(0, "--seed", min=0, help="Recorded per item (the crops themselves are not random)."),
    ) -> None:
        result = make_crops(photos_dir, out, size=size, template=template, seed=seed)
        extra = f", {result['unlabelled']} unlabelled photo(s) left out" if result["unlabelled"] else ""
        typer.echo(f"crops: made {result['made']}, skipped {result['skipped']}{extra} -> {out}")
