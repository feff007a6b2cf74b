"""Throughput of every data-factory command, measured in one run (items per second / per minute).

    python bench/data_throughput.py [--count 24] [--size 256] [--work DIR]

Makes ``count`` photos (512²), labels them, then times each pair command on the labelled folder (so pair
timings are "given labels", as the issue states its goals) and the cartoon generator. Each command runs in this
process after one warm-up item, so start-up (imports, model loading) is excluded and reported separately.
Goals (issue 3): labelled photos ≥ 60/min; drawing, map, Loomis and cartoon pairs ≥ 10/s at 256².
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from typer.testing import CliRunner

from facetool.cli import build_app


def run(*args: str) -> float:
    start = time.perf_counter()
    result = CliRunner().invoke(build_app(), list(args))
    if result.exit_code != 0:
        raise SystemExit(f"facetool {' '.join(args)} failed: {result.stderr or result.stdout}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="facetool-bench-"))
    photos, n, s = work / "photos", args.count, str(args.size)
    rows = []

    # warm-up: one photo, labels and each pair command once (imports, model loads), in a scratch folder
    warm = work / "warm"
    run("data", "photos", "--count", "1", "--out", str(warm))
    run("data", "labels", str(warm))
    for command in ("drawings", "maps", "loomis"):
        run("data", command, str(warm), "--out", str(warm / command), "--size", s)
    run("data", "cartoons", "--count", "1", "--out", str(warm / "cartoons"), "--size", s)

    rows.append(("photos 512² (generate)", n, run("data", "photos", "--count", str(n), "--out", str(photos))))
    rows.append(("labels (dlib + mesh + hair + mask)", n, run("data", "labels", str(photos))))
    for command in ("drawings", "maps", "loomis"):
        rows.append((f"{command} {s}² given labels", n, run("data", command, str(photos), "--out",
                                                             str(work / command), "--size", s)))  # fmt: skip
    rows.append((f"cartoons {s}²", 4 * n, run("data", "cartoons", "--count", str(4 * n), "--out",
                                               str(work / "cartoons"), "--size", s)))  # fmt: skip
    print(f"{'command':36} {'items':>6} {'seconds':>8} {'per s':>7} {'per min':>8}")
    for name, items, seconds in rows:
        print(f"{name:36} {items:6d} {seconds:8.2f} {items / seconds:7.2f} {60 * items / seconds:8.1f}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
