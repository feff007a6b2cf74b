"""Adversarial losses, the WGAN-GP gradient penalty and CycleGAN's history pool of generated images.

Modes (``l`` = discriminator logits / critic outputs, means over every element, so PatchGAN maps of any shape work):

=========  =================================  ==================================  ====================
mode       discriminator on real               discriminator on fake               generator
=========  =================================  ==================================  ====================
vanilla    ``BCE(l, 1) = softplus(-l)``       ``BCE(l, 0) = softplus(l)``         ``softplus(-l)``
lsgan      ``(l - 1)**2``                     ``l**2``                            ``(l - 1)**2``
wgan       ``-l``                             ``l``                               ``-l``
hinge      ``relu(1 - l)``                    ``relu(1 + l)``                     ``-l``
=========  =================================  ==================================  ====================

The discriminator loss is ``real + fake`` halved for vanilla and lsgan (pix2pix/CycleGAN halve it so D learns slower
than G; the LSGAN paper has the same 1/2) and not halved for wgan and hinge (as in their papers: WGAN-GP's penalty
weight 10 is calibrated against ``E[D(fake)] - E[D(real)]``). The vanilla generator loss is the non-saturating one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GAN_MODES = ("vanilla", "lsgan", "wgan", "hinge")
_HALVED_D_LOSS = {"vanilla": True, "lsgan": True, "wgan": False, "hinge": False}

Logits = Tensor | Sequence[Tensor]


def _check_mode(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ValueError(f"unknown GAN loss mode {mode!r}; expected one of {', '.join(GAN_MODES)}")


def _as_list(logits: Logits) -> list[Tensor]:
    """One tensor, or the outputs of several discriminators (multi-scale), as a non-empty list."""
    outputs = [logits] if isinstance(logits, Tensor) else list(logits)
    if not outputs:
        raise ValueError("expected at least one discriminator output")
    return outputs


def _mean_over(logits: Logits, term: Callable[[Tensor], Tensor]) -> Tensor:
    outputs = _as_list(logits)
    return torch.stack([term(output) for output in outputs]).mean()


def _real_term(logits: Tensor, mode: str) -> Tensor:
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    if mode == "lsgan":
        return F.mse_loss(logits, torch.ones_like(logits))
    if mode == "wgan":
        return -logits.mean()
    return F.relu(1.0 - logits).mean()


def _fake_term(logits: Tensor, mode: str) -> Tensor:
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
    if mode == "lsgan":
        return F.mse_loss(logits, torch.zeros_like(logits))
    if mode == "wgan":
        return logits.mean()
    return F.relu(1.0 + logits).mean()


def d_real_loss(logits: Logits, mode: str) -> Tensor:
    """Discriminator loss on real samples (the table's first column), for composing several real/fake sets.

    Args:
        logits: :math:`(B, *)` discriminator outputs, or a list of them (several discriminators: mean over them).
        mode: one of ``vanilla``, ``lsgan``, ``wgan``, ``hinge``.

    Returns:
        scalar.
    """
    _check_mode(mode)
    return _mean_over(logits, lambda out: _real_term(out, mode))


def d_fake_loss(logits: Logits, mode: str) -> Tensor:
    """Discriminator loss on generated samples (the table's second column); shapes as :func:`d_real_loss`.

    CartoonGAN, say, adds a second fake set (edge-smoothed cartoons) with this.
    """
    _check_mode(mode)
    return _mean_over(logits, lambda out: _fake_term(out, mode))


def discriminator_loss(real_logits: Logits, fake_logits: Logits, mode: str) -> Tensor:
    """Discriminator (critic) loss: ``real + fake``, halved for vanilla and lsgan (see the module docstring).

    Args:
        real_logits: :math:`(B, *)` outputs on real samples, or a list of them (one per discriminator).
        fake_logits: :math:`(B, *)` outputs on generated samples (detached from the generator), or a list.
        mode: one of ``vanilla``, ``lsgan``, ``wgan``, ``hinge``.

    Returns:
        scalar.
    """
    loss = d_real_loss(real_logits, mode) + d_fake_loss(fake_logits, mode)
    return 0.5 * loss if _HALVED_D_LOSS[mode] else loss


def generator_loss(fake_logits: Logits, mode: str) -> Tensor:
    """Generator loss: make the discriminator call generated samples real.

    Args:
        fake_logits: :math:`(B, *)` discriminator outputs on generated samples (not detached), or a list of them.
        mode: one of ``vanilla``, ``lsgan``, ``wgan``, ``hinge``.

    Returns:
        scalar.
    """
    _check_mode(mode)
    if mode in ("wgan", "hinge"):
        return _mean_over(fake_logits, lambda out: -out.mean())
    return _mean_over(fake_logits, lambda out: _real_term(out, mode))


class GANLoss(nn.Module):
    """Adversarial loss of one ``mode`` for both sides: ``d_loss(real, fake)`` and ``g_loss(fake)``.

    ``forward(fake_logits)`` is ``g_loss``, so the module can sit in a list of generator losses.
    """

    def __init__(self, mode: str = "lsgan") -> None:
        super().__init__()
        _check_mode(mode)
        self.mode = mode

    def d_loss(self, real_logits: Logits, fake_logits: Logits) -> Tensor:
        return discriminator_loss(real_logits, fake_logits, self.mode)

    def g_loss(self, fake_logits: Logits) -> Tensor:
        return generator_loss(fake_logits, self.mode)

    def forward(self, fake_logits: Logits) -> Tensor:
        return self.g_loss(fake_logits)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
    weight: float = 10.0,
) -> Tensor:
    r"""WGAN-GP gradient penalty :math:`\lambda\,\mathbb{E}[(\lVert\nabla_{\hat x} D(\hat x)\rVert_2 - 1)^2]`.

    :math:`\hat x = \alpha x_{real} + (1 - \alpha) x_{fake}` with one :math:`\alpha \sim U[0, 1)` per sample. The
    graph is kept (``create_graph``), so backpropagating the result trains the critic's parameters. A critic with
    a map output (PatchGAN) is penalised on the gradient of the sum of its outputs.

    Args:
        critic: maps :math:`(B, *)` to :math:`(B, *)` (or :math:`(B,)`) scores.
        real: :math:`(B, *)` real samples.
        fake: :math:`(B, *)` generated samples; detached here, the penalty trains only the critic.
        generator: draws the :math:`\alpha` (on the samples' device) for reproducible runs; None: the global RNG.
        weight: :math:`\lambda`.

    Returns:
        scalar.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    alpha_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    alpha = torch.rand(alpha_shape, generator=generator, device=real.device, dtype=real.dtype)
    interpolates = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(interpolates)
    (grads,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    # The small epsilon keeps the norm's gradient finite for a critic that is flat at a sample.
    norms = torch.sqrt(grads.flatten(1).pow(2).sum(dim=1) + 1e-12)
    return weight * (norms - 1.0).pow(2).mean()


class GradientPenalty(nn.Module):
    """:func:`gradient_penalty` with a fixed ``weight``: ``forward(critic, real, fake, generator=None)``."""

    def __init__(self, weight: float = 10.0) -> None:
        super().__init__()
        self.weight = weight

    def forward(
        self,
        critic: Callable[[Tensor], Tensor],
        real: Tensor,
        fake: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        return gradient_penalty(critic, real, fake, generator=generator, weight=self.weight)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


class ImagePool:
    """History of generated images (Shrivastava et al. 2017, used by CycleGAN) for discriminator updates.

    ``query(images)`` goes image by image: while the pool holds fewer than ``size`` images it stores the image
    and returns it; once full, with probability 1/2 it returns a stored image picked uniformly and stores the new
    one in its place, else it returns the new image. ``size=0`` returns the batch unchanged. Draws come from
    ``generator`` (a CPU :class:`torch.Generator`), so a seeded pool replays the same choices; stored images are
    detached copies on the images' device.
    """

    def __init__(self, size: int = 50, generator: torch.Generator | None = None) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.generator = generator
        self.images: list[Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: Tensor) -> Tensor:
        """:math:`(B, *)` newest generated images -> :math:`(B, *)` images for the discriminator (detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        chosen = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                chosen.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                index = int(torch.randint(self.size, (), generator=self.generator).item())
                chosen.append(self.images[index])
                self.images[index] = image.clone()
            else:
                chosen.append(image)
        return torch.stack(chosen)

    __call__ = query

    def state_dict(self) -> dict[str, Tensor]:
        """The stored images as one :math:`(N, *)` tensor (empty pool: no entry), for resumable checkpoints."""
        return {"images": torch.stack(self.images)} if self.images else {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        images = state.get("images")
        self.images = [] if images is None else [image.clone() for image in images[: self.size]]


def pools_state(pools: dict[str, ImagePool]) -> dict[str, Tensor]:
    """Named pools' contents as ``{"pool_<name>": (N, *) CPU tensor}`` (empty pools left out), for a trainer's
    ``extra_state`` (checkpointed, so a resumed run continues with the same history)."""
    state = {}
    for name, pool in pools.items():
        images = pool.state_dict().get("images")
        if images is not None:
            state[f"pool_{name}"] = images.detach().cpu()
    return state


def load_pools_state(pools: dict[str, ImagePool], tensors: Any, device: Any) -> None:
    """The inverse of :func:`pools_state`: refill each pool from ``tensors`` on ``device`` (absent: empty)."""
    for name, pool in pools.items():
        images = tensors.get(f"pool_{name}")
        pool.load_state_dict({} if images is None else {"images": images.to(device)})
