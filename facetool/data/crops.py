"""Aligned crops of a photo for the data factory: one similarity per face, one anti-aliased warp.

Every pair command (drawings, maps, Loomis) cuts its photo crops here, so their photos of one face agree.
"""

from __future__ import annotations

import numpy as np


def alignment_matrix(points5: np.ndarray, template: str, size: int) -> np.ndarray:
    """(5, 2) photo landmarks -> (2, 3) float64 similarity photo pixel -> crop pixel (facetool.align)."""
    import torch

    from facetool.align import estimate_alignment, get_template

    m = estimate_alignment(torch.as_tensor(np.asarray(points5, np.float64))[None], get_template(template), size)
    return m[0].numpy().astype(np.float64)


def warp_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(N, 2) points through a (2, 3) affine -> (N, 2) float64."""
    p = np.asarray(points, dtype=np.float64)
    return p @ matrix[:, :2].T + matrix[:, 2]


def crop_image(image: np.ndarray, matrix: np.ndarray, size: int, *, mask: bool = False) -> np.ndarray:
    """Warp a photo (H, W, 3) uint8 — or a mask (H, W) — into the (size, size) crop of ``matrix``.

    When the crop shrinks the photo by more than 4/3, the photo is first resized (Lanczos, antialiased) to about
    the crop's scale: a bilinear warp alone would alias hair and skin texture, which the line filter then draws.
    Masks are warped bilinearly and returned as bool (> half covered).
    """
    import torch
    from PIL import Image

    from facetool.align import crop_faces
    from facetool.imageio import from_tensor, to_tensor

    scale = similarity_scale(matrix)
    array = np.asarray(image)
    if scale < 0.75:
        h, w = array.shape[:2]
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        resample = Image.BILINEAR if mask else Image.LANCZOS
        array = np.asarray(Image.fromarray(array).resize((nw, nh), resample))
        sx, sy = nw / w, nh / h
        # Old pixel centre x maps to (x + 0.5) * sx - 0.5 in the resized photo.
        resize = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
        matrix = (np.vstack([matrix, [0.0, 0.0, 1.0]]) @ np.linalg.inv(resize))[:2]
    m = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))[None]
    crop = crop_faces(to_tensor(array), m, size, padding_mode="zeros" if mask else "border")
    out = from_tensor(crop)
    return out > 127 if mask else out


def similarity_scale(matrix: np.ndarray) -> float:
    """Uniform scale of a (2, 3) similarity."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, dtype=np.float64)[:, :2]))))
