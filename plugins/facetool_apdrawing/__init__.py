"""facetool plugin: APDrawingGAN (Yi et al., CVPR 2019) — artistic portrait line drawings from face photos.

A global U-Net and six local U-Nets (eyes, nose, mouth, hair, background) whose drawings a fusion net combines,
trained with global + local PatchGANs, L1, a distance-transform (chamfer) loss and a local L1
(:mod:`facetool_apdrawing.train`). Part rectangles come from the five landmarks of each aligned face, hair and
background from a head-and-shoulders rule (:mod:`facetool_apdrawing.regions`). Torch is imported only when the
method runs.
"""

from __future__ import annotations

from typing import Any

from facetool import hookimpl
from facetool.methods import MethodSpec

METHOD = "apdrawing"


def _network(options: Any, weights) -> Any:
    from facetool.align import get_template
    from facetool.errors import FacetoolError
    from facetool.models.common import load_trained_net

    from .net import APDrawingConfig, APDrawingGenerator, APDrawingNet

    if weights is None:
        raise FacetoolError(f"method {METHOD}: no weights given")
    generator = load_trained_net(weights, "G", method=METHOD, build=APDrawingGenerator, config_type=APDrawingConfig)
    return APDrawingNet(generator, get_template("portrait").tensor()).eval()


def _load(options: Any, device: str, weights) -> Any:
    from facetool.models.common import stylize_runner

    return stylize_runner(_network(options, weights), device, channels_last=True)


@hookimpl
def register_generators(register):
    from .train import apdrawing_train_spec

    register(
        MethodSpec(
            name=METHOD,
            task="stylize",
            load=_load,
            description="APDrawingGAN: artist-style portrait line drawing (global + 6 local U-Nets, fusion)",
            template="portrait",
            input_size=256,
            sizes=(256, 512),
            weights="facetool_apdrawing:weights/apdrawing.safetensors",
            # The drawing is of the head and shoulders; the rest of the picture is left as white paper (a line
            # drawing pasted over the photo would look like a sticker, and the paper is what an artist starts on).
            background="white",
            version="1",
            priority=10,
            train=apdrawing_train_spec(),
            network=_network,
        )
    )
