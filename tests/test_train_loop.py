"""The training engine on a toy GAN method: run layout, exact resume (also after SIGKILL), NaN stop, errors, CLI."""

from __future__ import annotations

import json
import multiprocessing
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from facetool import hookimpl
from facetool.cli import build_app
from facetool.errors import FacetoolError, TrainingStopped, UsageError
from facetool.methods import MethodSpec
from facetool.plugins import get_host
from facetool.train.checkpoint import latest_checkpoint, load_weights, read_net_weights, read_state
from facetool.train.loop import StepBatches, run_training
from facetool.train.spec import TrainSpec

SIZE = 16


@dataclass
class ToyOptions:
    lr: float = 0.01
    nan_at: int = -1  # the step whose loss is made NaN (tests the stop)


class ToyTrainer:
    """A 1-layer G with dropout (uses the global RNG) against a 1-layer conditional D, LR decaying."""

    def __init__(self, setup):
        self.setup, self.options = setup, setup.options
        torch.manual_seed(setup.seed)
        g = torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Conv2d(3, 1, 3, padding=1), torch.nn.Sigmoid())
        d = torch.nn.Conv2d(4, 1, 3, padding=1)
        self.nets = {"G": g.to(setup.device), "D": d.to(setup.device)}
        self.optimizers = {n: torch.optim.Adam(m.parameters(), lr=self.options.lr) for n, m in self.nets.items()}
        decay = lambda step: 0.99**step  # noqa: E731  (independent of the total: runs of any length compare)
        self.schedulers = {n: torch.optim.lr_scheduler.LambdaLR(o, decay) for n, o in self.optimizers.items()}
        self.configs = {"G": {"kind": "toy"}, "D": {"kind": "toy"}}
        self.export = ("G",)

    def train_step(self, batch, step):
        photo, drawing = batch["pair"]["photo"], batch["pair"]["drawing"]
        g, d = self.setup.wrap(self.nets["G"]), self.setup.wrap(self.nets["D"])
        fake = g(photo)
        d_loss = torch.relu(1 - d(torch.cat([photo, drawing], 1))).mean()
        d_loss = d_loss + torch.relu(1 + d(torch.cat([photo, fake.detach()], 1))).mean()
        self.optimizers["D"].zero_grad()
        self.setup.amp.backward(d_loss)
        self.setup.amp.step(self.optimizers["D"])
        g_loss = -d(torch.cat([photo, fake], 1)).mean() + 10 * (fake - drawing).abs().mean()
        if step == self.options.nan_at:
            g_loss = g_loss * float("nan")
        self.optimizers["G"].zero_grad()
        self.setup.amp.backward(g_loss)
        self.setup.amp.step(self.optimizers["G"])
        for scheduler in self.schedulers.values():
            scheduler.step()
        return {"D": d_loss.item(), "G": g_loss.item()}

    def samples(self, batch):
        photo = batch["pair"]["photo"]
        return [photo, self.nets["G"](photo), batch["pair"]["drawing"]]


def toy_spec(name: str = "toy") -> MethodSpec:
    train = TrainSpec(build=ToyTrainer, streams=lambda o: {"pair": ("photo", "drawing")}, options=ToyOptions,
                      default_steps=6, default_batch_size=2)  # fmt: skip
    return MethodSpec(name=name, task="stylize", load=lambda o, d, w: None, description="toy", input_size=SIZE,
                      sizes=(SIZE,), train=train)  # fmt: skip


def make_pairs(root: Path, count: int = 8, test: int = 2) -> Path:
    """A manifest folder of random photo / drawing pairs with a train/test split."""
    from facetool.data.common import save_png

    rng = np.random.default_rng(0)
    lines, ids = [], []
    for i in range(count):
        item = f"{i:06d}"
        files = {}
        for role, shape in (("photo", (SIZE, SIZE, 3)), ("drawing", (SIZE, SIZE))):
            path = root / role / f"{item}.png"
            files[role] = {
                "path": f"{role}/{item}.png",
                "sha256": save_png(path, (rng.random(shape) * 255).astype(np.uint8)),
            }
        lines.append(json.dumps({"id": item, "file": files["photo"]["path"], "files": files, "labels": {}}))
        ids.append(item)
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    (root / "splits.json").write_text(json.dumps({"train": ids[test:], "test": ids[:test]}))
    return root


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    return make_pairs(tmp_path / "pairs")


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return read_net_weights(run)["G"]


