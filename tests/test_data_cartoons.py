"""facetool data cartoons: DiceBear-style avatars with exact landmarks, hair classes, and the shared augmentation."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

pytest.importorskip("cairosvg")
pytest.importorskip("dicebear_styles")

from facetool.data import avatars  # noqa: E402
from facetool.data.cartoons import make_cartoons  # noqa: E402

SIZE = 128


def _draws(per_style: int, seed: int = 0):
    for style in avatars.DEFAULT_STYLES:
        for i in range(per_style):
            yield avatars.random_draw(style, np.random.default_rng([seed, i]))


def _render(draw, size=SIZE):
    svg, composer = avatars.compose_svg(draw, size)
    return avatars.rasterise(svg, size), avatars.landmarks(draw, composer, size)


def _part_mask(draw, image, part, size=SIZE):
    """Pixels that change when ``part`` is left out: where the part is really drawn in the final image."""
    without = dataclasses.replace(draw, variants={k: v for k, v in draw.variants.items() if k != part})
    other = avatars.rasterise(avatars.compose_svg(without, size)[0], size)
    return np.abs(image.astype(int) - other.astype(int)).sum(-1) > 12


def _near(mask, point, radius):
    """Whether a mask pixel lies within ``radius`` pixels of ``point`` (pixel centres at integers)."""
    yy, xx = np.nonzero(mask)
    return bool(np.min(np.hypot(xx - point[0], yy - point[1])) <= radius) if xx.size else False


def _inside_box(mask, point, pad=1.0):
    yy, xx = np.nonzero(mask)
    return xx.min() - pad <= point[0] <= xx.max() + pad and yy.min() - pad <= point[1] <= yy.max() + pad


def test_make_is_deterministic_and_resumes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert make_cartoons(a, 3, size=64, seed=5) == (3, 0)
    assert make_cartoons(b, 3, size=64, seed=5) == (3, 0)
    assert (a / "manifest.jsonl").read_bytes() == (b / "manifest.jsonl").read_bytes()
    records = [json.loads(line) for line in (a / "manifest.jsonl").read_text().splitlines()]
    for record in records:
        assert (a / record["file"]).read_bytes() == (b / record["file"]).read_bytes()
        labels = record["labels"]
        assert labels["hair"] in avatars.HAIR_CLASSES and labels["style"] in avatars.DEFAULT_STYLES
        assert labels["points5"] == [labels["points"][n] for n in avatars.POINTS5]
        assert record["licence"].startswith(labels["licence"]) and labels["licence"]
    # a lost file is remade identically; the rest are skipped
    lost = a / records[1]["file"]
    lost.unlink()
    assert make_cartoons(a, 3, size=64, seed=5) == (1, 2)
    assert lost.read_bytes() == (b / records[1]["file"]).read_bytes()
    # growing the set keeps the first items; another seed draws other cartoons
    assert make_cartoons(a, 4, size=64, seed=5) == (1, 3)
    make_cartoons(tmp_path / "c", 1, size=64, seed=6)
    assert (tmp_path / "c" / records[0]["file"]).read_bytes() != (a / records[0]["file"]).read_bytes()


def test_augmented_items_are_deterministic_and_keep_points(tmp_path):
    for name in ("a", "b"):
        make_cartoons(tmp_path / name, 2, size=64, seed=1, styles=("avataaars",), augment=True)
    assert (tmp_path / "a" / "manifest.jsonl").read_bytes() == (tmp_path / "b" / "manifest.jsonl").read_bytes()
    for line in (tmp_path / "a" / "manifest.jsonl").read_text().splitlines():
        labels = json.loads(line)["labels"]
        matrix = np.array(labels["augment"])
        assert matrix.shape == (2, 3)
        assert np.all(np.array(list(labels["points"].values())) >= 0)
        assert np.all(np.array(list(labels["points"].values())) <= 63)


def test_other_options_refuse_the_folder(tmp_path):
    from facetool.errors import UsageError

    make_cartoons(tmp_path, 1, size=64)
    with pytest.raises(UsageError, match="--out"):
        make_cartoons(tmp_path, 1, size=96)
    with pytest.raises(UsageError, match="--style"):
        make_cartoons(tmp_path / "x", 1, styles=("lorelei", "nope"))


def test_every_landmark_is_inside_and_in_face_order():
    for draw in _draws(3, seed=11):
        _, composer = avatars.compose_svg(draw, SIZE)
        points = avatars.landmarks(draw, composer, SIZE)
        assert set(points) == set(avatars.LANDMARKS), draw.style
        xy = np.array(list(points.values()))
        assert np.all(xy >= 0) and np.all(xy <= SIZE - 1), (draw.style, points)
        p = {k: np.array(v) for k, v in points.items()}
        assert p["left_eye"][0] < p["right_eye"][0] and p["mouth_left"][0] < p["mouth_right"][0]
        eyes_y = 0.5 * (p["left_eye"][1] + p["right_eye"][1])
        brows_y = 0.5 * (p["left_brow"][1] + p["right_brow"][1])
        assert brows_y < eyes_y < p["nose"][1] < p["mouth"][1] < p["chin"][1], (draw.style, points)


def test_landmarks_sit_on_the_drawn_parts():
    """Each landmark is checked against the pixels its part really paints in the final image (the image with
    and without that part), which exercises the whole transform chain independently of the anchor measurement."""
    for draw in _draws(2, seed=3):
        image, points = _render(draw)
        where = f"{draw.style} {draw.variants}"
        for part, names in (("eyes", ("left_eye", "right_eye")), ("eyebrows", ("left_brow", "right_brow"))):
            mask = _part_mask(draw, image, part)
            split = int(round(0.5 * (points[names[0]][0] + points[names[1]][0])))
            for name, side in zip(names, (slice(0, split), slice(split, SIZE)), strict=True):
                half = np.zeros_like(mask)
                half[:, side] = mask[:, side]
                assert half.any(), (name, where)
                assert _inside_box(half, points[name]), (name, points[name], where)
                assert _near(half, points[name], 1.5), (name, points[name], where)
        nose = _part_mask(draw, image, "nose")
        assert _inside_box(nose, points["nose"]) and _near(nose, points["nose"], 1.0), (points["nose"], where)
        mouth = _part_mask(draw, image, "mouth")
        for name in ("mouth_left", "mouth_right"):
            assert _inside_box(mouth, points[name]) and _near(mouth, points[name], 1.5), (name, where)
        # the centre lies inside an open mouth's outline, so it only has to be near the drawing
        assert _inside_box(mouth, points["mouth"]) and _near(mouth, points["mouth"], 2.5), where
        # the corners are the mouth's ends: nothing of the mouth lies far beyond them along x
        xs = np.nonzero(mouth)[1]
        span = points["mouth_right"][0] - points["mouth_left"][0]
        assert points["mouth_left"][0] - xs.min() <= 0.25 * span + 1 and xs.max() - points["mouth_right"][0] <= (
            0.25 * span + 1
        ), where


def test_chin_sits_at_the_bottom_of_the_face():
    """Face skin (found by re-rendering with another skin colour) lies just above the chin, and the face ends
    within 2 px of it (outline, background, neck shadow or the jaw's dark shading)."""
    for draw in _draws(3, seed=8):
        _, points = _render(draw)
        skin = avatars.colour_coverage(draw, SIZE, avatars.STYLES[draw.style].skin_colours) > 0.95
        x, y = points["chin"]
        assert skin[int(round(y - 6)), int(round(x))], (draw.style, points["chin"])
        yy, xx = np.mgrid[0:SIZE, 0:SIZE]
        assert (~skin[np.hypot(xx - x, yy - y) <= 2.0]).any(), (draw.style, points["chin"])


@pytest.mark.parametrize("style", avatars.DEFAULT_STYLES)
def test_hair_class_recovers_from_the_hair_pixels(style):
    for k, hair in enumerate(avatars.HAIR_CLASSES):
        draw = avatars.random_draw(style, np.random.default_rng([21, k]), hair=hair)
        image, _ = _render(draw, 64)
        coverage = avatars.hair_coverage(draw, 64)
        fully = coverage > 0.75
        assert fully.sum() >= 40, (style, hair, int(fully.sum()))
        mean = image[fully].reshape(-1, 3).mean(0)
        assert avatars.classify_hair(mean) == hair, (style, hair, mean)


def test_classify_hair_palettes_and_licences():
    for hair, palette in avatars.HAIR_PALETTES.items():
        for colour in palette:
            assert avatars.classify_hair(avatars.hex_to_rgb(colour)) == hair
    assert avatars.style_licence("lorelei")["name"] == "CC0 1.0"
    assert avatars.style_licence("notionists")["name"] == "CC0 1.0"
    assert avatars.style_licence("avataaars")["name"]


def test_parse_transform_matches_svg_semantics():
    m = avatars.parse_transform("translate(10 5)scale(2) rotate(90, 1, 1)")
    # rotate 90 about (1, 1) sends (2, 1) to (1, 2); then scale 2 -> (2, 4); then translate -> (12, 9)
    assert np.allclose(avatars.map_points(m, [[2.0, 1.0]]), [[12.0, 9.0]])
    assert np.allclose(avatars.parse_transform("matrix(1 0 0 1 3 4)")[:2, 2], [3, 4])


# ----------------------------------------------------------------------------------------------------
# augment
# ----------------------------------------------------------------------------------------------------


def _dots(points, height, width, sigma=1.2):
    import torch

    yy, xx = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(), indexing="ij")
    image = torch.zeros(points.shape[0], 1, height, width)
    for b in range(points.shape[0]):
        for x, y in points[b]:
            image[b, 0] += torch.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return image


