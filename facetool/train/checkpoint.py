"""Self-describing, crash-safe training checkpoints: safetensors and JSON only.

A checkpoint is a folder ``RUN/checkpoints/step-000120/``::

    weights.safetensors   every net's state dict, keys prefixed by the net name ("G.", "D_A." ...)
    optim.safetensors     optimiser / scheduler / scaler tensors ("<opt>.<param_index>.<key>")
    optim.json            everything else of their state dicts (param groups, step counts, scheduler state)
    state.json            method, versions, step, epoch, typed net configs, options, preprocessing,
                          loss-history tail, wall time, RNG states
    complete.json         written last: each file's size and sha256; a folder without it is not a checkpoint

``RUN/checkpoints/latest`` is a one-line text file naming the newest complete checkpoint.

Crash safety: everything is written into ``step-000120.tmp-<pid>/`` and fsynced, the folder is renamed into place
(atomic), then ``latest`` is replaced (atomic). Older checkpoints are pruned only after that, by renaming them aside
first, so a kill at any moment leaves ``latest`` (or, failing it, the newest complete folder) loadable. Leftover
``.tmp-*`` / ``.old-*`` folders of dead processes are removed at the next save.

Nothing here deserialises code: tensors are read with safetensors' ``load_file`` and the rest with ``json``, so a
checkpoint from a stranger cannot run code.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib
import json
import os
import re
import shutil
import sys
import typing
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save as safetensors_bytes
from torch import nn

from .. import __version__
from ..errors import FacetoolError, UsageError
from .average import AVERAGE, split_average
from .rng import Generator, capture_rng_state, restore_rng_state

__all__ = [
    "FORMAT_VERSION",
    "TrainState",
    "config_from_record",
    "config_record",
    "export_weights",
    "latest_checkpoint",
    "load_checkpoint",
    "load_weights",
    "read_net_weights",
    "read_state",
    "save_checkpoint",
    "split_nets",
]

FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
OPTIM_TENSORS = "optim.safetensors"
OPTIM_JSON = "optim.json"
STATE = "state.json"
MARKER = "complete.json"
LATEST = "latest"
#: Loss-history entries kept in state.json: enough to redraw recent curves, small enough to read instantly.
HISTORY_TAIL = 1000

_STEP_DIR = re.compile(r"^step-(\d+)$")
_LEFTOVER_DIR = re.compile(r"^step-\d+\.(?:tmp|old)-(\d+)$")


# --------------------------------------------------------------------------------------------- state and configs


@dataclass
class TrainState:
    """Everything about a run that is not a tensor; ``state.json`` of a checkpoint.

    ``configs`` maps each net name to its typed config: a dataclass instance (turned into a record at save time)
    or a record ``{"type": "module:QualName", "values": {...}}`` (what loading gives back; :meth:`config` rebuilds
    the dataclass). The fields after ``extra`` are filled in by :func:`save_checkpoint`.
    """

    method: str
    method_version: str = "1"
    step: int = 0
    epoch: int = 0
    configs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    facetool_version: str = ""
    nets: dict[str, dict[str, Any]] = field(default_factory=dict)
    rng: dict[str, Any] = field(default_factory=dict)
    saved_at: str = ""
    #: The checkpoint folder this state was read from (not saved).
    path: Path | None = field(default=None, compare=False, repr=False)

    def config(self, name: str) -> Any:
        """Net ``name``'s config, rebuilt as its dataclass (a plain dict when the record names no type)."""
        if name not in self.configs:
            raise FacetoolError(f"the checkpoint has no config for net {name!r} (it has: {_names(self.configs)})")
        value = self.configs[name]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return value
        return config_from_record(value)


