"""The hooks a facetool plugin may implement.

Every registry hook hands the plugin a ``register`` callback instead of asking it to return a list: the host
then knows which plugin registered which name (for duplicate errors and ``facetool plugins``), and a plugin
can register any number of things, or none, conditionally.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("facetool")


@hookspec
def register_detectors(register):
    """Register face detectors: ``register(DetectorSpec(...))`` (see :mod:`facetool.detectors`)."""


@hookspec
def register_generators(register):
    """Register methods (generators): ``register(MethodSpec(...))`` (see :mod:`facetool.methods`)."""


@hookspec
def register_losses(register):
    """Register named losses: ``register(LossSpec(...))`` (see :mod:`facetool.losses`)."""


@hookspec
def register_exporters(register):
    """Register exporters (model or mesh formats): ``register(ExporterSpec(...))``."""


@hookspec
def register_assets(register):
    """Declare the downloadable files a plugin needs: ``register(Asset(...))`` (see :mod:`facetool.assets`)."""


@hookspec
def register_commands(app):
    """Add commands to the ``facetool`` typer app: ``@app.command()`` or ``app.add_typer(...)``."""
