"""-O isolate (everything but the person blurred before drawing) and -O clean=flat (the avatar in a few flat
colours): on generated pictures whose answer is known."""

from __future__ import annotations

import torch
from facetool_cartoon.flat import flat_colours, kmeans_lab, merge_close
from facetool_cartoon.isolate import isolate_people, wants_isolation


def _shaded_avatar(size: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """((1, 3, S, S) a pale background, a skin-coloured head shaded top to bottom, two dark eyes; the head mask)."""
    y, x = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    image = torch.tensor([0.96, 0.93, 0.9])[:, None, None].expand(3, size, size).clone()
    head = ((x - size / 2) / (0.3 * size)) ** 2 + ((y - size / 2) / (0.38 * size)) ** 2 < 1
    shade = 1 - 0.08 * (y / size)  # a soft gradient a photo's lighting leaves: not a cartoon's flat skin
    skin = torch.tensor([0.85, 0.62, 0.5])[:, None, None] * shade
    image = torch.where(head, skin, image)
    for cx in (0.4, 0.6):
        eye = ((x - cx * size) ** 2 + (y - 0.45 * size) ** 2).sqrt() < 0.04 * size
        image[:, eye] = 0.08
    return image[None], head


def test_kmeans_finds_the_colours_and_merge_joins_only_the_close_ones():
    points = torch.cat([torch.full((50, 3), 20.0), torch.full((50, 3), 22.0), torch.full((50, 3), 80.0)])[None]
    points[..., 1:] = 0  # Lab: L* 20, 22 and 80, no chroma
    centres, assign = kmeans_lab(points, 3, 5)
    assert sorted(round(float(c), 3) for c in centres[0, :, 0]) == [20.0, 22.0, 80.0]
    joined = merge_close(centres[0], assign[0], merge=5.0)
    assert joined[:100, 0].unique().numel() == 1 and abs(float(joined[0, 0]) - 21.0) < 1e-4  # the weighted mean
    assert float(joined[-1, 0]) == 80.0
    kept = merge_close(centres[0], assign[0], merge=1.0)
    assert kept[:, 0].unique().numel() == 3


def test_flat_colours_paint_the_shaded_skin_one_colour_and_keep_the_eyes():
    image, head = _shaded_avatar()
    flat = flat_colours(image)
    assert flat.shape == image.shape and flat.min() >= 0 and flat.max() <= 1
    inner = head & (torch.nn.functional.avg_pool2d(head[None, None].float(), 9, 1, 4)[0, 0] > 0.999)
    inner[36:52] = False  # away from the eyes
    skin_before, skin_after = image[0][:, inner], flat[0][:, inner]
    assert skin_before.std(dim=1).max() > 0.01  # the shading was there
    assert skin_after.std(dim=1).max() < 0.005  # and is one colour now
    assert (skin_after.mean(dim=1) - skin_before.mean(dim=1)).abs().max() < 0.03  # the same skin colour
    assert flat[0, :, 43, 38].max() < 0.25  # an eye stays dark
    assert flat[0, :, 5, 5].min() > 0.85  # the background stays pale


def _striped_portrait(size: int = 128) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """((1, 3, S, S) a face-coloured head on busy blue-green stripes, (1, 5, 2) its points, the stripes alone)."""
    from facetool.align import get_template

    points = get_template("avatar").tensor(size)[None]
    y, x = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    stripes = ((x // 8) % 2).float()
    background = torch.stack([0.1 + 0.3 * stripes, 0.5 + 0.3 * stripes, 0.9 - 0.2 * stripes])
    centre = points[0].mean(dim=0)
    head = ((x - centre[0]) / 34) ** 2 + ((y - centre[1] + 6) / 44) ** 2 < 1
    image = torch.where(head, torch.tensor([0.82, 0.6, 0.48])[:, None, None], background)[None]
    return image, points, background


def test_isolate_blurs_what_is_not_the_person_and_keeps_the_face():
    """The stripes lose their shape but keep their colour; the face is untouched."""
    image, points, background = _striped_portrait()
    out = isolate_people(image, points)
    assert out.shape == image.shape
    centre = points[0].mean(dim=0).long()
    assert torch.allclose(out[0, :, centre[1], centre[0]], image[0, :, centre[1], centre[0]], atol=1e-3)
    top = out[0, :, 2:20, :]  # above the head: stripes only
    assert image[0, :, 2:20, :].std(dim=2).mean() > 0.1  # the stripes were there
    assert top.std(dim=2).mean() < 0.05  # and are gone (what is left: the head blurred into the band)
    assert (top.mean(dim=(1, 2)) - background.mean(dim=(1, 2))).abs().max() < 0.05  # their colour stays


def test_a_patch_of_the_backgrounds_colour_inside_the_face_stays_the_persons():
    """A lit forehead can have the wall's colour; the mask decides its edge by colour, so such a patch would be
    blurred as background unless what the border cannot reach counts as the person."""
    image, points, background = _striped_portrait()
    centre = points[0].mean(dim=0).long()
    top = int(centre[1]) - 30  # the forehead, above the brows, inside the head
    image[0, :, top : top + 8, centre[0] - 8 : centre[0] + 8] = background[:, :8, 8:24]  # the stripes' colours
    out = isolate_people(image, points)
    patch = (slice(None), slice(top, top + 8), slice(int(centre[0]) - 8, int(centre[0]) + 8))
    assert torch.allclose(out[0][patch], image[0][patch], atol=0.02)


def test_auto_isolates_only_group_photos():
    assert [wants_isolation("auto", c) for c in (False, True)] == [False, True]
    assert [wants_isolation("blur", c) for c in (False, True)] == [True, True]
    assert [wants_isolation("none", c) for c in (False, True)] == [False, False]


def test_the_runner_isolates_a_group_photos_faces_before_drawing():
    from facetool_cartoon.net import ConditionalResnetConfig, ConditionalResnetGenerator
    from facetool_cartoon.runner import CartoonRunner

    class Copy(torch.nn.Module):  # a "generator" that draws its input: what it was given is what comes out
        config = ConditionalResnetGenerator(ConditionalResnetConfig(base=4, blocks=1)).config

        def forward(self, x, labels, heatmaps, skin=None):
            return x

    image, _, _ = _striped_portrait()

    def run(crops, isolate="auto"):
        return CartoonRunner(Copy(), "cpu", "black", plain_backdrop=False, clean="none", isolate=isolate)(crops)

    def busy(out):  # how striped the band above the head still is
        return float(out[:, :, 2:20, :].std(dim=3).mean())

    assert torch.allclose(run(image), image, atol=1e-5)  # one face: a portrait, drawn as it is
    assert busy(run(image.repeat(2, 1, 1, 1))) < 0.05  # two faces: a group photo, the neighbours blurred away
    assert busy(run(image, "blur")) < 0.05
    assert torch.allclose(run(image.repeat(2, 1, 1, 1), "none"), image.repeat(2, 1, 1, 1), atol=1e-5)
