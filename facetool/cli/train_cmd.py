"""``facetool train``."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ..errors import UsageError
from .common import err, out

HELP = """Train a method on a data folder (made by a facetool data command, or imported with facetool data import).

The run folder gets crash-safe checkpoints, sample grids, losses.jsonl, loss-curve.png and, at the end,
RUN/METHOD.safetensors: the weights to use with --weights. --resume continues a stopped run exactly where its
last checkpoint was (same schedule, data order and random draws). Ctrl-C or SIGTERM finishes the step, saves a
checkpoint and exits with 130 (a second Ctrl-C stops at once). Several GPUs: torchrun --nproc-per-node N -m
facetool train … (each process takes its share of every batch).

[b]Examples[/b]

  facetool train loomis-pix2pix --data data/loomis --out runs/loomis --steps 20000

  facetool train pix2pix --data data/drawings -O source=photo -O target=drawing --out runs/p2p --epochs 5

  facetool train cyclegan --data data/photos --data data/cartoons -O a=photo -O b=cartoon --out runs/cg

  facetool train loomis-pix2pix --resume runs/loomis --steps 40000   (continue, and extend to 40000 steps)

  facetool train wgan-landmark --resume runs/l100/checkpoints/step-002500 --out runs/l300 -T lambda-landmark=300
  (branch: continue that checkpoint in a new folder, one option changed)

  facetool train loomis-pix2pix --data data/my-loomis --out runs/mine --init shipped --steps 500
  (a new run from the shipped weights: fine-tune them on your data)

  facetool train wgan-landmark --data data/cartoons --out runs/w --average 0.999
  (export the generator's weights averaged over the last steps, not the last step's)
"""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP, no_args_is_help=True)
    def train(
        method: str = typer.Argument(..., help="Method to train (facetool methods)."),
        data: list[Path] = typer.Option([], "--data", help="Data folder (one, or one per stream of the method)."),
        out_dir: Path | None = typer.Option(None, "--out", "-o", help="Run folder to create."),
        resume: Path | None = typer.Option(
            None, "--resume", help="Run folder to continue (with --out NEW: continue it there, -T changed)."
        ),
        init: str | None = typer.Option(
            None,
            "--init",
            help="A new run's nets start from these weights: a run, a checkpoint, a weights file or "
            "'shipped' (its training settings too; -T changes them).",
        ),
        steps: int | None = typer.Option(None, "--steps", min=1, help="Total optimisation steps."),
        epochs: float | None = typer.Option(None, "--epochs", min=0.0, help="Or: passes over the data."),
        batch_size: int | None = typer.Option(None, "--batch-size", "-b", min=1, help="Items per step (per process)."),
        size: int | None = typer.Option(None, "--size", min=16, help="Training crop size (default: the method's)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
        precision: str | None = typer.Option(
            None, "--precision", help="fp32 (default), bf16 or fp16 (fp16/bf16: autocast on GPU)."
        ),
        seed: int | None = typer.Option(None, "--seed", help="Seed of the run (default 0)."),
        option: list[str] = typer.Option(
            [], "--option", "-O", "-T", help="Training setting key=value (facetool methods)."
        ),
        no_flip: bool = typer.Option(False, "--no-flip", help="Do not mirror items at random."),
        save_every: int | None = typer.Option(None, "--save-every", min=1, help="Checkpoint every N steps (500)."),
        sample_every: int | None = typer.Option(None, "--sample-every", min=1, help="Sample grid every N steps (250)."),
        workers: int = typer.Option(0, "--workers", min=0, help="Data-loading processes (0: in the main process)."),
        average: float | None = typer.Option(
            None,
            "--average",
            help="Keep an exponential moving average of the exported nets' weights with this decay (0.999) and "
            "export it: smoother GAN samples; on --resume it may be switched on or changed. 0: none (default).",
        ),
    ) -> None:
        from ..device import resolve_device
        from ..options import parse_options
        from ..plugins import get_host
        from ..train.loop import branch_options, init_options, run_training

        spec = get_host().generators.get(method)
        if spec.train is None:
            raise UsageError(f"method {method} cannot be trained (it declares no training)")
        if epochs is not None and not epochs > 0:
            raise UsageError(f"--epochs {epochs}: give more than 0 passes")
        if out_dir is None and resume is None:
            raise UsageError("give --out RUN for a new run, or --resume RUN to continue one")
        if precision is not None and precision not in ("fp32", "bf16", "fp16"):
            raise UsageError(f"--precision {precision}: use fp32, bf16 or fp16")
        branch = resume is not None and out_dir is not None  # continue RUN into a new folder, -T changed
        if resume is not None and option and not branch:
            raise UsageError("--resume keeps the run's training settings: drop -T (or branch: add --out NEW)")
        if resume is not None and init is not None:
            raise UsageError("--init starts a new run from other weights; --resume continues a run: give one of them")
        base = init_options(spec, init) if init is not None else (branch_options(resume) if branch else None)
        what = f"training of {method}"
        options = parse_options(spec.train.options, option, what, base) if not resume or branch else None
        dev = resolve_device(device)
        reporter = _Reporter(method)
        try:
            result = run_training(
                spec, out_dir or resume, data=list(data) or None, steps=steps, epochs=epochs, batch_size=batch_size,
                size=size, resume=resume is not None, branch_from=resume if branch else None, init=init, device=dev,
                precision=precision, seed=seed,
                options=options, flip=False if no_flip else None, save_every=save_every, sample_every=sample_every,
                workers=workers, average=average,
                log=reporter.log, progress=reporter.update,
            )  # fmt: skip
        finally:
            reporter.close()
        out.print(f"{result.run_dir}: step {result.step}, weights {result.weights}", highlight=False)


class _Reporter:
    """A rich progress line with the losses on a terminal; a plain line every 30 s otherwise (logs, CI)."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.bar = None
        self.task = None
        self.last_line = 0.0
        self.t0 = time.perf_counter()
        self.first_step: int | None = None

    def log(self, message: str) -> None:
        err.print(message, highlight=False)

    def update(self, step: int, steps: int, losses: dict[str, float]) -> None:
        text = "  ".join(f"{k} {v:.4g}" for k, v in losses.items())
        if self.first_step is None:
            self.first_step, self.t0 = step - 1, time.perf_counter()
        if err.is_terminal:
            if self.bar is None:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

                self.bar = Progress(
                    TextColumn(f"train {self.method}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    TextColumn("{task.fields[losses]}"), console=err, transient=False,
                )  # fmt: skip
                self.bar.start()
                self.task = self.bar.add_task("train", total=steps, completed=step - 1, losses="")
            self.bar.update(self.task, completed=step, losses=text)
            return
        now = time.perf_counter()
        if now - self.last_line >= 30 or step == steps:
            self.last_line = now
            done = step - self.first_step
            rate = f"  {done / (now - self.t0):.2f} steps/s" if done > 1 else ""
            err.print(f"step {step}/{steps}{rate}  {text}", highlight=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
