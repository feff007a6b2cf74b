"""MTCNN face detector (Zhang et al. 2016, "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks"), written in plain PyTorch.

Three networks run as a cascade:

* :class:`PNet` (fully convolutional, 12x12 receptive field) scans an image pyramid for candidate boxes,
* :class:`RNet` rescores and refines 24x24 crops of the candidates,
* :class:`ONet` rescores 48x48 crops, refines the boxes once more and regresses five landmarks.

Layer names and shapes match the widely used pretrained state dicts ``pnet.pt``, ``rnet.pt`` and ``onet.pt``
(ported from the authors' Caffe models). Those weights expect RGB pixels normalised as ``(x - 127.5) / 128``
in NCHW layout; the dense layers expect the conv features flattened in (W, H, C) order, because the Caffe
models were trained on transposed images (see ``_flatten_whc``). Landmarks come out as five x then five y.

Coordinates are continuous pixels: a box ``x1 y1 x2 y2`` covers ``[x1, x2) x [y1, y2)``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facetool.errors import AssetError

__all__ = ["MTCNN", "ONet", "PNet", "RNet", "crop_boxes", "nms", "octave_pyramid"]

# Pixel normalisation the pretrained weights were trained with.
_MEAN = 127.5
_SCALE = 1.0 / 128.0
# The small convs run 1.5-2.5x faster on CPU with channels-last (NHWC) inputs.
_CL = torch.channels_last
# P-Net geometry: one output cell per 2 input pixels, each cell sees a 12x12 window.
_STRIDE = 2
_CELL = 12


def _flatten_whc(x: Tensor) -> Tensor:
    """Flatten conv features the way the dense layers were trained.

    The Caffe models were trained on transposed images and reached PyTorch via a TensorFlow port. The conv
    kernels were transposed on the way (upright images go in), but the dense weights still index features in
    TensorFlow's (H, W, C) order of the transposed map, i.e. (W, H, C) here. Checked empirically: any other
    order drops the face score or breaks the left/right mirror symmetry of the landmarks (see the tests).

    Args:
        x: (B, C, H, W) features.

    Returns:
        (B, W * H * C) features.
    """
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


def _face_prob(logits: Tensor) -> Tensor:
    """Face probability from the two-class logits along dim 1 (softmax channel 1 == sigmoid of the margin).

    Args:
        logits: (B, 2, ...) class logits (background, face).

    Returns:
        (B, ...) probability of "face".
    """
    return torch.sigmoid(logits[:, 1] - logits[:, 0])


class PNet(nn.Module):
    """Proposal network: fully convolutional, 12x12 receptive field, output stride 2.

    Input: (B, 3, H, W) normalised RGB, H, W >= 12.
    Output: ``(prob, reg)`` with prob (B, H', W') face probability per cell and reg (B, 4, H', W') box offsets
    (dx1, dy1, dx2, dy2) as fractions of the 12x12 window, where H' = ceil((H - 2) / 2) - 4 (same for W').
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)  # face / background logits
        self.conv4_2 = nn.Conv2d(32, 4, 1)  # box regression

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return _face_prob(self.conv4_1(x)), self.conv4_2(x)


class RNet(nn.Module):
    """Refinement network on 24x24 crops.

    Input: (B, 3, 24, 24) normalised RGB.
    Output: ``(prob, reg)`` with prob (B,) face probability and reg (B, 4) box offsets (dx1, dy1, dx2, dy2)
    as fractions of the crop's width / height.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(3 * 3 * 64, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_whc(x)))
        return _face_prob(self.dense5_1(x)), self.dense5_2(x)


class ONet(nn.Module):
    """Output network on 48x48 crops: score, box refinement and five landmarks.

    Input: (B, 3, 48, 48) normalised RGB.
    Output: ``(prob, reg, points)`` with prob (B,) face probability, reg (B, 4) box offsets
    (dx1, dy1, dx2, dy2) as fractions of the crop size, and points (B, 5, 2) x, y in the crop's normalised
    coordinates [0, 1], ordered left eye, right eye, nose, mouth left, mouth right (as seen in the image).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(3 * 3 * 128, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_whc(x)))
        pts = self.dense6_3(x)
        # The 10 outputs are five x's followed by five y's.
        points = torch.stack([pts[:, :5], pts[:, 5:]], dim=-1)
        return _face_prob(self.dense6_1(x)), self.dense6_2(x), points