def _centroid(image, x, y, radius=4):
    """Brightness-weighted centre of the window around (x, y) of a (H, W) image."""
    import torch

    x0, y0 = max(int(round(x)) - radius, 0), max(int(round(y)) - radius, 0)
    window = image[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1].clamp_min(0)
    ys, xs = torch.meshgrid(torch.arange(window.shape[0]).float() + y0, torch.arange(window.shape[1]).float() + x0,
                            indexing="ij")  # fmt: skip
    return float((window * xs).sum() / window.sum()), float((window * ys).sum() / window.sum())


def test_augment_moves_a_dot_with_its_point():
    import torch

    from facetool.data.augment import augment

    height, width = 64, 72
    points = torch.tensor([[[14.0, 12.0], [57.0, 40.0], [33.3, 47.6]]]).repeat(6, 1, 1)
    image = _dots(points, height, width)
    out, moved = augment(image, points, torch.Generator().manual_seed(0))
    assert out.shape == image.shape and moved.shape == points.shape
    for b in range(points.shape[0]):
        for x, y in moved[b].tolist():
            assert 0 <= x <= width - 1 and 0 <= y <= height - 1
            # the brightest pixel is the dot's centre: within 1 px of the moved landmark
            x0, y0 = int(round(x)), int(round(y))
            window = out[b, 0, max(y0 - 4, 0) : y0 + 5, max(x0 - 4, 0) : x0 + 5]
            iy, ix = divmod(int(window.argmax()), window.shape[1])
            assert math.hypot(max(x0 - 4, 0) + ix - x, max(y0 - 4, 0) + iy - y) <= 1.0
            # and the blob's centroid agrees to a fraction of a pixel
            cx, cy = _centroid(out[b, 0], x, y)
            assert math.hypot(cx - x, cy - y) < 0.3


