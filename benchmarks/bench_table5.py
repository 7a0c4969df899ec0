"""Wall time of ``distsim experiment table5`` (issue 10: under 5 s on the 2-core CI machine).

Run: python benchmarks/bench_table5.py [--repeats N]
Runs the command as a user would (a fresh interpreter each time, from the repository root)
and prints each wall time, the best and the median, against the 5 s target.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 5.0


def wall_time_s() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "distsim", "experiment", "table5"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times = [wall_time_s() for _ in range(args.repeats)]
    for i, t in enumerate(times, 1):
        print(f"run {i}: {t:.2f} s")
    print(f"distsim experiment table5: best {min(times):.2f} s, median {statistics.median(times):.2f} s "
          f"(target < {TARGET_S:g} s)")


if __name__ == "__main__":
    main()
