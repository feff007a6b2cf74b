"""The training engine every method shares: ``facetool train`` calls :func:`run_training`.

A run folder ``RUN/`` holds::

    checkpoints/step-000500/ …   crash-safe checkpoints (see :mod:`facetool.train.checkpoint`), ``latest``
    samples/step-000500.png      sample grid: one row per fixed item, the method's columns (input, output, target)
    losses.jsonl                 every step's losses (a resumed run drops the lines after its checkpoint)
    loss-curve.png               the losses over the run, drawn at the end
    <method>.safetensors         the shippable weights (the exported nets, fp16) with their configs and settings

Determinism: item order, flips and every RNG derive from ``--seed`` and the step number alone, so a run resumed
from a checkpoint continues bit for bit like one that never stopped (same device, same library versions).
Distributed: under ``torchrun`` each process takes its share of every step's items; rank 0 writes.
Stopping: in a single process, Ctrl-C or SIGTERM (a scheduler's pre-emption) finishes the current step, saves a
checkpoint and raises :class:`~facetool.errors.TrainingStopped`; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shlex
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import FacetoolError, TrainingStopped, UsageError
from .average import AVERAGE, UPDATES, WeightAverage, split_average
from .checkpoint import (
    TrainState,
    config_record,
    export_weights,
    latest_checkpoint,
    load_checkpoint,
    read_net_weights,
    read_state,
    save_checkpoint,
)
from .rng import seed_everything
from .spec import Amp, TrainSetup

EXTRA = "_extra"  # pseudo-net holding a trainer's non-net tensors (an image pool) in the checkpoint
SAMPLE_ROWS = 4


@dataclass
class RunSettings:
    """The settings that define a run; saved in every checkpoint so ``--resume`` continues the same run."""

    method: str
    data: list[str]
    size: int
    steps: int
    batch_size: int
    seed: int
    precision: str
    options: dict[str, Any]
    flip: bool = True
    save_every: int = 500
    sample_every: int = 250
    init: str = ""  # what --init started the nets from ("" : fresh); see :func:`_init_source`
    branch: str = ""  # the checkpoint this run branched from with other options ("" : none); see ``branch_from``
    average: float = 0.0  # decay of the exported nets' weight average (0: none); see :mod:`facetool.train.average`
    data_digest: list[str] = dataclasses.field(default_factory=list)  # per folder; see :func:`data_digest`


@dataclass
class RunResult:
    run_dir: Path
    step: int
    weights: Path | None
    last_losses: dict[str, float]
    seconds: float


class _StopRequests:
    """Turn SIGINT / SIGTERM into a flag the loop reads between steps, so a stop never splits a step.

    A second SIGINT raises KeyboardInterrupt at once (the last saved checkpoint stays). A SIGINT the parent shell
    ignores (``nohup cmd &``) stays ignored. Only installed in the main thread of a single-process run: under
    torchrun the ranks would have to agree on the stopping step.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequests:
        if self.enabled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                current = signal.getsignal(sig)
                if current is not signal.SIG_IGN:
                    self._previous[sig] = current
                    signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _ignore_stop_signals(worker_id: int) -> None:
    """Data-loading workers leave Ctrl-C / SIGTERM to the main process, which finishes the step and saves."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _restart_schedules(schedulers: Any) -> None:
    """After a resume with a new --steps: the optimisers' rates follow the new schedule from this step on (the
    loaded rate is the old schedule's). Extending a finished run is a warm restart: the rate rises again."""
    for scheduler in schedulers:
        lambdas = getattr(scheduler, "lr_lambdas", None)
        if lambdas is None:
            continue
        for group, base, rate in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, lambdas, strict=True):
            group["lr"] = base * rate(scheduler.last_epoch)
        scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]


def _take_rates(schedulers: Mapping[str, Any], rates: Mapping[str, list[float]]) -> bool:
    """A branch: the schedules restart from the base rates its own options built (a loaded scheduler keeps the
    origin's, so ``-T lr=…`` would be recorded but not used). Returns whether any changed."""
    changed = False
    for name, scheduler in schedulers.items():
        new = rates.get(name)
        if new is None or not hasattr(scheduler, "base_lrs") or list(scheduler.base_lrs) == new:
            continue
        scheduler.base_lrs = list(new)
        for group, rate in zip(scheduler.optimizer.param_groups, new, strict=True):
            group["initial_lr"] = rate
        changed = True
    return changed


