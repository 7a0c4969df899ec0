"""Sweeps (distsim.sweep): the results store, resuming an interrupted sweep, Dask runners give the same results."""

from __future__ import annotations

import os
import signal

import pandas as pd
import pytest

import distsim.search as search
from distsim.errors import ConfigError
from distsim.hardware import paper_hardware
from distsim.search import SearchOptions, search_plans
from distsim.sweep import ResultStore, Runner, Task, run_tasks, scenario_key
from distsim.workload import build_workload

OPTIONS = SearchOptions(max_stages=3, progress=False)
DEGREES = (1, 2, 8)


@pytest.fixture(scope="module")
def tiny():
    return build_workload("wordlm", hidden=64, vocab=1000, seq_len=4, batch=8)


@pytest.fixture(scope="module")
def system():
    return paper_hardware(memory_bytes=8e5, link_latency_s=0.0)


@pytest.fixture(scope="module")
def reference(tiny, system):
    return search_plans(tiny, system, data_parallel=DEGREES, dataset="billion-word", options=OPTIONS)


def _search(tiny, system, **kw):
    return search_plans(tiny, system, data_parallel=DEGREES, dataset="billion-word", options=OPTIONS, **kw)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    for key in ("candidates", "memory_checks", "simulated", "closest_misfit"):
        assert a.attrs[key] == b.attrs[key]


def test_scenario_key_hashes_everything():
    base = {"plan": {"data_parallel": 2}, "hardware": {"memory_bytes": 1.0}}
    assert scenario_key(base) == scenario_key(dict(reversed(base.items())))  # order of keys does not matter
    assert scenario_key(base) != scenario_key(base | {"hardware": {"memory_bytes": 2.0}})
    assert len(scenario_key(base)) == 64


def test_runner_checks_its_fields():
    with pytest.raises(ConfigError, match="not both"):
        Runner(scheduler="tcp://localhost:8786", workers=2)
    with pytest.raises(ConfigError, match="workers"):
        Runner(workers=0)


def test_store_round_trip_and_resume(tiny, system, reference, tmp_path):
    store = ResultStore(tmp_path / "results")
    first = _search(tiny, system, store=store)
    _same(first, reference)
    groups = len(ResultStore(tmp_path / "results"))
    assert groups == len({(p.stages, p.shard_stages, p.fuse_accumulation)
                          for p in search.candidate_plans(tiny, data_parallel=DEGREES, options=OPTIONS)})
    assert list((tmp_path / "results").glob("part-*.parquet"))
    assert not list((tmp_path / "results").glob(".*"))  # nothing half-written left behind
    again = _search(tiny, system, store=ResultStore(tmp_path / "results"))
    _same(again, reference)  # every placement from the store: the same table


def test_interrupted_sweep_resumes_without_recomputing(tiny, system, reference, tmp_path, monkeypatch):
    real = search.search_group
    calls = []

    def failing(*args):
        if len(calls) == 5:
            raise RuntimeError("injected failure after 5 evaluations")
        calls.append(args[-1])
        return real(*args)

    monkeypatch.setattr(search, "search_group", failing)
    with pytest.raises(RuntimeError, match="injected"):
        _search(tiny, system, store=ResultStore(tmp_path))
    finished = list(calls)
    assert len(ResultStore(tmp_path)) == 5  # written although the sweep failed

    calls.clear()
    monkeypatch.setattr(search, "search_group", lambda *args: calls.append(args[-1]) or real(*args))
    resumed = _search(tiny, system, store=ResultStore(tmp_path))
    _same(resumed, reference)
    assert calls and not set(calls) & set(finished)  # nothing that had finished was computed again
    total = len(ResultStore(tmp_path))
    assert len(calls) + len(finished) == total


def _term_after_two(i: int) -> int:
    if i == 2:
        os.kill(os.getpid(), signal.SIGTERM)
    return i * i


def test_sigterm_leaves_a_valid_store(tmp_path):
    tasks = [Task(function=_term_after_two, args=(i,), scenario={"i": i}) for i in range(5)]
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        run_tasks(tasks, Runner(progress=False), ResultStore(tmp_path))
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the sweep's only while it runs
    store = ResultStore(tmp_path)
    assert {k: v for k, v in store.results().items()} == {tasks[0].key: 0, tasks[1].key: 1}
    assert run_tasks(tasks[:2], Runner(progress=False), store) == [0, 1]


def test_local_dask_cluster_gives_the_same_table_and_store(tiny, system, reference, tmp_path):
    in_process = ResultStore(tmp_path / "in_process")
    _search(tiny, system, store=in_process)
    dask_store = ResultStore(tmp_path / "dask")
    on_dask = _search(tiny, system, store=dask_store, runner=Runner(workers=2))
    _same(on_dask, reference)
    assert ResultStore(tmp_path / "dask").results() == ResultStore(tmp_path / "in_process").results()


def test_experiments_without_a_grid_refuse_dask(capsys):
    from distsim.cli import main

    assert main(["experiment", "table5", "--quick", "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no grid of evaluations" in err and "\n" not in err


def _square(i: int) -> int:
    return i * i


def test_progress_bar_is_quiet_off_a_terminal(capsys):
    tasks = [Task(function=_square, args=(i,), scenario={"square": i}) for i in range(3)]
    assert run_tasks(tasks, Runner()) == [0, 1, 4]  # progress=None: a bar only on a terminal
    assert capsys.readouterr().err == ""
