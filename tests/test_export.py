"""ONNX export: onnxruntime matches torch, dynamic axes only where they work, atomic writes, the CLI."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facetool import hookimpl
from facetool.cli import build_app
from facetool.errors import FacetoolError
from facetool.export.onnx import ONNX_EXPORTER, export_onnx
from facetool.methods import MethodSpec
from facetool.nets.unet import UNet, UNetConfig
from facetool.plugins import get_host

ort = pytest.importorskip("onnxruntime")


class Stylizer(torch.nn.Module):
    """A generator as ``MethodSpec.network`` gives it: [0, 1] in, [0, 1] out (the net itself works in [-1, 1])."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.net(x * 2 - 1) + 1) / 2


def tiny_net(seed: int = 0) -> Stylizer:
    torch.manual_seed(seed)
    return Stylizer(UNet(UNetConfig(levels=4, base=8))).eval()


def run_onnx(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x.numpy()})[0]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_round_trip_with_dynamic_batch_and_size(tmp_path):
    net = tiny_net()
    # 40 is not a multiple of 2**4: the traced graph contains the U-Net's padding, so any size runs
    report = export_onnx(net, tmp_path / "net.onnx", torch.rand(1, 3, 40, 40))
    assert report["dynamic_axes"]["image"] == ["batch", "height", "width"]
    assert report["inputs"] == [{"name": "image", "shape": ["batch", 3, "height", "width"]}]
    assert report["outputs"] == [{"name": "output", "shape": ["batch", 3, "height", "width"]}]
    assert report["bytes"] == (tmp_path / "net.onnx").stat().st_size > 100_000  # the weights are in the file
    assert [c["shape"][0] for c in report["checks"]].count(2) == 1  # a second batch size was checked
    assert 0 <= report["max_abs_diff"] <= report["tolerance"] == 1e-4
    x = torch.rand(3, 3, 52, 36)  # batch, height and width all unseen at export
    with torch.inference_mode():
        expected = net(x).numpy()
    got = run_onnx(tmp_path / "net.onnx", x)
    assert got.shape == (3, 3, 52, 36)
    assert np.abs(got - expected).max() < 1e-4 and got.min() >= 0 and got.max() <= 1


def test_size_stays_fixed_where_the_graph_bakes_it(tmp_path):
    # 32 needs no padding, so tracing records "no padding" and 39x39 would fail: H/W must not be declared dynamic
    report = export_onnx(tiny_net(), tmp_path / "net.onnx", torch.rand(1, 3, 32, 32))
    assert report["dynamic_axes"]["image"] == ["batch"] and "fixed_size_because" in report
    session = ort.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["batch", 3, 32, 32]
    assert run_onnx(tmp_path / "net.onnx", torch.rand(4, 3, 32, 32)).shape == (4, 3, 32, 32)


