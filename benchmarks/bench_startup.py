"""CLI start-up: wall time of whole ``python -m distsim`` processes, and what they import.

    python benchmarks/bench_startup.py [--runs 7]

Each command runs ``--runs`` times after one warm-up; the minimum and median wall
seconds are printed (quote the median: the machine may be shared), with the number of
modules the process imported and whether it imported pandas, scipy, matplotlib, simpy
or networkx.  Targets (issue 13, on a 2-core machine): ``distsim --help`` under
0.5 s, ``distsim step wordlm`` under 1.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [["--help"], ["--version"], ["step", "wordlm"], ["collective", "allreduce", "--help"]]
HEAVY = ("pandas", "scipy", "matplotlib", "simpy", "networkx")

PROBE = """
import runpy, sys
sys.argv = ["distsim"] + sys.argv[1:]
try:
    runpy.run_module("distsim", run_name="__main__")
except SystemExit:
    pass
finally:
    heavy = [m for m in {heavy!r} if m in sys.modules]
    sys.stderr.write(f"\\nIMPORTS {{len(sys.modules)}} {{','.join(heavy) or '-'}}\\n")
"""


def measure(args: list[str], runs: int) -> dict:
    cmd = [sys.executable, "-m", "distsim", *args]
    walls = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False)
        if i:  # the first run warms the file cache
            walls.append(time.perf_counter() - t0)
    probe = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], cwd=ROOT,
                           capture_output=True, text=True, check=False)
    line = [ln for ln in probe.stderr.splitlines() if ln.startswith("IMPORTS ")][-1].split()
    return {"command": "distsim " + " ".join(args), "min_s": min(walls), "median_s": statistics.median(walls),
            "modules": int(line[1]), "heavy": line[2]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7, help="timed runs per command (default 7)")
    args = p.parse_args(argv)
    print(f"{'command':<40}{'min s':>8}{'median s':>10}{'modules':>9}  heavy imports")
    for command in COMMANDS:
        r = measure(command, args.runs)
        print(f"{r['command']:<40}{r['min_s']:>8.3f}{r['median_s']:>10.3f}{r['modules']:>9}  {r['heavy']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
