"""What the core itself registers: its nets' and the data factory's assets, and the shared losses.

This module is registered on every host as plugin ``core`` (it is part of facetool, not an entry point), so the
core's own files go through the same asset registry as every plugin's.
"""

from __future__ import annotations

from . import hookimpl
from .assets import Asset

_FACENET = dict(
    distribution="facenet-pytorch",
    version="2.6.0",
    archive="facenet_pytorch-2.6.0-py3-none-any.whl",
    archive_sha256="ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca",
    license="MIT (facenet-pytorch); weights converted from the original MTCNN release",
    used_by="core: facetool.nets.mtcnn (detector 'mtcnn', differentiable 5-point regressor)",
)

MTCNN_ASSETS = (
    Asset(
        name="mtcnn-pnet", member="facenet_pytorch/data/pnet.pt", size=28570,
        sha256="a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
        description="MTCNN proposal net (state dict)", **_FACENET,
    ),
    Asset(
        name="mtcnn-rnet", member="facenet_pytorch/data/rnet.pt", size=403147,
        sha256="bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
        description="MTCNN refine net (state dict)", **_FACENET,
    ),
    Asset(
        name="mtcnn-onet", member="facenet_pytorch/data/onet.pt", size=1559269,
        sha256="165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
        description="MTCNN output net: box, score and 5 points (state dict)", **_FACENET,
    ),
)  # fmt: skip


@hookimpl
def register_assets(register):
    from .data.assets import DATA_ASSETS
    from .metrics.assets import METRIC_ASSETS

    for asset in (*MTCNN_ASSETS, *DATA_ASSETS, *METRIC_ASSETS):
        register(asset)


@hookimpl
def register_exporters(register):
    from .export.mesh_formats import MESH_EXPORTERS
    from .export.onnx import ONNX_EXPORTER

    register(ONNX_EXPORTER)
    for exporter in MESH_EXPORTERS:
        register(exporter)


@hookimpl
def register_losses(register):
    from .losses.builtin import register_builtin_losses

    register_builtin_losses(register)
