"""``facetool data split``: a train/test split of a data folder, deterministic, stable and without identity leakage.

Items are grouped — by ``labels.identity`` when present (LFW's person; generators give each generated photo its
own identity and derived pair folders keep the photo's), else by ``labels.photo_id``, else by the item id — and
each *group* goes to test when ``sha256("<seed>:<group>")`` read as a number in [0, 1) is below the test fraction.
So a person never lands on both sides, the same seed always gives the same split, and adding items never moves
an existing one (the split of a group depends on nothing but its name). The price: the test share is the fraction
only on average (binomial spread; ±3 % of 1000 groups at 0.1).

``DIR/splits.json``: {"train": [ids], "test": [ids], "seed", "fraction", "group_by", "groups": {"train", "test"}}.
With ``--source-split`` the dataset's own split (``labels.source_split``, e.g. APDrawing's data/train vs data/test)
is kept instead.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import typer

from facetool.errors import FacetoolError, UsageError

SPLITS = "splits.json"


def group_of(record: dict[str, Any]) -> str:
    """The name of the group an item belongs to (items of one group always share a side)."""
    labels = record.get("labels") or {}
    for key in ("identity", "photo_id"):
        if labels.get(key) not in (None, ""):
            return f"{key}:{labels[key]}"
    return f"id:{record['id']}"


def unit_hash(seed: int, group: str) -> float:
    """sha256("<seed>:<group>") as a number uniform in [0, 1)."""
    digest = hashlib.sha256(f"{int(seed)}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_splits(records: list[dict[str, Any]], fraction: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """records (manifest lines) -> the splits.json document (ids sorted)."""
    if not 0.0 <= fraction < 1.0:
        raise UsageError(f"--test {fraction}: must be at least 0 and below 1")
    sides: dict[str, list[str]] = {"train": [], "test": []}
    groups: dict[str, set[str]] = {"train": set(), "test": set()}
    for record in records:
        group = group_of(record)
        side = "test" if unit_hash(seed, group) < fraction else "train"
        sides[side].append(record["id"])
        groups[side].add(group)
    kinds = sorted({group_of(r).split(":", 1)[0] for r in records})
    return {
        "train": sorted(sides["train"]),
        "test": sorted(sides["test"]),
        "seed": int(seed),
        "fraction": float(fraction),
        "group_by": "+".join(kinds) if kinds else "id",
        "groups": {side: len(names) for side, names in groups.items()},
    }


def source_splits(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The dataset's published split, from ``labels.source_split``: names starting with "test" (APDrawing's test,
    test_single) go to test, anything else to train."""
    missing = [r["id"] for r in records if not (r.get("labels") or {}).get("source_split")]
    if missing:
        raise UsageError(f"--source-split: item {missing[0]!r} has no labels.source_split")
    is_test = {r["id"]: str(r["labels"]["source_split"]).startswith("test") for r in records}
    test = sorted(k for k, v in is_test.items() if v)
    train = sorted(k for k, v in is_test.items() if not v)
    return {"train": train, "test": test, "seed": None, "fraction": None, "group_by": "source_split",
            "groups": {"train": len(train), "test": len(test)}}  # fmt: skip


def write_splits(root: Path, document: dict[str, Any]) -> Path:
    from facetool.data.common import write_bytes_atomic

    path = Path(root) / SPLITS
    write_bytes_atomic(path, (json.dumps(document, indent=1, sort_keys=True) + "\n").encode())
    return path


def read_splits(root: Path) -> dict[str, Any]:
    """``root/splits.json``; FacetoolError naming the command to run when it is missing."""
    path = Path(root) / SPLITS
    if not path.is_file():
        raise FacetoolError(f"{path}: no split yet (run: facetool data split {root})")
    return json.loads(path.read_text())


def split_folder(root: Path, fraction: float = 0.1, seed: int = 0, *, use_source: bool = False) -> dict[str, Any]:
    from facetool.data.common import MANIFEST, read_manifest

    root = Path(root)
    if not (root / MANIFEST).is_file():
        raise UsageError(f"{root}: no {MANIFEST} (not a folder made by a facetool data command)")
    records = read_manifest(root)
    document = source_splits(records) if use_source else assign_splits(records, fraction, seed)
    write_splits(root, document)
    return document


HELP = """Split a data folder into train and test, by seed, with no identity on both sides.

Items are grouped by labels.identity (else labels.photo_id, else the item id) and a group goes to test when a
hash of seed and group name falls below --test: deterministic, and adding items never moves existing ones.
Writes DIR/splits.json.

[b]Examples[/b]

  facetool data split data/lfw --test 0.1

  facetool data split data/drawings --test 0.2 --seed 1

  facetool data split data/apdrawing --source-split
"""


def register_cli(data_app: typer.Typer) -> None:
    @data_app.command("split", help=HELP, no_args_is_help=True)
    def split_command(
        folder: Path = typer.Argument(..., help="A folder with a manifest.jsonl."),
        test: float = typer.Option(0.1, "--test", help="Share of groups that go to test, in [0, 1)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the assignment."),
        source_split: bool = typer.Option(False, "--source-split", help="Keep the dataset's own train/test split."),
    ) -> None:
        doc = split_folder(folder, test, seed, use_source=source_split)
        groups = doc["groups"]
        typer.echo(
            f"split {folder}: {len(doc['train'])} train, {len(doc['test'])} test "
            f"({groups['train']}/{groups['test']} groups by {doc['group_by']}) -> {folder / SPLITS}"
        )
