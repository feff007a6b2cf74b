"""Pieces the commands share: consoles, JSON output, progress, output-path rules."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from ..errors import UsageError

T = TypeVar("T")

# markup off: file names like "me [draft].png" must print as they are (rich would eat or choke on the brackets)
out = Console(soft_wrap=True, markup=False)
err = Console(stderr=True, soft_wrap=True, markup=False)


_NUMBER_LIST = re.compile(r"\[\s+([-+0-9.eE,\s]+?)\s+\]")


def print_json(data: Any) -> None:
    """Indented JSON with innermost number lists on one line (a point is ``[x, y]``, not four lines)."""
    text = json.dumps(data, indent=2, default=_jsonable)
    text = _NUMBER_LIST.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    sys.stdout.write(text + "\n")


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def progress(items: list[T], label: str) -> Iterator[T]:
    """A progress bar on stderr when there is more than one item and stderr is a terminal."""
    if len(items) < 2 or not err.is_terminal:
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=label, console=err, transient=True)


def task_method(method: str | None, task: str, size: int | None) -> tuple[str, Any, int]:
    """(name, spec, crop size) of the method a task command runs: ``--method`` or the task's default; UsageError for
    another task's method or a ``--size`` it does not run at."""
    from ..pipeline import default_name
    from ..plugins import get_host

    registry = get_host().generators
    name = method or default_name(registry, "method", task=task)
    spec = registry.get(name)
    if spec.task != task:
        raise UsageError(f"method {name} is a {spec.task} method; use facetool {spec.task}")
    size = spec.input_size if size is None else size
    if size not in spec.sizes:
        raise UsageError(f"--size {size}: method {name} runs at {', '.join(map(str, spec.sizes))}")
    return name, spec, size


def output_paths(inputs: list[Path], out: Path | None, suffix: str, ext: str) -> list[Path]:
    """Where each input's result goes.

    One input: ``out`` is the file (default ``<stem><suffix><ext>`` beside the input). Several inputs: ``out`` is a
    folder (created) and each result is ``<stem><suffix><ext>`` in it (default: beside each input).
    """
    if out is not None and len(inputs) > 1:
        if out.exists() and not out.is_dir():
            raise UsageError(f"-o {out}: with several inputs, -o must be a folder")
        return _unique([out / f"{p.stem}{suffix}{ext}" for p in inputs])
    if out is not None:
        if out.is_dir():
            return [out / f"{inputs[0].stem}{suffix}{ext}"]
        return [out]
    return _unique([p.with_name(f"{p.stem}{suffix}{ext}") for p in inputs])


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