# ---------------------------------------------------------------------------------------------------- data order


def _permutation(n: int, seed: int, stream: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed((seed * 1_000_003 + stream * 7_919 + epoch) % 2**63)
    return torch.randperm(n, generator=g)


class StepBatches:
    """Item indices of every step of one stream: step ``s`` of rank ``r`` takes global positions
    ``(s·world + r)·B … +B`` of an endless sequence of seeded per-epoch permutations. Any step's batch is known
    without replaying the earlier ones, which is what makes resume exact and cheap."""

    def __init__(self, n: int, batch_size: int, seed: int, stream: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.batch_size, self.seed, self.stream = n, batch_size, seed, stream
        self.rank, self.world = rank, world
        self._perms: dict[int, torch.Tensor] = {}

    def positions(self, step: int) -> list[int]:
        start = (step * self.world + self.rank) * self.batch_size
        return list(range(start, start + self.batch_size))

    def indices(self, step: int) -> list[int]:
        out = []
        for g in self.positions(step):
            epoch, pos = divmod(g, self.n)
            if epoch not in self._perms:
                self._perms = {epoch: _permutation(self.n, self.seed, self.stream, epoch)}  # keep one epoch
            out.append(int(self._perms[epoch][pos]))
        return out

    def flips(self, step: int) -> list[bool]:
        """Horizontal flip per item, a pure function of (seed, stream, position)."""
        return [bool(_mix(self.seed, self.stream, g) & 1) for g in self.positions(step)]


def _mix(*values: int) -> int:
    h = 0x9E3779B97F4A7C15
    for v in values:
        h ^= (v + 0x9E3779B97F4A7C15 + (h << 6) + (h >> 2)) & 0xFFFFFFFFFFFFFFFF
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return h >> 17


class _StepDataset(torch.utils.data.Dataset):
    """Dataset of whole steps: item ``k`` is step ``start + k``'s batch for every stream (so a DataLoader's workers
    prefetch steps in order)."""

    def __init__(self, streams: dict[str, Any], orders: dict[str, StepBatches], start: int, steps: int, flip: bool):
        self.streams, self.orders, self.start, self.steps, self.flip = streams, orders, start, steps, flip

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def __getitem__(self, k: int) -> dict[str, dict[str, Any]]:
        step = self.start + k
        batch = {}
        for name, dataset in self.streams.items():
            order = self.orders[name]
            items = [dataset[i] for i in order.indices(step)]
            if self.flip:
                items = [_flip(item) if f else item for item, f in zip(items, order.flips(step), strict=True)]
            batch[name] = dataset.collate(items)
        return batch


def mirror_pncc(pncc: torch.Tensor) -> torch.Tensor:
    """A mirrored PNCC map (3, H, W) keeps its meaning only if its canonical x (channel 0, [0, 1] over the
    symmetric canonical face) becomes 1 - x too; the black background stays black."""
    face = pncc.amax(dim=0, keepdim=True) > 0
    out = pncc.flip(-1).clone()
    out[0] = torch.where(face.flip(-1)[0], 1 - out[0], out[0])
    return out


def _flip(item: dict[str, Any]) -> dict[str, Any]:
    """Mirror every image role of an item (and its 5 points: x mirrored, left/right swapped; PNCC: x inverted)."""
    out = dict(item)
    for key, value in item.items():
        if isinstance(value, torch.Tensor) and value.dim() == 3:
            out[key] = mirror_pncc(value) if key == "pncc" else value.flip(-1)
    if "points5" in item:
        width = next(v.shape[-1] for v in item.values() if isinstance(v, torch.Tensor) and v.dim() == 3)
        p = item["points5"].clone()
        p[:, 0] = width - 1 - p[:, 0]
        out["points5"] = p[[1, 0, 2, 4, 3]]
    out["flipped"] = True
    return out


def _to_device(batch: Any, device: str) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def open_streams(
    streams: Mapping[str, tuple[str, ...]], data: list[Path], size: int, split: str | None = "train"
) -> dict[str, Any]:
    """One ManifestDataset per stream: ``data[i]`` feeds stream ``i`` (one folder feeds them all).

    A folder without ``splits.json`` is used whole (every item trains)."""
    from ..data.datasets import ManifestDataset

    if len(data) not in (1, len(streams)):
        raise UsageError(f"--data: give one folder or one per stream ({', '.join(streams)}), not {len(data)}")
    out = {}
    for i, (name, roles) in enumerate(streams.items()):
        folder = Path(data[i if len(data) > 1 else 0])
        if not folder.is_dir():
            raise UsageError(f"--data {folder}: no such folder")
        has_split = (folder / "splits.json").is_file()
        out[name] = ManifestDataset(folder, roles=roles, split=split if has_split else None, size=size)
    return out


# -------------------------------------------------------------------------------------------------- distributed


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: str) -> tuple[_Dist, str]:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK: join the process group (NCCL on CUDA, else gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), device
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return _Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank), device


