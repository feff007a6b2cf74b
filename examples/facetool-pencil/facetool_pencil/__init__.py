"""facetool plugin template: a pencil-sketch stylize method (no weights).

Everything facetool needs is declared here; the work happens in :mod:`facetool_pencil.model`, imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from facetool import hookimpl
from facetool.methods import MethodSpec


@dataclass
class PencilOptions:
    blur: float = field(default=3.0, metadata={"help": "stroke softness: Gaussian sigma in pixels at 256²"})
    darkness: float = field(default=1.6, metadata={"help": "gamma on the sketch; above 1 darkens lines"})

    def __post_init__(self) -> None:
        if not 0.3 <= self.blur <= 30:
            raise ValueError("blur must be between 0.3 and 30")
        if not 0.2 <= self.darkness <= 5:
            raise ValueError("darkness must be between 0.2 and 5")


def _load(options: PencilOptions, device: str, weights):
    from .model import PencilSketch

    return PencilSketch(options).to(device).eval()


@hookimpl
def register_generators(register):
    register(
        MethodSpec(
            name="pencil",
            task="stylize",
            load=_load,
            description="pencil sketch by colour dodge (template plugin, no weights)",
            options=PencilOptions,
            template="portrait",
            input_size=256,
            sizes=(128, 256, 512),
            background="white",
            version="0.1.0",
        )
    )
