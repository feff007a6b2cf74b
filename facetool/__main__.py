"""``python -m facetool`` runs the CLI."""

from .cli import main

main()