def _wrapper(dist_info: _Dist, device: str) -> Callable[[torch.nn.Module], torch.nn.Module]:
    if dist_info.world <= 1:
        return lambda net: net
    from torch.nn.parallel import DistributedDataParallel

    cache: dict[int, torch.nn.Module] = {}

    def wrap(net: torch.nn.Module) -> torch.nn.Module:
        # One wrapper per net, made on first use: DDP registers its gradient hooks once.
        if id(net) not in cache:
            ids = [torch.device(device).index] if device.startswith("cuda") else None
            # GAN steps call a net several times (real, fake) and freeze D while G learns: unused parameters happen.
            cache[id(net)] = DistributedDataParallel(
                net, device_ids=ids, broadcast_buffers=False, find_unused_parameters=True
            )
        return cache[id(net)]

    return wrap


def _barrier(dist_info: _Dist) -> None:
    if dist_info.world > 1:
        import torch.distributed as dist

        dist.barrier()


# ---------------------------------------------------------------------------------------------------------- run


def _settings_from(state: TrainState) -> RunSettings:
    record = state.extra.get("run")
    if not record:
        raise FacetoolError(f"{state.path}: checkpoint without run settings (not made by facetool train)")
    return RunSettings(**record)


def data_digest(folder: str | os.PathLike) -> str:
    """sha256 of a data folder's manifest.jsonl and splits.json: which items, with which file hashes, in which split.
    A resumed run must read the same items (its data order is saved); the folder itself may have moved."""
    h = hashlib.sha256()
    for name in ("manifest.jsonl", "splits.json"):
        path = Path(folder) / name
        h.update(name.encode() + (path.read_bytes() if path.is_file() else b"-"))
    return h.hexdigest()


def _check_resume_data(saved: RunSettings, given: list[str] | None) -> list[str]:
    """The data folders a resumed run reads: its own, or ``--data`` naming the same items moved elsewhere."""
    folders = given or saved.data
    for folder in folders:
        if not Path(folder).is_dir():
            where = "" if given else " (the run's data; give its new place with --data)"
            raise UsageError(f"--data {folder}: no such folder{where}")
    if not saved.data_digest:  # saved before digests: nothing to compare --data with; from now on it is recorded
        return folders
    if len(folders) != len(saved.data_digest) or [data_digest(f) for f in folders] != saved.data_digest:
        which = f"--data {', '.join(folders)}" if given else f"the run's data {', '.join(folders)}"
        raise UsageError(
            f"{which}: not the items the run started with (manifest.jsonl or splits.json differ); resume with that "
            "data, or start a new run with --out"
        )
    return folders


def _check_resume_overrides(saved: RunSettings, given: Mapping[str, Any]) -> RunSettings:
    """A resumed run keeps its settings; only ``steps`` (to extend it), the save/sample cadence and the weight
    average's decay (it reads the nets, never trains them) may change, and its data may have moved."""
    folders = _check_resume_data(saved, given.get("data"))
    changed = {"data": folders, "data_digest": saved.data_digest or [data_digest(f) for f in folders]}
    for key, value in given.items():
        if value is None or key == "data":
            continue
        if key in ("steps", "save_every", "sample_every", "average"):
            changed[key] = value
        elif value != getattr(saved, key):
            raise UsageError(
                f"--resume continues the run as it was saved: its {key.replace('_', '-')} is {getattr(saved, key)!r}, "
                f"not {value!r} (start a new run with --out to change it)"
            )
    return dataclasses.replace(saved, **changed)


