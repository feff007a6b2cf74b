"""The MediaPipe detector (imported only when the detector is used: mediapipe takes seconds to import)."""

from __future__ import annotations

import contextlib
import math
import os

import numpy as np

from facetool.assets import asset_path
from facetool.errors import FacetoolError
from facetool.faces import Face

CROP_SCALE = 1.8  # the landmarker expects a loose face crop; 1.8x a detector box found 8 of 8 faces in tests
CROP_SIZE = 256
# 478-point topology: iris centres, nose tip, mouth corners (image-left first for an upright face).
IRIS_A, IRIS_B, NOSE_TIP, MOUTH_A, MOUTH_B = 468, 473, 1, 61, 291


@contextlib.contextmanager
def _quiet_native_stderr():
    """MediaPipe's C++ logging writes to fd 2 directly; hide it while its graph is built and run."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def pose_from_matrix(matrix: np.ndarray) -> dict[str, float]:
    """4x4 face transform (canonical face -> camera) -> yaw, pitch, roll in degrees.

    yaw > 0: the face turns towards the image's left; pitch > 0: it looks up; roll > 0: clockwise in the image.
    """
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    r = r / np.cbrt(max(np.linalg.det(r), 1e-12))  # the matrix may carry scale
    yaw = math.degrees(math.atan2(-r[0, 2], r[2, 2]))
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, r[1, 2]))))
    roll = math.degrees(math.atan2(-r[1, 0], r[1, 1]))
    return {"yaw": yaw, "pitch": pitch, "roll": roll}


class MediapipeDetector:
    def __init__(self, options, device: str = "cpu") -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        try:
            with _quiet_native_stderr():
                import mediapipe as mp
                from mediapipe.tasks.python import BaseOptions, vision
        except ImportError:
            raise FacetoolError(
                "detector mediapipe needs the mediapipe package: pip install 'facetool[mediapipe]'"
            ) from None
        self.mp, self.options = mp, options
        single = options.proposals == "mtcnn"  # one face per crop
        task_options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(asset_path("mediapipe-face-landmarker"))),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=1 if single else options.max_faces,
            output_face_blendshapes=options.blendshapes,
            output_facial_transformation_matrixes=True,
            min_face_detection_confidence=0.3 if single else 0.5,
        )
        with _quiet_native_stderr():
            self.landmarker = vision.FaceLandmarker.create_from_options(task_options)
        self.mtcnn = None
        if single:
            from facetool.nets.loaders import load_mtcnn

            self.mtcnn = load_mtcnn("cpu", min_face_size=options.min_face)

    def close(self) -> None:
        # Left to __del__, interpreter exit prints a TypeError traceback (measured): close explicitly.
        if getattr(self, "landmarker", None) is not None:
            self.landmarker.close()
            self.landmarker = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # at interpreter exit the modules close() needs may already be gone
            return

    def _run(self, rgb: np.ndarray):
        image = self.mp.Image(image_format=self.mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with _quiet_native_stderr():
            return self.landmarker.detect(image)

    def detect(self, image: np.ndarray) -> list[Face]:
        if self.mtcnn is None:
            return self._faces(self._run(image), np.eye(3), image.shape[1], 1.0)
        import torch

        from facetool.nets.loaders import proposal_min_face

        min_face = proposal_min_face(*image.shape[:2], floor=self.options.min_face)
        boxes, scores, _ = self.mtcnn.detect(torch.from_numpy(np.array(image)).permute(2, 0, 1), min_face_size=min_face)
        faces = []
        for box, score in zip(boxes.cpu().numpy(), scores.cpu().numpy(), strict=True):
            crop, to_image = _square_crop(image, box, CROP_SCALE, CROP_SIZE)
            found = self._faces(self._run(crop), to_image, CROP_SIZE, float(score))
            faces.extend(found[:1])
            if len(faces) >= self.options.max_faces:
                break
        return faces

    def _faces(self, result, to_image: np.ndarray, frame: int, score: float) -> list[Face]:
        faces = []
        for i, marks in enumerate(result.face_landmarks):
            pts = np.array([[m.x, m.y, m.z] for m in marks], dtype=np.float64) * frame
            xy = np.c_[pts[:, :2], np.ones(len(pts))] @ to_image.T
            scale = math.sqrt(abs(np.linalg.det(to_image[:2, :2])))
            land3d = np.c_[xy[:, :2], pts[:, 2] * scale]
            p5 = land3d[[IRIS_A, IRIS_B, NOSE_TIP, MOUTH_A, MOUTH_B], :2]
            box = np.r_[land3d[:, :2].min(0), land3d[:, :2].max(0)]
            blend = None
            if result.face_blendshapes:
                blend = {c.category_name: float(c.score) for c in result.face_blendshapes[i]}
            pose = pose_from_matrix(np.array(result.facial_transformation_matrixes[i]))
            faces.append(Face(box=box, score=score, points5=p5, landmarks3d=land3d, pose=pose,
                              blendshapes=blend, detector="mediapipe"))  # fmt: skip
        return faces


def _square_crop(image: np.ndarray, box: np.ndarray, scale: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned square crop of ``scale`` x the box, resized to size² (edges padded by replication).

    Returns the crop (size, size, 3) and the 3x3 matrix mapping crop pixels to image pixels.
    """
    from PIL import Image

    # Work in corner-based coordinates (pixel i spans [i, i+1)); Face coordinates put pixel centres at integers.
    cx, cy = (box[0] + box[2]) / 2 + 0.5, (box[1] + box[3]) / 2 + 0.5
    side = max(box[2] - box[0], box[3] - box[1]) * scale
    x0, y0 = cx - side / 2, cy - side / 2
    k = side / size
    # PIL's affine maps an output point (u, v) to the input point (k u + x0, k v + y0), both corner-based.
    crop = Image.fromarray(image).transform(
        (size, size), Image.Transform.AFFINE, (k, 0, x0, 0, k, y0), resample=Image.Resampling.BILINEAR
    )
    # MediaPipe's normalised landmarks times the crop size are corner-based crop coordinates.
    to_image = np.array([[k, 0, x0 - 0.5], [0, k, y0 - 0.5], [0, 0, 1]], dtype=np.float64)
    return np.asarray(crop), to_image
