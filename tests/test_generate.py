"""``facetool generate`` on a fake method: seeds, layouts from JSON and from a photo's face, grids and folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facetool import hookimpl
from facetool.cli import build_app
from facetool.generate import LAYOUT_POINTS, layout_from_face, read_layout, write_layout
from facetool.imageio import read_image, write_image
from facetool.methods import MethodSpec
from facetool.plugins import get_host

from conftest import FixedDetectorPlugin, two_faces

SIZE = 32


class DotRunner:
    """Noise images with a white dot on each layout point: the test can see where the layout went."""

    layouts: list = []

    def __call__(self, count, seed, layout):
        DotRunner.layouts.append(layout)
        generator = torch.Generator().manual_seed(seed)
        images = torch.rand(count, 3, SIZE, SIZE, generator=generator) * 0.5
        for x, y in (layout or {}).values():
            images[:, :, min(SIZE - 1, int(y * SIZE)), min(SIZE - 1, int(x * SIZE))] = 1.0
        return images


class FakeGenerate:
    @hookimpl
    def register_generators(self, register):
        register(MethodSpec(name="dots", task="generate", load=lambda o, d, w: DotRunner(), description="test",
                            input_size=SIZE, sizes=(SIZE,), template="portrait"))  # fmt: skip


@pytest.fixture
def app(monkeypatch):
    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    get_host().register_object(FakeGenerate(), "fake-generate")
    get_host().register_object(FixedDetectorPlugin(), "fixed")
    DotRunner.layouts.clear()
    return build_app()


def run(app, *args):
    result = CliRunner().invoke(app, list(args))
    return result


def test_same_seed_same_images_and_a_grid_for_several(app, tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for path, seed in ((a, "1"), (b, "1"), (c, "2")):
        result = run(app, "generate", "-m", "dots", "--count", "4", "--seed", seed, "-o", str(path))
        assert result.exit_code == 0, result.output
    assert np.array_equal(read_image(a), read_image(b)) and not np.array_equal(read_image(a), read_image(c))
    assert read_image(a).shape == (2 * SIZE + 2, 2 * SIZE + 2, 3)  # 2 × 2 grid with a 2 px gap
    folder = tmp_path / "out"
    folder.mkdir()
    assert run(app, "generate", "-m", "dots", "-n", "3", "-o", str(folder)).exit_code == 0
    assert sorted(p.name for p in folder.iterdir()) == [f"dots-seed0-{i:03d}.png" for i in range(3)]
    made = tmp_path / "new" / "faces"  # not there yet: the trailing / says it is a folder
    assert run(app, "generate", "-m", "dots", "-n", "2", "-o", f"{made}/").exit_code == 0
    assert sorted(p.name for p in made.iterdir()) == ["dots-seed0-000.png", "dots-seed0-001.png"]


def test_dash_output_writes_the_grid_to_standard_output(app, tmp_path):
    import io

    from PIL import Image

    file = tmp_path / "grid.png"
    assert run(app, "generate", "-m", "dots", "-n", "4", "--seed", "3", "-o", str(file)).exit_code == 0
    piped = run(app, "generate", "-m", "dots", "-n", "4", "--seed", "3", "-o", "-")
    assert piped.exit_code == 0 and piped.stderr.strip() == "4 images -> -", piped.stderr
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(piped.stdout_bytes))), read_image(file))
    assert not (tmp_path / "-").exists()


def test_layout_json_round_trip_and_its_errors(app, tmp_path):
    layout = {"left_eye": (0.3, 0.4), "right_eye": (0.7, 0.4), "chin": (0.5, 0.9)}
    path = tmp_path / "layout.json"
    write_layout(path, layout, 128)
    back = read_layout(path)
    assert set(back) == set(layout) and all(np.allclose(back[k], layout[k]) for k in layout)
    assert run(app, "generate", "-m", "dots", "--landmarks", str(path), "-o", str(tmp_path / "x.png")).exit_code == 0
    assert DotRunner.layouts[-1] == back
    for bad, message in (("[]", "expected"), ('{"size": 0, "points": {}}', "size must"),
                         ('{"size": 8, "points": {"ear": [1, 2]}}', "unknown point"),
                         ('{"size": 8, "points": {"nose": [1]}}', "must be [x, y]"), ("{", "not a JSON")):  # fmt: skip
        path.write_text(bad)
        result = run(app, "generate", "-m", "dots", "--landmarks", str(path), "-o", str(tmp_path / "y.png"))
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output


def test_like_takes_the_largest_faces_layout_in_the_methods_template(app, tmp_path):
    photo = tmp_path / "photo.png"
    write_image(photo, np.zeros((300, 400, 3), np.uint8))
    result = run(app, "generate", "-m", "dots", "--like", str(photo), "-d", "fixed", "-o", str(tmp_path / "o.png"))
    assert result.exit_code == 0, result.output
    layout = DotRunner.layouts[-1]
    expected = layout_from_face(two_faces()[0], "portrait", SIZE)
    assert layout == expected and list(layout) == list(LAYOUT_POINTS[:5])  # 5-point faces: no chin
    from facetool.align import get_template

    template = np.array(get_template("portrait").points)  # a face that fits the template lands on it
    assert np.abs(np.array(list(layout.values())) - template).max() < 0.05


def test_face_picks_which_face_like_reads_and_wrong_picks_are_usage_errors(app, tmp_path):
    photo = tmp_path / "photo.png"
    write_image(photo, np.zeros((300, 400, 3), np.uint8))
    out = str(tmp_path / "o.png")
    result = run(app, "generate", "-m", "dots", "--like", str(photo), "-d", "fixed", "--face", "1", "-o", out)
    assert result.exit_code == 0, result.output
    assert DotRunner.layouts[-1] == layout_from_face(two_faces()[1], "portrait", SIZE)
    for args, message in ((("--like", str(photo), "--face", "2"), "--face 2 asked for, but the photo has 2 face"),
                          (("--like", str(photo), "--face", "all"), "--like takes one face's layout"),
                          (("--face", "1"), "give --like IMAGE")):  # fmt: skip
        result = run(app, "generate", "-m", "dots", "-d", "fixed", *args, "-o", out)
        assert result.exit_code == 2 and message in result.stderr, result.output


class ReadingRunner(DotRunner):
    def layout_from_image(self, image):
        return {"nose": [0.5, 0.6]}


class NoFaces:
    @hookimpl
    def register_detectors(self, register):
        from facetool.detectors import DetectorSpec

        class Blind:
            def detect(self, image):
                return []

        register(DetectorSpec(name="blind", load=lambda o, d: Blind(), description="test"))

    @hookimpl
    def register_generators(self, register):
        register(MethodSpec(name="reader", task="generate", load=lambda o, d, w: ReadingRunner(), description="test",
                            input_size=SIZE, sizes=(SIZE,), template="portrait"))  # fmt: skip


def test_like_without_a_face_says_the_predictor_read_the_layout(app, tmp_path):
    get_host().register_object(NoFaces(), "no-faces")
    blank = tmp_path / "blank.png"
    write_image(blank, np.full((60, 60, 3), 200, np.uint8))
    result = run(app, "generate", "-m", "reader", "--like", str(blank), "-d", "blind", "-o", str(tmp_path / "o.png"))
    assert result.exit_code == 0, result.output
    assert DotRunner.layouts[-1] == {"nose": [0.5, 0.6]}
    assert "blind found no face" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = run(app, "generate", "-m", "dots", "--like", str(blank), "-d", "blind", "-o", str(tmp_path / "p.png"))
    assert result.exit_code == 1 and "no face found" in result.stderr  # no predictor: an error, as before
    for shape in ((1, 1), (8, 8), (50, 4000)):  # nothing there to read a layout from, drawn or photographed
        tiny = tmp_path / f"tiny{shape[0]}.png"
        write_image(tiny, np.full((*shape, 3), 200, np.uint8))
        result = run(app, "generate", "-m", "reader", "--like", str(tiny), "-d", "blind", "-o", str(tmp_path / "t.png"))
        assert result.exit_code == 1 and "holds no face to take a layout from" in result.stderr, result.output
    assert not (tmp_path / "t.png").exists()
    piped = CliRunner().invoke(app, ["generate", "-m", "reader", "--like", "-", "-d", "blind", "-o",
                                     str(tmp_path / "s.png")], input=blank.read_bytes())  # fmt: skip
    assert piped.exit_code == 0 and piped.stderr.startswith("--like -: blind found no face"), piped.output


def test_usage_errors(app, tmp_path):
    layout = tmp_path / "l.json"
    layout.write_text('{"size": 8, "points": {"nose": [4, 4]}}')
    result = run(app, "generate", "-m", "dots", "--landmarks", str(layout), "--like", str(layout))
    assert result.exit_code == 2 and "not both" in result.stderr
    result = run(app, "generate", "-m", "dots", "-o", str(tmp_path / "x.gif"))
    assert result.exit_code == 2 and "give an image file (.png, .jpg" in result.stderr
    result = run(app, "generate", "-m", "dots", "-o", str(tmp_path / "x.JPG"))  # any format write_image writes
    assert result.exit_code == 0 and (tmp_path / "x.JPG").read_bytes()[:2] == b"\xff\xd8", result.output
    assert json.loads(layout.read_text())["size"] == 8  # inputs untouched


def test_an_unwritable_output_folder_is_one_line_before_any_work(app, tmp_path, monkeypatch):
    import tempfile
    from pathlib import Path

    from facetool import imageio

    real = tempfile.mkstemp
    locked = tmp_path / "ro"
    locked.mkdir()

    def mkstemp(*args, dir=None, **kwargs):  # chmod does not stop root: refuse creation under `locked` instead
        if dir is not None and locked in (Path(dir), *Path(dir).parents):
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(imageio.tempfile, "mkstemp", mkstemp)
    for target in (f"{locked}/g/", f"{locked}/", str(locked / "grid.png")):
        result = run(app, "generate", "-m", "dots", "-n", "2", "-o", target)
        assert result.exit_code == 1 and "directory is not writable" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and DotRunner.layouts == []


class LoudGenerate:
    @hookimpl
    def register_generators(self, register):
        wrong = {"loud": lambda n, seed, layout: DotRunner()(n, seed, layout) * 255,
                 "short": lambda n, seed, layout: DotRunner()(1, seed, layout)}  # fmt: skip
        for name, runner in wrong.items():
            register(MethodSpec(name=name, task="generate", load=lambda o, d, w, r=runner: r, description="test",
                                input_size=SIZE, sizes=(SIZE,)))  # fmt: skip


@pytest.mark.parametrize(
    ("method", "message"),
    [("loud", "method loud returned values in [0.0102, 127]"),
     ("short", "method short returned a (1, 3, 32, 32) tensor")],  # fmt: skip
)
def test_a_generator_breaking_its_contract_is_named_in_one_line(app, tmp_path, method, message):
    get_host().register_object(LoudGenerate(), "loud")
    result = run(app, "generate", "-m", method, "--count", "3", "-o", str(tmp_path / "g.png"))
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "g.png").exists()


def test_json_names_the_files_and_the_layout_as_a_landmarks_file_holds_it(app, tmp_path):
    photo = tmp_path / "photo.png"
    write_image(photo, np.zeros((300, 400, 3), np.uint8))
    first = tmp_path / "a.png"
    result = run(app, "generate", "-m", "dots", "--like", str(photo), "-d", "fixed", "-o", str(first), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)  # nothing else on stdout
    assert record["outputs"] == [str(first)] and (record["method"], record["seed"], record["count"]) == ("dots", 0, 1)
    assert record["size"] == SIZE and set(record["layout"]["points"]) == set(LAYOUT_POINTS[:5])
    saved = tmp_path / "layout.json"
    saved.write_text(result.stdout)  # the whole record fed back as --landmarks: the same layout, the same image
    second = tmp_path / "b.png"
    assert run(app, "generate", "-m", "dots", "--landmarks", str(saved), "-o", str(second)).exit_code == 0
    assert np.array_equal(read_image(first), read_image(second))
    for (x, y), (u, v) in zip(DotRunner.layouts[-1].values(), DotRunner.layouts[-2].values(), strict=True):
        assert abs(x - u) < 1e-4 and abs(y - v) < 1e-4
    result = run(app, "generate", "-m", "dots", "-n", "2", "--seed", "3", "-o", f"{tmp_path}/many/", "--json")
    record = json.loads(result.stdout)
    assert record["layout"] is None and record["outputs"] == [f"{tmp_path}/many/dots-seed3-{i:03d}.png" for i in (0, 1)]
    saved.write_text(result.stdout)
    result = run(app, "generate", "-m", "dots", "--landmarks", str(saved), "-o", str(tmp_path / "c.png"))
    assert result.exit_code == 2 and "record has no layout" in result.stderr
    result = run(app, "generate", "-m", "dots", "-o", "-", "--json")
    assert result.exit_code == 2 and "--json and -o -" in result.stderr


def test_json_of_a_failed_run_is_an_error_record_and_one_line(app, tmp_path):
    get_host().register_object(LoudGenerate(), "loud")
    result = run(app, "generate", "-m", "loud", "-o", str(tmp_path / "g.png"), "--json")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "returned values in" in json.loads(result.stdout)["error"]
    assert not (tmp_path / "g.png").exists()
    broken = tmp_path / "broken.safetensors"  # a failure before the method runs: a record too
    broken.write_bytes(b"not weights")
    result = run(app, "generate", "-m", "dots", "--weights", str(broken), "-o", str(tmp_path / "h.png"), "--json")
    assert result.exit_code == 1 and set(json.loads(result.stdout)) == {"error"}, result.output
