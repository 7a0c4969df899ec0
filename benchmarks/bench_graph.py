"""Speed of building and analysing workload graphs (issue 2: an 80-step word LM in well under 1 s).

Run: python benchmarks/bench_graph.py
Prints, per configuration, the op count and the wall time of building the graph, of the
minimal-footprint traversals, and of the three timing models.
"""

from __future__ import annotations

import time

from distsim.costmodels import cache_aware_step_s, per_op_step_s, roofline_step_s
from distsim.device import get_device
from distsim.workload import build_workload
from distsim.workloads.wordlm import PRESETS


def bench(name: str, options: dict, repeats: int = 3) -> dict:
    device = get_device("paper-v100")
    best = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        graph = build_workload("wordlm", **options)
        t1 = time.perf_counter()
        graph.footprint_min_bytes()
        t2 = time.perf_counter()
        roofline_step_s(graph, device), per_op_step_s(graph, device), cache_aware_step_s(graph, device)
        t3 = time.perf_counter()
        for key, value in (("build_s", t1 - t0), ("footprint_s", t2 - t1), ("timing_s", t3 - t2), ("total_s", t3 - t0)):
            best[key] = min(best.get(key, float("inf")), value)
    return {"config": name, "ops": len(graph), **best}


def main() -> None:
    print(f"{'config':<16}{'ops':>8}{'build s':>10}{'footprint s':>13}{'timing s':>10}{'total s':>10}")
    for name in ("catamount-base", "table3", "case-study"):
        r = bench(name, PRESETS[name])
        print(f"{r['config']:<16}{r['ops']:>8}{r['build_s']:>10.3f}{r['footprint_s']:>13.3f}{r['timing_s']:>10.3f}{r['total_s']:>10.3f}")


if __name__ == "__main__":
    main()
