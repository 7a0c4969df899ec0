"""Evaluate a plan on hardware: simulated step time, epoch time, utilization and memory check.

``evaluate_plan(graph, plan, hardware)`` resolves the plan on the graph, lowers
it once (:func:`distsim.lower.lower`: op placement, gradient collectives),
checks each accelerator's memory from that lowering and simulates one step on
the hardware's topology from the same lowering.

Epoch time = steps per epoch x simulated step time, steps per epoch =
samples / (subbatch x data-parallel workers).  Algorithmic FLOP utilization =
algorithmic FLOPs of the step (all workers) / (accelerators x peak FLOP/s x
step time) -- see ``docs/metrics.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from . import evalcache, units
from .costmodels import utilization
from .datasets import DATASETS, Dataset, default_dataset_for
from .errors import ConfigError
from .graph import Graph
from .hardware import Hardware, paper_hardware
from .lower import Lowering, lower
from .memory import memory_check, memory_failures
from .parallel import simulate_plan
from .plan import Plan, ResolvedPlan
from .result import Result


@dataclass
class PlanEvaluation:
    """What a plan costs; :meth:`summary` is a flat dict (one row of a sweep)."""

    plan: Plan
    lowering: Lowering
    graph: Graph
    hardware: Hardware
    result: Result | None
    memory: pd.DataFrame
    steps_per_epoch: float

    @property
    def resolved(self) -> ResolvedPlan:
        return self.lowering.resolved

    @property
    def step_s(self) -> float:
        return self.result.step_time_s

    @property
    def batch(self) -> int:
        return subbatch_of(self.graph) * self.plan.micro_batches * self.plan.data_parallel

    @property
    def days_per_epoch(self) -> float:
        return units.to_days(self.steps_per_epoch * self.step_s)

    @property
    def utilization(self) -> float:
        return utilization(self.graph.flops * self.plan.micro_batches * self.plan.data_parallel, self.hardware.device.at_precision(self.graph.precision), self.step_s,
                           self.plan.accelerators)

    @property
    def fits(self) -> bool:
        return bool(self.memory["fits"].all())

    def memory_failures(self) -> list[str]:
        return memory_failures(self.memory)

    def summary(self) -> dict:
        """One flat row; the timing fields are None when the step was not simulated (memory only)."""
        timed = self.result is not None
        if timed:
            ops = self.result.ops
            comm = ops[ops["kind"] == "collective"]
            comm = comm[~comm["name"].str.startswith("send:")]
        return {
            "plan": self.plan.describe(),
            "data_parallel": self.plan.data_parallel,
            "stages": self.plan.stage_count,
            "embedding_shards": self.plan.embedding_shards,
            "schedule": self.plan.pipeline_schedule if self.plan.layer_granular else self.plan.schedule,
            "accelerators": self.plan.accelerators,
            "batch": self.batch,
            "step_s": self.step_s if timed else None,
            "gradient_comm_s": _busy_s(comm) if timed else None,
            "days_per_epoch": self.days_per_epoch if timed else None,
            "utilization": self.utilization if timed else None,
            "memory_gib": [round(x, 1) for x in self.memory["total_gib"]],
            "max_memory_gib": float(self.memory["total_gib"].max()),
            "fits": self.fits,
            "shard_fractions": None if self.plan.shard_fractions is None else
            [round(f, 4) for f in self.plan.shard_fractions],
        }


def _busy_s(frame: pd.DataFrame) -> float:
    """Seconds worker 0's first stage spends in gradient collectives (per device, summed)."""
    if frame.empty:
        return 0.0
    per_device = frame.groupby("device")["duration_s"].sum()
    return float(per_device.max())


def subbatch_of(graph: Graph) -> int:
    return int(graph.dims.get("batch", graph.dims.get("samples", 1)))


def dataset_for(graph: Graph, dataset: str | Dataset | None) -> Dataset:
    if isinstance(dataset, Dataset):
        return dataset
    if dataset is None:
        return default_dataset_for(graph.name)
    return DATASETS.get(dataset)


