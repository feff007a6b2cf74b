"""Shared fixtures. Tests that need downloaded assets skip when they are missing — except under
``FACETOOL_REQUIRE_ASSETS=1`` (set by ``.ci/run``, which fetches them first), where a missing asset fails."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

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
