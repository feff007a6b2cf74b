"""What every ``facetool data`` job shares: seeds, deterministic files, a resumable JSONL manifest.

A job makes items one by one. Each item's files are written atomically, then one JSON line describing them is
appended to ``manifest.jsonl`` (flushed and fsynced). A re-run reads the manifest, keeps the items whose files
still exist with the recorded sha256, and makes only the rest — so an interrupted run resumes, and the same seed
gives byte-identical files.

Manifest line (one per item)::

    {"id": "000012", "file": "photos/000012.png", "seed": 123, "source": "random-face", "licence": "...",
     "sha256": "...", "files": {"drawing": {"path": "...", "sha256": "..."}, ...}, "labels": {...}}
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.jsonl"
#: Which data command made a folder, and with what settings: another command, or other settings, are refused.
MADE_BY = "made_by.json"


def item_seed(base_seed: int, index: int) -> int:
    """A per-item seed independent of how many items came before (so a resumed run draws the same)."""
    return int(np.random.SeedSequence([int(base_seed), int(index)]).generate_state(1)[0])


def rng_for(base_seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(item_seed(base_seed, index))


def png_bytes(image: np.ndarray) -> bytes:
    """Deterministic PNG encoding (no timestamps or metadata): same pixels, same bytes.

    image: (H, W) or (H, W, 1|3|4) uint8; or (H, W) uint16 for 16-bit maps.
    """
    from PIL import Image

    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)  # 2.5x faster than 6, files ~20% bigger
    return buffer.getvalue()


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = False) -> str:
    """Write atomically (temp file + rename); returns the sha256.

    Not fsynced unless ``durable``: a killed run never leaves a half file (the rename is atomic) and resume
    re-hashes every file; only a power cut could lose the latest writes, and an fsync per file halved throughput.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name[:100]}.{os.getpid()}.tmp")  # capped: a long target name must still fit
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk or a Ctrl-C must not leave temp files behind
        raise
    return hashlib.sha256(data).hexdigest()


def save_png(path: Path, image: np.ndarray) -> str:
    return write_bytes_atomic(path, png_bytes(image))


