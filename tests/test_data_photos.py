"""``facetool data photos``: deterministic, resumable generated faces with a manifest."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from facetool.cli import build_app
from facetool.errors import FacetoolError, UsageError

from conftest import require_assets

IR_ASSETS = tuple(f"random-face-{net}-{part}" for net in ("mapping", "synthesis") for part in ("xml", "bin"))


@pytest.fixture(scope="module")
def generator():
    pytest.importorskip("openvino")
    require_assets(*IR_ASSETS)
    from facetool.data.photos import FaceGenerator

    return FaceGenerator()


def _bytes(folder, ident):
    return (folder / "photos" / f"{ident}.png").read_bytes()


def test_same_seed_same_bytes_and_manifest(tmp_path, generator):
    from facetool.data.common import item_seed, read_manifest, sha256_file
    from facetool.data.photos import SOURCE, make_photos

    assert make_photos(tmp_path / "a", 2, size=64, seed=5, generator=generator) == (2, 0)
    # A second run in a fresh process-like setting (the CLI builds its own generator) gives the same bytes.
    result = CliRunner().invoke(
        build_app(), ["data", "photos", "--count", "2", "--size", "64", "--seed", "5", "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "made 2" in result.stdout
    for ident in ("000000", "000001"):
        assert _bytes(tmp_path / "a", ident) == _bytes(tmp_path / "b", ident)
    assert _bytes(tmp_path / "a", "000000") != _bytes(tmp_path / "a", "000001")

    records = read_manifest(tmp_path / "a")
    assert [r["id"] for r in records] == ["000000", "000001"]
    for index, record in enumerate(records):
        assert record["file"] == f"photos/{record['id']}.png"
        assert record["sha256"] == sha256_file(tmp_path / "a" / record["file"])
        assert record["seed"] == item_seed(5, index)
        assert record["source"] == SOURCE
        assert "research" in record["licence"]
        assert record["labels"] == {"psi": 0.7, "size": 64}

    from PIL import Image

    with Image.open(tmp_path / "a" / "photos" / "000000.png") as image:
        assert image.size == (64, 64) and image.mode == "RGB"


def test_resume_remakes_only_what_is_missing(tmp_path, generator):
    from facetool.data.photos import make_photos

    out = tmp_path / "photos"
    make_photos(out, 2, size=64, seed=1, generator=generator)
    first, second = _bytes(out, "000000"), _bytes(out, "000001")
    kept_mtime = (out / "photos" / "000000.png").stat().st_mtime_ns

    (out / "photos" / "000001.png").unlink()
    assert make_photos(out, 2, size=64, seed=1, generator=generator) == (1, 1)
    assert _bytes(out, "000001") == second
    assert (out / "photos" / "000000.png").stat().st_mtime_ns == kept_mtime

    # A kill while the manifest line was being written: the cut line's item is made again, the other kept.
    manifest = out / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    manifest.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    assert make_photos(out, 2, size=64, seed=1, generator=generator) == (1, 1)
    assert _bytes(out, "000000") == first and _bytes(out, "000001") == second
    assert [json.loads(line)["id"] for line in manifest.read_text().splitlines()] == ["000000", "000001"]

    # Growing the set keeps what is there; other settings in the same folder are refused.
    with pytest.raises(UsageError, match="--psi"):
        make_photos(out, 2, size=64, seed=1, psi=0.5, generator=generator)
    with pytest.raises(UsageError, match="--seed"):
        make_photos(out, 2, size=64, seed=2, generator=generator)


def test_bad_arguments_fail_before_loading(tmp_path):
    from facetool.data.photos import make_photos

    for kwargs, option in (({"size": 2048}, "--size"), ({"psi": -1.0}, "--psi"), ({"batch": 0}, "--batch")):
        with pytest.raises(UsageError, match=option):
            make_photos(tmp_path, 1, **kwargs)
    result = CliRunner().invoke(build_app(), ["data", "photos", "--count", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--count" in result.stderr


def test_missing_openvino_names_the_extra(monkeypatch):
    from facetool.data.photos import FaceGenerator

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(FacetoolError, match=r"pip install 'facetool\[data\]'"):
        FaceGenerator()
