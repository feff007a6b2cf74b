"""``facetool data show``: a contact sheet of any data folder, to look at what a data command made.

Each sampled item becomes one cell: its files side by side in a fixed role order (photo | drawing | depth | pncc
| mask | loomis | cartoon, then any other role by name; a blank tile where an item lacks a role), with its landmarks
dotted on the photo tile (5 points red, 68 points green, other points cyan; point files such as a mesh
``landmarks.npy`` as 1-px yellow dots) and a caption (id, identity, hair class, pose). 16-bit and float maps
are stretched over their non-zero range; label masks with a few small values are shown in flat colours. Pillow
and numpy only, so it runs in a second.

Layout (pixels, ``tile`` = T): a header strip of ``HEADER`` naming the roles, then rows of cells, each cell
``len(roles)·T`` wide and ``T + CAPTION`` high, cells separated and framed by ``PAD``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from facetool.errors import UsageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
ROLE_ORDER = ("photo", "drawing", "depth", "pncc", "mask", "loomis", "cartoon")
TILE = 160
PAD = 6
HEADER = 16
CAPTION = 30
BACKGROUND = (24, 24, 24)
TILE_BACKGROUND = (48, 48, 48)
TEXT = (230, 230, 230)
MESH_COLOUR = (255, 200, 0)
POINT_COLOURS = {"points68": (0, 255, 0), "points": (0, 200, 255), "points5": (255, 0, 0)}  # drawn in this order
# Flat colours for label maps (index 0 = background stays black).
_LABEL_PALETTE = [
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128),
]  # fmt: skip


def roles_of(record: dict[str, Any]) -> dict[str, str]:
    """{role: path as recorded} of a manifest record: its ``files``, an input ``photo`` recorded beside them
    (``data labels`` does), and the main ``file``, which counts as "photo" unless another role already names it
    (commands that make photos record only ``file``)."""
    roles = {role: entry["path"] for role, entry in (record.get("files") or {}).items()}
    photo = record.get("photo")
    if isinstance(photo, dict) and photo.get("path") and "photo" not in roles:
        roles["photo"] = photo["path"]
    main = record.get("file")
    if main and main not in roles.values():
        roles[record.get("role") or ("photo" if "photo" not in roles else "file")] = main
    return roles


def ordered_roles(roles: set[str] | list[str]) -> list[str]:
    """Roles in sheet order: :data:`ROLE_ORDER` first, then the others by name."""
    present = set(roles)
    return [r for r in ROLE_ORDER if r in present] + sorted(present - set(ROLE_ORDER))


def file_kind(path: Path, siblings: set[str] = frozenset()) -> str:
    """How a role file is shown: "image" (a tile), "points" (an (N, 2|3) .npy drawn as dots on the photo),
    "faces" (a labels JSON of ``data labels``, whose first face's points are drawn) or "skip" (anything else, and
    a .npy map beside an image of the same name — e.g. depth.npy next to depth.png)."""
    import numpy as np

    suffix = path.suffix.lower()
    if suffix == ".json":
        return "faces"
    if suffix != ".npy":
        return "image" if suffix in IMAGE_SUFFIXES else "skip"
    if str(path.with_suffix("")) in siblings:
        return "skip"
    try:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
    except (OSError, ValueError):
        return "skip"
    if len(shape) == 2 and shape[1] in (2, 3) and shape[0] <= 5000:
        return "points"
    if len(shape) in (2, 3) and min(shape[:2]) >= 16 and (len(shape) == 2 or shape[2] in (1, 3, 4)):
        return "image"
    return "skip"


def item_layers(root: Path, record: dict[str, Any]) -> tuple[dict[str, Path], list[Path], dict[str, Any]]:
    """({role: image file} shown as tiles, [point files] dotted on the photo, labels) of one record; the labels
    are the record's, with ``faces`` from a labels JSON among its files when the record has none."""
    import json

    paths = {role: Path(root) / rel for role, rel in roles_of(record).items()}
    images = {str(p.with_suffix("")) for p in paths.values() if p.suffix.lower() != ".npy"}
    tiles, points, labels = {}, [], dict(record.get("labels") or {})
    for role, path in paths.items():
        kind = file_kind(path, images)
        if kind == "image":
            tiles[role] = path
        elif kind == "points":
            points.append(path)
        elif kind == "faces" and not isinstance(labels.get("faces"), list):
            try:
                faces = json.loads(path.read_text()).get("faces")
            except (OSError, ValueError, AttributeError):
                faces = None
            if isinstance(faces, list):
                labels["faces"] = faces
    return tiles, points, labels


