"""Search of layer-granular plans: tensor x pipeline x data parallelism x micro-batch x schedule x ZeRO x recompute.

For a workload whose graph is one micro-batch (``gpt``: option ``micro_batch``),
a number of GPUs and a global batch, :func:`search_layer_plans` tries every
combination of

- tensor-parallel degree ``t``: powers of two up to ``max_tensor_parallel``
  (default 8, one DGX server), with sequence parallelism tried for ``t > 1``;
- pipeline degree ``p``: every divisor of the layers between the graph's
  first and last (:meth:`distsim.plan.Plan.chunks`) with ``t p`` dividing the GPUs;
- data parallelism ``d = GPUs / (t p)``, which must divide the global batch;
- micro-batch size ``b`` (powers of two up to ``max_micro_batch``) dividing
  ``batch / d``, so ``m = batch / (d b)`` micro-batches;
- schedule ``1f1b`` and ``interleaved`` with two chunks a stage (when
  ``p > 1``, ``m`` is a multiple of ``p`` and a stage has an even number of
  layers); ``gpipe`` only if asked (``schedules``): its bubble equals 1F1B's
  and it holds more micro-batches, so it never reaches the frontier;
- ``zero`` in ``zero_stages`` and ``recompute`` in ``recompute_modes``.

Memory first (a memory check costs a lowering, no simulation); plans that fit
are simulated.  The result has one row per fitting plan and ``pareto`` marks
the frontier over (GPUs: fewer, iteration time: shorter, memory of the fullest
GPU: less).
"""

from __future__ import annotations

import itertools
import time
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .costmodels import op_times_s
from .errors import ConfigError, require_positive_int
from .evaluate import evaluate_plan
from .graph import Graph
from .hardware import Hardware
from .plan import Plan

COLUMNS = ("plan", "accelerators", "tensor_parallel", "sequence_parallel", "pipeline_parallel", "data_parallel",
           "micro_batch", "micro_batches", "pipeline_schedule", "layers_per_virtual_stage", "zero", "recompute",
           "step_s", "samples_per_s", "utilization", "max_memory_gib", "pareto")


def _powers_of_two(limit: int) -> list[int]:
    return [2 ** i for i in range(limit.bit_length()) if 2 ** i <= limit]


def layer_plan_candidates(layers: int, gpus: int, batch: int, *, max_tensor_parallel: int = 8,
                          max_micro_batch: int = 16, zero_stages: Sequence[int] = (0, 1),
                          schedules: Sequence[str] = ("1f1b", "interleaved"),
                          recompute_modes: Sequence[str] = ("none", "selective", "full")
                          ) -> list[tuple[int, Plan]]:
    """``(micro-batch size, plan)`` for every point of the grid (module doc); ``layers`` between the ends."""
    out = []
    for t, p, b in itertools.product(_powers_of_two(max_tensor_parallel), range(1, layers + 1),
                                     _powers_of_two(max_micro_batch)):
        if layers % p or gpus % (t * p):
            continue
        d = gpus // (t * p)
        if batch % (d * b):
            continue
        m = batch // (d * b)
        tried = [("1f1b", None)] + ([("gpipe", None)] if p > 1 and "gpipe" in schedules else [])
        if "interleaved" in schedules and p > 1 and m % p == 0 and (layers // p) % 2 == 0:
            tried.append(("interleaved", layers // p // 2))
        for (schedule, per_virtual), sp, zero, recompute in itertools.product(
                tried, (False, True) if t > 1 else (False,), zero_stages, recompute_modes):
            if zero and d == 1:
                continue
            out.append((b, Plan(data_parallel=d, tensor_parallel=t, sequence_parallel=sp, pipeline_parallel=p,
                                micro_batches=m, pipeline_schedule=schedule, layers_per_virtual_stage=per_virtual,
                                zero=zero, recompute=recompute)))
    return out


def search_layer_plans(build: Callable[[int], Graph], hardware: Hardware, *, gpus: Sequence[int], batch: int,
                       progress: bool | None = None, **grid) -> pd.DataFrame:
    """Every fitting layer-granular plan of ``build(micro_batch)`` on ``gpus`` GPUs for a global ``batch``.

    Parameters
    ----------
    build : callable
        ``build(micro_batch) -> Graph``: one micro-batch of the workload.
    hardware : Hardware
        Where it runs.
    gpus : sequence of int
        GPU counts to try.
    batch : int
        Global batch (sequences).
    progress : bool, optional
        Progress bar (None: only on a terminal).
    **grid
        Passed to :func:`layer_plan_candidates`.
    """
    start = time.perf_counter()
    require_positive_int("batch", batch)
    graphs: dict[int, Graph] = {}
    durations: dict[int, np.ndarray] = {}
    first = build(1)
    layers = len(first.layers()) - 2
    if layers < 1:
        raise ConfigError(f"workload {first.name!r} has {layers + 2} layers; a pipeline search needs layers "
                          f"between its first and last")
    candidates = [(n, b, plan) for n in gpus for b, plan in
                  layer_plan_candidates(layers, require_positive_int("gpus", n), batch, **grid)]
    rows, checked = [], 0
    from tqdm import tqdm

    with tqdm(total=len(candidates), desc="plans", unit="plan", leave=False,
              disable={None: None, True: False, False: True}[progress]) as bar:
        for n, b, plan in candidates:
            bar.update(1)
            if b not in graphs:
                graphs[b] = build(b)
                durations[b] = op_times_s(graphs[b], hardware.device, hardware.cost_model)
            graph = graphs[b]
            checked += 1
            ev = evaluate_plan(graph, plan, hardware, simulate=False)
            if not ev.fits:
                continue
            ev = evaluate_plan(graph, plan, hardware, durations=durations[b])
            rows.append({
                "plan": plan.describe(), "accelerators": plan.accelerators,
                "tensor_parallel": plan.tensor_parallel, "sequence_parallel": plan.sequence_parallel,
                "pipeline_parallel": plan.pipeline_parallel, "data_parallel": plan.data_parallel, "micro_batch": b,
                "micro_batches": plan.micro_batches, "pipeline_schedule": plan.pipeline_schedule,
                "layers_per_virtual_stage": plan.layers_per_virtual_stage, "zero": plan.zero,
                "recompute": plan.recompute, "step_s": ev.step_s, "samples_per_s": batch / ev.step_s,
                "utilization": ev.utilization, "max_memory_gib": float(ev.memory["total_gib"].max()),
            })
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "pareto"])
    df = df.sort_values(["accelerators", "step_s", "max_memory_gib", "plan"], kind="mergesort").reset_index(drop=True)
    df["pareto"] = _pareto(df)
    df.attrs.update(candidates=len(candidates), memory_checks=checked, simulated=len(rows),
                    elapsed_s=time.perf_counter() - start)
    return df


def _pareto(df: pd.DataFrame) -> np.ndarray:
    """Rows no other row beats on (accelerators, step_s, max_memory_gib), all lower-is-better."""
    values = df[["accelerators", "step_s", "max_memory_gib"]].to_numpy(dtype=float)
    keep = np.zeros(len(df), dtype=bool)
    for i in range(len(df)):
        no_worse = (values <= values[i]).all(axis=1)
        better = (values < values[i]).any(axis=1)
        dominated = (no_worse & better).any() or (no_worse & ~better)[:i].any()
        keep[i] = not dominated
    return keep
