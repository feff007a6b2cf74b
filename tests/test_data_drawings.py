"""``facetool data drawings``: XDoG lines, strokes, part boxes/masks, HED, and the command (determinism, resume)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facetool.data import npr
from facetool.data.parts import PART_SIZES, PARTS, part_boxes, part_masks, person_region

from conftest import SAMPLE, require_assets


def _disk_image(size: int = 96, radius: float = 25.0, inside: float = 0.2, outside: float = 0.85) -> torch.Tensor:
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(xx - (size - 1) / 2, yy - (size - 1) / 2)
    # Anti-aliased disk edge, like a photo's.
    alpha = np.clip(radius + 0.5 - r, 0.0, 1.0)
    gray = outside + (inside - outside) * alpha
    return torch.from_numpy(np.repeat(gray[None, None], 3, 1).astype(np.float32)), r


def test_xdog_draws_a_ring_at_a_disk_edge():
    image, r = _disk_image()
    lines = npr.xdog_lines(image)[0, 0].numpy()
    assert lines.shape == r.shape and lines.min() >= 0.0 and lines.max() <= 1.0
    ink = lines < 0.5
    # Two tones: nearly every pixel is paper or ink, few in between.
    assert ((lines > 0.1) & (lines < 0.9)).mean() < 0.03
    # The ink is a closed ring hugging the edge (on its dark side), nothing inside or outside.
    assert ink.any()
    assert r[ink].min() > 20.0 and r[ink].max() < 26.0  # a band a few px wide just inside the edge
    assert lines[r < 18].min() > 0.99 and lines[r > 32].min() > 0.99
    ys, xs = np.nonzero(ink)
    sectors = ((np.degrees(np.arctan2(ys - 47.5, xs - 47.5)) + 180) // 15).astype(int) % 24
    assert len(np.unique(sectors)) == 24  # every 15° sector has ink: a closed ring


def test_xdog_is_brightness_independent_on_flat_areas():
    for value in (0.05, 0.3, 0.95):
        flat = torch.full((1, 3, 32, 32), value)
        assert npr.xdog_lines(flat).min() == 1.0  # dark areas are not filled (tone weight is small)


def test_scaled_params_grow_with_size():
    base = npr.XDoGParams()
    big = base.scaled(512)
    assert big.sigma == pytest.approx(2 * base.sigma) and big.min_area == pytest.approx(4 * base.min_area)
    assert big.p == base.p and big.epsilon == base.epsilon


def test_catmull_rom_passes_through_points_and_strokes_are_antialiased():
    points = np.array([[10.0, 40.0], [20.0, 20.0], [40.0, 12.0], [60.0, 20.0], [70.0, 40.0]])
    curve = npr.catmull_rom(points, samples_per_segment=8)
    for p in points:
        assert np.min(np.linalg.norm(curve - p, axis=1)) < 1e-9
    strokes = npr.draw_strokes(80, [curve], width=2.0)
    assert strokes.dtype == np.uint8 and strokes.shape == (80, 80)
    for x, y in points:
        assert strokes[int(round(y)), int(round(x))] < 60
    assert strokes[70, 40] == 255 and strokes[5, 5] == 255
    assert ((strokes > 0) & (strokes < 255)).any()  # a soft rim, not a jagged binary line


def test_remove_specks_keeps_lines_and_drops_dots():
    d = np.full((40, 40), 255, np.uint8)
    d[5, 5] = 0  # a speck
    d[20, 5:35] = 0  # a line
    out = npr.remove_specks(d, min_area=6)
    assert out[5, 5] == 255 and (out[20, 5:35] == 0).all()


def test_part_boxes_have_the_paper_sizes_and_stay_inside():
    points5 = np.array([[100.0, 113.0], [156.0, 113.0], [128.0, 145.0], [104.0, 178.0], [152.0, 178.0]])
    for size, f in ((256, 1), (512, 2)):
        boxes = part_boxes(points5 * f, size)
        assert set(boxes) == set(PART_SIZES)
        for name, (x1, y1, x2, y2) in boxes.items():
            h, w = PART_SIZES[name]
            assert (y2 - y1, x2 - x1) == (h * f, w * f)
            assert 0 <= x1 < x2 <= size and 0 <= y1 < y2 <= size
        x1, y1, x2, y2 = boxes["nose"]
        assert abs((x1 + x2 - 1) / 2 - 128 * f) <= 0.5 and abs((y1 + y2 - 1) / 2 - 145 * f) <= 0.5
    # A face at the corner: boxes are shifted inside, keeping their size.
    corner = part_boxes(points5 - 110, 256)
    for name, (x1, y1, x2, y2) in corner.items():
        assert x1 >= 0 and y1 >= 0 and (y2 - y1, x2 - x1) == PART_SIZES[name]


def test_part_masks_without_and_with_a_foreground():
    points5 = np.array([[100.0, 113.0], [156.0, 113.0], [128.0, 145.0], [104.0, 178.0], [152.0, 178.0]])
    masks = part_masks(points5, 256)
    assert list(masks) == list(PARTS)
    for name, m in masks.items():
        assert m.shape == (256, 256) and m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}, name
    x1, y1, x2, y2 = part_boxes(points5, 256)["mouth"]
    assert masks["mouth"].sum() == 255 * (x2 - x1) * (y2 - y1)
    hair, background = masks["hair"] > 0, masks["background"] > 0
    assert hair.any() and background.any() and not (hair & background).any()
    assert not background[128, 128] and background[5, 5]  # face centre is person, the top corner is not
    assert not hair[150, 128]  # the face itself is not hair
    # With a person mask: background is outside it (shoulders come from the rule), hair stays inside it.
    fg = np.zeros((256, 256), bool)
    fg[40:, 60:196] = True
    masks = part_masks(points5, 256, foreground=fg)
    hair, background = masks["hair"] > 0, masks["background"] > 0
    assert not (hair & ~fg).any()
    assert background[60, 30] and not background[60, 100]
    assert (person_region(points5, 256, fg) == ~background).all()


# ---------------------------------------------------------------------------------------------- HED


@pytest.fixture(scope="module")
def hed():
    require_assets("hed-bsds500")
    from facetool.nets.hed import load_hed

    return load_hed()  # load_state_dict(strict=True) inside: every key present, every shape right


def test_hed_weights_load_with_the_right_shapes(hed):
    from facetool.assets import asset_path
    from facetool.nets.hed import HED, hed_state_dict_from_h5

    state = hed_state_dict_from_h5(asset_path("hed-bsds500"))
    assert set(state) == set(HED().state_dict())
    assert state["blocks.0.0.weight"].shape == (64, 3, 3, 3)
    assert state["blocks.4.4.weight"].shape == (512, 512, 3, 3)
    assert state["side.3.weight"].shape == (1, 512, 1, 1) and state["fuse.weight"].shape == (1, 5, 1, 1)
    torch.testing.assert_close(hed.fuse.weight, state["fuse.weight"])


def test_hed_fires_on_a_square_edge_not_its_interior(hed):
    image = torch.full((1, 3, 96, 96), 0.85)
    image[:, :, 28:68, 28:68] = 0.15
    with torch.inference_mode():
        prob = hed(image)[0, 0]
    assert prob.shape == (96, 96) and prob.min() >= 0 and prob.max() <= 1
    edge = torch.cat([prob[27:29, 32:64].flatten(), prob[67:69, 32:64].flatten(), prob[32:64, 27:29].flatten()])
    interior = prob[38:58, 38:58]
    assert edge.mean() > 0.5 and interior.max() < 0.2 and edge.mean() > 5 * interior.mean()
    # Odd sizes (ceil-mode pooling) come back at the input size.
    with torch.inference_mode():
        assert hed(image[:, :, :77, :83]).shape == (1, 1, 77, 83)


# ---------------------------------------------------------------------------------------------- the command


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _sha(p) for p in sorted(root.rglob("*.png"))}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    shutil.copy(SAMPLE, folder / "astronaut.png")
    Image.open(SAMPLE).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "mirrored.png")
    return folder


@pytest.fixture(scope="module")
def first_run(photos, tmp_path_factory):
    require_assets("dlib-shape-predictor-68", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")
    from typer.testing import CliRunner

    from facetool.cli import build_app

    out = tmp_path_factory.mktemp("drawings")
    result = CliRunner().invoke(build_app(), ["data", "drawings", str(photos), "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "made 2" in result.stdout
    return out


def _records(out: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}


def test_command_writes_pairs_parts_and_records(first_run):
    from PIL import Image

    records = _records(first_run)
    assert set(records) == {"astronaut", "mirrored"}
    record = records["astronaut"]
    assert record["file"] == "photo/astronaut.png" and record["source"] == "astronaut.png" and record["licence"]
    assert {f"part_{p}" for p in PARTS} | {"photo", "drawing"} == set(record["files"])
    for entry in record["files"].values():
        assert _sha(first_run / entry["path"]) == entry["sha256"]
    photo = np.asarray(Image.open(first_run / "photo/astronaut.png"))
    drawing = np.asarray(Image.open(first_run / "drawing/astronaut.png"))
    assert photo.shape == (256, 256, 3) and drawing.shape == (256, 256) and drawing.dtype == np.uint8
    labels = record["labels"]
    assert np.asarray(labels["points5"]).shape == (5, 2) and np.asarray(labels["points68"]).shape == (68, 2)
    assert labels["template"] == "portrait" and labels["size"] == 256 and labels["mask"] == "rule"


def test_drawing_is_mostly_paper_with_ink_at_the_features(first_run):
    from PIL import Image
    from scipy import ndimage

    from facetool.data.parts import face_region

    labels = _records(first_run)["astronaut"]["labels"]
    drawing = np.asarray(Image.open(first_run / "drawing/astronaut.png")).astype(float)
    ink = drawing < 128
    assert (drawing >= 200).mean() > 0.8 and 0.01 < ink.mean() < 0.2
    assert ((drawing > 60) & (drawing < 195)).mean() < 0.04  # two tones plus thin anti-aliased rims
    boxes = part_boxes(np.asarray(labels["points5"]), 256)
    assert {k: list(v) for k, v in boxes.items()} == labels["parts"]
    # Ink gathers at the features: eyes and mouth carry far more of it than the skin around them (the face
    # region shrunk away from the jaw line and hairline, minus the part boxes).
    features = np.zeros_like(ink)
    for x1, y1, x2, y2 in boxes.values():
        features[y1:y2, x1:x2] = True
    skin = ndimage.binary_erosion(face_region(np.asarray(labels["points68"]), 256), iterations=8) & ~features
    for name in ("left_eye", "right_eye", "mouth"):
        x1, y1, x2, y2 = boxes[name]
        assert ink[y1:y2, x1:x2].mean() > 1.5 * ink[skin].mean(), name
    eyes_mouth = [ink[y1:y2, x1:x2].mean() for n, (x1, y1, x2, y2) in boxes.items() if n != "nose"]
    assert np.mean(eyes_mouth) > 2 * ink[skin].mean()
    # The jaw line is drawn through the landmarks.
    jaw = np.asarray(labels["points68"])[:17]
    for x, y in jaw:
        xi, yi = int(round(x)), int(round(y))
        if 1 <= xi < 255 and 1 <= yi < 255:
            assert drawing[yi - 1 : yi + 2, xi - 1 : xi + 2].min() < 80, (x, y)


def test_same_seed_same_bytes_and_resume(first_run, photos, tmp_path):
    from facetool.data.drawings import make_drawings

    second = tmp_path / "again"
    assert make_drawings(photos, second, seed=3) == (2, 0, 0)
    assert _tree(second) == _tree(first_run)
    # Remove one pair's drawing: a re-run makes only that pair again, identically.
    before = _tree(second)
    (second / "drawing" / "mirrored.png").unlink()
    assert make_drawings(photos, second, seed=3) == (1, 1, 0)
    assert _tree(second) == before
    assert len((second / "manifest.jsonl").read_text().splitlines()) == 2


def test_a_photo_changed_since_is_drawn_again(first_run, photos, tmp_path):
    from PIL import Image

    from facetool.data.drawings import make_drawings

    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    out = tmp_path / "drawn"
    assert make_drawings(folder, out, size=128) == (2, 0, 0)
    before = (out / "drawing" / "mirrored.png").read_bytes()
    Image.open(SAMPLE).rotate(8).save(folder / "mirrored.png")  # the same name, another picture
    assert make_drawings(folder, out, size=128) == (1, 1, 0)
    assert (out / "drawing" / "mirrored.png").read_bytes() != before


def test_labels_of_an_older_photo_are_refused_until_it_is_labelled_again(first_run, photos, tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from facetool.cli import build_app

    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    out = tmp_path / "drawn"

    def run(*args):
        return CliRunner().invoke(build_app(), ["data", *args])

    assert run("labels", str(folder), "--no-mesh").exit_code == 0
    assert run("drawings", str(folder), "--out", str(out), "--size", "128").exit_code == 0
    Image.open(SAMPLE).rotate(8).save(folder / "mirrored.png")  # the labels now describe another picture
    result = run("drawings", str(folder), "--out", str(out), "--size", "128")
    assert result.exit_code == 1 and "changed since it was labelled" in result.stderr, result.output
    assert run("labels", str(folder), "--no-mesh").exit_code == 0  # labels again: only the changed photo
    result = run("drawings", str(folder), "--out", str(out), "--size", "128")
    assert result.exit_code == 0 and "made 1, skipped 1" in result.stdout, result.output


def test_labels_file_and_person_mask_are_used(first_run, photos, tmp_path):
    from PIL import Image

    from facetool.data.drawings import make_drawings
    from facetool.faces import Face

    folder = tmp_path / "labelled"
    (folder / "labels").mkdir(parents=True)
    shutil.copy(photos / "astronaut.png", folder / "astronaut.png")
    # Faces from the first run, mapped back to photo pixels through the recorded crop matrix.
    labels = _records(first_run)["astronaut"]["labels"]
    m = np.vstack([np.asarray(labels["matrix"]), [0, 0, 1]])
    inv = np.linalg.inv(m)[:2]
    p68 = np.asarray(labels["points68"]) @ inv[:, :2].T + inv[:, 2]
    p5 = np.asarray(labels["points5"]) @ inv[:, :2].T + inv[:, 2]
    face = Face(box=[0, 0, 10, 10], score=1.0, points5=p5, points68=p68, detector="test")
    image = Image.open(SAMPLE)
    mask = np.zeros((image.height, image.width), np.uint8)
    mask[: image.height * 3 // 4, image.width // 8 : image.width * 7 // 8] = 255
    Image.fromarray(mask).save(folder / "labels" / "astronaut.mask.png")
    data = {"width": image.width, "height": image.height, "faces": [face.to_dict()]}
    data["mask"] = "labels/astronaut.mask.png"
    (folder / "labels" / "astronaut.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    assert make_drawings(folder, out, size=128) == (1, 0, 0)
    record = _records(out)["astronaut"]
    assert record["labels"]["mask"] == "labels" and record["labels"]["labels_from"] == "labels"
    np.testing.assert_allclose(record["labels"]["points5"], np.asarray(labels["points5"]) / 2, atol=0.6)
    hair = np.asarray(Image.open(out / record["files"]["part_hair"]["path"])) > 0
    assert hair.shape == (128, 128) and hair.any()
    for name, (h, w) in PART_SIZES.items():
        part = np.asarray(Image.open(out / record["files"][f"part_{name}"]["path"])) > 0
        assert part.sum() == (h // 2) * (w // 2)
    # --vary: the seed picks each pair's filter variation, reproducibly.
    outs = [tmp_path / f"varied_{k}" for k in range(3)]
    for target, seed in zip(outs, (5, 5, 6), strict=True):
        assert make_drawings(folder, target, size=128, seed=seed, vary=0.3) == (1, 0, 0)
    a, b, c = (_tree(o)["drawing/astronaut.png"] for o in outs)
    assert a == b and a != c and a != _tree(out)["drawing/astronaut.png"]
    assert set(_records(outs[0])["astronaut"]["labels"]["xdog"]) >= {"sigma", "p", "epsilon"}


def test_bad_arguments_are_usage_errors(photos, tmp_path):
    from facetool.data.drawings import make_drawings
    from facetool.errors import UsageError

    with pytest.raises(UsageError, match="--size"):
        make_drawings(photos, tmp_path / "a", size=16)
    with pytest.raises(UsageError, match="template"):
        make_drawings(photos, tmp_path / "b", template="nope")
    with pytest.raises(UsageError, match="not a folder"):
        make_drawings(photos / "astronaut.png", tmp_path / "c")
