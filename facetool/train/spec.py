"""What a method gives the training engine: a :class:`TrainSpec` on its ``MethodSpec.train``.

The engine (:mod:`facetool.train.loop`) owns everything every GAN run needs — data order, devices, mixed
precision, DDP, checkpoints, resume, NaN stops, progress, sample grids and loss curves. A method owns only its
nets, optimisers and one training step::

    def build(setup: TrainSetup) -> Trainer: ...            # nets on setup.device, optimisers, schedulers
    streams = lambda options: {"pair": ("photo", "drawing")}
    MethodSpec(..., train=TrainSpec(build=build, streams=streams, options=MyTrainOptions))

A *stream* is a named list of data roles read together from one manifest folder (one item = all its roles);
paired methods have one stream, unpaired ones (CycleGAN) two, each drawn in its own seeded order. The engine
hands ``train_step`` ``batch[stream][role] -> (B, C, S, S)`` tensors in [0, 1] on the device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch
    from torch import nn


class Trainer(Protocol):
    """A method's training state, built by ``TrainSpec.build``.

    Attributes:
        nets: every net of the run by name ("G", "D", "G_AB" …): all are checkpointed.
        optimizers, schedulers: by name; checkpointed. Schedulers are stepped by the method, not the engine.
        configs: net name -> its typed config dataclass (saved in checkpoints and exported weights).
        export: names of the nets that make the shipped weights (``("G",)``).

    Optional: ``extra_state() -> {name: tensor}`` and ``load_extra_state(tensors)`` for state that is not a net
    (an image pool), checkpointed beside the nets so a resumed run continues exactly.
    """

    nets: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, Any]
    configs: dict[str, Any]
    export: tuple[str, ...]

    def train_step(self, batch: Mapping[str, Mapping[str, torch.Tensor]], step: int) -> dict[str, float]:
        """One optimisation step of every net on one batch; returns the named losses as floats (for the log)."""
        ...

    def samples(self, batch: Mapping[str, Mapping[str, torch.Tensor]]) -> list[torch.Tensor]:
        """Columns of the sample grid for this batch, each (B, 1|3, S, S) in [0, 1] (input, output, target …)."""
        ...


@dataclass(frozen=True)
class TrainSpec:
    """How a method trains.

    Attributes:
        build: ``build(setup) -> Trainer``.
        streams: ``streams(options) -> {stream: (role, …)}``: the data each step reads.
        options: dataclass of the method's training settings (``facetool train -O key=value``), or None.
        default_steps, default_batch_size: what ``facetool train`` uses when not told.
    """

    build: Callable[[TrainSetup], Trainer]
    streams: Callable[[Any], dict[str, tuple[str, ...]]]
    options: type | None = None
    default_steps: int = 10000
    default_batch_size: int = 1


@dataclass
class TrainSetup:
    """What ``TrainSpec.build`` receives.

    Attributes:
        options: the method's parsed training options (its dataclass, or None).
        size: training crop side S.
        steps: total optimisation steps of the run (schedules decay over it).
        batch_size: per-process batch.
        device: "cpu", "cuda", "cuda:1" …
        seed: the run's seed (the engine has already seeded torch, numpy and random with it).
        amp: mixed-precision helper: wrap forward passes in ``amp.autocast()`` and call ``amp.backward(loss)``
            then ``amp.step(optimizer)`` (the engine calls ``amp.update()`` once per step).
        wrap: ``wrap(net) -> module`` to use in forward passes: the net itself, or its DDP wrapper under torchrun.
            Checkpoints always hold the bare nets.
        generator: a seeded CPU ``torch.Generator`` for the method's own random draws (an image pool): checkpointed.
        saved_configs: on ``--resume``, the nets' configs as the checkpoint saved them (dataclasses): build the nets
            from these, so a default changed since cannot change a resumed run's nets (the engine refuses a
            resume whose built configs differ from the saved ones). Empty for a new run.
    """

    options: Any
    size: int
    steps: int
    batch_size: int
    device: str
    seed: int
    amp: Amp
    wrap: Callable[[nn.Module], nn.Module] = lambda net: net
    generator: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    saved_configs: dict[str, Any] = field(default_factory=dict)


class Amp:
    """Mixed precision in one object: ``precision`` fp32 (a no-op), bf16 (autocast) or fp16 (autocast + scaler).

    fp16 keeps a ``torch.amp.GradScaler``; several optimisers share it, as torch's AMP recipe for GANs does.
    """

    def __init__(self, precision: str, device: str) -> None:
        import torch

        if precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be fp32, bf16 or fp16, not {precision!r}")
        self.precision = precision
        self.device_type = torch.device(device).type
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        enabled = precision == "fp16"
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=enabled) if enabled else None

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if self.dtype is None:
            yield
            return
        import torch

        with torch.autocast(self.device_type, dtype=self.dtype):
            yield

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    def update(self) -> None:
        if self.scaler is not None:
            self.scaler.update()
