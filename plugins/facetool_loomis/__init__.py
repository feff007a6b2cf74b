"""facetool plugin: Andrew Loomis's head construction drawn over a face, by pix2pix or CycleGAN.

Both methods are trained on ``facetool data loomis`` pairs (photo crop -> construction lines turned with the head's
3D pose) with the core's generic models; their own metric, :func:`facetool_loomis.geometry.evaluate`, measures the
head angle the drawn construction shows against the photo's pose. Torch is imported only when a method runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from facetool import hookimpl
from facetool.methods import MethodSpec
from facetool.models.pix2pix import Pix2PixOptions

#: Net of each method's weights file that maps photo -> lines.
GENERATOR_NET = {"loomis-pix2pix": "G", "loomis-cyclegan": "G_AB"}


@dataclass
class LoomisOptions:
    style: Literal["over-photo", "lines"] = field(
        default="over-photo",
        metadata={"help": "over-photo: the lines drawn over the photo; lines: the construction alone on white"},
    )

    def __post_init__(self) -> None:
        if self.style not in ("over-photo", "lines"):
            raise ValueError(f"style must be over-photo or lines, not {self.style!r}")


@dataclass
class LoomisPix2PixOptions(Pix2PixOptions):
    """pix2pix's settings with 7 U-Net levels: a 1×1 bottleneck at the shipped 128² (8 would pad 128 to 256)."""

    g_levels: int = field(default=7, metadata={"help": "U-Net levels (7: 1×1 bottleneck at 128²)"})


def _net(method: str, weights, style: str) -> Any:
    from facetool.errors import FacetoolError
    from facetool.models.common import load_generator

    from .net import LoomisNet

    if weights is None:
        raise FacetoolError(f"method {method}: no weights given")
    return LoomisNet(load_generator(weights, GENERATOR_NET[method], method=method), style).eval()


def _network(method: str):
    # The bare net (export, evaluate, benchmarks) is what was trained: the lines alone, whatever -O style says.
    def network(options: LoomisOptions | None, weights) -> Any:
        return _net(method, weights, "lines")

    return network


def _load(method: str):
    def load(options: LoomisOptions | None, device: str, weights) -> Any:
        from facetool.models.common import stylize_runner

        # channels_last helps the U-Net and slows the ResNet (bench/nets_speed.py --methods)
        style = (options or LoomisOptions()).style
        run = stylize_runner(_net(method, weights, style), device, channels_last=method == "loomis-pix2pix")
        # The construction alone is white paper with lines: pasted onto the photo it would leave a white square
        # round each face, so it goes on a white page unless --background says otherwise.
        run.background = "white" if style == "lines" else "photo"
        return run

    return load


def _evaluate(outputs, batch, options) -> dict[str, list[float]]:
    from .geometry import evaluate

    # ``outputs`` come from ``network``: the lines alone, whatever style -O asked for.
    return evaluate(outputs, batch, LoomisOptions(style="lines"))


@hookimpl
def register_generators(register):
    # The models' modules import torch only when a trainer is built, so the specs are made here.
    from facetool.models.cyclegan import cyclegan_train_spec
    from facetool.models.pix2pix import pix2pix_train_spec

    common = {
        "task": "stylize",
        "options": LoomisOptions,
        "template": "portrait",
        "sizes": (128, 256),
        # over-photo (the default style) is the photo itself away from the lines, so pasting it back onto the photo
        # leaves no seam; -O style=lines switches to white (the runner's background).
        "background": "photo",
        "version": "1",
        "evaluate": _evaluate,
    }
    register(
        MethodSpec(
            name="loomis-pix2pix",
            load=_load("loomis-pix2pix"),
            description="Loomis head construction (ball, side plane, brow / nose / chin lines) by pix2pix (U-Net)",
            weights="facetool_loomis:weights/loomis-pix2pix.safetensors",
            network=_network("loomis-pix2pix"),
            # The shipped recipe (MODEL_CARD.md): 128², batch 8, 2000 steps. At 256² and batch 1 (the paper's
            # setting) pix2pix drew one fixed construction for every face after 2.6k steps on a CPU.
            input_size=128,
            train=pix2pix_train_spec(
                "photo", "loomis", options_cls=LoomisPix2PixOptions, default_steps=2000, default_batch_size=8
            ),
            **common,
        )
    )
    register(
        MethodSpec(
            name="loomis-cyclegan",
            load=_load("loomis-cyclegan"),
            description="Loomis head construction by CycleGAN (ResNet generator, unpaired training)",
            weights="facetool_loomis:weights/loomis-cyclegan.safetensors",
            network=_network("loomis-cyclegan"),
            input_size=256,
            train=cyclegan_train_spec("photo", "loomis"),
            **common,
        )
    )
