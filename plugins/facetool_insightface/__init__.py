"""facetool plugin: insightface model packs (SCRFD detector, 68-point 3D landmarks, head pose) as a detector.

insightface downloads its packs from servers many users cannot reach, and their licence is non-commercial, so
facetool never fetches one: the user puts an unzipped pack in a folder and points us at it. With the folder
missing, the detector says where to put it and stops — it never lets insightface try a download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from facetool import hookimpl
from facetool.detectors import DetectorSpec
from facetool.errors import FacetoolError

ENV_ROOT = "FACETOOL_INSIGHTFACE_ROOT"


@dataclass
class InsightfaceOptions:
    root: str = field(
        default="", metadata={"help": f"folder holding models/<pack>/ (default ${ENV_ROOT} or ~/.insightface)"}
    )
    pack: str = field(default="buffalo_l", metadata={"help": "model pack name (a folder of .onnx files)"})
    det_size: int = field(default=640, metadata={"help": "detector input size"})
    threshold: float = field(default=0.5, metadata={"help": "minimum detection score"})

    def __post_init__(self) -> None:
        if not 64 <= self.det_size <= 4096:
            raise ValueError("det-size must be 64 to 4096")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")


def pack_dir(options: InsightfaceOptions) -> Path:
    root = options.root or os.environ.get(ENV_ROOT) or str(Path.home() / ".insightface")
    return Path(root).expanduser() / "models" / options.pack


class InsightfaceDetector:
    def __init__(self, options: InsightfaceOptions, device: str) -> None:
        folder = pack_dir(options)
        if not folder.is_dir() or not any(folder.glob("*.onnx")):
            raise FacetoolError(
                f"insightface model pack '{options.pack}' not found: unzip it so that {folder}/*.onnx exist "
                f"(or set {ENV_ROOT} / -D root=DIR); facetool never downloads it (non-commercial licence)"
            )
        try:
            from insightface.app import FaceAnalysis
        except ImportError:
            raise FacetoolError("detector insightface needs: pip install 'facetool[insightface]'") from None
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.startswith("cuda") else None
        # root/name point at the existing folder, so insightface finds the pack and attempts no download.
        self.app = FaceAnalysis(name=options.pack, root=str(folder.parent.parent),
                                providers=providers or ["CPUExecutionProvider"])  # fmt: skip
        self.app.prepare(ctx_id=0 if providers else -1, det_size=(options.det_size, options.det_size))
        self.options = options

    def detect(self, image):
        from facetool.faces import Face

        faces = []
        for f in self.app.get(image[:, :, ::-1].copy()):  # insightface wants BGR
            if float(f.det_score) < self.options.threshold:
                continue
            p68 = getattr(f, "landmark_3d_68", None)
            pose = getattr(f, "pose", None)  # pitch, yaw, roll
            faces.append(
                Face(
                    box=f.bbox,
                    score=float(f.det_score),
                    points5=f.kps,
                    points68=None if p68 is None else p68[:, :2],
                    landmarks3d=p68,
                    pose=None
                    if pose is None
                    else {"yaw": float(pose[1]), "pitch": float(pose[0]), "roll": float(pose[2])},
                    detector="insightface",
                )
            )
        return faces


@hookimpl
def register_detectors(register):
    register(
        DetectorSpec(
            name="insightface",
            load=InsightfaceDetector,
            description="insightface model pack from a local folder (SCRFD + 68-point 3D landmarks + pose)",
            features=("points68", "landmarks3d", "pose"),
            options=InsightfaceOptions,
            priority=30,
        )
    )