def config_record(config: Any) -> dict[str, Any]:
    """``{"type": "module:QualName", "values": asdict(config)}`` for a dataclass; plain dicts get type None."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        cls = type(config)
        return {"type": f"{cls.__module__}:{cls.__qualname__}", "values": _jsonable(dataclasses.asdict(config))}
    if isinstance(config, Mapping) and set(config) == {"type", "values"}:
        return dict(config)
    if isinstance(config, Mapping):
        return {"type": None, "values": _jsonable(dict(config))}
    raise TypeError(f"a net config must be a dataclass or a dict, not {type(config).__name__}")


def config_from_record(record: Mapping[str, Any]) -> Any:
    """The dataclass a :func:`config_record` describes (nested dataclasses and tuples restored from their hints).

    Keys the dataclass no longer has are dropped; fields it gained take their defaults.
    """
    type_name, values = record.get("type"), record.get("values", {})
    if not type_name:
        return dict(values)
    module_name, _, qualname = type_name.partition(":")
    top = module_name.partition(".")[0]
    if top != "facetool" and top not in sys.modules:
        # importing runs code: a file may name facetool's modules or those of packages already loaded (plugins)
        raise FacetoolError(f"the config type {type_name} is not from facetool or a loaded plugin")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as err:
        raise FacetoolError(f"the config type {type_name} is not available here (is its plugin installed?)") from err
    if not (isinstance(target, type) and dataclasses.is_dataclass(target)):
        raise FacetoolError(f"the config type {type_name} is not a dataclass")
    return _build_dataclass(target, values)


def _build_dataclass(cls: type, values: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {f.name: _coerce(hints.get(f.name), values[f.name]) for f in dataclasses.fields(cls) if f.name in values}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any) -> Any:
    """JSON gives dicts and lists back; the type hint says where a dataclass or a tuple was."""
    if hint is None or value is None:
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return _build_dataclass(hint, value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v) for v in value)
        return tuple(_coerce(a, v) for a, v in zip(args, value, strict=False)) if args else tuple(value)
    if origin is list and isinstance(value, list) and args:
        return [_coerce(args[0], v) for v in value]
    if origin is not None and args and origin not in (dict, list, tuple):  # Optional / Union: the first that fits
        for arg in args:
            if arg is type(None):
                continue
            coerced = _coerce(arg, value)
            if coerced is not value:
                return coerced
    return value


def _jsonable(value: Any) -> Any:
    """Options, history and extras as JSON values: numpy / 0-d tensor scalars to numbers, paths to strings."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, Enum):
        return _jsonable(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a checkpoint's JSON: {value!r:.80}")


# ------------------------------------------------------------------------------------ optimiser state as JSON + tensors


def _encode(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A state dict as JSON with its tensors moved into ``tensors`` under ``path``-derived names.

    Tuples and non-string dict keys (optimiser state is keyed by param index) are marked so that decoding gives
    back exactly what ``load_state_dict`` was handed.
    """
    if isinstance(value, torch.Tensor):
        if path in tensors:
            raise ValueError(f"two optimiser-state tensors would be stored as {path!r}")
        tensors[path] = value
        return {"__tensor__": path}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v, f"{path}.{k}", tensors) for k, v in value.items()}
        return {"__items__": [[_encode(k, path, {}), _encode(v, f"{path}.{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {path} (a {type(value).__name__}) as JSON or a tensor")


def _decode(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__tuple__" in value:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        if "__items__" in value:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in value["__items__"]}
        return {k: _decode(v, tensors) for k, v in value.items()}
    return value


def _encode_optimizer(name: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> dict:
    state_dict = optimizer.state_dict()
    # "<opt>.<param_index>.<key>" for the per-parameter state, "<opt>.param_groups.<i>.<key>" for tensor hyper-params.
    return {
        "state": _encode(state_dict["state"], name, tensors),
        "param_groups": _encode(state_dict["param_groups"], f"{name}.param_groups", tensors),
    }


# ------------------------------------------------------------------------------------------------- tensors to disk


def _safetensors_ready(named: Iterable[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """CPU, contiguous, no two sharing memory (tied weights get a copy): what safetensors accepts."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, tensor in named:
        tensor = tensor.detach().cpu().contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer and pointer in seen:
            tensor = tensor.clone()
            pointer = tensor.untyped_storage().data_ptr()
        seen.add(pointer)
        out[key] = tensor
    return out


def _net_tensors(nets: Mapping[str, nn.Module | Mapping[str, torch.Tensor]], dtype: torch.dtype | None = None):
    for name, net in nets.items():
        if "." in name or not name:
            raise ValueError(f"a net name must be non-empty and have no '.': {name!r}")
        state_dict = net.state_dict() if isinstance(net, nn.Module) else net
        for key, tensor in state_dict.items():
            if dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(dtype)
            yield f"{name}.{key}", tensor


def _write_file(path: Path, data: bytes) -> dict[str, Any]:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=1) + "\n").encode("utf-8")


