"""The face regions APDrawingGAN's local nets draw, as batched tensors.

Eyes, nose and mouth are rectangles of the paper's sizes centred on the five landmarks
(:func:`facetool.data.parts.part_boxes`); hair and background come from the head-and-shoulders rule of
:func:`facetool.data.parts.hair_and_background`. Training uses that rule too, so by default the local nets see at
run time exactly the kind of regions they learned on. A person mask the user gives (``facetool stylize --mask``)
replaces the rule's head outline with the mask's: regions of a shape the nets did not train on, but that follow
big hair or a hat where the rule's ellipse cannot.

Drawings here are in [-1, 1] with white paper at +1: merging takes the per-pixel minimum (the darkest stroke
wins), and an empty canvas is white.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from facetool.data.parts import hair_and_background, part_boxes

#: The rectangular parts, in the order of the local nets.
BOX_PARTS = ("left_eye", "right_eye", "nose", "mouth")
#: The mask parts.
MASK_PARTS = ("hair", "background")
PAPER = 1.0


def boxes_for(points5: Tensor, size: int) -> dict[str, list[tuple[int, int, int, int]]]:
    """Rectangles of every part per item.

    Args:
        points5: :math:`(B, 5, 2)` landmarks in crop pixels.
        size: crop side S.

    Returns:
        part -> B boxes ``(x1, y1, x2, y2)``, end exclusive; one size per part (the paper's, scaled with S).
    """
    points = points5.detach().float().cpu().numpy()
    per_item = [part_boxes(p, size) for p in points]
    return {name: [boxes[name] for boxes in per_item] for name in BOX_PARTS}


def region_masks(points5: Tensor, size: int, foreground: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(hair, background) masks, each :math:`(B, 1, S, S)` float in {0, 1} on ``points5``'s device.

    Args:
        points5: :math:`(B, 5, 2)` in crop pixels.
        size: crop side S.
        foreground: :math:`(B, 1, S, S)` person mask (> 0.5 = person) or None for the geometric rule.
    """
    points = points5.detach().float().cpu().numpy()
    fg = None if foreground is None else (foreground.detach().float().cpu().numpy()[:, 0] > 0.5)
    hair, background = [], []
    for i, p in enumerate(points):
        h, b = hair_and_background(p, size, foreground=None if fg is None else fg[i])
        hair.append(h)
        background.append(b)
    as_tensor = lambda masks: torch.from_numpy(np.stack(masks)[:, None].astype(np.float32)).to(points5.device)  # noqa: E731
    return as_tensor(hair), as_tensor(background)


def crop_boxes(image: Tensor, boxes: list[tuple[int, int, int, int]]) -> Tensor:
    """:math:`(B, C, S, S)` -> :math:`(B, C, h, w)`: item ``i``'s box ``boxes[i]`` (all boxes of one size).

    One box serves the whole batch (the template's boxes: also what an ONNX export with a free batch needs)."""
    if len(boxes) == 1:
        x1, y1, x2, y2 = boxes[0]
        return image[:, :, y1:y2, x1:x2]
    return torch.stack([image[i, :, y1:y2, x1:x2] for i, (x1, y1, x2, y2) in enumerate(boxes)])


def place_boxes(patches: Tensor, boxes: list[tuple[int, int, int, int]], size: int) -> Tensor:
    """:math:`(B, C, h, w)` patches onto white :math:`(B, C, S, S)` canvases at their boxes (differentiable); one
    box places every patch."""
    if len(boxes) == 1:
        x1, y1, x2, y2 = boxes[0]
        return torch.nn.functional.pad(patches, (x1, size - x2, y1, size - y2), value=PAPER)
    rows = []
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        # Padding with white keeps the gradient path to the patch and needs no in-place writes.
        rows.append(torch.nn.functional.pad(patches[i], (x1, size - x2, y1, size - y2), value=PAPER))
    return torch.stack(rows)


def merge_parts(canvases: list[Tensor]) -> Tensor:
    """Per-pixel minimum of drawings on white: where parts overlap the darker stroke wins (the paper's min-pool)."""
    merged = canvases[0]
    for canvas in canvases[1:]:
        merged = torch.minimum(merged, canvas)
    return merged


def on_paper(drawing: Tensor, mask: Tensor) -> Tensor:
    """The drawing inside ``mask``, white paper outside; :math:`(B, C, S, S)`, mask :math:`(B, 1, S, S)`."""
    return drawing * mask + PAPER * (1.0 - mask)
