"""Sweeps: many independent evaluations, run in-process or on Dask, stored as they finish.

A sweep is a list of :class:`Task` -- a picklable function, its arguments and
a *scenario* (plain data saying everything the result depends on).  The
:class:`Runner` says where the tasks run:

- in-process (the default: no cluster, nothing to start; tests and CI);
- ``Runner(workers=N)``: a local Dask cluster of ``N`` worker processes,
  started for the sweep and closed after it;
- ``Runner(scheduler="tcp://host:8786")``: an existing Dask cluster, started
  beforehand with ``dask scheduler`` on one machine and ``dask worker
  tcp://host:8786`` on each machine that should work (the scheduler and every
  worker need the same distsim installed).

Results are identical whatever the runner: each task is a pure function of its
arguments and the results are put back in task order.  Large shared inputs
(a workload graph) are sent to each worker once (``Task.shared``).

Results that survive
    With a :class:`ResultStore` (``--out DIR``: ``DIR/results/``), every
    finished task is appended to the store -- Parquet files written whole and
    renamed into place, so the store is valid whenever the sweep stops,
    SIGINT and SIGTERM included -- under a key hashing its full scenario
    (:func:`scenario_key`: workload, options, plan, hardware, cost model,
    data set and distsim version).  Running the same sweep again loads the
    finished tasks from the store and computes only the others.

A tqdm bar shows progress on stderr when it is a terminal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import ConfigError, require_positive_int

#: Seconds between two writes of finished results to the store (and at the end, or when interrupted).
FLUSH_INTERVAL_S = 1.0
#: Part files of a store merged into one when it is opened with more than this many.
MAX_PARTS = 64


@dataclass(frozen=True)
class Runner:
    """Where a sweep's tasks run (see module doc): in-process, ``workers`` local processes or a ``scheduler``."""

    scheduler: str | None = None
    workers: int | None = None
    progress: bool | None = None  # tqdm bar: None shows it only when stderr is a terminal

    def __post_init__(self):
        if self.scheduler is not None and self.workers is not None:
            raise ConfigError("give either a scheduler address or a number of local workers, not both")
        if self.workers is not None:
            require_positive_int("workers", self.workers)
        if self.scheduler is not None and (not isinstance(self.scheduler, str) or not self.scheduler):
            raise ConfigError(f"scheduler must be an address such as tcp://host:8786, got {self.scheduler!r}")

    @property
    def in_process(self) -> bool:
        return self.scheduler is None and self.workers is None


@dataclass(frozen=True)
class Task:
    """One evaluation: ``function(*shared, *args)``, whose result (plain JSON data) depends only on ``scenario``.

    ``shared`` are large arguments common to many tasks (sent to each worker once).
    """

    function: Callable
    args: tuple
    scenario: dict
    shared: tuple = ()
    weight: int = 1  # units of progress (e.g. plans in a search group)
    key: str = field(default="", compare=False)

    def __post_init__(self):
        if not self.key:
            object.__setattr__(self, "key", scenario_key(self.scenario))


