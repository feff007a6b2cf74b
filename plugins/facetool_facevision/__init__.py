"""facetool plugin: FaceVision — depth and correspondence (PNCC) maps from one photo by a two-decoder U-Net GAN
(:mod:`.net`, :mod:`.train`), a refined mesh built from them (:mod:`.mesh`), textured through the canonical face's
UV layout, and its measures against the mean face (:mod:`.evaluation`). ``facetool reconstruct`` runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from facetool import hookimpl
from facetool.methods import MethodSpec

METHOD = "facevision"


@dataclass
class FaceVisionRunOptions:
    """``facetool reconstruct -O key=value`` (mesh synthesis settings)."""

    smooth: int = field(default=5, metadata={"help": "Laplacian smoothing iterations of the depth"})
    detail: float = field(default=0.5, metadata={"help": "photo high-pass detail along the normals, px per unit"})
    spike: float = field(
        default=4.0, metadata={"help": "drop fins and spikes: triangles whose longest edge exceeds this × median"}
    )
    median: int = field(default=5, metadata={"help": "median filter of the depth before meshing, px (1: off)"})

    def __post_init__(self) -> None:
        if self.smooth < 0 or self.spike <= 0 or self.median < 1:
            raise ValueError("smooth must be >= 0, spike > 0 and median >= 1")


class _Runner:
    """crops (B, 3, S, S) in [0, 1] -> [(Mesh in crop pixels, maps)] per crop. Set ``timings`` to a dict to have
    the seconds of each stage (G, mesh, smoothing, detail, uv) added to it."""

    def __init__(self, net: Any, device: str, options: FaceVisionRunOptions) -> None:
        self.net, self.device, self.options = net.to(device).eval(), device, options
        self.timings: dict[str, float] | None = None

    def __call__(self, crops: Any) -> list[tuple[Any, dict[str, Any]]]:
        from time import perf_counter

        import numpy as np
        import torch

        from facetool.export.mesh import Mesh

        from .evaluation import masks_of
        from .mesh import canonical_layout, mesh_from_maps, smooth_uvs, uv_from_pncc

        canonical = canonical_layout()
        timings = self.timings if self.timings is not None else {}
        start = perf_counter()
        with torch.inference_mode():
            depth, pncc = self.net(crops.to(self.device, torch.float32))
        size = crops.shape[-1]
        depth_px = (depth[:, 0].float() * size).cpu().numpy()  # the data stores depth as a fraction of S
        correspondence = pncc.float().permute(0, 2, 3, 1).cpu().numpy()
        timings["G"] = timings.get("G", 0.0) + perf_counter() - start
        photos = (crops.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        results = []
        for i in range(len(photos)):
            mask = masks_of(correspondence[i])
            o = self.options
            try:
                mesh = mesh_from_maps(depth_px[i], mask, photos[i], smooth_iterations=o.smooth, detail=o.detail,
                                      spike_factor=o.spike, median=o.median, timings=timings)  # fmt: skip
            except ValueError as error:  # no face surface predicted: one line, not a traceback
                from facetool.errors import FacetoolError

                raise FacetoolError(f"facevision: {error}") from error
            start = perf_counter()
            rows, cols = mesh.pixels[:, 0], mesh.pixels[:, 1]
            # canonical-layout UVs; the core bakes the texture atlas for them from the full photo
            uvs = smooth_uvs(rows, cols, uv_from_pncc(correspondence[i], rows, cols, *canonical))
            timings["uv"] = timings.get("uv", 0.0) + perf_counter() - start
            maps = {"depth": np.where(mask, depth_px[i], np.nan), "correspondence": correspondence[i],
                    "mask": mask.astype(np.float32)}  # fmt: skip
            results.append((Mesh(mesh.vertices, mesh.faces, mesh.colors, uvs), maps))
        return results


def _network(options: FaceVisionRunOptions | None, weights) -> Any:
    """The bare net (:class:`.net.FaceVisionMaps`: photo in [0, 1] -> depth, PNCC in [0, 1]) on CPU, eval mode."""
    from facetool.errors import FacetoolError
    from facetool.models.common import load_trained_net

    from .net import FaceVisionConfig, FaceVisionMaps, FaceVisionNet

    if weights is None:
        raise FacetoolError(f"method {METHOD}: no weights given (train one: facetool train facevision)")
    generator = load_trained_net(weights, "G", method=METHOD, build=FaceVisionNet, config_type=FaceVisionConfig)
    return FaceVisionMaps(generator).eval()


def _load(options: FaceVisionRunOptions | None, device: str, weights) -> Any:
    return _Runner(_network(options, weights), device, options or FaceVisionRunOptions())


def _measure(net: Any, request: Any) -> Any:
    from .evaluation import measure

    return measure(net, request)


@hookimpl
def register_generators(register):
    from .train import facevision_train_spec

    register(
        MethodSpec(
            name=METHOD,
            task="reconstruct",
            load=_load,
            options=FaceVisionRunOptions,
            description="FaceVision: depth + correspondence by a two-decoder U-Net GAN -> refined, textured mesh",
            input_size=128,
            sizes=(128, 256),
            weights="facetool_facevision:weights/facevision.safetensors",
            train=facevision_train_spec(),
            network=_network,
            measure=_measure,
        )
    )
