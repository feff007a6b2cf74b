"""The Loomis methods' inference net: a generator's lines, alone on white or drawn over the photo."""

from __future__ import annotations

from torch import Tensor, nn

from facetool.models.common import match_channels


class LoomisNet(nn.Module):
    """(B, 3, S, S) photo crops in [0, 1] -> (B, 1, S, S) lines on white (``lines``) or (B, 3, S, S) the lines
    multiplied over the crop (``over-photo``).

    Multiplying, not blending: white paper (1) leaves the photo as it is, so away from the lines the result *is* the
    photo and the pasted-back crop has no seam; a line darkens what is under it as ink does. (The data factory's
    overlay fades the photo to 35 % for a training preview; that would show as a pale square once pasted back.)
    """

    def __init__(self, generator: nn.Module, style: str = "over-photo") -> None:
        super().__init__()
        if style not in ("over-photo", "lines"):
            raise ValueError(f"style must be over-photo or lines, not {style!r}")
        self.generator, self.style = generator, style

    def forward(self, photo: Tensor) -> Tensor:
        lines = match_channels(self.generator(photo), 1)  # a 3-channel generator's drawing is grey anyway
        if self.style == "lines":
            return lines
        return photo * lines
