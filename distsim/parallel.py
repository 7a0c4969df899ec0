"""One training step of a :class:`~distsim.plan.Plan` as simulator tasks.

Placement
    Data-parallel worker ``w``'s stage ``s`` runs on topology node
    ``w * stages + s`` (:func:`plan_topology` builds the default: a 2-D torus
    ``data_parallel x stages``, so each stage's data-parallel ring and each
    worker's chain of stages use direct links).  All workers are identical,
    so only worker 0's streams are simulated; each gradient collective still
    runs over the stage's whole data-parallel column (see
    :mod:`distsim.dataparallel` for why this is exact).

Layer parallelism
    Each op runs on the stage of its layer.  A tensor needed on another stage
    is sent there once (point-to-point over the topology), when it is ready.
    Schedules: ``wavefront`` -- a stage's stream takes its ops in graph order
    and each starts as soon as its inputs have arrived, so for a recurrent
    model time step ``t`` of layer ``l+1`` runs while layer ``l`` computes
    step ``t+1`` (the diagonal wavefront); ``layerwise`` -- a tensor leaves its
    stage only when that stage has finished everything before it in the same
    phase, so stages take turns (no pipelining).

Embedding sharding
    Ops of ``shard_layer`` that read its table (the lookup, the sparse update)
    are split by row piece: piece ``k`` runs on its stage for fraction ``f_k``
    of the op's time; its inputs are sent there (``f_k`` of their bytes: the
    rows it owns) and its outputs sent to the consumers' stages.

Gradients (synchronous SGD, one collective per gradient tensor)
    Dense gradients are all-reduced over the stage's column; sparse ones
    (:func:`distsim.plan.sparse_gradients`) are all-gathered -- each worker
    contributes its rows -- or all-reduced as dense tensors
    (``plan.sparse_gradients``).  With sharding each piece is all-gathered
    over its own stage's column.  ``plan.overlap`` puts the collectives on a
    ``comm`` stream beside compute; otherwise they block the compute stream.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import ConfigError
from .graph import Graph
from .plan import ResolvedPlan, gradient_of, sparse_gradients
from .result import Result
from .simulator import Simulator
from .topology import DEFAULT_BANDWIDTH_BYTES_PER_S, DEFAULT_LATENCY_S, Topology, build_topology


def plan_topology(data_parallel: int, stages: int, *, bandwidth_bytes_per_s: float = DEFAULT_BANDWIDTH_BYTES_PER_S,
                  latency_s: float = DEFAULT_LATENCY_S) -> Topology:
    """The default interconnect of a plan: a ``data_parallel x stages`` 2-D torus of alpha-beta links."""
    n = data_parallel * stages
    return build_topology("torus2d", n, dims=(data_parallel, stages), bandwidth_bytes_per_s=bandwidth_bytes_per_s,
                          latency_s=latency_s)


def node_of(worker: int, stage: int, stages: int) -> int:
    return worker * stages + stage


def split_ops(graph: Graph, rp: ResolvedPlan) -> set[int]:
    """Indices of the ops split across the table's row pieces."""
    if rp.table is None:
        return set()
    return {i for i, op in enumerate(graph.ops) if op.layer == rp.plan.shard_layer and rp.table in op.inputs}


