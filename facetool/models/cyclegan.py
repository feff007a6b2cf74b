"""CycleGAN (Zhu et al. 2017): two ResNet generators A -> B and B -> A, two unconditional PatchGANs, LSGAN, cycle
and identity L1 losses and a history pool of generated images per discriminator, on unpaired data.

Naming: ``D_A`` judges domain-A images (real A vs G_BA's fakes), ``D_B`` domain-B ones (the reference names them
the other way round). Two data streams, ``"A"`` and ``"B"``, each drawn in its own order. Torch is imported only
when a trainer is built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from facetool.models.options import GanMode, check_gan_training
from facetool.train.spec import TrainSetup, TrainSpec

if TYPE_CHECKING:
    import torch

__all__ = ["CycleGANOptions", "CycleGANRoleOptions", "CycleGANTrainer", "cyclegan_train_spec"]


@dataclass
class CycleGANOptions:
    """CycleGAN training settings (``-O key=value``); the paper's, except ``g_base`` (see its help)."""

    lambda_a: float = field(default=10.0, metadata={"help": "weight of the A -> B -> A cycle L1"})
    lambda_b: float = field(default=10.0, metadata={"help": "weight of the B -> A -> B cycle L1"})
    lambda_identity: float = field(
        default=0.5, metadata={"help": "identity L1 weight, relative to lambda-a / lambda-b (0: off)"}
    )
    pool_size: int = field(default=50, metadata={"help": "generated images kept for the discriminators (0: none)"})
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1"})
    decay_from: float = field(default=0.5, metadata={"help": "fraction of the steps before the linear decay to 0"})
    gan_mode: GanMode = field(default="lsgan", metadata={"help": "adversarial loss"})
    g_base: int = field(
        default=32, metadata={"help": "generator channels at the first layer (paper: 64; 32 is 4× cheaper)"}
    )
    g_blocks: int = field(default=9, metadata={"help": "residual blocks per generator"})
    d_base: int = field(default=64, metadata={"help": "PatchGAN channels at its first layer"})

    def __post_init__(self) -> None:
        for name in ("lambda_a", "lambda_b", "lambda_identity"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name.replace('_', '-')} must be >= 0")
        if not 0 <= self.pool_size <= 10000:
            raise ValueError("pool-size must be 0 to 10000")
        check_gan_training(self.lr, self.beta1, self.decay_from, self.gan_mode)
        if not 1 <= self.g_base <= 256 or not 1 <= self.d_base <= 512:
            raise ValueError("g-base must be 1 to 256 and d-base 1 to 512")
        if not 0 <= self.g_blocks <= 32:
            raise ValueError("g-blocks must be 0 to 32")


