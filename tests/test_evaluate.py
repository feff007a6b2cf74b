"""``facetool evaluate`` on a tiny generated paired folder with a known (identity) network."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facetool import hookimpl
from facetool.errors import FacetoolError, UsageError
from facetool.methods import MethodSpec
from facetool.train.spec import TrainSpec


def _identity_spec(name="fake-identity"):
    def evaluate(outputs, batch, options):
        return {"brightness": outputs.mean(dim=(1, 2, 3)).tolist()}

    return MethodSpec(
        name=name, task="stylize", load=lambda o, d, w: None, description="identity", input_size=16, sizes=(16,),
        train=TrainSpec(build=lambda setup: None, streams=lambda o: {"pair": ("photo", "copy")}),
        network=lambda options, weights: torch.nn.Identity(), evaluate=evaluate,
    )  # fmt: skip


class _Backbone:  # mean colour + spread: cheap, deterministic features for tests that do not need the asset
    name = "test-backbone"
    dim = 4

    def __call__(self, images):
        x = images.expand(-1, 3, -1, -1)
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(1, 2, 3))[:, None]], dim=1).double().numpy()


def _png(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def pairs(tmp_path):
    """6 items with identical photo / copy PNGs (16²): 3 train, 3 test."""
    root = tmp_path / "pairs"
    rng = np.random.default_rng(0)
    lines = []
    for i in range(6):
        item_id = f"{i:06d}"
        image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        photo = _png(root / "photo" / f"{item_id}.png", image)
        copy = _png(root / "copy" / f"{item_id}.png", image)
        record = {"id": item_id, "file": f"photo/{item_id}.png", "sha256": photo,
                  "files": {"copy": {"path": f"copy/{item_id}.png", "sha256": copy}}, "labels": {}}  # fmt: skip
        lines.append(json.dumps(record))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    ids = [f"{i:06d}" for i in range(6)]
    (root / "splits.json").write_text(json.dumps({"train": ids[:3], "test": ids[3:]}))
    return root


def test_identity_on_identical_pairs_is_perfect_and_reproducible(pairs, tmp_path):
    from facetool.evaluate import evaluate_method

    spec = _identity_spec()
    first = evaluate_method(spec, pairs, None, None, out_dir=tmp_path / "a", backbone=_Backbone(), batch_size=2)
    metrics = first["metrics"]
    assert first["count"] == 3 and first["split"] == "test" and metrics["paired"] == 3
    assert metrics["l1"] == 0.0 and metrics["ssim"] == pytest.approx(1.0, abs=1e-6) and metrics["psnr"] == 100.0
    assert abs(metrics["fid"]) < 1e-6  # outputs and targets are the same images
    assert first["roles"] == {"input": "photo", "target": "copy"}
    assert 0.3 < metrics["brightness"] < 0.7  # the method's own metric, averaged
    evaluate_method(spec, pairs, None, None, out_dir=tmp_path / "b", backbone=_Backbone(), batch_size=3)
    assert (tmp_path / "a" / "metrics.json").read_bytes() == (tmp_path / "b" / "metrics.json").read_bytes()
    from facetool.imageio import read_image

    grid = read_image(tmp_path / "a" / "grid.png")
    assert grid.shape == (3 * 16 + 2 * 2, 3 * 16 + 2 * 2, 3)
    assert evaluate_method(spec, pairs, None, None, split="all", limit=4, backbone=_Backbone())["count"] == 4


def test_a_changed_output_is_measured(pairs):
    from facetool.evaluate import evaluate_method

    darker = _identity_spec()
    darker = MethodSpec(**{**darker.__dict__, "network": lambda o, w: _Scale(0.5)})
    metrics = evaluate_method(darker, pairs, None, None, backbone=_Backbone())["metrics"]
    assert 0.1 < metrics["l1"] < 0.4 and metrics["ssim"] < 0.99 and metrics["psnr"] < 20 and metrics["fid"] > 0.01


class _Scale(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def test_clear_errors(pairs, tmp_path):
    from safetensors.torch import save_file

    from facetool.evaluate import evaluate_method

    spec = _identity_spec()
    with pytest.raises(UsageError, match="manifest.jsonl"):
        evaluate_method(spec, tmp_path, None, None, backbone=_Backbone())
    (pairs / "splits.json").rename(tmp_path / "splits.json")
    with pytest.raises(FacetoolError, match="no split"):
        evaluate_method(spec, pairs, None, None, backbone=_Backbone())
    assert evaluate_method(spec, pairs, None, None, split="all", backbone=_Backbone())["count"] == 6
    other = MethodSpec(
        **{**spec.__dict__, "train": TrainSpec(build=None, streams=lambda o: {"p": ("photo", "drawing")})}
    )
    with pytest.raises(FacetoolError, match="roles photo, drawing|roles drawing"):
        evaluate_method(other, pairs, None, None, split="all", backbone=_Backbone())
    weights = tmp_path / "w.safetensors"
    save_file({"G.x": torch.zeros(1)}, str(weights), metadata={"method": "pix2pix"})
    with pytest.raises(FacetoolError, match="of method pix2pix, not fake-identity"):
        evaluate_method(spec, pairs, weights, None, split="all", backbone=_Backbone())
    with pytest.raises(UsageError, match="--split"):
        evaluate_method(spec, pairs, None, None, split="val", backbone=_Backbone())


class _Plugin:
    @hookimpl
    def register_generators(self, register):
        register(_identity_spec())


def test_cli_evaluate_json_and_errors(pairs, tmp_path, monkeypatch):
    from facetool.cli import build_app
    from facetool.plugins import get_host

    from conftest import require_assets

    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    require_assets("age-net-v1-onnx")
    get_host().register_object(_Plugin(), "fake")
    args = ["evaluate", "fake-identity", "--data", str(pairs), "--json", "--out", str(tmp_path / "e")]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["backbone"].startswith("age-net-v1") and document["metrics"]["l1"] == 0.0
    assert abs(document["metrics"]["fid"]) < 1e-3 and (tmp_path / "e" / "grid.png").is_file()
    assert "Examples" in CliRunner().invoke(build_app(), ["evaluate", "--help"]).stdout
    bad = CliRunner().invoke(build_app(), ["evaluate", "fake-identity", "--data", str(tmp_path / "none")])
    assert bad.exit_code == 2 and "Traceback" not in bad.stderr and "manifest.jsonl" in bad.stderr


# --- landmark NME through a detector (--nme) ---

_BASE5 = np.array([[4.0, 6.0], [12.0, 6.0], [8.0, 9.0], [5.0, 12.0], [11.0, 12.0]])  # eye centres 8 px apart
_BASE68 = np.tile([8.0, 8.0], (68, 1))
_BASE68[36], _BASE68[45] = (2.0, 6.0), (14.0, 6.0)  # outer eye corners 12 px apart


def _marks_detector(with68):
    """No face on a black image; else a large face whose points move 10 px right on a bright image, listed after
    a small face whose points change on every call (so taking the wrong face shows)."""
    from facetool.faces import Face

    class Marks:
        calls = 0

        def detect(self, image):
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3  # what detectors take
            if image.max() == 0:
                return []
            Marks.calls += 1
            shift = np.array([10.0 if image.mean() > 200 else 0.0, 0.0])
            big = _BASE5 + shift, (_BASE68 + shift) if with68 else None
            small = _BASE5 + 3.0 * Marks.calls, (_BASE68 + 3.0 * Marks.calls) if with68 else None
            return [Face(box=[0, 0, 2, 2], score=0.9, points5=small[0], points68=small[1]),
                    Face(box=[0, 0, 16, 16], score=0.8, points5=big[0], points68=big[1])]  # fmt: skip

    return Marks()


class _MarksPlugin:
    @hookimpl
    def register_detectors(self, register):
        from facetool.detectors import DetectorSpec

        register(DetectorSpec(name="fake-marks", load=lambda o, d: _marks_detector(True), description="test",
                              features=("points68",)))  # fmt: skip
        register(DetectorSpec(name="fake-marks5", load=lambda o, d: _marks_detector(False), description="test"))


@pytest.fixture
def face_pairs(tmp_path):
    """3 items, white photos; copies white, black (no face), white. No splits: evaluate with split="all"."""
    root = tmp_path / "faces"
    lines = []
    for i, copy_value in enumerate((255, 0, 255)):
        item_id = f"{i:06d}"
        photo = _png(root / "photo" / f"{item_id}.png", np.full((16, 16, 3), 255, np.uint8))
        copy = _png(root / "copy" / f"{item_id}.png", np.full((16, 16, 3), copy_value, np.uint8))
        record = {"id": item_id, "file": f"photo/{item_id}.png", "sha256": photo,
                  "files": {"copy": {"path": f"copy/{item_id}.png", "sha256": copy}}, "labels": {}}  # fmt: skip
        lines.append(record)
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return root


def test_nme_through_a_detector(face_pairs, monkeypatch):
    from facetool.evaluate import evaluate_method
    from facetool.plugins import get_host

    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    get_host().register_object(_MarksPlugin(), "marks")
    spec = _identity_spec()

    def run(network_spec, detector, **kwargs):
        return evaluate_method(network_spec, face_pairs, None, None, split="all", backbone=_Backbone(),
                               nme=detector, **kwargs)["metrics"]  # fmt: skip

    metrics = run(spec, "fake-marks", batch_size=2)
    assert metrics["nme"] == 0.0 and metrics["nme_found"] == pytest.approx(2 / 3, abs=1e-5)  # black target: no face
    assert metrics["nme_points"] == 68 and metrics["nme_reference"] == "target"
    assert metrics["nme_detector"] == "fake-marks"
    darker = MethodSpec(**{**spec.__dict__, "network": lambda o, w: _Scale(0.5)})  # gray outputs: points 10 px off
    metrics = run(darker, "fake-marks")
    assert metrics["nme"] == pytest.approx(10 / 12, abs=1e-5) and metrics["nme_found"] == pytest.approx(2 / 3, 1e-5)
    metrics = run(darker, "fake-marks5")
    assert metrics["nme"] == pytest.approx(10 / 8, abs=1e-5) and metrics["nme_points"] == 5
    assert "nme" not in evaluate_method(spec, face_pairs, None, None, split="all", backbone=_Backbone())["metrics"]

    records = [json.loads(line) for line in (face_pairs / "manifest.jsonl").read_text().splitlines()]
    del records[1]["files"]  # item 1 loses its target: the white input photos are the reference
    (face_pairs / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    metrics = run(darker, "fake-marks")
    assert metrics["nme_reference"] == "input" and metrics["nme_found"] == 1.0
    assert metrics["nme"] == pytest.approx(10 / 12, abs=1e-5)
    with pytest.raises(UsageError, match="unknown detector 'nosuch'"):
        run(spec, "nosuch")


def test_detector_image_is_uint8_rgb():
    from facetool.evaluate import detector_image

    gray = torch.tensor([[[0.0, 0.5], [1.0, 2.0]]])  # (1, 2, 2), one value out of range
    image = detector_image(gray)
    assert image.dtype == np.uint8 and image.shape == (2, 2, 3)
    assert image[..., 0].tolist() == [[0, 128], [255, 255]] and (image[..., 0] == image[..., 2]).all()
    rgb = torch.rand(3, 4, 5)
    assert np.array_equal(detector_image(rgb), (rgb * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())


def test_cli_unknown_nme_detector_is_a_usage_error(pairs, monkeypatch):
    from facetool.cli import build_app
    from facetool.plugins import get_host

    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    get_host().register_object(_Plugin(), "fake")
    result = CliRunner().invoke(build_app(), ["evaluate", "fake-identity", "--data", str(pairs), "--nme", "nosuch"])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "unknown detector 'nosuch'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "--nme" in CliRunner().invoke(build_app(), ["evaluate", "--help"]).stdout


def test_oracle_scores_the_targets_without_weights(pairs):
    from facetool.evaluate import evaluate_method

    def refuse(options, weights):
        raise AssertionError("the oracle must not build the network")

    spec = MethodSpec(**{**_identity_spec().__dict__, "network": refuse})
    result = evaluate_method(spec, pairs, None, None, backbone=_Backbone(), oracle=True)
    assert result["oracle"] is True and result["weights"]["path"] is None
    assert result["metrics"]["l1"] == 0.0 and abs(result["metrics"]["fid"]) < 1e-6
    # the method's own metric measured on the targets themselves
    darker = MethodSpec(**{**_identity_spec().__dict__, "network": lambda o, w: _Scale(0.5)})
    measured = evaluate_method(darker, pairs, None, None, backbone=_Backbone())["metrics"]["brightness"]
    assert result["metrics"]["brightness"] == pytest.approx(2 * measured, abs=1e-4)
    (pairs / "copy" / "000004.png").unlink()
    lines = (pairs / "manifest.jsonl").read_text().splitlines()
    record = json.loads(lines[4])
    record["files"] = {}
    lines[4] = json.dumps(record)
    (pairs / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError, match="--oracle needs a copy for every item"):
        evaluate_method(spec, pairs, None, None, backbone=_Backbone(), oracle=True)


def test_default_size_is_the_weights_training_size(tmp_path):
    import json as _json

    from safetensors.torch import save_file

    from facetool.errors import UsageError
    from facetool.evaluate import default_size
    from facetool.methods import MethodSpec

    spec = MethodSpec(name="m", task="stylize", load=lambda o, d, w: None, description="t", input_size=16,
                      sizes=(16, 32))  # fmt: skip
    trained = tmp_path / "w.safetensors"
    save_file({"x": torch.zeros(1)}, trained, metadata={"train_settings": _json.dumps({"size": 32})})
    plain = tmp_path / "p.safetensors"
    save_file({"x": torch.zeros(1)}, plain)
    assert default_size(spec, trained, None) == 32  # a run trained at 32 runs at 32
    assert default_size(spec, plain, None) == 16 and default_size(spec, None, None) == 16
    assert default_size(spec, trained, 16) == 16  # --size wins
    with pytest.raises(UsageError, match="runs at 16, 32"):
        default_size(spec, trained, 64)
