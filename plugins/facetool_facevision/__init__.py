"""facetool plugin (work in progress, branch wip/facevision): FaceVision — depth + correspondence maps from one
photo by a two-decoder U-Net GAN, then a mesh built from them (:mod:`facetool_facevision.mesh`).

Built: the net, training, the runner that ``facetool reconstruct`` calls. Not yet: canonical-UV texture atlas
(the textured OBJ uses the crop as its texture), ``--preview``, evaluation and its mean-face baseline, shipped
weights, benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from facetool import hookimpl
from facetool.methods import MethodSpec

METHOD = "facevision"
#: A pixel is face where the predicted correspondence is not the black background.
MASK_THRESHOLD = 0.1


@dataclass
class FaceVisionRunOptions:
    """``facetool reconstruct -O key=value`` (mesh synthesis settings)."""

    smooth: int = field(default=5, metadata={"help": "Laplacian smoothing iterations of the depth"})
    detail: float = field(default=0.5, metadata={"help": "photo high-pass detail along the normals, px per unit"})
    spike: float = field(default=4.0, metadata={"help": "drop triangles whose longest edge exceeds this × median"})


class _Runner:
    """crops (B, 3, S, S) in [0, 1] -> [(Mesh in crop pixels, maps)] per crop."""

    def __init__(self, net: Any, device: str, options: FaceVisionRunOptions) -> None:
        self.net, self.device, self.options = net.to(device).eval(), device, options

    def __call__(self, crops: Any) -> list[tuple[Any, dict[str, Any]]]:
        import numpy as np
        import torch

        from facetool.export.mesh import Mesh

        from .mesh import mesh_from_maps

        with torch.inference_mode():
            depth, pncc = self.net(crops.to(self.device, torch.float32) * 2 - 1)
        size = crops.shape[-1]
        depth_px = ((depth[:, 0].float() + 1) * 0.5 * size).cpu().numpy()  # the target stores a fraction of S
        correspondence = ((pncc.float() + 1) * 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        photos = (crops.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        results = []
        for i in range(len(photos)):
            mask = correspondence[i].max(axis=2) > MASK_THRESHOLD
            o = self.options
            try:
                mesh = mesh_from_maps(depth_px[i], mask, photos[i], smooth_iterations=o.smooth, detail=o.detail,
                                      spike_factor=o.spike)  # fmt: skip
            except ValueError as error:  # no face surface predicted: one line, not a traceback
                from facetool.errors import FacetoolError

                raise FacetoolError(f"facevision: {error}") from error
            rows, cols = mesh.pixels[:, 0], mesh.pixels[:, 1]
            uvs = np.stack([(cols + 0.5) / size, 1 - (rows + 0.5) / size], axis=1)  # the crop is the texture
            maps = {"depth": np.where(mask, depth_px[i], np.nan), "correspondence": correspondence[i],
                    "mask": mask.astype(np.float32)}  # fmt: skip
            results.append((Mesh(mesh.vertices, mesh.faces, mesh.colors, uvs, photos[i]), maps))
        return results


def _load(options: FaceVisionRunOptions | None, device: str, weights) -> Any:
    from facetool.errors import FacetoolError
    from facetool.models.common import load_trained_net

    from .net import FaceVisionConfig, FaceVisionNet

    if weights is None:
        raise FacetoolError(f"method {METHOD}: no weights given (train one: facetool train facevision)")

    def build(config: Any) -> FaceVisionNet:
        if not isinstance(config, FaceVisionConfig):
            raise FacetoolError(f"{weights}: its G is a {type(config).__name__}, not a FaceVision generator")
        return FaceVisionNet(config)

    net = load_trained_net(weights, "G", method=METHOD, build=build)
    return _Runner(net, device, options or FaceVisionRunOptions())


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
            train=facevision_train_spec(),
        )
    )
