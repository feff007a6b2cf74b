"""facetool plugin: the core's torch MTCNN as a detector (box, score, 5 points; robust to turned faces)."""

from __future__ import annotations

from dataclasses import dataclass, field

from facetool import hookimpl
from facetool.detectors import DetectorSpec


@dataclass
class MtcnnOptions:
    min_face: int = field(default=0, metadata={"help": "smallest face (px); 0: 1/27 of the short side, at least 20"})
    threshold: float = field(default=0.9, metadata={"help": "minimum final face probability (O-Net)"})

    def __post_init__(self) -> None:
        if self.min_face != 0 and not 8 <= self.min_face <= 4096:
            raise ValueError("min-face must be 0 (auto) or 8 to 4096 pixels")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")


class MtcnnDetector:
    def __init__(self, options: MtcnnOptions, device: str) -> None:
        from facetool.nets.loaders import load_mtcnn

        self.options = options
        self.net = load_mtcnn(device, min_face_size=options.min_face or 20)
        self.device = device

    def detect(self, image):
        import numpy as np
        import torch

        from facetool.faces import Face
        from facetool.nets.loaders import proposal_min_face

        min_face = self.options.min_face or proposal_min_face(*image.shape[:2])
        tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1).to(self.device)
        boxes, scores, points = self.net.detect(tensor, min_face_size=min_face)
        return [
            Face(box=b, score=float(s), points5=p, detector="mtcnn")
            for b, s, p in zip(boxes.cpu().numpy(), scores.cpu().numpy(), points.cpu().numpy(), strict=True)
            if s >= self.options.threshold
        ]


@hookimpl
def register_detectors(register):
    register(
        DetectorSpec(
            name="mtcnn",
            load=MtcnnDetector,
            description="torch MTCNN (P/R/O-Net, weights from facenet-pytorch): box, score, 5 points",
            options=MtcnnOptions,
            assets=("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet"),
            priority=50,
        )
    )
