"""Typed option schemas (dataclasses) that plugins declare and the CLI exposes as ``-O key=value``."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any

from .errors import UsageError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(raw: str, typ: Any, key: str, what: str) -> Any:
    origin = typing.get_origin(typ)
    if origin is typing.Literal:
        choices = typing.get_args(typ)
        if raw not in [str(c) for c in choices]:
            raise UsageError(f"{what}: option {key} must be one of {', '.join(map(str, choices))}, not {raw!r}")
        return next(c for c in choices if str(c) == raw)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if raw.lower() in ("none", "") and len(args) < len(typing.get_args(typ)):
            return None
        return _convert(raw, args[0], key, what)
    try:
        if typ is bool:
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise ValueError
        if typ in (int, float, str):
            value = typ(raw)
            if typ is float and not math.isfinite(value):
                raise UsageError(f"{what}: option {key} must be a finite number, not {raw!r}")
            return value
    except ValueError:
        raise UsageError(f"{what}: option {key} expects {typ.__name__}, got {raw!r}") from None
    return raw


def parse_options(
    schema: type | None, pairs: list[str] | None, what: str, base: Mapping[str, Any] | None = None
) -> Any:
    """Build an instance of the dataclass ``schema`` from ``["key=value", ...]``; unknown keys are usage errors.

    ``base``: values to start from instead of the defaults (keys the schema lacks are dropped)."""
    pairs = pairs or []
    if schema is None:
        if pairs:
            raise UsageError(f"{what} takes no options (got {pairs[0]!r})")
        return None
    hints = typing.get_type_hints(schema)
    fields = {f.name.replace("_", "-"): f for f in dataclasses.fields(schema)}
    values: dict[str, Any] = {f.name: (base or {})[f.name] for f in fields.values() if f.name in (base or {})}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("_", "-")
        if key in fields and not sep:
            raise UsageError(f"{what}: {pair!r} needs a value: {key}=VALUE")
        if not sep or key not in fields:
            known = ", ".join(fields) or "none"
            named = repr(key) if sep else repr(pair)
            raise UsageError(f"{what}: unknown option {named} (expected key=value; options: {known})")
        f = fields[key]
        values[f.name] = _convert(raw.strip(), hints[f.name], key, what)
    try:
        return schema(**values)
    except (TypeError, ValueError) as err:
        raise UsageError(f"{what}: {err}") from None


def describe_options(schema: type | None) -> list[dict[str, Any]]:
    """JSON-ready description of a schema: name, type, default, help (from ``field(metadata={"help": ...})``)."""
    if schema is None:
        return []
    hints = typing.get_type_hints(schema)
    out = []
    for f in dataclasses.fields(schema):
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        typ = hints[f.name]
        choices = typing.get_args(typ) if typing.get_origin(typ) is typing.Literal else ()
        out.append(
            {
                "name": f.name.replace("_", "-"),
                # a choice lists its values: "Literal" alone does not say what -O key= takes
                "type": " | ".join(map(str, choices))
                if choices
                else getattr(typ, "__name__", str(typ).replace("typing.", "")),
                "default": default,
                "help": f.metadata.get("help", ""),
            }
        )
    return out
