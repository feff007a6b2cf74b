"""``facetool data import``: tiny fake datasets in each published layout -> the manifest, and wrong layouts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facetool.cli import run

POINTS = [[20, 24], [44, 24], [32, 36], [22, 48], [42, 48]]


def _image(path: Path, size: tuple[int, int], colour: tuple[int, ...], mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)
    return path


def _records(out: Path) -> dict[str, dict]:
    lines = (out / "manifest.jsonl").read_text().splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _import(capsys, *args: str) -> tuple[int, str, str]:
    code = run(["data", "import", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _make_apdrawing(root: Path) -> Path:
    db = root / "APDrawingDB"  # the archive unpacks into one folder: the importer steps into it
    for phase, name, photo_colour in (("train", "a", (200, 120, 90)), ("test", "b", (90, 120, 200))):
        sheet = np.zeros((64, 128, 3), np.uint8)
        sheet[:, :64] = photo_colour
        sheet[:, 64:] = 255
        sheet[10:54, 96] = 0  # one vertical pen line in the drawing half
        (db / "data" / phase).mkdir(parents=True, exist_ok=True)
        Image.fromarray(sheet).save(db / "data" / phase / f"{name}.png")
    (db / "landmark" / "ALL").mkdir(parents=True)
    (db / "landmark" / "ALL" / "a.txt").write_text("".join(f"{x} {y}\n" for x, y in POINTS))
    _image(db / "mask" / "ALL" / "a.png", (64, 64), 255, "L")
    return db


def test_apdrawing_cuts_sheets_and_reads_landmarks_and_masks(tmp_path, capsys):
    db = _make_apdrawing(tmp_path / "src")
    out = tmp_path / "out"
    code, stdout, _ = _import(capsys, "apdrawing", tmp_path / "src", "--out", out)
    assert code == 0 and "made 2" in stdout and "1 without landmark" in stdout
    records = _records(out)
    assert sorted(records) == ["a", "b"]
    a = records["a"]
    assert a["source"] == "apdrawing" and a["seed"] is None and a["licence"]
    assert a["labels"] == {"points5": [[float(x), float(y)] for x, y in POINTS], "source_split": "train"}
    assert records["b"]["labels"] == {"source_split": "test"}
    # derived files live in --out (relative paths), the mask is referenced in place (absolute)
    assert a["files"]["photo"]["path"] == "photo/a.png" and a["file"] == "photo/a.png"
    mask = db / "mask" / "ALL" / "a.png"
    assert a["files"]["mask"] == {"path": str(mask.resolve()), "sha256": _sha(mask)}
    assert "mask" not in records["b"]["files"]
    photo = np.asarray(Image.open(out / "photo" / "a.png"))
    drawing = Image.open(out / "drawing" / "a.png")
    assert photo.shape == (64, 64, 3) and (photo == (200, 120, 90)).all()
    assert drawing.mode == "L" and drawing.size == (64, 64)
    d = np.asarray(drawing)
    assert d[30, 32] == 0 and d[30, 0] == 255 and (d == 0).sum() == 44
    for record in records.values():
        for entry in record["files"].values():
            assert _sha(out / entry["path"]) == entry["sha256"]
    # resumable and deterministic: a re-run makes nothing and leaves the bytes alone
    before = (out / "manifest.jsonl").read_bytes(), (out / "drawing" / "a.png").read_bytes()
    code, stdout, _ = _import(capsys, "apdrawing", tmp_path / "src", "--out", out)
    assert code == 0 and "made 0, skipped 2" in stdout
    assert ((out / "manifest.jsonl").read_bytes(), (out / "drawing" / "a.png").read_bytes()) == before
    # the published train/test split can be kept
    assert run(["data", "split", str(out), "--source-split"]) == 0
    doc = json.loads((out / "splits.json").read_text())
    assert (doc["train"], doc["test"], doc["group_by"]) == (["a"], ["b"], "source_split")


def test_cartoonset_reads_attributes_and_hair_class(tmp_path, capsys):
    src = tmp_path / "cartoonset10k"
    hair_rgb = {0: (30, 25, 25), 1: (230, 200, 120)}  # index 0 drawn black, index 1 drawn blond
    for n in range(4):
        index = n % 2
        cartoon = np.zeros((100, 100, 4), np.uint8)  # transparent background, as the published PNGs
        cartoon[20:90, 25:75] = (240, 200, 170, 255)  # face
        cartoon[20:32, 25:75] = (*hair_rgb[index], 255)  # hair on top
        src.mkdir(exist_ok=True)
        Image.fromarray(cartoon).save(src / f"cs{n}.png")
        (src / f"cs{n}.csv").write_text(f'"eye_angle", {n % 3}, 3\n"hair_color", {index}, 10\n"hair", 29, 111\n')
    _image(src / "stray.png", (10, 10), (0, 0, 0))  # no .csv beside it: skipped, reported
    out = tmp_path / "out"
    code, stdout, _ = _import(capsys, "cartoonset", src, "--out", out)
    assert code == 0 and "made 4" in stdout and "1 .png without a .csv" in stdout
    records = _records(out)
    assert sorted(records) == ["cs0", "cs1", "cs2", "cs3"]
    cs1 = records["cs1"]
    assert cs1["labels"]["attributes"] == {"eye_angle": 1, "hair_color": 1, "hair": 29}
    # hair class measured from the cartoons of each hair_color index, named with the cartoon generator's classes
    assert cs1["labels"]["hair"] == "blonde" and cs1["labels"]["hair_rgb"] == [230, 200, 120]
    assert records["cs2"]["labels"]["hair"] == "black" and records["cs2"]["labels"]["hair_rgb"] == [30, 25, 25]
    assert cs1["files"]["cartoon"]["path"] == str((src / "cs1.png").resolve()) and cs1["licence"].startswith("CC BY")


def test_lfw_identity_is_the_folder_name(tmp_path, capsys):
    src = tmp_path / "lfw"
    for person, count in (("Ann_Lee", 2), ("Bob", 1)):
        for k in range(1, count + 1):
            _image(src / person / f"{person}_{k:04d}.jpg", (32, 32), (k * 40, 80, 80))
    (src / "pairs.txt").write_text("10 300\n")  # files beside the people are fine
    out = tmp_path / "out"
    code, stdout, _ = _import(capsys, "lfw", tmp_path, "--out", out)  # parent folder: steps into lfw/
    assert code == 0 and "made 3" in stdout
    records = _records(out)
    assert sorted(records) == ["Ann_Lee_0001", "Ann_Lee_0002", "Bob_0001"]
    assert records["Ann_Lee_0002"]["labels"] == {"identity": "Ann_Lee", "image_number": 2}
    assert records["Bob_0001"]["file"] == str((src / "Bob" / "Bob_0001.jpg").resolve())


def test_folder_bitmoji_and_source_changes(tmp_path, capsys):
    src = tmp_path / "imgs"
    _image(src / "x.png", (16, 16), (1, 2, 3))
    _image(src / "sub" / "y.jpg", (16, 16), (9, 9, 9))
    _image(src / ".hidden" / "z.png", (16, 16), (9, 9, 9))
    out = src / "manifest_out"  # the output may sit inside the source: it is never scanned
    assert _import(capsys, "folder", src, "--out", out, "--role", "drawing", "--licence", "mine")[0] == 0
    records = _records(out)
    assert sorted(records) == ["sub__y", "x"]
    assert records["x"]["files"] == {"drawing": {"path": str((src / "x.png").resolve()), "sha256": _sha(src / "x.png")}}
    assert records["x"]["licence"] == "mine" and "identity" not in records["x"]["labels"]
    # a file changes and one disappears: the manifest follows the source
    _image(src / "x.png", (16, 16), (50, 2, 3))
    (src / "sub" / "y.jpg").unlink()
    code, stdout, _ = _import(capsys, "folder", src, "--out", out, "--role", "drawing")
    assert code == 0 and "made 1" in stdout and "removed 1" in stdout
    assert list(_records(out)) == ["x"] and _records(out)["x"]["sha256"] == _sha(src / "x.png")
    # a folder holds one source's manifest
    code, _, stderr = _import(capsys, "bitmoji", src, "--out", out)
    assert code == 2 and "already holds a 'folder' manifest" in stderr

    bitmojis = tmp_path / "bitmojis"
    _image(bitmojis / "1.png", (24, 24), (255, 0, 0, 128), "RGBA")
    assert _import(capsys, "bitmoji", bitmojis, "--out", tmp_path / "bm")[0] == 0
    record = _records(tmp_path / "bm")["1"]
    assert record["source"] == "bitmoji" and list(record["files"]) == ["cartoon"]


def test_paired_matches_by_stem_and_reports_the_rest(tmp_path, capsys):
    src = tmp_path / "pairs"
    for name in ("1.png", "2.png", "3.png", "train/4.png"):
        _image(src / "A" / name, (16, 16), (10, 10, 10))
    for name in ("1.jpg", "2.png", "5.png", "train/4.png"):
        _image(src / "B" / name, (16, 16), (200, 200, 200))
    out = tmp_path / "out"
    code, stdout, _ = _import(capsys, "paired", src, "--out", out, "--b-role", "cartoon")
    assert code == 0 and "made 3" in stdout
    assert "1 unmatched in A (e.g. A/3)" in stdout and "1 unmatched in B (e.g. B/5)" in stdout
    records = _records(out)
    assert sorted(records) == ["1", "2", "train__4"]
    assert set(records["1"]["files"]) == {"photo", "cartoon"}
    assert records["1"]["files"]["cartoon"]["path"].endswith("B/1.jpg")


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("apdrawing", "not an APDrawing folder: expected data/<train|test>/<name>.png"),
        ("cartoonset", "not a CartoonSet folder: expected <name>.png with <name>.csv beside it"),
        ("lfw", "not an LFW folder: expected <Person_Name>/<Person_Name>_0001.jpg"),
        ("paired", "not a paired folder: expected A/ and B/"),
        ("bitmoji", "not a Bitmoji folder: expected image files"),
        ("folder", "not an image folder: expected image files"),
    ],
)
def test_wrong_layout_is_one_line_saying_what_was_expected(tmp_path, capsys, fmt, expected):
    src = tmp_path / "src"
    (src / "notes").mkdir(parents=True)
    (src / "notes" / "readme.txt").write_text("not a dataset")
    if fmt not in ("bitmoji", "folder"):
        _image(src / "loose.png", (8, 8), (0, 0, 0))  # an image, but not in the layout
    code, stdout, stderr = _import(capsys, fmt, src, "--out", tmp_path / "out")
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and expected in lines[0], stderr
    assert "Traceback" not in stderr + stdout and not (tmp_path / "out" / "manifest.jsonl").exists()


def test_unknown_format_and_missing_source(tmp_path, capsys):
    code, _, stderr = _import(capsys, "celeba", tmp_path, "--out", tmp_path / "o")
    assert code == 2 and "unknown dataset format 'celeba'" in stderr
    code, _, stderr = _import(capsys, "lfw", tmp_path / "nope", "--out", tmp_path / "o")
    assert code == 2 and "no such folder" in stderr
    photo = _image(tmp_path / "one.png", (8, 8), (0, 0, 0))
    code, _, stderr = _import(capsys, "folder", photo, "--out", tmp_path / "o")
    assert code == 2 and "one.png: not a folder" in stderr


@pytest.mark.parametrize("option", ["--role", "--a-role", "--b-role"])
@pytest.mark.parametrize("role", ["", "a/b", "../up", " photo"])
def test_a_role_is_a_plain_word(tmp_path, capsys, option, role):
    src = tmp_path / "src"
    _image(src / "A" / "x.png", (8, 8), (0, 0, 0))
    _image(src / "B" / "x.png", (8, 8), (9, 9, 9))
    fmt = "folder" if option == "--role" else "paired"
    code, _, stderr = _import(capsys, fmt, src, "--out", tmp_path / "out", option, role)
    assert code == 2 and f"{option} {role!r}: a role is a plain word" in stderr, stderr
    assert not (tmp_path / "out").exists()
