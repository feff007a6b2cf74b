"""``facetool cartoon-landmarks``: fine-tune the landmark regressor that approach A's loss and the evaluation use."""

from __future__ import annotations

from pathlib import Path

import typer

HELP = """Fine-tune the cartoon plugin's landmark regressor (MTCNN's O-Net on the whole crop) on a cartoon folder
(exact points) and a photo-crop folder (labelled points), both augmented; prints held-out NME before and after.

[b]Example[/b]

  facetool cartoon-landmarks --cartoons data/cartoons --photos data/photo-crops -o landmarks.safetensors
"""


def register(app: typer.Typer) -> None:
    @app.command("cartoon-landmarks", help=HELP, no_args_is_help=True)
    def cartoon_landmarks(
        cartoons: Path = typer.Option(..., "--cartoons", help="facetool data cartoons folder (with splits.json)."),
        photos: Path = typer.Option(..., "--photos", help="facetool data crops folder at the avatar template."),
        output: Path = typer.Option(..., "--output", "-o", help="Regressor file to write (.safetensors)."),
        steps: int = typer.Option(2000, "--steps", help="Optimisation steps."),
        lr: float = typer.Option(3e-4, "--lr", help="Adam learning rate."),
        seed: int = typer.Option(0, "--seed", help="Seed of the draws."),
    ) -> None:
        import json
        import time

        from facetool.errors import UsageError

        from .landmarks import finetune_regressor, save_regressor

        if not 0 < lr < 1:  # also refuses nan
            raise UsageError(f"--lr {lr}: give a learning rate between 0 and 1")
        if output.suffix != ".safetensors":
            raise UsageError("--output must end in .safetensors")
        from facetool.imageio import prepare_outputs

        prepare_outputs([output])  # a folder that cannot be written fails now, not after the training
        if steps < 1:
            raise UsageError("--steps must be >= 1")
        start = time.time()
        regressor, card = finetune_regressor(cartoons, photos, steps=steps, lr=lr, seed=seed, log=typer.echo)
        card["wall_s"] = round(time.time() - start)
        save_regressor(regressor, output, card)
        typer.echo(json.dumps(card))
        typer.echo(f"-> {output}")
