"""facetool plugin: dlib's HOG face detector and 68-point shape predictor — the default detector.

Plain dlib misses turned and tilted faces (HOG is trained on upright frontal ones) and rounds its landmarks to
whole pixels. Here the core's MTCNN adds the faces HOG misses, and the predictor runs on an upright,
scale-normalised crop of each face, averaged with its mirror image and refit once from its own points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from facetool import hookimpl
from facetool.assets import Asset
from facetool.detectors import DetectorSpec

_FRM = dict(
    distribution="face-recognition-models",
    version="0.3.0",
    archive="face_recognition_models-0.3.0.tar.gz",
    archive_sha256="b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
    used_by="detector 'dlib'",
)

ASSETS = (
    Asset(
        name="dlib-shape-predictor-68",
        member="face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_68_face_landmarks.dat",
        sha256="fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
        size=99693937,
        license="CC0 per the package; trained on iBUG 300-W, whose images are for non-commercial research",
        description="dlib 68-point shape predictor (iBUG 300-W layout)",
        **_FRM,
    ),
    Asset(
        name="dlib-mmod-detector",
        member="face_recognition_models-0.3.0/face_recognition_models/models/mmod_human_face_detector.dat",
        sha256="4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
        size=729940,
        license="CC0 per the package (dlib's CNN face detector)",
        description="dlib CNN (MMOD) face detector, for -D proposals=cnn",
        **_FRM,
    ),
)


@dataclass
class DlibOptions:
    proposals: Literal["hog", "hog+mtcnn", "cnn"] = field(
        default="hog+mtcnn",
        metadata={"help": "who finds faces: HOG, HOG plus the core MTCNN (turned/tilted/small faces), or dlib's CNN"},
    )
    upsample: int = field(default=-1, metadata={"help": "HOG/CNN upsampling; -1 picks it from the image size"})
    flip: bool = field(default=True, metadata={"help": "average the landmarks with the mirrored face's"})
    refine: int = field(default=1, metadata={"help": "times to re-crop the face from its own landmarks"})
    threshold: float = field(default=0.9, metadata={"help": "minimum MTCNN probability for faces HOG did not find"})
    min_face: int = field(
        default=0, metadata={"help": "smallest face MTCNN proposes (px); 0: 1/27 of the short side, at least 20"}
    )

    def __post_init__(self) -> None:
        if self.min_face != 0 and not 8 <= self.min_face <= 4096:
            raise ValueError("min-face must be 0 (auto) or 8 to 4096 pixels")
        # Each HOG upsampling step doubles both sides: past 3 a large photo runs out of memory.
        if not -1 <= self.upsample <= 3:
            raise ValueError("upsample must be -1 (auto) or 0 to 3")
        if not 0 <= self.refine <= 3:
            raise ValueError("refine must be 0 to 3")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")

    def small_face_flags(self, size: int) -> str | None:
        """The -D flags that find faces of ``size`` px: min-face steers only the MTCNN proposals."""
        flags = [] if self.proposals == "hog+mtcnn" else ["-D proposals=hog+mtcnn"]
        if not 0 < self.min_face <= size:
            flags.append(f"-D min-face={size}")
        return " ".join(flags) or None


def _load(options: DlibOptions, device: str):
    from .detector import DlibDetector

    return DlibDetector(options, device)


@hookimpl
def register_assets(register):
    for asset in ASSETS:
        register(asset)


@hookimpl
def register_detectors(register):
    register(
        DetectorSpec(
            name="dlib",
            load=_load,
            description="dlib HOG + MTCNN proposals, 68-point predictor on aligned crops (default)",
            features=("points68",),
            options=DlibOptions,
            assets=("dlib-shape-predictor-68", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet"),
            priority=100,
        )
    )
