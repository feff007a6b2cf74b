"""Real detectors on a real photo, checked for properties that hold on any photo: the same face is found, with
the same landmarks, after grayscale, down-scaling, mirroring, rotation and placing several faces in one image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facetool.faces import nme
from facetool.pipeline import detect_faces, load_detector

from conftest import require_assets

MTCNN = ("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")
FACE_REGION = (165, 70, 285, 190)  # where the astronaut's face is (x1, y1, x2, y2)


@pytest.fixture(scope="module")
def dlib_detector():
    require_assets("dlib-shape-predictor-68", *MTCNN)
    return load_detector("dlib")[1]


@pytest.fixture(scope="module")
def reference(dlib_detector, sample_image):
    faces = detect_faces(dlib_detector, sample_image)
    assert len(faces) == 1  # plain HOG at upsample 1 also fires on the mission patch: we must not
    return faces[0]


def test_dlib_face_and_landmark_layout(reference):
    face = reference
    x1, y1, x2, y2 = FACE_REGION
    assert face.points68.shape == (68, 2) and face.points5.shape == (5, 2)
    assert (face.points68[:, 0] > x1).all() and (face.points68[:, 0] < x2).all()
    assert (face.points68[:, 1] > y1).all() and (face.points68[:, 1] < y2).all()
    le, re, nose, ml, mr = face.points5
    assert le[0] < re[0] and ml[0] < mr[0]  # image-left first
    assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1])  # eyes above nose above mouth
    assert face.points68[8, 1] > face.points68[57, 1]  # chin below the lower lip


def _rotate(image, degrees, centre):
    rotated = Image.fromarray(image).rotate(degrees, resample=Image.Resampling.BICUBIC, center=tuple(centre))
    return np.asarray(rotated)


def _unrotate(points, degrees, centre):
    a = np.deg2rad(degrees)
    q = points - centre
    return np.c_[q[:, 0] * np.cos(a) - q[:, 1] * np.sin(a), q[:, 0] * np.sin(a) + q[:, 1] * np.cos(a)] + centre


@pytest.mark.parametrize("degrees", [15, 40])
def test_dlib_rotation_equivariance(dlib_detector, reference, sample_image, degrees):
    centre = reference.points68.mean(0)
    faces = detect_faces(dlib_detector, _rotate(sample_image, degrees, centre))
    assert len(faces) == 1
    assert nme(_unrotate(faces[0].points68, degrees, centre), reference.points68) < 0.03


def test_dlib_grayscale_small_and_mirror(dlib_detector, reference, sample_image):
    from facetool_dlib.detector import FLIP68

    gray = np.asarray(Image.fromarray(sample_image).convert("L").convert("RGB"))
    faces = detect_faces(dlib_detector, gray)
    assert len(faces) == 1 and nme(faces[0].points68, reference.points68) < 0.03

    small = np.asarray(Image.fromarray(sample_image).resize((150, 150), Image.Resampling.LANCZOS))
    faces = detect_faces(dlib_detector, small)
    k = 512 / 150
    assert len(faces) == 1 and nme((faces[0].points68 + 0.5) * k - 0.5, reference.points68) < 0.04

    faces = detect_faces(dlib_detector, np.ascontiguousarray(sample_image[:, ::-1]))
    mirrored = faces[0].points68.copy()
    mirrored[:, 0] = 511 - mirrored[:, 0]
    assert len(faces) == 1 and nme(mirrored[FLIP68], reference.points68) < 0.03


def test_dlib_several_faces(dlib_detector, sample_image):
    face = sample_image[40:240, 120:330]
    canvas = np.full((400, 1200, 3), 128, np.uint8)
    canvas[100:300, 50:260] = face
    canvas[150:350, 500:710] = face[:, ::-1]
    small = np.asarray(Image.fromarray(face).resize((120, 114)))
    canvas[20:134, 1000:1120] = small
    faces = detect_faces(dlib_detector, canvas)
    assert len(faces) == 3
    assert faces[0].area >= faces[1].area >= faces[2].area  # largest first
    centres = sorted(float(f.points5[:, 0].mean()) for f in faces)
    assert centres[0] < 260 < centres[1] < 710 < centres[2]


def test_no_face_in_noise(dlib_detector):
    rng = np.random.default_rng(0)
    assert detect_faces(dlib_detector, rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)) == []
    assert detect_faces(dlib_detector, np.full((64, 64, 3), 200, np.uint8)) == []


def test_mtcnn_agrees_with_dlib(reference, sample_image):
    require_assets(*MTCNN)
    faces = detect_faces(load_detector("mtcnn")[1], sample_image)
    assert len(faces) == 1
    eye_distance = np.linalg.norm(reference.points5[1] - reference.points5[0])
    error = np.linalg.norm(faces[0].points5 - reference.points5, axis=1).mean() / eye_distance
    assert error < 0.12


def test_mediapipe_mesh_and_pose(reference, sample_image):
    pytest.importorskip("mediapipe")
    require_assets("mediapipe-face-landmarker", *MTCNN)
    spec, det = load_detector("mediapipe")
    try:
        face = detect_faces(det, sample_image)[0]
        assert face.landmarks3d.shape == (478, 3) and len(face.blendshapes) == 52
        eye_distance = np.linalg.norm(reference.points5[1] - reference.points5[0])
        assert np.linalg.norm(face.points5[:2] - reference.points5[:2], axis=1).max() / eye_distance < 0.15
        assert abs(face.pose["yaw"]) < 15 and abs(face.pose["roll"]) < 15
        nose_z = face.landmarks3d[1, 2]
        assert nose_z < np.median(face.landmarks3d[:, 2])  # the nose tip is nearer the camera than most
        turned = _rotate(sample_image, 20, reference.points68.mean(0))
        roll = detect_faces(det, turned)[0].pose["roll"]
        assert abs(roll - face.pose["roll"] - 20) < 6 or abs(roll - face.pose["roll"] + 20) < 6
    finally:
        det.close()


def test_insightface_without_pack_says_where_and_never_downloads(tmp_path, monkeypatch):
    import socket

    from facetool.errors import FacetoolError

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(FacetoolError, match="not found") as info:
        load_detector("insightface", [f"root={tmp_path}"])
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


def test_dlib_small_face_hint_names_the_settings_that_make_min_face_work():
    from facetool_dlib import DlibOptions

    from facetool.errors import FacetoolError
    from facetool.pipeline import choose_faces

    def hint(**settings):
        with pytest.raises(FacetoolError) as caught:
            choose_faces([], "all", "group.jpg", (1200, 1600, 3), "dlib", DlibOptions(**settings))
        return str(caught.value)

    assert "large photo: -D min-face=20;" in hint()
    # min-face steers only the MTCNN proposals: with HOG alone it would do nothing
    assert "large photo: -D proposals=hog+mtcnn -D min-face=20;" in hint(proposals="hog")
    assert "large photo: -D proposals=hog+mtcnn;" in hint(proposals="cnn", min_face=16)
    assert "min-face" not in hint(min_face=16) and "proposals" not in hint(min_face=16)


def test_the_preview_names_each_face_by_its_index_on_a_dark_plate():
    import numpy as np

    from facetool.draw import annotate
    from facetool.faces import Face

    image = np.full((300, 400, 3), 200, np.uint8)
    points5 = np.array([[140, 150], [180, 150], [160, 170], [145, 190], [175, 190]], np.float32)
    faces = [Face(box=np.array([120, 120, 200, 220], np.float32), score=0.9, points5=points5),
             Face(box=np.array([260, 130, 320, 200], np.float32), score=0.8, points5=points5 + [130, 0])]  # fmt: skip
    out = annotate(image, faces)
    assert out.shape == image.shape and (image == 200).all()  # a copy: the photo is left as it was
    for x1, y1 in ((120, 120), (260, 130)):
        plate = out[y1 - 18 : y1 - 1, x1 : x1 + 40]
        assert (plate == 0).all(axis=2).mean() > 0.3  # the plate behind the label
        assert ((plate[..., 1] > 200) & (plate[..., 0] < 50)).any()  # green letters on it