def sequence_streams(graph: Graph) -> dict[int, str]:
    """Per-step reads of a stacked-then-unstacked sequence -> the per-step tensor they copy.

    The pattern is TensorFlow's TensorArray hand-over between two recurrent
    layers: per-step writes ``w_0..w_{T-1}`` -> gather ``seq`` -> scatter
    ``ta`` (the gather's only consumer) -> reads ``x_0..x_{T-1}``.  Under the
    wavefront schedule read ``k`` waits for ``w_k`` only (sent on its own),
    so the consumer layer runs step ``k`` as soon as the producer has it.
    """
    out: dict[int, str] = {}
    tensors = graph.tensors
    for op in graph.ops:
        if len(op.inputs) < 2 or len(op.outputs) != 1:
            continue
        seq = op.outputs[0]
        if sum(tensors[t].nbytes for t in op.inputs) != tensors[seq].nbytes:
            continue
        scatter = graph.consumer_indices(seq)
        if len(scatter) != 1:
            continue
        sc = graph.ops[scatter[0]]
        if sc.inputs != (seq,) or len(sc.outputs) != 1 or tensors[sc.outputs[0]].nbytes != tensors[seq].nbytes:
            continue
        reads = graph.consumer_indices(sc.outputs[0])
        step_bytes = tensors[seq].nbytes // len(op.inputs)
        if len(reads) != len(op.inputs) or any(
                graph.ops[r].inputs != sc.outputs or len(graph.ops[r].outputs) != 1
                or tensors[graph.ops[r].outputs[0]].nbytes != step_bytes for r in reads):
            continue
        for r, w in zip(sorted(reads), op.inputs):
            out[r] = w
    return out


def wavefront_order(graph: Graph, streams: dict[int, str]) -> list[int]:
    """Build order with each streamed element's write moved to just after its producer
    and each streamed read to just before its first consumer (so stage streams do not
    hold an element back behind the rest of the sequence)."""
    reads_by_output = {graph.ops[r].outputs[0]: r for r in streams}
    writes = {graph.producer_index(w) for w in streams.values()} - {None}
    writes = {w for w in writes
              if len(graph.ops[w].inputs) == 1 and graph.producer_index(graph.ops[w].inputs[0]) is not None}
    after: dict[int, list[int]] = {}
    for w in sorted(writes):
        after.setdefault(graph.producer_index(graph.ops[w].inputs[0]), []).append(w)
    order, placed = [], set()

    def place(i: int) -> None:
        for t in graph.ops[i].inputs:
            r = reads_by_output.get(t)
            if r is not None and r not in placed:
                placed.add(r)
                order.append(r)
        placed.add(i)
        order.append(i)
        for w in after.get(i, ()):
            if w not in placed:
                place(w)

    for i in range(len(graph.ops)):
        if i not in placed and i not in streams and i not in writes:
            place(i)
    order += [i for i in range(len(graph.ops)) if i not in placed]
    return order


