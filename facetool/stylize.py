"""The ``stylize`` task pipeline: align every chosen face, run the method on the crops, paste the results back.

The method only sees aligned crops; this module owns the geometry so every stylize method gets the same
any-photo, any-size behaviour.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .faces import Face
from .imageio import from_tensor, to_tensor


def stylize_photo(
    image: np.ndarray,
    runner: Any,
    template_name: str,
    faces: list[Face] | None,
    size: int,
    *,
    crop: bool = False,
    background: Literal["photo", "white"] = "photo",
    device: str = "cpu",
    feather: float = 0.08,
) -> list[np.ndarray]:
    """Stylize the faces of one photo.

    Args:
        image: (H, W, 3) uint8 RGB.
        runner: the method's runner, (B, 3, S, S) [0, 1] -> (B, C, S, S) [0, 1].
        template_name: alignment template of the method.
        faces: faces to draw; None means the photo already is an aligned crop (``--aligned``).
        size: crop size S.
        crop: return the aligned results alone (one (S, S, C) image per face) instead of pasting them back.
        background: what the paste-back goes onto: the photo, or white paper.

    Returns:
        With ``crop``: one image per face. Otherwise one image the size of the input.
    """
    import torch

    from .align import crop_faces, estimate_alignment, get_template, paste_back

    photo = to_tensor(image, device)
    if faces is None:
        square = torch.nn.functional.interpolate(photo, size=(size, size), mode="bilinear", antialias=True)
        with torch.inference_mode():
            result = _to_rgb(runner(square.clamp(0, 1)))
        if crop:
            return [from_tensor(result[0])]
        back = torch.nn.functional.interpolate(result, size=photo.shape[-2:], mode="bilinear", antialias=True)
        return [from_tensor(back.clamp(0, 1)[0])]
    if not faces:
        return [] if crop else [image.copy() if background == "photo" else np.full_like(image, 255)]
    points = torch.as_tensor(np.stack([f.points5 for f in faces]), dtype=torch.float32, device=photo.device)
    matrices = estimate_alignment(points, get_template(template_name), size)
    crops = crop_faces(photo, matrices, size)
    with torch.inference_mode():
        result = _to_rgb(runner(crops)).clamp(0, 1)
    if crop:
        return [from_tensor(r) for r in result]
    canvas = photo if background == "photo" else torch.ones_like(photo)
    pasted = paste_back(canvas, result, matrices, feather=feather)
    return [from_tensor(pasted[0].clamp(0, 1))]


def _to_rgb(t: Any) -> Any:
    return t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t
