"""facetool plugin: the core's pix2pix and CycleGAN as generic stylize methods on any paired / unpaired folder.

They ship no weights: train one (``facetool train pix2pix --data DIR --out RUN -O source=photo -O target=drawing``)
and use it with ``--weights RUN`` (a run folder, a checkpoint folder or an exported ``.safetensors``). Nothing here
imports torch until a method is trained or loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from facetool import hookimpl
from facetool.errors import UsageError
from facetool.methods import MethodSpec


@dataclass
class CycleGANInference:
    direction: Literal["AB", "BA"] = field(
        default="AB", metadata={"help": "AB: G_AB (domain A -> B, the default), BA: the reverse generator"}
    )


def _need_weights(method: str, weights) -> None:
    if weights is None:
        raise UsageError(
            f"method {method} has no default weights: train it (facetool train {method} --data DIR --out RUN) "
            "and pass --weights RUN"
        )


def _pix2pix_network(options, weights):
    from facetool.models.common import load_generator

    _need_weights("pix2pix", weights)
    return load_generator(weights, "G", method="pix2pix")


def _pix2pix_load(options, device, weights):
    from facetool.models.common import stylize_runner

    return stylize_runner(_pix2pix_network(options, weights), device, channels_last=True)


def _cyclegan_network(options, weights):
    from facetool.models.common import load_generator

    _need_weights("cyclegan", weights)
    direction = options.direction if options is not None else "AB"
    return load_generator(weights, f"G_{direction}", method="cyclegan")


def _cyclegan_roles(options, train_options) -> tuple[str, str]:
    """evaluate's (input, target) roles: A -> B, or B -> A with -O direction=BA (the net is then G_BA)."""
    a, b = (train_options.a, train_options.b) if train_options is not None else ("photo", "drawing")
    return (b, a) if options is not None and options.direction == "BA" else (a, b)


def _cyclegan_load(options, device, weights):
    from facetool.models.common import stylize_runner

    return stylize_runner(_cyclegan_network(options, weights), device)


def pix2pix_method() -> MethodSpec:
    from facetool.models.pix2pix import Pix2PixRoleOptions, pix2pix_train_spec

    return MethodSpec(
        name="pix2pix",
        task="stylize",
        load=_pix2pix_load,
        description="pix2pix (U-Net + PatchGAN) on any paired folder; train it, then --weights RUN",
        options=None,
        template="portrait",
        input_size=256,
        sizes=(128, 256, 512),
        weights=None,
        background="white",  # the default target role is a drawing
        version="1",
        train=pix2pix_train_spec(options_cls=Pix2PixRoleOptions),
        network=_pix2pix_network,
    )


def cyclegan_method() -> MethodSpec:
    from facetool.models.cyclegan import CycleGANRoleOptions, cyclegan_train_spec

    return MethodSpec(
        name="cyclegan",
        task="stylize",
        load=_cyclegan_load,
        description="CycleGAN (ResNet generators, LSGAN, cycle + identity) on unpaired folders; --weights RUN",
        options=CycleGANInference,
        template="portrait",
        input_size=256,
        sizes=(128, 256, 512),
        weights=None,
        background="white",
        version="1",
        train=cyclegan_train_spec(options_cls=CycleGANRoleOptions),
        network=_cyclegan_network,
        roles=_cyclegan_roles,
    )


@hookimpl
def register_generators(register):
    register(pix2pix_method())
    register(cyclegan_method())
