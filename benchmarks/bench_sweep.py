"""Sweep throughput (issue 13): plans evaluated per second in-process and on local Dask clusters of 1 and 2 workers.

Run: python benchmarks/bench_sweep.py [--plans N]
A list of plans of the default word LM (every plan simulated, no store), as ``distsim run`` evaluates a
``plans:`` list.  ``1-plan s``: a sweep of one plan (for a Dask runner mostly the cluster's start-up);
``sweep s``: the whole list, start-up included; ``plans/s``: the list without the one-plan sweep's time.
Prints figures only.
"""

from __future__ import annotations

import argparse
import itertools
import time

from distsim.hardware import paper_hardware
from distsim.plan import Plan
from distsim.sweep import Runner, evaluate_plans
from distsim.workload import build_workload


def plans(count: int) -> list[Plan]:
    layers = ["embedding", "lstm0", "lstm1", "output", "step"]
    stages = [None, (tuple(layers[:2]), tuple(layers[2:])), tuple((layer,) for layer in layers)]
    grid = itertools.product((1, 2, 4, 8, 16, 32, 64, 128), stages, (False, True), ("ring", "tree"))
    return [Plan(data_parallel=d, stages=s, fuse_accumulation=f, allreduce=a) for d, s, f, a in grid][:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=48)
    args = parser.parse_args()
    graph = build_workload("wordlm")  # the default word LM: a few tenths of a second per plan
    hardware = paper_hardware()
    grid = plans(args.plans)
    print(f"{'runner':<14}{'plans':>7}{'1-plan s':>10}{'sweep s':>9}{'plans/s':>9}", flush=True)
    reference = None
    for label, runner in (("in-process", Runner(progress=False)), ("dask 1 worker", Runner(workers=1, progress=False)),
                          ("dask 2 workers", Runner(workers=2, progress=False))):
        t0 = time.perf_counter()
        evaluate_plans(graph, grid[:1], hardware, "billion-word", runner=runner)
        t1 = time.perf_counter()
        out = evaluate_plans(graph, grid, hardware, "billion-word", runner=runner)
        t2 = time.perf_counter()
        reference = reference or out
        same = "" if out == reference else "  (results differ!)"
        rate = (len(grid) - 1) / max(1e-9, (t2 - t1) - (t1 - t0))
        print(f"{label:<14}{len(grid):>7}{t1 - t0:>10.2f}{t2 - t1:>9.2f}{rate:>9.2f}{same}", flush=True)


if __name__ == "__main__":
    main()
