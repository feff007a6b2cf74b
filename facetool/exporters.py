"""Exporter specs: output formats (model files, meshes) plugins register through ``register_exporters``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class ExporterSpec:
    """``export(obj, path, **kwargs)`` writes ``obj`` (a model or a mesh, per ``kind``) to ``path`` atomically."""

    name: str
    kind: Literal["model", "mesh"]
    suffixes: tuple[str, ...]
    export: Callable[..., Any]
    description: str
