"""Settings shared by the GAN methods' option dataclasses; torch-free, because plugins hand those classes to
the CLI when they register."""

from __future__ import annotations

import math
from typing import Literal

GanMode = Literal["vanilla", "lsgan", "wgan", "hinge"]


def check_gan_training(lr: float, beta1: float, decay_from: float, gan_mode: str) -> None:
    """ValueError (named as its ``-T`` option) for an Adam / schedule / adversarial-loss setting out of range."""
    if not (math.isfinite(lr) and 0 < lr <= 1):
        raise ValueError("lr must be in (0, 1]")
    if not 0 <= beta1 < 1:
        raise ValueError("beta1 must be in [0, 1)")
    if not 0 <= decay_from <= 1:
        raise ValueError("decay-from must be in [0, 1]")
    if gan_mode not in ("vanilla", "lsgan", "wgan", "hinge"):
        raise ValueError(f"gan-mode must be vanilla, lsgan, wgan or hinge, not {gan_mode!r}")
