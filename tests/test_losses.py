"""Shared losses: values on hand-computed inputs and gradients, on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from facetool.losses import LossSpec
from facetool.losses.builtin import register_builtin_losses
from facetool.losses.gan import (
    GANLoss,
    GradientPenalty,
    ImagePool,
    d_fake_loss,
    d_real_loss,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)
from facetool.losses.image import (
    ChamferDTLoss,
    chamfer_dt_loss,
    chamfer_dt_terms,
    gradient_l1,
    l1_loss,
    masked_l1,
    soft_distance_transform,
    truncated_distance_transform,
)

LOG2 = math.log(2.0)


# --- adversarial losses ---------------------------------------------------------------------------------------


def test_vanilla_values_at_zero_logits():
    zeros = torch.zeros(2, 1, 3, 3)
    assert discriminator_loss(zeros, zeros, "vanilla").item() == pytest.approx(LOG2)  # (log 2 + log 2) / 2
    assert generator_loss(zeros, "vanilla").item() == pytest.approx(LOG2)
    logits = torch.tensor([2.0, -1.0])
    expected_real = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(1.0))) / 2
    assert d_real_loss(logits, "vanilla").item() == pytest.approx(expected_real, rel=1e-6)


def test_lsgan_values():
    ones, zeros = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    assert discriminator_loss(ones, zeros, "lsgan").item() == 0.0
    assert discriminator_loss(zeros, ones, "lsgan").item() == pytest.approx(1.0)  # (1 + 1) / 2
    assert generator_loss(ones, "lsgan").item() == 0.0
    assert generator_loss(torch.tensor([0.0, 3.0]), "lsgan").item() == pytest.approx((1.0 + 4.0) / 2)


def test_wgan_values():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.5])
    assert discriminator_loss(real, fake, "wgan").item() == pytest.approx(-0.25 - 2.0)  # mean(fake) - mean(real)
    assert generator_loss(fake, "wgan").item() == pytest.approx(0.25)


def test_hinge_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.0])
    # relu(1 - real) = [0, 0.5], relu(1 + fake) = [0, 1]
    assert discriminator_loss(real, fake, "hinge").item() == pytest.approx(0.25 + 0.5)
    assert d_real_loss(real, "hinge").item() == pytest.approx(0.25)
    assert d_fake_loss(fake, "hinge").item() == pytest.approx(0.5)
    assert generator_loss(fake, "hinge").item() == pytest.approx(1.5)


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "wgan", "hinge"])
def test_generator_gradient_pushes_fake_logits_up(mode):
    fake = torch.full((2, 1, 3, 3), -0.3, requires_grad=True)
    GANLoss(mode).g_loss(fake).backward()
    assert (fake.grad < 0).all()  # gradient descent raises the logits


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "wgan", "hinge"])
def test_discriminator_gradient_separates_real_and_fake(mode):
    real = torch.full((2, 1, 3, 3), 0.2, requires_grad=True)
    fake = torch.full((2, 1, 3, 3), 0.1, requires_grad=True)
    GANLoss(mode).d_loss(real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()


def test_multi_discriminator_lists_are_averaged():
    loss = GANLoss("lsgan")
    scale1, scale2 = torch.zeros(1, 1, 8, 8), torch.full((1, 1, 4, 4), 3.0)
    # g: mean of (0-1)^2 = 1 and (3-1)^2 = 4
    assert loss.g_loss([scale1, scale2]).item() == pytest.approx(2.5)
    assert loss([scale1, scale2]).item() == pytest.approx(2.5)
    # d: real terms 1 and 4, fake terms 0 and 9 -> (2.5 + 4.5) / 2
    assert loss.d_loss([scale1, scale2], [scale1, scale2]).item() == pytest.approx(3.5)


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="unknown GAN loss mode"):
        GANLoss("wasserstein")
    with pytest.raises(ValueError, match="at least one"):
        generator_loss([], "lsgan")


# --- gradient penalty ------------------------------------------------------------------------------------------


def _linear_critic(weight: torch.Tensor) -> nn.Linear:
    critic = nn.Linear(weight.numel(), 1)
    with torch.no_grad():
        critic.weight.copy_(weight.reshape(1, -1))
    return critic


def _flat(critic: nn.Module):
    return lambda images: critic(images.flatten(1))


def test_gradient_penalty_zero_for_unit_norm_linear_critic():
    torch.manual_seed(0)
    weight = torch.randn(12)
    critic = _linear_critic(weight / weight.norm())
    real, fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    assert gradient_penalty(_flat(critic), real, fake).item() == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_exact_for_linear_critic_and_trains_it():
    torch.manual_seed(0)
    weight = torch.randn(12) * 2.0
    critic = _linear_critic(weight)
    real, fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2, requires_grad=True)
    expected = (weight.norm().item() - 1.0) ** 2
    assert gradient_penalty(_flat(critic), real, fake, weight=1.0).item() == pytest.approx(expected, rel=1e-5)
    penalty = GradientPenalty()(_flat(critic), real, fake)
    assert penalty.item() == pytest.approx(10.0 * expected, rel=1e-5)
    penalty.backward()
    # d/dw 10 (|w| - 1)^2 = 20 (|w| - 1) w / |w|
    expected_grad = 20.0 * (weight.norm() - 1.0) * weight / weight.norm()
    torch.testing.assert_close(critic.weight.grad.flatten(), expected_grad, rtol=1e-4, atol=1e-5)
    assert fake.grad is None  # the penalty trains the critic only


def test_gradient_penalty_interpolates_are_seeded():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.Tanh(), nn.Linear(4, 1))
    real, fake = torch.randn(3, 3, 2, 2), torch.randn(3, 3, 2, 2)
    first = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(5))
    second = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(5))
    assert first.item() == second.item() and first.item() > 0


# --- image pool ----------------------------------------------------------------------------------------------


def _run_pool(seed: int, size: int = 3, steps: int = 6) -> tuple[list[torch.Tensor], ImagePool]:
    pool = ImagePool(size, generator=torch.Generator().manual_seed(seed))
    outputs = [pool.query(torch.full((2, 1, 2, 2), float(step))) for step in range(steps)]
    return outputs, pool


def test_image_pool_is_deterministic_and_bounded():
    first, pool = _run_pool(seed=1)
    second, _ = _run_pool(seed=1)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert len(pool) == 3
    assert all(out.shape == (2, 1, 2, 2) for out in first)
    # filling phase returns the new images; afterwards some returned images come from earlier steps
    assert torch.equal(first[0], torch.zeros(2, 1, 2, 2))
    returned_steps = {int(value) for step, out in enumerate(first[2:], 2) for value in out[:, 0, 0, 0] if value < step}
    assert returned_steps, "a full pool should hand back some older images"


def test_image_pool_zero_size_and_state():
    images = torch.randn(2, 1, 2, 2, requires_grad=True)
    passed = ImagePool(0).query(images)
    assert torch.equal(passed, images) and not passed.requires_grad
    _, pool = _run_pool(seed=2)
    restored = ImagePool(3)
    restored.load_state_dict(pool.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(restored.images, pool.images, strict=True))


# --- image losses --------------------------------------------------------------------------------------------


def test_l1_and_masked_l1_values_and_gradients():
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], requires_grad=True)
    target = torch.zeros(1, 1, 2, 2)
    assert l1_loss(pred, target).item() == pytest.approx(2.5)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    loss = masked_l1(pred, target, mask)
    assert loss.item() == pytest.approx(2.5)  # (1 + 4) / 2
    loss.backward()
    torch.testing.assert_close(pred.grad, mask / 2)
    assert masked_l1(pred, target, torch.zeros_like(mask)).item() == 0.0
    # a one-channel mask counts once per channel of a colour image
    colour = torch.ones(1, 3, 2, 2)
    assert masked_l1(colour, torch.zeros_like(colour), mask).item() == pytest.approx(1.0)


def test_masked_gradient_l1_ignores_the_border_jump_and_sends_gradient_inside_only():
    target = torch.zeros(1, 1, 6, 6)
    target[..., 1:5, 1:5] = 1.0  # a raised square: a jump at its border
    mask = (target > 0).float()
    pred = target.clone()
    pred[..., 1:5, 1:5] = 0.2  # the right shape inside, a wrong step to the background
    assert gradient_l1(pred, target, mask).item() == pytest.approx(0.0, abs=1e-6)
    assert gradient_l1(pred, target).item() > 0.1
    ramp = torch.arange(6.0).expand(1, 1, 6, 6).clone().requires_grad_(True)
    loss = gradient_l1(ramp, torch.zeros(1, 1, 6, 6), mask)  # x: 1 per step inside, y: 0
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert ramp.grad[..., 0, :].abs().sum() == 0 and ramp.grad[..., 1:5, 1:5].abs().sum() > 0


def test_gradient_l1_ignores_constant_shift():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 5, 6)
    pred = (target + 0.7).requires_grad_(True)
    assert gradient_l1(pred, target).item() == pytest.approx(0.0, abs=1e-6)
    ramp = torch.arange(6.0).expand(1, 1, 5, 6)
    # the ramp's x steps are 1 and its y steps 0: |1 - 0| over the x differences only
    assert gradient_l1(ramp, torch.zeros_like(ramp)).item() == pytest.approx(1.0)
    blurred = target.clone().requires_grad_(True)
    loss = gradient_l1(blurred * 0.5, target)
    assert loss.item() > 0
    loss.backward()
    assert blurred.grad.abs().sum() > 0 and torch.isfinite(blurred.grad).all()


# --- distance transforms and the chamfer loss ------------------------------------------------------------------


def _brute_force_dt(mask: torch.Tensor, cap: float) -> torch.Tensor:
    height, width = mask.shape
    sources = mask.nonzero().float()
    grid = torch.stack(torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij"), -1).float()
    if len(sources) == 0:
        return torch.full((height, width), cap)
    distances = (grid[:, :, None, :] - sources[None, None]).norm(dim=-1).min(dim=-1).values
    return distances.clamp_max(cap)


def test_truncated_distance_transform_is_exact():
    torch.manual_seed(0)
    mask = torch.rand(2, 1, 13, 17) > 0.93
    result = truncated_distance_transform(mask.float(), max_distance=4.5)
    for index in range(2):
        torch.testing.assert_close(result[index, 0], _brute_force_dt(mask[index, 0], 4.5))
    empty = truncated_distance_transform(torch.zeros(1, 1, 4, 4), max_distance=3.0)
    assert (empty == 3.0).all()


def test_soft_distance_transform_tracks_the_exact_one():
    line = torch.zeros(1, 1, 16, 16)
    line[..., 5] = 1.0
    soft = soft_distance_transform(line, max_distance=8.0)
    exact = truncated_distance_transform(line, max_distance=8.0)
    assert (soft[..., 5] == 0).all()
    assert (soft <= exact + 1e-5).all() and (exact - soft).max() < 0.35  # soft-min bias, below 0.35 px


def _vertical_line(column: int, size: int = 16) -> torch.Tensor:
    image = torch.zeros(1, 1, size, size)
    image[..., column] = 1.0
    return image


def test_chamfer_dt_zero_on_exact_match_and_grows_with_offset():
    target = _vertical_line(5)
    assert chamfer_dt_loss(target.clone(), target).item() == pytest.approx(0.0, abs=1e-6)
    losses = [chamfer_dt_loss(_vertical_line(5 + shift), target).item() for shift in range(5)]
    assert all(a < b for a, b in zip(losses, losses[1:], strict=False)), losses
    # generated -> target: the shifted line's ink lies `shift` px from the target's, plus the missed target line
    # (paper there, 1 px from the target's paper) weighted by 16 of the 240 paper pixels
    gen_to_target, _ = chamfer_dt_terms(_vertical_line(8), target)
    assert gen_to_target.item() == pytest.approx(3.0 + 16 / 240, rel=1e-5)


def test_chamfer_dt_sends_gradient_to_pred_through_both_terms():
    torch.manual_seed(0)
    target = _vertical_line(5)
    logits = (torch.randn(1, 1, 16, 16) * 0.5 + (_vertical_line(7) * 6.0 - 3.0)).requires_grad_(True)
    for term in range(2):
        if logits.grad is not None:
            logits.grad = None
        value = chamfer_dt_terms(torch.sigmoid(logits), target)[term]
        assert value.item() > 0
        value.backward()
        grad = logits.grad
        assert torch.isfinite(grad).all() and grad.abs().sum() > 1e-4, f"term {term}"
    # generated -> target pushes ink onto the target line (negative gradient there) and off the far column
    logits.grad = None
    chamfer_dt_terms(torch.sigmoid(logits), target)[0].backward()
    assert logits.grad[..., 5].mean() < 0 < logits.grad[..., 12].mean()


def test_chamfer_dt_gradient_finite_for_binary_prediction():
    target = _vertical_line(5)
    pred = _vertical_line(9).requires_grad_(True)
    ChamferDTLoss()(pred, target).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


# --- registration ----------------------------------------------------------------------------------------------


def test_builtin_losses_register_and_build():
    specs: list[LossSpec] = []
    register_builtin_losses(specs.append)
    names = [spec.name for spec in specs]
    assert names == [
        "gan-vanilla", "gan-lsgan", "gan-wgan", "gan-hinge", "gradient-penalty",
        "l1", "gradient-l1", "masked-l1", "chamfer-dt",
    ]  # fmt: skip
    built = {spec.name: spec.build() for spec in specs}
    assert built["gan-hinge"].mode == "hinge"
    assert isinstance(built["gradient-penalty"], GradientPenalty) and built["gradient-penalty"].weight == 10.0
    assert built["l1"](torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)).item() == 1.0
    assert all(spec.description for spec in specs)
