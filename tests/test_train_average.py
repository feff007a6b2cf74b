"""The weight average (``facetool train --average``): its update rule, checkpoints, resume, export and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_train_loop import ToyPlugin, make_pairs, toy_spec
from typer.testing import CliRunner

from facetool.cli import build_app
from facetool.errors import UsageError
from facetool.plugins import get_host
from facetool.train.average import WeightAverage, average_decay
from facetool.train.checkpoint import load_weights, read_net_weights, read_state
from facetool.train.loop import export_run_weights, run_training


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    return make_pairs(tmp_path / "pairs")


def _toy_g() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Conv2d(3, 1, 3, padding=1), torch.nn.Sigmoid())


def test_the_decay_starts_short_and_grows_to_its_cap() -> None:
    assert average_decay(0.999, 0) == pytest.approx(0.1)
    assert average_decay(0.999, 8) == pytest.approx(0.5)
    assert average_decay(0.999, 90) == pytest.approx(0.91)
    assert average_decay(0.9, 10_000) == 0.9


def test_an_update_moves_parameters_by_the_decay_and_copies_buffers() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    average = WeightAverage({"G": net}, decay=0.5)
    start = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].running_mean.fill_(3.0)
    average.update()  # decay 0.1 at the first update: 0.9 of the way to the new weights
    assert torch.allclose(average.nets["G"][0].weight, start + 0.9)
    assert torch.equal(average.nets["G"][1].running_mean, torch.full((2,), 3.0))
    with torch.no_grad():
        net[0].weight.add_(1.0)
    average.update()  # decay min(0.5, 2/11)
    assert torch.allclose(average.nets["G"][0].weight, start + 0.9 + (2.0 - 0.9) * (1 - 2 / 11))
    assert not average.nets["G"][0].weight.requires_grad and not average.nets["G"].training
    with pytest.raises(ValueError, match="decay"):
        WeightAverage({"G": net}, decay=1.0)


def test_a_run_exports_the_average_of_its_steps(pairs: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = run_training(toy_spec(), run, data=[pairs], steps=6, save_every=1, average=0.5, keep=10)
    torch.manual_seed(0)  # the toy trainer builds G right after seeding with the run's seed
    expected = {k: v.clone() for k, v in _toy_g().state_dict().items()}
    for step in range(1, 7):  # the average folded by hand over each step's raw weights (one checkpoint a step)
        raw = read_net_weights(run / "checkpoints" / f"step-{step:06d}", ["G"])["G"]
        weight = 1 - average_decay(0.5, step - 1)
        expected = {k: v + weight * (raw[k] - v) for k, v in expected.items()}
    raw_last = read_net_weights(run, ["G"])["G"]
    assert not torch.allclose(expected["1.weight"], raw_last["1.weight"], atol=1e-4)

    exported, as_trained = _toy_g(), _toy_g()
    meta = load_weights(result.weights, {"G": exported})
    assert json.loads(meta["averaged"]) == {"decay": 0.5, "updates": 6}
    assert torch.allclose(exported[1].weight, expected["1.weight"], atol=1e-3)  # fp16 file
    load_weights(export_run_weights(run, "toy", tmp_path / "raw.safetensors", raw=True), {"G": as_trained})
    assert torch.allclose(as_trained[1].weight, raw_last["1.weight"], atol=1e-3)
    checkpoint, checkpoint_raw = _toy_g(), _toy_g()
    load_weights(run, {"G": checkpoint})  # a checkpoint folder gives the average too, unless raw
    load_weights(run, {"G": checkpoint_raw}, raw=True)
    assert torch.allclose(checkpoint[1].weight, expected["1.weight"], atol=1e-6)
    assert torch.equal(checkpoint_raw[1].weight, raw_last["1.weight"])


def test_the_average_resumes_exactly_and_can_begin_at_a_resume(pairs: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    run_training(toy_spec(), straight, data=[pairs], steps=6, save_every=2, average=0.8)
    stopped = tmp_path / "stopped"
    run_training(toy_spec(), stopped, data=[pairs], steps=4, save_every=2, average=0.8)
    run_training(toy_spec(), stopped, resume=True, steps=6)
    for key, value in read_net_weights(straight)["_average"].items():
        assert torch.equal(value, read_net_weights(stopped)["_average"][key]), key

    late = tmp_path / "late"
    run_training(toy_spec(), late, data=[pairs], steps=4, save_every=2)
    assert "_average" not in read_net_weights(late)
    messages: list[str] = []
    run_training(toy_spec(), late, resume=True, steps=6, average=0.8, log=messages.append)
    assert any("begins at step 4" in m for m in messages)
    assert read_state(late).extra["run"]["average"] == 0.8
    assert int(read_net_weights(late)["_average"]["updates"]) == 2
    # the raw trajectory is the straight run's: averaging reads the nets, never trains them
    for key, value in read_net_weights(straight)["G"].items():
        assert torch.equal(value, read_net_weights(late)["G"][key]), key


def test_averaging_never_changes_training_and_the_samples_show_the_average(pairs: Path, tmp_path: Path) -> None:
    plain, averaged = tmp_path / "plain", tmp_path / "averaged"
    run_training(toy_spec(), plain, data=[pairs], steps=4, sample_every=1)
    run_training(toy_spec(), averaged, data=[pairs], steps=4, sample_every=1, average=0.5)
    for key, value in read_net_weights(plain)["G"].items():  # the weights were swapped for each grid and back
        assert torch.equal(value, read_net_weights(averaged)["G"][key]), key
    assert (plain / "losses.jsonl").read_text() == (averaged / "losses.jsonl").read_text()
    grid = "samples/step-000004.png"
    assert (plain / grid).read_bytes() != (averaged / grid).read_bytes()


def test_a_decay_outside_0_1_is_refused(pairs: Path, tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(UsageError, match="--average"):
        run_training(toy_spec(), tmp_path / "a", data=[pairs], steps=2, average=1.0)
    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    get_host().register_object(ToyPlugin(), "toy-plugin")
    result = CliRunner().invoke(
        build_app(), ["train", "toy", "--data", str(pairs), "--out", str(tmp_path / "b"), "--average", "-0.5"]
    )
    assert result.exit_code == 2 and "--average" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "b").exists()