def box_overlap(a: Tensor, b: Tensor, mode: str = "union") -> Tensor:
    """Pairwise overlap of boxes.

    Args:
        a: (N, 4) boxes x1 y1 x2 y2.
        b: (M, 4) boxes x1 y1 x2 y2.
        mode: ``"union"`` (IoU) or ``"min"`` (intersection over the smaller area, which also removes a small
            box lying inside a bigger one).

    Returns:
        (N, M) overlaps in [0, 1].
    """
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)[:, None]
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)[None, :]
    if mode == "union":
        denom = area_a + area_b - inter
    elif mode == "min":
        denom = torch.minimum(area_a, area_b)
    else:
        raise ValueError(f"unknown overlap mode {mode!r}")
    return inter / denom.clamp(min=1e-9)


def nms(boxes: Tensor, scores: Tensor, threshold: float, mode: str = "union", block: int = 1024) -> Tensor:
    """Greedy non-maximum suppression.

    Works through the boxes by decreasing score in blocks, so memory stays O(block * (block + kept)) even
    for the tens of thousands of P-Net candidates a noisy image can produce.

    Args:
        boxes: (N, 4) boxes x1 y1 x2 y2.
        scores: (N,) scores.
        threshold: a box is dropped when it overlaps a kept, higher-scoring box by more than this.
        mode: overlap measure, see :func:`box_overlap`.
        block: boxes handled per vectorised step.

    Returns:
        (K,) int64 indices into ``boxes`` of the kept boxes, by decreasing score.
    """
    order = torch.argsort(scores, descending=True)
    if order.numel() == 0:
        return order
    sorted_boxes = boxes[order]
    kept: list[Tensor] = []
    kept_boxes = boxes.new_zeros(0, 4)
    for start in range(0, order.numel(), block):
        blk = sorted_boxes[start : start + block]
        alive = torch.ones(blk.shape[0], dtype=torch.bool, device=boxes.device)
        if kept_boxes.shape[0]:
            alive &= ~(box_overlap(blk, kept_boxes, mode) > threshold).any(1)
        # Within the block the greedy pass is sequential; do it on a small boolean matrix in numpy.
        over = (box_overlap(blk, blk, mode) > threshold).cpu().numpy()
        alive_np = alive.cpu().numpy()
        for i in np.flatnonzero(alive_np):
            if alive_np[i]:
                alive_np[i + 1 :] &= ~over[i, i + 1 :]
        idx = torch.from_numpy(np.flatnonzero(alive_np)).to(boxes.device)
        kept.append(order[start + idx])
        kept_boxes = torch.cat([kept_boxes, blk[idx]])
    return torch.cat(kept)


def _pool2(x: Tensor) -> Tensor:
    """2x2 mean pooling (odd trailing row / column dropped); ~3x faster on CPU than ``F.avg_pool2d``.

    Args:
        x: (..., H, W) tensor, H, W >= 2.

    Returns:
        (..., H // 2, W // 2) tensor.
    """
    x = x[..., : x.shape[-2] // 2 * 2, : x.shape[-1] // 2 * 2]
    return (x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]) * 0.25


def octave_pyramid(image: Tensor, levels: int) -> list[Tensor]:
    """Repeated 2x2 mean pooling: cheap, alias-free sources for any smaller scale.

    Level ``l`` pixel ``(i, j)`` is the mean of image pixels ``[i 2^l, (i+1) 2^l) x [j 2^l, (j+1) 2^l)``
    (odd trailing rows / columns are dropped, so coordinates map back exactly by ``* 2^l``).

    Args:
        image: (B, C, H, W) image.
        levels: number of levels to return (>= 1); stops early when a side would reach 0.

    Returns:
        list of (B, C, H // 2^l, W // 2^l) tensors, level 0 being ``image`` itself.
    """
    out = [image]
    while len(out) < levels and min(out[-1].shape[-2:]) >= 2:
        out.append(_pool2(out[-1]))
    return out


