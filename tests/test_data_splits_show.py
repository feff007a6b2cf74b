"""``facetool data split`` / ``show`` and ``ManifestDataset`` on tiny manifests made here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facetool.cli import run
from facetool.data.splits import assign_splits, group_of

POINTS5 = [[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]]


def _records(n: int, identities: int | None = None) -> list[dict]:
    out = []
    for i in range(n):
        labels = {"identity": f"person{i % identities}"} if identities else {}
        out.append({"id": f"{i:05d}", "labels": labels})
    return out


def test_split_keeps_each_identity_on_one_side():
    records = _records(1200, identities=150)
    doc = assign_splits(records, 0.2, seed=3)
    side = {i: "train" for i in doc["train"]} | {i: "test" for i in doc["test"]}
    assert len(side) == 1200 and not set(doc["train"]) & set(doc["test"])
    sides_of_group: dict[str, set[str]] = {}
    for record in records:
        sides_of_group.setdefault(group_of(record), set()).add(side[record["id"]])
    assert all(len(s) == 1 for s in sides_of_group.values())
    assert doc["groups"]["train"] + doc["groups"]["test"] == 150 and doc["group_by"] == "identity"


def test_split_fraction_determinism_and_stability():
    records = _records(1000)
    doc = assign_splits(records, 0.1, seed=0)
    assert 70 <= len(doc["test"]) <= 130 and len(doc["train"]) + len(doc["test"]) == 1000
    assert assign_splits(records, 0.1, seed=0) == doc
    assert assign_splits(records, 0.1, seed=1)["test"] != doc["test"]
    # adding items never moves an existing one
    grown = assign_splits(_records(1500), 0.1, seed=0)
    assert set(doc["test"]) == set(grown["test"]) & {r["id"] for r in records}
    assert set(doc["train"]) <= set(grown["train"])
    # a larger fraction only moves items train -> test
    assert set(doc["test"]) <= set(assign_splits(records, 0.3, seed=0)["test"])


def _gray(path: Path, size: int, value: int, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), value if mode != "RGB" else (value,) * 3).save(path)


@pytest.fixture
def tiny(tmp_path) -> Path:
    """Two items with photo + drawing (+ a 16-bit depth for the second), labels with 5 points, hair, pose."""
    root = tmp_path / "data"
    lines = []
    for k, item_id in enumerate(("a", "b")):
        _gray(root / "photo" / f"{item_id}.png", 100, 128)
        _gray(root / "drawing" / f"{item_id}.png", 100, 255, "L")
        files = {role: {"path": f"{role}/{item_id}.png", "sha256": "x"} for role in ("photo", "drawing")}
        if k == 1:
            depth = np.zeros((100, 100), np.uint16)
            depth[20:80, 20:80] = np.linspace(1000, 60000, 60, dtype=np.uint16)[None, :]
            (root / "depth").mkdir()
            Image.fromarray(depth).save(root / "depth" / "b.png")
            files["depth"] = {"path": "depth/b.png", "sha256": "x"}
        labels = {"points5": POINTS5, "hair": {"class": "brown"}, "pose": {"yaw": 10, "pitch": -5, "roll": 0}}
        lines.append({"id": item_id, "file": f"photo/{item_id}.png", "sha256": "x", "files": files, "labels": labels})
    (root / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


def test_split_cli_writes_splits_json(tiny, capsys):
    assert run(["data", "split", str(tiny), "--test", "0.5", "--seed", "4"]) == 0
    assert "split" in capsys.readouterr().out
    doc = json.loads((tiny / "splits.json").read_text())
    assert sorted(doc["train"] + doc["test"]) == ["a", "b"] and doc["seed"] == 4 and doc["fraction"] == 0.5
    assert run(["data", "split", str(tiny), "--test", "1.5"]) == 2
    assert "--test 1.5" in capsys.readouterr().err


def test_show_sheet_size_and_landmark_dots(tiny, tmp_path, capsys):
    from facetool.data.show import CAPTION, HEADER, PAD, POINT_COLOURS

    sheet_path = tmp_path / "grid.png"
    assert run(["data", "show", str(tiny), "-o", str(sheet_path), "--tile", "160", "--cols", "2"]) == 0
    assert "2 items" in capsys.readouterr().out
    sheet = np.asarray(Image.open(sheet_path).convert("RGB"))
    # roles photo | drawing | depth: 2 cells of 3 tiles side by side
    assert sheet.shape == (HEADER + 160 + CAPTION + 2 * PAD, 2 * 3 * 160 + 3 * PAD, 3)
    red = np.array(POINT_COLOURS["points5"])
    for cell in range(2):
        x0, y0 = PAD + cell * (3 * 160 + PAD), HEADER + PAD
        for x, y in POINTS5:  # 100 px photo -> 160 px tile: scale 1.6 about pixel edges
            px, py = round(x0 + (x + 0.5) * 1.6 - 0.5), round(y0 + (y + 0.5) * 1.6 - 0.5)
            assert (sheet[py, px] == red).all(), (cell, x, y)
        assert (sheet[y0 + 5, x0 + 5] == 128).all()  # the gray photo itself
        assert (sheet[y0 + 80, x0 + 160 + 80] == 255).all()  # the white drawing, no dots on it
    depth_tile = sheet[HEADER + PAD : HEADER + PAD + 160, PAD + 3 * 160 + PAD + 2 * 160 :][:, :160, 0]
    assert depth_tile[80, 40] < depth_tile[80, 120] and depth_tile[5, 5] == 0  # stretched, background black
    assert (sheet == red).all(-1).sum() < 2 * 5 * 25  # only the dots are red


def test_show_wrong_folder_is_one_line(tmp_path, capsys):
    assert run(["data", "show", str(tmp_path), "-o", str(tmp_path / "s.png")]) == 2
    assert "no manifest.jsonl" in capsys.readouterr().err


def test_manifest_dataset_reads_roles_as_tensors(tiny):
    import torch

    from facetool.data.datasets import ManifestDataset
    from facetool.data.splits import split_folder

    data = ManifestDataset(tiny, roles=("photo", "drawing"), split=None, size=64)
    assert len(data) == 2
    item = data[0]
    assert item["id"] == "a" and item["photo"].shape == (3, 64, 64) and item["drawing"].shape == (1, 64, 64)
    assert item["photo"].dtype == torch.float32 and torch.allclose(item["photo"], torch.tensor(128 / 255))
    assert torch.allclose(item["drawing"], torch.tensor(1.0))
    expected = (np.array(POINTS5, np.float32) + 0.5) * 0.64 - 0.5
    assert np.allclose(item["points5"].numpy(), expected)
    batch = ManifestDataset.collate([data[0], data[1]])
    assert batch["photo"].shape == (2, 3, 64, 64) and batch["id"] == ["a", "b"]

    depth = ManifestDataset(tiny, roles=("depth",), split=None)
    assert len(depth) == 1 and depth.skipped == 1
    assert depth[0]["depth"].shape == (1, 100, 100) and abs(float(depth[0]["depth"].max()) - 60000 / 65535) < 1e-6

    # 68 points, where an item has them, scaled like the 5 (item "a" only: "b" has no key, the batch a list)
    manifest = tiny / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    records[0]["labels"]["points68"] = [[10.0 + i, 20.0] for i in range(68)]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    data = ManifestDataset(tiny, roles=("photo",), split=None, size=64)
    dense = data[0]["points68"].numpy()
    assert dense.shape == (68, 2) and np.allclose(dense[3], (np.array([13.0, 20.0]) + 0.5) * 0.64 - 0.5)
    assert "points68" not in data[1] and ManifestDataset.collate([data[0], data[1]])["points68"][1] is None

    split_folder(tiny, 0.5, seed=3)  # seed 3 puts "a" in test, "b" in train
    assert [d["id"] for d in ManifestDataset(tiny, split="test")] == ["a"]
    assert [d["id"] for d in ManifestDataset(tiny, split="train")] == ["b"]


def test_data_modules_do_not_import_torch():
    code = (
        "import sys; import facetool.data.adapters, facetool.data.splits, facetool.data.show; "
        "assert 'torch' not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_data_folder_is_stamped_and_refuses_another_command_or_other_settings(tmp_path):
    from facetool.data.common import MADE_BY, Manifest
    from facetool.errors import UsageError

    folder = tmp_path / "drawings"
    Manifest.open(folder, "drawings", {"size": 64, "vary": 0.0, "hed": False})
    assert not folder.exists()  # a run that fails before its first item leaves nothing behind
    Manifest.open(folder, "drawings", {"size": 128, "vary": 0.0, "hed": True})  # nothing made yet: may differ
    Manifest.open(folder, "drawings", {"size": 64, "vary": 0.0, "hed": False}).append({"id": "a"})
    made = {"command": "drawings", "settings": {"size": 64, "vary": 0.0, "hed": False}}
    assert json.loads((folder / MADE_BY).read_text()) == made
    Manifest.open(folder, "drawings", {"size": 64, "vary": 0.0, "hed": False})  # the same settings: a resume
    with pytest.raises(UsageError, match="a folder of facetool data drawings, not labels"):
        Manifest.open(folder, "labels")
    with pytest.raises(UsageError, match="made with --size 64; use another folder"):
        Manifest.open(folder, "drawings", {"size": 128, "vary": 0.0, "hed": False})
    with pytest.raises(UsageError, match="made with --size 64, without --hed; use another folder"):
        Manifest.open(folder, "drawings", {"size": 128, "vary": 0.0, "hed": True})
    legacy = tmp_path / "legacy"  # made before stamps: nothing to check, and left unstamped
    legacy.mkdir()
    (legacy / "manifest.jsonl").write_text('{"id": "a"}\n')
    Manifest.open(legacy, "labels")
    assert not (legacy / MADE_BY).exists()


def test_show_never_writes_over_the_data_folders_files(tmp_path):
    from typer.testing import CliRunner

    from facetool.cli import build_app

    folder = tmp_path / "d"
    (folder / "photo").mkdir(parents=True)
    Image.new("RGB", (32, 32), (200, 100, 50)).save(folder / "photo" / "a.png")
    manifest = '{"file": "photo/a.png", "id": "a", "sha256": "x"}\n'
    (folder / "manifest.jsonl").write_text(manifest)
    before = (folder / "photo" / "a.png").read_bytes()
    for target in ("manifest.jsonl", "photo/a.png"):
        result = CliRunner().invoke(build_app(), ["data", "show", str(folder), "-o", str(folder / target)])
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert (folder / "manifest.jsonl").read_text() == manifest and (folder / "photo" / "a.png").read_bytes() == before
    result = CliRunner().invoke(build_app(), ["data", "show", str(folder), "-o", str(tmp_path / "s.gif")])
    assert result.exit_code == 2 and ".png" in result.stderr
    result = CliRunner().invoke(build_app(), ["data", "show", str(folder), "-o", f"{tmp_path / 'sheets'}/"])
    assert result.exit_code == 0 and (tmp_path / "sheets" / "d.png").is_file(), result.output
    result = CliRunner().invoke(build_app(), ["data", "show", str(folder), "-o", str(tmp_path / "x.png"), "--roles",
                                              "photo,nosuch"])  # fmt: skip
    assert result.exit_code == 2 and "nosuch" in result.stderr


def test_captions_draw_accents_where_the_machine_has_a_font():
    from facetool.data.show import caption_font

    font = caption_font(11)
    if not isinstance(getattr(font, "path", None), str):
        pytest.skip("no DejaVu Sans (or similar) on this machine: Pillow's ASCII-only font is used")

    def pixels(text: str) -> bytes:
        return bytes(font.getmask(text))

    # a font without the glyphs draws the same box for each (Pillow's built-in one did)
    assert pixels("é") != pixels("ê") and pixels("…") != pixels("é")
