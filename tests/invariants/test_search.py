"""Planner search (distsim.search): the grid, memory-first pruning, the Pareto frontier, the target filter."""

from __future__ import annotations

import doctest
import importlib

import pandas as pd
import pytest

from distsim import units
from distsim.errors import ConfigError
from distsim.evaluate import evaluate_plan
from distsim.hardware import paper_hardware
from distsim.plan import Plan
from distsim.search import (
    COLUMNS, SearchOptions, best_plan, candidate_plans, pareto_front, pareto_mask, search_plans, shard_choices,
    stage_partitions,
)
from distsim.workload import build_workload

DEGREES = (1, 2, 8)
OPTIONS = SearchOptions(max_stages=3, progress=False)
CAP_BYTES = 8e5  # the tiny LM needs ~1.27 MB on one accelerator: some plans fit, many do not
TARGET_DAYS = 0.0005


@pytest.fixture(scope="module")
def tiny():
    return build_workload("wordlm", hidden=64, vocab=1000, seq_len=4, batch=8)


@pytest.fixture(scope="module")
def system():
    return paper_hardware(memory_bytes=CAP_BYTES, link_latency_s=0.0)


@pytest.fixture(scope="module")
def found(tiny, system):
    return search_plans(tiny, system, data_parallel=DEGREES, dataset="billion-word", target_days=TARGET_DAYS,
                        options=OPTIONS)


