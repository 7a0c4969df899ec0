"""Speed of a layer-granular simulation: the largest Megatron-LM Table 1 row (1T parameters, 3,072 GPUs).

    python benchmarks/bench_megatron.py [--row MODEL]

Prints the wall time of building the one-micro-batch graph, timing its ops, lowering the plan (tensor
parallel 8, pipeline 64, data parallel 6, 512 micro-batches, 1F1B, full recomputation), the memory check
and the simulation, with the number of simulator tasks and events.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distsim.costmodels import op_times_s  # noqa: E402
from distsim.evaluate import _simulate  # noqa: E402
from distsim.experiments import megatron_table1 as mt  # noqa: E402
from distsim.lower import lower  # noqa: E402
from distsim.memory import memory_check  # noqa: E402
from distsim.workload import build_workload  # noqa: E402
from distsim.workloads.gpt import PRESETS  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", default="1008b", help="Table 1 model, e.g. 1008b, 529.6b, 145.6b")
    args = parser.parse_args(argv)
    row = next(r for r in mt.ROWS if r[0] == f"megatron-{args.row}")
    preset, tp, pp, gpus, batch, per_virtual, measured = row
    hw = mt.hardware()
    times = {}
    t0 = time.perf_counter()
    graph = build_workload("gpt", **PRESETS[preset])
    times["build graph"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    durations = op_times_s(graph, hw.device, hw.cost_model)
    times["op times"] = time.perf_counter() - t0
    plan = mt.plan_for(tp, pp, gpus, batch, PRESETS[preset]["micro_batch"], per_virtual)
    t0 = time.perf_counter()
    lowering = lower(graph, plan.resolve(graph))
    times["lower"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    memory = memory_check(lowering, hw.capacity_bytes)
    times["memory check"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = _simulate(lowering, hw, durations)
    times["simulate"] = time.perf_counter() - t0
    print(f"{preset}: {plan.describe()} on {gpus} GPUs, {len(graph.ops)} ops per micro-batch")
    for name, s in times.items():
        print(f"  {name:14s} {s:8.2f} s")
    print(f"  total          {sum(times.values()):8.2f} s   ({len(result.ops)} task rows, {result.events} events)")
    print(f"  iteration {result.step_time_s:.2f} s, max memory {memory['total_gib'].max():.1f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
