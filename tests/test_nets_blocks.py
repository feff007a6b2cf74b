"""Shared GAN blocks: U-Net and ResNet generators, PatchGAN, init and counting helpers."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from facetool.nets.layers import conv_flops, count_params, crop_from_padded, init_weights, pad_to_multiple
from facetool.nets.patchgan import PatchGAN, PatchGANConfig, receptive_field
from facetool.nets.resnet import ResnetConfig, ResnetGenerator
from facetool.nets.unet import UNet, UNetConfig

ODD_SIZES = [(100, 77), (256, 256), (33, 19)]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def small_unet(**overrides) -> UNet:
    return UNet(UNetConfig(levels=4, base=8, max_channels=32, **overrides))


def small_resnet(**overrides) -> ResnetGenerator:
    return ResnetGenerator(ResnetConfig(base=8, blocks=2, **overrides))


@pytest.mark.parametrize("size", ODD_SIZES)
@pytest.mark.parametrize("upsample", ["deconv", "resize"])
def test_unet_output_size_equals_input_size(size: tuple[int, int], upsample: str) -> None:
    net = small_unet(upsample=upsample, out_channels=2).eval()
    y = net(torch.rand(2, 3, *size) * 2 - 1)
    assert y.shape == (2, 2, *size)
    assert torch.isfinite(y).all() and y.abs().max() <= 1  # tanh
    assert y.std() > 0


@pytest.mark.parametrize("size", ODD_SIZES)
@pytest.mark.parametrize("upsample", ["deconv", "resize"])
def test_resnet_output_size_equals_input_size(size: tuple[int, int], upsample: str) -> None:
    net = small_resnet(upsample=upsample, out_channels=1, final_activation="sigmoid").eval()
    y = net(torch.rand(1, 3, *size))
    assert y.shape == (1, 1, *size)
    assert ((y > 0) & (y < 1)).all()


def test_unet_crop_keeps_pixel_alignment() -> None:
    # An identity-like output must land on the input pixels: the output of the padded image, cropped, equals the
    # output of the pre-padded image at the same offset, so padding never shifts content.
    net = small_unet(norm="none", dropout=0.0).eval()
    x = torch.rand(1, 3, 50, 37)
    padded, offset = pad_to_multiple(x, 16, "reflect")
    assert padded.shape[-2:] == (64, 48)
    assert torch.equal(crop_from_padded(padded, offset, (50, 37)), x)
    assert torch.allclose(net(x), crop_from_padded(net(padded), offset, (50, 37)))


def test_pad_falls_back_to_replicate_when_reflect_impossible() -> None:
    x = torch.arange(3.0).view(1, 1, 1, 3)
    padded, offset = pad_to_multiple(x, 8, "reflect")
    assert padded.shape == (1, 1, 8, 8) and offset == (3, 2)
    assert torch.equal(padded[0, 0, 0], torch.tensor([0.0, 0, 0, 1, 2, 2, 2, 2]))


def test_unet_dropout_is_noise_in_train_and_off_in_eval() -> None:
    net = small_unet()
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 2  # levels 4: both middle up-blocks
    x = torch.rand(1, 3, 32, 32)
    net.train()
    assert not torch.allclose(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


def test_unet_pix2pix_preset_dropout_placement() -> None:
    with torch.device("meta"):
        net = UNet(UNetConfig.pix2pix_256())
    with_dropout = [i for i, block in enumerate(net.up) if any(isinstance(m, nn.Dropout) for m in block)]
    assert with_dropout == [4, 5, 6]  # the three 512-channel up-blocks next to the innermost one


def test_unet_gradients_reach_every_parameter() -> None:
    net = small_unet(norm="instance")
    net(torch.rand(2, 3, 32, 24)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_pix2pix_256_parameter_count_and_flops() -> None:
    with torch.device("meta"):
        net = UNet(UNetConfig.pix2pix_256())
    assert abs(count_params(net) - 54.4e6) < 0.1e6
    assert abs(conv_flops(net, (1, 3, 256, 256)) - 12.1e9) < 0.05e9


def test_compact_preset_fits_the_weight_budget() -> None:
    with torch.device("meta"):
        net = UNet(UNetConfig.compact())
    assert 2 * count_params(net) <= 20e6  # fp16 bytes


def test_resnet_9blocks_parameter_count() -> None:
    with torch.device("meta"):
        net = ResnetGenerator(ResnetConfig())
    assert abs(count_params(net) - 11.378e6) < 0.01e6  # CycleGAN's resnet_9blocks


def test_patchgan_output_shape_and_receptive_field_value() -> None:
    config = PatchGANConfig(in_channels=6, base=8, layers=3)
    assert receptive_field(config) == 70
    assert receptive_field(PatchGANConfig(layers=1)) == 16
    assert PatchGAN(config)(torch.rand(1, 6, 256, 256)).shape == (1, 1, 30, 30)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_patchgan_receptive_field_matches_gradient_support(layers: int) -> None:
    config = PatchGANConfig(in_channels=1, base=4, layers=layers, norm="batch")
    net = PatchGAN(config).eval()  # eval: batch norm is per-channel affine, so pixels do not mix
    x = torch.rand(1, 1, 160, 160, requires_grad=True)
    logits = net(x)
    h, w = logits.shape[-2:]
    logits[0, 0, h // 2, w // 2].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    cols = x.grad[0, 0].abs().sum(0).nonzero().flatten()
    field = receptive_field(config)
    assert rows.max() - rows.min() + 1 == field
    assert cols.max() - cols.min() + 1 == field


@pytest.mark.parametrize(
    "config",
    [
        UNetConfig.compact(norm="instance", upsample="resize"),
        ResnetConfig(blocks=6, padding="replicate"),
        PatchGANConfig(layers=2, norm="none"),
    ],
)
def test_config_dict_round_trip(config) -> None:
    data = json.loads(json.dumps(config.to_dict()))
    assert type(config).from_dict(data) == config
    with pytest.raises(ValueError, match="unknown keys"):
        type(config).from_dict({**data, "bogus": 1})


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="norm"):
        UNetConfig(norm="group")
    with pytest.raises(ValueError, match="upsample"):
        ResnetConfig(upsample="pixelshuffle")


def test_init_weights_is_pix2pix_normal_and_seeded() -> None:
    torch.manual_seed(1)
    a = UNet(UNetConfig(levels=4, base=32, max_channels=64))
    torch.manual_seed(1)
    b = UNet(UNetConfig(levels=4, base=32, max_channels=64))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    conv_weights = torch.cat([m.weight.flatten() for m in a.modules() if isinstance(m, nn.Conv2d)])
    assert abs(conv_weights.std().item() - 0.02) < 0.001 and abs(conv_weights.mean().item()) < 0.001
    bn = next(m for m in a.modules() if isinstance(m, nn.BatchNorm2d))
    assert torch.equal(bn.bias, torch.zeros_like(bn.bias)) and (bn.weight - 1).abs().max() < 0.1
    linear = init_weights(nn.Linear(10, 1000), kind="normal", gain=0.5)
    assert abs(linear.weight.std().item() - 0.5) < 0.02


def test_conv_flops_counts_multiply_adds_twice() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1))
    flops = conv_flops(net, (1, 3, 10, 10))
    conv = 2 * (8 * 10 * 10) * 3 * 9
    deconv = 2 * (8 * 10 * 10) * 4 * 16
    assert flops == conv + deconv
    assert count_params(net) == 3 * 8 * 9 + 8 + 8 * 4 * 16 + 4


def test_deep_unet_on_a_tiny_image_and_batch_one_training() -> None:
    # 8 levels pad 33×19 up to 256×256 — far beyond what reflect padding allows, so replicate takes over; batch
    # norm in train mode with batch 1 must still work (no norm on the 1×1 bottleneck).
    net = UNet(UNetConfig.compact())
    assert net.eval()(torch.rand(1, 3, 33, 19)).shape == (1, 3, 33, 19)
    y = net.train()(torch.rand(1, 3, 64, 48))
    assert y.shape == (1, 3, 64, 48) and torch.isfinite(y).all()