def sheet_size(n_items: int, n_roles: int, cols: int, tile: int = TILE) -> tuple[int, int]:
    """(width, height) of the sheet for ``n_items`` cells of ``n_roles`` tiles in ``cols`` columns."""
    cols = max(1, min(cols, n_items))
    rows = math.ceil(n_items / cols)
    return cols * n_roles * tile + (cols + 1) * PAD, HEADER + rows * (tile + CAPTION) + (rows + 1) * PAD


def load_display_image(path: Path, role: str = "") -> Any:
    """Any file a data command writes -> an RGB ``PIL.Image`` fit to look at (see the module docstring)."""
    import numpy as np
    from PIL import Image, ImageOps

    path = Path(path)
    if path.suffix.lower() == ".npy":
        array = np.load(path, allow_pickle=False)
        if array.ndim == 3 and array.shape[2] in (3, 4) and array.dtype == np.uint8:
            return Image.fromarray(np.ascontiguousarray(array[..., :3]))
        return Image.fromarray(_stretch(array if array.ndim == 2 else array[..., 0])).convert("RGB")
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened)
        image.load()
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return Image.fromarray(_stretch(np.asarray(image))).convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode in ("L", "1") and role == "mask":
        values = np.asarray(image.convert("L"))
        top = int(values.max())
        if 0 < top < len(_LABEL_PALETTE):  # a label map (0, 1, 2, ...): flat colours, else it looks black
            if top == 1:
                return Image.fromarray((values * 255).astype(np.uint8)).convert("RGB")
            return Image.fromarray(np.array(_LABEL_PALETTE, np.uint8)[values])
    return image.convert("RGB")


def _stretch(array: Any) -> Any:
    """A depth-like map -> uint8: the non-zero range stretched to 40..255, zero (background) black."""
    import numpy as np

    values = np.nan_to_num(np.asarray(array, dtype=np.float64))
    valid = values != 0
    out = np.zeros(values.shape, np.uint8)
    if valid.any():
        lo, hi = np.percentile(values[valid], [0.5, 99.5])
        scaled = (values - lo) / max(hi - lo, 1e-12)
        out[valid] = np.clip(40 + 215 * scaled[valid], 0, 255).astype(np.uint8)
    return out


def points_and_pose(labels: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float] | None]:
    """Landmark sets and pose from labels, whether stored flat or as ``faces`` (first face)."""
    face = (labels.get("faces") or [{}])[0] if isinstance(labels.get("faces"), list) else {}
    points = {k: labels.get(k, face.get(k)) for k in POINT_COLOURS}
    return {k: v for k, v in points.items() if v}, labels.get("pose") or face.get("pose")


def _caption(record: dict[str, Any], labels: dict[str, Any]) -> tuple[str, str]:
    parts = []
    if labels.get("identity") not in (None, ""):
        parts.append(str(labels["identity"]))
    hair = labels.get("hair")
    if isinstance(hair, dict):  # labels JSON style: {"class": ...} (or a colour name under another key)
        hair = next((hair[k] for k in ("class", "label", "name", "colour", "color") if hair.get(k)), None)
    hair_class = hair if isinstance(hair, str) else None
    if hair_class:
        parts.append(f"hair {hair_class}")
    _, pose = points_and_pose(labels)
    if pose:
        parts.append(" ".join(f"{k[0]}{float(pose[k]):+.0f}" for k in ("yaw", "pitch", "roll") if k in pose))
    return str(record.get("id", "")), "  ".join(parts)