@pytest.mark.parametrize("name", ["distsim.search", "distsim.workload"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_partitions_are_all_contiguous_splits():
    layers = ["embedding", "lstm0", "lstm1", "output", "step"]
    parts = stage_partitions(layers)
    assert len(parts) == 2 ** (len(layers) - 1) == 16  # a cut or not in each of the 4 gaps
    assert len(set(parts)) == 16
    assert all([x for s in p for x in s] == layers for p in parts)
    assert [len(p) for p in parts] == sorted(len(p) for p in parts)  # fewest stages first
    assert len(stage_partitions(layers, max_stages=2)) == 1 + 4


def test_shard_choices_always_hold_the_tables_stage():
    assert shard_choices(1, 0) == [()]
    assert shard_choices(3, None) == [()]
    for stages in range(1, 6):
        for table in range(stages):
            choices = shard_choices(stages, table)
            assert len(choices) == stages  # none, then k = 2..S
            assert all(table in c and list(c) == list(range(c[0], c[0] + len(c))) for c in choices[1:])


def test_grid_size_for_the_word_lm():
    """48 placements (sum over S of C(4, S-1) partitions x S shard choices = 1+8+18+16+5) x 2 fusions x
    (dp 1 once + 12 degrees x 2 buffers) = 48 x 2 x 25 = 2400 plans."""
    g = build_workload("wordlm", hidden=8, vocab=10, seq_len=2, batch=2)
    assert len(candidate_plans(g)) == 48 * 2 * 25
    capped = candidate_plans(g, max_accelerators=8)
    assert capped and all(p.accelerators <= 8 for p in capped)


def test_returns_exactly_the_fitting_plans(tiny, system, found):
    """Pruning is exact: the search keeps the same plans as a memory check of the whole grid."""
    grid = candidate_plans(tiny, data_parallel=DEGREES, options=OPTIONS)
    fitting = {p.describe() for p in grid
               if evaluate_plan(tiny, p, system, dataset="billion-word", simulate=False).fits}
    assert 0 < len(fitting) < len(grid)  # some plans do not fit ...
    assert set(found["plan"]) == fitting  # ... and are left out
    assert found["fits"].all()
    assert (found["max_memory_gib"] * units.GiB <= CAP_BYTES).all()
    assert found.attrs["memory_checks"] < len(grid)
    assert found.attrs["simulated"] <= len(found)  # buffer-only twins share a simulated step
    assert found.attrs["closest_misfit"] is None


def test_columns_and_order(found):
    assert list(found.columns) == list(COLUMNS) + ["meets_target"]
    keys = list(zip(found["accelerators"], found["days_per_epoch"]))
    assert keys == sorted(keys)


def test_frontier_is_non_dominated_and_covers_the_rest(found):
    assert found["pareto"].sum() >= 2
    objectives = found[["accelerators", "days_per_epoch", "utilization"]].to_numpy()

    def dominates(a, b):
        return a[0] <= b[0] and a[1] <= b[1] and a[2] >= b[2] and (a[0] < b[0] or a[1] < b[1] or a[2] > b[2])

    front = found.index[found["pareto"]]
    for i in front:
        assert not any(dominates(objectives[j], objectives[i]) for j in range(len(found)))
    for i in found.index[~found["pareto"]]:  # every other plan is dominated by, or ties, a frontier plan
        assert any(dominates(objectives[j], objectives[i]) or tuple(objectives[j]) == tuple(objectives[i])
                   for j in front)
    assert list(pareto_front(found).index) == list(front)


def test_pareto_mask_by_hand():
    df = pd.DataFrame({
        "accelerators": [1, 2, 2, 4, 4, 8],
        "days_per_epoch": [10.0, 6.0, 7.0, 3.0, 3.0, 3.0],
        "utilization": [0.5, 0.4, 0.4, 0.3, 0.3, 0.1],
    })
    # row 2 is dominated by row 1; row 4 ties row 3 (only the first is kept); row 5 by row 3
    assert list(pareto_mask(df)) == [True, True, False, True, False, False]


def test_target_filter_and_best_plan(found):
    assert (found["meets_target"] == (found["days_per_epoch"] <= TARGET_DAYS)).all()
    assert found["meets_target"].any() and not found["meets_target"].all()
    best = best_plan(found, TARGET_DAYS)
    meeting = found[found["meets_target"]]
    assert best["accelerators"] == meeting["accelerators"].min()
    assert best["days_per_epoch"] == meeting[meeting["accelerators"] == best["accelerators"]]["days_per_epoch"].min()
    assert best_plan(found, 1e-9) is None


def test_nothing_fits_reports_the_smallest_excess(tiny):
    df = search_plans(tiny, paper_hardware(memory_bytes=2e5), data_parallel=(1, 2), dataset="billion-word",
                      options=OPTIONS)
    assert df.empty and list(df.columns) == list(COLUMNS)
    misfit = df.attrs["closest_misfit"]
    assert misfit["excess_gib"] > 0 and misfit["failures"] and misfit["plan"].startswith("dp")


def test_max_accelerators(tiny, system):
    df = search_plans(tiny, system, data_parallel=DEGREES, dataset="billion-word", max_accelerators=3,
                      options=OPTIONS)
    assert len(df) and (df["accelerators"] <= 3).all()


def test_same_input_same_table(tiny, system, found):
    again = search_plans(tiny, system, data_parallel=DEGREES, dataset="billion-word", target_days=TARGET_DAYS,
                         options=OPTIONS)
    pd.testing.assert_frame_equal(found, again)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(data_parallel=[0]), "data_parallel entry must be a positive integer"),
    (dict(data_parallel=4), "data_parallel must be a list"),
    (dict(target_days=-1), "target_days must be positive"),
    (dict(max_accelerators=0), "max_accelerators must be a positive integer"),
    (dict(dataset="nosuch"), "unknown dataset 'nosuch'"),
])
def test_bad_arguments(tiny, kwargs, needle):
    kwargs = {"dataset": "billion-word", **kwargs}
    with pytest.raises(ConfigError, match=needle):
        search_plans(tiny, paper_hardware(), options=OPTIONS, **kwargs)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(comm_buffer=("fused",)), "comm_buffer value 'fused'"),
    (dict(fuse_accumulation=("yes",)), "fuse_accumulation value 'yes'"),
    (dict(schedule=()), "schedule must list at least one value"),
    (dict(max_stages=0), "max_stages must be a positive integer"),
])
def test_bad_options(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        SearchOptions(**kwargs)


def test_scalar_options_become_tuples():
    o = SearchOptions(fuse_accumulation=True, comm_buffer="chunked")
    assert o.fuse_accumulation == (True,) and o.comm_buffer == ("chunked",)


def test_no_default_dataset_is_a_config_error():
    from distsim.graph import Graph

    built = build_workload("charlm", hidden=16, vocab=10, seq_len=2, batch=2)
    g = Graph("unlisted", built.ops, built.tensors, built.dims)  # a workload with no default data set
    with pytest.raises(ConfigError, match="no default data set for workload 'unlisted'.*--samples"):
        search_plans(g, paper_hardware(), data_parallel=(1,), options=OPTIONS)


def test_only_fitting_plans_are_simulated(tiny, system, monkeypatch):
    import distsim.search as search

    calls = []
    real_step, real_evaluate = search.with_step, search.evaluate_plan

    def spy_step(ev, *args, **kw):  # the search simulates steps of memory-checked evaluations only
        calls.append(ev.fits)
        return real_step(ev, *args, **kw)

    def spy_evaluate(*args, **kw):
        assert kw.get("simulate") is False, "a step simulated before its memory check"
        return real_evaluate(*args, **kw)

    monkeypatch.setattr(search, "with_step", spy_step)
    monkeypatch.setattr(search, "evaluate_plan", spy_evaluate)
    df = search_plans(tiny, system, data_parallel=(2, 8), dataset="billion-word", options=OPTIONS)
    assert calls and all(calls) and len(calls) == df.attrs["simulated"] <= len(df)


def test_gradient_buffers_do_not_change_the_step(tiny):
    """Why a buffer-only twin may reuse a simulated step: simulated separately, the steps are identical."""
    roomy = paper_hardware(memory_bytes=1e6, link_latency_s=0.0)
    stages = (("embedding", "lstm0"), ("lstm1", "output", "step"))
    steps = [evaluate_plan(tiny, Plan(data_parallel=8, stages=stages, comm_buffer=b), roomy,
                           dataset="billion-word").step_s for b in ("tensor", "chunked")]
    assert steps[0] == steps[1]
    df = search_plans(tiny, roomy, data_parallel=(8,), dataset="billion-word",
                      options=SearchOptions(max_stages=2, fuse_accumulation=(True,), progress=False))
    assert df.attrs["simulated"] < len(df)
    by_placement: dict[tuple, set] = {}
    for row in df[~df["shard_stages"].map(bool)].itertuples():
        by_placement.setdefault((str(row.stage_layers), row.data_parallel), set()).add((row.comm_buffer, row.step_s))
    pairs = [v for v in by_placement.values() if len(v) == 2]
    assert pairs and all(len({step for _, step in v}) == 1 for v in pairs)


def test_plan_describe_is_unique_in_the_grid(tiny):
    plans = candidate_plans(tiny, data_parallel=DEGREES, options=OPTIONS)
    assert len({p.describe() for p in plans}) == len(plans)
    assert all(isinstance(p, Plan) for p in plans)


def test_search_table_is_a_plain_evaluation_loop(tiny, system, found):
    """The search (memory pruning, cached graph data, one memory check per plan, shared twin steps) gives
    exactly the table of evaluating every plan of the grid on its own and keeping those that fit."""
    rows = []
    for plan in candidate_plans(tiny, data_parallel=DEGREES, options=OPTIONS):
        ev = evaluate_plan(tiny, plan, system, dataset="billion-word")
        if ev.fits:
            rows.append(ev.summary() | {"stage_layers": [list(s) for s in ev.resolved.stages],
                                        "shard_stages": list(plan.shard_stages),
                                        "fuse_accumulation": plan.fuse_accumulation,
                                        "comm_buffer": plan.comm_buffer})
    plain = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "pareto"])
    plain = plain.sort_values(["accelerators", "days_per_epoch", "utilization", "max_memory_gib", "plan"],
                              ascending=[True, True, False, True, True], kind="mergesort").reset_index(drop=True)
    plain["pareto"] = pareto_mask(plain)
    plain["meets_target"] = plain["days_per_epoch"] <= TARGET_DAYS
    pd.testing.assert_frame_equal(found, plain, check_exact=True)
