"""One training step of a :class:`~distsim.plan.Plan` as simulator tasks.

Input
    A :class:`~distsim.lower.Lowering` (which op runs on which stage, which
    gradients go to which collective), seconds per op, a topology and the
    placement of plan ranks on its nodes (rank ``w * stages + s`` is worker
    ``w``'s stage ``s``; :meth:`distsim.hardware.Hardware.placement` gives the
    default).  All workers are identical, so only worker 0's streams are
    simulated; each gradient collective still runs over the stage's whole
    data-parallel ring.  Worker 0's collectives are serialised on one stream,
    so no two of them share links at once and the representative worker's
    step equals simulating every worker.

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

Gradients (synchronous SGD)
    Each of the lowering's gradient collectives starts when the last of its
    gradients is ready (on the stage that holds them); the ops reading a
    gradient wait for its collective.  All-reduces use ``plan.allreduce``;
    all-gathers too where that algorithm has one, else the ring.  ``plan.overlap`` puts the collectives
    on a ``comm`` stream beside compute; otherwise they block the compute
    stream.

Layer-granular plans
    A :class:`~distsim.lower_pipeline.PipelineLowering` (tensor and pipeline
    parallelism over micro-batches, ZeRO, recomputation) is simulated by
    :func:`simulate_pipeline`: one replica's stages, one task per layer,
    micro-batch and pass, in each stage's schedule order.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

from .collectives import get_algorithm
from .errors import ConfigError
from .graph import Graph
from .lower import Lowering
from .lower_pipeline import PipelineLowering
from .result import Result
from .simulator import Simulator
from .topology import Topology


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


def simulate_plan(lowering: Lowering, durations: Sequence[float], topology: Topology | None = None, *,
                  nodes: Sequence[Hashable] | None = None, mode: str = "auto", all_workers: bool = False) -> Result:
    """Simulate one step of a lowered plan (one worker's sub-batch on each worker).

    Parameters
    ----------
    lowering : Lowering
        From :func:`distsim.lower.lower`.
    durations : sequence of float
        Seconds per op of ``lowering.graph`` (e.g. from a cost model).
    topology : Topology, optional
        Needed when the plan has more than one accelerator.
    nodes : sequence, optional
        Topology node of each plan rank ``w * stages + s`` (default: the
        topology's accelerators in order).
    mode : str
        Collective simulation mode (see :mod:`distsim.collectives`).
    all_workers : bool
        Simulate every data-parallel worker's streams, not only worker 0's
        (the same step, since workers are identical; for checking that).
    """
    if isinstance(lowering, PipelineLowering):
        return simulate_pipeline(lowering, durations, topology, nodes=nodes, mode=mode)
    graph, rp = lowering.graph, lowering.resolved
    plan = rp.plan
    durations = np.asarray(durations, dtype=float)
    if durations.shape != (len(graph.ops),):
        raise ConfigError(f"durations has {durations.size} entries; graph {graph.name!r} has {len(graph.ops)} ops")
    S, dp = lowering.stages, plan.data_parallel
    if topology is None and S * dp > 1:
        raise ConfigError(f"a plan of {S * dp} accelerators needs a topology")
    if nodes is None:
        nodes = topology.endpoints if topology is not None else [0]
    if len(nodes) < dp * S:
        raise ConfigError(f"topology {topology.name if topology else ''} has {len(nodes)} accelerators; "
                          f"the plan needs {dp * S}")
    workers = range(dp if all_workers else 1)

    def column(stage: int) -> list:
        return [nodes[w * S + stage] for w in range(dp)]

    split = lowering.split
    pieces = [(s, f) for s, f in rp.pieces if f > 0]
    collectives = lowering.collectives
    waiting = [len(c.tensors) * len(workers) for c in collectives]  # gradients each collective waits for
    collective_deps: list[list[int]] = [[] for _ in collectives]
    collective_task: dict[int, int] = {}
    stage_of_op = lowering.op_stage
    comm_stream = "comm" if plan.overlap else "compute"
    streams = sequence_streams(graph) if plan.schedule == "wavefront" and S > 1 else {}
    scatters = {graph.producer_index(graph.ops[r].inputs[0]) for r in streams}
    order = wavefront_order(graph, streams) if streams else range(len(graph.ops))
    sim = Simulator(topology)
    algorithm = get_algorithm(plan.allreduce)

    def gradient_ready(grad: str, stage: int, deps: list[int]) -> None:
        """``grad`` is ready on ``stage`` after ``deps``: start its collective once all its gradients are."""
        k = lowering.collective_of[(grad, stage)]
        collective_deps[k] += deps
        waiting[k] -= 1
        if waiting[k] == 0:
            c = collectives[k]
            collective_task[k] = sim.add_collective(
                c.name, c.op, c.nbytes, participants=column(c.stage),
                algorithm=plan.allreduce if c.op in algorithm.ops else "ring",
                devices=[nodes[w * S + c.stage] for w in workers], deps=collective_deps[k], stream=comm_stream,
                mode=mode, layer=c.layer, phase="bwd")

    def after_collective(tensor: str, stage: int) -> int | None:
        k = lowering.collective_of.get((tensor, stage))
        if k is None:
            return None
        assert k in collective_task, f"{tensor} is read before its collective {collectives[k].name} can start"
        return collective_task[k]

    class Worker:
        """One worker's streams: where its tensors are and what it has sent."""

        def __init__(self, w: int):
            self.base = w * S
            # where a tensor is (being) produced: list of (stage, task id, fraction of its bytes)
            self.made: dict[str, list[tuple[int, int, float]]] = {}
            self.arrived: dict[tuple[str, int, float], list[int]] = {}  # (tensor, stage, fraction) -> task ids
            self.last_in_phase: dict[tuple[int, str], int] = {}  # (stage, phase) -> last compute task (layerwise)

        def node(self, stage: int):
            return nodes[self.base + stage]

        def ready_on(self, tensor: str, stage: int, fraction: float = 1.0) -> list[int]:
            """Task ids after which ``fraction`` of ``tensor`` is on ``stage`` (sending it if needed)."""
            if tensor not in self.made:
                return []  # resident (weights, inputs): already everywhere it is used
            key = (tensor, stage, fraction)
            if key in self.arrived:
                return self.arrived[key]
            out = []
            nbytes = graph.tensors[tensor].nbytes
            for src, tid, share in self.made[tensor]:
                if src == stage:
                    out.append(tid)
                    continue
                deps = [tid]
                if plan.schedule == "layerwise":
                    phase = graph.producer(tensor).phase.value
                    deps.append(self.last_in_phase.get((src, phase), tid))
                size = nbytes * (share if share < 1.0 else fraction)  # a piece sends its rows; a whole tensor what is asked
                if size > 0:
                    out.append(sim.add_send(f"send:{tensor}:{src}->{stage}", self.node(src), self.node(stage), size,
                                            deps=deps, layer=graph.tensors[tensor].layer, phase="send"))
                else:
                    out.append(tid)
            self.arrived[key] = out
            return out

        def add(self, i: int) -> None:
            op = graph.ops[i]
            phase = op.phase.value
            if i in split:
                for stage, f in pieces:
                    deps = []
                    for t in op.inputs:
                        task = after_collective(t, stage)
                        deps += [task] if task is not None else self.ready_on(t, stage, f)
                    tid = sim.add_compute(self.node(stage), f"{op.name}[{stage}]", float(durations[i]) * f,
                                          deps=deps, layer=op.layer, phase=phase)
                    self.last_in_phase[(stage, phase)] = tid
                    for t in op.outputs:
                        self.made.setdefault(t, []).append((stage, tid, f))
                return
            stage = stage_of_op[i]
            deps = []
            for t in op.inputs:
                if i in streams:  # wavefront: wait for this step's element only
                    deps += self.ready_on(streams[i], stage)
                elif i in scatters and graph.producer(t) is not None and rp.stage_of[graph.producer(t).layer] != stage:
                    pass  # wavefront: the elements arrive one by one (the reads wait for them)
                else:
                    task = after_collective(t, stage)
                    deps += [task] if task is not None else self.ready_on(t, stage)
            tid = sim.add_compute(self.node(stage), op.name, float(durations[i]), deps=deps, layer=op.layer,
                                  phase=phase)
            self.last_in_phase[(stage, phase)] = tid
            for t in op.outputs:
                self.made[t] = [(stage, tid, 1.0)]
                if t in lowering.piece_gradients:
                    for piece_stage, f in pieces:
                        gradient_ready(t, piece_stage, self.ready_on(t, piece_stage, f))
                elif (t, stage) in lowering.collective_of:
                    gradient_ready(t, stage, [tid])

    replicas = [Worker(w) for w in workers]
    for i in order:
        for worker in replicas:
            worker.add(i)
    return sim.run()


def simulate_pipeline(lowering: PipelineLowering, durations: Sequence[float], topology: Topology | None = None, *,
                      nodes: Sequence[Hashable] | None = None, mode: str = "auto") -> Result:
    """Simulate one step of a layer-granular plan: one data-parallel replica's pipeline, one task per layer,
    micro-batch and pass.

    Ranks and nodes
        Plan rank ``r = w (p t) + s t + j`` is tensor-parallel rank ``j`` of
        stage ``s`` of replica ``w`` (tensor-parallel fastest, then pipeline,
        then data: a tensor-parallel group fills consecutive accelerators,
        i.e. one server when ``t`` is its size); ``nodes`` gives each rank's
        topology node (default: the topology's accelerators in order).  The
        ranks of a tensor-parallel group do the same work, so rank 0 of each
        stage of replica 0 is simulated.

    Tasks
        Each stage's compute stream runs its passes in the order of
        :func:`distsim.lower_pipeline.pipeline_order`; a pass of a chunk is one task
        per layer, lasting the rank's share of the layer's ops (from
        ``durations``), plus recomputation before a backward, plus the layer's
        tensor-parallel collectives (and ZeRO-3 weight all-gathers), each
        timed once by simulating it on ``topology`` over the group's nodes
        (every group is alike and Megatron does not overlap them).  A chunk's
        activations (forward) and their gradients (backward) are sent over the
        topology to the next chunk's stage, which waits for them: the bubble
        and the cost of these sends emerge from the schedule.  After its last
        backward each stage all-reduces its gradients over its data-parallel
        group (ZeRO >= 1: reduce-scatter, optimizer step on its shard,
        all-gather of the weights) and runs its optimizer step.
    """
    from .simulator import simulate_collective

    graph, plan = lowering.graph, lowering.plan
    durations = np.asarray(durations, dtype=float)
    if durations.shape != (len(graph.ops),):
        raise ConfigError(f"durations has {durations.size} entries; graph {graph.name!r} has {len(graph.ops)} ops")
    p, t, dp = lowering.stages, plan.tensor_parallel, plan.data_parallel
    if topology is None and p * t * dp > 1:
        raise ConfigError(f"a plan of {p * t * dp} accelerators needs a topology")
    if nodes is None:
        nodes = topology.endpoints if topology is not None else [0]
    if len(nodes) < dp * p * t:
        raise ConfigError(f"topology {topology.name if topology else ''} has {len(nodes)} accelerators; "
                          f"the plan needs {dp * p * t}")

    def node(w: int, s: int, j: int = 0):
        return nodes[w * p * t + s * t + j]

    algorithm = get_algorithm(plan.allreduce)
    timed: dict[tuple, float] = {}

    def collective_s(op: str, nbytes: float, group: tuple) -> float:
        key = (op, nbytes, group)
        if key not in timed:
            alg = plan.allreduce if op in algorithm.ops else "ring"
            timed[key] = simulate_collective(op, nbytes, topology, algorithm=alg, participants=list(group),
                                             mode=mode).step_time_s if len(group) > 1 else 0.0
        return timed[key]

    def tp_s(collectives, stage: int) -> float:
        group = tuple(node(0, stage, j) for j in range(t))
        return sum(collective_s(op, nbytes, group) for op, nbytes in collectives)

    def gather_s(layer: str, stage: int) -> float:
        nbytes = lowering.zero3_gather.get(layer, 0.0)
        return collective_s("allgather", nbytes, tuple(node(w, stage) for w in range(dp))) if nbytes else 0.0

    stage_of_chunk = [lowering.chunk_stage(k) for k in range(len(lowering.chunks))]
    fwd_s: dict[tuple[str, int], float] = {}
    bwd_s: dict[tuple[str, int], float] = {}
    for k, chunk in enumerate(lowering.chunks):
        s = stage_of_chunk[k]
        for layer in chunk:
            info = lowering.layers[layer]
            fwd_s[layer] = lowering.layer_s(durations, layer, "fwd_ops") + tp_s(info.tp_fwd, s) + gather_s(layer, s)
            bwd_s[layer] = (lowering.layer_s(durations, layer, "bwd_ops") + lowering.layer_s(durations, layer,
                                                                                             "recompute_ops")
                            + tp_s(info.tp_bwd, s) + (tp_s(info.tp_fwd, s) if len(info.recompute_ops) ==
                                                      len(info.fwd_ops) and info.recompute_ops else 0.0)
                            + gather_s(layer, s))
    sim = Simulator(topology)
    sent: dict[tuple[str, int, int], int] = {}  # (pass, chunk, micro-batch) -> task delivering its input
    last_chunk = len(lowering.chunks) - 1
    pointers = [0] * p
    orders = lowering.orders
    remaining = sum(len(o) for o in orders)
    while remaining:
        progressed = False
        for s in range(p):
            order = orders[s]
            while pointers[s] < len(order):
                kind, k, mb = order[pointers[s]]
                need = (kind, k, mb) if (kind == "F" and k > 0) or (kind == "B" and k < last_chunk) else None
                if need is not None and need not in sent:
                    break
                deps = [sent[need]] if need is not None else []
                dev = node(0, s)
                chunk = lowering.chunks[k]
                tid = None
                for layer in (chunk if kind == "F" else reversed(chunk)):
                    tid = sim.add_compute(dev, f"{layer}:{kind}{mb}", fwd_s[layer] if kind == "F" else bwd_s[layer],
                                          deps=deps, layer=layer, phase="fwd" if kind == "F" else "bwd")
                    deps = []
                if kind == "F" and k < last_chunk:
                    dst = stage_of_chunk[k + 1]
                    nbytes = lowering.send_fwd_bytes[k]
                    sent[("F", k + 1, mb)] = tid if dst == s or not nbytes else sim.add_send(
                        f"send:F{mb}:{k}->{k + 1}", dev, node(0, dst), nbytes, deps=[tid], phase="send")
                elif kind == "B" and k > 0:
                    dst = stage_of_chunk[k - 1]
                    nbytes = lowering.send_bwd_bytes[k - 1]
                    sent[("B", k - 1, mb)] = tid if dst == s or not nbytes else sim.add_send(
                        f"send:B{mb}:{k}->{k - 1}", dev, node(0, dst), nbytes, deps=[tid], phase="send")
                pointers[s] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            raise ConfigError(f"pipeline schedule {plan.pipeline_schedule!r} deadlocks")  # a bug, not user error
    stream = "comm" if plan.overlap else "compute"
    for s in range(p):
        dev = node(0, s)
        group = [node(w, s) for w in range(dp)]
        stage_layers = [layer for k in lowering.stage_chunks(s) for layer in lowering.chunks[k]]
        update = sum(lowering.layer_s(durations, layer, "update_ops") for layer in stage_layers)
        alg = plan.allreduce
        if dp > 1 and plan.zero == 0:
            sim.add_collective(f"dp:allreduce@{s}", "allreduce", lowering.gradient_bytes[s], participants=group,
                               algorithm=alg, devices=[dev], stream=stream, mode=mode, phase="bwd")
        elif dp > 1:
            sim.add_collective(f"dp:reducescatter@{s}", "reducescatter", lowering.gradient_bytes[s],
                               participants=group, algorithm=alg if "reducescatter" in algorithm.ops else "ring",
                               devices=[dev], stream=stream, mode=mode, phase="bwd")
        sim.add_compute(dev, f"optimizer@{s}", update, stream=stream, phase="update")
        if dp > 1 and plan.zero >= 1:
            sim.add_collective(f"dp:allgather@{s}", "allgather", lowering.weight_bytes[s], participants=group,
                               algorithm=alg if "allgather" in algorithm.ops else "ring", devices=[dev],
                               stream=stream, mode=mode, phase="update")
    return sim.run()
