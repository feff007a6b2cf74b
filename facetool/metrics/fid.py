"""Fréchet distance (FID) and kernel inception distance (KID) between two sets of feature vectors.

Both work on features of any backbone (:mod:`facetool.metrics.features`); the numbers are only comparable between
runs that used the same backbone and the same preprocessing. Everything is float64 numpy.

FID (Heusel et al. 2017) fits one Gaussian per set: biased upward for small sets, and with fewer items than
feature dimensions the covariances are rank-deficient (still defined, but compare such numbers only at equal N).
KID (Bińkowski et al. 2018) is the unbiased MMD² with the kernel k(x, y) = (x·y / d + 1)³, averaged over random
subsets: unbiased at any N, so it can be slightly negative when the two sets come from one distribution.
"""

from __future__ import annotations

import numpy as np


def _as_features(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected features of shape (N, D), got {x.shape}")
    return x


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite (D, D) matrix; tiny negative eigenvalues from
    round-off are clipped to 0."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein²) distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``|mu1 - mu2|² + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^½)``. The trace term is computed as
    ``Σ sqrt(eig(S1^½ sigma2 S1^½))`` — the same eigenvalues as sigma1 sigma2, but of a symmetric PSD matrix, so it
    stays real and finite where ``scipy.linalg.sqrtm(sigma1 @ sigma2)`` returns complex noise for singular inputs.

    Args:
        mu1, mu2: (D,) means.
        sigma1, sigma2: (D, D) covariances.

    Returns:
        the distance, a float >= 0 (up to round-off).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: mu {mu1.shape}, {mu2.shape}; sigma {sigma1.shape}, {sigma2.shape}")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features -> mean (D,) and unbiased covariance (D, D); N >= 2."""
    x = _as_features(features, "features")
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {x.shape[0]}")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def fid_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """FID between two feature sets a (N, D) and b (M, D), N, M >= 2."""
    mu1, s1 = feature_statistics(a)
    mu2, s2 = feature_statistics(b)
    return frechet_distance(mu1, s1, mu2, s2)


def polynomial_mmd2(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD² of a (m, D) and b (n, D) with the cubic kernel (x·y / D + 1)³; m, n >= 2."""
    a, b = _as_features(a, "a"), _as_features(b, "b")
    m, n, d = a.shape[0], b.shape[0], a.shape[1]
    k_aa = (a @ a.T / d + 1.0) ** 3
    k_bb = (b @ b.T / d + 1.0) ** 3
    k_ab = (a @ b.T / d + 1.0) ** 3
    within_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))  # diagonal left out: that is what makes it unbiased
    within_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(within_a + within_b - 2.0 * k_ab.mean())


def kid_from_features(
    a: np.ndarray, b: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID between feature sets a (N, D) and b (M, D): mean and std of :func:`polynomial_mmd2` over ``subsets``
    random subsets of ``min(subset_size, N, M)`` items of each set, drawn without replacement with ``seed``.

    Returns:
        (mean, std); std is 0 when one subset covers both sets entirely.
    """
    a, b = _as_features(a, "a"), _as_features(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} and {b.shape[1]}")
    size = min(subset_size, a.shape[0], b.shape[0])
    if size < 2:
        raise ValueError(f"KID needs at least 2 items in each set, got {a.shape[0]} and {b.shape[0]}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(max(1, subsets)):
        pick_a = rng.choice(a.shape[0], size, replace=False)
        pick_b = rng.choice(b.shape[0], size, replace=False)
        values.append(polynomial_mmd2(a[pick_a], b[pick_b]))
    values = np.asarray(values)
    return float(values.mean()), float(values.std())
