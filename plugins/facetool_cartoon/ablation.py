"""The ablation grid of the model card: for each photo, the avatar of every shipped variant side by side.

    python -m facetool_cartoon.ablation --data data/crops --weights-dir DIR --count 8 -o grid.png [--hair blonde]

``DIR`` holds ``cartoon-<variant>.safetensors`` for the four variants (default: the plugin's ``weights/``) or a
training run per variant (``DIR/<variant>/``).

Columns: photo, baseline, +hair, +hair+A (local), +hair+B (affine); rows: the first ``--count`` test photos. Each
avatar is asked for the photo's own hair colour (its label), or ``--hair`` for all.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from facetool.data.datasets import ManifestDataset

from . import _generator, variant_weights
from .runner import draw_avatars

COLUMNS = ("baseline", "hair", "local", "affine")


def _weights(folder: Path | None, variant: str) -> Path:
    if folder is None:
        return variant_weights(variant)
    run = Path(folder) / variant
    return run if run.is_dir() else Path(folder) / f"cartoon-{variant}.safetensors"


def ablation_grid(data: Path, count: int = 8, hair: str | None = None, folder: Path | None = None) -> torch.Tensor:
    """(3, rows·S, 5·S) in [0, 1]: photo, then the four variants, one test photo per row."""
    split = "test" if (Path(data) / "splits.json").is_file() else None
    items = ManifestDataset(data, roles=("photo",), split=split, size=128)
    batch = ManifestDataset.collate([items[i] for i in range(min(count, len(items)))])
    photos, points = batch["photo"], batch["points5"]
    colours = [hair or (labels or {}).get("hair") or "brown" for labels in batch["labels"]]
    columns = [photos]
    for variant in COLUMNS:
        generator = _generator(_weights(folder, variant))
        with torch.inference_mode():
            columns.append(draw_avatars(generator, photos, points, colours))
    rows = [torch.cat([column[i] for column in columns], dim=-1) for i in range(len(photos))]
    return torch.cat(rows, dim=-2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="facetool data crops folder (avatar template)")
    parser.add_argument("--weights-dir", type=Path, default=None, help="variant weights or runs (see above)")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--hair", choices=("black", "brown", "blonde", "grey"), default=None)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    from facetool.imageio import from_tensor, write_image

    write_image(args.output, from_tensor(ablation_grid(args.data, args.count, args.hair, args.weights_dir)))
    print(f"-> {args.output}")


if __name__ == "__main__":
    main()
