"""Full face labels for the data factory: dlib's 68 points merged with MediaPipe's 3D mesh and head pose.

Every pair generator needs the same per-face facts (68 points for jaw lines and parts, the 478-point mesh for
depth maps, the pose for Loomis heads); this module computes them once, in one place, and reads/writes them as
JSON so ``facetool data labels`` output can be reused by every later command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from facetool.faces import Face, box_iou, sort_faces


class FaceLabeler:
    """Detects faces with ``dlib`` (box, 5 + 68 points) and adds MediaPipe's mesh, pose and blendshapes."""

    def __init__(self, mesh: bool = True) -> None:
        from facetool.pipeline import load_detector

        self.dlib = load_detector("dlib")[1]
        self.mediapipe = load_detector("mediapipe")[1] if mesh else None

    def close(self) -> None:
        if self.mediapipe is not None:
            self.mediapipe.close()

    def __enter__(self) -> FaceLabeler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def label(self, image: np.ndarray) -> list[Face]:
        """image: (H, W, 3) uint8 RGB -> faces, largest first, each with points68 and (when MediaPipe finds the
        same face) landmarks3d (478, 3), pose and blendshapes."""
        faces = sort_faces(self.dlib.detect(image))
        if self.mediapipe is None or not faces:
            return faces
        meshes = self.mediapipe.detect(image)
        for face in faces:
            best = max(meshes, key=lambda m: box_iou(m.box, face.box), default=None)
            if best is not None and box_iou(best.box, face.box) > 0.3:
                face.landmarks3d, face.pose, face.blendshapes = best.landmarks3d, best.pose, best.blendshapes
        return faces


def faces_to_json(faces: list[Face], width: int, height: int, **extra: Any) -> dict[str, Any]:
    return {"width": width, "height": height, "faces": [f.to_dict() for f in faces], **extra}


def faces_from_json(data: dict[str, Any]) -> list[Face]:
    return [Face.from_dict(f) for f in data.get("faces", [])]


def read_label_file(path: Path) -> dict[str, Any] | None:
    """A labels JSON written by ``facetool data labels`` (None when absent)."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None
