"""``facetool evaluate``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import UsageError
from .common import out, print_json

HELP = """Measure a method's network on a data folder: FID / KID, and L1 / SSIM / PSNR on paired items.

The input and target roles come from the method's training data (pix2pix: source -> target; CycleGAN: A -> B).
FID and KID use an offline face-feature backbone (the dlib age network, asset age-net-v1-onnx; not Inception, so
not comparable with papers) unless --inception points at a TorchScript Inception-v3 on disk.
--nme DETECTOR adds landmark NME: the detector's points on each output against those on its target (on the input
photo when the data is unpaired), over the inter-ocular distance (outer eye corners for 68 points, eye centres for
5); nme_found is the fraction of items with a face on both sides.
--oracle scores the data's own targets as if a method had drawn them: the floor of each metric (what a perfect
method gets; for a method's own metric, how much of its error is the measurement's).
Same weights, data and --seed give the same JSON.

[b]Examples[/b]

  facetool evaluate loomis-pix2pix --data data/loomis

  facetool evaluate pix2pix --data pairs/ --weights runs/p2p --split test --out eval/ --json

  facetool evaluate cyclegan --data pairs/ --weights model.safetensors --limit 100 --inception inception-2015-12-05.pt

  facetool evaluate pix2pix --data pairs/ --weights runs/p2p --nme dlib --json

  facetool evaluate loomis-pix2pix --data data/loomis --oracle --json
"""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP, no_args_is_help=True)
    def evaluate(
        method: str = typer.Argument(..., help="Method name (facetool methods)."),
        data: Path = typer.Option(..., "--data", help="Data folder with manifest.jsonl and splits.json."),
        weights: Path | None = typer.Option(None, "--weights", help="Weights file or training run (default: shipped)."),
        split: str = typer.Option("test", "--split", help="test, train or all."),
        size: int | None = typer.Option(None, "--size", help="Crop size (default: the method's)."),
        limit: int | None = typer.Option(None, "--limit", help="Evaluate the first N items only."),
        batch_size: int = typer.Option(8, "--batch-size", help="Items per forward pass."),
        seed: int = typer.Option(0, "--seed", min=0, help="Seed of the network and the KID subsets."),
        output: Path | None = typer.Option(None, "--out", "-o", help="Folder for metrics.json and grid.png."),
        json_out: bool = typer.Option(False, "--json", help="Print the metrics document as JSON."),
        option: list[str] = typer.Option([], "--option", "-O", help="Method setting key=value (facetool methods)."),
        inception: Path | None = typer.Option(None, "--inception", help="TorchScript Inception-v3 file for FID."),
        nme: str | None = typer.Option(
            None, "--nme", metavar="DETECTOR", help="Landmark NME of outputs through this detector (e.g. dlib)."
        ),
        oracle: bool = typer.Option(False, "--oracle", help="Score the data's targets instead of outputs (floor)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    ) -> None:
        from ..device import resolve_device
        from ..evaluate import evaluate_method, nme_detector_spec
        from ..metrics.features import load_backbone
        from ..options import parse_options
        from ..plugins import get_host

        if oracle and weights is not None:
            raise UsageError("--oracle scores the data's targets: drop --weights")
        spec = get_host().generators.get(method)
        options = parse_options(spec.options, option, f"method {method}")
        if spec.measure is not None and (inception is not None or nme is not None):
            raise UsageError(f"method {method} measures its own outputs: --inception and --nme do not apply")
        if nme is not None:
            nme_detector_spec(nme)  # an unknown detector or a missing asset fails before the backbone loads
        backbone = load_backbone(inception) if spec.measure is None else None
        result = evaluate_method(spec, data, weights, options, split=split, size=size, batch_size=batch_size,
                                 limit=limit, seed=seed, device=resolve_device(device), out_dir=output,
                                 backbone=backbone, nme=nme, oracle=oracle)  # fmt: skip
        if json_out:
            print_json(result)
            return
        measured_by = f"backbone {result['backbone']}" if "backbone" in result else "its own measures"
        out.print(f"{result['method']} on {result['data']} ({result['split']}, {result['count']} items, "
                  f"{measured_by})", highlight=False)  # fmt: skip
        for name, value in result["metrics"].items():
            out.print(f"  {name:<13} {value}", highlight=False)
        for name, text in result.get("notes", {}).items():
            out.print(f"  ({name}: {text})", highlight=False)
        if output is not None:
            out.print(f"wrote {output / 'metrics.json'} and {output / 'grid.png'}", highlight=False)
