"""Generator speed on CPU: achieved GFLOP/s ÷ fp32 matmul GFLOP/s, in one run.

    python bench/nets_speed.py [--rounds 12] [--size 256]                      # the U-Net / ResNet presets
    python bench/nets_speed.py --methods [--rounds 7] [--compile-timeout 300]  # every method's inference net

Nets and a 2048² matmul are timed in turn within each round (interleaved), so machine load hits them alike.
Batch 1, inference mode, torch's default threads.

Presets: contiguous and channels_last layouts (best of the rounds). Methods: each registered method's inference
generator (``MethodSpec.network`` with its weights; a method without weights on disk is timed on the generator its
``TrainSpec`` builds, same architecture) as fp32 contiguous, fp32 channels_last, bf16 autocast and torch.compile
(inductor); medians of the rounds. bf16 is timed once first (stopped at 5× fp32's time) and dropped from the rounds
when that slow (it is, on CPUs without AMX / avx512_bf16); torch.compile gets ``--compile-timeout`` s to compile.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import time

import torch

from facetool.nets.layers import conv_flops, count_params
from facetool.nets.resnet import ResnetConfig, ResnetGenerator
from facetool.nets.unet import UNet, UNetConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--methods", action="store_true", help="time every registered method's inference net")
    parser.add_argument("--compile-timeout", type=int, default=300, help="seconds; 0: do not try torch.compile")
    args = parser.parse_args()
    if args.methods:
        bench_methods(args.rounds, args.size, args.compile_timeout)
        return
    torch.manual_seed(0)
    shape = (1, 3, args.size, args.size)
    nets = {
        "unet pix2pix_256": lambda: UNet(UNetConfig.pix2pix_256()),
        "unet compact (b32 m128)": lambda: UNet(UNetConfig.compact()),
        "unet compact m192": lambda: UNet(UNetConfig.compact(max_channels=192)),
        "resnet-9 b32": lambda: ResnetGenerator(ResnetConfig(base=32)),
    }
    runs = {}
    for name, build in nets.items():
        net = build().eval()
        info = (count_params(net), conv_flops(net, shape))
        for layout, fmt in (("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last)):
            runs[(name, layout)] = (build().eval().to(memory_format=fmt), torch.randn(shape).to(memory_format=fmt),
                                    info, [])  # fmt: skip
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    matmul = []
    with torch.inference_mode():
        for net, x, _, _ in runs.values():
            net(x)  # warm-up
        for _ in range(args.rounds):
            start = time.perf_counter()
            a @ b
            matmul.append(time.perf_counter() - start)
            for net, x, _, times in runs.values():
                start = time.perf_counter()
                net(x)
                times.append(time.perf_counter() - start)
    peak = 2 * 2048**3 / min(matmul) / 1e9
    print(f"fp32 matmul 2048²: {peak:.1f} GFLOP/s (best of {args.rounds}); threads {torch.get_num_threads()}")
    header = ("net", "layout", "params M", "MB fp16", "GFLOP", "ms", "GFLOP/s", "÷ matmul")
    print("{:26} {:14} {:>8} {:>8} {:>6} {:>7} {:>8} {:>8}".format(*header))
    for (name, layout), (_, _, (params, flops), times) in runs.items():
        seconds = min(times)
        rate = flops / 1e9 / seconds
        print(f"{name:26} {layout:14} {params / 1e6:8.2f} {2 * params / 1e6:8.1f} {flops / 1e9:6.2f} "
              f"{1000 * seconds:7.1f} {rate:8.1f} {rate / peak:8.2f}")  # fmt: skip


class _Stylizer(torch.nn.Module):
    """A bare generator as ``MethodSpec.network`` gives it: [0, 1] in, [0, 1] out."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.net(x * 2 - 1) + 1) / 2


def method_network(spec, size: int) -> tuple[torch.nn.Module, str]:
    """The method's inference net and where it came from."""
    from facetool.errors import FacetoolError
    from facetool.methods import resolve_weights
    from facetool.options import parse_options

    options = parse_options(spec.options, [], spec.name)
    try:
        return spec.network(options, resolve_weights(spec)).eval(), "network (shipped weights)"
    except FacetoolError:
        if spec.train is None:
            raise
    from facetool.train.spec import Amp, TrainSetup

    train_options = parse_options(spec.train.options, [], spec.name)
    setup = TrainSetup(options=train_options, size=size, steps=1, batch_size=1, device="cpu", seed=0,
                       amp=Amp("fp32", "cpu"), generator=torch.Generator().manual_seed(0))  # fmt: skip
    trainer = spec.train.build(setup)
    name = trainer.export[0]
    return _Stylizer(trainer.nets[name]).eval(), f"TrainSpec {name} (no weights on disk)"


