"""Cold start of the CLI: `facetool --help` must stay well under a second (torch is imported lazily)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def median_seconds(cmd: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    base = median_seconds([sys.executable, "-c", "pass"])
    torch = median_seconds([sys.executable, "-c", "import torch"], runs=3)
    rows = [
        ("python -c pass", base),
        ("python -c 'import torch'", torch),
        ("facetool --version", median_seconds([sys.executable, "-m", "facetool", "--version"])),
        ("facetool --help", median_seconds([sys.executable, "-m", "facetool", "--help"])),
        ("facetool plugins --json", median_seconds([sys.executable, "-m", "facetool", "plugins", "--json"])),
    ]
    print(f"{'command':28} {'median s':>9} {'÷ python':>9}")
    for name, seconds in rows:
        print(f"{name:28} {seconds:9.3f} {seconds / base:9.1f}")


if __name__ == "__main__":
    main()
