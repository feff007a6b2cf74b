"""The ``facetool`` command line.

``main()`` owns the error contract: a :class:`FacetoolError` or a usage error becomes one line on stderr and exit
code 1 or 2; any other exception too, with the traceback only under ``--debug`` (or ``FACETOOL_DEBUG=1``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import FacetoolError

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer on real click
    from click import exceptions as click_errors

EPILOG = (
    "Examples:\n\n"
    "  facetool detect photo.jpg -o annotated.png\n\n"
    "  facetool plugins --json\n\n"
    "  facetool assets fetch --all"
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"facetool {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    """The typer app with the core commands plus every loaded plugin's ``register_commands``."""
    from ..plugins import get_host
    from . import (
        assets_cmd,
        data_cmd,
        detect_cmd,
        evaluate_cmd,
        export_cmd,
        generate_cmd,
        info_cmd,
        reconstruct_cmd,
        stylize_cmd,
        train_cmd,
    )

    app = typer.Typer(
        name="facetool",
        cls=FacetoolGroup,
        help="GAN face toolchain: detect and align faces, stylize portraits, generate and reconstruct faces.",
        epilog=EPILOG,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def root(
        version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
        debug: bool = typer.Option(False, "--debug", help="Show the full traceback on errors."),
    ) -> None:
        """GAN face toolchain."""

    detect_cmd.register(app)
    stylize_cmd.register(app)
    generate_cmd.register(app)
    reconstruct_cmd.register(app)
    info_cmd.register(app)
    assets_cmd.register(app)
    data_cmd.register(app)
    train_cmd.register(app)
    evaluate_cmd.register(app)
    export_cmd.register(app)
    get_host().call_commands(app)
    return app


def _fail(message: str, code: int) -> int:
    # One line, always: wrapped library errors (torch's unpickler, OpenVINO) can carry paragraphs.
    from .common import escape_names

    lines = [line.strip() for line in escape_names(str(message)).splitlines() if line.strip()] or ["unknown error"]
    more = " (…)" if len(lines) > 1 else ""
    print(f"facetool: error: {lines[0]}{more}", file=sys.stderr)
    return code


def _handle(err: BaseException, debug: bool) -> int:
    """Exit code for an exception escaping a command, after printing its one line."""
    if isinstance(err, typer.Exit):
        return err.exit_code
    if isinstance(err, typer.Abort):
        return _fail("aborted", 130)
    if debug:
        raise err
    if type(err).__name__ == "NoArgsIsHelpError":  # bare command: show its help, exit as a usage error
        err.show()  # type: ignore[attr-defined]
        return 2
    if isinstance(err, click_errors.ClickException):
        ctx = getattr(err, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        return _fail(f"{err.format_message()}{hint}", err.exit_code)
    if isinstance(err, FacetoolError):
        return _fail(str(err), err.exit_code)
    if isinstance(err, KeyboardInterrupt):
        return _fail("interrupted", 130)
    if isinstance(err, BrokenPipeError):
        return 1
    if isinstance(err, OSError) and err.strerror:
        return _fail(_os_error_line(err), 1)
    return _fail(f"{type(err).__name__}: {err} (run again with --debug for the traceback)", 1)


def _os_error_line(err: OSError) -> str:
    """ "PATH: reason" for a file-system error the code did not foresee; a failed atomic write (its hidden temp
    file beside the target) names the folder it could not write in."""
    name = err.filename2 if isinstance(err, IsADirectoryError) and err.filename2 else err.filename
    if name is None:
        return err.strerror
    path = Path(os.fsdecode(name))
    if path.name.startswith(".") and ".tmp" in path.name:
        return f"{path.parent}{os.sep}: cannot write in this folder ({err.strerror})"
    return f"{path}: {err.strerror}"


class FacetoolGroup(TyperGroup):
    """The root command: owns the error contract, so the console script and typer's CliRunner behave alike."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        argv = list(sys.argv[1:] if args is None else args)
        from .common import note_odd_names

        note_odd_names(argv)
        debug = "--debug" in argv or os.environ.get("FACETOOL_DEBUG") == "1"
        if "--debug" in argv[1:]:  # "facetool train … --debug" means what "facetool --debug train …" does
            argv = ["--debug", *(a for a in argv if a != "--debug")]
        try:
            result = super().main(argv, prog_name or "facetool", complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except BaseException as err:  # noqa: BLE001 - every exit path goes through _handle
            if isinstance(err, SystemExit):
                raise
            code = _handle(err, debug)
        if standalone_mode:
            sys.exit(code)
        return code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code."""
    command = typer.main.get_command(build_app())
    return command.main(args=argv, prog_name="facetool", standalone_mode=False)


def main() -> None:
    sys.exit(run())
