"""The ``stylize`` task pipeline: align every chosen face, run the method on the crops, paste the results back.

The method only sees aligned crops; this module owns the geometry so every stylize method gets the same
any-photo, any-size behaviour.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .errors import UsageError
from .faces import Face
from .imageio import from_tensor, to_tensor
from .methods import checked_images


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
    foreground: np.ndarray | None = None,
    method: str = "",
) -> list[np.ndarray]:
    """Stylize the faces of one photo.

    Args:
        image: (H, W, 3) uint8 RGB.
        runner: the method's runner, (B, 3, S, S) [0, 1] -> (B, C, S, S) [0, 1]. A runner with a true
            ``takes_points5`` attribute is also given ``points5=`` (B, 5, 2), the faces' landmarks in crop pixels;
            one with a true ``takes_points68`` gets ``points68=`` (B, 68, 2) likewise, or None when the detector gave
            not every face 68 points.
            A runner with a ``paste_mask`` method, (B, C, S, S) results -> (B, 1, S, S) in [0, 1], says which
            pixels of its results to paste back (e.g. an avatar without its plain background). A runner's ``notes``
            (one short line per face of its last call, e.g. what it measured for an ``auto`` setting) are printed
            by ``facetool stylize`` after the output's name.
        template_name: alignment template of the method.
        faces: faces to draw; None means the photo already is an aligned crop (``--aligned``).
        size: crop size S.
        crop: return the aligned results alone (one (S, S, C) image per face) instead of pasting them back.
        background: what the paste-back goes onto: the photo, or white paper.
        foreground: optional (H, W) person mask of the photo (non-zero = person); a runner with a true
            ``takes_foreground`` attribute gets it cropped with each face as ``foreground=`` (B, 1, S, S) in [0, 1].
            A runner's ``crop_padding`` attribute picks what fills a crop where it reaches past the photo (a
            :func:`facetool.align.crop_faces` ``padding_mode``; default ``border``).

    Returns:
        With ``crop``: one image per face. Otherwise one image the size of the input.
    """
    import torch

    from .align import crop_faces, estimate_alignment, get_template, paste_back, transform_points

    photo = to_tensor(image, device)
    mask = None
    if foreground is not None and getattr(runner, "takes_foreground", False):
        if foreground.shape[:2] != image.shape[:2]:
            raise UsageError(f"the mask is {foreground.shape[1]}×{foreground.shape[0]}, the photo "
                             f"{image.shape[1]}×{image.shape[0]}: give a mask of the same size")  # fmt: skip
        mask = torch.as_tensor(np.asarray(foreground) > 0, dtype=torch.float32, device=photo.device)[None, None]
    if faces is None:
        square = torch.nn.functional.interpolate(photo, size=(size, size), mode="bilinear", antialias=True)
        extras = {}
        if mask is not None:
            extras["foreground"] = torch.nn.functional.interpolate(mask, size=(size, size), mode="bilinear")
        with torch.inference_mode():
            result = _to_rgb(checked_images(runner(square.clamp(0, 1), **extras), 1, size, method))
        if crop:
            return [from_tensor(result[0])]
        back = torch.nn.functional.interpolate(result, size=photo.shape[-2:], mode="bilinear", antialias=True)
        return [from_tensor(back.clamp(0, 1)[0])]
    if not faces:
        return [] if crop else [image.copy() if background == "photo" else np.full_like(image, 255)]
    points = torch.as_tensor(np.stack([f.points5 for f in faces]), dtype=torch.float32, device=photo.device)
    matrices = estimate_alignment(points, get_template(template_name), size)
    crops = crop_faces(photo, matrices, size, getattr(runner, "crop_padding", "border"))
    extras = {"points5": transform_points(points, matrices)} if getattr(runner, "takes_points5", False) else {}
    if getattr(runner, "takes_points68", False):
        dense = [f.points68 for f in faces]
        if any(d is None for d in dense):
            extras["points68"] = None
        else:
            points68 = torch.as_tensor(np.stack(dense), dtype=torch.float32, device=photo.device)
            extras["points68"] = transform_points(points68, matrices)
    if mask is not None:
        extras["foreground"] = crop_faces(mask, matrices, size, padding_mode="zeros")
    with torch.inference_mode():
        result = _to_rgb(checked_images(runner(crops, **extras), len(faces), size, method)).clamp(0, 1)
    if crop:
        if background == "white":
            # Where the crop reaches past the photo its pixels are the photo's repeated border, and a drawing
            # method draws streaks there: leave that part of the page blank (paste-back drops it anyway).
            inside = crop_faces(torch.ones_like(photo[:, :1]), matrices, size, padding_mode="zeros") > 0.5
            result = torch.where(inside, result, torch.ones_like(result))
        return [from_tensor(r) for r in result]
    canvas = photo if background == "photo" else torch.ones_like(photo)
    # On white paper the crops' strokes are merged darkest-wins, so overlapping faces keep each other's lines.
    masks = runner.paste_mask(result) if hasattr(runner, "paste_mask") else None
    pasted = paste_back(canvas, result, matrices, masks, feather=feather, darken=background == "white")
    return [from_tensor(pasted[0].clamp(0, 1))]


def _to_rgb(t: Any) -> Any:
    return t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t
