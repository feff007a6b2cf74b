"""Training FaceVision on ``facetool data maps`` folders (photo -> depth + correspondence).

Generator loss, for each of the two outputs: adversarial (a 70×70 PatchGAN on [photo, output]) + λ1·L1 + λg·L1
between image gradients (sharp depth edges and correspondence boundaries). Both discriminators share one optimiser.

Depth is only defined on the face (the mesh keeps the pixels the correspondence map calls face), so by default its
L1 and gradient terms run over the target's face mask (``depth_mask``): unmasked, the jump from the background to
the face outweighs the face's own relief in both terms — measured in the model card, same steps and schedule.
Correspondence stays unmasked: its black background is how the net says where the face is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from facetool.models.options import GanMode, check_gan_training
from facetool.train.spec import TrainSetup, TrainSpec

STREAM = "maps"
ROLES = ("photo", "depth", "pncc", "mask")
OUTPUTS = {"depth": 1, "pncc": 3}


@dataclass
class FaceVisionOptions:
    """``facetool train facevision -T key=value``."""

    lambda_l1: float = field(default=100.0, metadata={"help": "weight of the L1 term of each output"})
    lambda_grad: float = field(default=100.0, metadata={"help": "weight of the image-gradient L1 of each output"})
    gan_mode: GanMode = field(default="vanilla", metadata={"help": "adversarial loss"})
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate of G and D"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1"})
    decay_from: float = field(default=0.5, metadata={"help": "fraction of the steps before the linear decay to 0"})
    base: int = field(default=32, metadata={"help": "U-Net channels at its first level"})
    d_base: int = field(default=32, metadata={"help": "PatchGAN channels at their first layer"})
    depth_mask: bool = field(default=True, metadata={"help": "depth L1 and gradient terms on the face mask only"})

    def __post_init__(self) -> None:
        for name in ("lambda_l1", "lambda_grad"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name.replace('_', '-')} must be >= 0")
        check_gan_training(self.lr, self.beta1, self.decay_from, self.gan_mode)


class FaceVisionTrainer:
    def __init__(self, setup: TrainSetup) -> None:
        from torch import nn

        from facetool.losses.gan import GANLoss
        from facetool.models.common import gan_optimizers
        from facetool.nets.patchgan import PatchGAN, PatchGANConfig

        from .net import FaceVisionConfig, FaceVisionNet

        options: FaceVisionOptions = setup.options
        self.setup, self.options = setup, options
        levels = max(3, math.ceil(math.log2(setup.size)))  # a 1×1 bottleneck, as pix2pix's U-Net at 256²
        g_config = FaceVisionConfig(levels=levels, base=options.base)
        d_configs = {
            k: PatchGANConfig(in_channels=3 + c, base=options.d_base, norm="instance") for k, c in OUTPUTS.items()
        }
        self.configs: dict[str, Any] = {"G": g_config, **{f"D_{k}": c for k, c in d_configs.items()}}
        self.nets = {"G": FaceVisionNet(g_config).to(setup.device)}
        self.nets |= {f"D_{k}": PatchGAN(c).to(setup.device) for k, c in d_configs.items()}
        d_params = nn.ModuleList([self.nets[f"D_{k}"] for k in OUTPUTS]).parameters()
        self.optimizers, self.schedulers = gan_optimizers(
            {"G": self.nets["G"], "D": d_params}, options.lr, options.beta1, setup.steps, options.decay_from
        )
        self.export: tuple[str, ...] = ("G",)
        self.gan = GANLoss(options.gan_mode)

    def _batch(self, batch: Mapping[str, Mapping[str, Any]]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        """(photo, targets, loss masks: None = every pixel) in the generator's [-1, 1]."""
        from facetool.models.common import to_signed

        maps = batch[STREAM]
        masks = {k: None for k in OUTPUTS}
        if self.options.depth_mask:
            masks["depth"] = (maps["mask"] > 0.5).float()
        return to_signed(maps["photo"]), {k: to_signed(maps[k][:, : OUTPUTS[k]]) for k in OUTPUTS}, masks

    def train_step(self, batch: Mapping[str, Mapping[str, Any]], step: int) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        from facetool.losses.image import gradient_l1, masked_l1

        o, amp, wrap = self.options, self.setup.amp, self.setup.wrap
        photo, targets, masks = self._batch(batch)
        with amp.autocast():
            fakes = dict(zip(OUTPUTS, wrap(self.nets["G"])(photo), strict=True))
        discriminators = {k: wrap(self.nets[f"D_{k}"]) for k in OUTPUTS}

        self.optimizers["D"].zero_grad(set_to_none=True)
        with amp.autocast():
            loss_d = sum(
                self.gan.d_loss(D(torch.cat([photo, targets[k]], 1)), D(torch.cat([photo, fakes[k].detach()], 1)))
                for k, D in discriminators.items()
            )
        amp.backward(loss_d)
        amp.step(self.optimizers["D"])

        for k in OUTPUTS:
            self.nets[f"D_{k}"].requires_grad_(False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        losses: dict[str, Any] = {}
        with amp.autocast():
            total = 0.0
            for k, D in discriminators.items():
                fake, target = fakes[k].float(), targets[k].float()
                losses[f"G_gan_{k}"] = self.gan.g_loss(D(torch.cat([photo, fakes[k]], 1)))
                mask = masks[k]
                losses[f"G_L1_{k}"] = F.l1_loss(fake, target) if mask is None else masked_l1(fake, target, mask)
                losses[f"G_grad_{k}"] = gradient_l1(fake, target, mask)
                total = total + losses[f"G_gan_{k}"] + o.lambda_l1 * losses[f"G_L1_{k}"]
                total = total + o.lambda_grad * losses[f"G_grad_{k}"]
        amp.backward(total)
        amp.step(self.optimizers["G"])
        for k in OUTPUTS:
            self.nets[f"D_{k}"].requires_grad_(True)
        for scheduler in self.schedulers.values():
            scheduler.step()
        return {"D": loss_d.item(), **{k: float(v.detach()) for k, v in losses.items()}}

    def samples(self, batch: Mapping[str, Mapping[str, Any]]) -> list[Any]:
        """[photo, depth, depth target, correspondence, correspondence target] in [0, 1]; G in eval mode."""
        import torch

        from facetool.models.common import to_unit

        G = self.nets["G"]
        photo, targets, _ = self._batch(batch)
        was_training = G.training
        G.eval()
        try:
            with torch.no_grad():
                depth, pncc = G(photo)
        finally:
            G.train(was_training)
        return [to_unit(x.float()) for x in (photo, depth, targets["depth"], pncc, targets["pncc"])]


def facevision_train_spec() -> TrainSpec:
    def build(setup: TrainSetup) -> FaceVisionTrainer:
        if setup.options is None:
            setup.options = FaceVisionOptions()
        return FaceVisionTrainer(setup)

    return TrainSpec(build=build, streams=lambda options: {STREAM: ROLES}, options=FaceVisionOptions,
                     default_steps=3000, default_batch_size=8)  # fmt: skip
