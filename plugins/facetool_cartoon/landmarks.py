"""Approach A's landmark regressor (issue 7): MTCNN's O-Net run on the whole aligned crop, fine-tuned on the data
factory's exact cartoon landmarks (and the photos' labelled 5 points) so one differentiable net reads the layout of
real, cartoon and generated faces alike — the landmark consistency loss ‖R(G(x, l)) − l‖ needs gradients through R.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from facetool.nets.mtcnn import ONet

ONET_SIZE = 48


class LandmarkRegressor(nn.Module):
    """image (B, 3, S, S) in [0, 1] -> (B, 5, 2) pixel (x, y), pixel centres at integers: left eye, right eye, nose,
    mouth left, mouth right (as seen in the image)."""

    def __init__(self, onet: ONet | None = None) -> None:
        super().__init__()
        self.onet = onet if onet is not None else ONet()

    def forward(self, image: Tensor) -> Tensor:
        size = image.shape[-1]
        small = F.interpolate(image, size=(ONET_SIZE, ONET_SIZE), mode="bilinear", antialias=True, align_corners=False)
        _, _, points = self.onet((small * 255 - 127.5) / 128)  # O-Net's input normalisation
        return points * size - 0.5  # the crop's [0, 1] continuous coordinates -> pixel centres


def pretrained_regressor(device: str = "cpu") -> LandmarkRegressor:
    """The regressor starting from MTCNN's released O-Net (asset ``mtcnn-onet``)."""
    from facetool.nets.loaders import load_mtcnn

    return LandmarkRegressor(load_mtcnn(device).onet).to(device)


def interocular_nme(pred: Tensor, target: Tensor) -> Tensor:
    """(B, 5, 2) each -> (B,) mean point error over the distance between the target's eye centres."""
    eyes = (target[:, 0] - target[:, 1]).norm(dim=-1).clamp_min(1e-6)
    return (pred - target).norm(dim=-1).mean(dim=-1) / eyes