def _fsync_dir(path: Path) -> None:
    """Make a rename / new file in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    _write_file(tmp, data)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


# ------------------------------------------------------------------------------------------------------------ save


def _checkpoints_dir(run_dir: str | os.PathLike) -> Path:
    run = Path(run_dir)
    # Tolerate being handed RUN/checkpoints itself.
    if run.name == "checkpoints" and not (run / "checkpoints").exists():
        return run
    return run / "checkpoints"


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftover from an earlier, failed save
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _clean_leftovers(root: Path) -> None:
    """Remove .tmp-/.old- folders of dead processes and step folders without their completion marker."""
    for entry in root.iterdir():
        if not entry.is_dir():
            if entry.name.startswith(f"{LATEST}.tmp-"):
                entry.unlink(missing_ok=True)
            continue
        leftover = _LEFTOVER_DIR.match(entry.name)
        dead_leftover = leftover is not None and not _process_alive(int(leftover.group(1)))
        incomplete = _STEP_DIR.match(entry.name) is not None and not (entry / MARKER).is_file()
        if dead_leftover or incomplete:
            _remove_dir(entry)


def _complete_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint under ``root``, oldest step first."""
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = _STEP_DIR.match(entry.name)
        if match and (entry / MARKER).is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def _retire(folder: Path) -> None:
    """Delete a checkpoint folder; renamed aside first so a kill mid-delete never leaves a half folder that looks
    complete."""
    aside = folder.with_name(f"{folder.name}.old-{os.getpid()}")
    _remove_dir(aside)
    os.rename(folder, aside)
    _remove_dir(aside)


