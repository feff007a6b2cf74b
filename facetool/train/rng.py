"""Capture and restore every random number generator a training run draws from, as plain JSON.

Exact resume needs the same data order and the same augmentations after a restart, so a checkpoint records the
global torch CPU RNG, each CUDA device's RNG, numpy's legacy global RNG (what ``np.random.rand`` draws from),
python's ``random`` and any named generators a method owns (a DataLoader's ``torch.Generator``, a
``np.random.Generator`` for augmentations, a ``random.Random``).

The state is plain JSON: byte states as base64, numpy arrays as lists with their dtype, tuples as lists.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng_state", "restore_rng_state", "seed_everything"]

Generator = torch.Generator | np.random.Generator | random.Random


def _bytes_to_text(state: torch.Tensor) -> str:
    return base64.b64encode(state.numpy().tobytes()).decode("ascii")


def _text_to_bytes(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


def _numpy_to_json(value: Any) -> Any:
    """numpy bit-generator states hold dicts, ints and (for MT19937) a uint32 key array."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {k: _numpy_to_json(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_to_numpy(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"])
        return {k: _json_to_numpy(v) for k, v in value.items()}
    return value


def _python_to_json(state: tuple) -> list:
    version, internal, gauss_next = state
    return [version, list(internal), gauss_next]


def _json_to_python(state: list) -> tuple:
    version, internal, gauss_next = state
    return (version, tuple(internal), gauss_next)


def _capture_one(generator: Generator) -> dict[str, Any]:
    if isinstance(generator, torch.Generator):
        return {"kind": "torch", "state": _bytes_to_text(generator.get_state())}
    if isinstance(generator, np.random.Generator):
        return {"kind": "numpy", "state": _numpy_to_json(generator.bit_generator.state)}
    if isinstance(generator, random.Random):
        return {"kind": "python", "state": _python_to_json(generator.getstate())}
    raise TypeError(f"cannot capture the state of a {type(generator).__name__} (not a torch/numpy/python generator)")


def _restore_one(generator: Generator, record: dict[str, Any]) -> None:
    kind = record["kind"]
    if isinstance(generator, torch.Generator) and kind == "torch":
        generator.set_state(_text_to_bytes(record["state"]))
    elif isinstance(generator, np.random.Generator) and kind == "numpy":
        generator.bit_generator.state = _json_to_numpy(record["state"])
    elif isinstance(generator, random.Random) and kind == "python":
        generator.setstate(_json_to_python(record["state"]))
    else:
        raise TypeError(f"a saved {kind} generator state cannot go into a {type(generator).__name__}")


def capture_rng_state(generators: Mapping[str, Generator] | None = None) -> dict[str, Any]:
    """The global RNGs' states (and those of ``generators``, by name) as a JSON-able dict.

    CUDA states are captured only where CUDA is available (capturing initialises it).
    """
    state: dict[str, Any] = {
        "torch": _bytes_to_text(torch.get_rng_state()),
        "numpy": _numpy_to_json(np.random.get_state(legacy=False)),
        "python": _python_to_json(random.getstate()),
    }
    if torch.cuda.is_available():
        state["torch_cuda"] = [_bytes_to_text(s) for s in torch.cuda.get_rng_state_all()]
    if generators:
        state["generators"] = {name: _capture_one(g) for name, g in generators.items()}
    return state


def restore_rng_state(state: Mapping[str, Any], generators: Mapping[str, Generator] | None = None) -> list[str]:
    """Put back what :func:`capture_rng_state` captured; returns what could not be restored (one line each).

    Missing parts are reported, not fatal: a run resumed on a machine without the saved CUDA devices still trains,
    only not bit-identically.
    """
    skipped: list[str] = []
    if "torch" in state:
        torch.set_rng_state(_text_to_bytes(state["torch"]))
    if "numpy" in state:
        np.random.set_state(_json_to_numpy(state["numpy"]))
    if "python" in state:
        random.setstate(_json_to_python(state["python"]))
    cuda_states = state.get("torch_cuda") or []
    if cuda_states:
        if torch.cuda.is_available() and torch.cuda.device_count() == len(cuda_states):
            torch.cuda.set_rng_state_all([_text_to_bytes(s) for s in cuda_states])
        else:
            skipped.append(f"CUDA RNG states of {len(cuda_states)} device(s) not restored (devices differ)")
    saved = state.get("generators") or {}
    for name, generator in (generators or {}).items():
        if name in saved:
            _restore_one(generator, saved[name])
        else:
            skipped.append(f"generator {name!r} has no saved state")
    return skipped


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's global RNG and python's ``random`` with one number."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
