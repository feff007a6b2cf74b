"""The avatar cut-out: plain background clear, head opaque, islands away from the face dropped; the background
flattened to one colour with the head, the island and a background-coloured face left as drawn."""

from __future__ import annotations

import torch
from facetool_cartoon.cutout import FACE_ELLIPSE, avatar_alpha, ellipse, flatten_background


def _avatar(size: int = 128) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image (1, 3, S, S), head mask, island mask): a pastel background, a brown head around the template's face, a
    dark blob in a corner, grain everywhere."""
    y, x = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    image = torch.tensor([0.95, 0.82, 0.86])[:, None, None].expand(3, size, size).clone()
    head = ((x - 0.5 * size) / (0.3 * size)) ** 2 + ((y - 0.5 * size) / (0.38 * size)) ** 2 < 1
    island = ((x - 0.1 * size) ** 2 + (y - 0.9 * size) ** 2).sqrt() < 0.06 * size
    image[:, head] = torch.tensor([0.75, 0.5, 0.35])[:, None]
    image[:, island] = 0.1
    grain = torch.randn(3, size, size, generator=torch.Generator().manual_seed(0)) * 0.04
    return (image + grain).clamp(0, 1)[None], head, island


def test_background_is_clear_and_head_opaque():
    image, head, island = _avatar()
    alpha = avatar_alpha(image)[0, 0]
    assert alpha.shape == head.shape and alpha.min() >= 0 and alpha.max() <= 1
    inner = head & (torch.nn.functional.avg_pool2d(head[None, None].float(), 9, 1, 4)[0, 0] > 0.999)
    assert alpha[inner].min() > 0.95
    assert alpha[~head].mean() < 0.1
    assert alpha[island].max() < 0.05  # not connected to the face: dropped
    assert alpha[:8, :8].max() == 0


def test_pale_face_on_pale_background_keeps_the_face():
    pale = torch.full((1, 3, 128, 128), 0.93)  # nothing to tell apart: the template's face region stays
    alpha = avatar_alpha(pale)[0, 0]
    assert alpha[64, 64] > 0.95 and alpha[70, 50] > 0.95
    assert alpha[:10].max() < 0.05 and alpha[:, :10].max() < 0.05


def test_flattened_background_is_one_colour_and_the_rest_is_as_drawn():
    image, head, island = _avatar()
    flat = flatten_background(image)[0]
    corner = flat[:, :20, :20].flatten(1)
    assert corner.std(dim=1).max() < 1e-3  # the grain is gone from the plain background
    assert torch.allclose(corner.mean(dim=1), torch.tensor([0.95, 0.82, 0.86]), atol=0.02)
    assert image[0, :, :20, :20].flatten(1).std(dim=1).min() > 0.03  # (it was grainy)
    assert torch.equal(flat[:, head], image[0][:, head])  # head and island: not of the background's colour
    assert torch.equal(flat[:, island], image[0][:, island])


def test_the_paste_mask_of_a_painted_avatar_is_the_drawn_one():
    image, _, _ = _avatar()
    change = (avatar_alpha(flatten_background(image)) - avatar_alpha(image)).abs()
    assert change.mean() < 0.002 and change.max() < 0.2  # the soft edge (a steep ramp) shifts a little, nothing else


def test_the_soft_edge_lies_inside_the_head_so_no_backdrop_glows_around_it():
    image, head, _ = _avatar()
    alpha = avatar_alpha(image)[0, 0]
    assert alpha[~head].mean() < 0.005 and alpha[~head].max() < 0.4  # centred on the outline: 0.030 and 0.67


def test_a_face_of_the_background_colour_is_not_flattened():
    grain = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(1)) * 0.03
    pale = (torch.full((1, 3, 128, 128), 0.9) + grain).clamp(0, 1)
    flat = flatten_background(pale)
    face = ellipse(128, FACE_ELLIPSE, 0.02) > 0.999
    assert torch.equal(flat[0][:, face], pale[0][:, face])
    assert flat[0, :, :10, :10].flatten(1).std(dim=1).max() < 1e-3


def test_the_runner_paints_the_backdrop_unless_told_to_keep_the_drawing():
    from facetool_cartoon.net import ConditionalResnetConfig, ConditionalResnetGenerator
    from facetool_cartoon.runner import CartoonRunner

    image, head, _ = _avatar()

    class Drawing(torch.nn.Module):  # a "generator" that always draws the grainy avatar above
        config = ConditionalResnetGenerator(ConditionalResnetConfig(base=4, blocks=1)).config

        def forward(self, x, labels, heatmaps, skin=None):
            return image.expand(len(x), -1, -1, -1) * 2 - 1

    crops = torch.full((1, 3, 128, 128), 0.5)
    painted = CartoonRunner(Drawing(), "cpu", "black", clean="none")(crops)[0]
    drawn = CartoonRunner(Drawing(), "cpu", "black", plain_backdrop=False, clean="none")(crops)[0]
    assert torch.allclose(drawn, image[0], atol=1e-6)
    assert painted[:, :20, :20].flatten(1).std(dim=1).max() < 1e-3 < drawn[:, :20, :20].flatten(1).std(dim=1).min()
    assert torch.allclose(painted[:, head], drawn[:, head])


def test_the_runner_cleans_checkerboard_and_specks_unless_told_not_to():
    from facetool_cartoon.net import ConditionalResnetConfig, ConditionalResnetGenerator
    from facetool_cartoon.runner import CartoonRunner

    from facetool.metrics.texture import checkerboard, grain

    image, head, _ = _avatar()
    ys, xs = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    checkered = (image + ((ys + xs) % 2 + (ys // 2 + xs // 2) % 2).float() * 0.03).clamp(0, 1)

    class Drawing(torch.nn.Module):  # a "generator" that draws the avatar with a deconv's checkerboard on it
        config = ConditionalResnetGenerator(ConditionalResnetConfig(base=4, blocks=1)).config

        def forward(self, x, labels, heatmaps, skin=None):
            return checkered.expand(len(x), -1, -1, -1) * 2 - 1

    crops = torch.full((1, 3, 128, 128), 0.5)
    cleaned = CartoonRunner(Drawing(), "cpu", "black", plain_backdrop=False)(crops)  # the default: median
    drawn = CartoonRunner(Drawing(), "cpu", "black", plain_backdrop=False, clean="none")(crops)
    assert torch.allclose(drawn, checkered, atol=1e-6)
    assert checkerboard(cleaned).item() < checkerboard(drawn).item() - 0.3
    assert grain(cleaned).item() < 0.5 * grain(drawn).item()
    # flat areas keep their colour: the head's mean moves by a fraction of the pattern's amplitude (0.06)
    assert (cleaned[0][:, head].mean(dim=1) - drawn[0][:, head].mean(dim=1)).abs().max() < 0.01


def test_skin_is_read_between_the_eyes_and_the_mouth_past_lines_and_highlights():
    from facetool_cartoon.skin import skin_lab, skin_patch
    from kornia.color import rgb_to_lab

    points = torch.tensor([[[44.0, 56.0], [84.0, 56.0], [64.0, 74.0], [50.0, 92.0], [78.0, 92.0]]])
    patch = skin_patch(points, 128)
    assert patch[0, 74, 64] and not patch[0, 56, 44] and not patch[0, 100, 64] and not patch[0, 74, 100]
    skin = torch.tensor([0.8, 0.6, 0.45])
    image = torch.ones(1, 3, 128, 128)  # white outside the patch: only the patch may count
    image[0][:, patch[0]] = skin[:, None]
    image[:, :, 70:72, 50:80] = 0.05  # a drawn line (the nose) and a highlight inside the patch
    image[:, :, 76:78, 60:64] = 1.0
    expected = rgb_to_lab(skin[None, :, None, None])[0, :, 0, 0]
    assert torch.allclose(skin_lab(image, patch)[0], expected, atol=0.5)
    assert torch.allclose(skin_lab(image * 0 + 0.5, torch.zeros_like(patch))[0, 1:], torch.zeros(2), atol=0.5)