def run_training(
    spec: Any,
    out: Path,
    *,
    data: list[Path] | None = None,
    steps: int | None = None,
    epochs: float | None = None,
    batch_size: int | None = None,
    size: int | None = None,
    resume: bool = False,
    branch_from: str | os.PathLike | None = None,
    init: str | os.PathLike | None = None,
    device: str = "cpu",
    precision: str | None = None,
    seed: int | None = None,
    options: Any = None,
    flip: bool | None = None,
    save_every: int | None = None,
    sample_every: int | None = None,
    average: float | None = None,
    workers: int = 0,
    keep: int = 3,
    log: Callable[[str], None] | None = None,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> RunResult:
    """Train ``spec`` (a MethodSpec with ``train``) into the run folder ``out``; with ``resume`` continue it.

    ``branch_from`` (with ``resume``): continue that run (its latest checkpoint) or checkpoint folder into the new
    folder ``out`` — nets, optimisers, step and data order as saved — with ``options`` changed (a λ raised half way);
    nets the new options would build otherwise are refused.
    ``init``: a new run whose nets start from other weights — a run or checkpoint folder, an exported weights file,
    or ``"shipped"`` (the method's default weights): the nets it holds are loaded, the others start fresh;
    optimisers and the step count are the new run's own. ``average`` (a decay in (0, 1), 0: none): keep an
    exponential moving average of the exported nets' weights, which the run then exports (may be switched on or
    changed on resume). ``options`` is the method's training-options dataclass
    instance (None: its defaults; with ``init``, the options the source was trained with — :func:`init_options`).
    Nets the options would build otherwise than the source's (another width) are refused. ``log`` receives
    one-line messages (rank 0); ``progress(step, steps, losses)`` is called after every step (rank 0).
    Raises UsageError / FacetoolError with one clear line (wrong data, a checkpoint of another method, NaN …).
    """
    train = spec.train
    if train is None:
        raise UsageError(f"method {spec.name} cannot be trained (it declares no training)")
    log = log or (lambda message: None)
    out = Path(out)
    dist_info, device = _init_distributed(device)

    state: TrainState | None = None
    if resume and init is not None:
        raise UsageError("--init starts a new run from other weights; --resume continues a run: give one of them")
    source = _init_source(spec, init) if init is not None else None
    origin = Path(branch_from) if branch_from is not None else out
    if branch_from is not None and (not resume or latest_checkpoint(out) is not None):
        raise UsageError(f"a branch of {origin} goes into a new --out folder" if resume else "branch_from needs resume")
    if resume:
        if branch_from is None and latest_checkpoint(out) is None:
            raise UsageError(f"--resume {out}: no checkpoint there to resume")
        state = read_state(origin)
        if state.method != spec.name:
            raise UsageError(f"--resume {origin}: it is a run of method {state.method}, not {spec.name}")
        given = dict(
            data=[str(Path(p).resolve()) for p in data] if data else None, size=size, steps=steps,
            batch_size=batch_size, seed=seed, precision=precision, flip=flip, save_every=save_every,
            sample_every=sample_every, average=average,
        )  # fmt: skip
        if epochs is not None:
            raise UsageError("--resume takes --steps (the total to reach), not --epochs")
        settings = _check_resume_overrides(_settings_from(state), given)
        if branch_from is not None:
            settings.branch = f"{state.path} (step {state.step})"
            if options is not None:
                settings.options = dataclasses.asdict(options)
        options = _options_from(train.options, settings.options)
    else:
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} is a file: give a folder for the run")
        if latest_checkpoint(out) is not None:
            raise UsageError(f"--out {out} already holds a run: continue it with --resume, or choose a new --out")
        if not data:
            raise UsageError("--data DIR is required (a folder made by a facetool data command)")
        if options is None and source is not None:
            options = _options_from(train.options, source.options)
        options = options if options is not None else (train.options() if train.options else None)
        if size is not None and size not in spec.sizes:
            # evaluate, export and stylize run a method at its sizes only: a run at another size could not be used
            raise UsageError(f"--size {size}: method {spec.name} runs at {', '.join(map(str, spec.sizes))}")
        settings = RunSettings(
            method=spec.name,
            data=[str(Path(p).resolve()) for p in data],
            size=size or spec.input_size,
            steps=steps or train.default_steps,
            batch_size=batch_size or train.default_batch_size,
            seed=0 if seed is None else seed,
            precision=precision or "fp32",
            options=dataclasses.asdict(options) if options is not None else {},
            flip=True if flip is None else flip,
            save_every=save_every or 500,
            sample_every=sample_every or 250,
            init=source.describe() if source is not None else "",
            average=average or 0.0,
            data_digest=[data_digest(p) for p in data],
        )
    if settings.precision != "fp32" and not settings.precision.startswith(("bf16", "fp16")):
        raise UsageError(f"--precision {settings.precision}: use fp32, bf16 or fp16")
    if settings.precision == "fp16" and not device.startswith("cuda"):
        raise UsageError("--precision fp16 needs a CUDA device (use bf16 or fp32 on this device)")
    if not 0.0 <= settings.average < 1.0:
        raise UsageError(f"--average {settings.average}: give a decay in [0, 1) (0.999; 0: no average)")

    seed_everything(settings.seed + dist_info.rank)
    streams_roles = train.streams(options)
    datasets = open_streams(streams_roles, [Path(p) for p in settings.data], settings.size)
    if epochs is not None:
        if steps is not None:
            raise UsageError("give --steps or --epochs, not both")
        per_step = settings.batch_size * dist_info.world
        settings.steps = max(1, math.ceil(epochs * len(next(iter(datasets.values()))) / per_step))
    for name, dataset in datasets.items():
        if len(dataset) < settings.batch_size * dist_info.world:
            raise UsageError(
                f"--data: stream {name} has {len(dataset)} items, fewer than one step's "
                f"{settings.batch_size * dist_info.world}"
            )

    amp = Amp(settings.precision, device)
    saved = _saved_configs(state)
    generator = torch.Generator().manual_seed(settings.seed * 31 + dist_info.rank + 1)
    setup = TrainSetup(
        options=options, size=settings.size, steps=settings.steps, batch_size=settings.batch_size, device=device,
        seed=settings.seed, amp=amp, wrap=_wrapper(dist_info, device), generator=generator,
        saved_configs=saved if branch_from is None else {},  # a branch builds from its options
    )  # fmt: skip
    trainer = train.build(setup)
    if state is not None:
        hint = ": set the -T options that build it so"
        if branch_from is None:  # a plain resume: a default changed since the run was saved
            hint = ": a default changed since; continue it as a branch that sets it back (--out NEW -T key=value)"
        _check_configs(f"--resume {origin}", trainer.configs, saved, hint)
    if source is not None:
        source.load_into(trainer, log)
    for net in trainer.nets.values():
        net.train()

    start, wall_before, history = 0, 0.0, []
    # the base rates the options built: a branch's -T lr=… must survive the loaded schedulers' (the origin's)
    built_rates = {name: [group["lr"] for group in opt.param_groups] for name, opt in trainer.optimizers.items()}
    if state is not None:
        loaded = load_checkpoint(
            state.path, nets=trainer.nets, optimizers=trainer.optimizers, schedulers=trainer.schedulers,
            scaler=amp.scaler, expect_method=spec.name, generators={"method": generator},
        )  # fmt: skip
        start, wall_before, history = loaded.step, loaded.wall_seconds, list(loaded.history)
        if hasattr(trainer, "load_extra_state"):
            try:
                extra = read_net_weights(loaded.path, [EXTRA])[EXTRA]
            except FacetoolError:
                extra = {}
            trainer.load_extra_state({k: v.to(device) for k, v in extra.items()})
        rates_changed = branch_from is not None and _take_rates(trainer.schedulers, built_rates)
        if rates_changed or state.extra.get("run", {}).get("steps") != settings.steps:
            _restart_schedules(trainer.schedulers.values())
        if start >= settings.steps:  # before any message: a finished run says one line
            raise UsageError(f"--resume {origin}: the run already reached step {start}; give --steps above it")
        log(f"resumed {origin} at step {start} of {settings.steps}" + (f", into {out}" if branch_from else ""))
    averager = _start_average(trainer, settings.average, state, start, log)

    out.mkdir(parents=True, exist_ok=True)
    losses_path = out / "losses.jsonl"
    if dist_info.main:
        branched = branch_from is not None and state is not None and state.path is not None
        # A branch's log starts with its origin's (RUN/checkpoints/step-N -> RUN/losses.jsonl) up to the step.
        _truncate_losses(losses_path, start, state.path.parent.parent / "losses.jsonl" if branched else None)
    sample_batch = _sample_batch(datasets, settings, device) if dist_info.main else None

    orders = {
        name: StepBatches(len(ds), settings.batch_size, settings.seed, i, dist_info.rank, dist_info.world)
        for i, (name, ds) in enumerate(datasets.items())
    }
    step_data = _StepDataset(datasets, orders, start, settings.steps, settings.flip)
    loader = torch.utils.data.DataLoader(
        step_data, batch_size=None, shuffle=False, num_workers=workers,
        generator=torch.Generator().manual_seed(0),  # workers draw their seeds here, not from the global RNG
        worker_init_fn=_ignore_stop_signals, persistent_workers=False, pin_memory=device.startswith("cuda"),
    )  # fmt: skip

    def checkpoint_state(step: int) -> TrainState:
        return TrainState(
            method=spec.name, method_version=str(spec.version), step=step, epoch=_epoch(step, settings, datasets),
            configs=dict(trainer.configs), options=settings.options,
            preprocessing={"template": spec.template, "size": settings.size, "roles": streams_roles},
            history=history, wall_seconds=wall_before + (time.perf_counter() - t0),
            extra={"run": dataclasses.asdict(settings), "export": list(trainer.export)},
        )  # fmt: skip

    def save(step: int) -> Path | None:
        path = None
        if dist_info.main:
            nets: dict[str, Any] = dict(trainer.nets)
            if hasattr(trainer, "extra_state"):
                extra = trainer.extra_state()
                if extra:
                    nets[EXTRA] = extra
            if averager is not None:
                nets[AVERAGE] = averager.state()
            path = save_checkpoint(
                out, checkpoint_state(step), nets, trainer.optimizers, trainer.schedulers, amp.scaler, keep=keep,
                generators={"method": generator},
            )  # fmt: skip
        _barrier(dist_info)
        return path

    t0 = time.perf_counter()
    step, losses = start, {}
    log_file = open(losses_path, "a", encoding="utf-8") if dist_info.main else None  # noqa: SIM115
    stop = _StopRequests(enabled=dist_info.world == 1)
    try:
        stop.__enter__()
        for batch in _prefetch(loader):
            batch = _to_device(batch, device)
            losses = trainer.train_step(batch, step)
            amp.update()
            bad = [k for k, v in losses.items() if not math.isfinite(v)]
            if bad:
                last = latest_checkpoint(out)
                where = f"the last good checkpoint is {last}" if last else "no checkpoint was saved yet"
                raise FacetoolError(
                    f"step {step + 1}: loss {bad[0]} is {losses[bad[0]]}: training stopped; {where} "
                    "(resume with --resume after lowering the learning rate, or try --precision fp32)"
                )
            if averager is not None:
                averager.update()
            step += 1
            record = {"step": step, **{k: round(float(v), 6) for k, v in losses.items()}}
            history.append(record)
            if log_file is not None:
                log_file.write(json.dumps(record) + "\n")
                if step % 50 == 0:
                    log_file.flush()
            if progress is not None and dist_info.main:
                progress(step, settings.steps, losses)
            if sample_batch is not None and (step % settings.sample_every == 0 or step == settings.steps):
                with averager.applied() if averager is not None else contextlib.nullcontext():
                    _write_samples(trainer, sample_batch, out / "samples" / f"step-{step:06d}.png")
            if step % settings.save_every == 0 or step == settings.steps or stop.signal_name is not None:
                if log_file is not None:
                    log_file.flush()  # the log holds every step the checkpoint holds
                    os.fsync(log_file.fileno())
                save(step)
            if stop.signal_name is not None and step < settings.steps:
                raise TrainingStopped(
                    f"{stop.signal_name}: stopped after step {step} of {settings.steps}; checkpoint saved "
                    f"(continue with: facetool train {spec.name} --resume {shlex.quote(str(out))})"
                )
    finally:
        stop.__exit__()
        if log_file is not None:
            log_file.close()

    weights = None
    if dist_info.main:
        _write_loss_curve(losses_path, out / "loss-curve.png")
        weights = export_run_weights(out, spec.name)
        log(f"done: step {step}; weights {weights}")
    _barrier(dist_info)
    return RunResult(out, step, weights, losses, wall_before + time.perf_counter() - t0)


