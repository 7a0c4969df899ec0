"""Cost models: seconds per op of one training step on one accelerator.

Each model is one module registered in :data:`COST_MODELS` (from optimistic to
less so; Hestness et al., PPoPP 2019, §5.2 and §6.1):

``roofline``
    Graph level: ``max(C / (eta_c peak), A / (eta_a bw))`` over the step's
    algorithmic FLOPs C and bytes A.
``per_op``
    Sum over ops of each op's own roofline time (memory-bound ops cost their
    bandwidth time even when the step as a whole is compute-bound).
``tiled_best``
    ``per_op`` plus the re-streaming traffic of matrix multiplies whose
    operands exceed the cache, with the best of three square-tile blockings
    per multiply: the optimistic bound a tuned library approaches.
``cache_aware``
    The paper's model: ``per_op`` plus the re-streaming traffic of a tiled
    matrix multiply with Coleman & McKinley's (1995) tile size selection.

``COST_MODELS.get(name)`` gives a :class:`~distsim.costmodels.base.CostModel`;
:func:`op_times_s` and :func:`step_s` are the shortcuts used everywhere.
Algorithmic FLOP utilization = algorithmic FLOPs / (peak FLOP/s x time).
"""

from __future__ import annotations

import math

import numpy as np

from ..registry import Registry

COST_MODELS: Registry = Registry("cost model", packages=["distsim.costmodels"])

#: The model plans and experiments use unless told otherwise (the paper's Table 5 model).
DEFAULT_COST_MODEL = "cache_aware"


def cost_model_names() -> list[str]:
    """Registered cost-model names, from the most optimistic (``rank``) to the least, then by name."""
    return sorted(COST_MODELS.names(), key=lambda name: (COST_MODELS.get(name).rank, name))


def get_cost_model(name: str):
    """The registered model ``name`` (ConfigError listing the accepted names)."""
    return COST_MODELS.get(name)


def op_times_s(graph, device, model: str = DEFAULT_COST_MODEL) -> np.ndarray:
    """Seconds per op of ``graph`` on ``device`` under cost model ``model`` (array in graph order).

    The device runs at its peak for the graph's precision (:meth:`distsim.device.Device.at_precision`).
    """
    return get_cost_model(model).op_times_s(graph, device.at_precision(graph.precision))


def op_bytes(graph, device, model: str = DEFAULT_COST_MODEL) -> np.ndarray:
    """Off-chip bytes per op under ``model`` (algorithmic, or with re-streaming traffic)."""
    return get_cost_model(model).op_bytes(graph, device.at_precision(graph.precision))


def step_s(graph, device, model: str = DEFAULT_COST_MODEL) -> float:
    """Seconds of one step on one accelerator under ``model`` (the sum of its op times)."""
    return float(op_times_s(graph, device, model).sum())


def roofline_step_s(graph, device) -> float:
    """Graph-level roofline step time (seconds)."""
    return step_s(graph, device, "roofline")


def per_op_step_s(graph, device) -> float:
    """Sum of per-op roofline times (seconds)."""
    return step_s(graph, device, "per_op")


def cache_aware_step_s(graph, device) -> float:
    """Step time of the paper's cache-aware model (seconds)."""
    return step_s(graph, device, "cache_aware")


def utilization(flops: float, device, seconds: float, accelerators: int = 1) -> float:
    """Algorithmic FLOP utilization: FLOPs / (accelerators x peak FLOP/s x seconds)."""
    return flops / (accelerators * device.flop_per_s * seconds)


def analyze_step(graph, device) -> dict:
    """Everything ``distsim step --json`` prints, as a flat dict (SI units).

    For every registered model ``NAME``: ``NAME_step_s`` (s), ``NAME_utilization``
    (fraction) and ``NAME_bytes`` (off-chip bytes of the step under that model).
    """
    device = device.at_precision(graph.precision)
    flops, nbytes = graph.flops, graph.nbytes
    out = {
        "workload": graph.name,
        "device": device.name,
        "precision": device.precision,
        "params": graph.params,
        "flops": flops,
        "bytes": nbytes,
        "operational_intensity": flops / nbytes if nbytes else math.inf,
        "footprint_total_bytes": graph.footprint_total_bytes,
        "footprint_min_bytes": graph.footprint_min_bytes(),
        "persistent_bytes": graph.persistent_bytes,
        "cache_bytes": device.cache_bytes,
    }
    for name in cost_model_names():
        model = get_cost_model(name)
        seconds = float(model.op_times_s(graph, device).sum())
        out[f"{name}_step_s"] = seconds
        out[f"{name}_utilization"] = utilization(flops, device, seconds)
        out[f"{name}_bytes"] = float(model.op_bytes(graph, device).sum())
    return out
