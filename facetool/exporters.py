"""Exporter specs: output formats (model files, meshes) plugins register through ``register_exporters``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class ExporterSpec:
    """An output format.

    Attributes:
        name: what ``facetool export --format`` takes (model exporters); mesh exporters are chosen by suffix.
        kind: ``model`` (a method's network) or ``mesh`` (``facetool reconstruct -o face.SUFFIX``).
        suffixes: the file suffixes it writes, lower-case with the dot (``(".onnx",)``); the first is the default.
        export: writes ``obj`` to ``path`` atomically (a temp file beside it, renamed at the end: a failure must
            leave no partial file) —
            model: ``export(net, path, *, sample, opset, dynamic) -> report``; ``net`` the method's
            ``MethodSpec.network`` (CPU, fp32, eval), ``sample`` a (1, 3, S, S) tensor in [0, 1] to trace with;
            ``report`` a dict with ``path``, ``bytes``, ``opset`` and ``inputs`` / ``outputs`` (lists of
            ``{"name", "shape"}``), optionally ``checks``, ``max_abs_diff``, ``tolerance``;
            mesh: ``export(mesh, path)``, ``mesh`` a :class:`facetool.export.mesh.Mesh`.
        description: one line for ``facetool plugins`` and ``facetool export --help``.
    """

    name: str
    kind: Literal["model", "mesh"]
    suffixes: tuple[str, ...]
    export: Callable[..., Any]
    description: str

    def __post_init__(self) -> None:
        if self.kind not in ("model", "mesh"):
            raise ValueError(f"exporter {self.name}: kind must be 'model' or 'mesh', not {self.kind!r}")
        if not self.suffixes or not all(isinstance(x, str) and x.startswith(".") and x == x.lower()
                                        for x in self.suffixes):  # fmt: skip
            raise ValueError(f"exporter {self.name}: suffixes are lower-case, with a dot, not {self.suffixes!r}")