def test_augment_ranges_and_reproducibility():
    import torch

    from facetool.data.augment import augment, random_affine

    m = random_affine(3000, (64, 64), torch.Generator().manual_seed(1))
    angle = torch.rad2deg(torch.atan2(m[:, 1, 0], m[:, 0, 0]))
    scale = torch.sqrt(torch.linalg.det(m[:, :, :2]))
    assert angle.abs().max() <= 15.0 + 1e-4 and angle.abs().max() > 14.0
    assert scale.min() >= 1.0 - 1e-6 and scale.max() <= 1.3 + 1e-6 and scale.max() > 1.28
    # the centre moves by the shift only: at most 10 % of the side
    centre = torch.tensor([31.5, 31.5])
    moved = m[:, :, :2] @ centre + m[:, :, 2]
    assert (moved - centre).abs().max() <= 0.1 * 63 + 1e-4
    image = torch.rand(2, 3, 32, 32)
    points = torch.rand(2, 5, 2) * 31
    a = augment(image, points, torch.Generator().manual_seed(7))
    b = augment(image, points, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # uint8 images come back uint8
    out, _ = augment((image * 255).to(torch.uint8), points, torch.Generator().manual_seed(7))
    assert out.dtype == torch.uint8


def test_color_jitter_turns_hues_keeps_range_and_can_be_undone():
    import pytest
    import torch

    from facetool.data.augment import color_jitter

    red = torch.zeros(400, 3, 4, 4)
    red[:, 0] = 0.8
    out = color_jitter(red, torch.Generator().manual_seed(0), brightness=0.0, contrast=(1.0, 1.0), grayscale=0.0,
                       saturation=(1.0, 1.0))  # fmt: skip
    assert out.shape == red.shape and out.min() >= 0 and out.max() <= 1
    dominant = out.mean(dim=(2, 3)).argmax(dim=1)
    assert all((dominant == c).float().mean() > 0.2 for c in range(3))  # any hue: red, green and blue all drawn
    again = color_jitter(red, torch.Generator().manual_seed(0), brightness=0.0, contrast=(1.0, 1.0), grayscale=0.0,
                         saturation=(1.0, 1.0))  # fmt: skip
    assert torch.equal(out, again)
    grey = color_jitter(torch.rand(8, 3, 6, 6), torch.Generator().manual_seed(1), grayscale=1.0)
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
    image = torch.rand(4, 3, 6, 6)
    same = color_jitter(image, hue=0.0, saturation=(1.0, 1.0), brightness=0.0, contrast=(1.0, 1.0), grayscale=0.0)
    assert torch.allclose(same, image, atol=1e-5)
    with pytest.raises(ValueError, match="float"):
        color_jitter((image * 255).to(torch.uint8))


def test_cut_edges_repeats_the_last_kept_row_and_column_like_a_photo_that_ends():
    import pytest
    import torch

    from facetool.data.augment import cut_edges

    image = torch.arange(300 * 32 * 32, dtype=torch.float32).view(300, 1, 32, 32)
    assert torch.equal(cut_edges(image, torch.Generator().manual_seed(0), chance=0.0), image)
    out = cut_edges(image, torch.Generator().manual_seed(0), chance=1.0, max_cut=0.3)
    assert out.shape == image.shape and out.dtype == image.dtype
    assert torch.equal(out, cut_edges(image, torch.Generator().manual_seed(0), chance=1.0, max_cut=0.3))
    cut = 0
    for b in range(300):
        rows_same = (out[b, 0, 1:] == out[b, 0, :-1]).all(dim=1)  # a repeated row equals its neighbour
        kept = out[b, 0][~torch.cat([rows_same, torch.tensor([False])])]
        assert int(rows_same.sum()) <= 2 * int(0.3 * 32)  # never more than the two cuts
        cut += int(not torch.equal(out[b], image[b]))
        # what is left is the original's middle, shifted by nothing: every kept value is the pixel it was
        assert torch.isin(kept, image[b]).all()
        inner = out[b, 0, 10:22, 10:22]  # no cut reaches the centre
        assert torch.equal(inner, image[b, 0, 10:22, 10:22])
    assert 250 < cut < 300  # each side cut with chance 1/2: all four spared 1 in 16
    with pytest.raises(ValueError):
        cut_edges(image, max_cut=0.5)
    # filled with one colour instead: the kept part's outer ring's median, as crop_faces' edge-colour mode
    from facetool.data.augment import cut_sides

    square = torch.full((1, 3, 32, 32), 0.2)
    square[..., 8:24, 8:24] = 0.6
    flat = cut_sides(square, torch.tensor([0.25, 0.25, 0.25, 0.25]), fill="edge-colour")
    assert (flat[..., :8, :] == 0.6).all() and (flat[..., 8:24, 8:24] == 0.6).all()
    # auto: one colour only where less than half is kept (0.25 kept here), the edge repeated otherwise
    torch.testing.assert_close(cut_sides(square, torch.tensor([0.25, 0.25, 0.25, 0.25]), fill="auto"), flat)
    light = torch.tensor([0.1, 0.1, 0.1, 0.1])  # 0.64 kept
    torch.testing.assert_close(cut_sides(square, light, fill="auto"), cut_sides(square, light, fill="border"))
    with pytest.raises(ValueError):
        cut_sides(square, torch.zeros(4), fill="mirror")


def test_augment_keeps_points_inside_when_it_can():
    import torch

    from facetool.data.augment import random_affine, transform_points

    points = torch.tensor([[[2.0, 30.0], [61.0, 30.0]]]).repeat(200, 1, 1)  # nearly the full width apart
    m = random_affine(200, (64, 64), torch.Generator().manual_seed(2), scale=(1.0, 1.0), max_rotation=0.0,
                      points=points, margin=1.0)  # fmt: skip
    moved = transform_points(points, m)
    assert moved[..., 0].min() >= 1.0 - 1e-4 and moved[..., 0].max() <= 62.0 + 1e-4


def test_tps_warp_puts_each_dot_on_its_target_and_keeps_the_frame():
    import torch

    from facetool.data.augment import tps_warp

    height, width = 65, 73  # odd: the edge midpoints the warp holds fall on pixels
    source = torch.tensor([[[20.0, 24.0], [50.0, 24.0], [35.0, 44.0]]])
    target = torch.tensor([[[16.0, 26.0], [55.0, 22.0], [35.0, 47.5]]])  # eyes apart, the mouth down
    out = tps_warp(_dots(source, height, width), source, target)
    for x, y in target[0].tolist():
        cx, cy = _centroid(out[0, 0], x, y)
        assert math.hypot(cx - x, cy - y) < 0.4
    ramp = torch.arange(width, dtype=torch.float32).expand(1, 1, height, width).clone()
    bent = tps_warp(ramp, source, target)
    for y, x in [(0, 0), (0, 36), (0, 72), (32, 0), (32, 72), (64, 0), (64, 36), (64, 72)]:
        assert abs(bent[0, 0, y, x] - x) < 0.05  # the frame's corners and midpoints stay put
    assert (bent[0, 0, [0, -1]] - ramp[0, 0, [0, -1]]).abs().max() < 1.5  # its edges move little (parts ≤ 5 px)
    assert torch.allclose(tps_warp(ramp, source, source), ramp, atol=1e-3)  # nothing asked, nothing moves


def test_tps_warp_is_kornias_spline_in_float64():
    """tps_warp evaluates the spline itself (two matmuls, for speed): the same image as kornia's warp_image_tps."""
    import torch
    from kornia.geometry.transform import get_tps_transform, warp_image_tps

    from facetool.data.augment import tps_warp

    gen = torch.Generator().manual_seed(3)
    height, width = 48, 40  # not square: each axis has its own scale in grid_sample's frame
    image = torch.rand(3, 2, height, width, generator=gen, dtype=torch.float64)
    source = torch.rand(3, 5, 2, generator=gen, dtype=torch.float64) * torch.tensor([20.0, 24.0]) + 10
    target = source + torch.randn(3, 5, 2, generator=gen, dtype=torch.float64) * 2
    w, h = width - 1, height - 1
    frame = [[0, 0], [w / 2, 0], [w, 0], [0, h / 2], [w, h / 2], [0, h], [w / 2, h], [w, h]]
    anchors = torch.tensor(frame, dtype=torch.float64).expand(3, -1, -1)

    def unit(points):
        return torch.cat([points, anchors], 1) * torch.tensor([2 / w, 2 / h], dtype=torch.float64) - 1

    kernel, affine = get_tps_transform(unit(target), unit(source))
    expected = warp_image_tps(image, unit(source), kernel, affine, align_corners=True, padding_mode="border")
    assert torch.allclose(tps_warp(image, source, target), expected, atol=1e-9)


def test_move_parts_moves_each_dot_with_its_own_point():
    import pytest
    import torch

    from facetool.data.augment import move_parts

    points = torch.tensor([[[20.0, 24.0], [44.0, 24.0], [32.0, 44.0]]]).repeat(40, 1, 1)
    out, moved = move_parts(_dots(points, 64, 64), points, torch.Generator().manual_seed(0), sigma=3.0)
    offsets = moved - points
    assert offsets.abs().max() <= 7.5 + 1e-5 and offsets.std() > 2.0  # sd 3, clipped at 2.5 sd
    spread = (offsets[:, 1, 0] - offsets[:, 0, 0]).std()
    assert spread > 3.0  # the eyes move apart and together, not as one
    for b in range(0, 40, 7):
        for x, y in moved[b].tolist():
            cx, cy = _centroid(out[b, 0], x, y)
            assert math.hypot(cx - x, cy - y) < 0.6
    again, _ = move_parts(_dots(points, 64, 64), points, torch.Generator().manual_seed(0), sigma=3.0)
    assert torch.equal(out, again)
    with pytest.raises(ValueError, match="float"):
        move_parts((out * 255).to(torch.uint8), points)


def test_cli_makes_cartoons_and_rejects_bad_styles(tmp_path):
    from typer.testing import CliRunner

    from facetool.cli import build_app

    runner = CliRunner()
    result = runner.invoke(build_app(), ["data", "cartoons", "--count", "1", "--out", str(tmp_path), "--size", "48"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cartoon" / "000000.png").is_file() and "made 1" in result.output
    bad = runner.invoke(build_app(), ["data", "cartoons", "--count", "1", "--out", str(tmp_path), "--style", "x"])
    assert bad.exit_code == 2


def test_crowd_sides_puts_the_neighbours_faces_at_the_edges_and_keeps_the_middle():
    import torch

    from facetool.data.augment import crowd_sides

    # three crops, each a constant value with a distinct middle column band (its "face")
    image = torch.stack([torch.full((1, 20, 20), float(v)) for v in (0.1, 0.2, 0.3)])
    image[..., 8:12] += 0.5
    out = crowd_sides(image, 0.2)  # 4-px strips: the neighbours' middle columns 8..11
    torch.testing.assert_close(out[..., 4:16], image[..., 4:16])
    assert torch.allclose(out[0, ..., :4], torch.tensor(0.7)) and torch.allclose(out[0, ..., 16:], torch.tensor(0.8))
    assert torch.allclose(out[2, ..., :4], torch.tensor(0.6)) and torch.allclose(out[2, ..., 16:], torch.tensor(0.7))
    single = crowd_sides(image[:1], 0.2)  # alone: its own face, mirrored
    assert torch.allclose(single[..., :4], torch.tensor(0.6))
    torch.testing.assert_close(crowd_sides(image, 0.0), image)
    with pytest.raises(ValueError):
        crowd_sides(image, 0.5)
