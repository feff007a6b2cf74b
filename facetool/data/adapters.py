"""``facetool data import``: real datasets, in their published layouts, as a facetool manifest.

Every training method reads one format (``manifest.jsonl``, see :mod:`facetool.data.common`), so each dataset is
read once here and described there. Source files are **referenced in place** by absolute path plus sha256 (an
import of LFW or CartoonSet100k copies nothing); only files that have to be *derived* are written into the output
folder, with paths relative to it — APDrawing's side-by-side photo|drawing sheets are cut into ``photo/<id>.png``
and ``drawing/<id>.png``. A re-run re-checks the hashes, keeps what is unchanged and drops items whose source
files are gone, so the manifest mirrors the source folder.

Layouts read (each checked; a wrong one fails with one line saying what was expected):

- ``apdrawing`` — APDrawingDB as published with yiranran/APDrawingGAN (layout checked against that repository's
  ``data/aligned_dataset.py``, ``options/base_options.py`` and ``preprocess/readme.md``): ``data/<phase>/<name>.png``
  is the 512×512 aligned photo A and the artist's drawing B concatenated left|right (512×1024; the loader cuts the
  width in halves); ``landmark/ALL/<name>.txt`` holds 5 lines ``x y`` (integer pixels of the aligned 512² image:
  left eye, right eye, nose, mouth left, mouth right as seen — the loader swaps lines 0/1 on a horizontal flip);
  ``mask/ALL/<name>.png`` is the background mask (>= 0.5 = the person). Square images (``data/test_single``)
  are photos without a drawing.
- ``cartoonset`` — google/cartoonset ``cartoonset10k/`` / ``cartoonset100k/``: ``csX.png`` with ``csX.csv``
  beside it, one line per attribute: ``"name", variant index, variant count`` -> ``labels.attributes``. The
  10 ``hair_color`` swatches are unnamed, so ``labels.hair`` (black / brown / blonde / grey, the cartoon
  generator's classes) and ``labels.hair_rgb`` are measured per index from the top of the cartoons' heads.
- ``bitmoji`` — a folder of Bitmoji face images (e.g. Kaggle's ``bitmojis/*.png``), read recursively.
- ``lfw`` — ``lfw/<Person_Name>/<Person_Name>_0001.jpg``; the folder name is the identity.
- ``folder`` — any folder of images (recursive); identity unknown.
- ``paired`` — ``A/`` and ``B/`` with images matched by relative path without suffix; unmatched ones are reported.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from facetool.errors import UsageError

FORMATS = ("apdrawing", "cartoonset", "bitmoji", "lfw", "folder", "paired")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm"}

LICENCES = {
    "apdrawing": "APDrawingDB (Yi et al., CVPR 2019): research use, see the dataset's terms",
    "cartoonset": "CC BY 4.0 (Google LLC, Cartoon Set)",
    "bitmoji": "Bitmoji artwork (c) Snap Inc.; research use, see the dataset page's terms",
    "lfw": "LFW (UMass Amherst): research use; photos collected from the web, copyright of their owners",
    "folder": "unknown (user-supplied; set --licence)",
    "paired": "unknown (user-supplied; set --licence)",
}


@dataclass
class PlannedItem:
    """One manifest item before its files are hashed: ``refs`` are source files referenced in place; ``derive``
    (when set) writes derived files into the output folder and returns ``{role: (path, sha256)}``."""

    id: str
    refs: dict[str, Path]
    labels: dict[str, Any] = field(default_factory=dict)
    derive: Callable[[Path, str], dict[str, tuple[Path, str]]] | None = None


@dataclass
class Scan:
    items: list[PlannedItem]
    main_role: str
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- helpers


def _images_under(folder: Path, exclude: Path | None = None) -> list[Path]:
    """Image files below ``folder`` (recursive, sorted; hidden files and folders skipped, and ``exclude`` — the
    import's own output when it lies inside the source)."""
    folder = folder.resolve()
    skip = exclude.resolve().relative_to(folder).parts if exclude and exclude.resolve().is_relative_to(folder) else None
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).parts
        if any(part.startswith(".") for part in rel) or (skip and rel[: len(skip)] == skip):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_id(rel: Path) -> str:
    """A file-name-safe item id from a relative path: suffix dropped, folders joined with ``__``."""
    parts = list(rel.with_suffix("").parts)
    return "__".join(_UNSAFE.sub("_", p) for p in parts)


