"""Training step time of every trainable method at 128² and 256², batch 1 and 8, with fp32 matmul for context.

    python bench/train_step.py [--methods pix2pix,cyclegan] [--sizes 128,256] [--batches 1,8] [--steps 3]
                               [-O key=value ...] [--threads N]

Each method is built through its ``TrainSpec`` exactly as ``facetool train`` builds it (default training options,
fp32, CPU) and fed random [0, 1] tensors shaped per its streams and roles (``ROLE_CHANNELS``), so the numbers are
the method's compute alone, without data loading. One warm-up step, then the median of ``--steps`` steps; a 2048²
fp32 matmul is timed between the steps (interleaved, so machine load hits both alike). images/s counts the
batch's items (one item per stream, e.g. CycleGAN's A and B count once). Each item carries the labels of a real
factory cartoon (``facetool data cartoons``, made once in a temporary folder) for methods that read landmarks from
their labels.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from facetool.data.datasets import ROLE_CHANNELS
from facetool.options import parse_options
from facetool.plugins import get_host
from facetool.train.spec import Amp, TrainSetup


def factory_labels(count: int) -> list[dict]:
    """The labels of ``count`` factory cartoons (points by name at their ``size``, hair, ...)."""
    from facetool.data.cartoons import make_cartoons
    from facetool.data.common import read_manifest

    with tempfile.TemporaryDirectory() as folder:
        make_cartoons(Path(folder), count)
        return [record["labels"] for record in read_manifest(Path(folder))]


def random_batch(streams: dict[str, tuple[str, ...]], batch: int, size: int, generator: torch.Generator,
                 labels: list[dict]) -> dict:  # fmt: skip
    """``batch[stream][role]`` (B, C, S, S) in [0, 1] plus ids, labels and 5 points, as the engine's collate gives
    them."""
    out = {}
    for stream, roles in streams.items():
        item = {
            role: torch.rand((batch, ROLE_CHANNELS.get(role, 3), size, size), generator=generator) for role in roles
        }
        item["id"] = [f"{stream}{i}" for i in range(batch)]
        item["labels"] = [labels[i % len(labels)] for i in range(batch)]
        item["points5"] = size * (0.3 + 0.4 * torch.rand((batch, 5, 2), generator=generator))
        out[stream] = item
    return out


def matmul_seconds(a: torch.Tensor, b: torch.Tensor) -> float:
    start = time.perf_counter()
    a @ b
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", default=None, help="comma list (default: every method with a TrainSpec)")
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("-O", "--option", action="append", default=[], help="training option key=value (all methods)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    registry = get_host().generators
    names = args.methods.split(",") if args.methods else [n for n, s in registry.all().items() if s.train is not None]
    sizes = [int(s) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    labels = factory_labels(max(batches))
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    matmul_seconds(a, b)
    matmul: list[float] = []
    rows = []
    for name in names:
        train = registry.get(name).train
        options = parse_options(train.options, args.option, f"method {name}")
        streams = train.streams(options)
        for size in sizes:
            for batch in batches:
                torch.manual_seed(0)
                generator = torch.Generator().manual_seed(0)
                setup = TrainSetup(options=options, size=size, steps=1000, batch_size=batch, device="cpu", seed=0,
                                   amp=Amp("fp32", "cpu"), generator=torch.Generator().manual_seed(1))  # fmt: skip
                trainer = train.build(setup)
                for net in trainer.nets.values():
                    net.train()
                data = random_batch(streams, batch, size, generator, labels)
                trainer.train_step(data, 0)  # warm-up: allocator, lazy state (Adam moments)
                times = []
                for step in range(1, args.steps + 1):
                    matmul.append(matmul_seconds(a, b))
                    start = time.perf_counter()
                    losses = trainer.train_step(data, step)
                    times.append(time.perf_counter() - start)
                seconds = statistics.median(times)
                params = sum(p.numel() for net in trainer.nets.values() for p in net.parameters())
                rows.append((name, size, batch, params, seconds, batch / seconds, sorted(losses)))
                print(f"  {name} {size}² batch {batch}: {1000 * seconds:.0f} ms/step", flush=True)
    peak = 2 * 2048**3 / statistics.median(matmul) / 1e9
    print(f"\nfp32 matmul 2048²: {peak:.1f} GFLOP/s (median of {len(matmul)}, interleaved); "
          f"threads {torch.get_num_threads()}; {args.steps} timed steps each, median")  # fmt: skip
    print("{:18} {:>5} {:>5} {:>9} {:>10} {:>9}  {}".format("method", "size", "batch", "params M", "ms/step",
                                                            "images/s", "losses"))  # fmt: skip
    for name, size, batch, params, seconds, rate, losses in rows:
        print(f"{name:18} {size:5} {batch:5} {params / 1e6:9.2f} {1000 * seconds:10.0f} {rate:9.2f}  "
              f"{','.join(losses)}")  # fmt: skip


if __name__ == "__main__":
    main()
