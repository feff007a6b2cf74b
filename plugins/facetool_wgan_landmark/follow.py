"""Does each part follow its own point? A layout generator asked for a layout with one part moved, read against its
own face bent exactly by that move.

A reader (a layout predictor) sees only part of a move, and how much depends on the part (the card's table
"What the predictors can see"). So the generator's face for the moved layout is not scored against the asked move
but against the same generator's face for the unmoved layout, bent by a thin-plate spline so that exactly that part
moves: ``follow = reader's move on the generated face / reader's move on the bent face``, summed over faces. 1: the
part goes where asked as far as the reader can tell; 0: the generator ignores that point (for instance drawing the
mean layout's part and letting the head's similarity warp place it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

#: Each part's test move at 128², px per point (x, y), keyed by index in facetool.generate.LAYOUT_POINTS. 8.4 px
#: wider eyes / mouth and a nose 7.7 px lower: about a quarter of the eye distance, what the shipped tests ask.
PART_MOVES: dict[str, dict[int, tuple[float, float]]] = {
    "eyes": {0: (-4.2, 0.0), 1: (4.2, 0.0)},
    "nose": {2: (0.0, 7.7)},
    "mouth": {3: (-4.2, 0.0), 4: (4.2, 0.0)},
}


def move_part(layouts: Tensor, part: str, size: int) -> Tensor:
    """(B, 6, 2) pixel layouts -> the same with only ``part``'s points moved by :data:`PART_MOVES` (scaled to
    ``size``)."""
    moved = layouts.clone()
    for index, (dx, dy) in PART_MOVES[part].items():
        moved[:, index] += torch.tensor([dx, dy], dtype=layouts.dtype, device=layouts.device) * (size / 128)
    return moved


def part_shift(points: Tensor, base: Tensor, part: str) -> Tensor:
    """(B, 6, 2) read after vs before -> (B,) px each part's points moved along their asked direction (mean)."""
    shifts = []
    for index, (dx, dy) in PART_MOVES[part].items():
        direction = torch.tensor([dx, dy], dtype=points.dtype, device=points.device)
        shifts.append((points[:, index] - base[:, index]) @ (direction / direction.norm()))
    return torch.stack(shifts, 1).mean(1)


class FollowMeter:
    """Accumulates, batch by batch, the reader's part moves on generated and on exactly bent faces.

    ``draw(z, layouts) -> (B, 3, S, S)`` in [0, 1] (the same z for both layouts); ``reader(images) -> (B, 6, 2)``.
    """

    def __init__(self, draw: Callable[[Tensor, Tensor], Tensor], reader: Callable[[Tensor], Tensor], size: int):
        self.draw, self.reader, self.size = draw, reader, size
        self.generated = {part: 0.0 for part in PART_MOVES}
        self.exact = {part: 0.0 for part in PART_MOVES}

    def add(self, z: Tensor, layouts: Tensor, faces: Tensor) -> None:
        """``faces``: ``draw(z, layouts)``, already made by the caller."""
        from facetool.data.augment import tps_warp

        base = self.reader(faces)
        for part in PART_MOVES:
            moved = move_part(layouts, part, self.size)
            generated = self.reader(self.draw(z, moved))
            bent = self.reader(tps_warp(faces, layouts, moved))
            self.generated[part] += part_shift(generated, base, part).sum().item()
            self.exact[part] += part_shift(bent, base, part).sum().item()

    def result(self) -> dict[str, float | None]:
        """``follow_<part>``: generated ÷ exact (None when the reader saw no exact move at all)."""
        return {f"follow_{part}": (self.generated[part] / self.exact[part] if self.exact[part] > 0 else None)
                for part in PART_MOVES}  # fmt: skip
