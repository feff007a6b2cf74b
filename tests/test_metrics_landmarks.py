"""Landmark NME (facetool.metrics.landmarks) on hand-made points."""

from __future__ import annotations

import numpy as np
import pytest

from facetool.metrics.landmarks import interocular_distance, nme


def _points68():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, (68, 2))
    points[36], points[45] = (30.0, 40.0), (70.0, 40.0)  # outer eye corners 40 px apart
    points[39], points[42] = (45.0, 40.0), (55.0, 40.0)  # inner corners: must not be the normaliser
    return points


def _points5():
    return np.array([[30.0, 40.0], [50.0, 40.0], [40.0, 55.0], [32.0, 70.0], [48.0, 70.0]])  # eyes 20 px apart


def test_identity_is_zero_and_a_known_shift_is_known():
    for reference in (_points68(), _points5()):
        assert nme(reference, reference) == 0.0
    assert nme(_points68() + (3.0, 4.0), _points68()) == pytest.approx(5.0 / 40.0)  # every point 5 px off
    assert nme(_points5() + (3.0, 4.0), _points5()) == pytest.approx(5.0 / 20.0)
    one_off = _points5()
    one_off[2] += (0.0, 10.0)  # one of five points 10 px off: mean error 2 px
    assert nme(one_off, _points5()) == pytest.approx(2.0 / 20.0)


def test_normaliser_outer_corners_for_68_eye_centres_for_5():
    assert interocular_distance(_points68()) == pytest.approx(40.0)
    assert interocular_distance(_points5()) == pytest.approx(20.0)
    tilted = _points5()
    tilted[1] = (30.0 + 12.0, 40.0 + 16.0)  # 3-4-5 triangle: eyes 20 px apart, not horizontal
    assert interocular_distance(tilted) == pytest.approx(20.0)
    # the normaliser comes from the reference, not from the measured points
    assert nme(_points5(), _points5() * 2) == pytest.approx(np.linalg.norm(_points5(), axis=1).mean() / 40.0)


def test_batches_and_bad_shapes():
    batch = np.stack([_points5(), _points5() * 2])
    values = nme(batch + 1.0, batch)
    assert values.shape == (2,) and values == pytest.approx([np.sqrt(2) / 20, np.sqrt(2) / 40])
    assert interocular_distance(batch) == pytest.approx([20.0, 40.0])
    with pytest.raises(ValueError, match="differ in layout"):
        nme(_points5(), _points68())
    with pytest.raises(ValueError, match="expected points"):
        nme(np.zeros((10, 2)), np.zeros((10, 2)))
    assert nme(_points5() + 1.0, np.zeros((5, 2))) == np.inf  # eyes on one point: nothing to normalise by


def test_pupil_normaliser_is_the_eye_centres():
    points = _points68()
    pupils = np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0))
    assert interocular_distance(points, "pupils") == pytest.approx(pupils)
    assert nme(points + (3.0, 4.0), points, normaliser="pupils") == pytest.approx(5.0 / pupils)
    with pytest.raises(ValueError, match="normaliser"):
        interocular_distance(points, "nose")
