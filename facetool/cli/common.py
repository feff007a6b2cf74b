"""Pieces the commands share: consoles, JSON output, progress, output-path rules."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from ..errors import ImageError, PluginError, UsageError
from ..outputs import is_own_output, own_output_markers

T = TypeVar("T")

# markup off: file names like "me [draft].png" must print as they are (rich would eat or choke on the brackets)
out = Console(soft_wrap=True, markup=False)
err = Console(stderr=True, soft_wrap=True, markup=False)


_NUMBER_LIST = re.compile(r"\[\s+([-+0-9.eE,\s]+?)\s+\]")


def print_json(data: Any) -> None:
    """Indented JSON with innermost number lists on one line (a point is ``[x, y]``, not four lines)."""
    text = json.dumps(_valid_text(data), indent=2, default=_jsonable)
    text = _NUMBER_LIST.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    sys.stdout.write(text + "\n")


def _valid_text(data: Any) -> Any:
    """Strings as valid Unicode: a file name that is not UTF-8 reaches Python with lone surrogates, which strict JSON
    parsers refuse; its odd bytes are written as ``\\xe9`` instead."""
    if isinstance(data, str):
        try:
            data.encode("utf-8")
            return data
        except UnicodeEncodeError:
            return data.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(data, dict):
        return {_valid_text(k): _valid_text(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_valid_text(v) for v in data]
    if isinstance(data, Path):
        return _valid_text(str(data))
    return data


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return _valid_text(str(obj))
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def progress(items: list[T], label: str) -> Iterator[T]:
    """A progress bar on stderr when there is more than one item and stderr is a terminal."""
    if len(items) < 2 or not err.is_terminal:
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=label, console=err, transient=True)


_stdin_files: set[Path] = set()
_escaped_names: dict[str, str] = {}


def note_odd_names(names: Iterable[str]) -> None:
    """Remember the names (command-line words, inputs found in folders) that hold control characters: a newline
    in a name would cut the one error line short, so :func:`escape_names` writes them escaped."""
    odd = [text for text in names if any(ord(c) < 32 for c in text)]
    for text in odd:
        _escaped_names[text] = ascii(text)[1:-1]
        _escaped_names[str(Path(text))] = ascii(str(Path(text)))[1:-1]  # as a Path prints it (./a -> a)
    if odd:
        _escape_stderr()


def escape_names(message: str) -> str:
    """``message`` with the names that hold control characters (a newline) written escaped, as ``a\\nb.jpg``, and
    standard input's temporary copy as ``-``."""
    for raw, escaped in _escaped_names.items():
        message = message.replace(raw, escaped)
    return message


def gather_inputs(items: list[str], writes_beside: bool = False) -> list[Path]:
    """The command's input files (see expand_inputs), leaving out of folders and globs the files facetool itself
    names as outputs — ``a.apdrawing.png``, ``a.cartoon.face1.png``, ``a.faces.png``, ``a.texture.png`` — so a
    second run over a folder does not take the first run's results as photos. One stderr line says so.
    ``-`` is the picture on standard input, once; ``writes_beside``: the command would write its results beside
    the inputs (no ``-o``), which a picture from standard input has no place for."""
    from ..imageio import expand_inputs

    if items.count("-") > 1:
        raise UsageError("- (standard input) can be given once")
    if "-" in items and writes_beside:  # said before standard input is read
        raise UsageError(STDIN_NEEDS_OUTPUT)
    items = [str(read_stdin()) if item == "-" else item for item in items]
    markers = own_output_markers()
    skipped: list[Path] = []
    inputs = expand_inputs(items, skip=lambda p: is_own_output(p, markers), skipped=skipped)
    note_odd_names(str(path) for path in inputs)
    # Counted once each, and not at all when also named on its own (then it is taken).
    taken = {p.resolve() for p in inputs}
    skipped = list({p.resolve(): p for p in skipped if p.resolve() not in taken}.values())
    if skipped:
        err.print(
            f"left out {len(skipped)} file(s) named like facetool's outputs (first: {skipped[0]}); "
            "name a file on its own to use it",
            highlight=False,
        )
    return inputs


