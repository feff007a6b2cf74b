"""The shared losses facetool registers itself; the lead wires :func:`register_builtin_losses` into the host."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from . import LossSpec
from .gan import GANLoss, GradientPenalty
from .image import ChamferDTLoss, GradientL1Loss, L1Loss, MaskedL1Loss

BUILTIN_LOSSES = (
    LossSpec("gan-vanilla", partial(GANLoss, "vanilla"), "adversarial, BCE with logits (non-saturating G)"),
    LossSpec("gan-lsgan", partial(GANLoss, "lsgan"), "adversarial, least squares to 1 (real) and 0 (fake)"),
    LossSpec("gan-wgan", partial(GANLoss, "wgan"), "adversarial, Wasserstein critic (pair with gradient-penalty)"),
    LossSpec("gan-hinge", partial(GANLoss, "hinge"), "adversarial, hinge on D, -D(fake) on G"),
    LossSpec("gradient-penalty", GradientPenalty, "WGAN-GP penalty on per-sample real/fake interpolates"),
    LossSpec("l1", L1Loss, "mean absolute error"),
    LossSpec("gradient-l1", GradientL1Loss, "L1 between x/y image gradients (forward differences)"),
    LossSpec("masked-l1", MaskedL1Loss, "mean absolute error over a weight mask"),
    LossSpec("chamfer-dt", ChamferDTLoss, "APDrawingGAN distance-transform chamfer loss, differentiable both ways"),
)


def register_builtin_losses(register: Callable[[LossSpec], Any]) -> None:
    """Call ``register(spec)`` for each built-in loss (the ``register_losses`` hook's callback)."""
    for spec in BUILTIN_LOSSES:
        register(spec)
