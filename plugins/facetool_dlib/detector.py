"""The dlib detector: proposals (HOG, MTCNN, CNN) -> 68 points predicted on upright, scale-normalised crops.

Geometry: a face's *frame* is a similarity transform from "box units" — where dlib's HOG box of an upright
frontal face is the unit square and :data:`MEAN68` is its mean 68-point shape — to image pixels. Every
proposal becomes a frame (HOG box: directly; MTCNN's 5 points or a predicted 68: fit onto the mean shape), the
face is resampled into a fixed-size upright crop where the unit square is ``BOX_PX`` pixels, and the predictor
runs on the unit square there. The crop makes small faces big enough for sub-pixel landmarks (dlib returns whole
pixels) and tilted faces upright (the predictor was trained on upright faces).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from facetool.assets import asset_path
from facetool.faces import Face, box_from_points, box_iou, points5_from_68

BOX_PX = 200  # the unit square's size in the crop: faces of any size are predicted at this scale
MARGIN = 0.35  # crop margin around the unit square, in box units (the predictor looks slightly outside the box)
CROP_PX = int(round(BOX_PX * (1 + 2 * MARGIN)))
WEAK_HOG = 0.5  # raw HOG score under which a box needs MTCNN's confirmation
MAX_UPRIGHT_ROLL = 12.0  # degrees of eye-line tilt past which MTCNN's rotated frame replaces HOG's upright box

_SHAPE = json.loads((Path(__file__).with_name("mean_shape.json")).read_text())
MEAN68 = np.array(_SHAPE["mean68"], dtype=np.float64)  # (68, 2) in box units
MEAN5 = points5_from_68(MEAN68).astype(np.float64)

# iBUG-68 index of each point's mirror image (jaw, brows, nose, eyes, mouth).
FLIP68 = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65]
)  # fmt: skip


def fit_frame(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (2, 3) mapping points ``src`` (N, 2) onto ``dst`` (N, 2).

    In 2D a rotation-and-scale is a complex multiplication, so the fit is a one-line complex least squares.
    """
    s = src[:, 0] + 1j * src[:, 1]
    d = dst[:, 0] + 1j * dst[:, 1]
    s0, d0 = s - s.mean(), d - d.mean()
    a = np.vdot(s0, d0) / max(np.vdot(s0, s0).real, 1e-12)
    t = d.mean() - a * s.mean()
    return np.array([[a.real, -a.imag, t.real], [a.imag, a.real, t.imag]])


def frame_from_box(box: np.ndarray) -> np.ndarray:
    """An upright frame whose unit square is the given (x1, y1, x2, y2) box (a HOG-style box)."""
    w, h = box[2] - box[0], box[3] - box[1]
    side = (w + h) / 2
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return np.array([[side, 0, cx - side / 2], [0, side, cy - side / 2]])


def _roll(points5: np.ndarray) -> float:
    """In-plane tilt of the eye line in degrees."""
    dx, dy = points5[1] - points5[0]
    return math.degrees(math.atan2(dy, dx))


def _contains(box: np.ndarray, point: np.ndarray) -> bool:
    return bool(box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3])