@dataclass
class CycleGANRoleOptions(CycleGANOptions):
    """:class:`CycleGANOptions` plus the two domains' data roles, for the generic method on any folders."""

    a: str = field(default="photo", metadata={"help": "data role of domain A (the input at inference)"})
    b: str = field(default="drawing", metadata={"help": "data role of domain B (the output at inference)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.a or not self.b:
            raise ValueError("a and b must name data roles")


def identity_l1(generator: Any, real_out: torch.Tensor, in_channels: int) -> torch.Tensor:
    """CycleGAN's identity loss ``|G(y) - y|₁`` for a generator into ``y``'s domain, across channel counts.

    G takes ``in_channels``; ``y`` (B, C_out, H, W) is converted to them (3 -> 1 by luma, 1 -> 3 by repeating).
    When the counts differ, output and ``y`` are compared on min(C_in, C_out) channels (luma when one is gray):
    a gray input carries no colour, so asking G for the colour back would teach it to invent a fixed tint; the
    loss then asks only for what the input held ("leave an image of the target domain as it is").
    """
    import torch.nn.functional as F

    from facetool.models.common import match_channels

    out = generator(match_channels(real_out, in_channels))
    common = min(in_channels, real_out.shape[1])
    return F.l1_loss(match_channels(out.float(), common), match_channels(real_out.float(), common))


class CycleGANTrainer:
    """Nets G_AB, G_BA (ResNet generators), D_A, D_B (70×70 PatchGANs, instance norm, on one domain's images).

    One :meth:`train_step`: the generators together (adversarial both ways + λ_A·cycle_A + λ_B·cycle_B + identity),
    then the discriminators together on real images and pooled fakes, as the reference does. Optimisers ``G``
    (both generators) and ``D`` (both discriminators), as in the reference.
    """

    def __init__(self, setup: TrainSetup, a_role: str, b_role: str, channels: Mapping[str, int] | None = None) -> None:
        import itertools

        from facetool.data.datasets import ROLE_CHANNELS
        from facetool.losses.gan import GANLoss, ImagePool
        from facetool.models.common import gan_optimizers
        from facetool.nets.patchgan import PatchGAN, PatchGANConfig
        from facetool.nets.resnet import ResnetConfig, ResnetGenerator

        options = setup.options if setup.options is not None else CycleGANOptions()
        channels = {**ROLE_CHANNELS, **(channels or {})}
        self.setup, self.options, self.a_role, self.b_role = setup, options, a_role, b_role
        ca, cb = channels.get(a_role, 3), channels.get(b_role, 3)
        self.channels = {"A": ca, "B": cb}

        def generator(cin: int, cout: int) -> ResnetConfig:
            return ResnetConfig(in_channels=cin, out_channels=cout, base=options.g_base, blocks=options.g_blocks)

        def critic(cin: int) -> PatchGANConfig:
            return PatchGANConfig(in_channels=cin, base=options.d_base, layers=3, norm="instance")

        self.configs: dict[str, Any] = {
            "G_AB": generator(ca, cb),
            "G_BA": generator(cb, ca),
            "D_A": critic(ca),
            "D_B": critic(cb),
        }
        self.nets = {
            name: (ResnetGenerator(c) if name.startswith("G") else PatchGAN(c)).to(setup.device)
            for name, c in self.configs.items()
        }
        g_params = itertools.chain(self.nets["G_AB"].parameters(), self.nets["G_BA"].parameters())
        d_params = itertools.chain(self.nets["D_A"].parameters(), self.nets["D_B"].parameters())
        self.optimizers, self.schedulers = gan_optimizers(
            {"G": g_params, "D": d_params}, options.lr, options.beta1, setup.steps, options.decay_from
        )
        self.export: tuple[str, ...] = ("G_AB",)
        self.gan = GANLoss(options.gan_mode)
        # One seeded generator (checkpointed by the engine) for both pools: resume replays the same choices.
        self.pools = {
            "A": ImagePool(options.pool_size, generator=setup.generator),
            "B": ImagePool(options.pool_size, generator=setup.generator),
        }

    def _reals(self, batch: Mapping[str, Mapping[str, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        from facetool.models.common import to_signed

        return to_signed(batch["A"][self.a_role]), to_signed(batch["B"][self.b_role])

    def _set_critics_trainable(self, flag: bool) -> None:
        self.nets["D_A"].requires_grad_(flag)
        self.nets["D_B"].requires_grad_(flag)

    def train_step(self, batch: Mapping[str, Mapping[str, torch.Tensor]], step: int) -> dict[str, float]:
        import torch.nn.functional as F

        amp, wrap, options = self.setup.amp, self.setup.wrap, self.options
        G_AB, G_BA = wrap(self.nets["G_AB"]), wrap(self.nets["G_BA"])
        D_A, D_B = wrap(self.nets["D_A"]), wrap(self.nets["D_B"])
        real_a, real_b = self._reals(batch)

        # Generators: the critics' weights are fixed here (no grads computed for them).
        self._set_critics_trainable(False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        with amp.autocast():
            fake_b = G_AB(real_a)
            fake_a = G_BA(real_b)
            loss_gan_ab = self.gan.g_loss(D_B(fake_b))
            loss_gan_ba = self.gan.g_loss(D_A(fake_a))
            loss_cycle_a = F.l1_loss(G_BA(fake_b).float(), real_a.float())
            loss_cycle_b = F.l1_loss(G_AB(fake_a).float(), real_b.float())
            loss_g = loss_gan_ab + loss_gan_ba + options.lambda_a * loss_cycle_a + options.lambda_b * loss_cycle_b
            losses = {}
            if options.lambda_identity > 0:
                # G_AB should leave a B image as it is, G_BA an A image.
                idt_b = identity_l1(G_AB, real_b, self.channels["A"])
                idt_a = identity_l1(G_BA, real_a, self.channels["B"])
                loss_g = loss_g + options.lambda_identity * (options.lambda_b * idt_b + options.lambda_a * idt_a)
                losses = {"idt_A": idt_a.item(), "idt_B": idt_b.item()}
        amp.backward(loss_g)
        amp.step(self.optimizers["G"])
        self._set_critics_trainable(True)

        # Critics: real vs a pooled (possibly older) fake of their domain.
        self.optimizers["D"].zero_grad(set_to_none=True)
        pooled_a = self.pools["A"].query(fake_a.float())
        pooled_b = self.pools["B"].query(fake_b.float())
        with amp.autocast():
            loss_d_a = self.gan.d_loss(D_A(real_a), D_A(pooled_a))
            loss_d_b = self.gan.d_loss(D_B(real_b), D_B(pooled_b))
        amp.backward(loss_d_a + loss_d_b)
        amp.step(self.optimizers["D"])

        for scheduler in self.schedulers.values():
            scheduler.step()
        return {
            "D_A": loss_d_a.item(),
            "D_B": loss_d_b.item(),
            "G_AB": loss_gan_ab.item(),
            "G_BA": loss_gan_ba.item(),
            "cycle_A": loss_cycle_a.item(),
            "cycle_B": loss_cycle_b.item(),
            **losses,
        }

    def samples(self, batch: Mapping[str, Mapping[str, torch.Tensor]]) -> list[torch.Tensor]:
        """[A, G_AB(A), G_BA(G_AB(A)), B, G_BA(B)] columns in [0, 1] (the shorter stream's batch size)."""
        import torch

        from facetool.models.common import to_unit

        real_a, real_b = self._reals(batch)
        n = min(real_a.shape[0], real_b.shape[0])
        real_a, real_b = real_a[:n], real_b[:n]
        G_AB, G_BA = self.nets["G_AB"], self.nets["G_BA"]
        with torch.no_grad():
            fake_b = G_AB(real_a).float()
            rec_a = G_BA(fake_b).float()
            fake_a = G_BA(real_b).float()
        return [to_unit(x) for x in (real_a, fake_b, rec_a, real_b, fake_a)]

    def extra_state(self) -> dict[str, torch.Tensor]:
        """The two image pools' contents ("pool_A", "pool_B"; absent while empty), on CPU."""
        from facetool.losses.gan import pools_state

        return pools_state(self.pools)

    def load_extra_state(self, tensors: Mapping[str, torch.Tensor]) -> None:
        from facetool.losses.gan import load_pools_state

        load_pools_state(self.pools, tensors, self.setup.device)


def cyclegan_train_spec(
    a_role: str | None = None,
    b_role: str | None = None,
    options_cls: type = CycleGANOptions,
    default_steps: int = 20000,
    default_batch_size: int = 1,
    channels: Mapping[str, int] | None = None,
) -> TrainSpec:
    """A :class:`TrainSpec` for CycleGAN between ``a_role`` and ``b_role`` (streams ``"A"`` and ``"B"``).

    Roles None: from the options' ``a`` / ``b`` fields (:class:`CycleGANRoleOptions`). ``channels`` overrides
    :data:`facetool.data.datasets.ROLE_CHANNELS`. A and B may be two roles of one folder (their items are then
    still drawn in two independent orders, which is what makes the training unpaired).
    """
    if (a_role is None) != (b_role is None):
        raise ValueError("give both roles or neither")
    if a_role is None and not {"a", "b"} <= set(getattr(options_cls, "__dataclass_fields__", {})):
        raise ValueError(f"{options_cls.__name__} has no a / b fields: give the roles")

    def roles(options: Any) -> tuple[str, str]:
        if a_role is not None:
            return a_role, b_role  # type: ignore[return-value]
        options = options if options is not None else options_cls()
        return options.a, options.b

    def streams(options: Any) -> dict[str, tuple[str, ...]]:
        a, b = roles(options)
        return {"A": (a,), "B": (b,)}

    def build(setup: TrainSetup) -> CycleGANTrainer:
        if setup.options is None:
            setup.options = options_cls()
        return CycleGANTrainer(setup, *roles(setup.options), channels=channels)

    return TrainSpec(
        build=build,
        streams=streams,
        options=options_cls,
        default_steps=default_steps,
        default_batch_size=default_batch_size,
    )
