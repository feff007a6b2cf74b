"""APDrawingGAN's hierarchical generator and its discriminators (Yi et al., CVPR 2019).

Generator: a global U-Net draws the whole portrait; six local U-Nets draw the left eye, right eye, nose and mouth
(3 levels, on the paper's rectangles) and the hair and background (4 levels, on the full crop); the local drawings
are put back on a white canvas and merged by per-pixel minimum; a fusion net (conv block, two residual blocks,
final conv) turns [global drawing, merged local drawing] into the output. Everything is in [-1, 1], photo 3
channels, drawings 1 channel (grayscale).

Choices where the paper is silent or its setting does not fit a CPU:

- Widths: global U-Net 32 -> 128 channels (pix2pix's compact U-Net), local U-Nets 32 -> 128 for the facial
  features and 16 -> 128 for hair and background (they run at full resolution), fusion 16 channels
  with 3×3 kernels (thin full-resolution convs are memory-bound on a CPU: 7×7 ones made fusion cost as much as
  the global U-Net).
  The reference (64 -> 512) is 8x the FLOPs and would not train or run in time on 2 cores.
- Instance norm everywhere: the same at batch 1 and at batch 8, and no train/eval gap (batch norm at batch 1 drew
  one constant image for every face in our pix2pix runs, see plugins/facetool_loomis/weights/MODEL_CARD.md).
- Hair and background nets get the full photo plus their mask as a 4th channel (the reference blanks the photo
  outside the mask): the net sees the context of its region's edge, and the mask still tells it where it draws.
- Local discriminators judge the *final* drawing at each part, conditioned on the photo there (hair / background:
  plus the mask), so they push the fused output, not only the local nets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from facetool.nets.layers import NORMS, DictConfig, check_choice, init_weights, norm_layer
from facetool.nets.patchgan import PatchGAN, PatchGANConfig
from facetool.nets.resnet import ResidualBlock
from facetool.nets.unet import UNet, UNetConfig

from .regions import BOX_PARTS, MASK_PARTS, boxes_for, crop_boxes, merge_parts, on_paper, place_boxes, region_masks

#: U-Net levels of the local nets (the paper's 3 down / 3 up for facial features, 4 / 4 for hair and background).
LOCAL_LEVELS = {"left_eye": 3, "right_eye": 3, "nose": 3, "mouth": 3, "hair": 4, "background": 4}


def global_levels(size: int) -> int:
    """The paper's 8 levels at 512², one fewer per halving (a 2×2 bottleneck): 7 at 256², 6 at 128²."""
    return max(3, math.ceil(math.log2(size)) - 1)


def part_layers(size: int, most: int = 3) -> int:
    """Stride-2 layers a part PatchGAN can have at crop side ``size``: the 70×70 net's 3 at 256² (the 40 px high
    eye box ends at 5 rows), fewer on smaller crops so at least 3 rows reach the last two 4×4 convs."""
    from facetool.data.parts import PART_SIZES, REFERENCE_SIZE

    smallest = min(h for h, _ in PART_SIZES.values()) * size / REFERENCE_SIZE
    layers = most
    while layers > 1 and smallest // 2**layers < 3:
        layers -= 1
    return layers


@dataclass
class APDrawingConfig(DictConfig):
    """Generator hyper-parameters (saved in checkpoints and weights files)."""

    global_levels: int = 7
    base: int = 32
    max_channels: int = 128
    local_base: int = 32
    local_max_channels: int = 128
    mask_part_base: int = 16
    fusion_channels: int = 16
    norm: str = "instance"
    dropout: float = 0.5
    local: bool = True

    def __post_init__(self) -> None:
        check_choice("APDrawingConfig", "norm", self.norm, NORMS)
        if self.global_levels < 3:
            raise ValueError("APDrawingConfig.global_levels must be >= 3")


@dataclass
class APDrawingDConfig(DictConfig):
    """Discriminators: one global 70×70 PatchGAN on (photo, drawing) and, with ``local``, one per part."""

    base: int = 32
    mask_part_base: int = 16
    layers: int = 3
    part_layers: int = 3
    norm: str = "instance"
    local: bool = True

    def __post_init__(self) -> None:
        check_choice("APDrawingDConfig", "norm", self.norm, NORMS)


