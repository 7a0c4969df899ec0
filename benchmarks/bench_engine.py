"""Speed of the simulator itself: events per second and wall time.

    python benchmarks/bench_engine.py [--quick] [--json]

1. Ring all-reduce of 1 GB over a ring of N = 8 ... 65,536 accelerators at 56 GB/s:
   symmetric mode for every N, exact (per-node) mode up to N = 256.
2. One data-parallel training step of a word-LM-like graph on one device
   (``distsim.workload.build_workload("wordlm")`` when that builder exists,
   else a synthetic unrolled LSTM graph built here), and the same step on
   8 workers with one ring all-reduce per gradient overlapping the backward pass
   (``Plan(data_parallel=8, overlap=True)`` through the one simulation path).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distsim.errors import ConfigError  # noqa: E402
from distsim.graph import GraphBuilder, OpKind, Phase, TensorKind  # noqa: E402
from distsim.device import get_device  # noqa: E402
from distsim.evaluate import simulate_step  # noqa: E402
from distsim.hardware import Hardware  # noqa: E402
from distsim.plan import Plan  # noqa: E402
from distsim.simulator import simulate_collective  # noqa: E402
from distsim.topology import build_topology  # noqa: E402


def synthetic_word_lm(layers: int = 2, seq_len: int = 20, batch: int = 128, hidden: int = 2048, vocab: int = 10000):
    """An unrolled LSTM word LM: embedding, ``layers`` LSTM layers over ``seq_len`` steps, softmax output."""
    b = GraphBuilder("synthetic_wordlm")
    w = {}
    b.layer = "embedding"
    w["embedding"] = b.tensor("emb.w", vocab * hidden, TensorKind.WEIGHT)
    for i in range(layers):
        b.layer = f"lstm{i}"
        w[b.layer] = b.tensor(f"lstm{i}.w", 8 * hidden * hidden, TensorKind.WEIGHT)
    b.layer = "output"
    w["output"] = b.tensor("out.w", hidden * vocab, TensorKind.WEIGHT)
    b.layer = "data"
    tokens = b.tensor("tokens", batch * seq_len, TensorKind.INPUT)
    b.phase = Phase.FORWARD
    b.layer = "embedding"
    x = [b.op(f"emb.t{t}", OpKind.EMBEDDING, [tokens, w["embedding"]], [(f"x0.t{t}", batch * hidden)],
              nbytes=batch * hidden * 8)[0] for t in range(seq_len)]
    saved = []
    for i in range(layers):
        b.layer = f"lstm{i}"
        h = None
        outs = []
        for t in range(seq_len):
            gates = b.matmul(f"lstm{i}.t{t}.gates", x[t], w[b.layer], f"g{i}.t{t}", batch, 4 * hidden, 2 * hidden)
            h = b.elementwise(f"lstm{i}.t{t}.cell", [gates] + ([h] if h else []), f"h{i}.t{t}", batch * hidden,
                              flops_per_element=10)
            outs.append(h)
        saved.append((b.layer, x))
        x = outs
    b.layer = "output"
    logits = [b.matmul(f"out.t{t}", x[t], w["output"], f"logit.t{t}", batch, vocab, hidden) for t in range(seq_len)]
    loss = [b.elementwise(f"softmax.t{t}", [logits[t]], f"dl.t{t}", batch * vocab, flops_per_element=5,
                          kind=OpKind.SOFTMAX) for t in range(seq_len)]
    b.phase = Phase.BACKWARD
    grads = [b.matmul(f"out.bwd.t{t}", loss[t], w["output"], f"dh.out.t{t}", batch, hidden, vocab)
             for t in range(seq_len)]
    b.op("out.bwd_w", OpKind.MATMUL, loss + x, [("out.dw", hidden * vocab)], flops=2 * batch * seq_len * hidden * vocab,
         out_kind=TensorKind.GRADIENT)
    for layer, inputs in reversed(saved):
        b.layer = layer
        nxt = []
        for t in reversed(range(seq_len)):
            nxt.append(b.matmul(f"{layer}.bwd.t{t}", grads[t], w[layer], f"d{layer}.t{t}", batch, hidden, 4 * hidden))
        grads = list(reversed(nxt))
        b.op(f"{layer}.bwd_w", OpKind.MATMUL, grads + inputs, [(f"{layer}.dw", 8 * hidden * hidden)],
             flops=2 * batch * seq_len * 8 * hidden * hidden, out_kind=TensorKind.GRADIENT)
    b.layer = "embedding"
    b.op("emb.bwd_w", OpKind.EMBEDDING, grads + [tokens], [("emb.dw", vocab * hidden)], out_kind=TensorKind.GRADIENT)
    b.phase = Phase.UPDATE
    for layer, dw in [("embedding", "emb.dw"), *((f"lstm{i}", f"lstm{i}.dw") for i in range(layers)),
                      ("output", "out.dw")]:
        b.layer = layer
        b.op(f"{layer}.update", OpKind.OPTIMIZER, [w[layer], dw], [], flops=2 * b.elements(dw),
             nbytes=3 * b.size(dw))  # in place: reads weight and gradient, writes the weight
    return b.build()


def word_lm_graph():
    try:
        from distsim.workload import build_workload
        return build_workload("wordlm"), "wordlm"
    except (ConfigError, ImportError, ModuleNotFoundError):
        return synthetic_word_lm(), "synthetic_wordlm"


def bench_allreduce(sizes, exact_limit):
    rows = []
    for n in sizes:
        for mode in ("symmetric", "exact"):
            if mode == "exact" and n > exact_limit:
                continue
            t0 = time.perf_counter()
            topo = build_topology("ring", n)
            r = simulate_collective("allreduce", 1e9, topo, mode=mode)
            wall = time.perf_counter() - t0
            rows.append({"bench": "ring_allreduce_1GB", "nodes": n, "mode": mode, "sim_time_s": r.step_time_s,
                         "events": r.events, "transfers": int(r.transfers["count"].sum()), "wall_s": wall,
                         "sim_wall_s": r.wall_s, "events_per_s": r.events / r.wall_s})
    return rows


def bench_step(workers_list):
    graph, name = word_lm_graph()
    rows = []
    for workers in workers_list:
        t0 = time.perf_counter()
        hardware = Hardware(device=get_device("paper-v100"), cost_model="per_op",
                            topology=build_topology("ring", workers) if workers > 1 else None)
        r = simulate_step(graph, Plan(data_parallel=workers, overlap=True), hardware)
        wall = time.perf_counter() - t0
        rows.append({"bench": f"dp_step_{name}", "nodes": workers, "mode": "symmetric", "ops": len(graph.ops),
                     "sim_time_s": r.step_time_s, "events": r.events, "wall_s": wall, "sim_wall_s": r.wall_s,
                     "events_per_s": r.events / r.wall_s})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes only")
    p.add_argument("--json", action="store_true", help="print JSON rows")
    args = p.parse_args(argv)
    sizes = [8, 64, 512] if args.quick else [8, 64, 256, 512, 4096, 32768, 65536]
    rows = bench_allreduce(sizes, exact_limit=64 if args.quick else 256) + bench_step([1, 8])
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'bench':<28}{'nodes':>7} {'mode':<10}{'sim time s':>12}{'events':>10}{'events/s':>12}{'wall s':>9}")
        for r in rows:
            print(f"{r['bench']:<28}{r['nodes']:>7} {r['mode']:<10}{r['sim_time_s']:>12.6g}{r['events']:>10}"
                  f"{r['events_per_s']:>12.3g}{r['wall_s']:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