def _prefetch(loader: Any) -> Iterator[Any]:
    yield from loader


def _epoch(step: int, settings: RunSettings, datasets: Mapping[str, Any]) -> int:
    first = next(iter(datasets.values()))
    return step * settings.batch_size // max(1, len(first))


def _start_average(
    trainer: Any, decay: float, state: TrainState | None, start: int, log: Callable[[str], None]
) -> WeightAverage | None:
    """The exported nets' weight average (None when ``decay`` is 0): from the checkpoint when it holds one, else
    begun from the nets as they are now (a new run, or averaging switched on at a resume)."""
    if decay <= 0:
        return None
    averager = WeightAverage({name: trainer.nets[name] for name in trainer.export}, decay)
    saved = {}
    if state is not None:
        try:
            saved = read_net_weights(state.path, [AVERAGE])[AVERAGE]
        except FacetoolError:
            saved = {}
    if saved:
        averager.load(saved)
        log(f"weight average of {', '.join(trainer.export)} resumed ({averager.updates} updates, decay {decay})")
    elif start > 0:
        log(f"weight average of {', '.join(trainer.export)} begins at step {start} (decay {decay})")
    return averager


def _saved_configs(state: TrainState | None) -> dict[str, Any]:
    """A checkpoint's net configs as dataclasses (missing keys take today's defaults); {} for a new run."""
    if state is None:
        return {}
    saved = {}
    for name in state.configs:
        try:
            saved[name] = state.config(name)
        except (FacetoolError, ImportError, AttributeError, TypeError, ValueError):
            continue  # a record this facetool cannot rebuild: _check_configs has nothing to hold it to
    return saved