def apply(frame: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ frame[:, :2].T + frame[:, 2]


class DlibDetector:
    def __init__(self, options, device: str = "cpu") -> None:
        import dlib

        self.dlib, self.options = dlib, options
        self.predictor = dlib.shape_predictor(str(asset_path("dlib-shape-predictor-68")))
        self.hog = dlib.get_frontal_face_detector() if "hog" in options.proposals else None
        self.cnn = None
        if options.proposals == "cnn":
            self.cnn = dlib.cnn_face_detection_model_v1(str(asset_path("dlib-mmod-detector")))
        self.mtcnn = None
        if "mtcnn" in options.proposals:
            from facetool.nets.loaders import load_mtcnn

            self.mtcnn = load_mtcnn(device, min_face_size=20)
        self.device = device

    # --- proposals ----------------------------------------------------------------------------------------------

    def _upsample(self, image: np.ndarray) -> int:
        if self.options.upsample >= 0:
            return self.options.upsample
        side = max(image.shape[:2])
        # HOG's window is 80 px: upsampling small photos lets it find the 40-80 px faces they tend to have.
        return 2 if side <= 320 else 1 if side <= 1100 else 0

    def _proposals(self, image: np.ndarray) -> list[tuple[np.ndarray, float, str]]:
        """(frame, score, source) per face candidate."""
        found: list[tuple[np.ndarray, float, str]] = []
        mtcnn_faces: list[tuple[np.ndarray, float]] = []
        if self.mtcnn is not None:
            import torch

            from facetool.nets.loaders import proposal_min_face

            tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1)
            min_face = self.options.min_face or proposal_min_face(*image.shape[:2])
            _, scores, points = self.mtcnn.detect(tensor, min_face_size=min_face)
            mtcnn_faces = list(zip(points.cpu().numpy().astype(np.float64), scores.cpu().tolist(), strict=True))
        claimed = [False] * len(mtcnn_faces)
        if self.hog is not None:
            rects, scores, _ = self.hog.run(image, self._upsample(image), 0.0)
            for r, s in zip(rects, scores, strict=True):
                box = np.array([r.left(), r.top(), r.right(), r.bottom()], dtype=np.float64)
                inside = [i for i, (p5, _) in enumerate(mtcnn_faces) if _contains(box, p5.mean(0))]
                for i in inside:
                    claimed[i] = True
                # Upsampled HOG fires on round textures (badges, patches) with low scores: a weak box
                # counts only when MTCNN also sees a face there.
                if s < WEAK_HOG and self.mtcnn is not None and not inside:
                    continue
                frame = frame_from_box(box)
                if inside and abs(_roll(mtcnn_faces[inside[0]][0])) > MAX_UPRIGHT_ROLL:
                    frame = fit_frame(MEAN5, mtcnn_faces[inside[0]][0])  # tilted: HOG's upright box misleads
                found.append((frame, 1 / (1 + math.exp(-2 * s)), "hog"))
        if self.cnn is not None:
            for d in self.cnn(image, self._upsample(image)):
                r = d.rect
                box = np.array([r.left(), r.top(), r.right(), r.bottom()], dtype=np.float64)
                found.append((frame_from_box(box), float(min(1.0, max(0.0, d.confidence))), "cnn"))
        for (p5, s), taken in zip(mtcnn_faces, claimed, strict=True):
            if not taken and s >= self.options.threshold:  # a face HOG missed: turned, tilted or small
                found.append((fit_frame(MEAN5, p5), float(s), "mtcnn"))
        return found

    # --- landmarks ----------------------------------------------------------------------------------------------

    def _predict(self, crop: np.ndarray) -> np.ndarray:
        lo, hi = int(round(MARGIN * BOX_PX)), int(round((1 + MARGIN) * BOX_PX))
        rect = self.dlib.rectangle(lo, lo, hi, hi)
        shape = self.predictor(crop, rect)
        pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        if self.options.flip:
            mirrored = np.ascontiguousarray(crop[:, ::-1])
            w = crop.shape[1]
            shape = self.predictor(mirrored, self.dlib.rectangle(w - 1 - hi, lo, w - 1 - lo, hi))
            back = np.array([(w - 1 - p.x, p.y) for p in shape.parts()], dtype=np.float64)[FLIP68]
            pts = (pts + back) / 2
        return pts

    def _landmarks(self, image: np.ndarray, frame: np.ndarray) -> np.ndarray:
        for step in range(1 + max(0, self.options.refine)):
            crop, to_image = warp_to_crop(image, frame)
            pts = apply(to_image, self._predict(crop))
            if step < self.options.refine:
                frame = fit_frame(MEAN68, pts)
        return pts

    def detect(self, image: np.ndarray) -> list[Face]:
        faces: list[Face] = []
        for frame, score, source in sorted(self._proposals(image), key=lambda f: -f[1]):
            pts = self._landmarks(image, frame)
            box = box_from_points(pts)
            if any(box_iou(box, f.box) > 0.4 for f in faces):
                continue  # two proposals converged on one face
            faces.append(Face(box=box, score=score, points5=points5_from_68(pts), points68=pts,
                              detector="dlib", extra={"proposal": source}))  # fmt: skip
        return faces


def warp_to_crop(image: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resample a face's frame into a CROP_PX² upright crop.

    Returns the crop (CROP_PX, CROP_PX, 3) uint8 and the (2, 3) map from crop pixels to image pixels
    (pixel centres at integers on both sides).
    """
    # crop pixel q -> box units u = (q - MARGIN*BOX_PX) / BOX_PX -> image p = A u + t
    lin = frame[:, :2] / BOX_PX
    off = frame[:, 2] - frame[:, :2] @ np.array([MARGIN, MARGIN])
    to_image = np.c_[lin, off]
    # PIL maps output corner-coordinates to input corner-coordinates; centre coords = corner coords - 0.5.
    shift = lin @ np.array([-0.5, -0.5]) + 0.5
    coeffs = (lin[0, 0], lin[0, 1], off[0] + shift[0], lin[1, 0], lin[1, 1], off[1] + shift[1])
    crop = Image.fromarray(image).transform(
        (CROP_PX, CROP_PX), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
    )
    return np.asarray(crop), to_image
