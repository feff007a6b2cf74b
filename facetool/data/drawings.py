"""``facetool data drawings``: photo -> pseudo-drawing pairs for APDrawingGAN's pre-training.

APDrawingGAN (Yi et al. 2019, §6) pre-trains on photos paired with NPR drawings: two-tone XDoG line drawings
plus a jaw line drawn from landmarks, because the filter misses the jaw where skin meets skin with little
contrast. For each photo (largest face) this writes, in the output folder::

    photo/<id>.png              aligned RGB crop (template "portrait" unless --template)
    drawing/<id>.png            grayscale drawing: paper 255, ink 0, two tones with a one-pixel soft rim
    parts/<id>_<part>.png       masks (255 inside) of left_eye, right_eye, nose, mouth, hair, background
    manifest.jsonl              one record per pair; labels hold points5/points68 in crop pixels

How a drawing is made (:func:`render_drawing`):

1. XDoG lines of the crop's L* (:func:`facetool.data.npr.xdog_lines`), smoothed along the edge-tangent flow,
   with a small tone weight so darker areas (hair) draw a few more strands without filling; specks removed.
2. Optionally (``--hed``) HED's edge map, thinned to centre lines and drawn ~1.8 px wide, merged in: it adds
   object contours (face outline, hair silhouette, collars) that the DoG sees only in pieces.
3. Clutter removal: ink pieces lying mostly outside the person keep only their part on the person; pieces
   mostly on it stay whole (:func:`erase_outside`). The person region (:func:`facetool.data.parts.person_region`)
   is a head-and-shoulders rule, refined by the foreground mask of ``facetool data labels`` when there is one.
   Ink outside the photo's own area (a crop reaching past the photo edge repeats its border pixels, which
   draws streaks) is erased too.
4. The jaw (points68 0..16) as a centripetal Catmull-Rom curve, anti-aliased at 4×. Filter ink within a few
   pixels of it is replaced by it, so a jaw the filter did find is not drawn twice.

5. Lip contours (outer upper / lower lip from the 68 points), thin, but only where the filter left that
   contour mostly undrawn (:func:`missing_lip_lines`): soft closed mouths often give only the line between
   the lips. The nose is never added: the filter draws nostrils and tip on every face we looked at, and a
   landmark nostril line doubled them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer

from facetool.data.crops import alignment_matrix, crop_image, warp_points
from facetool.data.npr import XDoGParams

if TYPE_CHECKING:
    from facetool.faces import Face

REFERENCE_SIZE = 256
DEFAULT_LICENCE = "derived from the input photo: same licence as the photo"


@dataclass(frozen=True)
class DrawingStyle:
    """Everything that decides how a drawing looks; pixel values are for 256² and scale with the size.

    Attributes:
        xdog: the line filter's parameters.
        jaw_width: stroke width of the landmark jaw line, px.
        jaw_band: filter ink closer than this to the jaw curve is replaced by it, px.
        keep_share: an ink piece is erased when less than this share of it lies on the person.
        hed_low, hed_high: hysteresis thresholds on HED's probability (``--hed``).
        hed_width: stroke width of HED's thinned lines, px.
        lip_width: stroke width of a lip contour drawn from landmarks, px (only where the filter missed it).
        lip_reach, lip_coverage: a lip contour counts as drawn by the filter when ``lip_coverage`` of it has ink
            within ``lip_reach`` px.
        vary: per-item random variation of the filter (0 = none; 0.15 = up to ±15% on sigma and p).
    """

    xdog: XDoGParams = field(default_factory=XDoGParams)
    jaw_width: float = 2.2
    jaw_band: float = 4.0
    keep_share: float = 0.5
    hed_low: float = 0.4
    hed_high: float = 0.7
    hed_width: float = 1.8
    lip_width: float = 1.4
    lip_reach: float = 2.0
    lip_coverage: float = 0.5
    vary: float = 0.0

    def scaled(self, size: int) -> DrawingStyle:
        f = size / REFERENCE_SIZE
        return replace(
            self,
            xdog=self.xdog.scaled(size),
            jaw_width=self.jaw_width * f,
            jaw_band=self.jaw_band * f,
            hed_width=self.hed_width * f,
            lip_width=self.lip_width * f,
            lip_reach=self.lip_reach * f,
        )


# ---------------------------------------------------------------------------------------------- geometry


def photo_footprint(matrix: np.ndarray, photo_hw: tuple[int, int], size: int, margin: float = 1.0) -> np.ndarray:
    """(size, size) bool: crop pixels that sample inside the photo, at least ``margin`` photo px from its edge."""
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    px = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    py = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    h, w = photo_hw
    return (px >= margin - 0.5) & (px <= w - 0.5 - margin) & (py >= margin - 0.5) & (py <= h - 0.5 - margin)


# ---------------------------------------------------------------------------------------------- drawing


def erase_outside(drawing: np.ndarray, region: np.ndarray, keep_share: float, min_area: float = 0.0) -> np.ndarray:
    """Erase ink outside ``region`` without chopping strokes that belong to the person.

    An ink piece (8-connected, soft rims included) with at least ``keep_share`` of its ink in ``region`` is
    kept whole, so a hair strand or collar reaching a little past the region's edge stays intact. A piece
    mostly outside (clutter, or a long contour running out of the region) keeps only its part inside; leftover
    bits smaller than ``min_area`` px are dropped.

    drawing: (H, W) uint8, 255 paper. region: (H, W) bool. Returns a new array.
    """
    from scipy import ndimage

    from facetool.data.npr import remove_specks

    grown = drawing < 250
    labels, count = ndimage.label(grown, structure=np.ones((3, 3), bool))
    if count == 0:
        return drawing.copy()
    ink = (255.0 - drawing.astype(np.float64)).ravel()
    total = np.bincount(labels.ravel(), weights=ink, minlength=count + 1)
    inside = np.bincount(labels.ravel(), weights=ink * region.ravel(), minlength=count + 1)
    mostly_outside = inside < keep_share * np.maximum(total, 1e-9)
    mostly_outside[0] = False
    out = drawing.copy()
    clip = mostly_outside[labels] & ~region
    if not clip.any():
        return out
    out[clip] = 255
    return remove_specks(out, min_area)


def jaw_curve(points68: np.ndarray) -> np.ndarray:
    """The jaw contour (iBUG points 0..16) as a dense smooth polyline (M, 2)."""
    from facetool.data.npr import catmull_rom

    return catmull_rom(np.asarray(points68, dtype=np.float64)[0:17], samples_per_segment=8)


def render_drawing(
    crop: np.ndarray,
    points68: np.ndarray | None,
    style: DrawingStyle,
    *,
    person: np.ndarray | None = None,
    footprint: np.ndarray | None = None,
    hed_prob: Any = None,
) -> np.ndarray:
    """A pseudo-drawing of an aligned crop.

    Args:
        crop: (S, S, 3) uint8 RGB.
        points68: (68, 2) landmarks in crop pixels (for the jaw), or None (no jaw line).
        style: already scaled to S (``DrawingStyle().scaled(S)``).
        person: (S, S) bool, where the person is; ink pieces mostly outside are erased. None keeps all.
        footprint: (S, S) bool, the photo's own area in the crop; ink outside is erased. None keeps all.
        hed_prob: optional (1, 1, S, S) tensor, HED's edge probability of the crop.

    Returns:
        (S, S) uint8: 255 paper, 0 ink.
    """
    from facetool.data import npr
    from facetool.imageio import from_tensor, to_tensor

    size = crop.shape[0]
    params = style.xdog
    drawing = npr.remove_specks(from_tensor(npr.xdog_lines(to_tensor(crop), params)), params.min_area)
    if hed_prob is not None:
        centres = npr.thin_edges(hed_prob, style.hed_low, style.hed_high)
        hed = npr.remove_specks(from_tensor(npr.lines_from_centres(centres, style.hed_width)), params.min_area * 2)
        drawing = np.minimum(drawing, hed)
    if footprint is not None:
        drawing[~footprint] = 255
    if person is not None:
        drawing = erase_outside(drawing, person, style.keep_share, params.min_area)
    if points68 is not None:
        lips = missing_lip_lines(drawing, points68, style.lip_reach, style.lip_coverage)
        curve = jaw_curve(points68)
        band = npr.draw_strokes(size, [curve], 2 * style.jaw_band) < 128
        drawing[band] = 255
        drawing = np.minimum(drawing, npr.draw_strokes(size, [curve], style.jaw_width))
        if lips:
            drawing = np.minimum(drawing, npr.draw_strokes(size, lips, style.lip_width))
    return drawing


def missing_lip_lines(drawing: np.ndarray, points68: np.ndarray, reach: float, coverage: float) -> list[np.ndarray]:
    """The outer upper and lower lip contours (iBUG 48..54 and 54..59, 48) that the filter did not draw.

    A contour counts as drawn when at least ``coverage`` of the points along it have ink within ``reach`` px.
    Soft, closed mouths often give only the line between the lips; open smiles already carry lip and teeth
    edges, where an extra outline would only clutter.

    Returns: smooth polylines (M, 2) to draw, possibly empty.
    """
    from scipy import ndimage

    from facetool.data.npr import catmull_rom

    p = np.asarray(points68, dtype=np.float64)
    contours = (p[48:55], np.vstack([p[54:60], p[48:49]]))
    r = max(1, round(reach))
    near_ink = ndimage.binary_dilation(drawing < 128, structure=np.ones((2 * r + 1, 2 * r + 1), bool))
    size = drawing.shape[0]
    missing = []
    for contour in contours:
        curve = catmull_rom(contour, samples_per_segment=6)
        ij = np.clip(np.round(curve).astype(int), 0, size - 1)
        if near_ink[ij[:, 1], ij[:, 0]].mean() < coverage:
            missing.append(curve)
    return missing


# ---------------------------------------------------------------------------------------------- one pair


@dataclass
class Pair:
    """One photo/drawing pair with its masks and crop-space labels."""

    photo: np.ndarray  # (S, S, 3) uint8
    drawing: np.ndarray  # (S, S) uint8
    parts: dict[str, np.ndarray]  # name -> (S, S) uint8
    labels: dict[str, Any]


def make_pair(
    image: np.ndarray,
    face: Face,
    size: int = 256,
    template: str = "portrait",
    style: DrawingStyle | None = None,
    *,
    foreground: np.ndarray | None = None,
    hed: Any = None,
) -> Pair:
    """Align one face, draw it and cut its part masks.

    Args:
        image: (H, W, 3) uint8 RGB photo.
        face: the face (points5 needed; points68 for the jaw line and the face region).
        size: crop side S.
        template: alignment template name (facetool.align.TEMPLATES).
        style: drawing style at 256² (scaled here); default :class:`DrawingStyle`.
        foreground: optional (H, W) person mask of the photo (non-zero = person).
        hed: optional HED model (facetool.nets.hed.load_hed()), or any callable (1, 3, S, S) RGB in [0, 1] ->
            (1, 1, S, S) edge probability.
    """
    from facetool.data.parts import part_boxes, part_masks, person_region

    style = (style or DrawingStyle()).scaled(size)
    matrix = alignment_matrix(face.points5, template, size)
    crop = crop_image(image, matrix, size)
    points5 = warp_points(face.points5, matrix)
    points68 = warp_points(face.points68, matrix) if face.points68 is not None else None
    fg = None
    if foreground is not None:
        fg = crop_image(np.asarray(foreground).astype(np.uint8) * 255, matrix, size, mask=True)
    footprint = photo_footprint(matrix, image.shape[:2], size)
    slack = None
    if fg is not None:
        from scipy import ndimage

        # A little slack: the mask edge sits on the silhouette, whose own line falls just outside it.
        slack = ndimage.binary_dilation(fg, iterations=max(1, round(3 * size / REFERENCE_SIZE)))
    person = person_region(points5, size, slack)
    hed_prob = None
    if hed is not None:
        import torch

        from facetool.imageio import to_tensor

        with torch.inference_mode():
            hed_prob = hed(to_tensor(crop))
    drawing = render_drawing(crop, points68, style, person=person, footprint=footprint, hed_prob=hed_prob)
    parts = part_masks(points5, size, points68, fg)
    labels: dict[str, Any] = {
        "points5": _rounded(points5),
        "points68": _rounded(points68) if points68 is not None else None,
        "parts": {k: list(v) for k, v in part_boxes(points5, size).items()},
        "matrix": _rounded(matrix, 6),
        "template": template,
        "size": size,
        "mask": "labels" if fg is not None else "rule",
    }
    if face.pose is not None:
        labels["pose"] = {k: round(float(v), 2) for k, v in face.pose.items()}
    return Pair(crop, drawing, parts, labels)


def _rounded(a: np.ndarray, digits: int = 2) -> list:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


# ---------------------------------------------------------------------------------------------- the command


@dataclass
class _Job:
    photo: Path
    face: Face
    mask_path: Path | None
    labels_from: str


def _photo_ids(photos: list[Path]) -> list[str]:
    """Item ids: the file stem, or stem_suffix when two photos share a stem."""
    stems: dict[str, int] = {}
    for p in photos:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    return [p.stem if stems[p.stem] == 1 else f"{p.stem}_{p.suffix.lstrip('.').lower()}" for p in photos]


def _labels_for(photo: Path, root: Path) -> dict[str, Any] | None:
    from facetool.data.faceinfo import read_label_file

    for folder in dict.fromkeys([photo.parent, root]):
        data = read_label_file(folder / "labels" / f"{photo.stem}.json", photo)
        if data is not None:
            data["_folder"] = str(folder)
            return data
    return None


def _find_jobs(photos: list[Path], ids: list[str], root: Path, manifest) -> tuple[dict[str, _Job], int]:
    """Faces for every photo not yet done: from labels/<stem>.json, else FaceLabeler. Returns (jobs, no_face)."""
    from facetool.data.common import _progress
    from facetool.data.faceinfo import FaceLabeler, faces_from_json
    from facetool.imageio import read_image

    jobs: dict[str, _Job] = {}
    unlabelled = []
    no_face = 0
    for photo, item_id in zip(photos, ids, strict=True):
        if manifest.is_done(item_id, source=photo):
            continue
        data = _labels_for(photo, root)
        if data is None:
            unlabelled.append((photo, item_id))
            continue
        faces = faces_from_json(data)
        if not faces:
            no_face += 1
            continue
        mask = data.get("mask")
        mask_path = Path(data["_folder"]) / mask if mask else None
        jobs[item_id] = _Job(photo, faces[0], mask_path, "labels")
    if unlabelled:
        with FaceLabeler(mesh=False) as labeler:
            for photo, item_id in _progress(unlabelled, "finding faces"):
                faces = labeler.label(read_image(photo))
                if faces:
                    jobs[item_id] = _Job(photo, faces[0], None, "dlib")
                else:
                    no_face += 1
    return jobs, no_face


def make_drawings(
    photos_dir: Path,
    out: Path,
    *,
    size: int = 256,
    seed: int = 0,
    use_hed: bool = False,
    template: str = "portrait",
    vary: float = 0.0,
) -> tuple[int, int, int]:
    """Make the pairs for every photo in ``photos_dir``; returns (made, skipped as done, photos without a face)."""
    from facetool.align import get_template
    from facetool.data.common import Manifest, file_record, item_seed, rng_for, run_items, save_png, torch_threads
    from facetool.data.labels import list_photos
    from facetool.errors import UsageError
    from facetool.imageio import read_image

    get_template(template)  # UsageError for an unknown name, before any work
    if not 64 <= size <= 2048:
        raise UsageError(f"--size {size}: use a crop side between 64 and 2048")
    if not 0.0 <= vary <= 0.5:
        raise UsageError(f"--vary {vary}: use a value between 0 and 0.5")
    photos_dir = Path(photos_dir)
    if not photos_dir.is_dir():
        raise UsageError(f"{photos_dir}: not a folder of photos")
    # The photos `facetool data labels` labels: a data command's manifest, else the folder's images, else photos/.
    listed = list_photos(photos_dir)
    photos = [path for path, _ in listed]
    licences = {path: licence for path, licence in listed}
    ids = _photo_ids(photos)
    index_of = {item_id: i for i, item_id in enumerate(ids)}
    out = Path(out)
    manifest = Manifest.open(
        out, "drawings", {"size": size, "seed": seed, "hed": use_hed, "template": template, "vary": vary}
    )
    jobs, no_face = _find_jobs(photos, ids, photos_dir, manifest)
    import torch

    threads = torch.get_num_threads()
    hed = None
    if use_hed and jobs:
        from facetool.nets.hed import load_hed

        model = load_hed()

        def hed(crop: torch.Tensor) -> torch.Tensor:
            # VGG16 is the one big op: it gets every thread, the small map ops around it only one (below).
            with torch_threads(threads):
                return model(crop)

    base_style = DrawingStyle(vary=vary)

    def make(_: int, item_id: str) -> dict[str, Any]:
        job = jobs[item_id]
        index = index_of[item_id]  # position among all photos: stable whatever is already done
        style = replace(base_style, xdog=base_style.xdog.jittered(rng_for(seed, index), vary))
        image = read_image(job.photo)
        foreground = _read_mask(job.mask_path, image.shape[:2])
        pair = make_pair(image, job.face, size, template, style, foreground=foreground, hed=hed)
        files = {}
        photo_rel = Path("photo") / f"{item_id}.png"
        digest = save_png(out / photo_rel, pair.photo)
        files["photo"] = file_record(out, out / photo_rel, digest)
        drawing_path = out / "drawing" / f"{item_id}.png"
        files["drawing"] = file_record(out, drawing_path, save_png(drawing_path, pair.drawing))
        for name, mask in pair.parts.items():
            path = out / "parts" / f"{item_id}_{name}.png"
            files[f"part_{name}"] = file_record(out, path, save_png(path, mask))
        labels = dict(pair.labels, labels_from=job.labels_from, hed=hed is not None)
        if vary > 0:
            labels["xdog"] = style.xdog.as_dict()
        return {
            "id": item_id,
            "file": str(photo_rel),
            "sha256": digest,
            "seed": item_seed(seed, index),
            "source": job.photo.relative_to(photos_dir).as_posix(),
            "licence": licences.get(job.photo) or DEFAULT_LICENCE,
            "files": files,
            "labels": labels,
        }

    def source_of(item_id: str) -> Path:
        return photos[index_of[item_id]]

    todo = [i for i in ids if i in jobs or manifest.is_done(i, source=source_of(i))]
    # Every op but HED is small (256² maps): a second thread only adds synchronisation, and on a busy machine
    # it made them 10-30x slower (threads spin waiting for a core).
    with torch_threads(1):
        made, skipped = run_items(manifest, todo, make, "drawing", source_of=source_of)
    return made, skipped, no_face


def _read_mask(path: Path | None, shape: tuple[int, int]) -> np.ndarray | None:
    """A labels foreground mask (grayscale PNG, person > 127) at the photo's size, or None when unusable."""
    if path is None or not path.is_file():
        return None
    from PIL import Image

    with Image.open(path) as im:
        mask = np.asarray(im.convert("L"))
    if mask.shape != tuple(shape):
        return None  # made for another version of the photo: the rule is safer than a misplaced mask
    return mask > 127