def _check_configs(where: str, built: Mapping[str, Any], saved: Mapping[str, Any], hint: str = "",
                   grows: bool = False) -> list[str]:  # fmt: skip
    """Refuse nets built otherwise than saved (on resume: a default changed; weights of the same shapes would still
    load, silently); ``where`` starts the message. ``grows`` (``--init``): a field the config class lists in
    ``GROWS`` may go from its unset value (0, empty) to a set one — it adds parameters that start as the identity,
    so the saved net starts the run unchanged. Returns the nets that grew so."""
    grown = []
    for name, config in built.items():
        if name not in saved:
            continue
        now, then = config_record(config)["values"], config_record(saved[name])["values"]
        changed = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
        growing = [k for k in changed if grows and k in getattr(type(config), "GROWS", ()) and not then.get(k)]
        if growing:
            grown.append(name)
            changed = [k for k in changed if k not in growing]
        if changed:
            shown = ", ".join(f"{k} {then.get(k)!r} -> {now.get(k)!r}" for k in changed)
            raise UsageError(f"{where}: net {name} would be built otherwise than it was saved ({shown}){hint}")
    return grown


@dataclass
class _InitSource:
    """Weights a new run starts from (``--init``): where they are and the configs of the nets they hold."""

    path: Path
    label: str
    configs: dict[str, Any]
    options: dict[str, Any]
    step: int | None

    def describe(self) -> str:
        return self.label + (f" (step {self.step})" if self.step is not None else "")

    def load_into(self, trainer: Any, log: Callable[[str], None]) -> None:
        from .checkpoint import load_weights

        held = [name for name in trainer.nets if name in self.configs]
        if not held:
            raise UsageError(f"--init {self.label}: it holds none of this method's nets "
                             f"({', '.join(trainer.nets)}; it has {', '.join(self.configs) or 'none'})")  # fmt: skip
        built = {n: trainer.configs[n] for n in held if n in trainer.configs}
        hint = ": set the -T options that build it so"
        grown = _check_configs(f"--init {self.label}", built, self.configs, hint=hint, grows=True)
        # Nets that grew lack the new parameters in the file: those keep their identity start (shapes still checked).
        load_weights(self.path, {name: trainer.nets[name] for name in held if name not in grown})
        if grown:
            load_weights(self.path, {name: trainer.nets[name] for name in grown}, strict=False)
        fresh = [name for name in trainer.nets if name not in held]
        log(f"nets {', '.join(held)} start from {self.describe()}" + (f"; {', '.join(fresh)} fresh" if fresh else "")
            + (f"; {', '.join(grown)} gained new parameters (starting as the identity)" if grown else ""))  # fmt: skip


