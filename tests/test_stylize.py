"""The stylize pipeline on fake plugins (no assets): output sizes, face choice, crop, aligned, paste-back."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facetool import hookimpl
from facetool.cli import build_app
from facetool.faces import Face
from facetool.imageio import read_image, write_image
from facetool.methods import MethodSpec
from facetool.plugins import get_host

from conftest import FixedDetectorPlugin, two_faces

FACES = two_faces()


class FakePlugins:
    @hookimpl
    def register_generators(self, register):
        register(MethodSpec(name="identity", task="stylize", load=lambda o, d, w: (lambda x: x), description="test",
                            sizes=(64, 128), input_size=64))  # fmt: skip
        register(MethodSpec(name="black", task="stylize", description="test", background="white",
                            load=lambda o, d, w: (lambda x: x[:, :1] * 0), sizes=(64,), input_size=64))  # fmt: skip
        register(MethodSpec(name="gen", task="generate", load=lambda o, d, w: None, description="test"))
        register(MethodSpec(name="masked", task="stylize", description="test", background="white",
                            load=lambda o, d, w: MaskRunner(), sizes=(64,), input_size=64))  # fmt: skip


class MaskRunner:
    """Draws its person mask: black where the mask says person, and remembers the points it was given."""

    takes_points5 = True
    takes_foreground = True
    points: list = []

    def __call__(self, crops, points5=None, foreground=None):
        MaskRunner.points.append(points5)
        return 1 - foreground if foreground is not None else crops[:, :1] * 0 + 1


@pytest.fixture
def photo(tmp_path, monkeypatch):
    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    get_host().register_object(FakePlugins(), "fake")
    get_host().register_object(FixedDetectorPlugin(), "fixed")
    from PIL import Image

    rng = np.random.default_rng(0)  # a smooth random photo: resampling must not change it much
    coarse = Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8))
    image = np.asarray(coarse.resize((400, 300), Image.Resampling.BICUBIC))
    path = tmp_path / "photo.png"
    write_image(path, image)
    return path, image


def run(*args):
    result = CliRunner().invoke(build_app(), list(args))
    return result


def method_plugin(name: str, make_runner, **spec):
    """An in-process plugin with one 64² stylize method, ``name``, whose runner ``make_runner()`` builds."""

    class OneMethod:
        @hookimpl
        def register_generators(self, register):
            register(MethodSpec(name=name, task="stylize", load=lambda o, d, w: make_runner(), description="test",
                                sizes=(64,), input_size=64, **spec))  # fmt: skip

    return OneMethod()


def test_identity_paste_back_reproduces_the_photo(photo, tmp_path):
    path, image = photo
    out = tmp_path / "out.png"
    result = run("stylize", str(path), "-m", "identity", "--size", "128", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    back = read_image(out).astype(int)
    assert back.shape == image.shape
    assert np.abs(back - image).mean() < 1.5 and np.abs(back - image).max() < 40


def test_black_method_on_white_paper_marks_only_faces(photo, tmp_path):
    path, _ = photo
    out = tmp_path / "out.png"
    assert run("stylize", str(path), "-m", "black", "-o", str(out)).exit_code == 0
    drawn = read_image(out)[..., 0]
    assert drawn[105, 100] < 10 and drawn[105, 290] < 10  # both faces drawn
    assert (drawn[290:, :] == 255).all()  # paper elsewhere

    out2 = tmp_path / "largest.png"
    assert run("stylize", str(path), "-m", "black", "--face", "largest", "-o", str(out2)).exit_code == 0
    drawn = read_image(out2)[..., 0]
    assert drawn[105, 100] < 10 and drawn[105, 290] == 255


def test_crop_writes_one_file_per_face(photo, tmp_path):
    path, _ = photo
    out = tmp_path / "crop.png"
    result = run("stylize", str(path), "-m", "identity", "--crop", "--size", "64", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert read_image(tmp_path / "crop.face0.png").shape == (64, 64, 3)
    assert read_image(tmp_path / "crop.face1.png").shape == (64, 64, 3)


class NotingRunner:
    """Says, per face of its last call, what it 'measured' (the crop's mean brightness rounded)."""

    notes: list[str] = []

    def __call__(self, crops):
        self.notes = [f"level {float(c.mean()):.1f}" for c in crops]
        return crops


def test_a_runners_notes_follow_the_output_name_one_per_face(photo, tmp_path):
    path, _ = photo
    get_host().register_object(method_plugin("noting", NotingRunner), "noting")
    both = run("stylize", str(path), "-m", "noting", "-o", str(tmp_path / "both.png"))
    assert both.exit_code == 0, both.stderr
    assert re.fullmatch(rf"{re.escape(str(path))} -> \S+both.png \(face0: level 0\.\d; face1: level 0\.\d\)",
                        both.stdout.strip()), both.stdout  # fmt: skip
    one = run("stylize", str(path), "-m", "noting", "--face", "largest", "--crop", "-o", str(tmp_path / "one.png"))
    assert one.exit_code == 0, one.stderr
    assert re.fullmatch(rf"{re.escape(str(path))} -> \S+one.png \(level 0\.\d\)", one.stdout.strip()), one.stdout
    plain = run("stylize", str(path), "-m", "identity", "--size", "64", "-o", str(tmp_path / "plain.png"))
    assert plain.stdout.strip() == f"{path} -> {tmp_path / 'plain.png'}"  # a runner without notes: the name alone


def test_json_lists_each_inputs_files_faces_and_notes_and_the_failures(photo, tmp_path):
    import json

    path, image = photo
    get_host().register_object(method_plugin("noting", NotingRunner), "noting")
    one = run("stylize", str(path), "-m", "noting", "--crop", "-o", str(tmp_path / "one.png"), "--json")
    assert one.exit_code == 0, one.stderr
    record = json.loads(one.stdout)
    assert record["input"] == str(path) and record["faces"] == 2
    assert record["outputs"] == [str(tmp_path / "one.face0.png"), str(tmp_path / "one.face1.png")]
    assert [n.startswith("level 0.") for n in record["notes"]] == [True, True]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    both = run("stylize", str(path), str(broken), "-m", "identity", "--size", "64", "-o", f"{tmp_path}/out/", "--json")
    assert both.exit_code == 1 and "1 of 2 images failed" in both.stderr
    first, second = json.loads(both.stdout)
    written = str(tmp_path / "out" / "photo.identity.png")
    assert first == {"input": str(path), "faces": 2, "notes": [], "outputs": [written]}
    assert second["input"] == str(broken) and "broken.png" in second["error"]
    alone = run("stylize", str(broken), "-m", "identity", "--size", "64", "-o", str(tmp_path / "b.png"), "--json")
    assert alone.exit_code == 1 and len(alone.stderr.strip().splitlines()) == 1
    assert json.loads(alone.stdout) == {"input": str(broken), "error": alone.stderr.split("error: ", 1)[1].strip()}
    clash = run("stylize", str(path), "-m", "identity", "--size", "64", "-o", "-", "--json")
    assert clash.exit_code == 2 and "--json and -o - would both write to standard output" in clash.stderr


def test_aligned_skips_detection(photo, tmp_path):
    path, image = photo
    out = tmp_path / "aligned.png"
    result = run("stylize", str(path), "-m", "identity", "--aligned", "--size", "64", "--crop", "-o", str(out))
    assert result.exit_code == 0
    assert read_image(out).shape == (64, 64, 3)


def test_usage_errors(photo):
    path, _ = photo
    assert run("stylize", str(path), "-m", "gen").exit_code == 2
    assert run("stylize", str(path), "-m", "identity", "--size", "100").exit_code == 2
    assert run("stylize", str(path), "-m", "identity", "--background", "red").exit_code == 2
    assert run("stylize", str(path), "-m", "identity", "-O", "x=1").exit_code == 2


def test_a_photo_piped_in_as_dash(photo, tmp_path):
    path, image = photo
    data, out = path.read_bytes(), tmp_path / "piped.png"
    result = CliRunner().invoke(build_app(), ["stylize", "-", "-m", "identity", "--size", "64", "-o", str(out)],
                                input=data)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"- -> {out}"
    assert np.abs(read_image(out).astype(int) - image).mean() < 1.5
    folder = tmp_path / "into"
    result = CliRunner().invoke(build_app(), ["stylize", "-", str(path), "-m", "identity", "--size", "64",
                                              "-o", f"{folder}/"], input=data)  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == ["photo.identity.png", "stdin.identity.png"]
    for args, given, code, message in [
        (["stylize", "-", "-m", "identity"], data, 2, "standard input (-) has no folder to write beside: give -o"),
        (["stylize", "-", "-", "-m", "identity", "-o", str(out)], data, 2, "- (standard input) can be given once"),
        (["stylize", "-", "-m", "identity", "-o", str(out)], b"", 1, "-: standard input is empty"),
        (["stylize", "-", "-m", "identity", "-o", str(out)], b"%PDF-1.4", 1, "-: standard input is not a picture"),
        (["stylize", "-", "-m", "identity", "-o", str(out)], bytes(8 << 20), 1, "-: standard input is not a picture"),
        (["stylize", "-", "-m", "identity", "-o", str(out)], data[: len(data) // 2], 1, "-: image is truncated"),
    ]:
        result = CliRunner().invoke(build_app(), args, input=given)
        assert result.exit_code == code and message in result.stderr and len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith(("facetool: error: -:", "facetool: error: the picture", "facetool: error: - "))
    dash = tmp_path / "-"  # a file of that name is reached as ./- and named so
    dash.write_bytes(data)
    result = CliRunner().invoke(build_app(), ["stylize", str(dash), "-m", "identity", "--size", "64",
                                              "-o", str(tmp_path / "d.png")])  # fmt: skip
    assert result.exit_code == 0 and result.stdout.startswith(f"{dash} -> ")
    from facetool.cli.common import shown

    assert shown(Path("-")) == "./-"  # "-" given in its own folder as ./- : not to be read as standard input


def test_dash_output_writes_one_png_to_standard_output(photo, tmp_path, monkeypatch):
    import io

    path, image = photo
    get_host().register_object(method_plugin("counting", Counting), "counting")
    piped = CliRunner().invoke(build_app(), ["stylize", "-", "-m", "identity", "--size", "64", "-o", "-"],
                               input=path.read_bytes())  # fmt: skip
    assert piped.exit_code == 0, piped.stderr
    assert piped.stdout_bytes.startswith(b"\x89PNG") and piped.stderr.strip() == "- -> -"
    from PIL import Image

    pasted = np.asarray(Image.open(io.BytesIO(piped.stdout_bytes)))
    assert pasted.shape == image.shape and np.abs(pasted.astype(int) - image).mean() < 1.5
    one = run("stylize", str(path), "-m", "identity", "--size", "64", "--crop", "--face", "1", "-o", "-")
    assert one.exit_code == 0 and np.asarray(Image.open(io.BytesIO(one.stdout_bytes))).shape == (64, 64, 3)
    second = tmp_path / "second.png"
    write_image(second, image)
    Counting.calls = 0
    for args, message in [
        (["--crop"], f"-o -: {path} has 2 faces and --crop makes a picture of each; choose one with --face N"),
        ([str(second)], "-o - writes one picture to standard output: give one input"),
    ]:
        refused = run("stylize", str(path), "-m", "counting", "-o", "-", *args)
        assert refused.exit_code == 2 and message in refused.stderr and refused.stdout_bytes == b"", refused.stderr
    assert Counting.calls == 0  # refused before the method ran
    monkeypatch.chdir(tmp_path)  # ./- names a file "-", not standard output (and an image file needs a suffix)
    dash = run("stylize", str(path), "-m", "identity", "--size", "64", "-o", "./-")
    assert dash.exit_code == 2 and "-o ./-: no suffix" in dash.stderr and dash.stdout_bytes == b""


def test_dash_output_refuses_a_terminal(monkeypatch):
    import sys

    from facetool.cli.common import check_stdout_output
    from facetool.errors import UsageError

    class Terminal:
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    with pytest.raises(UsageError, match="standard output is a terminal; redirect it"):
        check_stdout_output(1)


def test_default_output_beside_input_and_several_inputs(photo, tmp_path):
    path, image = photo
    second = tmp_path / "second.png"
    write_image(second, image)
    folder = tmp_path / "results"
    result = run("stylize", str(path), str(second), "-m", "identity", "--size", "64", "-o", str(folder))
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["photo.identity.png", "second.identity.png"]
    assert run("stylize", str(path), "-m", "identity", "--size", "64").exit_code == 0
    assert (tmp_path / "photo.identity.png").exists()


def test_output_folder_to_be_made_and_a_file_without_format(photo, tmp_path):
    path, _ = photo
    # "-o new/" with one two-face photo: a folder (made), not a file named "new" with per-face suffixes
    result = run("stylize", str(path), "-m", "identity", "--crop", "--size", "64", "-o", f"{tmp_path / 'new'}/")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [
        "photo.identity.face0.png",
        "photo.identity.face1.png",
    ]
    # a file with no image suffix is refused before any work, in one line, and nothing is written
    for bad in ("plain", "drawing.txt"):
        result = run("stylize", str(path), "-m", "identity", "--size", "64", "-o", str(tmp_path / bad))
        assert result.exit_code == 2 and "folder ending in /" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / bad).exists()


def test_same_stems_and_several_faces_never_overwrite_each_other(photo, tmp_path):
    path, image = photo
    other = tmp_path / "b [draft]"
    other.mkdir()
    write_image(other / "photo.png", image)
    out = tmp_path / "crops"
    result = run(
        "stylize", str(path), str(other / "photo.png"), "-m", "identity", "--crop", "--size", "64", "-o", str(out)
    )
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 4 and len(set(names)) == 4, names  # 2 inputs x 2 faces, four distinct files
    assert "b [draft]" in result.stdout  # file names print as they are


def test_face_number_past_the_end_says_how_many(photo):
    path, _ = photo
    result = run("stylize", str(path), "-m", "identity", "--size", "64", "--face", "5")
    assert result.exit_code == 2 and "has 2 face(s)" in result.stderr  # the option does not fit: usage


def test_a_second_run_over_a_folder_leaves_the_first_runs_results_out(photo, tmp_path):
    path, image = photo
    folder = tmp_path / "shots"
    folder.mkdir()
    write_image(folder / "a.png", image)
    write_image(folder / "b.v2.jpg", image)  # a dotted name that is not an output stays an input
    for _ in range(2):
        result = run("stylize", str(folder), "-m", "identity", "--size", "64")
        assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["a.identity.png", "a.png", "b.v2.identity.png", "b.v2.jpg"]
    assert "left out 2 file(s) named like facetool's outputs" in result.stderr
    result = run("stylize", str(folder), "-m", "identity", "--size", "64", "--crop")  # per-face names too
    assert result.exit_code == 0, result.stderr
    assert "left out 2 file(s)" in result.stderr
    result = run("stylize", str(folder), "-m", "black", "-o", str(tmp_path / "more") + "/")
    assert result.exit_code == 0 and "left out 6 file(s)" in result.stderr  # any method's outputs
    # named on its own, an output is an input like any other file
    result = run("stylize", str(folder / "a.identity.png"), "-m", "black", "-o", str(tmp_path / "again.png"))
    assert result.exit_code == 0 and "left out" not in result.stderr
    # the folder twice and one of its outputs named on its own: that one is taken, the others counted once
    more = tmp_path / "more"
    result = run("stylize", str(folder), str(folder), str(folder / "a.identity.png"), "-m", "black", "-o", f"{more}/")
    assert result.exit_code == 0 and "left out 5 file(s)" in result.stderr, result.stderr


def test_is_own_output_reads_the_names_the_commands_write():
    from facetool.outputs import is_own_output

    markers = {"apdrawing", "cartoon", "faces"}
    ours = ["a.apdrawing.png", "a.apdrawing-1.png", "a.cartoon.face0.png", "a.b.cartoon.face12-1.png", "a.faces.png"]
    theirs = ["a.png", "apdrawing.png", "a.face0.png", "a.apdrawings.png", "me.v2.jpg", ".apdrawing.png"]
    assert all(is_own_output(Path(n), markers) for n in ours)
    assert not any(is_own_output(Path(n), markers) for n in theirs)


class Counting:
    calls = 0

    def __call__(self, x):
        Counting.calls += 1
        return x


def test_an_unwritable_output_folder_or_an_input_as_output_fails_before_any_work(photo, tmp_path, monkeypatch):
    import tempfile

    from facetool import imageio

    path, image = photo
    second = tmp_path / "second.png"
    write_image(second, image)
    get_host().register_object(method_plugin("counting", Counting), "counting")
    locked = tmp_path / "locked"
    locked.mkdir()
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):  # chmod does not stop root: refuse creation in `locked` instead
        if dir is not None and Path(dir) == locked:
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(imageio.tempfile, "mkstemp", mkstemp)
    Counting.calls = 0
    result = run("stylize", str(path), str(second), "-m", "counting", "-o", f"{locked}/")
    assert result.exit_code == 1 and "directory is not writable" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and Counting.calls == 0
    before = path.read_bytes()
    result = run("stylize", str(path), "-m", "counting", "-o", str(path))
    assert result.exit_code == 2 and "is an input file" in result.stderr
    assert Counting.calls == 0 and path.read_bytes() == before


def test_person_mask_is_cropped_with_each_face(photo, tmp_path):
    path, image = photo
    mask = np.zeros(image.shape, np.uint8)
    mask[:, :200] = 255  # the left face is "person", the right one is not
    write_image(tmp_path / "mask.png", mask)
    out = tmp_path / "out.png"
    result = run("stylize", str(path), "-m", "masked", "--mask", str(tmp_path / "mask.png"), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    drawn = read_image(out)[..., 0]
    assert drawn[105, 100] < 10 and drawn[105, 290] > 245
    points = MaskRunner.points[-1]
    assert points.shape == (2, 5, 2) and float(points[:, :, 0].min()) > 0 and float(points.max()) < 64

    write_image(tmp_path / "small.png", mask[:100])
    bad = run("stylize", str(path), "-m", "masked", "--mask", str(tmp_path / "small.png"), "-o", str(out))
    assert bad.exit_code == 2 and "same size" in bad.stderr
    other = run("stylize", str(path), "-m", "black", "--mask", str(tmp_path / "mask.png"), "-o", str(out))
    assert other.exit_code == 2 and "does not use a person mask" in other.stderr


def test_white_paper_crops_are_blank_where_they_reach_past_the_photo(photo):
    from facetool.stylize import stylize_photo

    _, image = photo
    near_corner = Face(box=[0, 0, 60, 70], score=1.0, points5=np.asarray(FACES[0].points5, float) - 60)
    black = lambda crops: crops[:, :1] * 0  # noqa: E731 - draws ink everywhere it is given
    (on_white,) = stylize_photo(image, black, "portrait", [near_corner], 64, crop=True, background="white")
    (on_photo,) = stylize_photo(image, black, "portrait", [near_corner], 64, crop=True, background="photo")
    assert on_white[0, 0].min() == 255 and on_white[-1, -1].max() == 0  # outside the photo: paper; inside: ink
    assert on_photo.max() == 0  # a method that draws over the photo keeps its own output


def test_a_runners_crop_padding_decides_what_fills_a_crop_past_the_photo(photo):
    import torch

    from facetool.align import edge_colour
    from facetool.stylize import stylize_photo

    _, image = photo
    near_corner = Face(box=[0, 0, 60, 70], score=1.0, points5=np.asarray(FACES[0].points5, float) - 60)

    class Flat:
        crop_padding = "edge-colour"

        def __call__(self, crops):
            return crops  # shows what it was given

    given = {}
    for name, runner in (("border", lambda crops: crops), ("edge-colour", Flat())):
        (given[name],) = stylize_photo(image, runner, "portrait", [near_corner], 64, crop=True)
    median = edge_colour(torch.tensor(image).permute(2, 0, 1)[None].float())[0, :, 0, 0].numpy()
    assert np.abs(given["edge-colour"][0, 0].astype(float) - median).max() <= 1  # the corner lies past the photo
    assert not np.array_equal(given["border"][0, 0], given["edge-colour"][0, 0])
    np.testing.assert_array_equal(given["border"][-1, -1], given["edge-colour"][-1, -1])  # inside: the same


def test_a_runners_paste_mask_decides_what_is_pasted(photo):
    from facetool.stylize import stylize_photo

    _, image = photo

    class LeftHalf:
        """Draws black, and asks for only the left half of each crop to be pasted."""

        def __call__(self, crops):
            return crops * 0

        def paste_mask(self, results):
            mask = results[:, :1] * 0
            mask[..., : results.shape[-1] // 2] = 1
            return mask

    (whole,) = stylize_photo(image, lambda crops: crops * 0, "portrait", FACES[:1], 64)
    (half,) = stylize_photo(image, LeftHalf(), "portrait", FACES[:1], 64)
    covered = np.abs(whole.astype(int) - image).sum(-1) > 60
    kept = np.abs(half.astype(int) - image).sum(-1) > 60
    assert kept.sum() > 0.3 * covered.sum() and kept.sum() < 0.7 * covered.sum()
    assert not (kept & ~covered).any()  # the mask only removes


class BlindAndSmallFacePlugins:
    """``blind`` finds nothing; ``small`` has a min-face setting, so the no-face hint can name it."""

    @hookimpl
    def register_detectors(self, register):
        import dataclasses

        from facetool.detectors import DetectorSpec

        @dataclasses.dataclass
        class SmallOptions:
            min_face: int = 0

        class Blind:
            def __init__(self, options=None):
                self.options = options

            def detect(self, image):
                return []

        register(DetectorSpec(name="blind", load=lambda o, d: Blind(), description="test", priority=2000))
        register(DetectorSpec(name="small", load=lambda o, d: Blind(o), description="test", options=SmallOptions))


def test_no_face_in_a_large_photo_names_a_detector_for_small_faces(photo, tmp_path):
    get_host().register_object(BlindAndSmallFacePlugins(), "blind")
    big, little = tmp_path / "group.png", tmp_path / "little.png"
    write_image(big, np.full((1200, 1600, 3), 128, np.uint8))
    write_image(little, np.full((300, 400, 3), 128, np.uint8))
    result = run("stylize", str(big), "-m", "identity", "--size", "64")
    assert result.exit_code == 1 and "no face found" in result.stderr
    assert "-d small -D min-face=20" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = run("stylize", str(big), "-m", "identity", "--size", "64", "-d", "small")  # its own setting
    assert result.exit_code == 1 and "large photo: -D min-face=20" in result.stderr
    result = run("stylize", str(big), "-m", "identity", "--size", "64", "-d", "small", "-D", "min-face=16")
    assert result.exit_code == 1 and "min-face" not in result.stderr  # already searching small faces
    result = run("stylize", str(little), "-m", "identity", "--size", "64")
    assert result.exit_code == 1 and "no face found" in result.stderr and "min-face" not in result.stderr


class WhitePageRunner:
    background = "white"  # the runner, not the spec, says its results go on paper

    def __call__(self, x):
        return x[:, :1] * 0


def test_a_runners_background_overrides_the_specs_and_the_option_overrides_both(photo, tmp_path):
    path, image = photo
    get_host().register_object(method_plugin("page", WhitePageRunner, background="photo"), "page")
    for extra, corner_is_paper in (([], True), (["--background", "photo"], False)):
        out = tmp_path / f"{corner_is_paper}.png"
        assert run("stylize", str(path), "-m", "page", *extra, "-o", str(out)).exit_code == 0
        corner = read_image(out)[-20:, -20:]
        assert (corner.min() == 255) == corner_is_paper


class ContractBreakers:
    """Methods and detectors that break the plugin contract, the ways a new plugin does."""

    @hookimpl
    def register_generators(self, register):
        import torch

        broken = {
            "scaled": lambda x: x * 255,  # 0-255, not [0, 1]
            "nans": lambda x: x * float("nan"),
            "small": lambda x: torch.zeros(x.shape[0], 3, 10, 10),
            "numpy": lambda x: x.numpy(),
        }
        for name, fn in broken.items():
            register(MethodSpec(name=name, task="stylize", load=lambda o, d, w, fn=fn: fn, description="test",
                                sizes=(64,), input_size=64))  # fmt: skip
        register(MethodSpec(name="badtemplate", task="stylize", load=lambda o, d, w: None, description="test",
                            sizes=(64,), input_size=64, template="nope"))  # fmt: skip
        register(MethodSpec(name="badweights", task="stylize", load=lambda o, d, w: None, description="test",
                            sizes=(64,), input_size=64, weights="no-such-asset"))  # fmt: skip

    @hookimpl
    def register_detectors(self, register):
        from facetool.detectors import DetectorSpec

        def face(**change):
            good = two_faces()[0]
            return [Face(**{"box": good.box, "score": 0.9, "points5": good.points5, **change})]

        broken = {
            "nan-box": lambda: face(box=[np.nan, 0, 10, 10]),
            "one-point": lambda: face(points5=np.full((5, 2), 50.0)),
            "dicts": lambda: [{"box": [0, 0, 9, 9]}],
            "none": lambda: None,
        }
        for name, make in broken.items():
            detector = type("D", (), {"detect": lambda self, image, make=make: make()})
            register(DetectorSpec(name=name, load=lambda o, d, detector=detector: detector(), description="test"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-m", "scaled"), "method scaled returned values in [0, 255]; expected a (2, 1 or 3, 64, 64) tensor in"),
        (("-m", "nans"), "method nans returned values in [nan, nan]"),
        (("-m", "small"), "method small returned a (2, 3, 10, 10) tensor; expected a (2, 1 or 3, 64, 64)"),
        (("-m", "numpy"), "method numpy returned a ndarray; expected"),
        (("-m", "badtemplate"), "method badtemplate (plugin breakers) names the alignment template 'nope'"),
        (("-m", "badweights"), "the asset 'no-such-asset', which no plugin registers"),
        (("-d", "nan-box"), "detector nan-box returned a face with a non-finite box or points"),
        (("-d", "one-point"), "detector one-point returned a face whose 5 points are one point"),
        (("-d", "dicts"), "detector dicts returned a dict among its faces; expected a list of facetool.faces.Face"),
        (("-d", "none"), "detector none returned NoneType; expected a list"),
    ],
)
def test_a_plugin_breaking_its_contract_is_named_in_one_line(photo, tmp_path, args, message):
    path, image = photo
    get_host().register_object(ContractBreakers(), "breakers")
    out = tmp_path / "out.png"
    args = args if "-m" in args else (*args, "-m", "identity", "--size", "64")
    result = run("stylize", str(path), *args, "-o", str(out))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], result.stderr
    assert not out.exists() and np.array_equal(read_image(path), image)


class DenseRunner:
    """Records the 68 points it is handed (runners that declare ``takes_points68``)."""

    takes_points5 = True
    takes_points68 = True
    seen: list = []

    def __call__(self, crops, points5=None, points68=None):
        DenseRunner.seen.append((points5, points68))
        return crops


class DenseDetector:
    """Finds TWO_FACES with 68 points: every one of them at the face's left eye."""

    @hookimpl
    def register_detectors(self, register):
        from facetool.detectors import DetectorSpec

        class Dense:
            def detect(self, image):
                faces = two_faces()
                for face in faces:
                    face.points68 = np.repeat(np.asarray(face.points5, np.float32)[:1], 68, axis=0)
                return faces

        register(DetectorSpec(name="dense", load=lambda o, d: Dense(), description="test"))


def test_a_runner_taking_68_points_gets_them_in_crop_pixels_or_none(photo, tmp_path):
    import torch

    path, _ = photo
    get_host().register_object(method_plugin("dense68", DenseRunner), "dense68")
    get_host().register_object(DenseDetector(), "dense-detector")
    DenseRunner.seen.clear()
    assert run("stylize", str(path), "-m", "dense68", "-d", "dense", "-o", str(tmp_path / "a.png")).exit_code == 0
    points5, points68 = DenseRunner.seen[-1]
    assert points68.shape == (2, 68, 2)
    assert torch.allclose(points68[:, 0], points5[:, 0], atol=1e-4)  # the same similarity as the 5 points
    assert run("stylize", str(path), "-m", "dense68", "-d", "fixed", "-o", str(tmp_path / "b.png")).exit_code == 0
    assert DenseRunner.seen[-1][1] is None  # a detector without 68 points: None
