"""Checkerboard and grain: what they read on made images with and without the faults."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facetool.metrics.texture import checkerboard, grain


def _picture(size: int = 64) -> torch.Tensor:
    """A flat-coloured drawing: a disc and a bar on a plain background, slightly blurred edges. (1, 3, S, S)."""
    ys, xs = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    disc = (((ys - size * 0.45) ** 2 + (xs - size * 0.5) ** 2).sqrt() < size * 0.3).float()
    bar = ((ys - size * 0.8).abs() < size * 0.05).float()
    luma = 0.9 - 0.4 * disc - 0.5 * bar
    image = torch.stack([luma, luma * 0.9, luma * 0.8]).unsqueeze(0)
    return F.avg_pool2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


def test_checkerboard_reads_periodic_patterns_not_picture_content():
    clean = _picture()
    base = checkerboard(clean).item()
    assert abs(base) < 0.3
    ys, xs = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    checker = ((ys + xs) % 2).float() * 0.03  # one frequency of the fifteen: (H/2, W/2)
    assert checkerboard((clean + checker).clamp(0, 1)).item() > base + 0.15
    blocks = (((ys // 2) + (xs // 2)) % 2).float() * 0.03  # period 4: several of them
    assert checkerboard((clean + blocks).clamp(0, 1)).item() > base + 0.8
    # Noise is not periodic: it flattens the spectrum, it does not peak it.
    noisy = (clean + 0.05 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert checkerboard(noisy).item() < 0.3


def test_transposed_conv_checkerboards_and_resize_conv_does_not():
    # The reason behind the cartoon generator's upsample=resize: the same 3×3 kernel upsampling a smooth map.
    from kornia.filters import gaussian_blur2d

    torch.manual_seed(0)
    smooth = gaussian_blur2d(torch.rand(1, 8, 48, 48), (13, 13), (3.0, 3.0))[..., 8:40, 8:40]  # no periodic part
    weight = torch.randn(8, 3, 3, 3) * 0.3
    deconv = F.conv_transpose2d(smooth, weight, stride=2, padding=1, output_padding=1)
    upsampled = F.interpolate(smooth, scale_factor=2, mode="bilinear", align_corners=False)
    upsampled = F.pad(upsampled, (1, 1, 1, 1), mode="replicate")
    resize = F.conv2d(upsampled, weight.transpose(0, 1).flip(-1, -2))

    def to_image(x: torch.Tensor) -> torch.Tensor:
        return (x - x.amin()) / (x.amax() - x.amin())

    assert checkerboard(to_image(deconv)).item() > checkerboard(to_image(resize)).item() + 1.0


def test_grain_is_zero_on_flat_colour_and_grows_with_specks():
    flat = torch.full((2, 3, 32, 32), 0.6)
    assert grain(flat).tolist() == pytest.approx([0.0, 0.0], abs=1e-7)
    edge = flat.clone()
    edge[..., :, 16:] = 0.2  # a straight edge is kept by the median
    assert grain(edge).max().item() < 1e-6
    specks = flat.clone()
    specks[0, :, ::4, ::4] = 0.0  # every 16th pixel black: each off by 0.6 from its median
    values = grain(specks)
    assert values[0].item() == pytest.approx(0.6 / 16, rel=1e-4)
    assert values[1].item() == pytest.approx(0.0, abs=1e-7)


def test_checkerboard_needs_a_side_divisible_by_four():
    with pytest.raises(ValueError, match="multiple of 4"):
        checkerboard(torch.zeros(1, 3, 30, 32))