def _init_source(spec: Any, init: str | os.PathLike) -> _InitSource:
    """Resolve ``--init``: "shipped", a run / checkpoint folder (its latest checkpoint) or a weights file."""
    from ..methods import resolve_weights
    from ..models.common import net_configs
    from .checkpoint import config_from_record

    if str(init) == "shipped":
        path = resolve_weights(spec, None)
        if path is None:
            raise UsageError(f"--init shipped: method {spec.name} ships no weights yet")
    else:
        path = Path(init).expanduser()
        if not path.exists():
            raise UsageError(f"--init {init}: no such file or folder")
    step, options = None, {}
    if path.is_dir():
        path = latest_checkpoint(path) or path  # a run folder: its newest checkpoint; a checkpoint folder: itself
        state = read_state(path)
        step, options = state.step, dict(state.options)
    else:
        from ..evaluate import weights_metadata

        options = json.loads(weights_metadata(path).get("train_options") or "{}")
    records, trained_by = net_configs(path)
    if trained_by is not None and trained_by != spec.name:
        raise UsageError(f"--init {init}: it holds weights of method {trained_by}, not {spec.name}")
    configs = {}
    for name, record in records.items():
        try:
            configs[name] = config_from_record(record)
        except FacetoolError as err:
            raise FacetoolError(f"--init {init}: net {name}: {err}") from err
    return _InitSource(path=path, label=str(init) if str(init) == "shipped" else str(path), configs=configs,
                       options=options, step=step)  # fmt: skip


