"""``facetool data labels``: face labels, hair-colour class and person mask per photo."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from facetool.data import labels as L

from conftest import SAMPLE, require_assets

LABELER_ASSETS = ("dlib-shape-predictor-68", "mediapipe-face-landmarker", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")


@pytest.fixture(scope="module")
def labeler():
    pytest.importorskip("mediapipe")
    require_assets(*LABELER_ASSETS)
    from facetool.data.faceinfo import FaceLabeler

    with FaceLabeler() as face_labeler:
        yield face_labeler


def test_astronaut_and_a_photo_without_a_face(tmp_path, labeler):
    from PIL import Image

    from facetool.data.common import read_manifest

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(SAMPLE, photos / "astronaut.png")
    Image.new("RGB", (96, 64), (90, 140, 200)).save(photos / "sky.png")

    assert L.make_labels(photos, labeler=labeler) == (2, 0)
    out = photos / "labels"
    data = json.loads((out / "astronaut.json").read_text())
    assert (data["width"], data["height"]) == (512, 512)
    assert len(data["faces"]) == 1
    face = data["faces"][0]
    assert len(face["points68"]) == 68 and len(face["landmarks3d"]) == 478
    assert set(face["pose"]) == {"yaw", "pitch", "roll"} and face["blendshapes"]
    # Her hair is light brown / dark blonde; measured: blonde, L* ~45 (just over the threshold), low confidence.
    assert data["hair"]["class"] in L.HAIR_CLASSES
    assert data["hair"]["class"] in ("blonde", "brown")
    assert 0.0 <= data["hair"]["confidence"] <= 1.0

    assert data["mask"] == "labels/astronaut.mask.png"
    mask = np.asarray(Image.open(photos / data["mask"]))
    assert mask.shape == (512, 512) and set(np.unique(mask)) == {0, 255}
    x1, y1, x2, y2 = face["box"]
    assert mask[round((y1 + y2) / 2), round((x1 + x2) / 2)] == 255  # the face is person
    # The top corners are background (the bottom ones are her suit and helmet, which are person).
    assert mask[:16, :16].max() == 0 and mask[:16, -16:].max() == 0
    assert 0.3 < (mask > 0).mean() < 0.8

    empty = json.loads((out / "sky.json").read_text())
    assert empty == {"width": 96, "height": 64, "faces": [], "hair": None, "mask": None}
    records = {r["id"]: r for r in read_manifest(out)}
    assert set(records) == {"astronaut", "sky"}
    assert records["sky"]["labels"]["faces"] == 0 and records["sky"]["files"] == {}
    assert records["astronaut"]["files"]["mask"]["path"] == "astronaut.mask.png"
    assert records["astronaut"]["labels"]["hair"] == data["hair"]["class"]

    # Resumable: nothing to do; a changed photo is labelled again.
    assert L.make_labels(photos, labeler=labeler) == (0, 2)
    Image.new("RGB", (96, 64), (200, 140, 90)).save(photos / "sky.png")
    assert L.make_labels(photos, labeler=labeler) == (1, 1)


def _synthetic_portrait() -> tuple[np.ndarray, np.ndarray, object]:
    """A drawn person (brown hair, skin face and neck, green shirt) on a noisy blue-grey wall, the true person
    mask, and a Face whose 68 points are dlib's mean shape placed on the drawn face."""
    from facetool_dlib.detector import MEAN68
    from PIL import Image, ImageDraw

    from facetool.faces import Face, box_from_points, points5_from_68

    size = 256
    points = MEAN68 * 90 + np.array([83.0, 95.0])  # the unit box of the mean shape -> 90 px at (83, 95)
    jaw = [tuple(p) for p in points[:17]]
    brow_y, chin_y = points[17:27, 1].mean(), points[8, 1]
    left, right = points[0, 0], points[16, 0]
    cx = (left + right) / 2
    person = Image.new("L", (size, size), 0)
    canvas = Image.new("RGB", (size, size), (120, 135, 160))
    for target, colours in ((canvas, ((80, 55, 40), (225, 180, 150), (40, 140, 60))), (person, (255, 255, 255))):
        draw = ImageDraw.Draw(target)
        hair, skin, shirt = colours
        draw.polygon([(cx - 95, size), (cx + 95, size), (cx + 40, chin_y + 25), (cx - 40, chin_y + 25)], fill=shirt)
        draw.rectangle([cx - 22, chin_y - 10, cx + 22, chin_y + 30], fill=skin)
        draw.ellipse([left - 12, brow_y - 75, right + 12, brow_y + 45], fill=hair)
        draw.polygon(jaw + [(right - 4, brow_y - 30), (left + 4, brow_y - 30)], fill=skin)
    noise = np.random.default_rng(0).normal(0, 4, (size, size, 3))
    image = np.clip(np.asarray(canvas, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    face = Face(box=box_from_points(points), score=1.0, points5=points5_from_68(points), points68=points)
    return image, np.asarray(person) > 0, face


def test_mask_and_hair_on_a_drawn_portrait():
    image, truth, face = _synthetic_portrait()
    mask = L.foreground_mask(image, face)
    assert mask.shape == truth.shape
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.9, iou
    hair = L.hair_colour(image, face, mask)
    assert hair is not None and hair["class"] == "brown"
    assert abs(hair["lab"][0] - float(L.srgb_to_lab(np.array([80, 55, 40], np.uint8))[0])) < 5


@pytest.mark.parametrize(
    ("rgb", "expected"),
    [((20, 18, 18), "black"), ((80, 55, 40), "brown"), ((200, 170, 110), "blonde"), ((170, 170, 170), "grey")],
)
def test_hair_classes_from_colour(rgb, expected):
    lab = L.srgb_to_lab(np.array(rgb, dtype=np.uint8))
    chroma, hue = L.hair_chroma(lab)
    assert L.classify_hair(float(lab[0]), chroma, hue)[0] == expected


def test_blue_cast_is_not_hair_chroma():
    # Black hair with a blue sheen from the sky: strong a*b* chroma, none of it along the pigment hues.
    chroma, _ = L.hair_chroma(np.array([20.0, 5.0, -20.0]))
    assert chroma == 0.0 and L.classify_hair(20.0, chroma)[0] == "black"


def test_lab_round_trip():
    rgb = np.random.default_rng(1).integers(0, 256, (200, 3), dtype=np.uint8)
    assert np.abs(L.lab_to_srgb(L.srgb_to_lab(rgb)).astype(int) - rgb).max() <= 1


def test_photo_folder_from_a_data_command(tmp_path):
    from PIL import Image

    from facetool.errors import UsageError

    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "000000.png")
    (tmp_path / "manifest.jsonl").write_text(json.dumps({"id": "000000", "file": "photos/000000.png", "licence": "X"}))
    assert L.list_photos(tmp_path) == [(tmp_path / "photos" / "000000.png", "X")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no photos"):
        L.list_photos(tmp_path / "empty")
    with pytest.raises(UsageError, match="not a folder"):
        L.list_photos(tmp_path / "missing")


def test_list_photos_leaves_out_facetools_own_results(tmp_path):
    from PIL import Image

    from facetool.data.labels import list_photos

    for name in ("a.png", "a.apdrawing.png", "a.cartoon.face0.png", "a.mask.png", "a.depth.png", "me.v2.jpg"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    assert [p.name for p, _ in list_photos(tmp_path)] == ["a.png", "me.v2.jpg"]
