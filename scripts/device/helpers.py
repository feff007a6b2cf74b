"""The Python steps of scripts/device/train.sh: ``jpeg FOLDER``, ``shim SITE`` and ``export OUT RUN...``.

Run by that script, here (``jpeg``) or on the GPU machine (``shim``, ``export``); the standard library only at
import time, so that each step starts fast and ``shim`` needs nothing that the install step might lack.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def jpeg(folder: Path, quality: int = 95) -> None:
    """Re-encode a data folder's PNG files as JPEG in place, its manifest's paths and digests with them.

    For photo folders: a call carries 64 MiB, and the photo crops are 20 MB as PNG, 7 MB as JPEG at quality 95.
    Not for cartoons: JPEG's ringing around their outlines would be learnt as part of the style."""
    import io

    from PIL import Image

    from facetool.data.common import Manifest, write_bytes_atomic

    manifest = Manifest.open(folder)
    for item in manifest.records.values():
        for record in (item.get("files") or {}).values():
            if not record["path"].endswith(".png"):
                continue
            png = folder / record["path"]
            jpg = png.with_suffix(".jpg")
            buffer = io.BytesIO()
            with Image.open(png) as image:
                image.convert("RGB").save(buffer, format="JPEG", quality=quality)
            record_path = str(jpg.relative_to(folder))
            record["sha256"] = write_bytes_atomic(jpg, buffer.getvalue())
            png.unlink()
            if item.get("file") == record["path"]:
                item["file"] = record_path
            record["path"] = record_path
    manifest.compact()


def shim(site: Path) -> None:
    """Make this checkout importable with its plugins registered, without pip: a ``.dist-info`` folder holding
    pyproject's entry points, for ``site`` on PYTHONPATH beside the repo's root and ``plugins/``.

    The fallback when ``pip install -e .`` fails there (its setuptools may be older than pyproject needs)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    info = site / f"facetool-{project['version']}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: facetool\nVersion: {project['version']}\n")
    lines = []
    for group, entries in project.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {value}" for name, value in entries.items()]
    lines.append("[console_scripts]")
    lines += [f"{name} = {value}" for name, value in project.get("scripts", {}).items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def export(out: Path, runs: list[Path]) -> int:
    """Each run's latest generator as it would ship (fp16, its weight average when it kept one) as
    ``out/RUN-NAME.safetensors``; one process for all, since each import of torch costs seconds there."""
    from facetool.train.checkpoint import read_state
    from facetool.train.loop import export_run_weights

    failed = 0
    for run in runs:
        try:
            state = read_state(run)
            path = export_run_weights(run, state.method, out / f"{run.name}.safetensors")
        except Exception as err:  # one run's missing checkpoint must not cost the others theirs
            print(f"{run.name}: not exported: {type(err).__name__}: {err}")
            failed += 1
            continue
        print(f"{run.name}: step {state.step} -> {path.name} ({path.stat().st_size / 1e6:.1f} MB)")
    return failed


def main(argv: list[str]) -> int:
    if argv[:1] == ["jpeg"] and len(argv) == 2:
        jpeg(Path(argv[1]))
        return 0
    if argv[:1] == ["shim"] and len(argv) == 2:
        shim(Path(argv[1]))
        return 0
    if argv[:1] == ["export"] and len(argv) >= 3:
        return 1 if export(Path(argv[1]), [Path(a) for a in argv[2:]]) else 0
    print("usage: helpers.py jpeg FOLDER | shim SITE | export OUT RUN...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
