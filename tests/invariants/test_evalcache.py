"""The per-graph caches of distsim.evalcache give exactly what the uncached functions give."""

from __future__ import annotations

import itertools

import pytest

from distsim import evalcache
from distsim.evaluate import evaluate_plan
from distsim.graph import greedy_order
from distsim.hardware import paper_hardware
from distsim.lower import lower
from distsim.memory import gradient_tensors, stage_peak
from distsim.plan import Plan
from distsim.search import SearchOptions, candidate_plans
from distsim.workload import build_workload


@pytest.fixture(scope="module")
def tiny():
    return build_workload("wordlm", hidden=64, vocab=1000, seq_len=4, batch=8)


def _plans(graph):
    return candidate_plans(graph, data_parallel=(1, 4), options=SearchOptions(max_stages=3, progress=False))


def test_stage_trace_replays_stage_peak_bit_for_bit(tiny):
    """Every stage of every plan of a small grid, at balanced and at odd row fractions."""
    checked = 0
    for plan in _plans(tiny)[::3]:
        ev = evaluate_plan(tiny, plan, paper_hardware(memory_bytes=8e5), simulate=False)
        graph = ev.lowering.graph
        lowerings = [ev.lowering]
        if plan.shard_stages:
            odd = tuple(x / sum(range(1, len(plan.shard_stages) + 1)) for x in range(1, len(plan.shard_stages) + 1))
            lowerings.append(lower(graph, ev.resolved.with_fractions(odd)))
        for lowering, s in itertools.product(lowerings, range(ev.lowering.stages)):
            ops = list(lowering.stage_ops[s])
            scale = lowering.scale(s)
            for kind, order in (("build", ops), ("greedy", greedy_order(graph, ops))):
                assert evalcache.stage_trace(graph, tuple(ops), kind).peak(scale) == \
                    stage_peak(graph, ops, scale, order, gradient_tensors(graph))
                checked += 1
    assert checked > 50


def test_cached_values_are_the_computed_ones(tiny):
    evalcache.clear(tiny)
    ops = tuple(range(0, len(tiny.ops), 2))
    assert evalcache.greedy_order(tiny, ops) == greedy_order(tiny, list(ops))
    assert evalcache.greedy_order(tiny, ops) is evalcache.greedy_order(tiny, ops)
    assert evalcache.gradient_tensors(tiny) == gradient_tensors(tiny)
    first = evaluate_plan(tiny, Plan(data_parallel=2, fuse_accumulation=True), paper_hardware())
    evalcache.clear()
    again = evaluate_plan(tiny, Plan(data_parallel=2, fuse_accumulation=True), paper_hardware())
    assert first.summary() == again.summary()
    assert first.memory.equals(again.memory)
