"""Detector specs: what a plugin registers through ``register_detectors``.

A spec is cheap to create (no model loaded); ``spec.load(options)`` builds the detector when a command needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # numpy costs 0.1 s of start-up; specs are read by --help
    import numpy as np

    from .faces import Face

#: What a detector can fill in on a :class:`Face` besides box, score and 5 points.
FEATURES = ("points68", "landmarks3d", "pose", "blendshapes")


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Face]:
        """image: (H, W, 3) uint8 RGB. Returns the faces found, any order (callers sort)."""
        ...


@dataclass(frozen=True)
class DetectorSpec:
    """A registered detector.

    Attributes:
        name: what ``--detector`` takes.
        load: ``load(options, device) -> Detector``; ``options`` is an instance of ``options`` (or None).
        description: one line for ``facetool plugins`` and ``--help``.
        features: which of :data:`FEATURES` it fills in.
        options: a dataclass of its settings (``-D key=value`` on the CLI), or None. A ``min_face`` field (px) makes
            the no-face hint on large photos suggest ``-D min-face=20``; where that field works only with other
            settings, the dataclass may define ``small_face_flags(size) -> str | None``: the ``-D`` flags that make
            it find faces of ``size`` px, or None when its settings already do.
        assets: names of the assets it needs (checked before loading, with the exact fetch command).
        priority: the highest-priority registered detector is the default (``FACETOOL_DETECTOR`` overrides).
    """

    name: str
    load: Callable[[Any, str], Detector]
    description: str
    features: tuple[str, ...] = ()
    options: type | None = None
    assets: tuple[str, ...] = ()
    priority: int = 0