class FusionNet(nn.Module):
    """[global, merged local] (B, 2, S, S) -> (B, 1, S, S) in [-1, 1]: conv block, 2 residual blocks, conv."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(2, channels, 3),
            norm_layer(norm, channels),
            nn.ReLU(),
            ResidualBlock(channels, norm, "reflect"),
            ResidualBlock(channels, norm, "reflect"),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, 1, 3),
            nn.Tanh(),
        )
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


@dataclass
class Regions:
    """Where the local nets work on one batch: part boxes (crop pixels) and hair / background masks (B, 1, S, S)."""

    boxes: dict[str, list[tuple[int, int, int, int]]]
    hair: Tensor
    background: Tensor

    @classmethod
    def from_points(cls, points5: Tensor, size: int, foreground: Tensor | None = None) -> Regions:
        hair, background = region_masks(points5, size, foreground)
        return cls(boxes_for(points5, size), hair, background)

    def mask(self, name: str) -> Tensor:
        return self.hair if name == "hair" else self.background


@dataclass
class Drawing:
    """A generator pass: the output and the pieces the losses need (all in [-1, 1])."""

    output: Tensor
    global_drawing: Tensor
    local_drawings: dict[str, Tensor]  # box parts: (B, 1, h, w); hair / background: (B, 1, S, S), white outside
    merged: Tensor | None


class APDrawingGenerator(nn.Module):
    """photo (B, 3, S, S) in [-1, 1] + :class:`Regions` -> :class:`Drawing`."""

    def __init__(self, config: APDrawingConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or APDrawingConfig()
        common = {"out_channels": 1, "norm": config.norm, "dropout": config.dropout}
        self.global_net = UNet(
            UNetConfig(in_channels=3, levels=config.global_levels, base=config.base,
                       max_channels=config.max_channels, **common)
        )  # fmt: skip
        if config.local:
            self.local_nets = nn.ModuleDict(
                {
                    name: UNet(
                        UNetConfig(
                            in_channels=3 if name in BOX_PARTS else 4,
                            levels=levels,
                            base=config.local_base if name in BOX_PARTS else config.mask_part_base,
                            max_channels=config.local_max_channels,
                            dropout_blocks=levels - 1,
                            **common,
                        )
                    )  # fmt: skip
                    for name, levels in LOCAL_LEVELS.items()
                }
            )
            self.fusion = FusionNet(config.fusion_channels, config.norm)

    def forward(self, photo: Tensor, regions: Regions) -> Drawing:
        global_drawing = self.global_net(photo)
        if not self.config.local:
            return Drawing(global_drawing, global_drawing, {}, None)
        size = int(photo.shape[-1])  # a plain int under tracing too: regions are numpy work
        local: dict[str, Tensor] = {}
        canvases = []
        for name in BOX_PARTS:
            boxes = regions.boxes[name]
            local[name] = self.local_nets[name](crop_boxes(photo, boxes))
            canvases.append(place_boxes(local[name], boxes, size))
        for name in MASK_PARTS:
            mask = regions.mask(name).expand(photo.shape[0], -1, -1, -1)  # a (1, 1, S, S) mask serves every item
            local[name] = on_paper(self.local_nets[name](torch.cat([photo, mask * 2 - 1], dim=1)), mask)
            canvases.append(local[name])
        merged = merge_parts(canvases)
        output = self.fusion(torch.cat([global_drawing, merged], dim=1))
        return Drawing(output, global_drawing, local, merged)


def discriminator_views(photo: Tensor, drawing: Tensor, regions: Regions, local: bool) -> dict[str, Tensor]:
    """The inputs of every discriminator for one (photo, drawing) batch.

    global: [photo, drawing] (B, 4, S, S); box parts: the same cropped at the part; hair / background: [photo,
    drawing on white outside the mask, mask] (B, 5, S, S).
    """
    pair = torch.cat([photo, drawing], dim=1)
    views = {"global": pair}
    if local:
        for name in BOX_PARTS:
            views[name] = crop_boxes(pair, regions.boxes[name])
        for name in MASK_PARTS:
            mask = regions.mask(name).expand(photo.shape[0], -1, -1, -1)
            views[name] = torch.cat([photo, on_paper(drawing, mask), mask * 2 - 1], dim=1)
    return views


class APDrawingDiscriminators(nn.Module):
    """PatchGANs by view name (``global`` and, with ``local``, each part): views -> logits."""

    def __init__(self, config: APDrawingDConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or APDrawingDConfig()
        names = ["global", *(BOX_PARTS + MASK_PARTS if config.local else ())]
        self.nets = nn.ModuleDict(
            {
                name: PatchGAN(
                    PatchGANConfig(
                        in_channels=5 if name in MASK_PARTS else 4,
                        base=config.mask_part_base if name in MASK_PARTS else config.base,
                        layers=config.part_layers if name in BOX_PARTS else config.layers,
                        norm=config.norm,
                    )
                )  # fmt: skip
                for name in names
            }
        )

    def forward(self, views: dict[str, Tensor]) -> dict[str, Tensor]:
        return {name: self.nets[name](view) for name, view in views.items()}


class APDrawingNet(nn.Module):
    """Inference: photo crops (B, 3, S, S) in [0, 1] (+ their 5 points) -> drawings (B, 1, S, S) in [0, 1].

    ``points5`` (B, 5, 2) in crop pixels place the part rectangles; without them the alignment template's points
    are used (an aligned crop has its landmarks there, give or take the fit's residual). ``foreground``
    (B, 1, S, S) is an optional person mask for the hair / background split.
    """

    takes_points5 = True
    takes_foreground = True  # facetool stylize --mask: hair / background from the user's person mask

    def __init__(self, generator: APDrawingGenerator, template_points: Tensor) -> None:
        super().__init__()
        self.generator = generator
        self.register_buffer("template_points", template_points.float(), persistent=False)  # unit square, (5, 2)

    def forward(self, photo: Tensor, points5: Tensor | None = None, foreground: Tensor | None = None) -> Tensor:
        if photo.shape[1] == 1:
            photo = photo.expand(-1, 3, -1, -1)
        size = int(photo.shape[-1])  # a plain int under tracing too: regions are numpy work
        if points5 is None and foreground is None:
            points5 = (self.template_points * size)[None]  # one set of regions for the whole batch
        elif points5 is None:
            points5 = (self.template_points * size).expand(photo.shape[0], 5, 2)
        regions = Regions.from_points(points5, size, foreground)
        drawing = self.generator(photo * 2 - 1, regions).output
        return ((drawing + 1) * 0.5).clamp(0, 1)
