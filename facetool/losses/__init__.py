"""Loss specs: named losses plugins register through ``register_losses`` and trainers look up by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LossSpec:
    """``build(**kwargs)`` returns an ``nn.Module`` (or callable) computing the loss."""

    name: str
    build: Callable[..., Any]
    description: str
