"""``facetool layout-predictor``: train the landmark predictor the wgan-landmark loss, --like and evaluation use."""

from __future__ import annotations

from pathlib import Path

import typer

HELP = """Train wgan-landmark's layout predictor (eyes, nose, mouth corners, chin) on a cartoon folder with exact
points (facetool data cartoons), augmented; prints its error on the folder's test split.

[b]Example[/b]

  facetool layout-predictor --cartoons data/cartoons -o predictor.safetensors

  facetool layout-predictor --cartoons data/cartoons --measure shipped   (the shipped predictors' held-out error)
"""


def register(app: typer.Typer) -> None:
    @app.command("layout-predictor", help=HELP, no_args_is_help=True)
    def layout_predictor(
        cartoons: Path = typer.Option(..., "--cartoons", help="facetool data cartoons folder (with splits.json)."),
        output: Path | None = typer.Option(None, "--output", "-o", help="Predictor file to write (.safetensors)."),
        measure: list[str] = typer.Option([], "--measure", help="Instead of training: print the test-split error "
                                          "of these predictor files ('shipped': every one that ships)."),  # fmt: skip
        steps: int = typer.Option(2000, "--steps", min=1, help="Optimisation steps."),
        seed: int = typer.Option(0, "--seed", help="Seed of the draws."),
        colour: bool = typer.Option(
            False, "--colour/--no-colour", help="Also draw any hue, saturation and grey: it reads parts by shape."
        ),
        parts: float = typer.Option(
            0.0, "--parts", min=0.0, max=8.0, help="Also move each point on its own by this many px (sd)."
        ),
    ) -> None:
        import json
        import time

        from facetool.errors import UsageError

        from .predictor import measure_predictor, save_predictor, shipped_predictor_paths, train_predictor

        if measure:
            if output is not None:
                raise UsageError("give --measure FILE or --output FILE (to train one), not both")
            files = [p for m in measure for p in (shipped_predictor_paths() if m == "shipped" else [Path(m)])]
            for path in files:
                if not path.is_file():
                    raise UsageError(f"--measure {path}: no such file")
            for path in files:
                typer.echo(json.dumps(measure_predictor(path, cartoons)))
            return
        if output is None:
            raise UsageError("--output FILE: where to write the predictor (or --measure FILE to measure one)")
        if output.suffix != ".safetensors":
            raise UsageError("--output must end in .safetensors")
        from facetool.imageio import prepare_outputs

        prepare_outputs([output])  # a folder that cannot be written fails now, not after the training
        start = time.time()
        predictor, record = train_predictor(cartoons, steps=steps, seed=seed, colour=colour, parts=parts,
                                            log=typer.echo)  # fmt: skip
        record["wall_s"] = round(time.time() - start)
        save_predictor(predictor, output, record)
        typer.echo(json.dumps(record))
        typer.echo(f"-> {output}")
