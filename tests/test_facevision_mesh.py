"""Mesh synthesis from depth maps: a hemisphere comes out as a clean, camera-facing surface."""

from __future__ import annotations

import numpy as np
import pytest
from facetool_facevision.mesh import (
    canonical_layout,
    inner_holes,
    laplacian_smooth_z,
    mesh_from_maps,
    smooth_uvs,
    tidy_mask,
    uv_from_pncc,
    vertex_normals,
)

S = 48


def _dome(radius: float = 18.0):
    rows, cols = np.mgrid[0:S, 0:S]
    r2 = (cols - S / 2) ** 2 + (rows - S / 2) ** 2
    mask = r2 < radius**2
    depth = np.where(mask, np.sqrt(np.clip(radius**2 - r2, 0, None)), np.nan)
    photo = np.full((S, S, 3), 128, np.uint8)
    return depth, mask, photo


def test_dome_mesh_counts_orientation_and_nearest_point():
    depth, mask, photo = _dome()
    mesh = mesh_from_maps(depth, mask, photo, smooth_iterations=0, detail=0.0)
    assert len(mesh.vertices) == mask.sum() and np.isfinite(mesh.vertices).all()
    assert 1.6 * len(mesh.vertices) < len(mesh.faces) < 2.1 * len(mesh.vertices)  # a grid: ~2 triangles a pixel
    normals = vertex_normals(mesh.vertices, mesh.faces)
    assert (normals[:, 2] > 0).mean() > 0.95  # facing the camera
    top = mesh.vertices[np.argmax(mesh.vertices[:, 2])]
    assert abs(top[0] - S / 2) <= 1 and abs(-top[1] - S / 2) <= 1  # nearest point at the dome's centre
    assert mesh.colors.shape == (len(mesh.vertices), 3) and (mesh.colors == 128).all()