class _Timeout(Exception):
    pass


def _time_once(fn, x: torch.Tensor, limit: float) -> float | None:
    """Seconds of one ``fn(x)``, or None when it runs past ``limit`` seconds (stopped by SIGALRM)."""

    def alarm(signum, frame):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    start = time.perf_counter()
    try:
        fn(x)
        return time.perf_counter() - start
    except _Timeout:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _compile(net: torch.nn.Module, x: torch.Tensor, seconds: int) -> tuple[object | None, str]:
    """torch.compile ``net`` and run it once within ``seconds`` (SIGALRM): (compiled or None, what happened)."""

    def alarm(signum, frame):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    start = time.perf_counter()
    try:
        compiled = torch.compile(net)
        with torch.inference_mode():
            compiled(x)
        return compiled, f"compiled in {time.perf_counter() - start:.0f} s"
    except _Timeout:
        return None, f"compile over {seconds} s: skipped"
    except Exception as err:
        return None, f"compile failed: {type(err).__name__}: {str(err).splitlines()[0][:80]}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def bench_methods(rounds: int, size: int, compile_timeout: int) -> None:
    from facetool.plugins import get_host

    torch.manual_seed(0)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    matmul = []
    notes = []
    variants = {}  # (method, variant) -> (callable, input, flops, times)
    for name, spec in get_host().generators.all().items():
        if spec.network is None or spec.task != "stylize":
            continue
        net, source = method_network(spec, size)
        shape = (1, 3, size, size)
        flops = conv_flops(net, shape)
        x = torch.rand(shape)
        xl = x.contiguous(memory_format=torch.channels_last)
        net_cl = method_network(spec, size)[0].to(memory_format=torch.channels_last)
        net_cl.load_state_dict(net.state_dict())

        def bf16(x, net=net):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(x)

        variants[(name, "fp32")] = (net, x, flops, [])
        variants[(name, "fp32 channels_last")] = (net_cl, xl, flops, [])
        with torch.inference_mode():
            net(x)
            start = time.perf_counter()
            net(x)
            fp32_once = time.perf_counter() - start
            bf16_once = _time_once(bf16, x, limit=5 * fp32_once)
        if bf16_once is None:
            notes.append(f"{name}: bf16 autocast over 5x fp32's time on one run: stopped and dropped")
        else:
            variants[(name, "bf16 autocast")] = (bf16, x, flops, [])
        compiled, what = _compile(net, x, compile_timeout) if compile_timeout > 0 else (None, "not tried")
        notes.append(f"{name}: torch.compile: {what}")
        if compiled is not None:
            variants[(name, "torch.compile")] = (compiled, x, flops, [])
        print(*notes[-2:], sep="\n", flush=True)
        notes.append(f"{name}: net = {source}, {count_params(net) / 1e6:.2f} M params, {flops / 1e9:.2f} GFLOP")
    with torch.inference_mode():
        for fn, x, _, _ in variants.values():
            fn(x)  # warm-up
        for _ in range(rounds):
            start = time.perf_counter()
            a @ b
            matmul.append(time.perf_counter() - start)
            for fn, x, _, times in variants.values():
                start = time.perf_counter()
                fn(x)
                times.append(time.perf_counter() - start)
    peak = 2 * 2048**3 / statistics.median(matmul) / 1e9
    print(f"fp32 matmul 2048²: {peak:.1f} GFLOP/s (median of {rounds}, interleaved); threads {torch.get_num_threads()};"
          f" {size}², batch 1, medians")  # fmt: skip
    for note in notes:
        print(f"  {note}")
    print("{:12} {:20} {:>8} {:>8} {:>8} {:>8}".format("method", "variant", "ms", "GFLOP/s", "÷ matmul", "vs fp32"))
    for (name, variant), (_, _, flops, times) in variants.items():
        seconds = statistics.median(times)
        base = statistics.median(variants[(name, "fp32")][3])
        rate = flops / 1e9 / seconds
        print(f"{name:12} {variant:20} {1000 * seconds:8.1f} {rate:8.1f} {rate / peak:8.2f} {base / seconds:7.2f}x")


if __name__ == "__main__":
    main()
