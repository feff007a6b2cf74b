"""``facetool data loomis``: photo -> Loomis head-construction drawing pairs, turned by each face's 3D head pose.

For each photo the largest face is aligned to a template crop; its pose (MediaPipe's yaw / pitch / roll, turned
into the crop's frame) rotates the 3D construction of :mod:`facetool.data.loomis_draw`, whose scale and position are
then fitted so that its brow, nose-base and chin points land on the face's 68 landmarks. Labels come from
``<photos>/labels/<stem>.json`` (``facetool data labels``) when present, else dlib + MediaPipe run here.

Output folder::

    photo/<id>.png     aligned crop (RGB)
    loomis/<id>.png    construction lines, dark on white (grayscale)
    overlay/<id>.png   the lines over the photo faded to 35 % on white (with --over-photo)
    manifest.jsonl     one record per pair; labels: pose (crop frame), fit, key points in crop pixels
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

HELP = """Photo -> Loomis-method head construction pairs (ball, side plane, centre line, brow / nose / chin lines,
jaw), turned with each face's 3D head pose and fitted to its landmarks.

Face labels come from <photos>/labels/<stem>.json (facetool data labels), else dlib + MediaPipe run here (slower).
Photos with no face or no head pose are skipped, and tried again on the next run.

[b]Examples[/b]

  facetool data loomis data/photos --out data/loomis

  facetool data loomis data/photos --out data/loomis512 --size 512 --over-photo
