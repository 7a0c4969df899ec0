"""One synchronous data-parallel training step as simulator tasks.

Every worker runs the whole graph on its share of the batch; each layer's
gradients (see :func:`gradient_layers`, grouped by layer) are
all-reduced as one collective (a Horovod-style fusion per layer) as soon as
the last backward op producing them has finished, and the ops reading them
(the layer's update) wait for that all-reduce.  Should an op read a gradient
before its layer's last one is produced, the gradients produced so far are
all-reduced first (``allreduce:LAYER#2`` then covers the rest).  With ``overlap=True`` the
all-reduces run on a ``"comm"`` stream beside the ``"compute"`` stream, so
the all-reduce of the last layer overlaps the backward pass of earlier
layers; with ``overlap=False`` they are issued on the compute stream (after
the op that completes the layer's gradients) and block it.

Symmetry: all workers run identical ops and start together, so by default
only worker 0's streams are simulated (``symmetric=True``) while each
all-reduce still runs over all ``workers`` nodes of the topology.  Because a
worker's all-reduces are serialised on one stream, no two collectives share
links at once and the representative result equals simulating every worker
(``symmetric=False``; tests check both agree).
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np

from .device import Device, get_device
from .errors import ConfigError
from .graph import Graph, Op, Phase
from .plan import gradient_of
from .simulator import Simulator
from .topology import Topology, build_topology


def roofline_op_time(device: Device) -> Callable[[Op], float]:
    """``op -> max(flops / achievable FLOP/s, nbytes / achievable bytes/s)`` (seconds).

    A stand-in until :func:`distsim.costmodels.op_times_s` lands; pass that
    function's array as ``op_time_s`` instead.
    """
    flop_rate, byte_rate = device.achievable_flop_per_s, device.achievable_bytes_per_s
    return lambda op: max(op.flops / flop_rate, op.nbytes / byte_rate)


def op_durations(graph: Graph, op_time_s: Callable[[Op], float] | Sequence[float] | None,
                 device: Device | str = "paper-v100") -> np.ndarray:
    """Seconds per op of ``graph``: from a callable, an array (one per op) or the roofline of ``device``."""
    if op_time_s is None:
        op_time_s = roofline_op_time(get_device(device) if isinstance(device, str) else device)
    if callable(op_time_s):
        times = np.array([float(op_time_s(op)) for op in graph.ops], dtype=float)
    else:
        times = np.asarray(op_time_s, dtype=float)
        if times.shape != (len(graph.ops),):
            raise ConfigError(f"op_time_s has {times.size} entries; graph {graph.name!r} has {len(graph.ops)} ops")
    if len(times) and (not np.all(np.isfinite(times)) or times.min() < 0):
        raise ConfigError("op_time_s must give finite, non-negative seconds for every op")
    return times


def critical_path_s(graph: Graph, durations: Sequence[float]) -> float:
    """Longest dependency chain of ``graph`` with the given op durations (a lower bound on a step)."""
    finish = np.zeros(len(graph.ops))
    for i in range(len(graph.ops)):
        preds = graph.predecessors(i)
        finish[i] = durations[i] + (max(finish[p] for p in preds) if preds else 0.0)
    return float(finish.max()) if len(finish) else 0.0


def gradient_layers(graph: Graph) -> dict[str, str]:
    """The tensors to all-reduce (the parameters' final gradients,
    :func:`distsim.plan.gradient_of`), each with the layer of the update that
    reads it.  Per-time-step partial gradients, accumulated before the
    update, are not communicated.
    """
    update_layer: dict[str, str] = {}
    for op in graph.ops:
        if op.phase == Phase.UPDATE:
            for name in op.inputs:
                update_layer.setdefault(name, op.layer)
    return {g: update_layer[g] or graph.tensors[g].layer or graph.producer(g).layer for g in gradient_of(graph)}


def simulate_data_parallel_step(graph: Graph, topology: Topology | None = None, *,
                                workers: int | Iterable | None = None,
                                op_time_s: Callable[[Op], float] | Sequence[float] | None = None,
                                device: Device | str = "paper-v100", algorithm: str = "ring",
                                overlap: bool = True, mode: str = "auto", symmetric: bool = True,
                                **algorithm_options):
    """Simulate one data-parallel step of ``graph`` (the per-worker graph) on ``workers``.

    Parameters
    ----------
    graph : Graph
        One worker's step (its sub-batch).
    topology : Topology, optional
        Default: a ``ring`` of ``workers`` accelerators at 56 GB/s.
    workers : int, list of nodes or None
        The data-parallel ranks (default: every accelerator; 1 without a topology).
    op_time_s : callable or array, optional
        Seconds per op (``costmodels.op_times_s(graph, device, model)`` fits);
        default: roofline of ``device``.
    algorithm, mode, **algorithm_options
        The all-reduce algorithm, simulation mode and options (see
        :mod:`distsim.collectives`).
    overlap : bool
        All-reduce on a separate stream (True) or on the compute stream.
    symmetric : bool
        Simulate worker 0 only (exact here; see module doc) or every worker.

    Returns
    -------
    Result
        With ``result.critical_path_s`` (compute only) set as an attribute.
    """
    if topology is None:
        count = 1 if workers is None else workers
        if not isinstance(count, int):
            raise ConfigError("workers must be a count when no topology is given")
        topology = build_topology("ring", count)
    parts = topology.participants(workers)
    durations = op_durations(graph, op_time_s, device)
    sim_devices = parts[:1] if symmetric else parts
    producer = {t: i for i, op in enumerate(graph.ops) for t in op.outputs}
    grad_layer = {} if len(parts) == 1 else gradient_layers(graph)
    last_producer: dict[str, int] = {}
    for name, layer in grad_layer.items():
        last_producer[layer] = max(last_producer.get(layer, -1), producer[name])
    flush_at: dict[int, list[str]] = {}
    for layer, i in last_producer.items():
        flush_at.setdefault(i, []).append(layer)
    sim = Simulator(topology)
    task_of: dict = {d: [0] * len(graph.ops) for d in sim_devices}
    pending: dict[str, list] = {}  # layer -> [producer indices, bytes, tensors]
    collective_of: dict[str, int] = {}  # gradient tensor -> all-reduce task
    issued: dict[str, int] = {}
    stream = "comm" if overlap else "compute"

    def flush(layer: str) -> None:
        producers, nbytes, tensors = pending.pop(layer)
        issued[layer] = issued.get(layer, 0) + 1
        name = f"allreduce:{layer}" + (f"#{issued[layer]}" if issued[layer] > 1 else "")
        deps = [task_of[d][p] for d in sim_devices for p in sorted(set(producers))]
        tid = sim.add_collective(name, "allreduce", nbytes, participants=parts, algorithm=algorithm,
                                 devices=sim_devices, deps=deps, stream=stream, mode=mode, layer=layer,
                                 phase="bwd", **algorithm_options)
        for t in tensors:
            collective_of[t] = tid

    for i, op in enumerate(graph.ops):
        for t in op.inputs:  # a gradient consumed before its layer is complete: reduce what is ready
            if t in grad_layer and t not in collective_of and grad_layer[t] in pending:
                flush(grad_layer[t])
        waits = sorted({collective_of[t] for t in op.inputs if t in collective_of})
        preds = sorted(graph.predecessors(i))
        for d in sim_devices:
            task_of[d][i] = sim.add_compute(d, op.name, float(durations[i]), deps=[task_of[d][p] for p in preds] + waits,
                                            layer=op.layer, phase=op.phase.value)
        for t in op.outputs:
            if t in grad_layer:
                entry = pending.setdefault(grad_layer[t], [[], 0, []])
                entry[0].append(i)
                entry[1] += graph.tensors[t].nbytes
                entry[2].append(t)
        for layer in flush_at.get(i, ()):
            if layer in pending:
                flush(layer)
    result = sim.run()
    result.critical_path_s = critical_path_s(graph, durations)
    return result