def _descend(src: Path, looks_right: Callable[[Path], bool]) -> Path:
    """Archives often unpack into one extra folder (``APDrawingDB/``, ``lfw/``): step into it when it fits."""
    if looks_right(src):
        return src
    fitting = [p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".") and looks_right(p)]
    return fitting[0] if len(fitting) == 1 else src


# ---------------------------------------------------------------------------------------------- APDrawing


def read_points_txt(path: Path) -> list[list[float]]:
    """APDrawing landmark file: 5 lines ``x y`` -> [[x, y] * 5]."""
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if len(rows) != 5 or any(len(r) != 2 for r in rows):
        raise UsageError(f"{path}: expected 5 lines 'x y' (APDrawing landmarks)")
    return [[float(x), float(y)] for x, y in rows]


def scan_apdrawing(src: Path, exclude: Path | None = None) -> Scan:
    expected = (
        f"{src}: not an APDrawing folder: expected data/<train|test>/<name>.png (photo|drawing side by side) "
        "with landmark/ALL/<name>.txt and mask/ALL/<name>.png"
    )
    src = _descend(src, lambda p: (p / "data").is_dir())
    data = src / "data"
    if not data.is_dir():
        raise UsageError(expected)
    pngs = [p for p in _images_under(data, exclude) if p.parent != data.resolve()]
    if not pngs:
        raise UsageError(expected)
    landmarks, masks = src / "landmark" / "ALL", src / "mask" / "ALL"
    items, missing_points = [], 0
    for path in pngs:
        labels: dict[str, Any] = {"source_split": path.parent.name}
        refs: dict[str, Path] = {}
        txt, mask = landmarks / f"{path.stem}.txt", masks / f"{path.stem}.png"
        if txt.is_file():
            labels["points5"] = read_points_txt(txt)
        else:
            missing_points += 1
        if mask.is_file():
            refs["mask"] = mask.resolve()
        items.append(PlannedItem(path.stem, refs, labels, derive=_apdrawing_splitter(path)))
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise UsageError(f"{src}: two images share a name across data/ subfolders (landmarks are per name)")
    notes = [f"{missing_points} without landmark/ALL/<name>.txt"] if missing_points else []
    return Scan(items, "photo", notes)


