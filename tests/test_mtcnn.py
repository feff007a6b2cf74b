"""Tests of the pure-PyTorch MTCNN (facetool.nets.mtcnn) with the pretrained P/R/O-Net weights.

The weights come from the asset registry (``facetool assets fetch mtcnn-pnet mtcnn-rnet mtcnn-onet``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facetool.errors import AssetError
from facetool.nets.mtcnn import MTCNN, ONet, PNet, RNet, crop_boxes, nms

from conftest import require_assets

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "astronaut.png"
NAMES = ("pnet", "rnet", "onet")
EMPTY_SHAPES = ((0, 4), (0,), (0, 5, 2))


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with pnet.pt, rnet.pt, onet.pt linked from the asset cache."""
    from facetool.assets import get_store

    require_assets(*(f"mtcnn-{n}" for n in NAMES))
    folder = tmp_path_factory.mktemp("mtcnn")
    for n in NAMES:
        (folder / f"{n}.pt").symlink_to(get_store().path(f"mtcnn-{n}"))
    return folder


@pytest.fixture(scope="module")
def detector(weights_dir: Path) -> MTCNN:
    return MTCNN.from_files(*(weights_dir / f"{n}.pt" for n in NAMES))


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    if not SAMPLE.is_file():
        pytest.skip(f"sample photo missing: {SAMPLE}")
    rgb = np.asarray(Image.open(SAMPLE).convert("RGB"))
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)  # (3, H, W) uint8


@pytest.fixture(scope="module")
def astronaut_result(detector: MTCNN, astronaut: torch.Tensor):
    return detector.detect(astronaut)


def _assert_empty(result) -> None:
    assert tuple(tuple(t.shape) for t in result) == EMPTY_SHAPES
    assert all(t.dtype == torch.float32 for t in result)


def test_state_dicts_load_strict(weights_dir: Path) -> None:
    for name, cls in zip(NAMES, (PNet, RNet, ONet), strict=True):
        state = torch.load(weights_dir / f"{name}.pt", map_location="cpu", weights_only=True)
        net = cls()
        assert set(net.state_dict()) == set(state)
        net.load_state_dict(state, strict=True)
    with torch.no_grad():
        prob, reg = PNet()(torch.zeros(1, 3, 16, 20))
        assert prob.shape == (1, 3, 5) and reg.shape == (1, 4, 3, 5)
        prob, reg = RNet()(torch.zeros(2, 3, 24, 24))
        assert prob.shape == (2,) and reg.shape == (2, 4)
        prob, reg, pts = ONet()(torch.zeros(2, 3, 48, 48))
        assert prob.shape == (2,) and reg.shape == (2, 4) and pts.shape == (2, 5, 2)


def test_from_files_errors(weights_dir: Path, tmp_path: Path) -> None:
    p, r, o = (weights_dir / f"{n}.pt" for n in NAMES)
    with pytest.raises(AssetError, match="not found"):
        MTCNN.from_files(tmp_path / "missing.pt", r, o)
    with pytest.raises(AssetError):
        MTCNN.from_files(r, r, o)  # R-Net weights in the P-Net slot: strict loading refuses


def test_astronaut_one_face(astronaut_result) -> None:
    boxes, scores, points = astronaut_result
    assert boxes.shape == (1, 4) and scores.shape == (1,) and points.shape == (1, 5, 2)
    assert int((scores > 0.9).sum()) == 1
    x1, y1, x2, y2 = boxes[0].tolist()
    # The face of skimage's astronaut lies at about x 180-268, y 60-175.
    assert 165 < x1 < 195 and 255 < x2 < 285 and 40 < y1 < 75 and 160 < y2 < 190
    pts = points[0]
    assert ((pts[:, 0] > x1) & (pts[:, 0] < x2) & (pts[:, 1] > y1) & (pts[:, 1] < y2)).all()
    left_eye, right_eye, nose, mouth_left, mouth_right = pts
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_regress_points_matches_detect_and_has_gradient(
    detector: MTCNN, astronaut: torch.Tensor, astronaut_result
) -> None:
    boxes, _, points = astronaut_result
    x1, y1, x2, y2 = boxes[0].round().int().tolist()
    face = astronaut[None, :, y1:y2, x1:x2].float() / 255
    crops = torch.nn.functional.interpolate(face, (48, 48), mode="area").requires_grad_(True)
    pts = detector.regress_points(crops)
    assert pts.shape == (1, 5, 2)
    in_pixels = torch.tensor([x1, y1]) + pts[0].detach() * torch.tensor([x2 - x1, y2 - y1])
    assert (in_pixels - points[0]).norm(dim=-1).max() < 4.0
    pts.square().sum().backward()
    assert crops.grad is not None and torch.isfinite(crops.grad).all() and crops.grad.abs().sum() > 0


