"""The face record every detector returns.

Coordinates are pixels of the (EXIF-rotated) input image, x to the right and y down, pixel centres at integers.
Five points are ordered left eye, right eye, nose tip, mouth left, mouth right — left/right as seen in the
image — so alignment never depends on the backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

POINTS5_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass
class Face:
    """One detected face.

    Attributes:
        box: (4,) x1, y1, x2, y2.
        score: detector confidence in [0, 1] (backends without a probability map theirs into it).
        points5: (5, 2) float, order of :data:`POINTS5_NAMES`.
        points68: (68, 2) iBUG-300W layout, when the backend has them.
        landmarks3d: (N, 3) x, y in pixels and z in pixels-scaled depth (smaller = nearer), when the backend has them.
        pose: yaw, pitch, roll in degrees (yaw > 0: the face turns to the image's left), when the backend has it.
        blendshapes: expression coefficients by name, when the backend has them.
        detector: name of the detector that produced it.
    """

    box: np.ndarray
    score: float
    points5: np.ndarray
    points68: np.ndarray | None = None
    landmarks3d: np.ndarray | None = None
    pose: dict[str, float] | None = None
    blendshapes: dict[str, float] | None = None
    detector: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, dtype=np.float32).reshape(4)
        self.points5 = np.asarray(self.points5, dtype=np.float32).reshape(5, 2)
        if self.points68 is not None:
            self.points68 = np.asarray(self.points68, dtype=np.float32).reshape(68, 2)
        if self.landmarks3d is not None:
            self.landmarks3d = np.asarray(self.landmarks3d, dtype=np.float32).reshape(-1, 3)
        self.score = float(self.score)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def to_dict(self, *, full: bool = True) -> dict[str, Any]:
        """JSON-ready dict; ``full=False`` leaves out the 478-point mesh and blendshapes."""
        out: dict[str, Any] = {
            "detector": self.detector,
            "score": round(self.score, 4),
            "box": [round(float(v), 2) for v in self.box],
            "points5": _round(self.points5),
        }
        if self.points68 is not None:
            out["points68"] = _round(self.points68)
        if self.pose is not None:
            out["pose"] = {k: round(float(v), 2) for k, v in self.pose.items()}
        if full and self.landmarks3d is not None:
            out["landmarks3d"] = _round(self.landmarks3d)
        if full and self.blendshapes is not None:
            out["blendshapes"] = {k: round(float(v), 4) for k, v in self.blendshapes.items()}
        if self.extra:
            out["extra"] = self.extra
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Face:
        return cls(
            box=data["box"],
            score=data.get("score", 1.0),
            points5=data["points5"],
            points68=data.get("points68"),
            landmarks3d=data.get("landmarks3d"),
            pose=data.get("pose"),
            blendshapes=data.get("blendshapes"),
            detector=data.get("detector", ""),
            extra=data.get("extra", {}),
        )


def _round(arr: np.ndarray) -> list[list[float]]:
    return [[round(float(v), 2) for v in row] for row in arr]


def points5_from_68(points68: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG layout -> (5, 2): eye centres, nose tip, mouth corners."""
    p = np.asarray(points68, dtype=np.float32)
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def box_from_points(points: np.ndarray) -> np.ndarray:
    """(N, 2) -> (4,) the tight box around the points."""
    p = np.asarray(points, dtype=np.float32)
    return np.array([p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()], dtype=np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (4,) boxes."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def sort_faces(faces: list[Face]) -> list[Face]:
    """Largest first, so ``--face 0`` and ``--face largest`` agree and indices are stable for a given photo."""
    return sorted(faces, key=lambda f: (-f.area, float(f.box[0])))


def nme(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean point error over the distance between the eye centres (the issue's 68-point NME).

    pred, truth: (68, 2). The normaliser is taken from ``truth``.
    """
    from .metrics.landmarks import nme as landmark_nme

    return float(landmark_nme(pred, truth, normaliser="pupils"))
