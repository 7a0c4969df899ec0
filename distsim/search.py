"""Planner search: every data x layer x embedding-shard plan of a workload that fits, and its Pareto frontier.

The search space is a grid (:func:`candidate_plans`, one ``itertools.product``):

- data-parallel degrees (default powers of two, 1 to 4096);
- stage partitions: every split of ``graph.layers()`` into contiguous groups
  (``2**(L-1)`` of them for ``L`` layers; 16 for the word LM);
- embedding shards: none, or row pieces on ``k = 2 .. S`` stages -- the table's
  own stage and the next ``k - 1`` (the window slides back when the table's
  stage is near the end);
- the memory-saving switches ``fuse_accumulation`` and ``comm_buffer`` (and the
  schedule, wavefront only by default).

Memory comes first: :func:`~distsim.evaluate.evaluate_plan` with
``simulate=False`` costs a few tens of milliseconds, a simulated step ten
times that or more, so only plans that fit are simulated.  Two facts of the
memory model (:mod:`distsim.memory`) keep the number of memory checks small;
both are exact, not heuristics:

1. the data-parallel degree changes a stage's memory only through its
   gradient staging buffer, which is 0 without data parallelism, the same for
   every degree with ``comm_buffer="tensor"`` and ``2 x nbytes / workers``
   with ``"chunked"`` (never more than the tensor buffer);
2. adding a buffer never lowers the largest stage total, with balanced shard
   fractions too (water filling over higher bases ends at a higher level).

So for one placement (stages, shards, fusion) the plan with the least memory
is the one without data parallelism, or else the chunked one with the most
workers.  If it does not fit, no variant does and the whole group is skipped;
chunked variants that fit at ``d`` workers fit at every larger degree.

Every fitting plan is returned (one row each, :meth:`PlanEvaluation.summary`
columns plus the plan's switches) with ``pareto`` marking the frontier over
(accelerators: fewer is better, days per epoch: fewer, utilization: higher).

Each placement is one sweep task (:func:`search_group`, :mod:`distsim.sweep`):
placements run in-process or on Dask, finished ones can be kept in a results
store and are then not searched again.  Each plan is memory-checked at most
once and its step simulated from that evaluation; what depends only on the
graph is computed once (:mod:`distsim.evalcache`).  The table is the same as
evaluating every plan of the grid on its own.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, fields, replace
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from . import __version__
from .datasets import Dataset
from .errors import ConfigError, require_positive, require_positive_int
from .evaluate import PlanEvaluation, dataset_for, evaluate_plan, with_step
from .hardware import Hardware, paper_hardware
from .graph import Graph
from .plan import COMM_BUFFERS, SCHEDULES, Plan, sparse_gradients
from .sweep import ResultStore, Runner, Task, hardware_scenario, run_tasks, scenario_of
from .transforms import fuse_gradient_accumulation

#: Largest number of stage partitions a search enumerates (``2**(L-1)`` for ``L`` layers).
MAX_PARTITIONS = 4096

#: Default data-parallel degrees: 1, 2, 4, ..., 4096.
DEFAULT_DATA_PARALLEL = tuple(2**i for i in range(13))

#: Columns of :func:`search_plans`' table (also those of an empty result).
COLUMNS = (
    "plan", "data_parallel", "stages", "embedding_shards", "schedule", "accelerators", "batch", "step_s",
    "gradient_comm_s", "days_per_epoch", "utilization", "memory_gib", "max_memory_gib", "fits", "shard_fractions",
    "stage_layers", "shard_stages", "fuse_accumulation", "comm_buffer", "pareto",
)


@dataclass(frozen=True, kw_only=True)
class SearchOptions:
    """Which switches the search tries besides data, layer and shard placement.

    Parameters
    ----------
    fuse_accumulation : tuple of bool
        Values of :attr:`Plan.fuse_accumulation` to try.
    comm_buffer : tuple of str
        Values of :attr:`Plan.comm_buffer` to try (irrelevant, so tried once, without data parallelism).
    schedule : tuple of str
        Layer-parallel schedules to try (irrelevant, so tried once, with one stage).
    embedding_shards : bool
        Try sharding the embedding table over stages.
    max_stages : int, optional
        Largest number of stages per worker (default: one per layer).
    progress : bool, optional
        A tqdm bar on stderr: ``None`` shows it only when stderr is a terminal.
    """

    fuse_accumulation: tuple[bool, ...] = (False, True)
    comm_buffer: tuple[str, ...] = COMM_BUFFERS
    schedule: tuple[str, ...] = ("wavefront",)
    embedding_shards: bool = True
    max_stages: int | None = None
    progress: bool | None = None

    def __post_init__(self):
        for name, accepted in (("fuse_accumulation", (False, True)), ("comm_buffer", COMM_BUFFERS),
                               ("schedule", SCHEDULES)):
            values = getattr(self, name)
            if isinstance(values, (str, bool)) or not isinstance(values, Iterable):
                values = (values,)
            values = tuple(values)
            if not values:
                raise ConfigError(f"search {name} must list at least one value")
            for v in values:
                if v not in accepted or (name == "fuse_accumulation") != isinstance(v, bool):
                    raise ConfigError(f"search {name} value {v!r} is not one of "
                                      f"{', '.join(str(a).lower() if isinstance(a, bool) else a for a in accepted)}")
            object.__setattr__(self, name, tuple(dict.fromkeys(values)))
        if not isinstance(self.embedding_shards, bool):
            raise ConfigError(f"search embedding_shards must be true or false, got {self.embedding_shards!r}")
        if self.max_stages is not None:
            require_positive_int("max_stages", self.max_stages)
        if self.progress is not None and not isinstance(self.progress, bool):
            raise ConfigError(f"search progress must be true or false, got {self.progress!r}")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "progress"]


def stage_partitions(layers: Sequence[str], max_stages: int | None = None) -> list[tuple[tuple[str, ...], ...]]:
    """Every split of ``layers`` into contiguous, non-empty stages, fewest stages first.

    Examples
    --------
    >>> stage_partitions(["a", "b", "c"])
    [(('a', 'b', 'c'),), (('a',), ('b', 'c')), (('a', 'b'), ('c',)), (('a',), ('b',), ('c',))]
    """
    n = len(layers)
    top = n if max_stages is None else min(n, max_stages)
    count = sum(math.comb(n - 1, s - 1) for s in range(1, top + 1))
    if count > MAX_PARTITIONS:
        raise ConfigError(f"{n} layers make {count} stage partitions (more than {MAX_PARTITIONS}); "
                          f"limit max_stages")
    out = []
    for stages in range(1, top + 1):
        for cuts in itertools.combinations(range(1, n), stages - 1):
            bounds = (0, *cuts, n)
            out.append(tuple(tuple(layers[a:b]) for a, b in zip(bounds, bounds[1:])))
    return out


def shard_choices(stage_count: int, table_stage: int | None) -> list[tuple[int, ...]]:
    """Shard placements tried for a partition: none, then ``k = 2 .. S`` consecutive stages holding the table's.

    Examples
    --------
    >>> shard_choices(4, 0)
    [(), (0, 1), (0, 1, 2), (0, 1, 2, 3)]
    >>> shard_choices(3, 2)
    [(), (1, 2), (0, 1, 2)]
    """
    out: list[tuple[int, ...]] = [()]
    if table_stage is None:
        return out
    for k in range(2, stage_count + 1):
        start = min(table_stage, stage_count - k)
        out.append(tuple(range(start, start + k)))
    return out


def table_layer(graph: Graph) -> str | None:
    """The layer owning the first table with a sparse gradient (what embedding sharding splits), if any."""
    for weight in sparse_gradients(graph).values():
        return graph.tensors[weight].layer
    return None


#: Largest search grid (plans) tried: the case study's default grid has 2,400; a larger one would take
#: hours, so it is refused up front with the ways to narrow it.
MAX_CANDIDATES = 20_000


def candidate_plans(graph: Graph, *, data_parallel: Sequence[int] = DEFAULT_DATA_PARALLEL,
                    max_accelerators: int | None = None, options: SearchOptions | None = None) -> list[Plan]:
    """The search grid, in a fixed order, without plans that differ only in switches that do nothing.

    ``comm_buffer`` matters only with data parallelism, ``schedule`` only
    with more than one stage and ``fuse_accumulation`` only for a graph with
    per-step gradient accumulations to fuse; for the others only the first
    value is kept.
    """
    options = options or SearchOptions()
    fusions = options.fuse_accumulation
    if len(fuse_gradient_accumulation(graph).ops) == len(graph.ops):  # nothing to fuse: both are the same plan
        fusions = fusions[:1]
    table = table_layer(graph) if options.embedding_shards else None
    placements = []
    for stages in stage_partitions(graph.layers(), options.max_stages):
        table_stage = next((i for i, s in enumerate(stages) if table in s), None)
        placements += [(stages, shards) for shards in shard_choices(len(stages), table_stage)]
    plans = []
    for (stages, shards), fuse, schedule, buffer, dp in itertools.product(
            placements, fusions, options.schedule, options.comm_buffer, data_parallel):
        if dp == 1 and buffer != options.comm_buffer[0]:
            continue
        if len(stages) == 1 and schedule != options.schedule[0]:
            continue
        if max_accelerators is not None and dp * len(stages) > max_accelerators:
            continue
        if len(plans) >= MAX_CANDIDATES:
            raise ConfigError(f"the search grid has more than {MAX_CANDIDATES} plans (the limit) for "
                              f"{len(graph.layers())} layers; narrow it with max_stages (--max-stages), fewer "
                              "data-parallel degrees or max_accelerators")
        plans.append(Plan(data_parallel=dp, stages=stages, shard_layer=table or "embedding", shard_stages=shards,
                          fuse_accumulation=fuse, schedule=schedule, comm_buffer=buffer))
    return plans


def _check_degrees(data_parallel) -> tuple[int, ...]:
    if isinstance(data_parallel, (int, str)) or not isinstance(data_parallel, Iterable):
        raise ConfigError(f"data_parallel must be a list of positive integers, got {data_parallel!r}")
    degrees = tuple(require_positive_int("data_parallel entry", d) for d in data_parallel)
    if not degrees:
        raise ConfigError("data_parallel must list at least one degree")
    return tuple(sorted(set(degrees)))


def search_plans(graph: Graph, hardware: Hardware | None = None, *, data_parallel: Sequence[int] = DEFAULT_DATA_PARALLEL,
                 target_days: float | None = None, dataset: str | Dataset | None = None,
                 max_accelerators: int | None = None, options: SearchOptions | None = None,
                 runner: Runner | None = None, store: ResultStore | None = None) -> pd.DataFrame:
    """Every plan of the grid (:func:`candidate_plans`) that fits in memory, simulated, with its Pareto flag.

    Parameters
    ----------
    graph : Graph
        One worker's sub-batch step; the global batch is ``subbatch x data_parallel``.
    hardware : Hardware, optional
        Accelerator, topology, memory capacity and cost model (default: the ``paper-2019`` preset).
    data_parallel : sequence of int
        Data-parallel degrees to try.
    target_days : float, optional
        Adds ``meets_target`` (days per epoch <= ``target_days``).
    dataset : str or Dataset, optional
        What an epoch is (default: the workload's, :func:`distsim.datasets.default_dataset_for`).
    max_accelerators : int, optional
        Skip plans needing more.
    options : SearchOptions, optional
        Switches to try and the progress bar.
    runner : Runner, optional
        Where the evaluations run (:mod:`distsim.sweep`; default in-process).  One task per placement
        (stages, shards, fusion); the table is the same whatever the runner.
    store : ResultStore, optional
        Finished placements are appended to it and, when it already holds them, not searched again.

    Returns
    -------
    pandas.DataFrame
        One row per fitting plan, columns :data:`COLUMNS` (plus ``meets_target``),
        sorted by accelerators, then days per epoch, utilization (descending),
        largest memory and label.  ``attrs`` holds ``candidates`` (grid size),
        ``memory_checks``, ``simulated`` (steps simulated: a plan that differs
        from another only in its gradient buffers reuses that one's step),
        ``elapsed_s`` and ``closest_misfit``
        (``None`` when something fits, else a dict: ``plan``, ``excess_gib`` --
        the smallest largest-stage excess over the capacity among the plans
        checked -- and ``failures``, the memory-check lines).
    """
    start = time.perf_counter()
    hardware = hardware or paper_hardware()
    options = options or SearchOptions()
    degrees = _check_degrees(data_parallel)
    if target_days is not None:
        require_positive("target_days", target_days)
    if max_accelerators is not None:
        require_positive_int("max_accelerators", max_accelerators)
    dataset = dataset_for(graph, dataset)
    plans = candidate_plans(graph, data_parallel=degrees, max_accelerators=max_accelerators, options=options)
    groups: dict[tuple, list[Plan]] = {}
    for plan in plans:
        groups.setdefault((plan.stages, plan.shard_stages, plan.fuse_accumulation), []).append(plan)

    common = {"kind": "plan-search-group", "workload": scenario_of(graph), "hardware": hardware_scenario(hardware),
              "dataset": repr(dataset), "version": __version__}
    tasks = [Task(function=search_group, shared=(graph,), args=(hardware, dataset, tuple(members)),
                  scenario=common | {"plans": [repr(p) for p in members]}, weight=len(members))
             for members in groups.values()]
    runner = replace(runner or Runner(), progress=options.progress)
    outcomes = run_tasks(tasks, runner, store, desc="plans", unit="plan")

    rows, memory_checks, simulated, closest_misfit = [], 0, 0, None
    for outcome in outcomes:  # in grid order, whatever order they finished in
        rows += outcome["rows"]
        memory_checks += outcome["memory_checks"]
        simulated += outcome["simulated"]
        misfit = outcome["closest_misfit"]
        if misfit is not None and (closest_misfit is None or misfit["excess_gib"] < closest_misfit["excess_gib"]):
            closest_misfit = misfit
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "pareto"])
    df = df.sort_values(["accelerators", "days_per_epoch", "utilization", "max_memory_gib", "plan"],
                        ascending=[True, True, False, True, True], kind="mergesort").reset_index(drop=True)
    df["pareto"] = pareto_mask(df)
    if target_days is not None:
        df["meets_target"] = df["days_per_epoch"] <= target_days
    df.attrs.update(candidates=len(plans), memory_checks=memory_checks, simulated=simulated,
                    elapsed_s=time.perf_counter() - start, target_days=target_days,
                    closest_misfit=None if len(df) else closest_misfit)
    return df


def search_group(graph: Graph, hardware: Hardware, dataset: Dataset, members: Sequence[Plan]) -> dict:
    """Search one placement's plans (a sweep task): ``rows`` of the fitting ones, ``memory_checks``,
    ``simulated`` and ``closest_misfit`` (see :func:`search_plans`)."""
    state = _SearchState(graph, hardware, dataset)
    state.search_group(list(members))
    return {"rows": state.rows, "memory_checks": state.memory_checks, "simulated": state.simulated,
            "closest_misfit": state.closest_misfit}


class _SearchState:
    """Memory checks and simulations of one placement's plans (see the module doc for the two pruning rules)."""

    def __init__(self, graph: Graph, hardware: Hardware, dataset: Dataset):
        self.graph, self.hardware, self.dataset = graph, hardware, dataset
        self.rows: list[dict] = []
        self.memory: dict[Plan, PlanEvaluation] = {}  # checked, not yet simulated
        self.memory_checks = 0
        self.simulated = 0
        self.closest_misfit: dict | None = None

    def checked(self, plan: Plan) -> PlanEvaluation:
        """``plan``'s memory check (its evaluation without a step), done once per plan."""
        ev = self.memory.get(plan)
        if ev is None:
            ev = self.memory[plan] = evaluate_plan(self.graph, plan, self.hardware, dataset=self.dataset,
                                                   simulate=False)
        return ev

    def fits(self, plan: Plan) -> bool:
        self.memory_checks += 1
        ev = self.checked(plan)
        if not ev.fits:
            del self.memory[plan]
            excess = float(ev.memory["excess_gib"].max())
            if self.closest_misfit is None or excess < self.closest_misfit["excess_gib"]:
                self.closest_misfit = {"plan": plan.describe(), "excess_gib": excess,
                                       "failures": ev.memory_failures()}
        return ev.fits

    def search_group(self, members: list[Plan]) -> None:
        """All plans of one placement (stages, shards, fusion); they differ in workers, buffers and schedule."""
        least = min(members, key=_memory_rank)
        if not self.fits(least):
            return
        known: dict[tuple, bool] = {_memory_rank(least)[1:]: True}
        chunked_from: int | None = None  # smallest chunked degree >= 2 that fits
        simulated: dict[tuple, PlanEvaluation] = {}  # (workers, schedule) -> an evaluation with a step simulated
        for plan in sorted(members, key=lambda p: (p.data_parallel, p.comm_buffer, p.schedule)):
            key = _memory_rank(plan)[1:]
            chunked = plan.comm_buffer == "chunked" and plan.data_parallel > 1
            if chunked and chunked_from is not None:
                ok = True
            elif key in known:
                ok = known[key]
            else:
                ok = known[key] = self.fits(plan)
            if chunked and ok and chunked_from is None:
                chunked_from = plan.data_parallel
            if ok:
                twin = simulated.get((plan.data_parallel, plan.schedule))
                simulated.setdefault((plan.data_parallel, plan.schedule), self.evaluate(plan, twin))

    def evaluate(self, plan: Plan, twin: "PlanEvaluation | None") -> "PlanEvaluation":
        """Simulate ``plan`` and add its row; reuse ``twin``'s step when only the gradient buffers differ.

        ``comm_buffer`` changes memory, not the step (:mod:`distsim.parallel`
        never reads it), so a twin with the same workers, schedule and table
        fractions has the same simulated step.
        """
        ev = self.memory.pop(plan, None) or evaluate_plan(self.graph, plan, self.hardware, dataset=self.dataset,
                                                          simulate=False)
        if twin is not None and ev.resolved.fractions == twin.resolved.fractions:
            ev = replace(ev, result=twin.result)
        else:
            ev = with_step(ev)
            self.simulated += 1
        if ev.fits:  # always, unless the pruning rules were wrong: never report a plan that does not fit
            self.rows.append(ev.summary() | {
                "stage_layers": [list(s) for s in ev.resolved.stages],
                "shard_stages": list(plan.shard_stages),
                "fuse_accumulation": plan.fuse_accumulation,
                "comm_buffer": plan.comm_buffer,
            })
        return ev


def _memory_rank(plan: Plan) -> tuple:
    """Sort key putting a placement's least-memory plan first; ``[1:]`` is its memory-equivalence key.

    Equivalent: no data parallelism; tensor buffers at any degree >= 2; chunked buffers at one degree.
    """
    if plan.data_parallel == 1:
        return (0, "none")
    if plan.comm_buffer == "chunked":
        return (1, "chunked", -plan.data_parallel)
    return (2, "tensor")


def pareto_mask(df: pd.DataFrame) -> pd.Series:
    """True for rows no other row dominates on (accelerators: fewer, days_per_epoch: fewer, utilization: higher).

    A row is dominated when another is no worse in all three and better in
    one.  Of rows with identical objectives only the first (in ``df``'s
    order) is marked, so the frontier lists each trade-off once.
    """
    acc = df["accelerators"].to_numpy(dtype=float)
    days = df["days_per_epoch"].to_numpy(dtype=float)
    util = df["utilization"].to_numpy(dtype=float)
    keep = np.zeros(len(df), dtype=bool)
    for i in range(len(df)):
        no_worse = (acc <= acc[i]) & (days <= days[i]) & (util >= util[i])
        better = (acc < acc[i]) | (days < days[i]) | (util > util[i])
        same_before = no_worse & ~better & (np.arange(len(df)) < i)
        keep[i] = not (no_worse & better).any() and not same_before.any()
    return pd.Series(keep, index=df.index, name="pareto")


def pareto_front(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``df`` on the Pareto frontier (:func:`pareto_mask`), in ``df``'s order."""
    return df[pareto_mask(df)]


def best_plan(df: pd.DataFrame, target_days: float | None = None) -> pd.Series | None:
    """The plan with the fewest accelerators, then the fewest days, among those within ``target_days``.

    ``None`` when no row meets the target (or ``df`` is empty).
    """
    if target_days is not None:
        df = df[df["days_per_epoch"] <= target_days]
    if not len(df):
        return None
    return df.sort_values(["accelerators", "days_per_epoch"], kind="mergesort").iloc[0]