def test_regress_points_mirror_equivariant(detector: MTCNN, astronaut: torch.Tensor, astronaut_result) -> None:
    # A mirrored face must give mirrored points with left / right swapped. This pins the dense layers'
    # flatten order: the (H, W, C) order, i.e. transposed features, breaks the symmetry ~5x more.
    box = astronaut_result[0]
    with torch.no_grad():
        crops = crop_boxes(astronaut.float() / 255, box, 48)
        pts = detector.regress_points(crops)[0]
        flipped = detector.regress_points(crops.flip(-1))[0]
    mirrored = torch.stack([1 - flipped[:, 0], flipped[:, 1]], dim=-1)[[1, 0, 2, 4, 3]]
    assert (mirrored - pts).abs().max() < 0.03


def test_grayscale(detector: MTCNN, astronaut: torch.Tensor) -> None:
    gray = astronaut[:, :256, 96:352].float().mean(0, keepdim=True)  # the head, to keep the test fast
    boxes3, scores3, _ = detector.detect(gray.expand(3, -1, -1))
    boxes1, scores1, _ = detector.detect(gray)
    assert int((scores3 > 0.9).sum()) == 1
    torch.testing.assert_close(boxes1, boxes3)
    torch.testing.assert_close(scores1, scores3)


@pytest.mark.parametrize("kind", ["gray", "noise", "black"])
def test_no_face(detector: MTCNN, kind: str) -> None:
    gen = torch.Generator().manual_seed(0)
    image = {
        "gray": torch.full((3, 240, 320), 128, dtype=torch.uint8),
        "noise": torch.randint(0, 256, (3, 240, 320), generator=gen, dtype=torch.uint8),
        "black": torch.zeros(3, 64, 64),
    }[kind]
    _assert_empty(detector.detect(image))


@pytest.mark.parametrize("size", [(1, 1), (12, 12), (11, 40), (40, 13), (0, 5)])
def test_tiny_images(detector: MTCNN, weights_dir: Path, size: tuple[int, int]) -> None:
    image = torch.full((3, *size), 128, dtype=torch.uint8)
    _assert_empty(detector.detect(image))
    # min_face_size 8 enlarges the image 1.5x, so even 12x12 runs through the whole cascade.
    small = MTCNN.from_files(*(weights_dir / f"{n}.pt" for n in NAMES), min_face_size=8)
    _assert_empty(small.detect(image))


def test_bad_shapes() -> None:
    det = MTCNN()
    with pytest.raises(ValueError):
        det.detect(torch.zeros(2, 3, 10, 10))
    with pytest.raises(ValueError):
        det.regress_points(torch.zeros(1, 3, 24, 24))


def test_nms() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 8, 8.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    # IoU: [3] vs [0] or [1] 0.36, [1] vs [0] 0.68.
    assert nms(boxes, scores, 0.5).tolist() == [3, 0, 2]
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [3, 2]  # [3] lies inside [0] and [1]
    assert nms(boxes, scores, 0.5, block=1).tolist() == [3, 0, 2]
    assert nms(boxes[:0], scores[:0], 0.5).shape == (0,)


def test_crop_boxes_fill_and_scale() -> None:
    image = torch.full((3, 40, 40), 5.0)
    crops = crop_boxes(image, torch.tensor([[-20.0, -20.0, 20.0, 20.0], [0.0, 0.0, 40.0, 40.0]]), 8, fill=-1.0)
    assert crops.shape == (2, 3, 8, 8)
    # Outside the image: fill; inside: the image, with no dark rim from the padding.
    assert (crops[0, :, :4, :4] == -1.0).all() and (crops[0, :, 4:, 4:] == 5.0).all()
    assert (crops[1] == 5.0).all()
