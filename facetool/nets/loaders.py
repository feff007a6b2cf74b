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


def proposal_min_face(height: int, width: int, floor: int = 20) -> int:
    """Smallest face (px) worth proposing in a photo: 1/27 of its short side, at least ``floor``.

    MTCNN's cost grows with the pyramid's first level, (12 / min_face)² of the photo: a fixed 20 px on a 1080p
    photo costs ~1 s on 2 cores, 40 px a quarter of that; a face under 4% of the short side is rarely wanted.
    """
    return max(floor, round(min(height, width) / 27))