def scenario_key(scenario: dict) -> str:
    """SHA-256 (hex) of the scenario as canonical JSON (sorted keys, ``repr`` of non-JSON values)."""
    text = json.dumps(scenario, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(result: Any) -> Any:
    """The result as it comes back from the store (JSON round trip; floats exact)."""
    return json.loads(json.dumps(result))


class ResultStore:
    """Finished tasks in ``directory`` as Parquet files (columns ``key``, ``scenario``, ``result``: JSON text).

    :meth:`add` buffers; :meth:`flush` writes what is buffered as one file,
    written aside and renamed into place, so a reader never sees half a file.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pending: list[tuple[str, str, str]] = []
        self._last_flush = time.monotonic()
        self._results: dict[str, Any] | None = None

    def _parts(self) -> list[Path]:
        return sorted(p for p in self.directory.glob("part-*.parquet"))

    def results(self) -> dict[str, Any]:
        """Key -> result of every task in the store (read once)."""
        if self._results is None:
            import pyarrow.parquet as pq

            self._results = {}
            parts = self._parts()
            for path in parts:
                table = pq.read_table(path, columns=["key", "result"])
                for key, result in zip(table.column("key").to_pylist(), table.column("result").to_pylist()):
                    self._results[key] = json.loads(result)
            if len(parts) > MAX_PARTS:
                self._compact(parts)
        return self._results

    def __contains__(self, key: str) -> bool:
        return key in self.results()

    def __len__(self) -> int:
        return len(self.results())

    def add(self, task: Task, result: Any) -> None:
        self.results()[task.key] = result
        self._pending.append((task.key, json.dumps(task.scenario, sort_keys=True, default=repr), json.dumps(result)))
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        """Write the buffered results (one new part file)."""
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        self._write(rows)
        self._last_flush = time.monotonic()

    def _write(self, rows: list[tuple[str, str, str]]) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        keys, scenarios, results = zip(*rows)
        table = pa.table({"key": list(keys), "scenario": list(scenarios), "result": list(results)})
        name = f"part-{time.time_ns():020d}-{os.getpid()}.parquet"
        tmp = self.directory / f".{name}.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, self.directory / name)
        return self.directory / name

    def _compact(self, parts: list[Path]) -> None:
        import pyarrow.parquet as pq

        table = pq.read_table(self.directory, columns=["key", "scenario", "result"])
        rows = list(zip(*(table.column(c).to_pylist() for c in ("key", "scenario", "result"))))
        self._write(rows)
        for path in parts:
            path.unlink()


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM raises KeyboardInterrupt (as SIGINT does) while the sweep runs, so finished results are written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_tasks(tasks: Sequence[Task], runner: Runner | None = None, store: ResultStore | None = None,
              *, desc: str = "tasks", unit: str = "task") -> list[Any]:
    """Results of ``tasks`` in task order: loaded from ``store`` when finished before, else computed by ``runner``.

    Each computed result goes to ``store`` as it finishes; an interruption
    (exception, SIGINT, SIGTERM) writes what finished before it propagates.
    """
    from tqdm import tqdm

    runner = runner or Runner()
    results: list[Any] = [None] * len(tasks)
    todo = []
    for i, task in enumerate(tasks):
        if store is not None and task.key in store:
            results[i] = store.results()[task.key]
        else:
            todo.append(i)
    total = sum(t.weight for t in tasks)
    disable = {None: None, True: False, False: True}[runner.progress]
    with tqdm(total=total, desc=desc, unit=unit, leave=False, disable=disable) as bar, _sigterm_interrupts():
        bar.update(total - sum(tasks[i].weight for i in todo))

        def finished(i: int, result: Any) -> None:
            results[i] = _plain(result)
            if store is not None:
                store.add(tasks[i], results[i])
            bar.update(tasks[i].weight)

        try:
            if runner.in_process or not todo:
                for i in todo:
                    finished(i, tasks[i].function(*tasks[i].shared, *tasks[i].args))
            else:
                _run_on_dask([tasks[i] for i in todo], todo, runner, finished)
        finally:
            if store is not None:
                store.flush()
    return results


def _run_on_dask(tasks: list[Task], indices: list[int], runner: Runner, finished: Callable[[int, Any], None]) -> None:
    from dask.distributed import Client, LocalCluster, as_completed

    with contextlib.ExitStack() as stack:
        if runner.scheduler is not None:
            try:
                client = stack.enter_context(Client(runner.scheduler, timeout="10s"))
            except OSError as exc:
                raise ConfigError(f"scheduler {runner.scheduler!r} cannot be reached ({exc})") from None
        else:
            cluster = stack.enter_context(LocalCluster(n_workers=runner.workers, threads_per_worker=1,
                                                       processes=True, dashboard_address=None))
            client = stack.enter_context(Client(cluster))
        shared: dict[int, Any] = {}
        futures = {}
        for task, i in zip(tasks, indices):
            args = []
            for value in task.shared:
                if id(value) not in shared:
                    shared[id(value)] = client.scatter(value, broadcast=True, hash=False)
                args.append(shared[id(value)])
            futures[client.submit(task.function, *args, *task.args, key=f"{task.key}-{i}", pure=False)] = i
        try:
            for future in as_completed(futures):
                finished(futures[future], future.result())
        except BaseException:
            client.cancel(list(futures))
            raise


def scenario_of(graph) -> dict:
    """A workload graph as scenario data: name, dimensions (the workload's options) and a hash of its ops and
    tensors (so a changed model or user workload file is a different scenario)."""
    from .evalcache import cached

    def fingerprint() -> str:
        h = hashlib.sha256()
        for op in graph.ops:
            h.update(repr(op).encode())
        for name, t in graph.tensors.items():
            h.update(f"{name}{t!r}".encode())
        return h.hexdigest()

    return {"name": graph.name, "dims": {k: repr(v) for k, v in sorted(graph.dims.items())},
            "fingerprint": cached(graph, "fingerprint", fingerprint)}


def hardware_scenario(hardware) -> dict:
    """A :class:`~distsim.hardware.Hardware` as scenario data (a fixed topology by its nodes and links)."""
    from dataclasses import fields as dataclass_fields

    from .topology import Topology

    out = {}
    for f in dataclass_fields(hardware):
        value = getattr(hardware, f.name)
        if isinstance(value, Topology):
            value = {"name": value.name, "duplex": value.duplex,
                     "nodes": sorted((repr(n), repr(sorted(d.items()))) for n, d in value.graph.nodes(data=True)),
                     "links": sorted((repr(a), repr(b), repr(sorted(d.items())))
                                     for a, b, d in value.graph.edges(data=True))}
        out[f.name] = value if isinstance(value, (str, int, float, bool, type(None), dict)) else repr(value)
    return out


def evaluate_plans(graph, plans: Sequence, hardware=None, dataset=None, *, runner: Runner | None = None,
                   store: ResultStore | None = None) -> list[dict]:
    """Each of ``plans`` evaluated on ``hardware`` (one sweep task each), in plan order.

    Returns
    -------
    list of dict
        ``summary`` (:meth:`~distsim.evaluate.PlanEvaluation.summary`), ``failures`` (memory-check lines)
        and ``steps_per_epoch``.
    """
    from . import __version__
    from .evaluate import dataset_for
    from .hardware import paper_hardware

    hardware = hardware or paper_hardware()
    dataset = dataset_for(graph, dataset)
    common = {"kind": "plan", "workload": scenario_of(graph), "hardware": hardware_scenario(hardware),
              "dataset": repr(dataset), "version": __version__}
    tasks = [Task(function=evaluate_one, shared=(graph,), args=(plan, hardware, dataset),
                  scenario=common | {"plan": repr(plan)}) for plan in plans]
    return run_tasks(tasks, runner, store, desc="plans", unit="plan")


def evaluate_one(graph, plan, hardware, dataset) -> dict:
    """One plan's summary and memory-check failures (a sweep task of :func:`evaluate_plans`)."""
    from .evaluate import evaluate_plan

    ev = evaluate_plan(graph, plan, hardware, dataset=dataset)
    return {"summary": ev.summary(), "failures": ev.memory_failures(), "steps_per_epoch": ev.steps_per_epoch}