def evaluate_plan(graph: Graph, plan: Plan, hardware: Hardware | None = None, *,
                  dataset: str | Dataset | None = None, durations=None, simulate: bool = True) -> PlanEvaluation:
    """Resolve ``plan`` on ``graph`` (one worker's sub-batch), lower it, check memory and simulate one step.

    Parameters
    ----------
    graph : Graph
        One worker's step.
    plan : Plan
        How it is spread over accelerators.
    hardware : Hardware, optional
        Where it runs (default: the ``paper-2019`` preset).
    dataset : str or Dataset, optional
        What an epoch is (default: the workload's).
    durations : sequence of float, optional
        Seconds per op (default: the hardware's cost model).
    simulate : bool
        False: memory check only (``result`` is None).

    Shard fractions left open are chosen to even out the memory of the
    accelerators holding pieces (:func:`balance_shards`).
    """
    hardware = hardware or paper_hardware()
    if plan.fuse_accumulation:
        if durations is not None:
            raise ConfigError("durations are per op of the graph as given; with fuse_accumulation the ops change, "
                              "so leave durations to the hardware's cost model")
        graph = evalcache.fused(graph)
    lowering = lower(graph, plan.resolve(graph))
    if lowering.resolved.table is not None and plan.shard_fractions is None:
        lowering = balance_shards(lowering, hardware.capacity_bytes)
    memory = memory_check(lowering, hardware.capacity_bytes)
    steps = dataset_for(graph, dataset).steps_per_epoch(subbatch_of(graph) * plan.micro_batches * plan.data_parallel)
    ev = PlanEvaluation(plan=lowering.plan, lowering=lowering, graph=graph, hardware=hardware, result=None,
                        memory=memory, steps_per_epoch=steps)
    return with_step(ev, durations) if simulate else ev


def with_step(ev: PlanEvaluation, durations=None) -> PlanEvaluation:
    """``ev`` (from ``evaluate_plan(..., simulate=False)``) with its step simulated: what
    ``evaluate_plan(..., simulate=True)`` returns, without lowering and checking memory again."""
    if durations is None:
        durations = evalcache.op_times(ev.graph, ev.hardware.device, ev.hardware.cost_model)
    return replace(ev, result=_simulate(ev.lowering, ev.hardware, durations))


def simulate_step(graph: Graph, plan: Plan, hardware: Hardware | None = None, *, durations=None,
                  mode: str = "auto", all_workers: bool = False) -> Result:
    """Simulate one step of ``plan`` on ``hardware`` (no memory check, no epoch): the engine's :class:`Result`.

    ``durations`` (seconds per op) default to the hardware's cost model;
    ``mode`` and ``all_workers`` are passed to :func:`distsim.parallel.simulate_plan`.
    """
    hardware = hardware or paper_hardware()
    if plan.fuse_accumulation:
        graph = evalcache.fused(graph)
    lowering = lower(graph, plan.resolve(graph))
    if lowering.resolved.table is not None and plan.shard_fractions is None:
        lowering = balance_shards(lowering, hardware.capacity_bytes)
    if durations is None:
        durations = evalcache.op_times(graph, hardware.device, hardware.cost_model)
    return _simulate(lowering, hardware, durations, mode=mode, all_workers=all_workers)


def _simulate(lowering: Lowering, hardware: Hardware, durations, **options) -> Result:
    dp, stages = lowering.plan.data_parallel, lowering.stages * lowering.plan.tensor_parallel
    topology = hardware.topology_for(dp, stages)
    return simulate_plan(lowering, durations, topology, nodes=hardware.placement_for(dp, stages, topology), **options)


def balance_shards(lowering: Lowering, capacity_bytes: float) -> Lowering:
    """Choose the table's row fractions so the piece-holding accelerators' peaks are as even as possible.

    Water filling: with no piece, stage ``k`` needs ``base_k``; a fraction
    ``f`` adds ``f x T``, where ``T`` is what the whole table adds to the first
    piece holder (the table, its optimizer state and its gradient rows'
    buffers: measured, since a buffer is a maximum, not a sum).  The level ``L`` with ``sum_k max(0, L - base_k) = T`` gives
    ``f_k = max(0, L - base_k) / T``; the fullest stages may get nothing.
    """
    stages = lowering.plan.shard_stages
    empty = memory_check(lowering.with_fractions(tuple(0.0 for _ in stages)), capacity_bytes)
    base = [float(empty["total_gib"][s]) * units.GiB for s in stages]
    whole = memory_check(lowering.with_fractions(tuple(float(i == 0) for i in range(len(stages)))), capacity_bytes)
    table = (float(whole["total_gib"][stages[0]]) - base[0] / units.GiB) * units.GiB
    low = sorted(base)
    for k in range(1, len(low) + 1):  # fill the k emptiest stages to a common level
        level = (table + sum(low[:k])) / k
        if k == len(low) or level <= low[k]:
            break
    fractions = tuple(max(0.0, level - b) / table for b in base)
    rp = lowering.resolved
    return lower(lowering.graph, replace(rp, fractions=fractions, plan=replace(rp.plan, shard_fractions=fractions)))
