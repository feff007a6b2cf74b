"""Landmark-guided CartoonGAN (work in progress): conditioned generator, label-masked PatchGAN, affine fit."""

from __future__ import annotations

import math

import pytest
import torch
from facetool_cartoon.affine import fit_affine, warp_to_layout
from facetool_cartoon.net import (
    ConditionalResnetConfig,
    ConditionalResnetGenerator,
    LabelMaskedPatchGAN,
    LabelMaskedPatchGANConfig,
)

from facetool.align import transform_points
from facetool.align import umeyama as fit_similarity
from facetool.nets.layers import gaussian_heatmaps


@pytest.mark.parametrize("upsample", ["deconv", "resize"])
def test_every_generator_layer_sees_the_label_and_it_changes_the_output(upsample, one_thread):
    torch.manual_seed(0)
    g = ConditionalResnetGenerator(ConditionalResnetConfig(base=4, blocks=2, extra=5, upsample=upsample)).eval()
    assert all(layer.conv.in_channels >= 4 + 5 for layer in g.layers if hasattr(layer, "conv"))
    x, heat = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 5, 32, 32)
    a = g(x, torch.tensor([0, 1]), heat)
    b = g(x, torch.tensor([2, 3]), heat)
    assert a.shape == (2, 3, 32, 32) and a.abs().max() <= 1 and (a - b).abs().mean() > 1e-4
    a.mean().backward()
    assert all(p.grad is not None for p in g.parameters())
    with pytest.raises(ValueError, match="extra condition"):
        g(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="upsample"):
        ConditionalResnetConfig(upsample="pixel-shuffle")


def test_the_label_mask_keeps_one_filter_group():
    torch.manual_seed(0)
    d = LabelMaskedPatchGAN(LabelMaskedPatchGANConfig(base=4))
    x = torch.rand(1, 3, 64, 64)
    logits = d(x, torch.tensor([1]))
    assert logits.shape == (1, 1, 6, 6)
    with torch.no_grad():  # zeroing the other labels' filters changes nothing for label 1
        d.first.weight[:4].zero_()
        d.first.weight[8:].zero_()
    assert torch.allclose(d(x, torch.tensor([1])), logits, atol=1e-6)
    assert not torch.allclose(d(x, torch.tensor([0])), logits)


def test_heatmaps_peak_at_the_points():
    maps = gaussian_heatmaps(torch.tensor([[[3.0, 5.0], [10.0, 2.0]]]), (16, 16), sigma=1.5)
    assert maps.shape == (1, 2, 16, 16) and maps[0, 0, 5, 3] == 1 and maps[0, 1, 2, 10] == 1
    assert maps[0, 0, 5, 5] == pytest.approx(math.exp(-4 / (2 * 1.5**2)))


def test_affine_fit_recovers_a_known_map_and_the_warp_moves_landmarks_there():
    truth = torch.tensor([[[1.1, 0.2, 3.0], [-0.1, 0.9, -2.0]]])
    source = torch.tensor([[[10.0, 12.0], [22.0, 12.0], [16.0, 20.0], [12.0, 26.0], [20.0, 26.0]]])
    target = transform_points(source, truth)
    assert torch.allclose(fit_affine(source, target), truth, atol=1e-4)
    image = torch.zeros(1, 1, 40, 40)
    image[0, 0, 12, 10] = 1.0  # a dot on the first landmark
    warped, _ = warp_to_layout(image, source, target)
    row, col = divmod(int(warped[0, 0].argmax()), 40)
    assert abs(col - float(target[0, 0, 0])) <= 1 and abs(row - float(target[0, 0, 1])) <= 1
    with pytest.raises(ValueError, match="K >= 3"):
        fit_affine(source[:, :2], target[:, :2])


def test_similarity_fit_recovers_a_known_similarity_and_never_stretches_or_mirrors():
    source = torch.tensor([[[10.0, 12.0], [22.0, 12.0], [16.0, 20.0], [12.0, 26.0], [20.0, 26.0]]])
    angle, scale = 0.3, 1.2
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    truth = torch.tensor([[[cos, -sin, 4.0], [sin, cos, -3.0]]])
    assert torch.allclose(fit_similarity(source, transform_points(source, truth)), truth, atol=1e-4)
    # a stretched target and a mirrored one: the fit keeps equal axes and a positive determinant
    for linear in ([[1.4, 0.0], [0.0, 0.8]], [[-1.0, 0.0], [0.0, 1.0]]):
        target = source @ torch.tensor(linear).T + 2.0
        fitted = fit_similarity(source, target)[0, :, :2]
        gram = fitted @ fitted.T
        assert torch.allclose(gram, gram[0, 0] * torch.eye(2), atol=1e-4) and torch.linalg.det(fitted) > 0
        # least squares: nudging the fitted map does not bring the points closer
        best = (transform_points(source, fit_similarity(source, target)) - target).pow(2).sum()
        nudged = fit_similarity(source, target) + torch.tensor([[[0.0, 0.0, 0.1], [0.0, 0.0, 0.0]]])
        assert best <= (transform_points(source, nudged) - target).pow(2).sum()
    warped, matrices = warp_to_layout(torch.rand(1, 3, 40, 40), source, transform_points(source, truth), "similarity")
    assert warped.shape == (1, 3, 40, 40) and torch.allclose(matrices, truth, atol=1e-4)
    with pytest.raises(ValueError, match="warp must be"):
        warp_to_layout(torch.rand(1, 3, 40, 40), source, source, "perspective")


def test_the_regressor_gives_pixel_points_with_gradient_to_the_image(one_thread):
    from facetool_cartoon.landmarks import LandmarkRegressor, interocular_nme

    torch.manual_seed(0)
    regressor = LandmarkRegressor()
    image = torch.rand(2, 3, 128, 128, requires_grad=True)
    points = regressor(image)
    assert points.shape == (2, 5, 2)
    points.sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0  # the landmark loss can reach G through R
    target = torch.tensor([[[40.0, 50.0], [80.0, 50.0], [60.0, 70.0], [45.0, 90.0], [75.0, 90.0]]])
    assert interocular_nme(target + torch.tensor([4.0, 0.0]), target).item() == pytest.approx(0.1)
