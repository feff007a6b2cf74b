"""Tests for facetool.align: similarity fit, templates, crop / paste-back and the pixel-centre convention."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from facetool.align import (
    TEMPLATES,
    AlignTemplate,
    crop_faces,
    estimate_alignment,
    feather_mask,
    get_template,
    invert_affine,
    paste_back,
    transform_points,
    umeyama,
)
from facetool.errors import UsageError


def random_similarity(batch: int, gen: torch.Generator, dtype=torch.float64) -> tuple[Tensor, Tensor, Tensor]:
    """Angles in [-pi, pi], scales log-uniform in [0.1, 10], translations in [-100, 100]."""
    angle = (torch.rand(batch, generator=gen, dtype=dtype) * 2 - 1) * math.pi
    scale = 10 ** (torch.rand(batch, generator=gen, dtype=dtype) * 2 - 1)
    t = (torch.rand(batch, 2, generator=gen, dtype=dtype) * 2 - 1) * 100
    return angle, scale, t


def similarity_matrix(angle: Tensor, scale: Tensor, t: Tensor) -> Tensor:
    c, s = torch.cos(angle) * scale, torch.sin(angle) * scale
    return torch.stack([torch.stack([c, -s, t[:, 0]], -1), torch.stack([s, c, t[:, 1]], -1)], -2)


def residual(src: Tensor, dst: Tensor, m: Tensor) -> Tensor:
    return ((transform_points(src, m) - dst) ** 2).sum(dim=(1, 2))


# ---------------------------------------------------------------------------------------------------- umeyama


@pytest.mark.parametrize("batch,n", [(1, 2), (7, 5), (16, 30)])
def test_umeyama_recovers_exact_similarity(batch, n):
    gen = torch.Generator().manual_seed(batch * 100 + n)
    m_true = similarity_matrix(*random_similarity(batch, gen))
    src = torch.rand(batch, n, 2, generator=gen, dtype=torch.float64) * 200 - 100
    dst = transform_points(src, m_true)
    m = umeyama(src, dst)
    assert m.shape == (batch, 2, 3)
    torch.testing.assert_close(m, m_true, rtol=1e-9, atol=1e-9)


def test_umeyama_float32_and_extreme_angles():
    angle = torch.tensor([math.pi, -math.pi + 1e-3, math.pi / 2, 0.0])
    scale = torch.tensor([0.1, 10.0, 1.0, 3.0])
    m_true = similarity_matrix(angle, scale, torch.tensor([[5.0, -3.0]]).expand(4, 2))
    src = torch.randn(4, 5, 2, generator=torch.Generator().manual_seed(0)) * 50
    m = umeyama(src, transform_points(src, m_true))
    assert m.dtype == torch.float32
    torch.testing.assert_close(m, m_true, rtol=1e-4, atol=1e-3)


def test_umeyama_is_least_squares_optimal_under_noise():
    gen = torch.Generator().manual_seed(1)
    batch, n = 8, 6
    m_true = similarity_matrix(*random_similarity(batch, gen))
    src = torch.rand(batch, n, 2, generator=gen, dtype=torch.float64) * 100
    dst = transform_points(src, m_true) + torch.randn(batch, n, 2, generator=gen, dtype=torch.float64) * 3
    m = umeyama(src, dst)
    best = residual(src, dst, m)
    for _ in range(200):
        # Perturb the similarity's own parameters (stay inside the model family).
        d_angle = torch.randn(batch, generator=gen, dtype=torch.float64) * 1e-2
        d_scale = torch.exp(torch.randn(batch, generator=gen, dtype=torch.float64) * 1e-2)
        d_t = torch.randn(batch, 2, generator=gen, dtype=torch.float64) * 0.5
        perturbed = similarity_matrix(d_angle, d_scale, d_t)
        composed = torch.cat([perturbed[:, :, :2] @ m[:, :, :2], (perturbed[:, :, :2] @ m[:, :, 2:])], -1)
        composed[:, :, 2] += perturbed[:, :, 2]
        assert (residual(src, dst, composed) >= best - 1e-9).all()


def test_umeyama_weights_ignore_outlier():
    gen = torch.Generator().manual_seed(2)
    m_true = similarity_matrix(*random_similarity(3, gen))
    src = torch.rand(3, 6, 2, generator=gen, dtype=torch.float64) * 100
    dst = transform_points(src, m_true)
    dst[:, 0] += 500.0  # outlier
    weights = torch.ones(3, 6, dtype=torch.float64)
    weights[:, 0] = 0.0
    torch.testing.assert_close(umeyama(src, dst, weights), m_true, rtol=1e-9, atol=1e-8)
    assert not torch.allclose(umeyama(src, dst), m_true, atol=1e-3)


def test_umeyama_never_reflects():
    gen = torch.Generator().manual_seed(3)
    src = torch.rand(10, 5, 2, generator=gen, dtype=torch.float64) * 100
    mirrored = src * torch.tensor([-1.0, 1.0], dtype=torch.float64)  # a pure reflection
    m = umeyama(src, mirrored)
    assert (torch.linalg.det(m[:, :, :2]) > 0).all()
    # Still the best proper similarity: no rotation on a fine grid (each with its optimal scale) beats it.
    best = residual(src, mirrored, m)
    for angle in torch.linspace(-math.pi, math.pi, 361, dtype=torch.float64):
        rot = similarity_matrix(angle.expand(10), torch.ones(10, dtype=torch.float64), torch.zeros(10, 2))
        rotated = transform_points(src - src.mean(1, keepdim=True), rot)
        target = mirrored - mirrored.mean(1, keepdim=True)
        scale = ((rotated * target).sum((1, 2)) / (rotated**2).sum((1, 2))).clamp_min(0)
        res = ((scale[:, None, None] * rotated - target) ** 2).sum((1, 2))
        assert (res >= best - 1e-9).all()


def test_umeyama_gradcheck():
    gen = torch.Generator().manual_seed(4)
    src = torch.rand(2, 4, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    dst = torch.rand(2, 4, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = (torch.rand(2, 4, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(umeyama, (src, dst, weights))
    # A symmetric (square) point set has repeated singular values: an SVD-based fit has no gradient there.
    square = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]], dtype=torch.float64)
    assert torch.autograd.gradcheck(umeyama, (square.clone().requires_grad_(), square.clone().requires_grad_()))


def test_umeyama_degenerate_does_not_nan():
    src = torch.ones(1, 5, 2)
    m = umeyama(src, torch.rand(1, 5, 2))
    assert torch.isfinite(m).all()


def test_invert_affine_roundtrip():
    gen = torch.Generator().manual_seed(5)
    m = similarity_matrix(*random_similarity(4, gen))
    m[:, 0, 1] += 0.3  # a general affine, not only similarities
    pts = torch.rand(4, 7, 2, generator=gen, dtype=torch.float64) * 50
    torch.testing.assert_close(transform_points(transform_points(pts, m), invert_affine(m)), pts)


# -------------------------------------------------------------------------------------------------- templates


def test_templates():
    assert {"arcface", "portrait"} <= set(TEMPLATES)
    for t in TEMPLATES.values():
        assert isinstance(t, AlignTemplate) and len(t.points) == 5
        pts = t.tensor()
        assert ((pts > 0) & (pts < 1)).all()
        # left eye left of right eye, nose below eyes, mouth below nose
        assert pts[0, 0] < pts[1, 0] and pts[3, 0] < pts[4, 0]
        assert pts[:2, 1].max() < pts[2, 1] < pts[3:, 1].min()
    arcface = get_template("arcface").tensor(112)
    torch.testing.assert_close(arcface[0], torch.tensor([38.2946, 51.6963]))
    portrait = get_template("portrait").tensor()
    eye_y, eye_dist = portrait[:2, 1].mean(), portrait[1, 0] - portrait[0, 0]
    assert 0.40 <= eye_y <= 0.45 and 0.25 <= eye_dist <= 0.30
    torch.testing.assert_close(portrait[:2, 0].mean(), torch.tensor(0.5))  # centred


def test_get_template_unknown_raises_usage_error():
    with pytest.raises(UsageError, match="arcface.*portrait"):
        get_template("nope")


@pytest.mark.parametrize("name,size", [("arcface", 112), ("portrait", 256), ("portrait", 512)])
def test_estimate_alignment_maps_points_onto_template(name, size):
    template = get_template(name)
    gen = torch.Generator().manual_seed(size)
    photo_from_crop = similarity_matrix(*random_similarity(5, gen))
    target = template.tensor(size, dtype=torch.float64).expand(5, 5, 2)
    points5 = transform_points(target, photo_from_crop)  # a similarity image of the template
    m = estimate_alignment(points5, template, size)
    torch.testing.assert_close(transform_points(points5, m), target, rtol=0, atol=1e-8)
    torch.testing.assert_close(m, invert_affine(photo_from_crop))


# -------------------------------------------------------------------------------------------- crop and paste


def test_crop_pixel_centre_convention_exact():
    # Photo pixel centre (x=10, y=7) must land exactly on crop pixel (2*10 + 3, 2*7 - 4) = (23, 10).
    image = torch.zeros(1, 1, 20, 30)
    image[0, 0, 7, 10] = 1.0
    m = torch.tensor([[[2.0, 0.0, 3.0], [0.0, 2.0, -4.0]]])
    expected = transform_points(torch.tensor([[[10.0, 7.0]]]), m)[0, 0]
    crop = crop_faces(image, m, 32)
    assert crop[0, 0, 10, 23].item() == pytest.approx(1.0, abs=1e-5)  # sampled at the photo pixel centre
    # halfway to its neighbours
    assert [crop[0, 0, 10, 22].item(), crop[0, 0, 11, 23].item()] == pytest.approx([0.5, 0.5], abs=1e-5)
    assert crop.sum().item() == pytest.approx(4.0, abs=1e-4)  # 1 + 4 * 0.5 + 4 * 0.25: nothing else lit
    assert expected.tolist() == [23.0, 10.0]


@pytest.mark.parametrize("angle,scale", [(0.0, 3.0), (0.7, 2.5), (-2.5, 0.8)])
def test_crop_and_transform_points_agree(angle, scale):
    # A Gaussian blob at a sub-pixel photo location; its centroid in the crop must be where transform_points
    # puts it. A half-pixel convention mismatch would shift it by ~(scale - 1) / 2 px, far above tolerance.
    height, width, size = 60, 80, 64
    centre = torch.tensor([37.3, 24.8])
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    image = torch.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * 1.5**2))[None, None]
    rot = similarity_matrix(torch.tensor([angle]), torch.tensor([scale]), torch.zeros(1, 2))
    # Put the blob near the crop centre.
    shift = torch.tensor([size / 2 - 2.2, size / 2 + 1.7]) - transform_points(centre[None, None], rot)[0, 0]
    m = rot.clone()
    m[0, :, 2] = shift
    expected = transform_points(centre[None, None], m)[0, 0]
    crop = crop_faces(torch.cat([image, image * 0.5], 1), m, size, padding_mode="zeros")[0, 0]
    cy, cx = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    found = torch.stack([(crop * cx).sum() / crop.sum(), (crop * cy).sum() / crop.sum()])
    assert (found - expected).abs().max() < 0.25, (found, expected)


def test_crop_faces_shapes():
    image = torch.rand(1, 3, 40, 50)
    m = torch.eye(2, 3).expand(3, 2, 3)
    assert crop_faces(image, m, 16).shape == (3, 3, 16, 16)
    torch.testing.assert_close(crop_faces(image, m[:1], 40)[..., :40], image[..., :40, :40])
    assert crop_faces(image.double(), m, 8).dtype == torch.float64


def test_crop_faces_edge_colour_fills_past_the_photo_with_its_border_median():
    image = torch.zeros(1, 3, 20, 20)
    image[..., 0, :] = image[..., -1, :] = image[..., :, 0] = image[..., :, -1] = 0.25  # the outer ring
    image[..., 0, :3] = 0.9  # a few odd edge pixels do not move the median
    image[..., 5:15, 5:15] = 0.7
    shift = torch.tensor([[[1.0, 0.0, 10.0], [0.0, 1.0, 10.0]]])  # the photo lands at (10, 10) in a 40² crop
    filled = crop_faces(image, shift, 40, "edge-colour")
    border = crop_faces(image, shift, 40, "border")
    torch.testing.assert_close(filled[..., 10:30, 10:30], border[..., 10:30, 10:30])  # inside: the photo
    assert (filled[..., :9, :] == 0.25).all() and (filled[..., :, 31:] == 0.25).all()  # outside: one colour
    assert not (border[..., :9, :3] == 0.25).all()  # where border mode repeats the odd pixels


def test_crop_faces_auto_fills_with_one_colour_only_crops_mostly_past_the_photo():
    image = torch.rand(1, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    tight = torch.tensor([[1.0, 0.0, 10.0], [0.0, 1.0, 10.0]])  # the photo covers 400 of the 40² crop: 0.25 inside
    inside = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])  # the 40² crop is the photo, twice as large
    near = torch.tensor([[2.0, 0.0, 8.0], [0.0, 2.0, 0.0]])  # 0.8 of the crop inside: a face near the photo's edge
    got = crop_faces(image, torch.stack([tight, inside, near]), 40, "auto")  # chosen per face in one batch
    for i, (m, mode) in enumerate(((tight, "edge-colour"), (inside, "border"), (near, "border"))):
        torch.testing.assert_close(got[i : i + 1], crop_faces(image, m[None], 40, mode))
    assert not torch.equal(got[:1], crop_faces(image, tight[None], 40, "border"))


def test_feather_mask():
    size = 64
    mask = feather_mask(size, 0.25)
    assert mask.shape == (1, 1, size, size) and mask.dtype == torch.float32
    assert mask.min() == 0.0 and mask.max() == 1.0
    assert (mask[..., 0, :] == 0).all() and (mask[..., :, -1] == 0).all()  # border
    assert (mask[..., 16:48, 16:48] == 1).all()  # plateau
    row = mask[0, 0, size // 2]
    assert (row[1 : size // 2] >= row[: size // 2 - 1]).all()  # monotonic ramp in
    torch.testing.assert_close(row, row.flip(0))  # symmetric
    torch.testing.assert_close(mask[0, 0], mask[0, 0].T)
    # Smoothstep, not linear: flat at the border, then faster than linear in the middle of the ramp.
    ramp = 0.25 * size
    assert row[1] < 1 / ramp * 0.5 and row[8] == pytest.approx(0.5)
    assert (feather_mask(8, 0.0) == 1).all()
    assert feather_mask(8, 0.1, dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError):
        feather_mask(8, 0.7)


def _smooth_canvas(height: int, width: int) -> Tensor:
    ys, xs = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    return torch.stack([torch.sin(3 * xs + 1) * 0.4 + 0.5, torch.cos(2 * ys) * 0.4 + 0.5, xs * ys])[None]


def test_paste_back_unmodified_crop_reproduces_canvas():
    height, width, size = 120, 160, 64
    canvas = _smooth_canvas(height, width)
    # A face rotated 20 degrees, scale ~1.1 between photo and crop.
    points = transform_points(
        get_template("portrait").tensor(size)[None],
        similarity_matrix(torch.tensor([0.35]), torch.tensor([1.1]), torch.tensor([[60.0, 20.0]])),
    )
    m = estimate_alignment(points, get_template("portrait"), size)
    crops = crop_faces(canvas, m, size)
    out = paste_back(canvas, crops, m, feather=0.1)
    assert out.shape == canvas.shape and out is not canvas

    # Where each photo pixel falls in the crop.
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    in_crop = transform_points(torch.stack([xs, ys], -1).reshape(1, -1, 2), m).reshape(height, width, 2)
    lo, hi = in_crop.amin(-1), in_crop.amax(-1)
    inside = (lo >= 0) & (hi <= size - 1)
    outside = (lo < -1) | (hi > size)
    assert inside.sum() > 1000 and outside.sum() > 1000
    assert (out - canvas).abs()[0][:, inside].max() < 0.01
    assert torch.equal(out[0][:, outside], canvas[0][:, outside])  # untouched, bit for bit

    # A zero mask pastes nothing.
    assert torch.equal(paste_back(canvas, crops, m, masks=torch.zeros(1, 1, size, size)), canvas)


def test_paste_back_pixel_convention_exact():
    # A 90-degree rotation plus an integer shift moves pixel centres onto pixel centres, so crop and paste
    # back are both exact resamplings: on white noise any half-pixel slip in either direction would show.
    canvas = torch.rand(1, 3, 50, 60, generator=torch.Generator().manual_seed(6))
    m = torch.tensor([[[0.0, -1.0, 45.0], [1.0, 0.0, -7.0]]])  # photo (x, y) -> crop (45 - y, x - 7)
    crops = crop_faces(canvas, m, 32)
    torch.testing.assert_close(crops[0, :, 3, 5], canvas[0, :, 40, 10])  # crop (5, 3) <- photo (10, 40)
    out = paste_back(canvas * 0, crops, m, feather=0.0)
    # photo x in [7, 38], y in [14, 45] is covered by the crop's pixel centres
    torch.testing.assert_close(out[..., 14:46, 7:39], canvas[..., 14:46, 7:39])
    assert (out[..., :13, :] == 0).all() and (out[..., :, 40:] == 0).all()


def test_paste_back_two_faces_both_appear_in_order():
    height, width, size = 100, 200, 32
    canvas = torch.zeros(1, 3, height, width)
    crops = torch.zeros(3, 3, size, size)
    crops[0, 0], crops[1, 1], crops[2, 2] = 1.0, 1.0, 1.0  # red, green, blue faces
    # photo -> crop: crop origin at photo (x0, y0), scale 1.
    origins = torch.tensor([[20.0, 30.0], [120.0, 40.0], [130.0, 50.0]])
    m = torch.eye(2, 3).repeat(3, 1, 1)
    m[:, :, 2] = -origins
    out = paste_back(canvas, crops, m, feather=0.1)
    centre = (size - 1) / 2
    red = out[0, :, int(30 + centre), int(20 + centre)]
    assert red.tolist() == pytest.approx([1.0, 0.0, 0.0])
    green_only = out[0, :, 45, 125]  # first two rows/cols of the overlap's complement
    assert green_only[1] > 0.99 and green_only[2] < 0.01
    overlap = out[0, :, 50 + 16, 130 + 16]  # inside both green and blue: the later (blue) wins
    assert overlap.tolist() == pytest.approx([0.0, 0.0, 1.0])
    assert (out[0, :, :, :10] == 0).all() and (out[0, :, 90:, :] == 0).all()  # uncovered


def test_paste_back_face_outside_canvas_and_masks():
    canvas = torch.rand(1, 1, 20, 20)
    m = torch.tensor([[[1.0, 0.0, 500.0], [0.0, 1.0, 500.0]]])  # crop lies far from the canvas
    assert torch.equal(paste_back(canvas, torch.ones(1, 1, 8, 8), m), canvas)
    with pytest.raises(ValueError):
        paste_back(canvas, torch.ones(1, 1, 8, 8), m, masks=torch.ones(1, 1, 4, 4))


def test_paste_back_darken_keeps_strokes_a_neighbouring_crop_drew():
    # Two overlapping crops on white paper: the first draws a black stroke where the second has only paper.
    canvas = torch.ones(1, 1, 40, 60)
    m = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[1.0, 0.0, -20.0], [0.0, 1.0, 0.0]]])
    crops = torch.ones(2, 1, 40, 40)
    crops[0, :, 10:30, 30] = 0.0  # photo column 30, inside both footprints (the second covers columns 20..59)
    over = paste_back(canvas, crops, m, feather=0.1)
    dark = paste_back(canvas, crops, m, feather=0.1, darken=True)
    assert over[0, 0, 20, 30] > 0.9  # blended over: the second crop's paper wiped the stroke out
    assert dark[0, 0, 20, 30] < 0.2  # darkest wins: the stroke stays
    assert dark[0, 0, 20, 50] == 1.0 and torch.equal(dark[..., 0, :], canvas[..., 0, :])  # paper stays paper


def test_avatar_template_is_the_symmetric_cartoon_layout():
    from facetool.align import get_template

    points = get_template("avatar").tensor(128)
    assert torch.allclose(points[0, 1], points[1, 1]) and torch.allclose(points[3, 1], points[4, 1])
    assert abs(float(points[0, 0] + points[1, 0]) / 2 - 64) < 1  # eyes centred
    assert 28 < float(points[1, 0] - points[0, 0]) < 32  # the cartoons' ~30 px between the eyes at 128²
