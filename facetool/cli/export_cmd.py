"""``facetool export``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import UsageError
from .common import out, print_json

HELP = """Export a method's inference network to a model file (ONNX) for other runtimes.

The net is the method's bare generator: (B, 3, S, S) RGB in [0, 1] -> (B, C, S, S) in [0, 1]. With --format onnx the
file is checked with onnxruntime against torch (max abs difference, tolerance 1e-4) before it is written; the batch
is a dynamic axis, and height / width too where the net runs at any size.

[b]Examples[/b]

  facetool export loomis-pix2pix --format onnx -o loomis.onnx

  facetool export pix2pix --weights runs/faces --format onnx -o faces.onnx --size 256 --json
"""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP, no_args_is_help=True)
    def export(
        method: str = typer.Argument(..., help="Method whose network to export (facetool methods)."),
        weights: Path | None = typer.Option(None, "--weights", help="Weights file or training run (default: shipped)."),
        format: str = typer.Option("onnx", "--format", "-f", help="Exporter (facetool plugins lists them)."),
        output: Path | None = typer.Option(None, "--output", "-o", help="Model file (default: METHOD.onnx)."),
        size: int | None = typer.Option(None, "--size", help="Input side S of the traced sample (default: method's)."),
        opset: int = typer.Option(
            17, "--opset", min=7, max=24, help="ONNX opset version (7-24: what torch's exporter writes)."
        ),
        option: list[str] = typer.Option([], "--option", "-O", help="Method setting key=value (facetool methods)."),
        static: bool = typer.Option(False, "--static", help="Fix every axis (default: batch, H/W dynamic)."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        from ..evaluate import default_size
        from ..methods import resolve_weights
        from ..options import parse_options
        from ..plugins import get_host

        host = get_host()
        spec = host.generators.get(method)
        exporter = host.exporters.get(format)
        if exporter.kind != "model":
            raise UsageError(f"--format {format} exports {exporter.kind}es, not a method's network")
        if spec.network is None:
            raise UsageError(f"method {method} has no exportable network (its plugin gives no MethodSpec.network)")
        if spec.task == "generate":  # its network takes noise (and a layout), not the image an export traces with
            raise UsageError(f"method {method} generates from noise: export takes image-to-image methods")
        weights_path = resolve_weights(spec, weights)
        size = default_size(spec, weights_path, size)  # a run trained at 128 exports at 128
        target = output or Path(f"{method}{exporter.suffixes[0]}")
        if target.suffix.lower() not in exporter.suffixes:
            raise UsageError(f"-o {target}: the {format} format writes {', '.join(exporter.suffixes)} files")
        options = parse_options(spec.options, option, f"method {method}")
        from ..imageio import prepare_outputs

        prepare_outputs([target], protect=[weights_path] if weights_path is not None else [])  # before the tracing
        net = spec.network(options, weights_path)

        import torch

        sample = torch.rand((1, 3, size, size), generator=torch.Generator().manual_seed(0))
        made = _run_exporter(exporter, host.exporters.owner(format), target, net, sample=sample, opset=opset,
                             dynamic=not static)  # fmt: skip
        report = {"method": method, "format": format, **made}
        if as_json:
            print_json(report)
            return
        _print_report(report)


REPORT_KEYS = ("path", "bytes", "opset", "inputs", "outputs")


def _run_exporter(exporter, plugin: str, target: Path, net, **kwargs) -> dict:
    """The exporter's report; a failure, or a report that is not one, is the plugin's (PluginError naming it), and
    a file it left half-written where none was before is removed."""
    from collections.abc import Mapping

    from ..errors import FacetoolError, PluginError

    existed = target.exists()
    who = f"exporter {exporter.name} (plugin {plugin})"
    try:
        report = exporter.export(net, target, **kwargs)
        if not isinstance(report, Mapping) or any(k not in report for k in REPORT_KEYS):
            got = sorted(report) if isinstance(report, Mapping) else type(report).__name__
            raise PluginError(f"{who} returned {got}; expected a report with {', '.join(REPORT_KEYS)}")
    except BaseException as err:
        if not existed:
            target.unlink(missing_ok=True)
        if isinstance(err, FacetoolError) or not isinstance(err, Exception):
            raise
        raise PluginError(f"{who} failed: {type(err).__name__}: {err}") from err
    return dict(report)


def _print_report(report: dict) -> None:
    def shape(item: dict) -> str:
        return f"{item['name']} ({', '.join(map(str, item['shape']))})"

    out.print(f"wrote {report['path']} ({report['bytes'] / 1e6:.1f} MB, {report['format']}, opset {report['opset']})")
    out.print(f"  inputs:  {', '.join(shape(i) for i in report['inputs'])}")
    out.print(f"  outputs: {', '.join(shape(o) for o in report['outputs'])}")
    if report.get("checks"):
        shapes = "; ".join("x".join(map(str, c["shape"])) for c in report["checks"])
        out.print(f"  onnxruntime vs torch: max abs diff {report['max_abs_diff']:.2g} "
                  f"(tolerance {report['tolerance']:g}) on {shapes}")  # fmt: skip
    if report.get("fixed_size_because"):
        out.print(f"  height/width fixed: the graph does not run at another size ({report['fixed_size_because']})")