def _crop_octaves(octaves: list[Tensor], boxes: Tensor, size: int) -> Tensor:
    """Crop and resize boxes from an octave pyramid with one ``grid_sample`` call per level used.

    Each box is sampled from the finest level that shrinks it by at most 2x more, on a 2x supersampled
    grid that is then mean-pooled: a box filter roughly one output pixel wide, so large faces do not alias.
    Samples outside the image read 0.

    Args:
        octaves: levels from :func:`octave_pyramid`, each (1, C, H_l, W_l).
        boxes: (N, 4) x1 y1 x2 y2 in level-0 pixels (continuous; roughly square boxes expected).
        size: output side length.

    Returns:
        (N, C, size, size) crops.
    """
    n, c = boxes.shape[0], octaves[0].shape[1]
    height, width = octaves[0].shape[-2:]
    out = octaves[0].new_zeros(n, c, size, size)
    if n == 0:
        return out
    sub = 2 * size
    side = (boxes[:, 2:] - boxes[:, :2]).amax(1)
    # floor(log2(side / size)) clamped to the levels we have: the remaining shrink is in [1, 2) (or < 1).
    level = torch.log2((side / size).clamp(min=1.0)).floor().long().clamp(max=len(octaves) - 1)
    frac = (torch.arange(sub, device=boxes.device, dtype=boxes.dtype) + 0.5) / sub
    for lv in level.unique().tolist():
        idx = torch.nonzero(level == lv).squeeze(1)
        src = octaves[lv]
        h, w = src.shape[-2:]
        b = boxes[idx]
        # Sample centres in image pixels.
        xs = b[:, 0:1] + frac * (b[:, 2:3] - b[:, 0:1])
        ys = b[:, 1:2] + frac * (b[:, 3:4] - b[:, 1:2])
        k = idx.numel()
        # Level pixels, then align_corners=False normalisation u -> 2u / W - 1.
        gx = (xs / 2**lv) * (2.0 / w) - 1.0
        gy = (ys / 2**lv) * (2.0 / h) - 1.0
        grid = torch.stack([gx[:, None, :].expand(k, sub, sub), gy[:, :, None].expand(k, sub, sub)], dim=-1)
        # All crops of a level stacked vertically into one grid, so the image is not copied per box.
        # Border padding keeps edge pixels from blending with the outside; outside samples are zeroed below.
        samples = F.grid_sample(
            src, grid.reshape(1, k * sub, sub, 2), mode="bilinear", padding_mode="border", align_corners=False
        )
        inside = ((ys >= 0) & (ys < height))[:, :, None] & ((xs >= 0) & (xs < width))[:, None, :]
        samples = samples.reshape(c, k, sub, sub).transpose(0, 1) * inside[:, None]
        out[idx] = _pool2(samples)
    return out


def crop_boxes(image: Tensor, boxes: Tensor, size: int, fill: float = 0.0) -> Tensor:
    """Cut boxes out of an image and resize each to ``size x size`` (antialiased, batched).

    Args:
        image: (C, H, W) float image.
        boxes: (N, 4) boxes x1 y1 x2 y2 in pixels (continuous; roughly square boxes expected).
        size: output side length.
        fill: value of pixels outside the image (the cascade was trained with black padding).

    Returns:
        (N, C, size, size) crops.
    """
    side = (boxes[:, 2:] - boxes[:, :2]).amax().item() if boxes.shape[0] else 1.0
    levels = 1 + max(0, math.floor(math.log2(max(side / size, 1.0))))
    octaves = octave_pyramid((image - fill)[None], levels)
    return _crop_octaves(octaves, boxes, size) + fill


def _apply_regression(boxes: Tensor, reg: Tensor) -> Tensor:
    """Move box edges by offsets given as fractions of the box size.

    Args:
        boxes: (N, 4) x1 y1 x2 y2.
        reg: (N, 4) dx1 dy1 dx2 dy2.

    Returns:
        (N, 4) refined boxes.
    """
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + reg * wh


def _square(boxes: Tensor) -> Tensor:
    """Grow boxes to squares about their centres (R-Net / O-Net take square crops).

    Args:
        boxes: (N, 4) x1 y1 x2 y2.

    Returns:
        (N, 4) square boxes.
    """
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    # At least 1 px, so a box a wild regression turned inside out still gives a valid crop.
    half = (boxes[:, 2:] - boxes[:, :2]).amax(1, keepdim=True).clamp(min=1.0) / 2
    return torch.cat([centre - half, centre + half], dim=1)


