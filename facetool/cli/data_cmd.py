"""``facetool data ...``: each data module adds its own subcommand through ``register_cli(data_app)``."""

from __future__ import annotations

import importlib

import typer

HELP = """Offline training data: generated photos, labels, drawing / map / Loomis / cartoon pairs, adapters for
real datasets, splits and contact sheets. Every command is seeded, resumable and writes a manifest.jsonl.

[b]Examples[/b]

  facetool data photos --count 8 --out data/photos

  facetool data labels data/photos

  facetool data drawings data/photos --out data/drawings

  facetool data show data/drawings -o sheet.png
"""

#: Modules of facetool.data that contribute subcommands, in the order --help lists them.
MODULES = ("photos", "labels", "drawings", "maps", "loomis", "cartoons", "facecrops", "adapters", "splits", "show")


def register(app: typer.Typer) -> None:
    data = typer.Typer(help=HELP, no_args_is_help=True)
    app.add_typer(data, name="data")
    for name in MODULES:
        try:
            module = importlib.import_module(f"facetool.data.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"facetool.data.{name}":
                continue  # not written yet
            raise
        module.register_cli(data)