def save_checkpoint(
    run_dir: str | os.PathLike,
    state: TrainState,
    nets: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    schedulers: Mapping[str, Any] | None = None,
    scaler: Any = None,
    keep: int | None = 3,
    generators: Mapping[str, Generator] | None = None,
) -> Path:
    """Write ``RUN/checkpoints/step-XXXXXX/`` atomically, point ``latest`` at it, keep the newest ``keep``.

    ``state`` is not modified: the saved copy gets the facetool version, the nets' sizes, the RNG states (global
    ones plus ``generators``), the time, and only the last :data:`HISTORY_TAIL` history entries.
    ``keep=None`` (or 0) keeps every checkpoint. Returns the checkpoint folder.
    """
    optimizers, schedulers = optimizers or {}, schedulers or {}
    root = _checkpoints_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(root)

    name = f"step-{int(state.step):06d}"
    tmp = root / f"{name}.tmp-{os.getpid()}"
    _remove_dir(tmp)
    tmp.mkdir()
    files: dict[str, dict[str, Any]] = {}

    weights = _safetensors_ready(_net_tensors(nets))
    metadata = {
        "format": "facetool-checkpoint",
        "format_version": str(FORMAT_VERSION),
        "method": state.method,
        "step": str(state.step),
        "nets": ",".join(nets),
    }
    files[WEIGHTS] = _write_file(tmp / WEIGHTS, safetensors_bytes(weights, metadata=metadata))

    optim_tensors: dict[str, torch.Tensor] = {}
    optim_json = {
        "format_version": FORMAT_VERSION,
        "optimizers": {n: _encode_optimizer(n, opt, optim_tensors) for n, opt in optimizers.items()},
        "schedulers": {n: _encode(s.state_dict(), f"lr_scheduler.{n}", optim_tensors) for n, s in schedulers.items()},
        "scaler": _encode(scaler.state_dict(), "grad_scaler", optim_tensors) if scaler is not None else None,
    }
    optim_bytes = safetensors_bytes(_safetensors_ready(optim_tensors.items()), metadata={"format_version": "1"})
    files[OPTIM_TENSORS] = _write_file(tmp / OPTIM_TENSORS, optim_bytes)
    files[OPTIM_JSON] = _write_file(tmp / OPTIM_JSON, _json_bytes(optim_json))

    saved = dataclasses.replace(
        state,
        configs={n: config_record(c) for n, c in state.configs.items()},
        history=list(state.history[-HISTORY_TAIL:]),
        facetool_version=__version__,
        nets={n: _net_summary(net) for n, net in nets.items()},
        rng=capture_rng_state(generators),
        saved_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    files[STATE] = _write_file(tmp / STATE, _json_bytes(_state_to_json(saved)))
    _write_file(tmp / MARKER, _json_bytes({"format": "facetool-checkpoint", "format_version": 1, "files": files}))
    _fsync_dir(tmp)

    final = root / name
    if final.exists():  # the same step saved again (a resumed run): the new one wins
        _retire(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    _atomic_write(root / LATEST, f"{name}\n".encode())

    if keep:
        for _, folder in _complete_checkpoints(root)[:-keep]:
            if folder != final:
                _retire(folder)
    return final


def _net_summary(net: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, Any]:
    tensors = net.state_dict() if isinstance(net, nn.Module) else net
    dtypes = sorted({str(t.dtype).removeprefix("torch.") for t in tensors.values() if t.is_floating_point()})
    summary: dict[str, Any] = {"tensors": len(tensors), "dtypes": dtypes}
    if isinstance(net, nn.Module):
        summary["parameters"] = sum(p.numel() for p in net.parameters())
        summary["class"] = f"{type(net).__module__}:{type(net).__qualname__}"
    return summary


def _state_to_json(state: TrainState) -> dict[str, Any]:
    body = {f.name: getattr(state, f.name) for f in dataclasses.fields(state) if f.name != "path"}
    return {"format": "facetool-checkpoint", "format_version": FORMAT_VERSION, **_jsonable(body)}


# ------------------------------------------------------------------------------------------------------------ load


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint of a run: the one ``latest`` names, else the highest complete step; None."""
    root = _checkpoints_dir(run_dir)
    try:
        named = (root / LATEST).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        named = ""
    if _STEP_DIR.match(named) and (root / named / MARKER).is_file():
        return root / named
    complete = _complete_checkpoints(root)
    return complete[-1][1] if complete else None


def _resolve(path_or_run_dir: str | os.PathLike) -> Path:
    """A checkpoint folder from itself, a run folder or a run's checkpoints folder; FacetoolError otherwise."""
    path = Path(path_or_run_dir)
    if not path.exists():
        raise FacetoolError(f"{path} does not exist (expected a run folder or a checkpoint folder)")
    if path.is_file():
        raise FacetoolError(f"{path} is a file, not a checkpoint folder (a checkpoint is RUN/checkpoints/step-N/)")
    if (path / MARKER).is_file():
        return path
    if (path / STATE).is_file() or _LEFTOVER_DIR.match(path.name):
        raise FacetoolError(f"{path} is an incomplete checkpoint (its save was interrupted); use an earlier one")
    found = latest_checkpoint(path)
    if found is not None:
        return found
    if _checkpoints_dir(path).is_dir():
        raise FacetoolError(f"{path} has no complete checkpoint yet")
    raise FacetoolError(f"{path} is not a facetool checkpoint or run folder")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _corrupt(folder: Path, file: str, why: str) -> FacetoolError:
    return FacetoolError(f"checkpoint {folder} is corrupt: {file}: {why}")


def _read_json(folder: Path, file: str) -> Any:
    try:
        return json.loads((folder / file).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise _corrupt(folder, file, "missing") from err
    except (OSError, ValueError) as err:
        raise _corrupt(folder, file, _first_line(err)) from err


def _read_tensors(path: Path, folder: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise _corrupt(folder, path.name, "missing")
    try:
        return load_safetensors(path, device="cpu")
    except Exception as err:  # safetensors raises its own error types for truncated / garbled files
        raise _corrupt(folder, path.name, _first_line(err)) from err


def _state_from_json(data: Any, folder: Path) -> TrainState:
    if not isinstance(data, dict) or data.get("format") != "facetool-checkpoint":
        raise FacetoolError(f"{folder} is not a facetool checkpoint ({STATE} is not one)")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise FacetoolError(
            f"{folder} was written by a newer facetool (checkpoint format {version}, this one reads "
            f"{FORMAT_VERSION}); upgrade facetool"
        )
    known = {f.name for f in dataclasses.fields(TrainState)} - {"path"}
    try:
        return TrainState(**{k: v for k, v in data.items() if k in known}, path=folder)
    except TypeError as err:
        raise _corrupt(folder, STATE, _first_line(err)) from err


def read_state(path_or_run_dir: str | os.PathLike) -> TrainState:
    """The run state of a checkpoint (``state.json`` only: cheap, for listing, evaluation and export)."""
    folder = _resolve(path_or_run_dir)
    return _state_from_json(_read_json(folder, STATE), folder)


def _verify_files(folder: Path, full: bool) -> None:
    """Sizes always (cheap); sha256 too when ``full``: catches truncated and bit-rotted files."""
    marker = _read_json(folder, MARKER)
    for file, expected in (marker.get("files") or {}).items():
        path = folder / file
        if not path.is_file():
            raise _corrupt(folder, file, "missing")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise _corrupt(folder, file, f"{size} bytes, expected {expected['bytes']}")
        if full:
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda h=handle: h.read(1 << 22), b""):
                    digest.update(block)
            if digest.hexdigest() != expected["sha256"]:
                raise _corrupt(folder, file, "sha256 mismatch")


def split_nets(weights: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """``{"G.conv.weight": t, …}`` -> ``{"G": {"conv.weight": t}, …}``."""
    per_net: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in weights.items():
        name, _, rest = key.partition(".")
        per_net.setdefault(name, {})[rest] = tensor
    return per_net


def _names(items: Iterable[str]) -> str:
    return ", ".join(sorted(items)) or "none"


def _few(keys: Iterable[str], limit: int = 3) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return f"{shown} (+{len(keys) - limit} more)" if len(keys) > limit else shown


def _match_nets(
    where: Path, saved: Mapping[str, Mapping[str, torch.Tensor]], nets: Mapping[str, nn.Module], strict: bool
) -> None:
    """Raise before anything is loaded if a net is absent or its keys / shapes differ."""
    for name, net in nets.items():
        if name not in saved:
            raise FacetoolError(f"{where} has no net {name!r} (it holds: {_names(saved)})")
        have, want = saved[name], net.state_dict()
        missing, unexpected = set(want) - set(have), set(have) - set(want)
        if strict and (missing or unexpected):
            parts = [f"missing {_few(f'{name}.{k}' for k in missing)}"] if missing else []
            parts += [f"unexpected {_few(f'{name}.{k}' for k in unexpected)}"] if unexpected else []
            raise FacetoolError(f"{where}: net {name!r} does not match the checkpoint: {'; '.join(parts)}")
        shapes = [k for k in set(want) & set(have) if tuple(want[k].shape) != tuple(have[k].shape)]
        if shapes:
            first = sorted(shapes)[0]
            raise FacetoolError(
                f"{where}: net {name!r} does not match the checkpoint: {name}.{first} is "
                f"{tuple(have[first].shape)} there, {tuple(want[first].shape)} here"
                + (f" (+{len(shapes) - 1} more)" if len(shapes) > 1 else "")
            )


def load_checkpoint(
    path_or_run_dir: str | os.PathLike,
    nets: Mapping[str, nn.Module] | None = None,
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    schedulers: Mapping[str, Any] | None = None,
    scaler: Any = None,
    expect_method: str | None = None,
    generators: Mapping[str, Generator] | None = None,
    restore_rng: bool = True,
    strict: bool = True,
    verify: bool = True,
) -> TrainState:
    """Load a checkpoint (a folder, or a run's latest) into the given objects; returns its :class:`TrainState`.

    Everything is read and checked (file sizes and sha256 with ``verify``, net names, keys and shapes) before any
    object is touched. With ``restore_rng`` the global RNGs and ``generators`` continue exactly where the saved run
    was, so continuing training reproduces an uninterrupted run bit for bit. ``strict=False`` tolerates missing /
    extra net keys (not shape mismatches). Raises FacetoolError (UsageError for a checkpoint of another method).
    """
    nets, optimizers, schedulers = nets or {}, optimizers or {}, schedulers or {}
    folder = _resolve(path_or_run_dir)
    state = _state_from_json(_read_json(folder, STATE), folder)
    if expect_method is not None and state.method != expect_method:
        raise UsageError(f"{path_or_run_dir} holds a checkpoint of method {state.method}, not {expect_method}")
    _verify_files(folder, full=verify)

    saved_nets = split_nets(_read_tensors(folder / WEIGHTS, folder)) if nets else {}
    _match_nets(folder, saved_nets, nets, strict)

    optim: dict[str, Any] = {}
    if optimizers or schedulers or scaler is not None:
        optim_json = _read_json(folder, OPTIM_JSON)
        optim_tensors = _read_tensors(folder / OPTIM_TENSORS, folder)
        try:
            optim = _decode(optim_json, optim_tensors)
        except KeyError as err:
            raise _corrupt(folder, OPTIM_TENSORS, f"tensor {err} is missing") from err
        for kind, wanted in (("optimizers", optimizers), ("schedulers", schedulers)):
            absent = set(wanted) - set(optim.get(kind) or {})
            if absent:
                raise FacetoolError(f"{folder} has no {kind[:-1]} {_few(absent)} (it holds: {_names(optim[kind])})")

    for name, net in nets.items():
        net.load_state_dict(saved_nets[name], strict=strict)
    for name, optimizer in optimizers.items():
        try:
            optimizer.load_state_dict(optim["optimizers"][name])
        except (ValueError, KeyError) as err:
            why = _first_line(err)
            raise FacetoolError(f"{folder}: optimizer {name!r} does not fit the checkpoint: {why}") from err
    for name, scheduler in schedulers.items():
        scheduler.load_state_dict(optim["schedulers"][name])
    if scaler is not None and optim.get("scaler"):  # a disabled scaler saves {} and refuses to load it
        scaler.load_state_dict(optim["scaler"])
    if restore_rng and state.rng:
        skipped = restore_rng_state(state.rng, generators)
        if skipped:  # training goes on, only not bit-identically: say so, don't fail
            warnings.warn(f"{folder}: " + "; ".join(skipped), stacklevel=2)
    return state


# ------------------------------------------------------------------------------------------------ shipping weights


def read_net_weights(
    path_or_run_dir: str | os.PathLike, names: Iterable[str] | None = None
) -> dict[str, dict[str, torch.Tensor]]:
    """Per-net state dicts of a checkpoint (all nets, or ``names``), without building any module."""
    folder = _resolve(path_or_run_dir)
    _verify_files(folder, full=False)
    per_net = split_nets(_read_tensors(folder / WEIGHTS, folder))
    if names is None:
        return per_net
    absent = [n for n in names if n not in per_net]
    if absent:
        raise FacetoolError(f"{folder} has no net {_few(absent)} (it holds: {_names(per_net)})")
    return {n: per_net[n] for n in names}


def export_weights(
    path: str | os.PathLike,
    nets: Mapping[str, nn.Module | Mapping[str, torch.Tensor]],
    dtype: torch.dtype | None = None,
    state: TrainState | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """One ``.safetensors`` of the nets (keys "G.…"), floating tensors cast to ``dtype`` (fp16 halves the size).

    With ``state`` the file describes itself: method, its version and the exported nets' config records go into
    the metadata (JSON strings), so it can be rebuilt without the run. Written atomically.
    """
    path = Path(path)
    info = {
        "format": "facetool-weights",
        "format_version": str(FORMAT_VERSION),
        "nets": ",".join(nets),
        "dtype": str(dtype).removeprefix("torch.") if dtype is not None else "as-trained",
    }
    if state is not None:
        configs = {n: config_record(c) for n, c in state.configs.items() if n in nets}
        info |= {
            "method": state.method,
            "method_version": str(state.method_version),
            "step": str(state.step),
            "configs": json.dumps(configs),
            "preprocessing": json.dumps(_jsonable(state.preprocessing)),
        }
    info |= dict(metadata or {})
    tensors = _safetensors_ready(_net_tensors(nets, dtype))
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, safetensors_bytes(tensors, metadata=info))
    return path


def load_weights(
    path: str | os.PathLike, nets: Mapping[str, nn.Module], strict: bool = True, raw: bool = False
) -> dict[str, str]:
    """Load nets from an exported weights file or a checkpoint (tensors cast to each net's dtype); its metadata.

    A checkpoint of a run that keeps a weight average (``--average``) gives the averaged nets, as the run exports
    them; ``raw``: the nets as trained."""
    path = Path(path)
    if path.is_dir():
        folder = _resolve(path)
        _verify_files(folder, full=False)
        file = folder / WEIGHTS
    elif path.is_file():
        folder, file = path, path
    else:
        raise FacetoolError(f"{path} does not exist")
    saved = split_nets(_read_tensors(file, folder))
    if AVERAGE in saved and not raw:
        saved |= split_average(saved[AVERAGE])
    _match_nets(file, saved, nets, strict)
    for name, net in nets.items():
        net.load_state_dict(saved[name], strict=strict)
    with safe_open(file, framework="pt") as handle:
        return dict(handle.metadata() or {})
