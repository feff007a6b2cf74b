"""Build the core's pretrained nets from the asset registry."""

from __future__ import annotations

from typing import Any


def load_mtcnn(device: str = "cpu", **kwargs: Any):
    """The core MTCNN with its weights from the assets ``mtcnn-pnet/rnet/onet`` (AssetError names the fetch)."""
    from ..assets import get_store
    from .mtcnn import MTCNN

    store = get_store()
    paths = [store.path(f"mtcnn-{part}") for part in ("pnet", "rnet", "onet")]
    return MTCNN.from_files(*paths, **kwargs).to(device).eval()
