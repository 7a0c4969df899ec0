"""Speed of building and analysing the gpt graphs (issue 12: a 128-layer model in well under 1-2 s).

Run: python benchmarks/bench_gpt_graph.py
Prints, per Megatron-LM Table 1 preset, the op count and the best-of-3 wall time of building
the graph, of the minimal-footprint traversals and of the three timing models on an A100.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distsim.costmodels import cache_aware_step_s, per_op_step_s, roofline_step_s  # noqa: E402
from distsim.device import get_device  # noqa: E402
from distsim.workload import configure_workload  # noqa: E402
from distsim.workloads.gpt import PRESETS  # noqa: E402


def bench(preset: str, repeats: int = 3) -> dict:
    device = get_device("a100-sxm4-80gb")
    best: dict = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        graph = configure_workload("gpt", preset=preset)
        t1 = time.perf_counter()
        graph.footprint_min_bytes()
        t2 = time.perf_counter()
        roofline_step_s(graph, device), per_op_step_s(graph, device), cache_aware_step_s(graph, device)
        t3 = time.perf_counter()
        for key, value in (("build_s", t1 - t0), ("footprint_s", t2 - t1), ("timing_s", t3 - t2)):
            best[key] = min(best.get(key, float("inf")), value)
    return {"preset": preset, "layers": PRESETS[preset]["layers"], "ops": len(graph), **best}


def main() -> None:
    print(f"{'preset':<18}{'layers':>7}{'ops':>8}{'build s':>10}{'footprint s':>13}{'timing s':>10}")
    for preset in PRESETS:
        r = bench(preset)
        print(f"{r['preset']:<18}{r['layers']:>7}{r['ops']:>8}{r['build_s']:>10.3f}{r['footprint_s']:>13.3f}"
              f"{r['timing_s']:>10.3f}")


if __name__ == "__main__":
    main()