def test_run_layout_and_outputs(pairs: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = run_training(toy_spec(), run, data=[pairs], steps=6, save_every=3, sample_every=2)
    assert result.step == 6 and result.weights == run / "toy.safetensors"
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["latest", "step-000003", "step-000006"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step-000002.png",
        "step-000004.png",
        "step-000006.png",
    ]
    from PIL import Image

    grid = Image.open(run / "samples" / "step-000006.png")
    assert grid.size == (3 * SIZE + 2 * 2, 2 * SIZE + 2)  # 3 columns, the 2 held-out items as rows
    assert Image.open(run / "loss-curve.png").size[0] > 100
    lines = [json.loads(x) for x in (run / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(1, 7)) and set(lines[0]) == {"step", "D", "G"}
    state = read_state(run)
    assert state.extra["run"]["steps"] == 6 and state.extra["run"]["batch_size"] == 2 and state.extra["export"] == ["G"]
    # the shipped file: fp16, G only, settings in the metadata
    g = torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Conv2d(3, 1, 3, padding=1), torch.nn.Sigmoid())
    meta = load_weights(result.weights, {"G": g})
    assert meta["method"] == "toy" and json.loads(meta["train_options"])["lr"] == 0.01
    assert torch.allclose(g[1].weight, _weights(run)["1.weight"], atol=1e-3)


def test_data_order_covers_every_item_each_epoch_and_shards_by_rank() -> None:
    order = StepBatches(n=10, batch_size=2, seed=3, stream=0)
    epoch = sorted(i for step in range(5) for i in order.indices(step))
    assert epoch == list(range(10))
    assert order.indices(7) == StepBatches(10, 2, 3, 0).indices(7)  # a pure function of the step
    ranks = [StepBatches(10, 1, 3, 0, rank=r, world=2) for r in range(2)]
    assert sorted(i for step in range(5) for r in ranks for i in r.indices(step)) == list(range(10))


def test_resume_continues_exactly(pairs: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    run_training(toy_spec(), straight, data=[pairs], steps=6, save_every=2)

    stopped = tmp_path / "stopped"

    def stop_after_five(step, steps, losses):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(toy_spec(), stopped, data=[pairs], steps=6, save_every=2, progress=stop_after_five)
    assert read_state(stopped).step == 4
    run_training(toy_spec(), stopped, resume=True)
    for key, value in _weights(straight).items():
        assert torch.equal(value, _weights(stopped)[key]), key
    lines = [json.loads(x)["step"] for x in (stopped / "losses.jsonl").read_text().splitlines()]
    assert lines == list(range(1, 7))  # the step-5 line of the stopped attempt was dropped on resume
    straight_losses = (straight / "losses.jsonl").read_text()
    assert (stopped / "losses.jsonl").read_text() == straight_losses


def test_resume_follows_moved_data_and_refuses_changed_data(pairs: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    run_training(toy_spec(), run, data=[pairs], steps=2, save_every=2)
    moved = tmp_path / "moved"
    shutil.move(pairs, moved)
    with pytest.raises(UsageError, match="give its new place with --data"):
        run_training(toy_spec(), run, resume=True, steps=4)
    assert run_training(toy_spec(), run, resume=True, steps=4, data=[moved]).step == 4  # the same items, moved
    lines = (moved / "manifest.jsonl").read_text().splitlines()
    (moved / "manifest.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # one item fewer: another data set
    with pytest.raises(UsageError, match="not the items the run started with"):
        run_training(toy_spec(), run, resume=True, steps=6, data=[moved])


def test_resume_refuses_nets_built_otherwise_than_saved(pairs: Path, tmp_path: Path, monkeypatch) -> None:
    run = tmp_path / "run"
    run_training(toy_spec(), run, data=[pairs], steps=2, save_every=1)
    original = ToyTrainer.__init__
    seen = []

    def changed_default(self, setup):  # as if a config default changed in a later facetool
        original(self, setup)
        seen.append(setup.saved_configs)
        self.configs = {"G": {"kind": "toy", "width": 2}, "D": {"kind": "toy"}}

    monkeypatch.setattr(ToyTrainer, "__init__", changed_default)
    refusal = r"net G would be built otherwise than it was saved \(width None -> 2\): .* branch .*--out NEW -T"
    with pytest.raises(UsageError, match=refusal):
        run_training(toy_spec(), run, resume=True, steps=3)
    assert seen == [{"G": {"kind": "toy"}, "D": {"kind": "toy"}}]  # the saved configs reach the trainer
    assert read_state(run).step == 2


def _train_forever(run: Path, data: Path) -> None:
    torch.set_num_threads(1)
    run_training(toy_spec(), run, data=[data], steps=100000, save_every=1, sample_every=10**9)


def test_sigkill_mid_run_resumes_from_a_complete_checkpoint(pairs: Path, tmp_path: Path) -> None:
    run = tmp_path / "killed"
    context = multiprocessing.get_context("fork")
    pauses = random.Random(7)
    for _ in range(3):
        child = context.Process(target=_train_forever, args=(run, pairs), daemon=True)
        if latest_checkpoint(run) is None:
            child.start()
        else:  # continue the killed run
            child = context.Process(target=_resume_forever, args=(run,), daemon=True)
            child.start()
        time.sleep(pauses.uniform(1.0, 2.0))
        child.kill()
        child.join()
        assert child.exitcode == -signal.SIGKILL
        assert latest_checkpoint(run) is not None
    step = read_state(run).step
    assert step > 0
    # the killed run, resumed to a fixed total, equals a run that was never killed (on the children's one thread:
    # float sums depend on the thread count)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_training(toy_spec(), run, resume=True, steps=step + 3, save_every=1)
        straight = tmp_path / "straight"
        run_training(toy_spec(), straight, data=[pairs], steps=step + 3, save_every=10**9)
    finally:
        torch.set_num_threads(threads)
    for key, value in _weights(straight).items():
        assert torch.equal(value, _weights(run)[key]), key


def _resume_forever(run: Path) -> None:
    torch.set_num_threads(1)
    run_training(toy_spec(), run, resume=True, save_every=1)


def test_nan_stops_and_keeps_the_last_good_checkpoint(pairs: Path, tmp_path: Path) -> None:
    run = tmp_path / "nan"
    with pytest.raises(FacetoolError, match=r"step 4: loss G is nan.*step-000002"):
        run_training(toy_spec(), run, data=[pairs], steps=6, save_every=2, options=ToyOptions(nan_at=3))
    assert read_state(run).step == 2


def test_clear_errors(pairs: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_training(toy_spec(), run, data=[pairs], steps=2)
    with pytest.raises(UsageError, match="already holds a run"):
        run_training(toy_spec(), run, data=[pairs], steps=2)
    with pytest.raises(UsageError, match="run of method toy, not other"):
        run_training(toy_spec("other"), run, resume=True)
    with pytest.raises(UsageError, match="its size is 16, not 32"):
        run_training(toy_spec(), run, resume=True, steps=4, size=32)
    with pytest.raises(UsageError, match="no checkpoint"):
        run_training(toy_spec(), tmp_path / "none", resume=True)
    with pytest.raises(UsageError, match="no such folder"):
        run_training(toy_spec(), tmp_path / "r2", data=[tmp_path / "missing"])
    with pytest.raises(FacetoolError, match="no train with roles photo, sketch"):
        spec = toy_spec()
        train = TrainSpec(build=ToyTrainer, streams=lambda o: {"pair": ("photo", "sketch")}, options=ToyOptions)
        run_training(MethodSpec(**{**spec.__dict__, "train": train}), tmp_path / "r3", data=[pairs])


class ToyPlugin:
    @hookimpl
    def register_generators(self, register):
        register(toy_spec())


def test_cli_train_and_resume(pairs: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    get_host().register_object(ToyPlugin(), "toy-plugin")
    run = tmp_path / "cli-run"
    runner = CliRunner()
    result = runner.invoke(build_app(), ["train", "toy", "--data", str(pairs), "--out", str(run), "--steps", "3",
                                         "-O", "lr=0.02", "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "step 3" in result.output and (run / "toy.safetensors").is_file()
    assert read_state(run).options["lr"] == 0.02
    result = runner.invoke(build_app(), ["train", "toy", "--resume", str(run), "--steps", "5", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert read_state(run).step == 5
    result = runner.invoke(build_app(), ["train", "toy", "--data", str(pairs), "--steps", "3"])
    assert result.exit_code == 2 and "--out RUN" in result.output
    result = runner.invoke(build_app(), ["train", "toy", "--data", str(pairs), "--out", str(tmp_path / "x"),
                                         "-O", "lr=fast"])  # fmt: skip
    assert result.exit_code == 2 and "lr" in result.output


DDP_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
from test_train_loop import toy_spec
from facetool.train.loop import run_training
import torch.distributed as dist
result = run_training(toy_spec(), {run!r}, data=[{data!r}], steps=4, batch_size=1, save_every=2, device="cpu")
print("rank", dist.get_rank(), "world", dist.get_world_size(), "step", result.step)
"""


@pytest.mark.heavy  # two processes importing torch: ~1 min on 2 shared cores
def test_runs_under_torchrun_on_two_cpu_processes(pairs: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    run = tmp_path / "ddp"
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent), run=str(run), data=str(pairs)))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517",
               str(script)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rank 0 world 2 step 4" in done.stdout and "rank 1 world 2 step 4" in done.stdout
    state = read_state(run)
    assert state.step == 4 and state.extra["run"]["batch_size"] == 1
    lines = (run / "losses.jsonl").read_text().splitlines()
    assert len(lines) == 4  # rank 0 alone writes


@pytest.fixture
def signals_not_ignored():
    """A shell that starts pytest in the background (``pytest &`` in a script) hands it SIGINT ignored, and the loop
    rightly keeps an inherited SIG_IGN: give both signals their usual handlers for the test, then put back what was."""
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for sig, handler in kept.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_stop_signal_finishes_the_step_saves_and_resumes_exactly(tmp_path, pairs, signame, signals_not_ignored):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    run_training(toy_spec(), straight, data=[pairs], steps=6, save_every=4)

    def signal_at_five(step, steps, losses):
        if step == 5:
            signal.raise_signal(getattr(signal, signame))

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingStopped, match=f"{signame}: stopped after step 5 of 6"):
        run_training(toy_spec(), stopped, data=[pairs], steps=6, save_every=4, progress=signal_at_five)
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
    assert read_state(stopped).step == 5  # saved at the stop, not only at the save_every step 4
    run_training(toy_spec(), stopped, resume=True)
    for key, value in _weights(straight).items():
        assert torch.equal(value, _weights(stopped)[key]), key
    assert (stopped / "losses.jsonl").read_text() == (straight / "losses.jsonl").read_text()


def test_resume_accepts_a_relative_data_path_and_refuses_unusable_settings(pairs, tmp_path, monkeypatch):
    monkeypatch.chdir(pairs.parent)
    run_training(toy_spec(), tmp_path / "rel", data=[Path(pairs.name)], steps=2)
    run_training(toy_spec(), tmp_path / "rel", resume=True, data=[Path(pairs.name)], steps=3, precision="fp32")
    with pytest.raises(UsageError, match="--size 32: method toy runs at 16"):
        run_training(toy_spec(), tmp_path / "big", data=[pairs], size=32)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        run_training(toy_spec(), tmp_path / "file", data=[pairs])


def test_a_new_step_total_on_resume_sets_the_rate_of_the_new_schedule():
    from facetool.models.common import linear_decay
    from facetool.train.loop import _restart_schedules

    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    old = linear_decay(optimizer, steps=4, decay_from=0.5)
    for _ in range(4):
        optimizer.step()
        old.step()
    assert optimizer.param_groups[0]["lr"] == 0.0  # the 4-step run ended at rate 0
    saved_optimizer, saved_scheduler = optimizer.state_dict(), old.state_dict()
    resumed = torch.optim.SGD([weight], lr=1.0)
    extended = linear_decay(resumed, steps=8, decay_from=0.5)  # extended to 8: full rate until step 4
    resumed.load_state_dict(saved_optimizer)
    extended.load_state_dict(saved_scheduler)
    assert resumed.param_groups[0]["lr"] == 0.0  # what loading alone leaves
    _restart_schedules([extended])
    assert resumed.param_groups[0]["lr"] == 1.0 and extended.get_last_lr() == [1.0]
    resumed.step()
    extended.step()
    assert resumed.param_groups[0]["lr"] == pytest.approx(0.75)


def test_a_mirrored_pncc_map_mirrors_canonical_x_and_keeps_the_background() -> None:
    from facetool.train.loop import _flip

    pncc = torch.zeros(3, 4, 6)
    pncc[:, 1:3, 1:3] = torch.tensor([0.2, 0.5, 0.7])[:, None, None]  # a face patch left of centre
    flipped = _flip({"pncc": pncc, "photo": torch.rand(3, 4, 6)})["pncc"]
    assert torch.allclose(flipped[:, 1:3, 3:5], torch.tensor([0.8, 0.5, 0.7])[:, None, None])
    assert flipped[:, :, :3].eq(0).all() and flipped[:, 0].eq(0).all()  # background stays black
    assert torch.allclose(_flip({"pncc": flipped})["pncc"], pncc)


def test_init_starts_a_new_run_from_another_runs_weights_and_settings(pairs, tmp_path, monkeypatch) -> None:
    source = tmp_path / "source"
    run_training(toy_spec(), source, data=[pairs], steps=3, options=ToyOptions(lr=0.05))
    logged: list[str] = []
    seen: list[dict[str, torch.Tensor]] = []
    original = ToyTrainer.train_step

    def record(self, batch, step):  # G as the new run's first step finds it
        if step == 0:
            seen.append({k: v.clone() for k, v in self.nets["G"].state_dict().items()})
        return original(self, batch, step)

    monkeypatch.setattr(ToyTrainer, "train_step", record)
    fork = tmp_path / "fork"
    run_training(toy_spec(), fork, data=[pairs], steps=2, init=source, log=logged.append)
    for key, value in _weights(source).items():  # the new run's G started as the source's last G
        assert torch.equal(seen[0][key], value), key
    state = read_state(fork)
    assert state.step == 2 and state.options["lr"] == 0.05  # its own step count; the source's settings
    assert state.extra["run"]["init"] == f"{latest_checkpoint(source)} (step 3)"
    with safe_open(str(fork / "toy.safetensors"), framework="pt") as handle:  # the shipped file says where it began
        assert json.loads(handle.metadata()["train_settings"])["init"] == state.extra["run"]["init"]
    assert any("nets G, D start from" in line for line in logged)

    # An exported weights file holds G only: D starts fresh, and the log says so.
    logged.clear()
    run_training(toy_spec(), tmp_path / "from-file", data=[pairs], steps=1, init=source / "toy.safetensors",
                 options=ToyOptions(lr=0.01), log=logged.append)  # fmt: skip
    assert any(line.endswith("; D fresh") for line in logged), logged
    assert read_state(tmp_path / "from-file").options["lr"] == 0.01  # options given win


def test_init_refuses_what_it_cannot_start_from(pairs: Path, tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "source"
    run_training(toy_spec(), source, data=[pairs], steps=1)
    with pytest.raises(UsageError, match="give one of them"):
        run_training(toy_spec(), source, resume=True, init=source)
    with pytest.raises(UsageError, match="no such file or folder"):
        run_training(toy_spec(), tmp_path / "a", data=[pairs], init=tmp_path / "missing")
    with pytest.raises(UsageError, match="weights of method toy, not other"):
        run_training(toy_spec("other"), tmp_path / "b", data=[pairs], init=source)
    with pytest.raises(UsageError, match="ships no weights"):
        run_training(toy_spec(), tmp_path / "c", data=[pairs], init="shipped")
    original = ToyTrainer.__init__

    def wider(self, setup):
        original(self, setup)
        self.configs = {"G": {"kind": "toy", "width": 2}, "D": {"kind": "toy"}}

    monkeypatch.setattr(ToyTrainer, "__init__", wider)
    with pytest.raises(UsageError, match=r"--init .*: net G would be built otherwise than .* \(width None -> 2\)"):
        run_training(toy_spec(), tmp_path / "d", data=[pairs], init=source)
    assert not (tmp_path / "d").exists()  # refused before anything was written


def test_cli_init_keeps_the_sources_settings_and_changes_those_named(pairs, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    get_host().register_object(ToyPlugin(), "toy-plugin")
    runner = CliRunner()
    source, fork = tmp_path / "source", tmp_path / "fork"
    args = ["train", "toy", "--data", str(pairs), "--steps", "2", "--device", "cpu"]
    assert runner.invoke(build_app(), [*args, "--out", str(source), "-T", "lr=0.03", "-T", "nan-at=9"]).exit_code == 0
    result = runner.invoke(build_app(), [*args, "--out", str(fork), "--init", str(source), "-T", "lr=0.02"])
    assert result.exit_code == 0, result.output
    assert read_state(fork).options == {"lr": 0.02, "nan_at": 9}
    result = runner.invoke(build_app(), ["train", "toy", "--resume", str(fork), "--init", str(source)])
    assert result.exit_code == 2 and "give one of them" in result.output


def test_a_branch_continues_a_checkpoint_exactly_in_a_new_folder_with_options_changed(pairs, tmp_path) -> None:
    origin = tmp_path / "origin"
    run_training(toy_spec(), origin, data=[pairs], steps=4, save_every=2, keep=5)
    at_two = origin / "checkpoints" / "step-000002"
    same = tmp_path / "same"  # options unchanged: the branch is the origin's own continuation, bit for bit
    run_training(toy_spec(), same, resume=True, branch_from=at_two, steps=4)
    for key, value in _weights(origin).items():
        assert torch.equal(value, _weights(same)[key]), key
    assert (same / "losses.jsonl").read_text() == (origin / "losses.jsonl").read_text()
    assert read_state(same).extra["run"]["branch"] == f"{at_two} (step 2)"

    changed = tmp_path / "changed"
    run_training(toy_spec(), changed, resume=True, branch_from=at_two, steps=3, options=ToyOptions(lr=0.5))
    state = read_state(changed)
    assert state.step == 3 and state.options["lr"] == 0.5 and read_state(origin).options["lr"] == 0.01
    lines = (changed / "losses.jsonl").read_text().splitlines()
    assert lines[:2] == (origin / "losses.jsonl").read_text().splitlines()[:2] and len(lines) == 3
    assert not torch.equal(_weights(changed)["1.weight"], _weights(origin)["1.weight"])
    optim = json.loads((latest_checkpoint(changed) / "optim.json").read_text())
    # the branch's -T lr is the rate it trained at, not the origin's loaded schedule (step 3 of 3: decayed to 0)
    assert all(s["base_lrs"] == [0.5] for s in optim["schedulers"].values()), optim["schedulers"]
    with pytest.raises(UsageError, match="goes into a new --out folder"):
        run_training(toy_spec(), changed, resume=True, branch_from=at_two, steps=4)


def test_a_branch_whose_options_build_other_nets_is_refused(pairs: Path, tmp_path: Path, monkeypatch) -> None:
    origin = tmp_path / "origin"
    run_training(toy_spec(), origin, data=[pairs], steps=2)
    original = ToyTrainer.__init__

    def wider(self, setup):  # as if the branch's -T asked for another width
        original(self, setup)
        self.configs = {"G": {"kind": "toy", "width": 2}, "D": {"kind": "toy"}}

    monkeypatch.setattr(ToyTrainer, "__init__", wider)
    with pytest.raises(UsageError, match=r"net G would be built .* \(width None -> 2\): set the -T options"):
        run_training(toy_spec(), tmp_path / "b", resume=True, branch_from=origin, steps=3)
    assert not (tmp_path / "b").exists()


def test_cli_branch_and_its_refusals(pairs: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FACETOOL_PLUGINS", "")
    get_host().register_object(ToyPlugin(), "toy-plugin")
    runner = CliRunner()
    origin, branch = tmp_path / "origin", tmp_path / "branch"
    args = ["train", "toy", "--steps", "2", "--device", "cpu"]
    assert (
        runner.invoke(build_app(), [*args, "--data", str(pairs), "--out", str(origin), "-T", "nan-at=9"]).exit_code == 0
    )
    result = runner.invoke(build_app(), ["train", "toy", "--resume", str(origin), "-T", "lr=0.02"])
    assert result.exit_code == 2 and "add --out NEW" in result.output
    result = runner.invoke(build_app(), [*args[:2], "--resume", str(origin), "--out", str(branch), "--steps", "3",
                                         "-T", "lr=0.02"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert read_state(branch).options == {"lr": 0.02, "nan_at": 9} and read_state(branch).step == 3
    assert read_state(origin).step == 2  # the origin is left as it was