def save_npy(path: Path, array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return write_bytes_atomic(path, buffer.getvalue())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


@dataclass
class Manifest:
    """The JSONL manifest of one output folder."""

    root: Path
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    stamp: dict[str, Any] | None = None  # the MADE_BY stamp a new folder gets with its first item

    @property
    def path(self) -> Path:
        return self.root / MANIFEST

    @classmethod
    def open(cls, root: Path, kind: str | None = None, settings: dict[str, Any] | None = None) -> Manifest:
        """The manifest of ``root`` (made if missing). With ``kind`` (the data command's name) the folder's
        :data:`MADE_BY` stamp must name that command and, when given, these ``settings`` — a folder of another
        command or made otherwise is refused (UsageError) before anything is written; a new folder is stamped."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            root.mkdir()  # raises FileExistsError naming it
        # The folder is made with the first item's files, so a run that fails before any leaves nothing behind.
        manifest = cls(root, stamp=_check_made_by(root, kind, settings or {}) if kind is not None else None)
        if manifest.path.exists():
            for line in manifest.path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut by a kill mid-write: that item is simply redone
                if isinstance(record, dict) and isinstance(record.get("id"), str):
                    manifest.records[record["id"]] = record
        return manifest

    def is_done(self, item_id: str, *, check_hashes: bool = True, source: Path | None = None) -> bool:
        """Recorded, and every recorded file still exists (with its sha256, unless ``check_hashes`` is off); with
        ``source``, the photo it was made from is also unchanged since (its recorded ``source_sha256``)."""
        record = self.records.get(item_id)
        if record is None:
            return False
        if source is not None and record.get("source_sha256") not in (None, _source_digest(source)):
            return False
        for rel, digest in _files_of(record):
            path = self.root / rel
            if not path.is_file() or (check_hashes and sha256_file(path) != digest):
                return False
        return True

    def append(self, record: dict[str, Any]) -> None:
        # Flushed, not fsynced: a killed process loses nothing the kernel already has (only a power cut would),
        # and an fsync per item costs ~5 ms; compact() syncs the whole manifest at the end of a run.
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        if self.stamp is not None:  # stamped before the first item: the stamp binds once there are items
            write_bytes_atomic(self.root / MADE_BY, json.dumps(self.stamp, sort_keys=True).encode())
            self.stamp = None
        with open(self.path, "a") as fh:
            fh.write(line)
        self.records[record["id"]] = record

    def compact(self) -> None:
        """Rewrite the manifest with one line per item, in id order (after resumes it may hold repeats)."""
        lines = [json.dumps(self.records[k], sort_keys=True, separators=(",", ":")) for k in sorted(self.records)]
        write_bytes_atomic(self.path, ("\n".join(lines) + "\n").encode() if lines else b"", durable=True)


def _check_made_by(root: Path, kind: str, settings: dict[str, Any]) -> dict[str, Any] | None:
    """UsageError when ``root`` holds items another command or other settings made; else the stamp to write with
    the first item (None: the folder keeps the stamp it has, or predates stamps)."""
    from facetool.errors import UsageError

    stamp = root / MADE_BY
    has_items = (root / MANIFEST).is_file() and (root / MANIFEST).stat().st_size > 0
    if stamp.is_file() and has_items:
        try:
            made = json.loads(stamp.read_text())
        except ValueError:
            made = {}
        if made.get("command") != kind:
            raise UsageError(f"--out {root}: a folder of facetool data {made.get('command', '?')}, not {kind}; "
                             "use another folder")  # fmt: skip
        before = made.get("settings") or {}
        changed = [_as_option(k, before[k]) for k in settings if k in before and before[k] != settings[k]]
        if changed:
            raise UsageError(f"--out {root}: made {', '.join(changed)}; use another folder for these settings")
        return None
    if has_items and not stamp.is_file():
        return None  # made before stamps existed: nothing to check against, and not ours to stamp
    return {"command": kind, "settings": settings}


def _as_option(key: str, value: Any) -> str:
    """A recorded setting as its options read: ``with --size 64``, ``with --hed``, ``without --hed`` / ``--psi``."""
    name = key.replace("_", "-")
    if value is None or value is False:
        return f"without --{name}"
    return f"with --{name}" if value is True else f"with --{name} {value}"


def _source_digest(path: Path) -> str:
    # Several items (faces) come from one photo, and resume checks every one: hash each photo once per run.
    key = (str(path), *_stat_key(path))
    if key not in _SOURCE_DIGESTS:
        _SOURCE_DIGESTS[key] = sha256_file(path)
    return _SOURCE_DIGESTS[key]


def _stat_key(path: Path) -> tuple[int, int]:
    st = Path(path).stat()
    return st.st_size, st.st_mtime_ns


_SOURCE_DIGESTS: dict[tuple[str, int, int], str] = {}


def _files_of(record: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "file" in record and "sha256" in record:
        yield record["file"], record["sha256"]
    for entry in record.get("files", {}).values():
        yield entry["path"], entry["sha256"]


def run_items(
    manifest: Manifest,
    ids: list[str],
    make: Callable[[int, str], dict[str, Any]],
    label: str,
    *,
    check_hashes: bool = True,
    source_of: Callable[[str], Path] | None = None,
) -> tuple[int, int]:
    """Make every item not already done; ``make(index, id)`` writes the files and returns the manifest record.
    ``source_of(id)``: the photo an item is made from; its sha256 is recorded, and an item whose photo changed since
    is made again.

    Returns (made, skipped). The manifest is compacted at the end.
    """

    def source(item_id: str) -> Path | None:
        return source_of(item_id) if source_of is not None else None

    todo = [
        (i, item_id)
        for i, item_id in enumerate(ids)
        if not manifest.is_done(item_id, check_hashes=check_hashes, source=source(item_id))
    ]
    skipped = len(ids) - len(todo)
    for index, item_id in _progress(todo, label):
        record = make(index, item_id)
        record.setdefault("id", item_id)
        if source_of is not None:
            record["source_sha256"] = _source_digest(source(item_id))
        manifest.append(record)
    manifest.compact()
    return len(todo), skipped


def _progress(items: list, label: str) -> Iterable:
    import sys

    if len(items) < 2 or not sys.stderr.isatty():
        return items
    from rich.progress import track

    return track(items, description=label, transient=True)


def read_manifest(root: Path) -> list[dict[str, Any]]:
    """Records of a folder made by a data command, in id order; [] when there is no manifest."""
    manifest = Manifest.open(root) if (Path(root) / MANIFEST).exists() else None
    return [] if manifest is None else [manifest.records[k] for k in sorted(manifest.records)]


def file_record(root: Path, path: Path, digest: str) -> dict[str, str]:
    return {"path": str(Path(path).relative_to(root)), "sha256": digest}


@contextlib.contextmanager
def torch_threads(count: int | None = 1) -> Iterator[None]:
    """Run a data job with ``count`` torch intra-op threads (None: leave as is); the setting is restored after.

    Data jobs work on one small image at a time (a 256² warp, a 128² raster): a second thread only adds hand-offs,
    and on a busy 2-core machine the spinning made such ops 3–30x slower (measured for warps, XDoG and rasters).
    """
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
