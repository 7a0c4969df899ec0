"""Evaluate a plan: simulated step time, epoch time, utilization and memory check.

Epoch time = steps per epoch x simulated step time, steps per epoch =
samples / (subbatch x data-parallel workers).  Algorithmic FLOP utilization =
algorithmic FLOPs of the step (all workers) / (accelerators x peak FLOP/s x
step time) -- see ``docs/metrics.md``.

Calibrated constant
-------------------
:data:`HOP_LATENCY_S` is the per-hop latency (alpha) of the links of the
paper's system: the fixed cost of one ring step (a message on one link,
including the software overhead of launching and synchronising it).  The
paper gives none; it was fitted once, to the utilization drop between Table 5's
two data-parallel rows (512 -> 1024 workers, 38% -> 34%), and is used
unchanged by every experiment (``docs/reproduction.md`` says what it then
predicts).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from . import units
from .costmodel import MODES, op_times_s, utilization
from .datasets import DATASETS, Dataset, default_dataset_for
from .device import Device, get_device
from .errors import ConfigError, require_positive
from .graph import Graph
from .memory import memory_check, memory_failures
from .parallel import plan_topology, simulate_plan
from .plan import Plan, ResolvedPlan
from .result import Result
from .topology import DEFAULT_BANDWIDTH_BYTES_PER_S, Topology
from .transforms import fuse_gradient_accumulation

#: Per-hop latency of the paper's links (seconds); fitted, see module doc.
HOP_LATENCY_S = 75e-6
#: Link bandwidth of the paper's system (Table 4): 56 GB/s.
LINK_BANDWIDTH_BYTES_PER_S = DEFAULT_BANDWIDTH_BYTES_PER_S


@dataclass(frozen=True, kw_only=True)
class System:
    """Where a plan runs: the accelerator and its links (the default topology is a plan-shaped 2-D torus)."""

    device: Device
    link_bandwidth_bytes_per_s: float = LINK_BANDWIDTH_BYTES_PER_S
    hop_latency_s: float = HOP_LATENCY_S
    memory_bytes: float | None = None  # default: the device's
    cost_mode: str = "cache_aware"

    def __post_init__(self):
        require_positive("link_bandwidth_bytes_per_s", self.link_bandwidth_bytes_per_s)
        require_positive("hop_latency_s", self.hop_latency_s, allow_zero=True)
        if self.memory_bytes is not None:
            require_positive("memory_bytes", self.memory_bytes)
        if self.cost_mode not in MODES:
            raise ConfigError(f"cost_mode must be one of {', '.join(MODES)}, got {self.cost_mode!r}")

    @property
    def capacity_bytes(self) -> float:
        return self.memory_bytes if self.memory_bytes is not None else self.device.memory_bytes

    def topology_for(self, plan: Plan) -> Topology:
        return plan_topology(plan.data_parallel, plan.stage_count, bandwidth_bytes_per_s=self.link_bandwidth_bytes_per_s,
                             latency_s=self.hop_latency_s)


def paper_system(device: str | Device = "paper-v100", **overrides) -> System:
    """The Table 4 system: the accelerator, 56 GB/s links, :data:`HOP_LATENCY_S`."""
    dev = get_device(device) if isinstance(device, str) else device
    return System(device=dev, **overrides)


@dataclass
class PlanEvaluation:
    """What a plan costs; :meth:`summary` is a flat dict (one row of a sweep)."""

    plan: Plan
    resolved: ResolvedPlan
    graph: Graph
    system: System
    result: Result | None
    memory: pd.DataFrame
    steps_per_epoch: float

    @property
    def step_s(self) -> float:
        return self.result.step_time_s

    @property
    def batch(self) -> int:
        return subbatch_of(self.graph) * self.plan.data_parallel

    @property
    def days_per_epoch(self) -> float:
        return units.to_days(self.steps_per_epoch * self.step_s)

    @property
    def utilization(self) -> float:
        return utilization(self.graph.flops * self.plan.data_parallel, self.system.device, self.step_s,
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
            "schedule": self.plan.schedule,
            "accelerators": self.plan.accelerators,
            "batch": self.batch,
            "step_s": self.step_s if timed else None,
            "gradient_comm_s": _busy_s(comm) if timed else None,
            "days_per_epoch": self.days_per_epoch if timed else None,
            "utilization": self.utilization if timed else None,
            "memory_gb": [round(x, 1) for x in self.memory["total_gib"]],
            "max_memory_gb": float(self.memory["total_gib"].max()),
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


def evaluate_plan(graph: Graph, plan: Plan, system: System | None = None, *, dataset: str | Dataset | None = None,
                  topology: Topology | None = None, durations=None, simulate: bool = True) -> PlanEvaluation:
    """Resolve ``plan`` on ``graph`` (one worker's sub-batch), check memory and simulate one step.

    Shard fractions left open are chosen to even out the memory of the
    accelerators holding pieces (:func:`balance_shards`).  ``durations``
    (seconds per op) default to ``costmodel.op_times_s(graph, device, system.cost_mode)``.
    """
    system = system or paper_system()
    if plan.fuse_accumulation:
        if durations is not None:
            raise ConfigError("durations are per op of the graph as given; with fuse_accumulation the ops change, "
                              "so leave durations to the system's cost model")
        graph = fuse_gradient_accumulation(graph)
    rp = plan.resolve(graph)
    if rp.table is not None and plan.shard_fractions is None:
        rp = balance_shards(graph, rp, system.capacity_bytes)
    memory = memory_check(graph, rp, system.capacity_bytes)
    steps = dataset_for(graph, dataset).steps_per_epoch(subbatch_of(graph) * plan.data_parallel)
    result = None
    if simulate:
        if durations is None:
            durations = op_times_s(graph, system.device, system.cost_mode)
        topo = topology if topology is not None else (
            system.topology_for(plan) if plan.accelerators > 1 else None)
        result = simulate_plan(graph, rp, durations, topo)
    return PlanEvaluation(plan=rp.plan, resolved=rp, graph=graph, system=system, result=result, memory=memory,
                          steps_per_epoch=steps)


def balance_shards(graph: Graph, rp: ResolvedPlan, capacity_bytes: float) -> ResolvedPlan:
    """Choose the table's row fractions so the piece-holding accelerators' peaks are as even as possible.

    Water filling: with no piece, stage ``k`` needs ``base_k``; a fraction
    ``f`` adds ``f x T``, where ``T`` is what the whole table adds to the first
    piece holder (the table, its optimizer state and its gradient rows'
    buffers: measured, since a buffer is a maximum, not a sum).  The level ``L`` with ``sum_k max(0, L - base_k) = T`` gives
    ``f_k = max(0, L - base_k) / T``; the fullest stages may get nothing.
    """
    stages = rp.plan.shard_stages
    empty = memory_check(graph, rp.with_fractions(tuple(0.0 for _ in stages)), capacity_bytes)
    base = [float(empty["total_gib"][s]) * units.GiB for s in stages]
    whole = memory_check(graph, rp.with_fractions(tuple(float(i == 0) for i in range(len(stages)))), capacity_bytes)
    table = (float(whole["total_gib"][stages[0]]) - base[0] / units.GiB) * units.GiB
    low = sorted(base)
    for k in range(1, len(low) + 1):  # fill the k emptiest stages to a common level
        level = (table + sum(low[:k])) / k
        if k == len(low) or level <= low[k]:
            break
    fractions = tuple(max(0.0, level - b) / table for b in base)
    return replace(rp, fractions=fractions, plan=replace(rp.plan, shard_fractions=fractions))
