"""Landmark-guided CartoonGAN: one training step per variant on tiny data, the local critics' patches, the
similarity-aligned NME, the runner's conditions, the photo-crop data command and the --hair / --variant flags."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from facetool_cartoon.evaluation import aligned_nme
from facetool_cartoon.net import ConditionalResnetConfig, ConditionalResnetGenerator
from facetool_cartoon.runner import CartoonRunner, condition_inputs
from facetool_cartoon.train import VARIANTS, CartoonTrainOptions, hair_indices, part_patches

SIZE = 32
POINTS = [[12.0, 15.0], [20.0, 15.0], [16.0, 19.0], [13.0, 23.0], [19.0, 23.0]]


def _folder(root, role, hairs, rng):
    from facetool.data.common import save_png

    lines = []
    for i, hair in enumerate(hairs):
        item = f"{i:06d}"
        path = f"{role}/{item}.png"
        digest = save_png(root / path, (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8))
        labels = {"points5": (np.array(POINTS) + rng.normal(0, 1, (5, 2))).round(2).tolist(), "hair": hair}
        lines.append(json.dumps({"id": item, "file": path, "files": {role: {"path": path, "sha256": digest}},
                                 "labels": labels}))  # fmt: skip
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def domains(tmp_path):
    rng = np.random.default_rng(0)
    photos = _folder(tmp_path / "crops", "photo", ["brown", "black", None, "grey"], rng)
    cartoons = _folder(tmp_path / "cartoons", "cartoon", ["blonde", "grey", "black", "brown"], rng)
    return photos, cartoons


@pytest.mark.parametrize(
    ("variant", "pair", "warp", "upsample"),
    [(v, "photo", "affine", "deconv") for v in VARIANTS]
    + [("affine", "layout", "similarity", "deconv"), ("local", "photo", "affine", "resize")],
)
def test_one_training_step_of_every_variant(domains, tmp_path, variant, pair, warp, upsample, one_thread):
    from facetool.plugins import get_host
    from facetool.train.loop import run_training

    spec = dataclasses.replace(get_host().generators.get("cartoon"), sizes=(SIZE,), input_size=SIZE)
    edge_cut = 1.0 if variant in ("local", "affine") else 0.0  # the tight-crop augmentation, both fills
    options = spec.train.options(variant=variant, g_base=4, g_blocks=1, d_base=4, edge_cut=edge_cut,
                                 edge_fill="edge-colour" if variant == "affine" else "border", pair=pair,
                                 warp=warp, upsample=upsample,
                                 lambda_pair=10.0 if pair == "layout" else 0.0)  # fmt: skip
    run = run_training(spec, tmp_path / variant, data=list(domains), steps=1, batch_size=2, size=SIZE,
                       options=options)  # fmt: skip
    losses = json.loads((tmp_path / variant / "losses.jsonl").read_text().splitlines()[0])
    assert {"G_cartoon", "G_photo", "cycle", "D_cartoon", "D_photo"} <= set(losses)
    assert ({"landmark", "local", "D_eyes", "D_nose", "D_mouth"} <= set(losses)) == (variant == "local")
    assert ("pair_l1" in losses) == (pair == "layout")
    assert all(np.isfinite(v) for v in losses.values()) and run.weights.is_file()
    runner = spec.load(spec.options(hair="grey"), "cpu", run.weights)
    out = runner(torch.rand(2, 3, SIZE, SIZE), torch.tensor([POINTS, POINTS]))
    assert out.shape == (2, 3, SIZE, SIZE) and out.min() >= 0 and out.max() <= 1 and runner.chosen == ["grey"] * 2
    assert runner.generator.config.upsample == upsample


@pytest.mark.parametrize("variant", ["local", "affine"])
def test_one_bf16_training_step(domains, tmp_path, variant, one_thread):
    """``--precision bf16`` (the GPU recipe's): the local critics' patches are cut from a bf16 generator's output."""
    from facetool.plugins import get_host
    from facetool.train.loop import run_training

    spec = dataclasses.replace(get_host().generators.get("cartoon"), sizes=(SIZE,), input_size=SIZE)
    options = spec.train.options(variant=variant, g_base=4, g_blocks=1, d_base=4, upsample="resize")
    run = run_training(spec, tmp_path / variant, data=list(domains), steps=1, batch_size=2, size=SIZE,
                       options=options, precision="bf16", average=0.999)  # fmt: skip
    losses = json.loads((tmp_path / variant / "losses.jsonl").read_text().splitlines()[0])
    assert ("D_eyes" in losses) == (variant == "local")
    assert all(np.isfinite(v) for v in losses.values()) and run.weights.is_file()


@pytest.mark.parametrize(("key", "value"), [("pair", "pixels"), ("warp", "perspective"), ("variant", "both")])
def test_train_options_refuse_an_unknown_choice_by_name(key, value):
    with pytest.raises(ValueError, match=f"{key} must be one of"):
        CartoonTrainOptions(**{key: value})


def test_the_pair_l1_is_approach_b_only():
    with pytest.raises(ValueError, match="lambda-pair is approach B's"):
        CartoonTrainOptions(variant="local", lambda_pair=1.0)
    with pytest.raises(ValueError, match="pair-scale"):
        CartoonTrainOptions(variant="affine", lambda_pair=1.0, pair_scale=0)
    assert CartoonTrainOptions(variant="affine", lambda_pair=1.0).lambda_pair == 1.0


def test_hair_labels_map_to_classes_and_unmeasured_hair_counts_as_brown():
    labels = hair_indices([{"hair": "black"}, {"hair": "grey"}, {"hair": None}, {}], "cpu")
    assert labels.tolist() == [0, 3, 1, 1]


def test_local_patches_are_centred_on_the_parts_and_pass_gradient():
    size = 128
    image = torch.zeros(1, 3, size, size, requires_grad=True)
    points = torch.tensor([[[48.0, 58.0], [78.0, 58.0], [63.0, 73.0], [53.0, 85.0], [73.0, 85.0]]])
    marked = image + 0  # a bright dot on the nose tip
    marked = marked.index_put((torch.tensor([0]), torch.tensor([0]), torch.tensor([73]), torch.tensor([63])),
                              torch.tensor([1.0]))  # fmt: skip
    patches = part_patches(marked, points, 48, 1.0)
    assert set(patches) == {"eyes", "nose", "mouth"} and all(p.shape == (1, 3, 48, 48) for p in patches.values())
    nose = patches["nose"][0, 0]
    y, x = divmod(int(nose.argmax()), 48)
    assert abs(y - 23.5) <= 1.5 and abs(x - 23.5) <= 1.5  # the dot lands in the patch's middle
    assert patches["eyes"][0, 0].max() < 0.5 * nose.max()  # the eyes' mask hides the nose
    patches["nose"].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_aligned_nme_ignores_position_size_and_rotation_but_not_layout():
    reference = torch.tensor([POINTS])
    angle = torch.tensor(0.3)
    rotation = torch.tensor([[angle.cos(), -angle.sin()], [angle.sin(), angle.cos()]])
    moved = reference @ rotation.T * 1.7 + torch.tensor([5.0, -3.0])
    assert aligned_nme(moved, reference).item() < 1e-5
    squashed = reference.clone()
    squashed[0, 3:, 1] -= 3.0  # the mouth 3 px higher: a layout change no similarity undoes
    error = aligned_nme(squashed, reference).item()
    assert 0.05 < error < 3.0 / 8.0


def test_condition_inputs_follow_the_generator_config():
    crops = torch.rand(2, 3, SIZE, SIZE)
    plain = ConditionalResnetGenerator(ConditionalResnetConfig(labels=0, base=4, blocks=1))
    labels, heat = condition_inputs(plain, crops, None, ["blonde", "grey"])
    assert labels.tolist() == [0, 0] and heat is None  # the baseline ignores the colour
    guided = ConditionalResnetGenerator(ConditionalResnetConfig(extra=5, base=4, blocks=1, heatmap_sigma=3.0))
    labels, heat = condition_inputs(guided, crops, torch.tensor([POINTS, POINTS]), ["blonde", "grey"])
    assert labels.tolist() == [2, 3] and heat.shape == (2, 5, SIZE, SIZE)
    peak = divmod(int(heat[0, 2].argmax()), SIZE)
    assert peak == (19, 16)  # the nose heatmap peaks on the nose point (row, col)
    _, template = condition_inputs(guided, crops, None, ["black", "black"])
    assert template.shape == (2, 5, SIZE, SIZE)  # an aligned input gets the template's layout


def test_runner_auto_hair_falls_back_to_brown_on_a_hairless_crop(one_thread):
    generator = ConditionalResnetGenerator(ConditionalResnetConfig(base=4, blocks=1))
    runner = CartoonRunner(generator, "cpu", "auto")
    grey_square = torch.full((1, 3, 128, 128), 0.5)
    out = runner(grey_square)
    assert out.shape == (1, 3, 128, 128) and runner.chosen == ["brown"]


def test_auto_hair_on_a_black_and_white_photo_goes_by_lightness_and_never_says_grey(monkeypatch):
    from facetool_cartoon.hair import grey_photo_hair, is_monochrome, photo_hair

    import facetool.data.labels as labels

    rng = np.random.default_rng(0)
    grey = np.repeat(rng.integers(0, 256, (64, 64, 1)), 3, axis=2).astype(np.uint8)
    noisy = np.clip(grey + rng.integers(-2, 3, grey.shape), 0, 255).astype(np.uint8)  # JPEG-like chroma noise
    sepia = np.clip(grey * np.array([1.0, 0.85, 0.65]), 0, 255).astype(np.uint8)
    assert is_monochrome(grey) and is_monochrome(noisy)
    assert not is_monochrome(sepia) and not is_monochrome(rng.integers(0, 256, (64, 64, 3)).astype(np.uint8))
    assert [grey_photo_hair(v) for v in (5.0, 30.0, 60.0)] == ["black", "brown", "blonde"]
    # The labeller's colour rules call mid-lightness hair without chroma "grey"; on a grey photo that is no evidence.
    monkeypatch.setattr(labels, "hair_colour", lambda image, face, mask: {"class": "grey", "lab": [30.0, 0.0, 0.0]})
    monkeypatch.setattr(labels, "foreground_mask", lambda image, face: None)
    crop = torch.rand(3, 128, 128)
    assert photo_hair(crop.mean(0, keepdim=True).expand(3, -1, -1)) == "brown"
    assert photo_hair(crop) == "grey"  # a colour photo keeps the labeller's answer


def test_auto_hair_agreement_counts_each_labelled_crop_in_colour_and_grey(domains, monkeypatch):
    from facetool_cartoon.hair import auto_hair_agreement

    import facetool.data.labels as labels

    monkeypatch.setattr(labels, "hair_colour", lambda image, face, mask: {"class": "grey", "lab": [30.0, 0.0, 0.0]})
    monkeypatch.setattr(labels, "foreground_mask", lambda image, face: None)
    record = auto_hair_agreement(domains[0])  # labels brown, black, none, grey: the unlabelled crop is left out
    assert record["faces"] == 3 and record["colour"] == record["grey"] == 0.333
    assert record["grey_confusion"] == {"brown": {"brown": 1}, "black": {"brown": 1}, "grey": {"brown": 1}}


def test_photo_crops_of_labelled_photos(tmp_path):
    from facetool.data.common import read_manifest, save_png
    from facetool.data.facecrops import make_crops

    photos = tmp_path / "photos"
    rng = np.random.default_rng(0)
    save_png(photos / "a.png", (rng.random((200, 160, 3)) * 255).astype(np.uint8))
    save_png(photos / "b.png", (rng.random((200, 160, 3)) * 255).astype(np.uint8))
    p5 = [[60, 90], [100, 90], [80, 115], [64, 135], [96, 135]]
    faces = [{"box": [40, 60, 120, 160], "score": 0.9, "points5": p5},
             {"box": [0, 0, 40, 50], "score": 0.8, "points5": (np.array(p5) / 4).tolist()}]  # fmt: skip
    (photos / "labels").mkdir()
    (photos / "labels" / "a.json").write_text(json.dumps({"width": 160, "height": 200, "faces": faces,
                                                          "hair": {"class": "grey", "confidence": 0.8}}))  # fmt: skip
    result = make_crops(photos, tmp_path / "crops", size=64)
    assert result == {"made": 2, "skipped": 0, "faces": 2, "unlabelled": 1}
    first, second = read_manifest(tmp_path / "crops")
    assert first["labels"]["hair"] == "grey" and second["labels"]["hair"] is None  # hair is the largest face's
    from facetool.align import get_template

    expected = np.array(get_template("avatar").points) * 64
    assert np.abs(np.array(first["labels"]["points5"]) - expected).max() < 4  # the face lands on the template
    assert make_crops(photos, tmp_path / "crops", size=64)["skipped"] == 2  # resumable


def test_hair_and_variant_flags_are_the_method_settings_and_others_refuse_them(tmp_path):
    from typer.testing import CliRunner

    from facetool.cli import build_app

    image = tmp_path / "in.png"
    from facetool.data.common import save_png

    save_png(image, np.zeros((64, 64, 3), np.uint8))
    app = build_app()
    result = CliRunner().invoke(app, ["stylize", str(image), "--method", "apdrawing", "--hair", "grey"])
    assert result.exit_code == 2 and "no hair setting" in result.stderr
    result = CliRunner().invoke(app, ["stylize", str(image), "--method", "cartoon", "--hair", "purple"])
    assert result.exit_code == 2 and "hair must be one of" in result.stderr
    result = CliRunner().invoke(app, ["stylize", str(image), "--method", "cartoon", "-O", "padding=mirror"])
    assert result.exit_code == 2 and "padding must be one of" in result.stderr
    result = CliRunner().invoke(app, ["stylize", str(image), "--method", "cartoon", "-O", "backdrop=white"])
    assert result.exit_code == 2 and "backdrop must be one of" in result.stderr
    from facetool.plugins import get_host

    spec = get_host().generators.get("cartoon")
    runner = spec.load(spec.options(padding="edge-colour"), "cpu", None)
    assert runner.crop_padding == "edge-colour" and spec.load(None, "cpu", None).crop_padding == "auto"
    assert spec.network(spec.options(padding="edge-colour"), None).crop_padding == "edge-colour"
    assert spec.load(None, "cpu", None).plain_backdrop  # the default: speckle painted over
    assert not spec.load(spec.options(backdrop="drawn"), "cpu", None).plain_backdrop
    assert spec.load(None, "cpu", None).clean == "median" and spec.network(None, None).clean == "median"
    assert spec.network(spec.options(clean="none"), None).clean == "none"
    result = CliRunner().invoke(app, ["stylize", str(image), "--method", "cartoon", "-O", "clean=blur"])
    assert result.exit_code == 2 and "clean must be one of" in result.stderr


def test_evaluate_measures_hair_landmarks_and_fid_of_a_tiny_net(domains, tmp_path, one_thread):
    from typer.testing import CliRunner

    from facetool.cli import build_app
    from facetool.train.checkpoint import TrainState, export_weights

    from conftest import require_assets

    require_assets("mtcnn-onet", "age-net-v1-onnx")
    torch.manual_seed(0)
    config = ConditionalResnetConfig(extra=5, base=4, blocks=1)
    weights = export_weights(tmp_path / "c.safetensors", {"G": ConditionalResnetGenerator(config)}, torch.float32,
                             TrainState(method="cartoon", configs={"G": config}))  # fmt: skip
    photos, cartoons = domains
    args = ["evaluate", "cartoon", "--data", str(photos), "--weights", str(weights), "--split", "all", "--json"]
    done = CliRunner().invoke(build_app(), [*args, "-O", f"cartoons={cartoons}", "-o", str(tmp_path / "eval")])
    assert done.exit_code == 0, done.output
    metrics = json.loads(done.stdout)["metrics"]
    for colour in ("black", "brown", "blonde", "grey"):
        assert 0 <= metrics[f"hair_accuracy_{colour}"] <= 1
    assert metrics["hair_accuracy"] == pytest.approx(np.mean([metrics[f"hair_accuracy_{c}"] for c in
                                                              ("black", "brown", "blonde", "grey")]))  # fmt: skip
    assert metrics["hair_meter_accuracy"] >= 0.9  # the shipped meter's record on held-out cartoons
    assert metrics["nme"] > 0 and metrics["nme_photo"] > 0 and metrics["nme_template"] > 0
    assert np.isfinite(metrics["fid"]) and np.isfinite(metrics["fid_plain"])
    for texture in ("checkerboard", "grain", "checkerboard_real", "grain_real"):
        assert np.isfinite(metrics[texture])
    assert metrics["grain"] >= 0 and metrics["grain_real"] >= 0
    drawn = json.loads(CliRunner().invoke(build_app(), [*args, "-O", "clean=none"]).stdout)["metrics"]
    assert drawn["grain"] > metrics["grain"]  # the default measures avatars cleaned as stylize cleans them
    assert (tmp_path / "eval" / "grid.png").is_file()
    assert "tight_change" not in metrics
    without = CliRunner().invoke(build_app(), args)
    assert without.exit_code == 0 and json.loads(without.stdout)["metrics"]["fid"] is None
    # photos cut tight: the avatars change (a tiny random net draws what it is given), measured against the uncut
    tight = json.loads(CliRunner().invoke(build_app(), [*args, "-O", "tight=0.3"]).stdout)["metrics"]
    assert tight["tight_change"] > 0.001 and tight["nme_photo"] != metrics["nme_photo"]
    refused = CliRunner().invoke(build_app(), [*args, "-O", "tight=0.5"])
    assert refused.exit_code == 2 and "tight" in refused.output
    # photos made black-and-white: the net and the regressor get other inputs, the skin's truth stays the colour one
    grey = json.loads(CliRunner().invoke(build_app(), [*args, "-O", "grey=true"]).stdout)["metrics"]
    assert grey["nme_photo"] != metrics["nme_photo"] and grey["grain"] != metrics["grain"]
    assert grey["nme_template"] == pytest.approx(metrics["nme_template"])  # the labels are the same


def test_cartoons_without_landmarks_get_the_regressors_points(domains, tmp_path, one_thread):
    """A real cartoon set (Cartoon Set: hair classes, no landmarks) trains through the same command."""
    from facetool.plugins import get_host
    from facetool.train.loop import run_training

    photos, cartoons = domains
    manifest = cartoons / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    for record in records:
        del record["labels"]["points5"]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    spec = dataclasses.replace(get_host().generators.get("cartoon"), sizes=(SIZE,), input_size=SIZE)
    options = spec.train.options(variant="affine", g_base=4, g_blocks=1, d_base=4)
    run = run_training(spec, tmp_path / "run", data=[photos, cartoons], steps=1, batch_size=2, size=SIZE,
                       options=options)  # fmt: skip
    assert run.weights.is_file()


def test_tight_cuts_measure_each_padding_against_the_uncut_photo(tmp_path):
    from facetool_cartoon.tight import measure_tight

    from facetool.data.common import save_png

    photos = tmp_path / "photos"
    rng = np.random.default_rng(0)
    save_png(photos / "a.png", (rng.random((240, 200, 3)) * 255).astype(np.uint8))
    angle = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    p68 = np.stack([100 + 40 * np.cos(angle), 120 + 50 * np.sin(angle)], 1)  # only the box of the 68 is read
    p5 = [[84, 110], [116, 110], [100, 128], [88, 146], [112, 146]]
    face = {"box": [60, 70, 140, 170], "score": 0.9, "points5": p5, "points68": p68.tolist()}
    (photos / "labels").mkdir()
    (photos / "labels" / "a.json").write_text(json.dumps({"width": 200, "height": 240, "faces": [face],
                                                          "hair": {"class": "black", "confidence": 0.9}}))  # fmt: skip
    save_png(photos / "unlabelled.png", np.zeros((32, 32, 3), np.uint8))  # no labels: left out
    report = measure_tight(photos, None, scales=(1.1, 3.0), paddings=("border", "edge-colour", "auto"))
    assert set(report) == {"uncut"} | {f"{s} {p}" for s in (1.1, 3.0) for p in ("border", "edge-colour", "auto")}
    assert all(row["faces"] == 1 and "fid" not in row for row in report.values())
    assert report["uncut"]["change"] == 0 and report["1.1 border"]["change"] > 0
    assert report["1.1 border"] != report["1.1 edge-colour"]  # a cut that tight leaves most of the crop to fill
    assert report["1.1 auto"] == report["1.1 edge-colour"] and report["3.0 auto"] == report["3.0 border"]