STDIN_NEEDS_OUTPUT = "the picture from standard input (-) has no folder to write beside: give -o"

#: ``-o -``: the one result goes to standard output, as PNG bytes (``-o ./-`` is a file named "-").
STDOUT = "-"


def check_stdout_output(inputs: int) -> None:
    """Before any work: ``-o -`` writes one picture, and not onto a terminal."""
    if inputs != 1:
        raise UsageError("-o - writes one picture to standard output: give one input (or -o a folder/)")
    stream = sys.stdout
    if stream is None or (hasattr(stream, "isatty") and stream.isatty()):
        raise UsageError("-o -: standard output is a terminal; redirect it (> result.png) or give -o FILE")


def write_stdout(image: Any) -> None:
    """One picture to standard output as PNG (after the work: nothing half-written reaches a pipe on failure)."""
    from ..imageio import encode_png

    data = encode_png(image)
    stream = getattr(sys.stdout, "buffer", sys.stdout)
    try:
        stream.write(data)
        stream.flush()
    except OSError as error:  # a closed pipe (| head), a full disk behind the redirect
        raise ImageError(f"-o -: cannot write to standard output ({error.strerror or error})") from None


STDIN_CHUNK = 1 << 20


def shown(path: Path) -> str:
    """An input's name in messages and records: ``-`` for the picture read from standard input (and ``./-`` for a
    file of that name)."""
    if path in _stdin_files:
        return "-"
    return f".{os.sep}-" if str(path) == "-" else str(path)


def read_stdin() -> Path:
    """Standard input's picture, kept in a private temporary folder (removed at exit, SIGTERM included) as
    ``stdin.<its format>``: the commands read files. From then on, stderr names that file ``-``.

    Read to its end only when its first bytes start a picture, and never past the most bytes a picture within the
    pixel limit (``FACETOOL_MAX_PIXELS``) can take; the pixel limit itself is checked when the file is read."""
    import atexit
    import shutil
    import tempfile

    from ..imageio import looks_like_picture, max_pixels, picture_suffix

    if sys.stdin is None:
        raise UsageError("-: standard input is closed; pipe a picture in (< photo.jpg)")
    if sys.stdin.isatty():
        raise UsageError("-: standard input is a terminal; pipe a picture in (< photo.jpg)")
    stream = getattr(sys.stdin, "buffer", sys.stdin)
    limit = max_pixels() * 8 + 64 * STDIN_CHUNK  # 16-bit RGBA, uncompressed, plus room for metadata
    try:
        head = stream.read(64 * 1024)
        if not head:
            raise ImageError("-: standard input is empty")
        if not looks_like_picture(head):  # some formats (PSD) carry more than 64 KB before Pillow can tell
            head += stream.read(4 * STDIN_CHUNK - len(head))
            if not looks_like_picture(head):
                raise ImageError("-: standard input is not a picture facetool reads")
        chunks, total = [head], len(head)
        while chunk := stream.read(STDIN_CHUNK):
            total += len(chunk)
            if total > limit:
                raise ImageError(f"-: standard input is over {limit // STDIN_CHUNK:,} MB, more than a picture within "
                                 "the pixel limit can be (set FACETOOL_MAX_PIXELS to raise it)")  # fmt: skip
            chunks.append(chunk)
    except OSError as err:
        raise ImageError(f"-: cannot read standard input ({err.strerror or err})") from None
    data = b"".join(chunks)
    suffix = picture_suffix(data)
    if suffix is None:
        raise ImageError("-: standard input is not a picture facetool reads")
    folder = Path(tempfile.mkdtemp(prefix="facetool-stdin-"))
    atexit.register(shutil.rmtree, folder, True)
    _exit_on_sigterm()
    path = folder / f"stdin{suffix}"
    path.write_bytes(data)
    _stdin_files.add(path)
    _escaped_names[str(path)] = "-"  # the error line, wherever it is printed, names it "-" too
    _escape_stderr()
    return path