def simulate_plan(graph: Graph, rp: ResolvedPlan, durations: Sequence[float], topology: Topology | None = None, *,
                  mode: str = "auto") -> Result:
    """Simulate one step of plan ``rp`` (resolved against ``graph``, one worker's sub-batch).

    ``durations`` are seconds per op (e.g. ``costmodels.op_times_s``).  Returns
    the engine's :class:`~distsim.result.Result`.
    """
    plan = rp.plan
    durations = np.asarray(durations, dtype=float)
    if durations.shape != (len(graph.ops),):
        raise ConfigError(f"durations has {durations.size} entries; graph {graph.name!r} has {len(graph.ops)} ops")
    S, dp = len(rp.stages), plan.data_parallel
    if topology is None and (S > 1 or dp > 1):
        topology = plan_topology(dp, S)
    if topology is not None and len(topology.endpoints) < dp * S:
        raise ConfigError(f"topology {topology.name} has {len(topology.endpoints)} accelerators; "
                          f"the plan needs {dp * S}")
    nodes = topology.endpoints if topology is not None else [0]

    def node(stage: int):
        return nodes[node_of(0, stage, S)]

    def column(stage: int) -> list:
        return [nodes[node_of(w, stage, S)] for w in range(dp)]

    split = split_ops(graph, rp)
    pieces = [(s, f) for s, f in rp.pieces if f > 0]
    grads = gradient_of(graph) if dp > 1 else {}
    sparse = sparse_gradients(graph)
    stage_of_op = [rp.stage_of[op.layer] for op in graph.ops]

    sim = Simulator(topology)
    # where a tensor is (being) produced: list of (stage, task id, fraction of its bytes)
    made: dict[str, list[tuple[int, int, float]]] = {}
    arrived: dict[tuple[str, int, float], list[int]] = {}  # (tensor, stage, fraction) -> task ids
    last_in_phase: dict[tuple[int, str], int] = {}  # (stage, phase) -> last compute task (layerwise)
    comm_stream = "comm" if plan.overlap else "compute"

    def ready_on(tensor: str, stage: int, fraction: float = 1.0) -> list[int]:
        """Task ids after which ``fraction`` of ``tensor`` is on ``stage`` (sending it if needed)."""
        if tensor not in made:
            return []  # resident (weights, inputs): already everywhere it is used
        key = (tensor, stage, fraction)
        if key in arrived:
            return arrived[key]
        out = []
        nbytes = graph.tensors[tensor].nbytes
        for src, tid, share in made[tensor]:
            if src == stage:
                out.append(tid)
                continue
            deps = [tid]
            if plan.schedule == "layerwise":
                phase = graph.producer(tensor).phase.value
                deps.append(last_in_phase.get((src, phase), tid))
            size = nbytes * (share if share < 1.0 else fraction)  # a piece sends its rows; a whole tensor what is asked
            if size > 0:
                out.append(sim.add_send(f"send:{tensor}:{src}->{stage}", node(src), node(stage), size, deps=deps,
                                        layer=graph.tensors[tensor].layer, phase="send"))
            else:
                out.append(tid)
        arrived[key] = out
        return out

    collective_for: dict[tuple[str, int], int] = {}  # (gradient, stage) -> collective task

    def communicate(grad: str, stage: int, share: float, deps: list[int]) -> None:
        t = graph.tensors[grad]
        is_sparse = grad in sparse and plan.sparse_gradients == "allgather"
        op = "allgather" if is_sparse else "allreduce"
        nbytes = t.nbytes * share * (dp if is_sparse else 1)
        if grad in sparse and not is_sparse:
            nbytes = graph.tensors[sparse[grad]].nbytes * share  # all-reduced as the dense table
        tid = sim.add_collective(f"{op}:{grad}" + (f"@{stage}" if pieces else ""), op, nbytes,
                                 participants=column(stage), algorithm=plan.allreduce, devices=[node(stage)],
                                 deps=deps, stream=comm_stream, mode=mode, layer=t.layer, phase="bwd")
        collective_for[(grad, stage)] = tid

    streams = sequence_streams(graph) if plan.schedule == "wavefront" and S > 1 else {}
    scatters = {graph.producer_index(graph.ops[r].inputs[0]) for r in streams}
    order = wavefront_order(graph, streams) if streams else range(len(graph.ops))
    for i in order:
        op = graph.ops[i]
        phase = op.phase.value
        if i in split:
            for stage, f in pieces:
                deps = []
                for t in op.inputs:
                    if (t, stage) in collective_for:
                        deps.append(collective_for[(t, stage)])
                    else:
                        deps += ready_on(t, stage, f)
                tid = sim.add_compute(node(stage), f"{op.name}[{stage}]", float(durations[i]) * f, deps=deps,
                                      layer=op.layer, phase=phase)
                last_in_phase[(stage, phase)] = tid
                for t in op.outputs:
                    made.setdefault(t, []).append((stage, tid, f))
            continue
        stage = stage_of_op[i]
        deps = []
        for t in op.inputs:
            if i in streams:  # wavefront: wait for this step's element only
                deps += ready_on(streams[i], stage)
            elif i in scatters and graph.producer(t) is not None and rp.stage_of[graph.producer(t).layer] != stage:
                pass  # wavefront: the elements arrive one by one (the reads wait for them)
            elif (t, stage) in collective_for:
                deps.append(collective_for[(t, stage)])
            else:
                deps += ready_on(t, stage)
        tid = sim.add_compute(node(stage), op.name, float(durations[i]), deps=deps, layer=op.layer, phase=phase)
        last_in_phase[(stage, phase)] = tid
        for t in op.outputs:
            made[t] = [(stage, tid, 1.0)]
            if t not in grads:
                continue
            weight = grads[t]
            if rp.table is not None and weight == rp.table:
                for piece_stage, f in pieces:
                    communicate(t, piece_stage, f, ready_on(t, piece_stage, f))
            else:
                communicate(t, stage, 1.0, [tid])
    return sim.run()

