"""Generator speed on CPU: achieved GFLOP/s of each U-Net / ResNet preset ÷ fp32 matmul GFLOP/s, in one run.

    python bench/nets_speed.py [--rounds 12] [--size 256]

Nets and a 2048² matmul are timed in turn within each round (interleaved), so machine load hits them alike.
Batch 1, inference mode, torch's default threads; contiguous and channels_last layouts.
"""

from __future__ import annotations

import argparse
import time

import torch

from facetool.nets.layers import conv_flops, count_params
from facetool.nets.resnet import ResnetConfig, ResnetGenerator
from facetool.nets.unet import UNet, UNetConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
