"""Training APDrawingGAN on (photo, drawing) pairs with 5-point labels.

Loss of the generator (the paper's Eq. 1): ``adversarial + λ1·L1 + λ2·DT + λ3·local``, with the adversarial term
summed over the global and the six local discriminators, L1 on the output, DT the chamfer distance both ways
between the output and the binarised target with the generated side soft (:func:`facetool.losses.image.
chamfer_dt_loss`; the upstream code's second term sends no gradient), and ``local`` the L1 of each local net's
drawing against the target's same region. The discriminators minimise the usual conditional GAN loss on (photo,
drawing) for every view.

Two stages, as §6 of the paper: pre-train with ``-T lambda-dt=0`` on NPR pairs (``facetool data drawings``), then
train from that run with ``-T init=PRETRAIN_RUN`` (weights only: fresh optimisers and schedules) on the drawings
to imitate, with the DT term on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from facetool.errors import UsageError
from facetool.models.options import GanMode, check_gan_training
from facetool.train.spec import TrainSetup, TrainSpec

if TYPE_CHECKING:
    import torch

STREAM = "pair"
ROLES = ("photo", "drawing")


@dataclass
class APDrawingOptions:
    """``facetool train apdrawing -T key=value``; loss weights are the paper's."""

    lambda_l1: float = field(default=100.0, metadata={"help": "weight of the L1 term (on [-1, 1] drawings)"})
    lambda_dt: float = field(default=0.1, metadata={"help": "weight of the distance-transform (chamfer) term; 0 = off"})
    lambda_local: float = field(default=25.0, metadata={"help": "weight of the local nets' L1 to the target parts"})
    local: bool = field(default=True, metadata={"help": "local nets and discriminators (false: the no-local ablation)"})
    dt_distance: float = field(default=10.0, metadata={"help": "distance cap of the DT term, px at 256²"})
    gan_mode: GanMode = field(default="vanilla", metadata={"help": "adversarial loss"})
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate of G and D"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1"})
    decay_from: float = field(default=0.5, metadata={"help": "fraction of the steps before the linear decay to 0"})
    base: int = field(default=32, metadata={"help": "global U-Net channels at its first level"})
    d_base: int = field(default=32, metadata={"help": "PatchGAN channels at their first layer"})
    init: str = field(default="", metadata={"help": "run folder or weights file to start from (pre-training)"})

    def __post_init__(self) -> None:
        for name in ("lambda_l1", "lambda_dt", "lambda_local", "dt_distance"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name.replace('_', '-')} must be >= 0")
        if not 1 <= self.dt_distance <= 40:
            raise ValueError("dt-distance must be 1 to 40 px")
        check_gan_training(self.lr, self.beta1, self.decay_from, self.gan_mode)
        if not 4 <= self.base <= 256 or not 4 <= self.d_base <= 256:
            raise ValueError("base and d-base must be 4 to 256")


