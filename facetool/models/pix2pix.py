"""pix2pix (Isola et al. 2017): a U-Net generator, a conditional 70×70 PatchGAN on (source, image) pairs, and
``adversarial + λ·L1`` for the generator.

Plugins reuse it with their own roles: ``pix2pix_train_spec("photo", "loomis")``. This module imports no torch at
import time (the trainer imports it when built), so a plugin can hand its options class to the CLI at registration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from facetool.models.options import GanMode, check_gan_training
from facetool.train.spec import TrainSetup, TrainSpec

if TYPE_CHECKING:
    import torch

__all__ = ["Pix2PixOptions", "Pix2PixRoleOptions", "Pix2PixTrainer", "pix2pix_train_spec"]

#: The one data stream of a paired method.
STREAM = "pair"


@dataclass
class Pix2PixOptions:
    """pix2pix training settings (``facetool train METHOD -O key=value``); defaults are the paper's."""

    lambda_l1: float = field(default=100.0, metadata={"help": "weight of the L1 term (on [-1, 1] images)"})
    gan_mode: GanMode = field(default="vanilla", metadata={"help": "adversarial loss (wgan adds a gradient penalty)"})
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate of G and D"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1"})
    decay_from: float = field(default=0.5, metadata={"help": "fraction of the steps before the linear decay to 0"})
    generator: Literal["compact", "pix2pix_256"] = field(
        default="compact", metadata={"help": "U-Net size: compact (4.2 M params) or pix2pix_256 (54.4 M)"}
    )
    upsample: Literal["deconv", "resize"] = field(
        default="deconv", metadata={"help": "U-Net up-sampling: deconv, or resize (bilinear + conv, no checkerboard)"}
    )
    g_levels: int = field(default=8, metadata={"help": "U-Net levels (8: 1×1 bottleneck at 256²)"})
    norm: Literal["batch", "instance"] = field(
        default="batch",
        metadata={
            "help": "G and D norm (paper: batch). At batch size 1, batch norm trains on per-image statistics and "
            "runs on running averages: instance norm behaves the same in both"
        },
    )
    d_base: int = field(default=64, metadata={"help": "PatchGAN channels at its first layer"})

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lambda_l1) and self.lambda_l1 >= 0):
            raise ValueError("lambda-l1 must be >= 0")
        if self.generator not in ("compact", "pix2pix_256"):
            raise ValueError(f"generator must be compact or pix2pix_256, not {self.generator!r}")
        if self.upsample not in ("deconv", "resize"):
            raise ValueError(f"upsample must be deconv or resize, not {self.upsample!r}")
        check_gan_training(self.lr, self.beta1, self.decay_from, self.gan_mode)
        if self.norm not in ("batch", "instance"):
            raise ValueError(f"norm must be batch or instance, not {self.norm!r}")
        if not 2 <= self.g_levels <= 9:
            raise ValueError("g-levels must be 2 to 9")
        if not 1 <= self.d_base <= 512:
            raise ValueError("d-base must be 1 to 512")


