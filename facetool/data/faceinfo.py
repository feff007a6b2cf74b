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


def read_label_file(path: Path, photo: Path | None = None) -> dict[str, Any] | None:
    """A labels JSON written by ``facetool data labels`` (None when absent). With ``photo``: FacetoolError when the
    labels folder's manifest says they were made from another version of that photo (it changed since labelling)."""
    path = Path(path)
    if not path.is_file():
        return None
    if photo is not None:
        _check_labels_fresh(path, Path(photo))
    return json.loads(path.read_text())


def _check_labels_fresh(path: Path, photo: Path) -> None:
    from facetool.data.common import _source_digest
    from facetool.errors import FacetoolError

    labelled = _labelled_digests(path.parent / "manifest.jsonl").get(path.stem)
    if labelled is not None and labelled != _source_digest(photo):
        raise FacetoolError(
            f"{photo}: changed since it was labelled ({path}); run facetool data labels {photo.parent} again"
        )


def _labelled_digests(manifest: Path) -> dict[str, str]:
    """{id: sha256 of the photo it labels} of a labels manifest, read once per version of the file."""
    if not manifest.is_file():
        return {}
    st = manifest.stat()
    key = (str(manifest), st.st_size, st.st_mtime_ns)
    if key not in _LABELLED:
        digests = {}
        for line in manifest.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            photo = record.get("photo") if isinstance(record, dict) else None
            if isinstance(photo, dict) and photo.get("sha256") and isinstance(record.get("id"), str):
                digests[record["id"]] = photo["sha256"]
        _LABELLED[key] = digests
    return _LABELLED[key]


_LABELLED: dict[tuple[str, int, int], dict[str, str]] = {}