class APDrawingTrainer:
    """Nets ``G`` (:class:`APDrawingGenerator`) and ``D`` (:class:`APDrawingDiscriminators`)."""

    def __init__(self, setup: TrainSetup) -> None:
        from facetool.losses.gan import GANLoss
        from facetool.models.common import gan_optimizers

        from .net import (
            APDrawingConfig,
            APDrawingDConfig,
            APDrawingDiscriminators,
            APDrawingGenerator,
            global_levels,
            part_layers,
        )

        options: APDrawingOptions = setup.options
        self.setup, self.options = setup, options
        g_config = APDrawingConfig(global_levels=global_levels(setup.size), base=options.base, local=options.local)
        d_config = APDrawingDConfig(base=options.d_base, local=options.local, part_layers=part_layers(setup.size))
        self.configs: dict[str, Any] = {"G": g_config, "D": d_config}
        self.nets = {
            "G": APDrawingGenerator(g_config).to(setup.device),
            "D": APDrawingDiscriminators(d_config).to(setup.device),
        }
        if options.init:
            self._load_init(options.init)
        self.optimizers, self.schedulers = gan_optimizers(
            self.nets, options.lr, options.beta1, setup.steps, options.decay_from
        )
        self.export: tuple[str, ...] = ("G",)
        self.gan = GANLoss(options.gan_mode)

    def _load_init(self, path: str) -> None:
        """Start from another apdrawing run or weights file: G always, D when the run has one of the same shape."""
        from pathlib import Path

        from facetool.models.common import net_configs
        from facetool.train.checkpoint import config_from_record, load_weights

        source = Path(path).expanduser()
        if not source.exists():
            raise UsageError(f"-T init={path}: no such run folder or weights file")
        configs, method = net_configs(source)
        if method not in (None, "apdrawing") or "G" not in configs:
            raise UsageError(f"-T init={path}: holds weights of method {method}, not apdrawing")
        nets = {}
        for name in ("G", "D"):
            if name not in configs:
                continue  # an exported weights file has G only: D starts fresh
            theirs, ours = config_from_record(configs[name]), self.configs[name]
            if theirs != ours:
                if name == "D":
                    continue  # a differently sized D is not worth keeping: it re-learns fast
                differ = [f"{k} {getattr(theirs, k, None)} vs {v}" for k, v in vars(ours).items()
                          if getattr(theirs, k, None) != v]  # fmt: skip
                raise UsageError(f"-T init={path}: its generator differs from this run's ({'; '.join(differ)})")
            nets[name] = self.nets[name]
        load_weights(source, nets)

    def _batch(self, batch: Mapping[str, Mapping[str, Any]]) -> tuple[Any, Any, Any]:
        import torch

        from facetool.models.common import to_signed

        from .net import Regions

        pair = batch[STREAM]
        if not isinstance(pair.get("points5"), torch.Tensor):  # missing, or missing on some items (a ragged list)
            raise UsageError(
                "apdrawing needs 5-point labels on every item (facetool data drawings and data import write them)"
            )
        photo, target = to_signed(pair["photo"]), to_signed(pair["drawing"][:, :1])
        regions = Regions.from_points(pair["points5"].to(photo.device), photo.shape[-1])
        return photo, target, regions

    def train_step(self, batch: Mapping[str, Mapping[str, torch.Tensor]], step: int) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        from facetool.losses.image import chamfer_dt_loss

        from .net import discriminator_views
        from .regions import BOX_PARTS, crop_boxes, on_paper

        o, amp = self.options, self.setup.amp
        G, D = self.setup.wrap(self.nets["G"]), self.setup.wrap(self.nets["D"])
        photo, target, regions = self._batch(batch)
        with amp.autocast():
            drawing = G(photo, regions)
        fake = drawing.output

        # D: every view of the real pair towards "real", of the detached fake towards "fake".
        self.nets["D"].requires_grad_(True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        with amp.autocast():
            real_logits = D(discriminator_views(photo, target, regions, o.local))
            fake_logits = D(discriminator_views(photo, fake.detach(), regions, o.local))
            loss_d = sum(self.gan.d_loss(real_logits[k], fake_logits[k]) for k in real_logits)
        amp.backward(loss_d)
        amp.step(self.optimizers["D"])

        self.nets["D"].requires_grad_(False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        losses: dict[str, Any] = {}
        with amp.autocast():
            logits = D(discriminator_views(photo, fake, regions, o.local))
            losses["G_gan"] = self.gan.g_loss(logits["global"])
            if o.local:
                losses["G_gan_local"] = sum(self.gan.g_loss(v) for k, v in logits.items() if k != "global")
            fake32, target32 = fake.float(), target.float()
            losses["G_L1"] = F.l1_loss(fake32, target32)
            total = losses["G_gan"] + losses.get("G_gan_local", 0.0) + o.lambda_l1 * losses["G_L1"]
            if o.lambda_dt > 0:
                cap = o.dt_distance * fake.shape[-1] / 256
                losses["G_DT"] = chamfer_dt_loss((1 - fake32) / 2, (1 - target32) / 2, max_distance=cap,
                                                 temperature=max(0.25, cap / 40))  # fmt: skip
                total = total + o.lambda_dt * losses["G_DT"]
            if o.local:
                terms = [F.l1_loss(drawing.local_drawings[n].float(), crop_boxes(target32, regions.boxes[n]))
                         for n in BOX_PARTS]  # fmt: skip
                for name in ("hair", "background"):
                    mask = regions.mask(name)
                    terms.append(F.l1_loss(drawing.local_drawings[name].float(), on_paper(target32, mask)))
                losses["G_local"] = torch.stack(terms).sum()
                total = total + o.lambda_local * losses["G_local"]
        amp.backward(total)
        amp.step(self.optimizers["G"])
        self.nets["D"].requires_grad_(True)
        for scheduler in self.schedulers.values():
            scheduler.step()
        return {"D": loss_d.item(), **{k: float(v.detach()) for k, v in losses.items()}}

    def samples(self, batch: Mapping[str, Mapping[str, torch.Tensor]]) -> list[torch.Tensor]:
        """[photo, output, global drawing, merged local drawing, target] in [0, 1]; G in eval mode."""
        import torch

        from facetool.models.common import to_unit

        G = self.nets["G"]
        photo, target, regions = self._batch(batch)
        was_training = G.training
        G.eval()
        try:
            with torch.no_grad():
                drawing = G(photo, regions)
        finally:
            G.train(was_training)
        columns = [photo, drawing.output, drawing.global_drawing]
        if drawing.merged is not None:
            columns.append(drawing.merged)
        return [to_unit(c.float()) for c in [*columns, target]]


def apdrawing_train_spec() -> TrainSpec:
    """The shipped second stage: 256², batch 4, 600 steps (instance norm makes the batch size free; at 4 a step
    takes ~6 s on one CPU core). Pre-training is the same command with ``-T lambda-dt=0``."""

    def build(setup: TrainSetup) -> APDrawingTrainer:
        if setup.options is None:
            setup.options = APDrawingOptions()
        return APDrawingTrainer(setup)

    return TrainSpec(
        build=build,
        streams=lambda options: {STREAM: ROLES},
        options=APDrawingOptions,
        default_steps=600,
        default_batch_size=4,
    )
