"""FID / KID against closed forms, per-item image metrics, and the offline face-feature backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from facetool.metrics.fid import fid_from_features, frechet_distance, kid_from_features, polynomial_mmd2
from facetool.metrics.image import chamfer, l1, psnr, ssim

from conftest import require_assets


def test_frechet_distance_closed_forms():
    # 1-D: (m1 - m2)² + (s1 - s2)²; diagonal: sum of per-axis terms.
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)
    a, b = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 1.0])
    expected = 1.0 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(np.zeros(3), np.diag(a), np.array([1.0, 0, 0]), np.diag(b)) == pytest.approx(expected)


def test_frechet_distance_matches_sqrtm_and_is_symmetric():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = x @ x.T + 0.1 * np.eye(6), y @ y.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    reference = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(reference, rel=1e-8)


def test_fid_of_identical_and_shifted_sets():
    features = np.random.default_rng(1).normal(size=(50, 8))
    assert abs(fid_from_features(features, features)) < 1e-8  # rank-deficient covariances stay finite and real
    assert fid_from_features(features, features + 2.0) == pytest.approx(8 * 4.0)
    low_rank = np.random.default_rng(2).normal(size=(5, 32))  # N < D: singular covariance
    trace = np.trace(np.cov(low_rank, rowvar=False))
    assert abs(fid_from_features(low_rank, low_rank)) < 1e-6 * trace  # eigenvalue round-off only


def test_kid_unbiased_near_zero_for_one_distribution_and_large_for_another():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    mean, std = kid_from_features(a, b, subsets=20, subset_size=100, seed=0)
    assert abs(mean) < 3 * std + 0.01
    shifted, _ = kid_from_features(a, b + 1.0, subsets=20, subset_size=100, seed=0)
    assert shifted > 20 * abs(mean) and shifted > 0.1
    assert kid_from_features(a, b, subsets=5, subset_size=50, seed=7) == kid_from_features(a, b, 5, 50, 7)
    assert polynomial_mmd2(a, b + 1.0) == pytest.approx(polynomial_mmd2(b + 1.0, a))


def test_polynomial_mmd2_is_the_unbiased_formula():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))

    def k(x, y):
        return (x @ y / 3 + 1.0) ** 3

    aa = sum(k(a[i], a[j]) for i in range(4) for j in range(4) if i != j) / 12
    bb = sum(k(b[i], b[j]) for i in range(5) for j in range(5) if i != j) / 20
    ab = sum(k(x, y) for x in a for y in b) / 20
    assert polynomial_mmd2(a, b) == pytest.approx(aa + bb - 2 * ab)


def test_image_metrics_per_item():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 24, 24)
    assert torch.equal(l1(x, x), torch.zeros(3))
    assert torch.allclose(ssim(x, x), torch.ones(3))
    assert torch.equal(psnr(x, x), torch.full((3,), 100.0))
    y = (x + 0.1).clamp(0, 1)
    y[1] = x[1]  # items are measured separately
    assert l1(x, y)[1] == 0 and l1(x, y)[0] > 0.05
    mse = ((x[0] - y[0]) ** 2).mean()
    assert psnr(x, y)[0].item() == pytest.approx((-10 * torch.log10(mse)).item(), rel=1e-5)
    assert ssim(x, 1 - x).max() < 0.5
    gray = x[:, :1]
    assert torch.allclose(ssim(gray, gray), torch.ones(3))
    rgb_of_gray = gray.expand(-1, 3, -1, -1)
    assert torch.allclose(l1(rgb_of_gray, gray), torch.zeros(3), atol=1e-6)  # 1 vs 3 channels: compared as luma


def test_chamfer_of_line_drawings_in_pixels():
    paper = torch.ones(3, 1, 64, 64)
    a = paper.clone()
    a[:, :, 8:56, 20] = 0.0  # a vertical stroke
    b = paper.clone()
    b[:, :, 8:56, 23] = 0.0  # the same stroke 3 px to the right
    assert torch.equal(chamfer(a, a), torch.zeros(3))
    assert chamfer(a, b).tolist() == pytest.approx([3.0] * 3)
    c = b.clone()
    c[:, :, 30, 26] = 0.0  # an extra speck 6 px from the target's stroke: only the output -> target side grows
    forward = (3 * 48 + 6) / 49
    assert chamfer(c, a)[0].item() == pytest.approx(0.5 * (forward + 3.0), rel=1e-4)
    c[:, :, 30, 26] = 1.0
    c[:, :, 30, 50] = 0.0  # 30 px away: costs the cap (1/8 of the side = 8 px), not its distance
    forward = (3 * 48 + 8) / 49
    assert chamfer(c, a)[0].item() == pytest.approx(0.5 * (forward + 3.0), rel=1e-4)
    capped = chamfer(paper, a)  # no ink at all: both directions count the cap, 1/8 of the side
    assert capped.tolist() == pytest.approx([0.5 * (8.0 + 8.0)] * 3)


def test_age_net_backbone_features():
    require_assets("age-net-v1-onnx")
    from facetool.metrics.features import AgeNetFeatures

    backbone = AgeNetFeatures()
    torch.manual_seed(0)
    images = torch.rand(4, 3, 48, 48)
    features = backbone(images)
    assert features.shape == (4, 256) and features.dtype == np.float64
    assert (features >= 0).all() and features.std() > 0  # after ReLU, and not constant
    assert np.array_equal(features, backbone(images))
    gray = backbone(images[:, :1])
    assert np.allclose(gray, backbone(images[:, :1].expand(-1, 3, -1, -1)))
    # the added output is the pool feeding the classifier: probabilities are unchanged by the graph edit
    (probs,) = backbone.session.run(["probabilities"], {"images": backbone.preprocess(images)})
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_add_graph_output_rejects_non_onnx():
    from facetool.metrics.features import add_graph_output

    with pytest.raises(ValueError):
        add_graph_output(b"\x08\x01", "x", 4)


def test_inception_backbone_from_torchscript(tmp_path):
    from facetool.errors import FacetoolError
    from facetool.metrics.features import InceptionFeatures

    class Fake(torch.nn.Module):  # the TorchScript interface of inception-2015-12-05.pt
        def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            return x.float().mean(dim=(2, 3)).repeat(1, 4)

    path = tmp_path / "fake.pt"
    torch.jit.script(Fake()).save(str(path))
    features = InceptionFeatures(path)(torch.full((2, 1, 8, 8), 1.0))
    assert features.shape == (2, 12) and np.allclose(features, 255.0)
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(FacetoolError, match="not a TorchScript"):
        InceptionFeatures(tmp_path / "bad.pt")
