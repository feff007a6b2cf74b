"""The CLI contract: help, version, exit codes, one line on stderr, inputs never changed."""

import hashlib
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetool import __version__
from facetool.cli import build_app


def invoke(*args):
    return CliRunner().invoke(build_app(), list(args))


def test_version_and_help():
    assert invoke("--version").stdout.strip() == f"facetool {__version__}"
    for command in ([], ["detect"], ["stylize"], ["assets"], ["plugins"], ["methods"]):
        result = invoke(*command, "--help")
        assert result.exit_code == 0 and "Usage" in result.stdout
    assert "Examples" in invoke("detect", "--help").stdout
    assert "Examples" in invoke("stylize", "--help").stdout


def test_help_does_not_import_torch():
    code = "import sys; from facetool.cli import run; run(['--help']); assert 'torch' not in sys.modules, 'torch'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _one_line_error(result, code):
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("facetool: error:"), result.stderr
    return lines[0]


def test_usage_errors_exit_2():
    _one_line_error(invoke("detect", "x.jpg", "--bogus"), 2)
    _one_line_error(invoke("detect", "x.jpg", "--face", "many"), 2)
    _one_line_error(invoke("nosuchcommand"), 2)
    assert "unknown method" in _one_line_error(invoke("stylize", "x.jpg", "--method", "nope"), 2)


def _png_claiming(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.fixture
def bad_inputs(tmp_path, sample_path):
    good = sample_path.read_bytes()
    files = {
        "corrupt.png": good[:50] + os.urandom(2000),
        "truncated.png": good[: len(good) // 2],
        "empty.jpg": b"",
        "text.jpg": b"this is not an image, just text\n" * 10,
        "huge.png": _png_claiming(60000, 60000),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "folder").mkdir()
    return tmp_path, list(files)


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def test_bad_inputs_give_one_line_and_leave_files_alone(bad_inputs):
    folder, names = bad_inputs
    before = _digest(folder)
    for name in names + ["folder", "missing.jpg"]:
        for command in (["detect", "-d", "mtcnn"], ["stylize", "-m", "nope"], ["detect"]):
            args = [*command, str(folder / name)]
            result = invoke(*args)
            assert result.exit_code in (1, 2), (args, result.stdout)
            _one_line_error(result, result.exit_code)
    assert _digest(folder) == before


def test_a_newline_in_a_file_name_is_written_escaped_in_the_error_line(tmp_path):
    odd = tmp_path / "two\nlines.jpg"
    odd.write_bytes(b"this is not an image, just text\n" * 10)
    result = invoke("detect", str(odd))
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"facetool: error: {tmp_path}/two\\nlines.jpg: not an image file")
    for args in (["detect", str(tmp_path / "no\nsuch.jpg")], ["generate", "--like", str(tmp_path / "no\nsuch.jpg")],
                 ["detect", str(odd), "-o", str(tmp_path / "out\nput.txt")]):  # fmt: skip
        result = invoke(*args)
        assert result.exit_code in (1, 2) and result.stderr.count("\n") == 1 and "\\n" in result.stderr, args


def test_unwritable_output_and_self_overwrite(tmp_path, sample_path):
    from conftest import require_assets

    require_assets("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")
    photo = tmp_path / "photo.png"
    photo.write_bytes(sample_path.read_bytes())
    before = photo.read_bytes()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = _one_line_error(invoke("detect", str(photo), "-d", "mtcnn", "-o", str(blocker / "out.png")), 1)
    assert "file" in line
    line = _one_line_error(invoke("detect", str(photo), "-d", "mtcnn", "-o", str(photo)), 2)  # -o names an input
    assert "overwrite" in line
    assert photo.read_bytes() == before


def test_tiny_image_is_fine(tmp_path):
    from PIL import Image

    from conftest import require_assets

    require_assets("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")
    Image.new("RGB", (1, 1), (200, 100, 50)).save(tmp_path / "one.png")
    result = invoke("detect", str(tmp_path / "one.png"), "-d", "mtcnn", "--json")
    assert result.exit_code == 0, result.stderr
    assert '"faces": []' in result.stdout


def test_debug_shows_traceback():
    result = CliRunner().invoke(build_app(), ["--debug", "detect", "missing.jpg"])
    assert result.exit_code != 0 and result.exception is not None


def test_detectors_lists_settings_and_the_default():
    import json

    result = invoke("detectors", "--json")
    assert result.exit_code == 0, result.stderr
    data = {d["name"]: d for d in json.loads(result.stdout)}
    assert data["dlib"]["default"] and not data["mtcnn"]["default"]
    assert "points68" in data["dlib"]["features"] and "dlib-shape-predictor-68" in data["dlib"]["assets"]
    assert {o["name"] for o in data["dlib"]["options"]} >= {"proposals", "flip", "refine", "upsample"}


def test_assets_list_names_the_release_file():
    import json

    result = invoke("assets", "list", "--json")
    assert result.exit_code == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["mtcnn-onet"]["archive"] == "facenet_pytorch-2.6.0-py3-none-any.whl"


def test_methods_lists_and_details_one_method():
    listing = invoke("methods", "--json")
    names = {m["name"] for m in json.loads(listing.stdout)}
    assert {"loomis-pix2pix", "loomis-cyclegan", "pix2pix", "cyclegan"} <= names
    one = json.loads(invoke("methods", "loomis-pix2pix", "--json").stdout)
    assert one["train_streams"] == {"pair": ["photo", "loomis"]}
    assert {"lambda-l1", "lr", "generator"} <= {o["name"] for o in one["train_options"]}
    text = invoke("methods", "loomis-pix2pix").stdout
    assert "training options" in text and "lambda-l1" in text
    unknown = invoke("methods", "no-such-method")
    assert unknown.exit_code == 2 and "no-such-method" in unknown.output


def test_debug_after_the_command_is_taken_not_a_traceback(tmp_path):
    result = invoke("data", "split", str(tmp_path / "missing"), "--debug")
    assert "No such option" not in result.output  # taken as facetool --debug, not an unknown option
    assert result.exit_code != 0 and result.exception is not None  # --debug: the error itself, traceback and all


def test_an_unforeseen_file_system_error_is_one_line_naming_the_path(capsys):
    from facetool.cli import _handle

    for err, expected in (
        (PermissionError(1, "Operation not permitted", "ro/.p.safetensors.26077.tmp"), "ro/: cannot write in this"),
        (FileExistsError(17, "File exists", "d/manifest.jsonl"), "d/manifest.jsonl: File exists"),
        (IsADirectoryError(21, "Is a directory", "d/.maps.1.tmp", None, "d/maps"), "d/maps: Is a directory"),
    ):
        assert _handle(err, debug=False) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0] and "Errno" not in lines[0], lines


def test_detect_face_number_past_the_faces_is_a_usage_error(sample_path):
    from conftest import require_assets

    require_assets("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")
    line = _one_line_error(invoke("detect", str(sample_path), "-d", "mtcnn", "--face", "5"), 2)
    assert "has 1 face(s)" in line


def test_json_output_is_valid_unicode_for_a_file_name_that_is_not_utf8(capsys):
    import os

    from facetool.cli.common import print_json

    name = os.fsdecode(b"lat\xe9.png")  # what Python makes of a Latin-1 file name: a lone surrogate
    print_json({"image": name, "path": Path(name), "points": [[1, 2]]})
    text = capsys.readouterr().out
    text.encode("utf-8")  # no lone surrogate left: strict JSON readers take it
    assert json.loads(text) == {"image": "lat\\xe9.png", "path": "lat\\xe9.png", "points": [[1, 2]]}
