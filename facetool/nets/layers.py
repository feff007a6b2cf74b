"""Small building blocks shared by the GAN generators and discriminators.

Norm and activation factories by name (so configs stay plain JSON), the pix2pix-style weight init, padding an
image to a size the network can halve ``levels`` times (and cropping back), a JSON round trip for config
dataclasses, a parameter counter and a convolution FLOP counter.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ACTIVATIONS",
    "NORMS",
    "PAD_MODES",
    "DictConfig",
    "activation_layer",
    "check_choice",
    "conv_flops",
    "count_params",
    "crop_from_padded",
    "init_weights",
    "norm_layer",
    "norm_uses_bias",
    "pad_to_multiple",
]

NORMS = ("batch", "instance", "none")
ACTIVATIONS = ("tanh", "sigmoid", "none")
PAD_MODES = ("reflect", "replicate", "zeros")
UPSAMPLES = ("deconv", "resize")  # transposed conv, or bilinear x2 + conv (no checkerboard)

C = TypeVar("C", bound="DictConfig")


class DictConfig:
    """Mixin for config dataclasses: a plain ``dict`` round trip (saved as JSON inside checkpoints).

    ``from_dict`` rejects unknown keys so a checkpoint written by a different architecture version fails loudly
    instead of silently building the wrong network; missing keys take the dataclass defaults.
    """

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
        return cls(**data)


def check_choice(owner: str, field: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{owner}.{field} must be one of {list(choices)}, got {value!r}")


def norm_uses_bias(norm: str) -> bool:
    """Whether a conv followed by ``norm`` needs its own bias.

    Batch norm has a learned shift that makes a conv bias redundant; the reference's instance norm is not
    affine, so the conv keeps its bias there (and without any norm, obviously).
    """
    check_choice("norm", "name", norm, NORMS)
    return norm != "batch"


def norm_layer(norm: str, channels: int) -> nn.Module:
    """Normalisation by name: ``batch`` (affine, running stats), ``instance`` (no affine, no running stats, as
    in pix2pix/CycleGAN), ``none`` (identity)."""
    check_choice("norm", "name", norm, NORMS)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def activation_layer(name: str) -> nn.Module:
    """Final activation by name: ``tanh`` (images in [-1, 1]), ``sigmoid`` ([0, 1]), ``none`` (logits)."""
    check_choice("activation", "name", name, ACTIVATIONS)
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    return nn.Identity()


def init_weights(module: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear/batch-norm parameters in place, as pix2pix does, from the global torch RNG.

    ``normal``: weights ~ N(0, gain); ``xavier``/``kaiming``/``orthogonal``: the usual schemes (``gain`` is the
    xavier/orthogonal gain). Biases are zeroed; batch-norm scales ~ N(1, gain), shifts 0. Works on meta tensors
    (a no-op there), so networks can be built on the meta device to count parameters.

    Returns ``module`` for chaining.
    """
    check_choice("init", "kind", kind, ("normal", "xavier", "kaiming", "orthogonal"))
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            if kind == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0.0, mode="fan_in")
            else:
                nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module


def pad_to_multiple(x: Tensor, multiple: int, mode: str = "reflect") -> tuple[Tensor, tuple[int, int]]:
    """Pad the spatial dims of ``x`` (B, C, H, W) up to multiples of ``multiple``, split evenly on both sides.

    Reflect padding needs the pad to be smaller than the side; when it is not (a tiny image under a deep
    U-Net), it falls back to replicate. Returns the padded tensor (B, C, H', W') and the (top, left) offset that
    :func:`crop_from_padded` needs.
    """
    check_choice("pad", "mode", mode, PAD_MODES)
    h, w = x.shape[-2:]
    pad_h = -h % multiple
    pad_w = -w % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (0, 0)
    top, left = pad_h // 2, pad_w // 2
    pads = (left, pad_w - left, top, pad_h - top)
    if mode == "zeros":
        return F.pad(x, pads), (top, left)
    if mode == "reflect" and (max(pads[:2]) >= w or max(pads[2:]) >= h):
        mode = "replicate"
    return F.pad(x, pads, mode=mode), (top, left)


def crop_from_padded(x: Tensor, offset: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Undo :func:`pad_to_multiple`: (B, C, H', W') → (B, C, H, W) with ``size`` = (H, W)."""
    top, left = offset
    return x[..., top : top + size[0], left : left + size[1]]


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (works on meta-device modules)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def conv_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass over a zero input of ``input_shape`` (B, C, H, W), counting Conv2d,
    ConvTranspose2d and Linear layers only (norms, activations and padding are cheap next to them).

    One multiply-add counts as 2 FLOPs, the convention under which matmul GFLOP/s are quoted, so the two can
    be compared. Biases are ignored. Runs the model in eval mode under ``torch.no_grad`` on the model's device
    and restores its training flag.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            macs = output.numel() * module.in_features
        elif isinstance(module, nn.ConvTranspose2d):
            # Every input pixel scatters a full kernel into the output.
            x = inputs[0]
            k = math.prod(module.kernel_size)
            macs = x.numel() * module.out_channels * k // module.groups
        else:
            assert isinstance(module, nn.Conv2d)
            k = math.prod(module.kernel_size)
            macs = output.numel() * (module.in_channels // module.groups) * k
        total += 2 * macs

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)
    ]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(*input_shape, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


def gaussian_heatmaps(points: Tensor, size: tuple[int, int], sigma: float) -> Tensor:
    r"""Landmarks as images: one Gaussian of peak 1 per point.

    Args:
        points: :math:`(B, K, 2)` pixel (x, y), pixel centres at integers.
        size: (H, W) of the maps.
        sigma: width in pixels.

    Returns:
        :math:`(B, K, H, W)`.
    """
    height, width = size
    ys = torch.arange(height, device=points.device, dtype=points.dtype).view(1, 1, height, 1)
    xs = torch.arange(width, device=points.device, dtype=points.dtype).view(1, 1, 1, width)
    # exp(-(dx² + dy²)) = exp(-dx²) exp(-dy²): two small exps and a product, not an exp per pixel (the layout
    # generator draws these at every block of every step, 5 % of a CPU training step when it was one exp).
    across = torch.exp(-((xs - points[..., 0, None, None]) ** 2) / (2 * sigma**2))
    down = torch.exp(-((ys - points[..., 1, None, None]) ** 2) / (2 * sigma**2))
    return down * across
