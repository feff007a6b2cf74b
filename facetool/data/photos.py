"""``facetool data photos``: photoreal faces from the random-face StyleGAN-type generator, run by OpenVINO.

The generator is the pair of OpenVINO IR networks shipped in the random-face 2021.7.21.1 wheel (registered assets
``random-face-{mapping,synthesis}-{xml,bin}``; no random_face code is used)::

    mapping    "var"   (1, 512) float32 ~ N(0, 1)  ->  "style" (1, 512)
    synthesis  "style" (1, 512)                    ->  "img"   (1, 3, 1024, 1024) RGB in about [-1, 1]

The synthesis net has no noise inputs, so an image is a pure function of its latent: item ``i`` of a run with
``--seed s`` draws its latent from ``default_rng(item_seed(s, i))``, truncates the style towards the mean style
(``mean + psi * (style - mean)``, the usual truncation trick: lower psi, more typical and cleaner faces) and is
resized 1024 -> ``--size`` with Pillow's LANCZOS. The mean style is the average of 4096 mapped latents from a fixed
seed; it is computed once (about a second) and cached beside the mapping asset, keyed by the IR hashes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    import numpy as np

SOURCE = "random-face==2021.7.21.1 (StyleGAN-type, FFHQ-derived)"
STYLE_DIM = 512
SOURCE_SIZE = 1024
MEAN_SEED = 4096  # the latents whose mapped styles are averaged into the truncation centre
MEAN_COUNT = 4096
MAPPING = ("random-face-mapping-xml", "random-face-mapping-bin")
SYNTHESIS = ("random-face-synthesis-xml", "random-face-synthesis-bin")
ID_WIDTH = 6

HELP = """Photoreal generated faces (StyleGAN-type, FFHQ-derived: research use) as OUT/photos/<id>.png.

A 1024² generator run by OpenVINO, resized to --size with LANCZOS; OUT/manifest.jsonl records each photo's seed,
sha256, source and licence. Deterministic by --seed (the same seed gives byte-identical files, whatever --batch)
and resumable: run the same command again to finish an interrupted job.

[b]Examples[/b]

  facetool data photos --count 100 --out data/photos

  facetool data photos --count 1000 --size 256 --psi 0.5 --seed 7 --out data/faces256
"""


def licence() -> str:
    """The generator asset's licence note (one place: :mod:`facetool.data.assets`)."""
    from facetool.data.assets import DATA_ASSETS

    return next(a.license for a in DATA_ASSETS if a.name == SYNTHESIS[1])


def latent(seed: int) -> np.ndarray:
    """(1, 512) float32 standard-normal latent of one item seed."""
    import numpy as np

    return np.random.default_rng(seed).standard_normal((1, STYLE_DIM)).astype(np.float32)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """(B, 3, H, W) float in [-1, 1] -> (B, H, W, 3) uint8, rounding to nearest."""
    import numpy as np

    scaled = (np.clip(images, -1.0, 1.0) + 1.0) / 2.0 * 255.0 + 0.5
    return np.clip(scaled, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


class FaceGenerator:
    """The two IR networks compiled for the CPU.

    Args:
        batch: images per synthesis call (the network is reshaped to it; short batches are padded). Batch 1 and
            batch 4 give bit-identical images and, on 2 cores, the same speed (measured ~1.1 s per face each).
    """

    def __init__(self, batch: int = 1) -> None:
        from facetool.assets import asset_path
        from facetool.errors import FacetoolError

        try:
            import openvino as ov
        except ImportError:
            raise FacetoolError("facetool data photos needs OpenVINO: pip install 'facetool[data]'") from None
        self.batch = batch
        self._core = ov.Core()
        self._mapping_model = self._core.read_model(*(str(asset_path(n)) for n in MAPPING))
        self.mapping = self._core.compile_model(self._mapping_model, "CPU")
        synthesis = self._core.read_model(*(str(asset_path(n)) for n in SYNTHESIS))
        if batch != 1:
            synthesis.reshape({"style": [batch, STYLE_DIM]})
        self.synthesis = self._core.compile_model(synthesis, "CPU")
        self._mean: np.ndarray | None = None

    @property
    def style_mean(self) -> np.ndarray:
        """(1, 512) mean style of :data:`MEAN_COUNT` latents drawn from :data:`MEAN_SEED` (cached on disk)."""
        if self._mean is None:
            self._mean = _load_or_compute_mean(self)
        return self._mean

    def _compute_mean(self) -> np.ndarray:
        import numpy as np

        model = self._mapping_model.clone()  # one batched call instead of 4096 small ones
        model.reshape({"var": [MEAN_COUNT, STYLE_DIM]})
        mapping = self._core.compile_model(model, "CPU")
        z = np.random.default_rng(MEAN_SEED).standard_normal((MEAN_COUNT, STYLE_DIM)).astype(np.float32)
        return mapping({"var": z})["style"].mean(axis=0, keepdims=True).astype(np.float32)

    def styles(self, seeds: list[int], psi: float) -> np.ndarray:
        """Item seeds -> (N, 512) truncated styles."""
        import numpy as np

        mean = self.style_mean
        raw = np.concatenate([self.mapping({"var": latent(s)})["style"] for s in seeds])
        return (mean + np.float32(psi) * (raw - mean)).astype(np.float32)

    def images(self, styles: np.ndarray) -> np.ndarray:
        """(N, 512) styles -> (N, 1024, 1024, 3) uint8 RGB."""
        import numpy as np

        out = []
        for start in range(0, len(styles), self.batch):
            chunk = styles[start : start + self.batch]
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - len(chunk), axis=0)])
            out.append(to_uint8(self.synthesis({"style": padded})["img"][: len(chunk)]))
        return np.concatenate(out)


