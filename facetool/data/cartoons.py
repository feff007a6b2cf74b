"""``facetool data cartoons``: cartoon avatar faces with exact landmarks and a hair-colour class.

Each item is a DiceBear-style avatar (:mod:`facetool.data.avatars`) with seeded variants, part moves, face shape,
hair colour (black / brown / blonde / grey), skin and background; its landmarks are computed from the part
transforms, not detected. ``--augment`` adds one seeded rotation / zoom / shift per item
(:mod:`facetool.data.augment`), applied to the image and the points alike.

Output: ``DIR/cartoon/<id>.png`` (RGB) and ``DIR/manifest.jsonl``; each record's labels::

    {"points": {"left_eye": [x, y], ...}, "points5": [[x, y] x 5], "hair": "brown", "hair_rgb": [r, g, b],
     "style": "lorelei", "licence": "CC0 1.0", "skin_rgb": [...], "background_rgb": [...], "size": 128,
     "draw": {...variants, moves...}, "augment": [[a, b, tx], [c, d, ty]] or null, "options": {...}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from facetool.errors import FacetoolError, UsageError

HELP = """Cartoon avatar faces (DiceBear styles) with exact landmarks and hair-colour labels.

Landmarks (eyes, brows, nose tip, mouth corners and centre, chin) come from the part transforms: they are exact.

Hair is one of black, brown, blonde, grey. Each item's style licence is recorded in the manifest.

[b]Examples[/b]

  facetool data cartoons --count 1000 --out data/cartoons

  facetool data cartoons --count 200 --out data/toons256 --size 256 --style lorelei,notionists --augment
"""

MIN_SIZE, MAX_SIZE = 32, 1024


def parse_styles(text: str) -> tuple[str, ...]:
    """``"lorelei,notionists"`` -> ("lorelei", "notionists"); UsageError naming --style on unknown names."""
    from facetool.data.avatars import STYLES

    names = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    if not names:
        raise UsageError("--style: give at least one style")
    unknown = [s for s in names if s not in STYLES]
    if unknown:
        raise UsageError(f"--style: unknown style {unknown[0]!r} (choose from {', '.join(STYLES)})")
    return names


def make_cartoons(
    out: Path,
    count: int,
    *,
    size: int = 128,
    seed: int = 0,
    styles: tuple[str, ...] | None = None,
    augment: bool = False,
) -> tuple[int, int]:
    """Make (or resume) ``count`` cartoon items in ``out``. Returns (made, skipped)."""
    from facetool.data import avatars
    from facetool.data.common import Manifest, run_items

    styles = tuple(styles or avatars.DEFAULT_STYLES)
    if count < 1:
        raise UsageError("--count: must be at least 1")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise UsageError(f"--size: must be between {MIN_SIZE} and {MAX_SIZE}")
    parse_styles(",".join(styles))
    options = {"size": size, "seed": seed, "styles": list(styles), "augment": augment}
    manifest = Manifest.open(out, "cartoons")
    for record in manifest.records.values():
        if record.get("labels", {}).get("options") != options:
            raise UsageError(f"--out {out}: holds cartoons made with other options; use a new folder")
    ids = [f"{i:06d}" for i in range(count)]
    from facetool.data.common import torch_threads

    with torch_threads(1 if augment else None):
        made, skipped = run_items(
            manifest, ids, lambda index, item_id: make_item(out, index, item_id, options), "cartoons"
        )
    return made, skipped


def make_item(root: Path, index: int, item_id: str, options: dict[str, Any]) -> dict[str, Any]:
    """Draw, render, (augment) and save one cartoon; returns its manifest record."""
    import numpy as np

    from facetool.data import avatars
    from facetool.data.common import file_record, item_seed, rng_for, save_png

    base_seed, size, styles = options["seed"], options["size"], options["styles"]
    rng = rng_for(base_seed, index)
    style = styles[int(rng.integers(len(styles)))]
    draw = avatars.random_draw(style, rng)
    image, points = avatars.render_avatar(draw, size)
    matrix = None
    if options["augment"]:
        image, points, matrix = _augment_item(image, points, item_seed(base_seed, index), draw.background_rgb)
    names = list(points)
    coords = np.array([points[n] for n in names])
    if not np.all((coords >= -0.5) & (coords <= size - 0.5)):
        raise FacetoolError(f"cartoon {item_id}: a landmark fell outside the image (style {style})")
    path = root / "cartoon" / f"{item_id}.png"
    digest = save_png(path, image)
    licence = avatars.style_licence(style)
    labels = {
        "points": points,
        "points5": avatars.points5(points),
        "hair": draw.hair,
        "hair_rgb": draw.hair_rgb,
        "style": style,
        "licence": licence["name"],
        "skin_rgb": draw.skin_rgb,
        "background_rgb": draw.background_rgb,
        "size": size,
        "draw": draw.to_dict(),
        "augment": matrix,
        "options": options,
    }
    rel = file_record(root, path, digest)
    return {
        "id": item_id,
        "file": rel["path"],
        "sha256": digest,
        "seed": item_seed(base_seed, index),
        "source": f"dicebear-styles {avatars.styles_version()} {style}",
        "licence": f"{licence['name']} ({licence['url']}): {licence['text']}",
        "files": {"cartoon": rel},
        "labels": labels,
    }


def _augment_item(image, points: dict[str, list[float]], seed: int, background: list[int]):
    """One seeded augmentation draw for one item: (image, points, 2x3 matrix as lists). The uncovered border
    takes the background colour (repeating the edge would smear the neck and clothes)."""
    import numpy as np
    import torch

    from facetool.data.augment import apply_affine, random_affine

    names = list(points)
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    coords = torch.tensor([[points[n] for n in names]], dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed % (2**63))
    matrix = random_affine(1, tuple(image.shape[:2]), generator, points=coords, dtype=torch.float64)
    fill = torch.tensor(background, dtype=torch.float32)
    warped, moved = apply_affine(tensor, coords, matrix, padding_mode="fill", fill_value=fill)
    out_points = {
        n: [round(float(x), 3), round(float(y), 3)] for n, (x, y) in zip(names, moved[0].tolist(), strict=True)
    }
    out_matrix = [[round(float(v), 6) for v in row] for row in matrix[0].tolist()]
    return warped[0].permute(1, 2, 0).numpy(), out_points, out_matrix


def register_cli(data_app: typer.Typer) -> None:
    @data_app.command("cartoons", help=HELP)
    def cartoons_command(
        count: int = typer.Option(..., "--count", "-n", help="How many cartoons the folder should hold."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (resumed when it exists)."),
        size: int = typer.Option(128, "--size", help=f"Image side in pixels ({MIN_SIZE}-{MAX_SIZE})."),
        seed: int = typer.Option(0, "--seed", min=0, help="Base seed: the same seed gives byte-identical files."),
        style: str = typer.Option(
            "lorelei,notionists,avataaars", "--style", help="Comma-separated DiceBear styles to draw from."
        ),
        augment: bool = typer.Option(False, "--augment", help="One random rotation/zoom/shift per item."),
    ) -> None:
        styles = parse_styles(style)
        made, skipped = make_cartoons(out, count, size=size, seed=seed, styles=styles, augment=augment)
        typer.echo(f"cartoons: made {made}, skipped {skipped} (already done) in {out}")
