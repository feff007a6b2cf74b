"""The shared losses facetool registers itself (through the core's ``register_losses`` hook).

Specs are cheap: each ``build`` imports its module (and so torch) only when a trainer builds the loss, so listing
plugins stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from . import LossSpec


def _lazy(module: str, name: str, *args: Any) -> Callable[..., Any]:
    def build(*more: Any, **kwargs: Any) -> Any:
        return getattr(import_module(f"facetool.losses.{module}"), name)(*args, *more, **kwargs)

    return build


BUILTIN_LOSSES = (
    LossSpec("gan-vanilla", _lazy("gan", "GANLoss", "vanilla"), "adversarial, BCE with logits (non-saturating G)"),
    LossSpec("gan-lsgan", _lazy("gan", "GANLoss", "lsgan"), "adversarial, least squares to 1 (real) and 0 (fake)"),
    LossSpec("gan-wgan", _lazy("gan", "GANLoss", "wgan"), "adversarial, Wasserstein critic (+ gradient-penalty)"),
    LossSpec("gan-hinge", _lazy("gan", "GANLoss", "hinge"), "adversarial, hinge on D, -D(fake) on G"),
    LossSpec("gradient-penalty", _lazy("gan", "GradientPenalty"), "WGAN-GP penalty on real/fake interpolates"),
    LossSpec("l1", _lazy("image", "L1Loss"), "mean absolute error"),
    LossSpec("gradient-l1", _lazy("image", "GradientL1Loss"), "L1 between x/y image gradients (forward differences)"),
    LossSpec("masked-l1", _lazy("image", "MaskedL1Loss"), "mean absolute error over a weight mask"),
    LossSpec("chamfer-dt", _lazy("image", "ChamferDTLoss"), "APDrawingGAN distance-transform chamfer loss, both ways"),
)


def register_builtin_losses(register: Callable[[LossSpec], Any]) -> None:
    """Call ``register(spec)`` for each built-in loss (the ``register_losses`` hook's callback)."""
    for spec in BUILTIN_LOSSES:
        register(spec)