def _apdrawing_splitter(sheet: Path) -> Callable[[Path, str], dict[str, tuple[Path, str]]]:
    def derive(out: Path, item_id: str) -> dict[str, tuple[Path, str]]:
        import numpy as np

        from facetool.data.common import save_png
        from facetool.imageio import read_image

        image = read_image(sheet)
        h, w = image.shape[:2]
        if w == h:  # a photo alone (test_single): reference it, nothing to cut
            from facetool.data.common import sha256_file

            return {"photo": (sheet.resolve(), sha256_file(sheet))}
        if w != 2 * h:
            raise UsageError(f"{sheet}: expected photo|drawing side by side (width = 2 x height), got {w}x{h}")
        photo, drawing = image[:, :h], image[:, h:]
        # Drawings are black lines on white: one channel, as the APDrawingGAN loader uses them (output_nc=1).
        gray = np.round(drawing.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
        files = {}
        for role, pixels in (("photo", photo), ("drawing", gray.clip(0, 255).astype(np.uint8))):
            path = out / role / f"{item_id}.png"
            files[role] = (path, save_png(path, pixels))
        return files

    return derive


# ---------------------------------------------------------------------------------------------- CartoonSet


def read_cartoonset_csv(path: Path) -> dict[str, tuple[int, int]]:
    """``"eye_angle", 1, 3`` lines -> {"eye_angle": (1, 3)} (variant index, variant count)."""
    attributes = {}
    with open(path, newline="") as fh:
        for row in csv.reader(fh, skipinitialspace=True):
            if not row:
                continue
            if len(row) != 3:
                raise UsageError(f"{path}: expected lines like '\"eye_angle\", 1, 3'")
            try:
                attributes[row[0].strip()] = (int(row[1]), int(row[2]))
            except ValueError:
                raise UsageError(f"{path}: expected lines like '\"eye_angle\", 1, 3'") from None
    return attributes


def scan_cartoonset(src: Path, exclude: Path | None = None) -> Scan:
    pngs = [p for p in _images_under(src, exclude) if p.suffix.lower() == ".png"]
    paired = [p for p in pngs if p.with_suffix(".csv").is_file()]
    if not paired:
        raise UsageError(f"{src}: not a CartoonSet folder: expected <name>.png with <name>.csv beside it")
    items = []
    for path in paired:
        attributes = read_cartoonset_csv(path.with_suffix(".csv"))
        labels: dict[str, Any] = {"attributes": {k: v[0] for k, v in attributes.items()}}
        items.append(PlannedItem(path.stem, {"cartoon": path.resolve()}, labels))
    _check_unique(src, items)
    notes = [f"{len(pngs) - len(paired)} .png without a .csv skipped"] if len(pngs) > len(paired) else []
    return Scan(items, "cartoon", notes)


# ---------------------------------------------------------------------------------------------- LFW


_LFW_NAME = re.compile(r"^(?P<person>.+)_(?P<number>\d{4})$")


def _lfw_like(folder: Path) -> bool:
    people = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return bool(people) and any(
        (m := _LFW_NAME.match(f.stem)) and m["person"] == person.name
        for person in people[:20]
        for f in person.iterdir()
        if f.suffix.lower() in IMAGE_SUFFIXES
    )


def scan_lfw(src: Path, exclude: Path | None = None) -> Scan:
    expected = f"{src}: not an LFW folder: expected <Person_Name>/<Person_Name>_0001.jpg"
    src = _descend(src, _lfw_like)
    if not _lfw_like(src):
        raise UsageError(expected)
    items = []
    skip = exclude.resolve() if exclude else None
    for person in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if person.resolve() == skip:
            continue
        for path in sorted(f for f in person.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()):
            match = _LFW_NAME.match(path.stem)
            if not match or match["person"] != person.name:
                raise UsageError(f"{path}: not an LFW file name: expected {person.name}/{person.name}_0001.jpg")
            labels = {"identity": person.name, "image_number": int(match["number"])}
            items.append(PlannedItem(path.stem, {"photo": path.resolve()}, labels))
    return Scan(items, "photo")


# ---------------------------------------------------------------------------------------------- folders


def scan_folder(src: Path, role: str = "photo", what: str = "image folder", exclude: Path | None = None) -> Scan:
    src = src.resolve()
    images = _images_under(src, exclude)
    if not images:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise UsageError(f"{src}: not a{'n' if what[0] in 'aeiou' else ''} {what}: expected image files ({suffixes})")
    items = [PlannedItem(safe_id(p.relative_to(src)), {role: p.resolve()}) for p in images]
    _check_unique(src, items)
    return Scan(items, role)


def scan_paired(src: Path, a_role: str = "photo", b_role: str = "drawing", exclude: Path | None = None) -> Scan:
    expected = f"{src}: not a paired folder: expected A/ and B/ with images matched by file name"
    if a_role == b_role:
        raise UsageError(f"--a-role and --b-role must differ (both are {a_role!r})")
    if not ((src / "A").is_dir() and (src / "B").is_dir()):
        raise UsageError(expected)
    side_a = {p.relative_to((src / "A").resolve()).with_suffix(""): p for p in _images_under(src / "A", exclude)}
    side_b = {p.relative_to((src / "B").resolve()).with_suffix(""): p for p in _images_under(src / "B", exclude)}
    matched = sorted(side_a.keys() & side_b.keys())
    if not matched:
        raise UsageError(expected)
    items = [PlannedItem(safe_id(k), {a_role: side_a[k].resolve(), b_role: side_b[k].resolve()}) for k in matched]
    _check_unique(src, items)
    notes = []
    for side, keys in (("A", side_a.keys() - side_b.keys()), ("B", side_b.keys() - side_a.keys())):
        if keys:
            example = sorted(keys)[0]
            notes.append(f"{len(keys)} unmatched in {side} (e.g. {side}/{example})")
    return Scan(items, a_role, notes)


def _check_unique(src: Path, items: list[PlannedItem]) -> None:
    seen: dict[str, PlannedItem] = {}
    for item in items:
        if item.id in seen:
            raise UsageError(f"{src}: two files map to item id {item.id!r}; rename one")
        seen[item.id] = item


def scan(format: str, src: Path, exclude: Path | None = None, **options: Any) -> Scan:
    """Read the layout of ``src`` as ``format`` (no image is decoded)."""
    src = Path(src)
    if not src.is_dir():
        why = "not a folder (give the folder the dataset was unpacked to)" if src.exists() else "no such folder"
        raise UsageError(f"{src}: {why}")
    for option in ("role", "a_role", "b_role"):
        if option in options:
            _check_role(f"--{option.replace('_', '-')}", options[option])
    if format == "apdrawing":
        return scan_apdrawing(src, exclude)
    if format == "cartoonset":
        return scan_cartoonset(src, exclude)
    if format == "lfw":
        return scan_lfw(src, exclude)
    if format == "bitmoji":
        return scan_folder(src, "cartoon", "Bitmoji folder", exclude)
    if format == "folder":
        return scan_folder(src, options.get("role") or "photo", exclude=exclude)
    if format == "paired":
        return scan_paired(src, options.get("a_role") or "photo", options.get("b_role") or "drawing", exclude)
    raise UsageError(f"FORMAT: unknown dataset format {format!r} (one of: {', '.join(FORMATS)})")


def _check_role(option: str, role: Any) -> None:
    # A role names a manifest key and the folder derived files go to: a plain word.
    if not isinstance(role, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", role):
        raise UsageError(f"{option} {role!r}: a role is a plain word such as photo, drawing or cartoon")


# ---------------------------------------------------------------------------------------------- import


@dataclass
class ImportResult:
    made: int
    skipped: int
    removed: int
    notes: list[str]


def import_dataset(format: str, src: Path, out: Path, *, licence: str | None = None, **options: Any) -> ImportResult:
    """Scan ``src`` as ``format`` and write/refresh ``out/manifest.jsonl`` (resumable, see the module docstring)."""
    from facetool.data.common import Manifest, run_items, sha256_file

    out = Path(out)
    planned = scan(format, src, exclude=out, **options)
    if out.resolve() == Path(src).resolve():
        raise UsageError(f"--out {out}: must not be the source folder")
    manifest = Manifest.open(out, "import")
    other = {r.get("source") for r in manifest.records.values()} - {format}
    if other:
        raise UsageError(f"--out {out}: already holds a {sorted(map(str, other))[0]!r} manifest; choose another")
    wanted = {item.id: item for item in planned.items}
    stale = [k for k in manifest.records if k not in wanted]
    for k in stale:  # the source lost these files: the manifest mirrors the source
        del manifest.records[k]
    licence = licence or LICENCES[format]
    hair_of = _cartoonset_hair_classes(planned) if format == "cartoonset" else {}

    def make(_index: int, item_id: str) -> dict[str, Any]:
        item = wanted[item_id]
        files: dict[str, dict[str, str]] = {}
        if item.derive is not None:
            for role, (path, digest) in item.derive(out, item_id).items():
                files[role] = {"path": _manifest_path(out, path), "sha256": digest}
        for role, path in item.refs.items():
            files[role] = {"path": str(path), "sha256": sha256_file(path)}
        main = planned.main_role if planned.main_role in files else sorted(files)[0]
        labels = dict(item.labels)
        if labels.get("attributes", {}).get("hair_color") in hair_of:
            labels["hair"], labels["hair_rgb"] = hair_of[labels["attributes"]["hair_color"]]
        return {
            "id": item_id,
            "file": files[main]["path"],
            "sha256": files[main]["sha256"],
            "seed": None,  # nothing random in an import
            "source": format,
            "licence": licence,
            "files": files,
            "labels": labels,
        }

    made, skipped = run_items(manifest, sorted(wanted), make, f"import {format}")
    return ImportResult(made, skipped, len(stale), planned.notes)


def _manifest_path(out: Path, path: Path) -> str:
    """Files written into the output folder are recorded relative to it (the folder can move); others absolute."""
    try:
        return str(Path(path).relative_to(out))
    except ValueError:
        return str(Path(path).resolve())


# Cartoon Set publishes its 10 hair colours as unnamed swatches, so the class of each index is measured from the
# cartoons themselves (see _cartoonset_hair_classes) and named with the cartoon generator's classes and palette
# (facetool.data.avatars.HAIR_CLASSES / classify_hair), so real and generated cartoons share one label set.


def _cartoonset_hair_classes(planned: Scan, per_index: int = 24) -> dict[int, tuple[str, list[int]]]:
    """{hair_color index: (hair class, measured RGB)}, from the median colour of the top of the head over up to
    ``per_index`` cartoons drawn with that index (the top rows of the figure are hair unless the cartoon is bald;
    a median over many hair styles outvotes the bald ones)."""
    from collections import defaultdict

    import numpy as np

    from facetool.data.avatars import classify_hair

    by_index: dict[int, list[Path]] = defaultdict(list)
    for item in planned.items:
        index = item.labels.get("attributes", {}).get("hair_color")
        if index is not None and len(by_index[index]) < per_index:
            by_index[index].append(item.refs["cartoon"])
    classes = {}
    for index, paths in sorted(by_index.items()):
        colours = [c for c in (_head_top_colour(p) for p in paths) if c is not None]
        if colours:
            rgb = np.median(np.array(colours), axis=0)
            classes[index] = (classify_hair(rgb), [int(round(v)) for v in rgb])
    return classes


def _head_top_colour(path: Path) -> tuple[float, float, float] | None:
    """Median RGB of the top band of the opaque (or non-background) figure in a cartoon image."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            rgba = np.asarray(im.convert("RGBA"))
    except OSError:
        return None
    figure = rgba[..., 3] > 128
    if figure.all():  # no transparency: call "figure" what differs from the corner colour
        corner = rgba[0, 0, :3].astype(int)
        figure = np.abs(rgba[..., :3].astype(int) - corner).sum(-1) > 30
    rows = np.flatnonzero(figure.any(axis=1))
    if rows.size == 0:
        return None
    top, bottom = rows[0], rows[-1]
    band = slice(top, top + max(2, (bottom - top) // 12))
    pixels = rgba[band][..., :3][figure[band]]
    return tuple(float(v) for v in np.median(pixels, axis=0)) if len(pixels) else None


# ---------------------------------------------------------------------------------------------- CLI

HELP = """Describe a real dataset, in its published layout, as a facetool manifest (files referenced in place).

FORMAT: apdrawing (APDrawingDB: data/train/*.png photo|drawing, landmark/ALL, mask/ALL), cartoonset (csX.png +
csX.csv), bitmoji (a folder of Bitmoji images), lfw (<Person>/<Person>_0001.jpg), folder (any images, recursive),
paired (A/ and B/ matched by file name). Source files are referenced by absolute path with their sha256; only
APDrawing's side-by-side sheets are cut into photo/ and drawing/ PNGs in --out. Re-running refreshes the manifest.

[b]Examples[/b]

  facetool data import apdrawing ~/datasets/APDrawingDB --out data/apdrawing

  facetool data import lfw ~/datasets/lfw --out data/lfw

  facetool data import paired ~/pairs --out data/pairs --a-role photo --b-role cartoon

  facetool data split data/lfw --test 0.1
"""


def register_cli(data_app: typer.Typer) -> None:
    @data_app.command("import", help=HELP, no_args_is_help=True)
    def import_command(
        format: str = typer.Argument(..., help=f"Dataset layout: {', '.join(FORMATS)}."),
        src: Path = typer.Argument(..., help="The dataset folder, as unpacked."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (manifest.jsonl and derived files)."),
        role: str = typer.Option("photo", "--role", help="folder: the role of the images (photo, drawing, ...)."),
        a_role: str = typer.Option("photo", "--a-role", help="paired: the role of A/ images."),
        b_role: str = typer.Option("drawing", "--b-role", help="paired: the role of B/ images."),
        licence: str | None = typer.Option(None, "--licence", help="Licence text to record (default: the format's)."),
    ) -> None:
        result = import_dataset(format.lower(), src, out, licence=licence, role=role, a_role=a_role, b_role=b_role)
        notes = "".join(f"; {n}" for n in result.notes)
        removed = f", removed {result.removed}" if result.removed else ""
        typer.echo(f"import {format}: made {result.made}, skipped {result.skipped}{removed}{notes} -> {out}")
