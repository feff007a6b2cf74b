"""Checkpoints: layout, exact resume, crash safety under SIGKILL, user-facing errors, fp16 export, RNG states."""

from __future__ import annotations

import json
import multiprocessing
import random
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch import nn

from facetool.errors import FacetoolError, UsageError
from facetool.train import checkpoint as ckpt_module
from facetool.train import rng as rng_module
from facetool.train.checkpoint import (
    TrainState,
    export_weights,
    latest_checkpoint,
    load_checkpoint,
    load_weights,
    read_net_weights,
    read_state,
    save_checkpoint,
)
from facetool.train.rng import capture_rng_state, restore_rng_state


@dataclass
class BlockConfig:
    channels: int = 4
    kernel: tuple[int, int] = (3, 3)


@dataclass
class TinyConfig:
    in_channels: int = 3
    block: BlockConfig = field(default_factory=BlockConfig)
    norm: str = "batch"


class Tiny(nn.Module):
    """conv + batch norm (a buffer, an int counter) + linear: every kind of state-dict entry."""

    def __init__(self, config: TinyConfig = TinyConfig()) -> None:
        super().__init__()
        self.conv = nn.Conv2d(config.in_channels, config.block.channels, config.block.kernel, padding=1)
        self.norm = nn.BatchNorm2d(config.block.channels)
        self.head = nn.Linear(config.block.channels, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.norm(self.conv(x))).mean(dim=(2, 3)))


def _objects(seed: int):
    torch.manual_seed(seed)
    net = Tiny()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.5, 0.999))
    schedulers = {
        "warmup": torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 4)),
        "step": torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5),  # chains onto the warm-up
    }
    return net, optimizer, schedulers