def contact_sheet(
    root: Path, records: list[dict[str, Any]], *, cols: int = 4, tile: int = TILE, roles: list[str] | None = None
) -> Any:
    """records (manifest lines of ``root``) -> the contact sheet, an RGB ``PIL.Image``."""
    from PIL import Image, ImageDraw

    if not records:
        raise UsageError(f"{root}: no items to show")
    layers = [item_layers(root, record) for record in records]
    present = {role for tiles, _, _ in layers for role in tiles}
    unknown = [r for r in roles or [] if r not in present]
    if unknown:
        have = ", ".join(ordered_roles(present))
        raise UsageError(f"--roles {','.join(unknown)}: not in these items (they have {have})")
    # Part masks (six per drawing pair) would drown the sheet: shown only when --roles names them.
    roles = roles or ordered_roles({role for role in present if not role.startswith("part_")})
    if not roles:
        raise UsageError(f"{root}: the items have no image files to show")
    width, height = sheet_size(len(records), len(roles), cols, tile)
    cols = max(1, min(cols, len(records)))
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = caption_font(11)
    cell_w = len(roles) * tile
    for c in range(cols):
        for r, role in enumerate(roles):
            draw.text((PAD + c * (cell_w + PAD) + r * tile + 3, 2), role, fill=TEXT, font=font)
    for n, (record, (files, point_files, labels)) in enumerate(zip(records, layers, strict=True)):
        x0 = PAD + (n % cols) * (cell_w + PAD)
        y0 = HEADER + PAD + (n // cols) * (tile + CAPTION + PAD)
        point_role = labels.get("points_role") or ("photo" if "photo" in files else next(iter(files), None))
        for r, role in enumerate(roles):
            tx = x0 + r * tile
            draw.rectangle((tx, y0, tx + tile - 1, y0 + tile - 1), fill=TILE_BACKGROUND)
            if role not in files:
                continue
            try:
                image = load_display_image(files[role], role)
            except (OSError, ValueError):
                draw.text((tx + 4, y0 + tile // 2 - 6), "unreadable", fill=(255, 80, 80), font=font)
                continue
            scale = tile / max(image.size)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            resample = Image.NEAREST if role == "mask" else Image.BILINEAR
            ox, oy = tx + (tile - size[0]) // 2, y0 + (tile - size[1]) // 2
            sheet.paste(image.resize(size, resample, reducing_gap=3.0), (ox, oy))
            if role == point_role:
                sx, sy = size[0] / image.width, size[1] / image.height
                _draw_points(draw, labels, point_files, ox, oy, sx, sy)
        line1, line2 = _caption(record, labels)
        for k, text in enumerate((line1, line2)):
            draw.text((x0 + 2, y0 + tile + 2 + 13 * k), _fit(draw, text, font, cell_w - 4), fill=TEXT, font=font)
    return sheet


def _draw_points(
    draw: Any, labels: dict[str, Any], point_files: list[Path], ox: int, oy: int, sx: float, sy: float
) -> None:
    """Point files first (dense meshes, 1 px), then 68 points, then 5 points on top."""
    import numpy as np

    def dot(x: float, y: float, radius: float, colour: tuple[int, int, int]) -> None:
        # pixel centres at integers: source pixel x covers [x - 0.5, x + 0.5)
        px, py = ox + (x + 0.5) * sx - 0.5, oy + (y + 0.5) * sy - 0.5
        draw.ellipse((px - radius, py - radius, px + radius, py + radius), fill=colour)

    for path in point_files:
        for x, y in np.load(path, allow_pickle=False)[:, :2]:
            if np.isfinite(x) and np.isfinite(y):
                dot(float(x), float(y), 0.5, MESH_COLOUR)
    points, _ = points_and_pose(labels)
    for key, colour in POINT_COLOURS.items():
        radius = 2 if key == "points5" else 1
        value = points.get(key, [])
        for x, y in value.values() if isinstance(value, dict) else value:  # named points (cartoons) or a list
            dot(x, y, radius, colour)


def caption_font(size: int) -> Any:
    """A font for captions that has accents and "…": Pillow's built-in one draws only ASCII (a file named "José"
    showed boxes), so DejaVu Sans is used where the machine has it (matplotlib ships it; most Linux desktops too)."""
    import importlib.util

    from PIL import ImageFont

    candidates = []
    spec = importlib.util.find_spec("matplotlib")  # located, not imported
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p, "mpl-data", "fonts", "ttf", "DejaVuSans.ttf") for p in spec.submodule_search_locations]
    candidates += [Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"), Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),
                   Path("/Library/Fonts/Arial Unicode.ttf"), Path("C:/Windows/Fonts/arial.ttf")]  # fmt: skip
    for path in candidates:
        if path.is_file():
            try:
                return ImageFont.truetype(str(path), size)
            except OSError:
                continue
    return ImageFont.load_default(size=size)


def _fit(draw: Any, text: str, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def sample_records(records: list[dict[str, Any]], count: int, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` records drawn by ``seed`` (all when fewer), kept in id order."""
    import numpy as np

    if count >= len(records):
        return list(records)
    chosen = np.random.default_rng(seed).choice(len(records), size=count, replace=False)
    return [records[i] for i in sorted(chosen)]


def show_folder(
    root: Path, output: Path, *, count: int = 16, seed: int = 0, cols: int = 4, tile: int = TILE,
    split: str | None = None, roles: list[str] | None = None,
) -> tuple[int, tuple[int, int]]:  # fmt: skip
    """Write the contact sheet of ``root`` to ``output``; returns (items shown, sheet size)."""
    import io

    from facetool.data.common import MANIFEST, read_manifest, write_bytes_atomic

    root = Path(root)
    if not (root / MANIFEST).is_file():
        raise UsageError(f"{root}: no {MANIFEST} (not a folder made by a facetool data command)")
    if count < 1 or cols < 1:
        raise UsageError("--count and --cols must be at least 1")
    if not 32 <= tile <= 1024:
        raise UsageError(f"--tile {tile}: must be between 32 and 1024")
    output = _sheet_path(root, output)
    records = read_manifest(root)
    if split is not None:
        from facetool.data.splits import read_splits

        if split not in ("train", "test"):
            raise UsageError(f"--split {split}: must be train or test")
        keep = set(read_splits(root)[split])
        records = [r for r in records if r["id"] in keep]
    chosen = sample_records(records, count, seed)
    sheet = contact_sheet(root, chosen, cols=cols, tile=tile, roles=roles)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(Path(output).suffix.lower(), "PNG")
    buffer = io.BytesIO()
    sheet.save(buffer, format=fmt, **({"quality": 92} if fmt != "PNG" else {}))
    write_bytes_atomic(Path(output), buffer.getvalue())
    return len(chosen), sheet.size


SHEET_FORMATS = (".png", ".jpg", ".jpeg", ".webp")


def _sheet_path(root: Path, output: str | Path) -> Path:
    """Where the sheet goes: ``output``, or ``<folder name>.png`` in it when it ends in / or is a folder; never a file
    of the data folder itself (its manifest, splits or items), and only in a format the sheet is written in."""
    text, path = str(output), Path(output)
    if text.endswith(("/", "\\")) or path.is_dir():
        path = path / f"{root.resolve().name}.png"
    if path.suffix.lower() not in SHEET_FORMATS:
        raise UsageError(f"-o {output}: give a {', '.join(SHEET_FORMATS)} file, or a folder ending in /")
    target, base = path.resolve(), root.resolve()
    if target.is_relative_to(base) and target in _data_files(root):
        raise UsageError(f"-o {output}: a file of the data folder {root}; write the sheet elsewhere")
    return path


def _data_files(root: Path) -> set[Path]:
    """The files a data folder is made of: its manifest, split and stamp, and every file its items name."""
    from facetool.data.common import MADE_BY, MANIFEST, read_manifest

    files = {(root / name).resolve() for name in (MANIFEST, "splits.json", MADE_BY)}
    for record in read_manifest(root) if (root / MANIFEST).is_file() else []:
        files.update((root / rel).resolve() for rel in roles_of(record).values())
    return files


HELP = """A contact sheet of a data folder: each item's files side by side with its landmarks and labels.

Roles in a fixed order (photo | drawing | depth | pncc | mask | loomis | cartoon | others); 5 points red, 68
points green; the caption gives id, identity, hair class and pose (yaw/pitch/roll in degrees).

[b]Examples[/b]

  facetool data show data/drawings -o sheet.png

  facetool data show data/lfw -o lfw.png --count 32 --cols 8 --seed 3

  facetool data show data/pairs -o test.png --split test
"""


def register_cli(data_app: typer.Typer) -> None:
    @data_app.command("show", help=HELP, no_args_is_help=True)
    def show_command(
        folder: Path = typer.Argument(..., help="A folder with a manifest.jsonl."),
        output: str = typer.Option(..., "--output", "-o", help="Sheet file (.png, .jpg or .webp), or a folder (/)."),
        count: int = typer.Option(16, "--count", help="How many items (drawn by --seed)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the sample."),
        cols: int = typer.Option(4, "--cols", help="Items per row."),
        tile: int = typer.Option(TILE, "--tile", help="Tile size in pixels."),
        split: str | None = typer.Option(None, "--split", help="Only items of this split (train or test)."),
        roles: str | None = typer.Option(None, "--roles", help="Roles to show, comma list (default: not part_*)."),
    ) -> None:
        chosen = [r.strip() for r in roles.split(",") if r.strip()] if roles else None
        path = _sheet_path(folder, output)
        shown, (width, height) = show_folder(
            folder, path, count=count, seed=seed, cols=cols, tile=tile, split=split, roles=chosen
        )
        typer.echo(f"show {folder}: {shown} items -> {path} ({width}x{height})")