class MTCNN(nn.Module):
    """Three-stage cascaded face detector with five-point landmarks.

    Args:
        min_face_size: smallest face side (pixels) searched for; smaller is slower.
        thresholds: face-probability thresholds of the P-, R- and O-Net stages.
        scale_factor: ratio between consecutive image-pyramid levels.

    Build with pretrained weights via :meth:`from_files`; a bare ``MTCNN()`` has random weights.

    Example:
        >>> det = MTCNN.from_files(Path("pnet.pt"), Path("rnet.pt"), Path("onet.pt"))  # doctest: +SKIP
        >>> boxes, scores, points = det.detect(image)  # image: (3, H, W) uint8 RGB  # doctest: +SKIP
    """

    def __init__(
        self,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
    ) -> None:
        super().__init__()
        if min_face_size < 1:
            raise ValueError(f"min_face_size must be >= 1, got {min_face_size}")
        if not 0.0 < scale_factor < 1.0:
            raise ValueError(f"scale_factor must be in (0, 1), got {scale_factor}")
        if len(thresholds) != 3:
            raise ValueError(f"thresholds must have 3 values, got {thresholds!r}")
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = float(scale_factor)
        # NMS overlap limits: within one pyramid level, across levels, after R-Net, after O-Net (min-overlap).
        self.nms_thresholds = (0.5, 0.7, 0.7, 0.7)
        self.pnet = PNet()
        self.rnet = RNet()
        self.onet = ONet()

    @classmethod
    def from_files(cls, pnet: Path, rnet: Path, onet: Path, **kwargs) -> MTCNN:
        """Build a detector and load the three state dicts (strict: every key and shape must match).

        Args:
            pnet: path of ``pnet.pt``.
            rnet: path of ``rnet.pt``.
            onet: path of ``onet.pt``.
            **kwargs: passed to :class:`MTCNN`.

        Raises:
            AssetError: a file is missing, unreadable or not a matching state dict.
        """
        model = cls(**kwargs)
        for net, path in ((model.pnet, pnet), (model.rnet, rnet), (model.onet, onet)):
            try:
                state = torch.load(Path(path), map_location="cpu", weights_only=True)
                net.load_state_dict(state, strict=True)
            except FileNotFoundError as err:
                raise AssetError(f"MTCNN weights not found: {path}") from err
            except Exception as err:  # unpickling / key / shape errors all mean "wrong file"
                raise AssetError(f"cannot load MTCNN weights from {path}: {err}") from err
        return model.eval()

    def _scales(self, height: int, width: int, min_face_size: int) -> list[float]:
        """Pyramid scales: the first maps ``min_face_size`` to P-Net's 12 px window, then shrink until the
        short side would drop below 12 px."""
        scale = _CELL / min_face_size
        short = min(height, width)
        scales = []
        while short * scale >= _CELL:
            scales.append(scale)
            scale *= self.scale_factor
        return scales

    def _stage1(self, octaves: list[Tensor], min_face_size: int) -> Tensor:
        """P-Net over the image pyramid.

        Args:
            octaves: :func:`octave_pyramid` of the image in pixels / 128 (so that black is 0).
            min_face_size: smallest face side (pixels) searched for.

        Returns:
            (N, 4) candidate boxes, refined and squared.
        """
        h, w = octaves[0].shape[-2:]
        t_prob, (t_level, t_all) = self.thresholds[0], self.nms_thresholds[:2]
        all_boxes, all_scores, all_reg = [], [], []
        for scale in self._scales(h, w, min_face_size):
            hs, ws = math.ceil(h * scale), math.ceil(w * scale)
            # Resize from the octave just above this scale: at most a 2x area shrink, reading few pixels.
            lv = min(max(0, math.floor(math.log2(1.0 / scale))), len(octaves) - 1)
            src = octaves[lv]
            if hs <= src.shape[-2] and ws <= src.shape[-1]:
                # Area averaging: bilinear pyramids make P-Net propose noticeably more false candidates.
                level = F.interpolate(src, (hs, ws), mode="area")
            else:  # min_face_size < 12 enlarges the image
                level = F.interpolate(src, (hs, ws), mode="bilinear", align_corners=False)
            prob, reg = self.pnet((level - _MEAN * _SCALE).contiguous(memory_format=_CL))
            ys, xs = torch.nonzero(prob[0] >= t_prob, as_tuple=True)
            if ys.numel() == 0:
                continue
            # Each cell's 12x12 window mapped back to the image through the level's exact per-axis scale
            # (octave lv covers its size * 2^lv image pixels).
            sx, sy = src.shape[-1] * 2**lv / ws, src.shape[-2] * 2**lv / hs
            x0, y0 = (xs * _STRIDE).to(src.dtype), (ys * _STRIDE).to(src.dtype)
            boxes = torch.stack([x0 * sx, y0 * sy, (x0 + _CELL) * sx, (y0 + _CELL) * sy], dim=1)
            scores = prob[0, ys, xs]
            keep = nms(boxes, scores, t_level)
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
            all_reg.append(reg[0, :, ys[keep], xs[keep]].T)
        if not all_boxes:
            return octaves[0].new_zeros(0, 4)
        boxes, scores, reg = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_reg)
        keep = nms(boxes, scores, t_all)
        return _square(_apply_regression(boxes[keep], reg[keep]))

    def _crops(self, octaves: list[Tensor], boxes: Tensor, size: int) -> Tensor:
        """Normalised, channels-last network input cut from the octaves (black padding outside)."""
        crops = _crop_octaves(octaves, boxes, size) - _MEAN * _SCALE
        return crops.contiguous(memory_format=_CL)

    @torch.no_grad()
    def detect(self, image: Tensor, min_face_size: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Detect faces and their five landmarks.

        Args:
            image: (3, H, W) uint8 or float in [0, 255], RGB (a (1, H, W) grayscale image is expanded).
            min_face_size: smallest face side (pixels) for this call; None uses the constructor's.

        Returns:
            boxes (N, 4) x1 y1 x2 y2 in pixels (may extend past the image border), scores (N,) in [0, 1] by
            decreasing score, points (N, 5, 2) x, y in pixels in the order left eye, right eye, nose,
            mouth left, mouth right (left / right as seen in the image). All on the model's device and in
            its dtype (float32 unless converted); N may be 0.
        """
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"expected a (3, H, W) image, got shape {tuple(image.shape)}")
        weight = self.onet.dense5.weight
        x = image.to(device=weight.device, dtype=weight.dtype)
        if x.shape[0] == 1:
            x = x.expand(3, -1, -1)
        empty = (x.new_zeros(0, 4), x.new_zeros(0), x.new_zeros(0, 5, 2))
        h, w = x.shape[-2:]
        min_face = self.min_face_size if min_face_size is None else int(min_face_size)
        if min_face < 1:
            raise ValueError(f"min_face_size must be >= 1, got {min_face}")
        if not self._scales(h, w, min_face):  # even the largest pyramid level is smaller than P-Net's window
            return empty
        # Pixels / 128: the networks' normalisation minus its offset, so zero padding is black; resampling
        # commutes with the offset, which is subtracted just before each network.
        octaves = octave_pyramid(x[None] * _SCALE, 1 + max(0, math.floor(math.log2(min(h, w) / _CELL))))

        boxes = self._stage1(octaves, min_face)
        if boxes.shape[0] == 0:
            return empty

        prob, reg = self.rnet(self._crops(octaves, boxes, 24))
        mask = prob >= self.thresholds[1]
        boxes, scores, reg = boxes[mask], prob[mask], reg[mask]
        keep = nms(boxes, scores, self.nms_thresholds[2])
        if keep.numel() == 0:
            return empty
        boxes = _square(_apply_regression(boxes[keep], reg[keep]))

        prob, reg, pts = self.onet(self._crops(octaves, boxes, 48))
        mask = prob >= self.thresholds[2]
        boxes, scores, reg, pts = boxes[mask], prob[mask], reg[mask], pts[mask]
        if boxes.shape[0] == 0:
            return empty
        # Landmarks are relative to the square box O-Net saw, not to the refined box.
        points = boxes[:, None, :2] + pts * (boxes[:, None, 2:] - boxes[:, None, :2])
        boxes = _apply_regression(boxes, reg)
        valid = (boxes[:, 2:] > boxes[:, :2]).all(1)
        boxes, scores, points = boxes[valid], scores[valid], points[valid]
        keep = nms(boxes, scores, self.nms_thresholds[3], mode="min")
        return boxes[keep], scores[keep], points[keep]

    def regress_points(self, crops: Tensor) -> Tensor:
        """Differentiable 5-point regressor (O-Net) for use inside training losses.

        Args:
            crops: (B, 3, 48, 48) float RGB in [0, 1] (a face box resized to 48x48).

        Returns:
            (B, 5, 2) points x, y in the crop's normalised coordinates [0, 1], ordered left eye, right eye,
            nose, mouth left, mouth right; gradients flow to ``crops`` (and to O-Net's parameters unless the
            caller freezes them).
        """
        if crops.ndim != 4 or crops.shape[1:] != (3, 48, 48):
            raise ValueError(f"expected (B, 3, 48, 48) crops, got shape {tuple(crops.shape)}")
        return self.onet((crops * 255.0 - _MEAN) * _SCALE)[2]