class Drifting(torch.nn.Module):
    """Adds a Python counter that tracing freezes: onnxruntime and torch differ by >= 0.01 on every check."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x * 0.5 + 0.01 * self.calls


def test_mismatch_fails_in_one_line_and_writes_nothing(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous model")
    with pytest.raises(FacetoolError, match=r"differs from torch by .* above the tolerance 0.0001; nothing written"):
        export_onnx(Drifting(), target, torch.rand(1, 3, 16, 16))
    assert target.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temporary file left


def test_missing_onnxruntime_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(FacetoolError, match=r"pip install 'facetool\[onnx\]'"):
        export_onnx(tiny_net(), tmp_path / "net.onnx", torch.rand(1, 3, 32, 32))
    assert not (tmp_path / "net.onnx").exists()
    report = export_onnx(tiny_net(), tmp_path / "net.onnx", torch.rand(1, 3, 32, 32), check=False)
    assert report["checks"] == [] and report["dynamic_axes"]["image"] == ["batch"]


class FakeMethods:
    @hookimpl
    def register_generators(self, register):
        def network(options, weights):
            net = tiny_net(seed=1)
            if weights is not None:
                from safetensors.torch import load_file

                net.load_state_dict(load_file(weights))
            return net

        register(MethodSpec(name="tiny", task="stylize", load=lambda o, d, w: None, description="test",
                            network=network, input_size=48, sizes=(48, 64)))  # fmt: skip
        register(MethodSpec(name="bare", task="stylize", load=lambda o, d, w: None, description="test"))


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    get_host().register_object(FakeMethods(), "fake")
    return lambda *args: CliRunner().invoke(build_app(), list(args))


def test_cli_exports_the_given_weights(tmp_path, cli):
    from safetensors.torch import save_file

    trained = tiny_net(seed=7)  # differs from the method's default init (seed 1)
    save_file(trained.state_dict(), tmp_path / "w.safetensors")
    result = cli("export", "tiny", "--weights", str(tmp_path / "w.safetensors"), "--format", "onnx",
                 "-o", str(tmp_path / "m.onnx"), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["method"] == "tiny" and report["opset"] == 17 and report["max_abs_diff"] <= 1e-4
    x = torch.rand(2, 3, 48, 48)
    with torch.inference_mode():
        expected = trained(x).numpy()
    assert np.abs(run_onnx(tmp_path / "m.onnx", x) - expected).max() < 1e-4
    text = cli("export", "tiny", "-o", str(tmp_path / "n.onnx"), "--size", "64", "--opset", "16", "--static")
    assert text.exit_code == 0, text.output
    assert "opset 16" in text.stdout and "max abs diff" in text.stdout
    session = ort.InferenceSession(str(tmp_path / "n.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 64, 64]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("tiny", "--format", "tflite"), 2, "unknown exporter 'tflite'"),
        (("bare",), 2, "has no exportable network"),
        (("tiny", "--weights", "missing.safetensors"), 2, "no such file"),
        (("tiny", "--opset", "3"), 2, "--opset"),
        (("tiny", "--size", "50"), 2, "runs at 48, 64"),
        (("tiny", "-o", "model.bin"), 2, "writes .onnx files"),
        (("nope",), 2, "unknown method 'nope'"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, cli, monkeypatch, args, code, message):
    monkeypatch.chdir(tmp_path)
    result = cli("export", *args)
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_core_registers_the_onnx_exporter(monkeypatch):
    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    assert get_host().exporters.get("onnx") is ONNX_EXPORTER
    assert ONNX_EXPORTER.kind == "model" and ONNX_EXPORTER.suffixes == (".onnx",)


def test_a_generate_method_is_refused_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from facetool.cli import build_app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(build_app(), ["export", "wgan-landmark"])
    assert result.exit_code == 2 and "generates from noise" in result.stderr and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


class BrokenExporters:
    @hookimpl
    def register_exporters(self, register):
        from facetool.exporters import ExporterSpec

        def crash(net, path, **kwargs):
            path.write_bytes(b"partial")  # a plugin that writes in place, then fails half-way
            raise RuntimeError("crashed half-way")

        def no_report(net, path, **kwargs):
            path.write_bytes(b"model")

        register(ExporterSpec(name="crashy", kind="model", suffixes=(".cm",), export=crash, description="test"))
        register(ExporterSpec(name="silent", kind="model", suffixes=(".sm",), export=no_report, description="test"))


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("crashy", "exporter crashy (plugin broken) failed: RuntimeError: crashed half-way"),
        ("silent", "exporter silent (plugin broken) returned NoneType; expected a report with path, bytes"),
    ],
)
def test_a_failing_exporter_is_named_and_leaves_no_partial_file(tmp_path, cli, fmt, message):
    get_host().register_object(BrokenExporters(), "broken")
    target = tmp_path / f"m.{'cm' if fmt == 'crashy' else 'sm'}"
    result = cli("export", "tiny", "--format", fmt, "-o", str(target))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_exporter_suffix_is_checked_when_registered():
    from facetool.exporters import ExporterSpec

    with pytest.raises(ValueError, match="suffixes are lower-case, with a dot"):
        ExporterSpec(name="x", kind="mesh", suffixes=("xyz",), export=print, description="test")
    with pytest.raises(ValueError, match="kind must be 'model' or 'mesh'"):
        ExporterSpec(name="x", kind="image", suffixes=(".x",), export=print, description="test")