def test_concave_outline_is_not_bridged_and_spikes_go():
    depth, mask, photo = _dome()
    mask[: S // 2, S // 2 - 2 : S // 2 + 2] = False  # a notch: Delaunay would bridge it
    depth[20, 30] = 500.0  # one spike
    mesh = mesh_from_maps(depth, mask, photo, smooth_iterations=0, detail=0.0, median=1)
    centroids = mesh.vertices[mesh.faces, :2].mean(axis=1)
    in_notch = (np.abs(centroids[:, 0] - S / 2) < 1.5) & (-centroids[:, 1] < S / 2 - 2)
    assert not in_notch.any()
    assert mesh.vertices[:, 2].max() < 100  # the spike's triangles were dropped with it


def test_a_cliff_inside_the_face_stays_surface_and_a_lone_spike_still_goes():
    depth, mask, photo = _dome()
    cliff = np.where(np.arange(S)[None, :] < S // 2, depth + 25.0, depth)  # a nose's side seen edge-on
    mesh = mesh_from_maps(cliff, mask, photo, smooth_iterations=0, detail=0.0)
    assert inner_holes(mesh, mask) == 0  # no hole along the cliff
    assert len(mesh.vertices) == mask.sum()
    cliff[20, 16] = 300.0  # one spike beside the cliff
    spiked = mesh_from_maps(cliff, mask, photo, smooth_iterations=0, detail=0.0, median=1)
    assert spiked.vertices[:, 2].max() < 100


def test_tidy_mask_fills_small_holes_and_drops_crumbs_but_keeps_a_large_hole():
    _, mask, _ = _dome()
    holed = mask.copy()
    holed[24, 20:23] = False  # 3 px: the turned-away pixels beside a nose
    holed[10:20, 26:34] = False  # 80 px, about 8 % of the face: something in front of it
    holed[1, 1] = holed[46, 2] = True  # crumbs in the background
    tidy = tidy_mask(holed)
    assert tidy[24, 20:23].all() and not tidy[10:20, 26:34].any()
    assert not tidy[1, 1] and not tidy[46, 2] and (mask | ~tidy).all()  # nothing outside the face added
    depth, _, photo = _dome()  # the net's depth is dense: defined in the small hole too
    mesh = mesh_from_maps(np.nan_to_num(depth), holed, photo, smooth_iterations=0, detail=0.0)
    assert inner_holes(mesh, tidy) == 1  # the large hole


def test_the_median_filter_removes_an_isolated_pit_and_keeps_the_outline():
    depth, mask, photo = _dome()
    pitted = depth.copy()
    pitted[S // 2, S // 2] -= 30.0  # one failed pixel in the middle of the face
    raw = mesh_from_maps(pitted, mask, photo, smooth_iterations=0, detail=0.0, median=1)
    filtered = mesh_from_maps(pitted, mask, photo, smooth_iterations=0, detail=0.0)
    centre = (filtered.pixels == [S // 2, S // 2]).all(axis=1)
    assert abs(filtered.vertices[centre, 2][0] - depth[S // 2, S // 2]) < 1.0
    assert len(filtered.faces) > len(raw.faces)  # no hole where the pit was
    assert len(filtered.vertices) == int(mask.sum())


def test_smoothing_reduces_noise_and_keeps_the_grid():
    depth, mask, photo = _dome()
    depth = np.where(mask, 0.02 * depth**2, np.nan)  # a gentle surface: smoothing should keep it
    noisy = depth + np.random.default_rng(0).normal(0, 1.0, depth.shape)
    rough = mesh_from_maps(noisy, mask, photo, smooth_iterations=0, detail=0.0, median=1)
    smooth = laplacian_smooth_z(rough.vertices, rough.faces, 10)
    truth = depth[rough.pixels[:, 0], rough.pixels[:, 1]]
    assert np.abs(smooth[:, 2] - truth).mean() < 0.6 * np.abs(rough.vertices[:, 2] - truth).mean()
    np.testing.assert_array_equal(smooth[:, :2], rough.vertices[:, :2])


def test_detail_moves_vertices_along_normals_where_the_photo_has_texture():
    depth, mask, photo = _dome()
    photo[:, ::2] = 40  # stripes
    flat = mesh_from_maps(depth, mask, photo, smooth_iterations=0, detail=0.0)
    detailed = mesh_from_maps(depth, mask, photo, smooth_iterations=0, detail=2.0)
    assert np.abs(detailed.vertices - flat.vertices).max() > 0.05


def test_bad_maps_raise():
    depth, mask, photo = _dome()
    with pytest.raises(ValueError, match="fewer than 3"):
        mesh_from_maps(depth, np.zeros_like(mask), photo)
    with pytest.raises(ValueError, match="differ in size"):
        mesh_from_maps(depth, mask, photo[:10])


def test_uv_from_pncc_is_exact_on_vertices_and_between_them_in_between():
    canonical_xyz = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    canonical_uv = np.array([[0.1, 0.2], [0.9, 0.8]])
    pncc = np.zeros((2, 2, 3))
    pncc[1, 1] = 1.0
    pncc[0, 1] = 0.5
    uv = uv_from_pncc(pncc, np.array([0, 1, 0]), np.array([0, 1, 1]), canonical_xyz, canonical_uv)
    np.testing.assert_allclose(uv, [[0.1, 0.2], [0.9, 0.8], [0.5, 0.5]], atol=1e-6)


def test_shipped_canonical_layout_is_the_symmetric_face_with_uvs_v_up():
    xyz, uv = canonical_layout()
    assert xyz.shape == (468, 3) and uv.shape == (468, 2)
    assert xyz.min() == 0 and xyz.max() == 1 and (uv >= 0).all() and (uv <= 1).all()
    top, chin = np.argmax(xyz[:, 1]), np.argmin(xyz[:, 1])
    assert uv[top, 1] > 0.8 and uv[chin, 1] < 0.1  # forehead at the top of the atlas


def test_smooth_uvs_keep_a_smooth_layout_and_drop_outliers():
    rows, cols = (a.ravel().astype(float) for a in np.mgrid[0:20, 0:20])
    truth = np.stack([cols / 19, 0.2 + 0.5 * (rows / 19) ** 2], axis=1)
    noisy = truth.copy()
    noisy[::17] = np.random.default_rng(0).random((len(noisy[::17]), 2))  # scattered wrong correspondences
    fitted = smooth_uvs(rows, cols, noisy)
    assert np.abs(fitted - truth).max() < 1e-3 and fitted.dtype == np.float32
    assert np.allclose(smooth_uvs(rows[:3], cols[:3], truth[:3]), truth[:3])  # too few pixels: left as they are