@dataclass
class Pix2PixRoleOptions(Pix2PixOptions):
    """:class:`Pix2PixOptions` plus the data roles, for the generic method on any paired folder."""

    source: str = field(default="photo", metadata={"help": "data role the generator reads"})
    target: str = field(default="drawing", metadata={"help": "data role it learns to produce"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.source or not self.target or self.source == self.target:
            raise ValueError("source and target must be two different data roles")


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


class Pix2PixTrainer:
    """Nets ``G`` (U-Net, source -> target) and ``D`` (PatchGAN on the channel concatenation [source, image]).

    One :meth:`train_step` = one D update on (real pair, detached fake pair), then one G update on
    ``adversarial(D([source, G(source)])) + lambda_l1 · |G(source) - target|₁``, as the reference orders them.
    Images are in [-1, 1] inside (the generator's tanh range), so λ = 100 weighs L1 as in the paper.
    """

    def __init__(self, setup: TrainSetup, source: str, target: str, channels: Mapping[str, int] | None = None) -> None:
        from facetool.data.datasets import ROLE_CHANNELS
        from facetool.losses.gan import GANLoss
        from facetool.models.common import gan_optimizers
        from facetool.nets.patchgan import PatchGAN, PatchGANConfig
        from facetool.nets.unet import UNet, UNetConfig

        options = setup.options if setup.options is not None else Pix2PixOptions()
        channels = {**ROLE_CHANNELS, **(channels or {})}
        self.setup, self.options, self.source, self.target = setup, options, source, target
        cin, cout = channels.get(source, 3), channels.get(target, 3)
        make = UNetConfig.compact if options.generator == "compact" else UNetConfig.pix2pix_256
        g_config = make(
            in_channels=cin, out_channels=cout, upsample=options.upsample, levels=options.g_levels, norm=options.norm
        )
        d_config = PatchGANConfig(in_channels=cin + cout, base=options.d_base, layers=3, norm=options.norm)
        self.configs: dict[str, Any] = {"G": g_config, "D": d_config}
        self.nets = {"G": UNet(g_config).to(setup.device), "D": PatchGAN(d_config).to(setup.device)}
        self.optimizers, self.schedulers = gan_optimizers(
            self.nets, options.lr, options.beta1, setup.steps, options.decay_from
        )
        self.export: tuple[str, ...] = ("G",)
        self.gan = GANLoss(options.gan_mode)

    def _pair(self, batch: Mapping[str, Mapping[str, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        from facetool.models.common import to_signed

        pair = batch[STREAM]
        return to_signed(pair[self.source]), to_signed(pair[self.target])

    def train_step(self, batch: Mapping[str, Mapping[str, torch.Tensor]], step: int) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        from facetool.losses.gan import gradient_penalty

        amp, wrap = self.setup.amp, self.setup.wrap
        G, D = wrap(self.nets["G"]), wrap(self.nets["D"])
        source, target = self._pair(batch)
        with amp.autocast():
            fake = G(source)

        # D: real pairs towards "real", detached fakes towards "fake".
        self.nets["D"].requires_grad_(True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        with amp.autocast():
            real_pair = torch.cat([source, target], dim=1)
            fake_pair = torch.cat([source, fake.detach()], dim=1)
            loss_d = self.gan.d_loss(D(real_pair), D(fake_pair))
            if self.options.gan_mode == "wgan":
                loss_d = loss_d + gradient_penalty(D, real_pair.float(), fake_pair.float())
        amp.backward(loss_d)
        amp.step(self.optimizers["D"])

        # G: fool D (whose weights stay fixed: no grads are computed for them) and stay close to the target.
        self.nets["D"].requires_grad_(False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        with amp.autocast():
            loss_gan = self.gan.g_loss(D(torch.cat([source, fake], dim=1)))
            loss_l1 = F.l1_loss(fake.float(), target.float())
            loss_g = loss_gan + self.options.lambda_l1 * loss_l1
        amp.backward(loss_g)
        amp.step(self.optimizers["G"])
        self.nets["D"].requires_grad_(True)

        for scheduler in self.schedulers.values():
            scheduler.step()
        return {"D": loss_d.item(), "G_gan": loss_gan.item(), "G_L1": loss_l1.item()}

    def samples(self, batch: Mapping[str, Mapping[str, torch.Tensor]]) -> list[torch.Tensor]:
        """[source, output, target] columns in [0, 1]; G runs in eval mode, as at inference."""
        import torch

        from facetool.models.common import to_unit

        G = self.nets["G"]
        source, target = self._pair(batch)
        was_training = G.training
        G.eval()
        try:
            with torch.no_grad():
                fake = G(source).float()
        finally:
            G.train(was_training)
        return [to_unit(source), to_unit(fake), to_unit(target)]


def pix2pix_train_spec(
    source_role: str | None = None,
    target_role: str | None = None,
    options_cls: type = Pix2PixOptions,
    default_steps: int = 20000,
    default_batch_size: int = 1,
    channels: Mapping[str, int] | None = None,
) -> TrainSpec:
    """A :class:`TrainSpec` training pix2pix from ``source_role`` to ``target_role`` (stream ``"pair"``).

    Roles None: they come from the options' ``source`` / ``target`` fields (``options_cls`` must have them, as
    :class:`Pix2PixRoleOptions` does). ``channels`` overrides :data:`facetool.data.datasets.ROLE_CHANNELS`.
    Defaults: 20k steps at batch 1 (pix2pix's facades run is 200 epochs × 400 images at batch 1 = 80k).
    """
    if (source_role is None) != (target_role is None):
        raise ValueError("give both roles or neither")
    if source_role is None and not {"source", "target"} <= set(getattr(options_cls, "__dataclass_fields__", {})):
        raise ValueError(f"{options_cls.__name__} has no source / target fields: give the roles")

    def roles(options: Any) -> tuple[str, str]:
        if source_role is not None:
            return source_role, target_role  # type: ignore[return-value]
        options = options if options is not None else options_cls()
        return options.source, options.target

    def streams(options: Any) -> dict[str, tuple[str, ...]]:
        return {STREAM: roles(options)}

    def build(setup: TrainSetup) -> Pix2PixTrainer:
        if setup.options is None:
            setup.options = options_cls()
        return Pix2PixTrainer(setup, *roles(setup.options), channels=channels)

    return TrainSpec(
        build=build,
        streams=streams,
        options=options_cls,
        default_steps=default_steps,
        default_batch_size=default_batch_size,
    )
