"""FaceVision's measures: scale-invariant depth errors, correspondence error and the mean-face baseline."""

from __future__ import annotations

import numpy as np
import pytest
from facetool_facevision.metrics import correspondence_error, mean_maps, scale_invariant_depth_errors


def test_depth_errors_ignore_offset_and_scale_but_not_shape():
    rng = np.random.default_rng(0)
    target = rng.random((16, 16)) * 10
    mask = np.ones((16, 16), bool)
    assert scale_invariant_depth_errors(3 * target + 7, target, mask) == pytest.approx((0.0, 0.0), abs=1e-9)
    mae, rmse = scale_invariant_depth_errors(rng.random((16, 16)), target, mask)
    assert 1.0 < mae <= rmse
    mask[:8] = False  # only the mask counts: a wrong half outside it costs nothing
    broken = target.copy()
    broken[:8] = 99
    assert scale_invariant_depth_errors(broken, target, mask)[0] == pytest.approx(0.0, abs=1e-9)


def test_correspondence_error_and_iou():
    target = np.zeros((4, 4, 3))
    pred = target + np.array([0.3, 0.4, 0.0])  # 0.5 away everywhere
    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[1:3] = True
    error, iou = correspondence_error(pred, target, a, b)
    assert error == pytest.approx(0.5) and iou == pytest.approx(4 / 12)


def test_mean_maps_average_where_faces_are():
    d1, d2 = np.full((2, 2), 2.0), np.full((2, 2), 4.0)
    m1, m2 = np.array([[1, 1], [0, 0]], bool), np.array([[1, 0], [0, 0]], bool)
    c = np.ones((2, 2, 3))
    depth, corr, mask = mean_maps([d1, d2], [c, 3 * c], [m1, m2])
    assert depth[0, 0] == 3.0 and depth[0, 1] == 2.0 and np.isnan(depth[1, 1])
    assert corr[0, 0, 0] == 2.0 and mask.tolist() == [[True, False], [False, False]]
