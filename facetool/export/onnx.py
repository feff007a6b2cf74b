"""ONNX export of an inference net, checked against torch with onnxruntime before anything is written.

Exporter: torch's TorchScript-based exporter (``dynamo=False``). The torch.export-based one (torch's default since
2.9) needs ``onnxscript``, which facetool does not depend on; the TorchScript one needs the ``onnx`` package only to
splice custom onnxscript functions into the model, which plain conv nets never have, so when ``onnx`` is missing
that step is skipped (``_legacy_export``).

Dynamic axes: the batch always; height and width only when the exported graph really runs at another, odd size (a
net that pads its input to a multiple, traced at a size that needed no padding, bakes "no padding" in): checked with
onnxruntime at (B, C, H + 7, W + 7), else H and W stay fixed and the report says so.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetool.errors import FacetoolError
from facetool.exporters import ExporterSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

# Measured with onnxruntime 1.32 (CPU) vs torch 2.13 (CPU) on [0, 1] outputs: U-Net ~6e-8, ResNet generator
# (instance norm) ~8e-7 max abs diff. 1e-4 keeps > 100x margin while still catching a wrong op (errors ~1e-2+).
DEFAULT_TOLERANCE = 1e-4
INPUT_NAME = "image"
ODD_PROBE = 7  # added to H and W to probe dynamic spatial axes: odd, so no "multiple of 2**k" net passes by luck


def export_onnx(
    module: nn.Module,
    path: str | Path,
    sample: torch.Tensor,
    *,
    opset: int = 17,
    dynamic: bool = True,
    check: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """Export ``module`` to ONNX at ``path`` (atomically) and check it against torch.

    Args:
        module: the inference net (CPU, eval mode), sample (B, C, H, W) -> output(s) (B, C', H', W').
        path: the ``.onnx`` file to write.
        sample: (B, C, H, W) input the graph is traced with (and checked on).
        opset: ONNX opset version.
        dynamic: batch (and H/W where the net allows, see the module doc) dynamic; else every axis fixed.
        check: run onnxruntime (CPUExecutionProvider) on the sample and on a batch of another size and fail above
            ``tolerance`` max abs diff; nothing is written when a check fails.

    Returns:
        ``{path, bytes, opset, exporter, dynamic_axes, inputs, outputs, checks, max_abs_diff, tolerance}``:
        inputs/outputs as ``{name, shape}`` (a dynamic axis is its name), checks as ``{shape, max_abs_diff}``.
    """
    import torch

    if sample.ndim != 4:
        raise FacetoolError(f"onnx export: the sample must be (B, C, H, W), got shape {tuple(sample.shape)}")
    module = module.eval()
    sample = sample.detach().cpu()
    with torch.inference_mode():
        outputs = _as_tuple(module(sample))
    output_names = ["output"] if len(outputs) == 1 else [f"output{i}" for i in range(len(outputs))]
    generator = torch.Generator().manual_seed(0)
    b, c, h, w = sample.shape
    other_batch = torch.rand((b + 1, c, h, w), generator=generator, dtype=sample.dtype)

    spatial = dynamic and check  # without onnxruntime nothing tells whether H/W can really vary
    model = _export_bytes(module, sample, opset, output_names, dynamic, spatial)
    checks: list[dict[str, Any]] = []
    reason = None
    if check:
        session = _session(model)
        if spatial:
            probe = torch.rand((b, c, h + ODD_PROBE, w + ODD_PROBE), generator=generator, dtype=sample.dtype)
            try:
                diff = _max_abs_diff(session, module, probe)
            except Exception as err:  # onnxruntime refuses the shape: a size was baked into the graph
                diff, reason = None, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
            if diff is not None and diff <= tolerance:
                checks.append({"shape": list(probe.shape), "max_abs_diff": diff})
            else:
                reason = reason or f"max abs diff {diff:.3g} at {tuple(probe.shape)}"
                spatial = False
                model = _export_bytes(module, sample, opset, output_names, dynamic, spatial)
                session = _session(model)
        for x in (sample, other_batch) if dynamic else (sample,):
            try:
                diff = _max_abs_diff(session, module, x)
            except Exception as err:
                raise FacetoolError(
                    f"onnx export: onnxruntime cannot run the exported model on {tuple(x.shape)}: "
                    f"{str(err).splitlines()[0][:200]}; nothing written"
                ) from err
            if not diff <= tolerance:  # also catches NaN
                raise FacetoolError(
                    f"onnx export: onnxruntime differs from torch by {diff:.3g} (max abs) on {tuple(x.shape)}, "
                    f"above the tolerance {tolerance:g}; nothing written"
                )
            checks.append({"shape": list(x.shape), "max_abs_diff": diff})
    # shapes as verified: torch's, with the dynamic axes named (onnxruntime's own inference names fixed output
    # sizes it cannot prove, e.g. "Divoutput_dim_2")
    axes = _axes(dynamic, spatial)
    inputs = [{"name": INPUT_NAME, "shape": [axes.get(i, n) for i, n in enumerate(sample.shape)]}]
    outs = [{"name": name, "shape": [axes.get(i, n) for i, n in enumerate(y.shape)]}
            for name, y in zip(output_names, outputs, strict=True)]  # fmt: skip

    from facetool.export import write_bytes_atomic

    written = write_bytes_atomic(path, model)
    report: dict[str, Any] = {
        "path": str(written),
        "bytes": len(model),
        "opset": opset,
        "exporter": "torch.onnx (TorchScript)",
        "dynamic_axes": {name: list(axes.values()) for name in (INPUT_NAME, *output_names)},
        "inputs": inputs,
        "outputs": outs,
        "checks": checks,
        "max_abs_diff": max((c["max_abs_diff"] for c in checks), default=None),
        "tolerance": tolerance if check else None,
    }
    if dynamic and reason:
        report["fixed_size_because"] = reason
    return report


def _as_tuple(y: Any) -> tuple[torch.Tensor, ...]:
    return tuple(y) if isinstance(y, (tuple, list)) else (y,)


def _axes(dynamic: bool, spatial: bool) -> dict[int, str]:
    if not dynamic:
        return {}
    return {0: "batch", 2: "height", 3: "width"} if spatial else {0: "batch"}


def _export_bytes(module, sample, opset: int, output_names: list[str], dynamic: bool, spatial: bool) -> bytes:
    import torch

    axes = _axes(dynamic, spatial)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), _legacy_export():
        # the legacy-exporter deprecation notice and tracer warnings (a traced Python branch) are expected here:
        # whether the graph is right is what the onnxruntime check measures
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (sample,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=output_names,
            dynamic_axes={name: axes for name in (INPUT_NAME, *output_names)} if axes else None,
            do_constant_folding=True,
        )
    return buffer.getvalue()


@contextlib.contextmanager
def _legacy_export() -> Iterator[None]:
    """Let the TorchScript exporter run without the ``onnx`` package.

    Its last step loads the model with ``onnx`` only to insert custom onnxscript functions; with no custom opsets
    that step returns the model unchanged, so it is replaced by the identity when ``onnx`` is not installed.
    """
    import importlib.util

    if importlib.util.find_spec("onnx") is not None:
        yield
        return
    from unittest import mock

    try:
        from torch.onnx._internal.torchscript_exporter import onnx_proto_utils
    except ImportError as err:
        raise FacetoolError("onnx export needs the onnx package with this torch version: pip install onnx") from err
    if not hasattr(onnx_proto_utils, "_add_onnxscript_fn"):
        raise FacetoolError("onnx export needs the onnx package with this torch version: pip install onnx")

    def keep_model(model_bytes: bytes, custom_opsets: Any) -> bytes:
        if custom_opsets:
            raise FacetoolError("onnx export with custom opsets needs the onnx package: pip install onnx")
        return model_bytes

    with mock.patch.object(onnx_proto_utils, "_add_onnxscript_fn", keep_model):
        yield


def _session(model: bytes):
    try:
        import onnxruntime
    except ImportError as err:
        raise FacetoolError(
            "onnx export checks the model with onnxruntime, which is not installed: pip install 'facetool[onnx]'"
        ) from err
    import torch

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 4  # errors come back as exceptions; onnxruntime's own log would print them twice
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _max_abs_diff(session, module, x: torch.Tensor) -> float:
    """Largest |onnxruntime - torch| over every output element for input ``x`` (B, C, H, W)."""
    import numpy as np
    import torch

    with torch.inference_mode():
        expected = [y.float().numpy() for y in _as_tuple(module(x))]
    got = session.run(None, {INPUT_NAME: x.numpy()})
    if len(got) != len(expected) or any(g.shape != e.shape for g, e in zip(got, expected, strict=True)):
        raise ValueError(f"output shapes {[g.shape for g in got]} != torch's {[e.shape for e in expected]}")
    # np.max, not max(): a NaN anywhere must come out as NaN (and fail the tolerance)
    return float(np.max([np.max(np.abs(g.astype(np.float64) - e)) for g, e in zip(got, expected, strict=True)]))


def _export(module: nn.Module, path: str | Path, **kwargs: Any) -> dict[str, Any]:
    return export_onnx(module, path, **kwargs)


ONNX_EXPORTER = ExporterSpec(
    name="onnx",
    kind="model",
    suffixes=(".onnx",),
    export=_export,
    description="ONNX model (torch TorchScript exporter), checked with onnxruntime against torch",
)