def branch_options(origin: str | os.PathLike) -> dict[str, Any]:
    """The training options of the run or checkpoint a branch continues (``-T`` changes what it names)."""
    return dict(read_state(origin).options)


def init_options(spec: Any, init: str | os.PathLike) -> dict[str, Any]:
    """The training options ``--init``'s source was trained with ({} when it records none): a new run started from
    it keeps them, and ``-T`` changes what it names."""
    return _init_source(spec, init).options


def _options_from(cls: type | None, values: Mapping[str, Any]) -> Any:
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def _truncate_losses(path: Path, step: int, source: Path | None = None) -> None:
    """Keep the loss lines up to ``step`` (a resumed run rewrites what came after its checkpoint); with ``source``,
    write ``path`` from that log instead (a branch)."""
    source = source or path
    if not source.exists():
        return
    kept = []
    for line in source.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError):
            break  # a line cut by a crash ends the usable log
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    os.replace(tmp, path)


def _sample_batch(datasets: Mapping[str, Any], settings: RunSettings, device: str) -> dict[str, Any]:
    """A fixed batch for the sample grids: held-out items when the folder has a test split, else the first ones."""
    from ..data.datasets import ManifestDataset

    batch = {}
    for name, dataset in datasets.items():
        source = dataset
        if dataset.items and (dataset.root / "splits.json").is_file():
            try:
                source = ManifestDataset(dataset.root, roles=dataset.roles, split="test", size=settings.size)
            except FacetoolError:
                source = dataset
        items = [source[i] for i in range(min(SAMPLE_ROWS, len(source)))]
        batch[name] = _to_device(source.collate(items), device)
    return batch


def _write_samples(trainer: Any, batch: Mapping[str, Any], path: Path) -> None:
    from ..imageio import write_image
    from .report import image_grid

    modes = {name: net.training for name, net in trainer.nets.items()}
    for net in trainer.nets.values():
        net.eval()
    try:
        with torch.no_grad():
            columns = trainer.samples(batch)
    finally:
        for name, net in trainer.nets.items():
            net.train(modes[name])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, image_grid(columns))


def _write_loss_curve(losses_path: Path, path: Path) -> None:
    from ..imageio import write_image
    from .report import loss_curve

    history = []
    if losses_path.exists():
        for line in losses_path.read_text(encoding="utf-8").splitlines():
            try:
                history.append(json.loads(line))
            except ValueError:
                break
    write_image(path, loss_curve(history))


def export_run_weights(
    run: Path, method: str, path: Path | None = None, dtype: torch.dtype = torch.float16, raw: bool = False
) -> Path:
    """The shippable weights of a run's latest checkpoint (or of a checkpoint folder): its exported nets in
    ``dtype``, configs and settings in the metadata — their weight average when the run kept one, unless ``raw``.
    Default path ``RUN/<method>.safetensors``."""
    state = read_state(run)
    if state.method != method:
        raise UsageError(f"{run} is a run of method {state.method}, not {method}")
    exported = state.extra.get("export") or None
    nets = read_net_weights(run)
    names = exported or [n for n in nets if n not in (EXTRA, AVERAGE)]
    path = path or Path(run) / f"{method}.safetensors"
    settings = state.extra.get("run") or {}
    averaged = split_average(nets[AVERAGE]) if AVERAGE in nets and not raw else {}
    nets |= {name: averaged[name] for name in names if name in averaged}
    metadata = {
        "train_options": json.dumps(state.options),
        "train_settings": json.dumps(
            {k: settings.get(k) for k in ("size", "steps", "batch_size", "seed", "precision", "init") if k in settings}
        ),
    }
    if averaged:
        metadata["averaged"] = json.dumps({"decay": settings.get("average"), "updates": int(nets[AVERAGE][UPDATES])})
    return export_weights(path, {n: nets[n] for n in names}, dtype=dtype, state=state, metadata=metadata)
