"""What wgan-landmark ships: a layout-taking generator (small fp16 safetensors named in the model card) whose
faces, asked for a photo's layout, are distinct, repeatable and put their eyes, nose and mouth where asked — read
by the check predictor, which the generator was never trained against. (Its faces are still rough: a CPU preview.)"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from facetool_wgan_landmark import DEFAULT_LAYOUT
from facetool_wgan_landmark.predictor import check_predictor_path, load_predictor
from facetool_wgan_landmark.train import layout_error
from safetensors import safe_open
from typer.testing import CliRunner

from facetool.cli import build_app
from facetool.generate import LAYOUT_POINTS, write_layout
from facetool.imageio import read_image

from conftest import require_assets

SAMPLE = Path(__file__).parent.parent / "samples" / "astronaut.png"
DETECTOR_ASSETS = ("dlib-shape-predictor-68", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")
SIZE = 128


def _weights() -> Path:
    from facetool.methods import resolve_weights
    from facetool.plugins import get_host

    return resolve_weights(get_host().generators.get("wgan-landmark"), None)


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(build_app(), list(args))
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _images(folder: Path) -> torch.Tensor:
    files = sorted(folder.glob("*.png"))
    return torch.stack([torch.from_numpy(read_image(f)).permute(2, 0, 1) for f in files]).float() / 255


def _points(layout: dict) -> torch.Tensor:
    """Unit-square layout -> (1, 6, 2) pixels at 128² (the predictor's units)."""
    chosen = {**DEFAULT_LAYOUT, **layout}
    return torch.tensor([[chosen[n] for n in LAYOUT_POINTS]]) * SIZE - 0.5


def test_the_generator_is_small_fp16_takes_a_layout_and_is_in_the_card():
    path = _weights()
    assert path.stat().st_size <= 20 * 2**20
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
        dtypes = {str(handle.get_slice(k).get_dtype()) for k in handle.keys()}  # noqa: SIM118 - not iterable
    assert meta["method"] == "wgan-landmark" and json.loads(meta["train_options"])["variant"] == "layout"
    assert dtypes <= {"F16", "I64"}, dtypes
    card = (path.parent / "MODEL_CARD.md").read_text()
    assert f"`{path.name}`" in card and f"`{check_predictor_path().name}`" in card


def test_like_a_photo_gives_distinct_repeatable_faces_laid_out_like_it(tmp_path):
    require_assets(*DETECTOR_ASSETS)
    before = SAMPLE.read_bytes()
    first, again = tmp_path / "a", tmp_path / "b"
    for out in (first, again):
        _invoke("generate", "--method", "wgan-landmark", "--like", str(SAMPLE), "--count", "8", "--seed", "1",
                "-o", f"{out}/")  # fmt: skip
    faces = _images(first)
    assert faces.shape == (8, 3, SIZE, SIZE)
    assert torch.equal(faces, _images(again))  # same seed, same images
    differences = [(faces[i] - faces[j]).abs().mean() for i in range(8) for j in range(i)]
    assert min(differences) > 0.03  # eight different faces, not one
    assert SAMPLE.read_bytes() == before

    # The layout asked for: the photo's face in the avatar template, as --like measured it.
    from facetool.generate import layout_from_face
    from facetool.pipeline import detect_faces, load_detector

    spec, detector = load_detector(None, [], "cpu")
    face = detect_faces(detector, read_image(SAMPLE), spec.name)[0]
    asked = _points(layout_from_face(face, "avatar", SIZE)).expand(8, -1, -1)
    checker = load_predictor(check_predictor_path())
    with torch.inference_mode():
        error = layout_error(checker(faces), asked, SIZE)
    assert error.mean() < 0.03, error  # < 3.8 px per point on average


def _moved_faces(tmp_path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The check predictor's points on 8 faces asked for a moved layout and on 8 asked for the mean one."""
    moved = {name: (x, y + 0.06) for name, (x, y) in DEFAULT_LAYOUT.items()}  # every part 7.7 px lower
    moved["left_eye"], moved["right_eye"] = (0.35, 0.53), (0.65, 0.53)  # and the eyes 8.4 px wider apart
    write_layout(tmp_path / "moved.json", moved, SIZE)
    write_layout(tmp_path / "mean.json", dict(DEFAULT_LAYOUT), SIZE)
    checker = load_predictor(check_predictor_path())
    found = {}
    for name in ("moved", "mean"):
        _invoke("generate", "--method", "wgan-landmark", "--landmarks", str(tmp_path / f"{name}.json"), "-n", "8",
                "--seed", "3", "-o", f"{tmp_path / name}/")  # fmt: skip
        with torch.inference_mode():
            found[name] = checker(_images(tmp_path / name))
    return moved, found


def test_faces_follow_a_layout_moved_away_from_the_mean(tmp_path):
    moved, found = _moved_faces(tmp_path)
    to_moved = layout_error(found["moved"], _points(moved).expand(8, -1, -1), SIZE).mean()
    to_mean = layout_error(found["moved"], _points(DEFAULT_LAYOUT).expand(8, -1, -1), SIZE).mean()
    assert to_moved < 0.6 * to_mean, (to_moved, to_mean)
    shift = (found["moved"] - found["mean"]).mean(dim=0)  # (6, 2) px
    assert shift[:, 1].mean() > 4  # the parts went down (asked 7.7 px)


def test_the_eyes_follow_a_wider_layout_as_far_as_a_predictor_can_see(tmp_path):
    """The predictors read eyes partly off the head's outline: on real test cartoons bent so that only the eyes sit
    8.4 px wider apart, the check predictor sees 3.2 px of it (card). So the faces asked for wider eyes are held to
    the generator's own faces drawn for the mean layout and then bent exactly onto the moved one: the same reader
    must see the eyes at least 0.8 of that much wider (the shipped file: 1.2×; a generator that drew the mean
    layout's eyes and let the warp scale them: 0.4×)."""
    from facetool.data.augment import tps_warp

    moved, found = _moved_faces(tmp_path)
    mean_faces = _images(tmp_path / "mean")
    bent = tps_warp(mean_faces, _points(DEFAULT_LAYOUT).expand(8, -1, -1), _points(moved).expand(8, -1, -1))
    with torch.inference_mode():
        exact = load_predictor(check_predictor_path())(bent)

    def wider(points):  # how much further apart the eyes are than on the mean-layout faces, px
        return ((points[:, 1, 0] - points[:, 0, 0]) - (found["mean"][:, 1, 0] - found["mean"][:, 0, 0])).mean()

    assert wider(exact) > 1.5, wider(exact)  # the ruler sees an exact move at all
    assert wider(found["moved"]) > 0.8 * wider(exact), (wider(found["moved"]), wider(exact))