def _mean_cache_path() -> Path:
    from facetool.assets import get_store

    store = get_store()
    key = hashlib.sha256(
        "".join(store.get(n).sha256 for n in MAPPING).encode() + f"{MEAN_SEED}/{MEAN_COUNT}".encode()
    ).hexdigest()[:16]
    return store.location(MAPPING[1]).parent / f"style-mean-{key}.npy"


def _load_or_compute_mean(generator: FaceGenerator) -> np.ndarray:
    import contextlib

    import numpy as np

    from facetool.data.common import save_npy

    path = _mean_cache_path()
    if path.is_file():
        with contextlib.suppress(OSError, ValueError):
            mean = np.load(path, allow_pickle=False)
            if mean.shape == (1, STYLE_DIM) and mean.dtype == np.float32:
                return mean
    mean = generator._compute_mean()
    with contextlib.suppress(OSError):  # a read-only cache only costs the second again next time
        save_npy(path, mean)
    return mean


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """(1024, 1024, 3) uint8 -> (size, size, 3) uint8 with Pillow's LANCZOS."""
    import numpy as np
    from PIL import Image

    if image.shape[0] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.LANCZOS))


def item_id(index: int) -> str:
    return f"{index:0{ID_WIDTH}d}"


def make_photos(
    out: Path,
    count: int,
    *,
    size: int = 512,
    seed: int = 0,
    psi: float = 0.7,
    batch: int = 1,
    generator: FaceGenerator | None = None,
) -> tuple[int, int]:
    """Make ``count`` photos in ``out`` (resuming what a previous run left); returns (made, skipped).

    A folder made with another size or psi is refused rather than mixed.
    """
    from facetool.data.common import Manifest, file_record, item_seed, run_items, save_png

    _check_arguments(count, size, psi, batch)
    manifest = Manifest.open(Path(out), "photos")
    _check_compatible(manifest, size, seed, psi)
    ids = [item_id(i) for i in range(count)]
    state: dict[str, Any] = {"generator": generator, "ahead": {}}

    def generate(index: int) -> np.ndarray:
        """The 1024² image of item ``index``; with --batch B, the next B - 1 missing items are made with it."""
        ahead = state["ahead"]
        if index not in ahead:
            if state["generator"] is None:
                state["generator"] = FaceGenerator(batch)
            gen = state["generator"]
            later = [i for i in range(index + 1, count) if ids[i] not in manifest.records][: gen.batch - 1]
            indices = [index, *later]
            ahead.update(zip(indices, gen.images(gen.styles([item_seed(seed, i) for i in indices], psi)), strict=True))
        return ahead.pop(index)

    licence_text = licence()

    def make(index: int, ident: str) -> dict[str, Any]:
        path = manifest.root / "photos" / f"{ident}.png"
        digest = save_png(path, resize(generate(index), size))
        record = file_record(manifest.root, path, digest)
        return {
            "id": ident,
            "file": record["path"],
            "sha256": digest,
            "seed": item_seed(seed, index),
            "source": SOURCE,
            "licence": licence_text,
            "labels": {"psi": psi, "size": size},
        }

    return run_items(manifest, ids, make, "generating photos")


def _check_arguments(count: int, size: int, psi: float, batch: int) -> None:
    from facetool.errors import UsageError

    if count < 1:
        raise UsageError("--count must be at least 1")
    if not 16 <= size <= SOURCE_SIZE:
        raise UsageError(f"--size must be between 16 and {SOURCE_SIZE} (the generator makes {SOURCE_SIZE}² faces)")
    if not 0.0 <= psi <= 2.0:
        raise UsageError("--psi must be between 0 and 2 (0.5-1 is the useful range)")
    if not 1 <= batch <= 16:
        raise UsageError("--batch must be between 1 and 16")


def _check_compatible(manifest: Any, size: int, seed: int, psi: float) -> None:
    """Resuming into a folder made with other settings would mix two data sets: refuse it, naming the option."""
    from facetool.data.common import item_seed
    from facetool.errors import UsageError

    for ident, record in manifest.records.items():
        labels = record.get("labels", {})
        if labels.get("size") != size or labels.get("psi") != psi:
            raise UsageError(
                f"--out {manifest.root}: holds photos made with --size {labels.get('size')} --psi {labels.get('psi')};"
                " use another folder"
            )
        if ident.isdigit() and record.get("seed") != item_seed(seed, int(ident)):
            raise UsageError(f"--out {manifest.root}: holds photos made with another --seed; use another folder")


def register_cli(data_app: typer.Typer) -> None:
    @data_app.command("photos", help=HELP, no_args_is_help=True)
    def photos(
        count: int = typer.Option(..., "--count", "-n", help="Number of photos (ids 000000 ... count-1)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (photos/ and manifest.jsonl)."),
        size: int = typer.Option(512, "--size", help="Side of the saved square photos (16-1024)."),
        seed: int = typer.Option(0, "--seed", min=0, help="Base seed: the same seed gives byte-identical photos."),
        psi: float = typer.Option(0.7, "--psi", help="Truncation: lower is more typical and cleaner, 1 is wild."),
        batch: int = typer.Option(1, "--batch", help="Images per generator call (no faster on a CPU; same images)."),
    ) -> None:
        made, skipped = make_photos(out, count, size=size, seed=seed, psi=psi, batch=batch)
        typer.echo(f"photos: made {made}, skipped {skipped} (already done) -> {out}")
