"""Shared fixtures. Tests that need downloaded assets skip when they are missing — except under
``FACETOOL_REQUIRE_ASSETS=1`` (set by ``.ci/run``, which fetches them first), where a missing asset fails."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from facetool import hookimpl

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "astronaut.png"


def require_assets(*names: str) -> None:
    from facetool.assets import get_store

    store = get_store()
    missing = [n for n in names if store.status(n) != "ok"]
    if missing:
        message = f"assets missing: {', '.join(missing)} (run: facetool assets fetch --all)"
        if os.environ.get("FACETOOL_REQUIRE_ASSETS") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def sample_path() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def sample_image() -> np.ndarray:
    from facetool.imageio import read_image

    return read_image(SAMPLE)


@pytest.fixture(autouse=True)
def _fresh_plugin_host():
    """Each test sees plugins as its own environment variables say."""
    from facetool.plugins import reset_host

    reset_host()
    yield
    reset_host()


@pytest.fixture
def one_thread():
    """Tiny nets: more threads only add contention on a shared CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Two faces' 5 points in a 400x300 photo (image-left eye first); the second is smaller.
TWO_FACES = [
    ([40, 40, 160, 170], 0.99, [[75, 90], [125, 90], [100, 115], [80, 140], [120, 140]]),
    ([250, 60, 330, 150], 0.98, [[272, 95], [308, 95], [290, 112], [276, 130], [304, 130]]),
]


def two_faces() -> list:
    """Fresh :class:`facetool.faces.Face` objects of :data:`TWO_FACES`."""
    from facetool.faces import Face

    return [Face(box=box, score=score, points5=points) for box, score, points in TWO_FACES]


class FixedDetectorPlugin:
    """A plugin whose detector ``fixed`` (the highest priority) finds :data:`TWO_FACES` in any image."""

    @hookimpl
    def register_detectors(self, register):
        from facetool.detectors import DetectorSpec

        class Fixed:
            def detect(self, image):
                return two_faces()

        register(DetectorSpec(name="fixed", load=lambda o, d: Fixed(), description="test", priority=1000))
