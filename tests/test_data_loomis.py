"""Loomis construction pairs: the geometry turns with the head, renders cleanly, and the command is deterministic."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from facetool.data import loomis_draw as ld


def _points(lines: dict, name: str) -> np.ndarray:
    return np.concatenate(lines[name]) if lines[name] else np.zeros((0, 2))


def _clockwise(points: np.ndarray, degrees: float) -> np.ndarray:
    """Turn image points (x right, y down) clockwise on screen about the origin."""
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.asarray(points) @ rot.T


# ----------------------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------------------


def test_pose_matrix_round_trips_and_matches_the_sign_conventions():
    for pose in [(0.0, 0.0, 0.0), (25.0, -10.0, 5.0), (-40.0, 20.0, -15.0)]:
        back = ld.pose_from_rotation(ld.head_rotation(*pose))
        assert np.allclose([back["yaw"], back["pitch"], back["roll"]], pose, atol=1e-9)
    front = np.array([0.0, 0.0, 1.0])
    assert (ld.head_rotation(30, 0, 0) @ front)[0] < 0  # yaw > 0: the face points to the image's left
    assert (ld.head_rotation(0, 30, 0) @ front)[1] > 0  # pitch > 0: it points up (camera y is up)


def test_frontal_centre_line_is_the_vertical_through_the_centre_and_sides_are_symmetric():
    lines = ld.construction_lines(0.0, 0.0, 0.0)
    centre = _points(lines, "centre")
    assert np.abs(centre[:, 0]).max() < 1e-9
    # From the crown (top of the ball) down to the chin, two thirds below the brow.
    assert centre[:, 1].min() == pytest.approx(-1.0, abs=1e-6)
    assert centre[:, 1].max() == pytest.approx(2 * ld.THIRD, abs=1e-6)
    for name in ("side_plane", "jaw", "brow", "nose", "chin", "hairline"):
        pts = _points(lines, name)
        assert len(pts), name
        mirrored = pts * [-1.0, 1.0]
        # Every point has a mirror partner (up to sampling density).
        gaps = np.linalg.norm(pts[:, None] - mirrored[None], axis=-1).min(1)
        assert gaps.max() < 0.05, name
    side = _points(lines, "side_plane")
    assert side[:, 0].min() == pytest.approx(-ld.SIDE_CUT) and side[:, 0].max() == pytest.approx(ld.SIDE_CUT)


def test_yaw_left_moves_the_centre_line_left_and_shows_the_right_side_plane():
    # yaw > 0: the face turns to the image's left, i.e. the subject turns to their own right. The side of the head
    # that comes towards the camera is then the subject's LEFT side, which a facing camera sees on the image's
    # RIGHT: so we see more of the cheek on the image's right, and that side plane opens into an ellipse.
    lines = ld.construction_lines(30.0, 0.0, 0.0)
    keys = ld.key_points(30.0, 0.0, 0.0)
    assert keys["brow"][0] == pytest.approx(-math.sin(math.radians(30)))
    assert keys["nose_base"][0] < 0 and keys["chin"][0] < 0
    assert ld.visible_sides(30.0, 0.0, 0.0) == ["right"]
    cross = _points(lines, "side_cross")
    assert len(cross) and cross[:, 0].min() > 0.3  # the ear line of the right side plane only
    (right,) = [p for p in lines["side_plane"] if p[:, 0].mean() > 0]
    assert np.allclose(right[0], right[-1]) and right[:, 0].min() > 0.2  # the whole rim: a closed ellipse
    # The opposite turn is the mirror image.
    mirror = ld.key_points(-30.0, 0.0, 0.0)
    assert np.allclose(mirror["brow"], keys["brow"] * [-1, 1])
    assert np.allclose(mirror["side_centre_left"], keys["side_centre_right"] * [-1, 1])
    assert ld.visible_sides(-30.0, 0.0, 0.0) == ["left"]


def test_roll_turns_everything_clockwise():
    upright = ld.construction_lines(0.0, 0.0, 0.0)
    rolled = ld.construction_lines(0.0, 0.0, 25.0)
    for name in ld.LINE_NAMES:
        a, b = _points(upright, name), _points(rolled, name)
        if name == "cranium":
            continue  # a circle: turning it changes nothing
        assert np.allclose(_clockwise(a, 25.0), b, atol=1e-9), name
    # Top of the head goes to the right, i.e. clockwise on screen.
    assert ld.key_points(0.0, 0.0, 25.0)["centre_top"][0] > 0


def test_turning_the_image_composes_with_any_pose():
    pose = {"yaw": 28.0, "pitch": -12.0, "roll": 4.0}
    turned = ld.rotate_pose_in_image(pose, 20.0)
    before = ld.key_points(pose["yaw"], pose["pitch"], pose["roll"])
    after = ld.key_points(turned["yaw"], turned["pitch"], turned["roll"])
    for name in before:
        assert np.allclose(_clockwise(before[name], 20.0), after[name], atol=1e-9), name
    assert not math.isclose(turned["pitch"], pose["pitch"], abs_tol=1.0)  # not simply added to the roll


def test_pitch_up_moves_the_brow_line_up():
    for pitch in (15.0, -15.0):
        keys = ld.key_points(0.0, pitch, 0.0)
        assert keys["brow"][1] == pytest.approx(-math.sin(math.radians(pitch)))  # image y is down
        brow = _points(ld.construction_lines(0.0, pitch, 0.0), "brow")
        middle = brow[np.abs(brow[:, 0]) < 0.05]
        assert (middle[:, 1] < 0).all() if pitch > 0 else (middle[:, 1] > 0).all()


def test_hidden_parts_are_left_out():
    lines = ld.construction_lines(35.0, 0.0, 0.0)
    # The left side plane is turned away: none of its cross line, and its rim only where the ball's front shows.
    assert ld.visible_sides(35.0, 0.0, 0.0) == ["right"]
    rim_left = [p for p in lines["side_plane"] if p[:, 0].mean() < 0]
    assert rim_left and all(len(p) < 60 for p in rim_left)  # a partial arc, not the whole ellipse
    # The great circle of the centre line stops at the ball's outline instead of running round the back.
    centre = _points(lines, "centre")
    assert np.linalg.norm(centre[centre[:, 1] < 0], axis=1).max() <= 1.0 + 1e-6


def test_fit_recovers_a_known_placement_and_clamps_the_lower_third():
    pose = (20.0, -10.0, 5.0)
    for lower, expected in ((1.2, 1.2), (2.0, ld.LOWER_RANGE[1])):
        keys = ld.key_points(*pose, lower=lower)
        truth = ld.Placement(scale=80.0, centre=np.array([120.0, 90.0]), lower=lower, rms=0.0)
        p68 = np.zeros((68, 2))
        offset = np.array([6.0, 0.0])
        p68[21], p68[22] = truth.apply(keys["brow"]) - offset, truth.apply(keys["brow"]) + offset
        p68[33], p68[8] = truth.apply(keys["nose_base"]), truth.apply(keys["chin"])
        fit = ld.fit_placement(*pose, p68)
        assert fit.lower == pytest.approx(expected)
        if lower == expected:
            assert fit.scale == pytest.approx(80.0) and np.allclose(fit.centre, [120.0, 90.0])
            assert fit.rms < 1e-6
        else:
            assert fit.rms > 1.0  # the chin could not be reached


def test_render_has_dark_lines_on_white():
    size = 128
    line = {"brow": [np.array([[20.0, 40.0], [100.0, 40.0]])]}
    image = ld.render_lines(line, size, width=2.5)
    assert image.shape == (size, size) and image.dtype == np.uint8
    assert image[40, 30:90].max() < 40  # dark along the line
    assert (image[:30] == 255).all() and (image[50:] == 255).all()  # paper elsewhere
    assert 0 < image[39, 60] < 255 and 0 < image[41, 60] < 255  # anti-aliased edges, not a hard step
    ink = 255.0 - image[:, 60]
    assert (ink * np.arange(size)).sum() / ink.sum() == pytest.approx(40.0, abs=0.05)  # centred on the line
    # A whole construction: dark on the ball's outline, white in the corners.
    placement = ld.Placement(40.0, np.array([64.0, 54.0]), 1.0, 0.0)
    drawing = ld.render_lines(ld.place(ld.construction_lines(10.0, 5.0, 0.0), placement), size, 2.0)
    assert drawing[54, 64 - 40] < 80 and drawing[54 - 40, 64] < 80
    assert drawing[0, 0] == drawing[-1, -1] == drawing[0, -1] == 255
    assert 0.03 < (drawing < 128).mean() < 0.25


# ----------------------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------------------


def _synthetic_face(cx: float, cy: float) -> dict:
    """A face record (labels JSON) with landmarks placed by hand around (cx, cy)."""
    p68 = np.tile([cx, cy + 30.0], (68, 1))
    p68[21], p68[22] = (cx - 9, cy - 22), (cx + 9, cy - 22)
    p68[33], p68[8] = (cx, cy + 32), (cx + 2, cy + 95)
    points5 = [(cx - 30, cy), (cx + 30, cy), (cx, cy + 30), (cx - 24, cy + 62), (cx + 24, cy + 62)]
    return {
        "detector": "test",
        "score": 1.0,
        "box": [cx - 60, cy - 60, cx + 60, cy + 110],
        "points5": [list(map(float, p)) for p in points5],
        "points68": p68.tolist(),
        "pose": {"yaw": 15.0, "pitch": -5.0, "roll": 3.0},
    }


@pytest.fixture
def photos_with_labels(tmp_path, sample_path):
    photos = tmp_path / "photos"
    (photos / "labels").mkdir(parents=True)
    shutil.copy(sample_path, photos / "astronaut.png")
    shutil.copy(sample_path, photos / "noface.png")
    shutil.copy(sample_path, photos / "upside.png")
    face = {"width": 512, "height": 512, "faces": [_synthetic_face(230.0, 130.0)]}
    (photos / "labels" / "astronaut.json").write_text(json.dumps(face))
    broken = _synthetic_face(230.0, 130.0)
    broken["points68"][8] = [230.0, 60.0]  # chin above the brow: no head fits
    (photos / "labels" / "upside.json").write_text(json.dumps({"width": 512, "height": 512, "faces": [broken]}))
    (photos / "labels" / "noface.json").write_text(json.dumps({"width": 512, "height": 512, "faces": []}))
    return photos


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_command_is_deterministic_and_resumes(photos_with_labels, tmp_path):
    from facetool.data.common import read_manifest
    from facetool.data.loomis import make_loomis_pairs

    out1, out2 = tmp_path / "a", tmp_path / "b"
    made, skipped, failed = make_loomis_pairs(photos_with_labels, out1, size=128, over_photo=True)
    assert (made, skipped) == (1, 0)
    assert len(failed) == 2 and "noface.png: no face" in failed[0] and "upside.png" in failed[1]
    assert "do not fit" in failed[1]
    make_loomis_pairs(photos_with_labels, out2, size=128, over_photo=True)
    assert _files(out1) == _files(out2)  # same seed, same bytes (manifest included)

    (record,) = read_manifest(out1)
    assert set(record["files"]) == {"photo", "loomis", "overlay"}
    labels = record["labels"]
    assert labels["size"] == 128 and labels["template"] == "portrait"
    assert set(labels["pose"]) == {"yaw", "pitch", "roll"} and labels["pose"]["yaw"] > 0
    for name in ("centre_top", "brow", "nose_base", "chin", "brow_end_left", "brow_end_right", "side_centre_right"):
        assert len(labels["key_points"][name]) == 2, name
    keys = labels["key_points"]
    assert keys["centre_top"][1] < keys["brow"][1] < keys["nose_base"][1] < keys["chin"][1]
    assert keys["brow"][0] < keys["sphere_centre"][0]  # turned to the image's left
    assert labels["visible_sides"] == ["right"]

    from facetool.imageio import read_image

    drawing = read_image(out1 / record["files"]["loomis"]["path"])
    assert drawing.shape == (128, 128, 3) and drawing.min() < 60 and (drawing == 255).mean() > 0.6

    # Resume: nothing to do; a lost file is made again, identical.
    assert make_loomis_pairs(photos_with_labels, out1, size=128, over_photo=True)[:2] == (0, 1)
    lost = out1 / record["files"]["loomis"]["path"]
    before = lost.read_bytes()
    lost.unlink()
    assert make_loomis_pairs(photos_with_labels, out1, size=128, over_photo=True)[:2] == (1, 0)
    assert lost.read_bytes() == before


def test_command_adds_overlays_and_refuses_other_settings(photos_with_labels, tmp_path):
    from facetool.data.loomis import make_loomis_pairs
    from facetool.errors import UsageError

    out = tmp_path / "out"
    make_loomis_pairs(photos_with_labels, out, size=128)
    assert not (out / "overlay").exists()
    assert make_loomis_pairs(photos_with_labels, out, size=128, over_photo=True)[:2] == (1, 0)
    assert (out / "overlay" / "astronaut.png").is_file()
    with pytest.raises(UsageError, match="--out"):
        make_loomis_pairs(photos_with_labels, out, size=256)
    with pytest.raises(UsageError, match="template"):
        make_loomis_pairs(photos_with_labels, tmp_path / "other", template="nope")


def test_cli_runs(photos_with_labels, tmp_path):
    from typer.testing import CliRunner

    from facetool.cli import build_app

    out = tmp_path / "cli"
    args = ["data", "loomis", str(photos_with_labels), "--out", str(out), "--size", "64", "--seed", "3"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert "made 1" in result.stdout and "2 not made" in result.stdout
    assert (out / "loomis" / "astronaut.png").is_file() and (out / "photo" / "astronaut.png").is_file()
    assert "Examples" in CliRunner().invoke(build_app(), ["data", "loomis", "--help"]).stdout


def test_command_labels_the_photo_itself(tmp_path, sample_path):
    from conftest import require_assets

    require_assets(
        "dlib-shape-predictor-68", "dlib-mmod-detector", "mediapipe-face-landmarker", "mtcnn-pnet", "mtcnn-rnet",
        "mtcnn-onet",
    )  # fmt: skip
    from facetool.data.common import read_manifest
    from facetool.data.loomis import make_loomis_pairs

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(sample_path, photos / "astronaut.png")
    out = tmp_path / "out"
    assert make_loomis_pairs(photos, out, size=128) == (1, 0, [])
    (record,) = read_manifest(out)
    labels = record["labels"]
    assert abs(labels["pose"]["yaw"]) < 45 and labels["fit_rms"] < 0.05 * 128
    keys = labels["key_points"]
    assert all(0 <= v < 128 for name in ("brow", "nose_base", "chin") for v in keys[name])
    assert make_loomis_pairs(photos, out, size=128) == (0, 1, [])  # resumes without labelling again
