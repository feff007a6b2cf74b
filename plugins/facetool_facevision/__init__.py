"""facetool plugin (work in progress, branch wip/facevision): FaceVision — depth + correspondence maps from one
photo by a two-decoder U-Net GAN. Only training is wired so far; reconstruct, mesh synthesis, exporters and
evaluation are the rest of issue 6."""

from __future__ import annotations

from typing import Any

from facetool import hookimpl
from facetool.methods import MethodSpec


def _load(options: Any, device: str, weights) -> Any:
    from facetool.errors import FacetoolError

    raise FacetoolError("facevision: facetool reconstruct is not built yet (issue 6)")


@hookimpl
def register_generators(register):
    from .train import facevision_train_spec

    register(
        MethodSpec(
            name="facevision",
            task="reconstruct",
            load=_load,
            description="FaceVision: depth + correspondence maps by a two-decoder U-Net GAN (training only, WIP)",
            input_size=128,
            sizes=(128, 256),
            train=facevision_train_spec(),
        )
    )