def _train(net, optimizer, schedulers, steps: int, data: torch.Generator) -> None:
    """Batches from every RNG a method may use: torch global, numpy global, python random, a loader generator."""
    for _ in range(steps):
        order = torch.randperm(8, generator=data)
        x = torch.randn(8, 3, 6, 6)[order] + torch.from_numpy(np.random.rand(8, 3, 6, 6).astype(np.float32))
        x = x * random.uniform(0.5, 1.5)
        target = torch.randint(0, 2, (8,))
        loss = nn.functional.cross_entropy(net(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for scheduler in schedulers.values():
            scheduler.step()


def _seed_all(seed: int) -> torch.Generator:
    rng_module.seed_everything(seed)
    return torch.Generator().manual_seed(seed + 1)


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path: Path) -> None:
    data = _seed_all(7)
    net, optimizer, schedulers = _objects(0)
    _train(net, optimizer, schedulers, 6, data)

    data = _seed_all(7)
    net_a, optimizer_a, schedulers_a = _objects(0)
    _train(net_a, optimizer_a, schedulers_a, 3, data)
    state = TrainState(method="tiny", step=3, epoch=1, configs={"G": TinyConfig()})
    save_checkpoint(tmp_path, state, {"G": net_a}, {"G": optimizer_a}, schedulers_a, generators={"data": data})

    data = _seed_all(12345)  # a fresh process: other seeds, other init; load must put everything back
    net_b, optimizer_b, schedulers_b = _objects(99)
    loaded = load_checkpoint(
        tmp_path, {"G": net_b}, {"G": optimizer_b}, schedulers_b, expect_method="tiny", generators={"data": data}
    )
    _train(net_b, optimizer_b, schedulers_b, 3, data)
    loaded.step += 3

    assert loaded.step == 6
    for (name, want), (_, got) in zip(net.state_dict().items(), net_b.state_dict().items(), strict=True):
        assert torch.equal(want, got), name
    want_state, got_state = optimizer.state_dict(), optimizer_b.state_dict()
    assert want_state["param_groups"] == got_state["param_groups"]  # lr, betas (a tuple again), eps ...
    for index, entry in want_state["state"].items():
        for key, value in entry.items():
            assert torch.equal(value, got_state["state"][index][key]), (index, key)
    assert optimizer_b.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"] != 1e-2
    for key, scheduler in schedulers.items():
        assert schedulers_b[key].last_epoch == scheduler.last_epoch == 6
        assert schedulers_b[key].get_last_lr() == scheduler.get_last_lr()


def test_layout_is_self_describing(tmp_path: Path) -> None:
    net, optimizer, schedulers = _objects(0)
    _train(net, optimizer, schedulers, 1, torch.Generator().manual_seed(0))
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    history = [{"step": i, "loss_G": np.float32(i / 10)} for i in range(1500)]
    state = TrainState(
        method="tiny",
        method_version="2",
        step=120,
        epoch=3,
        configs={"G": TinyConfig(block=BlockConfig(channels=4, kernel=(3, 3)))},
        options={"lr": 1e-2, "out": tmp_path},
        preprocessing={"template": "ffhq", "size": 64},
        history=history,
        wall_seconds=12.5,
    )
    folder = save_checkpoint(tmp_path / "run", state, {"G": net}, {"G": optimizer}, schedulers, scaler=scaler)

    assert folder == tmp_path / "run" / "checkpoints" / "step-000120"
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text() == "step-000120\n"
    assert sorted(p.name for p in folder.iterdir()) == [
        "complete.json",
        "optim.json",
        "optim.safetensors",
        "state.json",
        "weights.safetensors",
    ]
    with safe_open(folder / "weights.safetensors", framework="pt") as handle:
        assert set(handle.keys()) == {f"G.{k}" for k in net.state_dict()}
        assert handle.metadata()["format_version"] == "1"
        assert handle.get_tensor("G.norm.num_batches_tracked").dtype == torch.int64  # stored as-is
    with safe_open(folder / "optim.safetensors", framework="pt") as handle:
        assert {"G.0.exp_avg", "G.0.exp_avg_sq", "G.0.step", "G.5.exp_avg"} <= set(handle.keys())
    optim_json = json.loads((folder / "optim.json").read_text())
    assert optim_json["optimizers"]["G"]["param_groups"][0]["lr"] == optimizer.param_groups[0]["lr"]
    assert optim_json["scaler"]["scale"] == 1024.0

    raw = json.loads((folder / "state.json").read_text())
    assert raw["configs"]["G"] == {
        "type": "test_checkpoint:TinyConfig",
        "values": {"in_channels": 3, "block": {"channels": 4, "kernel": [3, 3]}, "norm": "batch"},
    }
    assert len(raw["history"]) == 1000 and raw["history"][-1] == {"step": 1499, "loss_G": pytest.approx(149.9)}
    assert raw["nets"]["G"]["parameters"] == sum(p.numel() for p in net.parameters())

    state_back = read_state(tmp_path / "run")
    assert (state_back.method, state_back.method_version, state_back.step, state_back.epoch) == ("tiny", "2", 120, 3)
    assert state_back.config("G") == TinyConfig()  # dataclass rebuilt, nested one and tuple included
    assert state_back.preprocessing == {"template": "ffhq", "size": 64}
    assert state_back.options["out"] == str(tmp_path) and state_back.wall_seconds == 12.5
    assert state_back.facetool_version and state_back.rng["torch"] and state_back.path == folder

    scaler_b = torch.amp.GradScaler("cpu")
    load_checkpoint(folder, scaler=scaler_b)
    assert scaler_b.get_scale() == 1024.0


def test_keep_prunes_old_checkpoints_and_same_step_replaces(tmp_path: Path) -> None:
    net = nn.Linear(2, 2)
    for step in range(1, 6):
        save_checkpoint(tmp_path, TrainState("m", step=step * 10), {"G": net}, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step-000040", "step-000050"]
    with torch.no_grad():
        net.weight.fill_(3.0)
    save_checkpoint(tmp_path, TrainState("m", step=50), {"G": net}, keep=2)  # a resumed run saving step 50 again
    assert torch.equal(read_net_weights(tmp_path)["G"]["weight"], torch.full((2, 2), 3.0))
    assert latest_checkpoint(tmp_path).name == "step-000050"


def test_incomplete_folders_are_ignored_and_cleaned(tmp_path: Path) -> None:
    net = nn.Linear(2, 2)
    save_checkpoint(tmp_path, TrainState("m", step=1), {"G": net})
    root = tmp_path / "checkpoints"
    (root / "step-000009").mkdir()  # no completion marker
    (root / "step-000009" / "state.json").write_text("{}")
    (root / "step-000008.tmp-999999999").mkdir()  # a dead process's half-written save
    (root / "latest").write_text("step-000009\n")  # pointing at garbage: fall back to the newest complete one
    assert latest_checkpoint(tmp_path).name == "step-000001"
    with pytest.raises(FacetoolError, match="incomplete checkpoint"):
        load_checkpoint(root / "step-000009")
    save_checkpoint(tmp_path, TrainState("m", step=2), {"G": net})
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-000001", "step-000002"]


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    net = Tiny()
    folder = save_checkpoint(tmp_path / "run", TrainState("pix2pix", step=5), {"G": net}, {})

    def error(call, kind=FacetoolError) -> str:
        with pytest.raises(kind) as info:
            call()
        assert "\n" not in str(info.value)
        return str(info.value)

    assert "not a facetool checkpoint" in error(lambda: load_checkpoint(tmp_path))
    assert "does not exist" in error(lambda: read_state(tmp_path / "nope"))
    assert "is a file" in error(lambda: read_state(folder / "weights.safetensors"))
    assert "no complete checkpoint" in error(lambda: read_state(_empty_run(tmp_path)))
    message = error(lambda: load_checkpoint(tmp_path / "run", expect_method="cyclegan"), UsageError)
    assert message == f"{tmp_path / 'run'} holds a checkpoint of method pix2pix, not cyclegan"
    assert "has no net 'D' (it holds: G)" in error(lambda: load_checkpoint(folder, {"D": net}))

    class Wider(Tiny):
        def __init__(self) -> None:
            super().__init__()
            self.extra = nn.Linear(2, 2)

    message = error(lambda: load_checkpoint(folder, {"G": Wider()}))
    assert "missing G.extra.bias, G.extra.weight" in message
    assert "G.conv.bias is (4,) there, (8,) here (+6 more)" in error(
        lambda: load_checkpoint(folder, {"G": Tiny(TinyConfig(block=BlockConfig(channels=8)))})
    )
    assert "has no optimizer G" in error(
        lambda: load_checkpoint(folder, optimizers={"G": torch.optim.SGD(net.parameters())})
    )


def _empty_run(tmp_path: Path) -> Path:
    (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
    return tmp_path / "empty"


@pytest.mark.parametrize("damage", ["truncate", "flip", "garble-state"])
def test_corrupt_files_are_named(tmp_path: Path, damage: str) -> None:
    net = Tiny()
    folder = save_checkpoint(tmp_path, TrainState("m", step=1), {"G": net})
    weights = folder / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "truncate":
        weights.write_bytes(data[:-100])
        expected = "weights.safetensors: .* bytes, expected"
    elif damage == "flip":
        data[-5] ^= 0xFF
        weights.write_bytes(bytes(data))
        expected = "weights.safetensors: sha256 mismatch"
    else:
        (folder / "state.json").write_text('{"format": "facetool-check')
        expected = "state.json:"
    before = Tiny().state_dict()
    fresh = Tiny()
    fresh.load_state_dict(before)
    with pytest.raises(FacetoolError, match=f"checkpoint .* is corrupt: {expected}"):
        load_checkpoint(tmp_path, {"G": fresh})
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())  # untouched on failure


def test_fp16_export_is_smaller_and_self_describing(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Conv2d(3, 32, 3), nn.BatchNorm2d(32), nn.Conv2d(32, 32, 3))
    state = TrainState("pix2pix", step=7, configs={"G": TinyConfig()}, preprocessing={"template": "ffhq", "size": 256})
    full = export_weights(tmp_path / "g32.safetensors", {"G": net})
    half = export_weights(tmp_path / "g16.safetensors", {"G": net}, dtype=torch.float16, state=state)
    assert half.stat().st_size < 0.6 * full.stat().st_size

    back = nn.Sequential(nn.Conv2d(3, 32, 3), nn.BatchNorm2d(32), nn.Conv2d(32, 32, 3))
    metadata = load_weights(half, {"G": back})
    assert back[0].weight.dtype == torch.float32
    assert torch.equal(back[0].weight, net[0].weight.half().float())
    assert torch.equal(back[1].num_batches_tracked, net[1].num_batches_tracked)  # ints are not cast
    assert metadata["method"] == "pix2pix" and metadata["dtype"] == "float16"
    assert json.loads(metadata["configs"])["G"]["type"] == "test_checkpoint:TinyConfig"

    folder = save_checkpoint(tmp_path / "run", state, {"G": net})
    shipped = export_weights(tmp_path / "ship.safetensors", read_net_weights(folder, ["G"]), dtype=torch.float16)
    load_weights(shipped, {"G": back})
    assert torch.equal(back[2].bias, net[2].bias.half().float())


def test_rng_states_round_trip_through_json() -> None:
    generators = {
        "loader": torch.Generator().manual_seed(3),
        "augment": np.random.default_rng(4),
        "legacy": np.random.Generator(np.random.MT19937(5)),
        "python": random.Random(6),
    }
    rng_module.seed_everything(11)
    saved = json.loads(json.dumps(capture_rng_state(generators)))

    def draw() -> list:
        return [
            torch.rand(3).tolist(),
            np.random.rand(3).tolist(),
            np.random.randn(3).tolist(),
            random.random(),
            torch.rand(2, generator=generators["loader"]).tolist(),
            generators["augment"].random(2).tolist(),
            generators["legacy"].random(2).tolist(),
            generators["python"].random(),
        ]

    first = draw()
    draw()
    assert restore_rng_state(saved, generators) == []
    assert draw() == first
    if not torch.cuda.is_available():  # resuming a GPU run on a CPU machine: reported, not fatal
        assert restore_rng_state({"torch_cuda": ["AAAA"]}, {"other": random.Random()}) == [
            "CUDA RNG states of 1 device(s) not restored (devices differ)",
            "generator 'other' has no saved state",
        ]


def test_no_code_executing_formats_in_the_modules() -> None:
    for module in (ckpt_module, rng_module):
        source = Path(module.__file__).read_text()
        assert not re.search(r"pickle|torch\.save|torch\.load", source), module.__name__


# ------------------------------------------------------------------------------------------------ crash safety


def _save_forever(run_dir: Path, first_step: int, nets: dict, optimizers: dict) -> None:
    torch.set_num_threads(1)
    step = first_step
    while True:
        with torch.no_grad():
            for net in nets.values():
                for parameter in net.parameters():
                    parameter.fill_(float(step))  # every tensor names its step: a mixed-up checkpoint shows
        save_checkpoint(run_dir, TrainState("crashy", step=step), nets, optimizers, keep=2)
        step += 1


def _crash_objects():
    nets = {"G": nn.Linear(512, 1024), "D": nn.Linear(1024, 256)}  # 3 MB of weights, 6 MB of Adam state
    optimizers = {name: torch.optim.Adam(net.parameters()) for name, net in nets.items()}
    for net, optimizer in zip(nets.values(), optimizers.values(), strict=True):
        net(torch.zeros(1, net.in_features)).sum().backward()
        optimizer.step()
    return nets, optimizers


def test_sigkill_never_leaves_a_half_written_latest(tmp_path: Path) -> None:
    nets, optimizers = _crash_objects()
    save_checkpoint(tmp_path, TrainState("crashy", step=0), nets, optimizers, keep=2)
    fresh_nets, fresh_optimizers = _crash_objects()
    context = multiprocessing.get_context("fork")  # the child shares the imported torch: no 3 s start per kill
    pauses = random.Random(2024)
    leftovers_seen = 0
    steps_seen = []
    for kill in range(40):  # 6 kills at least; more, with longer pauses, while a loaded CPU has saved nothing yet
        if kill >= 6 and steps_seen[-1] > 0 and leftovers_seen:
            break
        first_step = read_state(tmp_path).step + 1
        child = context.Process(target=_save_forever, args=(tmp_path, first_step, nets, optimizers), daemon=True)
        child.start()
        time.sleep(pauses.uniform(0.05, 0.5) * (1 + kill // 6))
        child.kill()
        child.join()
        assert child.exitcode == -signal.SIGKILL

        latest = latest_checkpoint(tmp_path)
        assert latest is not None
        state = load_checkpoint(latest, fresh_nets, fresh_optimizers, expect_method="crashy", restore_rng=False)
        for net in fresh_nets.values():
            for parameter in net.parameters():
                assert torch.equal(parameter, torch.full_like(parameter, float(state.step)))
        steps_seen.append(state.step)
        leftovers_seen += any(".tmp-" in p.name or ".old-" in p.name for p in (tmp_path / "checkpoints").iterdir())

    assert steps_seen == sorted(steps_seen) and steps_seen[-1] > 0
    assert leftovers_seen >= 1  # the kills did land mid-save
    save_checkpoint(tmp_path, TrainState("crashy", step=steps_seen[-1] + 1), nets, optimizers, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert len(names) == 3 and names[0] == "latest" and all(re.fullmatch(r"step-\d{6}", n) for n in names[1:])


def test_a_config_type_outside_facetool_and_loaded_plugins_is_never_imported():
    import sys

    from facetool.train.checkpoint import config_from_record

    assert "antigravity" not in sys.modules  # importing it opens a web browser: a side effect a file must not cause
    with pytest.raises(FacetoolError, match="not from facetool or a loaded plugin"):
        config_from_record({"type": "antigravity:Config", "values": {}})
    assert "antigravity" not in sys.modules