HELP = """Photo -> drawing pairs for APDrawingGAN pre-training: aligned crop, NPR line drawing (XDoG + landmark
jaw line, optionally HED contours) and part masks (eyes, nose, mouth, hair, background).

Photos: those of PHOTOS_DIR's manifest (facetool data photos), else its images, else those of PHOTOS_DIR/photos.
Faces come from PHOTOS_DIR/labels/<stem>.json (facetool data labels) when present, else dlib finds them (the
largest face of each photo). Same seed, same bytes; an interrupted run resumes. --seed only matters with
--vary, which varies line weight and sensitivity per pair.

[b]Examples[/b]

  facetool data drawings data/photos --out data/drawings

  facetool data drawings data/photos --out data/drawings512 --size 512 --hed

  facetool data drawings data/photos --out data/drawings_varied --vary 0.15 --seed 3
"""


def register_cli(data_app: typer.Typer) -> None:
    @data_app.command("drawings", help=HELP, no_args_is_help=True)
    def drawings(
        photos_dir: Path = typer.Argument(..., help="Folder of photos (labels in PHOTOS_DIR/labels/ are used)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (created; re-running resumes)."),
        size: int = typer.Option(256, "--size", help="Crop side in pixels."),
        seed: int = typer.Option(0, "--seed", min=0, help="Base seed (per-pair seeds derive from it)."),
        hed: bool = typer.Option(False, "--hed", help="Add HED contours (asset hed-bsds500, ~1 s a pair)."),
        template: str = typer.Option("portrait", "--template", help="Alignment template (facetool.align)."),
        vary: float = typer.Option(0.0, "--vary", help="Random per-pair variation of the line filter, 0..0.5."),
    ) -> None:
        made, skipped, no_face = make_drawings(
            photos_dir, out, size=size, seed=seed, use_hed=hed, template=template, vary=vary
        )
        extra = f", {no_face} without a face" if no_face else ""
        typer.echo(f"drawings: made {made}, skipped {skipped} already done{extra} -> {out}")