def _exit_on_sigterm() -> None:
    """SIGTERM (timeout, kill) ends the process through ``sys.exit``, so the exit handlers remove the copy of the
    user's picture; left alone, it kills the process with the copy still in the temporary folder."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _escape_stderr() -> None:
    """From now on stderr writes the names :func:`escape_names` knows escaped (and standard input's temporary copy
    as ``-``), whichever part of facetool or a library prints them."""
    if sys.stderr is not None and not isinstance(sys.stderr, _EscapedNames):  # None: started with stderr closed
        sys.stderr = _EscapedNames(sys.stderr)


class _EscapedNames:
    """A text stream that writes through :func:`escape_names`."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(escape_names(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def task_method(method: str | None, task: str, size: int | None, weights: Path | None = None) -> tuple[str, Any, int]:
    """(name, spec, crop size) of the method a task command runs: ``--method`` or the task's default; UsageError for
    another task's method or a ``--size`` it does not run at. No ``--size``: the size ``--weights`` were trained at
    (a run trained at 128 runs at 128), else the method's input size."""
    from ..pipeline import default_name
    from ..plugins import get_host

    registry = get_host().generators
    name = method or default_name(registry, "method", task=task)
    spec = registry.get(name)
    if spec.task != task:
        raise UsageError(f"method {name} is a {spec.task} method; use facetool {spec.task}")
    from ..align import TEMPLATES  # torch: the command runs the method next anyway

    if spec.template not in TEMPLATES:  # the plugin's slip, not a usage error of the user's
        raise PluginError(f"method {name} (plugin {registry.owner(name)}) names the alignment template "
                          f"{spec.template!r}; facetool has {', '.join(sorted(TEMPLATES))}")  # fmt: skip
    from ..evaluate import default_size
    from ..methods import resolve_weights

    return name, spec, default_size(spec, resolve_weights(spec, weights) if weights is not None else None, size)


def output_paths(
    inputs: list[Path], out: str | Path | None, suffix: str, ext: str, formats: Iterable[str] | None = None
) -> list[Path]:
    """Where each input's result goes.

    ``out`` is a folder when it ends in "/" (made if missing), already is one, or there are several inputs: each
    result is then ``<stem><suffix><ext>`` in it. Otherwise, with one input, ``out`` is the file, and its suffix
    must be one of ``formats`` (when given) — checked here, before any work. No ``out``: beside each input.
    The option is taken as a str where it can be: a Path drops the trailing "/" that marks a folder to be made.
    """
    if out is None:
        if any(p in _stdin_files for p in inputs):
            raise UsageError(STDIN_NEEDS_OUTPUT)
        return _unique([p.with_name(f"{p.stem}{suffix}{ext}") for p in inputs])
    text, path = str(out), Path(out)
    folder = text.endswith(("/", "\\")) or is_folder(path)
    if len(inputs) > 1 and not folder:
        if _exists(path):
            raise UsageError(f"-o {text}: with several inputs, -o must be a folder")
        folder = True
    if folder:
        return _unique([path / f"{p.stem}{suffix}{ext}" for p in inputs])
    if formats is not None:
        known = sorted(formats)
        if path.suffix.lower() not in known:
            what = f"suffix {path.suffix!r}" if path.suffix else "no suffix"
            raise UsageError(f"-o {text}: {what}; give a file ending in {', '.join(known)}, or a folder ending in /")
    return [path]


def is_folder(path: Path) -> bool:
    """``path.is_dir()`` that is False, not an OSError, for a name the file system cannot hold."""
    try:
        return path.is_dir()
    except OSError:  # a name too long for the file system: not a folder (prepare_outputs names the problem)
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _unique(paths: list[Path]) -> list[Path]:
    """Two inputs with one stem (a.jpg, a.png) must not write one file: number the later ones."""
    taken: set[Path] = set()
    result = []
    for p in paths:
        candidate, n = p, 1
        while candidate in taken:
            candidate = p.with_name(f"{p.stem}-{n}{p.suffix}")
            n += 1
        taken.add(candidate)
        result.append(candidate)
    return result


def join(items: Iterable[str]) -> str:
    return ", ".join(items) or "-"
