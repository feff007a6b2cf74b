"""``facetool plugins`` and ``facetool methods``."""

from __future__ import annotations

import typer

from .common import join, out, print_json

PLUGINS_HELP = """List the loaded plugins: name, version, hooks, and what each registered.

Plugins come from the [b]facetool[/b] entry-point group; FACETOOL_PLUGINS=a,b limits which load (empty: none).

[b]Examples[/b]

  facetool plugins

  facetool plugins --json

  facetool plugins --strict   (exit 1 on any problem: a plugin that failed to load, a registration left out,
  an unknown hook name, FACETOOL_PLUGINS naming no installed plugin; for a plugin's CI)
"""

DETECTORS_HELP = """List the face detectors: plugin, what they give, their -D settings and the assets they need.

[b]Examples[/b]

  facetool detectors

  facetool detectors --json
"""

METHODS_HELP = """List the methods (generators): task, template, input size, weights and options.

[b]Examples[/b]

  facetool methods

  facetool methods --json
"""


def register(app: typer.Typer) -> None:
    @app.command(help=PLUGINS_HELP)
    def plugins(
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
        strict: bool = typer.Option(False, "--strict", help="Exit 1 when any plugin has a problem (its status)."),
    ) -> None:
        from rich.table import Table
        from rich.text import Text

        from ..plugins import get_host

        host = get_host()
        data = host.describe()
        failing = [f"plugin '{p['name']}'" for p in data if p["error"]] + host.problems
        if as_json:
            print_json(data)
            _check_strict(strict, failing)
            return
        table = Table("plugin", "version", "hooks", "registered", "status")
        for p in data:
            registered = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["registered"].items())
            hooks = join(h.removeprefix("register_") for h in p["hooks"])
            status = "off (FACETOOL_PLUGINS)" if p["disabled"] else "ok"
            status = Text(p["error"], style="red") if p["error"] else status
            table.add_row(p["name"], p["version"] or "", hooks, registered or "-", status)
        out.print(table)
        _check_strict(strict, failing)

    @app.command(help=DETECTORS_HELP)
    def detectors(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        from rich.table import Table

        from ..options import describe_options
        from ..pipeline import default_name
        from ..plugins import get_host

        registry = get_host().detectors
        default = default_name(registry, "detector") if registry.names() else None
        data = [
            {
                "name": spec.name,
                "plugin": registry.owner(spec.name),
                "default": spec.name == default,
                "description": spec.description,
                "features": ["box", "score", "points5", *spec.features],
                "assets": list(spec.assets),
                "options": describe_options(spec.options),
            }
            for spec in registry.all().values()
        ]
        if as_json:
            print_json(data)
            return
        table = Table("detector", "gives", "settings (-D key=value)", "description")
        for d in data:
            opts = join(f"{o['name']}={o['default']}" for o in d["options"])
            name = d["name"] + (" (default)" if d["default"] else "")
            table.add_row(name, join(d["features"][3:]) if len(d["features"]) > 3 else "5 points", opts,
                          d["description"])  # fmt: skip
        out.print(table)

    @app.command(help=METHODS_HELP)
    def methods(
        name: str | None = typer.Argument(None, help="One method: all its options and training options in full."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        from rich.table import Table

        from ..options import describe_options
        from ..plugins import get_host

        host = get_host()
        data = [
            {
                "name": spec.name,
                "task": spec.task,
                "plugin": host.generators.owner(spec.name),
                "description": spec.description,
                "template": spec.template,
                "input_size": spec.input_size,
                "sizes": list(spec.sizes),
                "weights": spec.weights,
                "background": spec.background,
                "version": spec.version,
                "options": describe_options(spec.options),
                "trainable": spec.train is not None,
                "train_options": describe_options(spec.train.options) if spec.train is not None else [],
                "train_streams": _streams(spec),
            }
            for spec in ([host.generators.get(name)] if name else host.generators.all().values())
        ]
        if as_json:
            print_json(data[0] if name else data)
            return
        if not data:
            out.print("no methods registered (see facetool plugins)")
            return
        if name:
            _print_method(data[0])
            return
        table = Table("method", "task", "plugin", "input", "options (-O)", "trains on", "description")
        for m in data:
            opts = join(f"{o['name']}={o['default']}" for o in m["options"])
            streams = m["train_streams"]
            trains = join(" -> ".join(r) if len(r) > 1 else r[0] for r in streams.values()) if streams else "-"
            table.add_row(m["name"], m["task"], m["plugin"], f"{m['input_size']}² {m['template']}", opts, trains,
                          m["description"])  # fmt: skip
        out.print(table)
        out.print("facetool methods NAME: one method's options and training options (-T) in full", highlight=False)


def _check_strict(strict: bool, failing: list[str]) -> None:
    if strict and failing:
        from ..errors import FacetoolError

        raise FacetoolError(f"--strict: {len(failing)} problem(s): {'; '.join(failing)}")


def _weights_line(m: dict) -> str:
    if m["weights"]:
        return m["weights"]
    return "none shipped: train, then --weights RUN" if m["trainable"] else "none (it needs none)"


def _print_method(m: dict) -> None:
    """One method in full: what it is, its -O options and, when trainable, its training options."""
    from rich.table import Table

    out.print(f"{m['name']} ({m['task']}, plugin {m['plugin']}): {m['description']}")
    out.print(f"input {m['input_size']}² {m['template']} (sizes {', '.join(map(str, m['sizes']))}); "
              f"weights {_weights_line(m)}", highlight=False)  # fmt: skip
    sections = [(f"options (facetool {m['task']} -O key=value)", m["options"])]
    if m["trainable"]:
        sections.append(("training options (facetool train -T key=value)", m["train_options"]))
    for title, options in sections:
        table = Table(title=title, title_justify="left")
        for column in ("name", "type", "default", "help"):
            table.add_column(column)
        for o in options:
            table.add_row(o["name"], o["type"], str(o["default"]), o["help"])
        out.print(table)


def _streams(spec) -> dict[str, list[str]] | None:
    """The data roles a method trains on, with its default training options."""
    if spec.train is None:
        return None
    options = spec.train.options() if spec.train.options else None
    try:
        return {name: list(roles) for name, roles in spec.train.streams(options).items()}
    except Exception:  # a plugin's streams() that needs more than defaults must not break the listing
        return None