"""

FADE = 0.35  # share of the photo in the --over-photo background (the rest is white)
MAX_FIT_RMS = 0.1  # largest landmark residual of a usable fit, in ball radii


def register_cli(data_app: typer.Typer) -> None:
    @data_app.command("loomis", help=HELP, no_args_is_help=True)
    def loomis_cmd(
        photos: Path = typer.Argument(..., help="Folder of photos (or a facetool data photos folder)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (resumable: made pairs are kept)."),
        size: int = typer.Option(256, "--size", help="Side of the aligned crop and drawing in pixels."),
        seed: int = typer.Option(
            0, "--seed", min=0, help="Base seed (recorded per item; the drawing itself is exact)."
        ),
        over_photo: bool = typer.Option(False, "--over-photo", help="Also write the lines over the faded photo."),
        template: str = typer.Option("portrait", "--template", help="Alignment template of the crop."),
        line_width: float | None = typer.Option(None, "--line-width", help="Stroke width in pixels (size/128)."),
    ) -> None:
        from facetool.cli.common import out as console

        made, skipped, failed = make_loomis_pairs(
            photos, out, size=size, seed=seed, over_photo=over_photo, template=template, line_width=line_width
        )
        note = f", {len(failed)} not made (first: {failed[0]})" if failed else ""
        console.print(f"loomis: made {made}, skipped {skipped} already done{note} -> {out}", highlight=False)
        if failed and not made and not skipped:  # nothing to train on: a failure, not a finished job
            from facetool.errors import FacetoolError

            raise FacetoolError(f"no pair made (first: {failed[0]})")


# ----------------------------------------------------------------------------------------------------
# The job
# ----------------------------------------------------------------------------------------------------


def make_loomis_pairs(
    photos: Path,
    out: Path,
    *,
    size: int = 256,
    seed: int = 0,
    over_photo: bool = False,
    template: str = "portrait",
    line_width: float | None = None,
) -> tuple[int, int, list[str]]:
    """Make the pairs of every photo not already done in ``out``.

    Returns (made, skipped as already done, ["<photo>: <why>" for photos without a usable face]).
    """
    from facetool.align import get_template
    from facetool.data.common import Manifest, _progress, _source_digest, torch_threads
    from facetool.errors import UsageError

    photos, out = Path(photos), Path(out)
    if not photos.is_dir():
        raise UsageError(f"{photos}: not a folder of photos")
    if out.resolve() == photos.resolve():
        raise UsageError(f"--out {out}: must not be the photos folder itself")
    if not 32 <= size <= 4096:
        raise UsageError(f"--size {size}: choose 32 to 4096 pixels")
    if line_width is not None and not 0.25 <= line_width <= size / 8:
        raise UsageError(f"--line-width {line_width}: choose 0.25 to {size / 8:g} pixels")
    align_template = get_template(template)
    width = line_width if line_width is not None else max(1.0, size / 128)
    sources = list_photos(photos)

    manifest = Manifest.open(out, "loomis")
    settings = {"size": size, "template": template, "line_width": width}
    for record in manifest.records.values():
        made_with = {k: record.get("labels", {}).get(k) for k in settings}
        if made_with != settings:
            raise UsageError(f"--out {out}: made with {made_with}, not {settings}; use another folder")

    job = _LoomisJob(photos, out, size, seed, over_photo, align_template, width)
    todo = [
        (i, item_id)
        for i, item_id in enumerate(sources)
        if not _is_done(manifest, item_id, over_photo, sources[item_id]["path"])
    ]
    made, failed = 0, []
    try:
        with torch_threads(1):
            for index, item_id in _progress(todo, "loomis"):
                record, why = job.make(index, item_id, sources[item_id])
                if record is None:
                    where = str(sources[item_id]["path"])
                    failed.append(why if why.startswith(where) else f"{where}: {why}")
                    continue
                record["source_sha256"] = _source_digest(sources[item_id]["path"])
                manifest.append(record)
                made += 1
    finally:
        job.close()
        manifest.compact()
    return made, len(sources) - len(todo), failed


def _is_done(manifest, item_id: str, over_photo: bool, source: Path) -> bool:
    if not manifest.is_done(item_id, source=source):
        return False
    return not over_photo or "overlay" in manifest.records[item_id].get("files", {})


def list_photos(folder: Path) -> dict[str, dict[str, Any]]:
    """Photos of a folder by id (file stem): {id: {"path": Path, "source": str, "licence": str | None}}.

    The same photos ``facetool data labels`` labels (a data command's manifest, else the folder's images, else its
    ``photos/`` subfolder's), so that labels/<stem>.json files match.
    """
    from facetool.data.labels import list_photos as labelled_photos
    from facetool.errors import UsageError

    photos: dict[str, dict[str, Any]] = {}
    for path, licence in labelled_photos(folder):
        if path.stem in photos:
            raise UsageError(f"{folder}: {photos[path.stem]['path'].name} and {path.name} share the id {path.stem}")
        photos[path.stem] = {"path": path, "source": str(path.relative_to(folder)), "licence": licence}
    return photos


class _LoomisJob:
    """Per-run state: where things go, the template, and the face labeler (made only when a photo has no labels)."""

    def __init__(self, photos: Path, out: Path, size: int, seed: int, over_photo: bool, template, width: float):
        self.photos, self.out, self.size, self.seed = photos, out, size, seed
        self.over_photo, self.template, self.width = over_photo, template, width
        self.labeler = None

    def close(self) -> None:
        if self.labeler is not None:
            self.labeler.close()

    def face_of(self, path: Path, image):
        """The largest face with 68 points and a pose, from the labels file or found now; (face, why-not)."""
        from facetool.data.faceinfo import FaceLabeler, faces_from_json, read_label_file

        data = None
        for folder in dict.fromkeys([self.photos, path.parent]):  # labels of the folder, or beside the photo
            data = data or read_label_file(folder / "labels" / f"{path.stem}.json", path)
        if data is not None:
            faces = faces_from_json(data)
        else:
            if self.labeler is None:
                self.labeler = FaceLabeler()
            faces = self.labeler.label(image)
        if not faces:
            return None, "no face found"
        face = faces[0]
        if face.points68 is None or face.pose is None:
            return None, "no 68 landmarks / head pose for its largest face"
        return face, ""

    def make(self, index: int, item_id: str, source: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        from facetool.data.common import file_record, item_seed, save_png
        from facetool.errors import ImageError
        from facetool.imageio import read_image

        try:
            image = read_image(source["path"])
        except ImageError as err:
            return None, str(err)  # one unreadable photo should not stop a long run
        face, why = self.face_of(source["path"], image)
        if face is None:
            return None, why
        pair = loomis_pair(image, face, self.size, self.template, self.width, self.over_photo)
        if pair is None:
            return None, "its landmarks do not fit a head construction"
        files = {}
        for role in ("photo", "loomis", "overlay"):
            if role in pair:
                path = self.out / role / f"{item_id}.png"
                files[role] = file_record(self.out, path, save_png(path, pair[role]))
        labels = {**pair["labels"], "size": self.size, "template": self.template.name, "line_width": self.width}
        return {
            "id": item_id,
            "file": files["photo"]["path"],
            "sha256": files["photo"]["sha256"],
            "seed": item_seed(self.seed, index),
            "source": source["source"],
            # The drawing is made by facetool from the photo's landmarks: the pair keeps the photo's licence.
            "licence": source["licence"] or "as the source photo",
            "files": files,
            "labels": labels,
        }, ""


# ----------------------------------------------------------------------------------------------------
# One pair
# ----------------------------------------------------------------------------------------------------


def loomis_pair(image, face, size: int, template, width: float, over_photo: bool = False) -> dict[str, Any] | None:
    """Aligned crop, construction drawing (and overlay) of one face.

    Args:
        image: (H, W, 3) uint8 RGB photo.
        face: a :class:`~facetool.faces.Face` with points5, points68 and pose (photo frame).
        size: crop side S; template: an :class:`~facetool.align.AlignTemplate`; width: stroke width in pixels.

    Returns:
        {"photo": (S, S, 3) uint8, "loomis": (S, S) uint8, "overlay": (S, S, 3) uint8 (when asked),
        "labels": JSON-ready dict}; None when the landmarks cannot be those of one head (the fit's residual is
        over 10 % of the ball's radius, or its scale is not positive).
    """
    import math

    from facetool.data import loomis_draw as ld
    from facetool.data.crops import alignment_matrix, crop_image, warp_points

    # The drawing pairs' own crop (antialiased when the photo is shrunk), so both kinds of pairs share photos.
    m = alignment_matrix(face.points5, template.name, size)  # (2, 3) photo -> crop pixels
    crop = crop_image(image, m, size)
    p68 = warp_points(face.points68, m)

    # The crop turns the photo by the similarity's angle (clockwise for a positive angle, y being down).
    angle = math.degrees(math.atan2(m[1, 0], m[0, 0]))
    pose = ld.rotate_pose_in_image({k: float(face.pose[k]) for k in ("yaw", "pitch", "roll")}, angle)
    yaw, pitch, roll = pose["yaw"], pose["pitch"], pose["roll"]
    placement = ld.fit_placement(yaw, pitch, roll, p68)
    if not (placement.scale > 0 and placement.rms < MAX_FIT_RMS * placement.scale):
        return None  # measured on 40 generated faces: rms is 0.0-0.022 of the scale
    lines = ld.place(ld.construction_lines(yaw, pitch, roll, placement.lower), placement)
    drawing = ld.render_lines(lines, size, width)

    keys = {name: placement.apply(p) for name, p in ld.key_points(yaw, pitch, roll, placement.lower).items()}
    labels = {
        "pose": {k: round(v, 2) for k, v in pose.items()},
        "pose_photo": {k: round(float(face.pose[k]), 2) for k in ("yaw", "pitch", "roll")},
        "scale": round(placement.scale, 3),
        "centre": [round(float(v), 2) for v in placement.centre],
        "lower_third": round(placement.lower, 3),
        "fit_rms": round(placement.rms, 3),
        "visible_sides": ld.visible_sides(yaw, pitch, roll),
        "key_points": {name: [round(float(v), 2) for v in p] for name, p in keys.items()},
        "crop_matrix": [[round(float(v), 6) for v in row] for row in m],
    }
    pair: dict[str, Any] = {"photo": crop, "loomis": drawing, "labels": labels}
    if over_photo:
        pair["overlay"] = overlay_lines(crop, drawing)
    return pair


def overlay_lines(photo, drawing, fade: float = FADE):
    """Lines over the photo faded towards white: (S, S, 3) and (S, S) uint8 -> (S, S, 3) uint8."""
    import numpy as np

    paper = 255.0 - fade * (255.0 - photo.astype(np.float32))
    ink = drawing.astype(np.float32)[:, :, None] / 255.0
    return np.clip(paper * ink + 0.5, 0, 255).astype(np.uint8)
