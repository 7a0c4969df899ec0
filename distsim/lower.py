"""Lowering: a resolved plan placed on one data-parallel worker's accelerators, computed once.

:func:`lower` answers, for a :class:`~distsim.plan.ResolvedPlan` on a graph,

- which op runs on which stage (an accelerator of one worker), and which ops
  are split by rows across the pieces of a sharded embedding table;
- which tensors are held only in part on a stage (the table's pieces);
- which gradients go to which collective, over which stage's data-parallel
  ring, with how many bytes and how much staging memory.

The :class:`Lowering` is the one input of both the memory check
(:func:`distsim.memory.memory_check`) and the step simulation
(:func:`distsim.parallel.simulate_plan`), so they cannot disagree on where
things are.

Gradient collectives (data parallelism, synchronous SGD)
    A dense gradient is all-reduced over its stage's data-parallel ring;
    ``plan.gradient_grouping`` says how many travel together: ``per_tensor``
    (one collective each), ``per_layer`` (a layer's gradients once its last
    one is produced) or ``bucket`` (DDP-style: filled in production order
    until ``bucket_MiB`` is reached).  A group is closed early if an op
    reads one of its gradients before the group is complete (it cannot wait
    for a collective that waits for it).  A sparse gradient (embedding rows)
    is all-gathered on its own -- each worker contributes its rows -- or,
    with ``sparse_gradients="allreduce"``, all-reduced as the dense table and
    grouped like any dense gradient.  A sharded table's rows are all-gathered
    per piece, over the ring of the piece's stage.

Layer-granular plans (tensor and pipeline parallelism, micro-batches, ZeRO,
recomputation) are lowered by :func:`distsim.lower_pipeline.lower_layers` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import units
from .graph import Graph
from .plan import ResolvedPlan, gradient_of, sparse_gradients


@dataclass(frozen=True)
class GradientCollective:
    """One gradient collective of one stage's data-parallel ring.

    ``nbytes`` is the collective's size as :meth:`distsim.simulator.Simulator.add_collective`
    takes it (an all-gather's gathered total); ``buffer_bytes`` the staging
    memory it needs on the stage; ``share`` the fraction of the tensors' rows
    (1 but for a sharded table's piece).
    """

    name: str
    op: str
    stage: int
    tensors: tuple[str, ...]
    nbytes: float
    buffer_bytes: float
    layer: str
    share: float = 1.0


@dataclass(frozen=True)
class Lowering:
    """Where everything of one worker's step is (see module doc); build with :func:`lower`."""

    graph: Graph
    resolved: ResolvedPlan
    op_stage: tuple[int, ...]  # stage of each op; -1 for ops split across the table's pieces
    split: frozenset[int]
    stage_ops: tuple[tuple[int, ...], ...]
    sharded: frozenset[str]
    collectives: tuple[GradientCollective, ...]
    collective_of: dict = field(default_factory=dict)  # (gradient, stage) -> index into collectives
    piece_gradients: frozenset = frozenset()  # the sharded table's gradients: one collective per piece

    @property
    def plan(self):
        return self.resolved.plan

    @property
    def stages(self) -> int:
        return len(self.resolved.stages)

    @property
    def pieces(self) -> list[tuple[int, float]]:
        """(stage, row fraction) of each piece of the sharded table."""
        return self.resolved.pieces

    def scale(self, stage: int) -> dict[str, float]:
        """Fraction of each tensor held on ``stage`` where it is less than 1 (the table's pieces)."""
        return dict.fromkeys(self.sharded, dict(self.pieces).get(stage, 0.0))

    def buffer_bytes(self) -> list[float]:
        """Largest gradient-collective staging buffer per stage (0 without data parallelism)."""
        out = [0.0] * self.stages
        for c in self.collectives:
            out[c.stage] = max(out[c.stage], c.buffer_bytes)
        return out

    def with_fractions(self, fractions: tuple[float, ...]) -> "Lowering":
        """The same plan with other row fractions for the table's pieces."""
        return lower(self.graph, self.resolved.with_fractions(fractions))


def lower(graph: Graph, rp: ResolvedPlan) -> Lowering:
    """Place ``rp`` on one worker's stages and assign gradients to collectives (see module doc).

    A layer-granular plan (:attr:`distsim.plan.Plan.layer_granular`) is lowered by
    :func:`distsim.lower_pipeline.lower_layers` to a
    :class:`~distsim.lower_pipeline.PipelineLowering` instead.
    """
    plan = rp.plan
    if plan.layer_granular:
        from .lower_pipeline import lower_layers

        return lower_layers(graph, rp)
    split = frozenset(i for i, op in enumerate(graph.ops)
                      if rp.table is not None and op.layer == plan.shard_layer and rp.table in op.inputs)
    op_stage = tuple(-1 if i in split else rp.stage_of[op.layer] for i, op in enumerate(graph.ops))
    stage_ops: list[list[int]] = [[] for _ in rp.stages]
    for i, s in enumerate(op_stage):
        for t in (plan.shard_stages if s < 0 else (s,)):
            stage_ops[t].append(i)
    sharded = set()
    if rp.table is not None:
        sharded.add(rp.table)
        for i in split:
            sharded.update(t for t in graph.ops[i].inputs + graph.ops[i].outputs if graph.tensors[t].kind.persistent)
    collectives, collective_of = _gradient_collectives(graph, rp, op_stage) if plan.data_parallel > 1 else ((), {})
    piece_gradients = frozenset(g for g, w in gradient_of(graph).items() if w == rp.table and rp.table is not None)
    return Lowering(graph=graph, resolved=rp, op_stage=op_stage, split=split,
                    stage_ops=tuple(tuple(ops) for ops in stage_ops), sharded=frozenset(sharded),
                    collectives=tuple(collectives), collective_of=collective_of,
                    piece_gradients=piece_gradients if plan.data_parallel > 1 else frozenset())


def _gradient_collectives(graph: Graph, rp: ResolvedPlan, op_stage: tuple[int, ...]):
    plan = rp.plan
    dp = plan.data_parallel
    grads = gradient_of(graph)
    sparse = sparse_gradients(graph)
    gather = plan.sparse_gradients == "allgather"
    pieces = [(s, f) for s, f in rp.pieces if f > 0]
    suffix = (lambda stage: f"@{stage}") if pieces else (lambda stage: "")
    grouping = plan.gradient_grouping
    collectives: list[GradientCollective] = []
    collective_of: dict[tuple[str, int], int] = {}

    def emit(name: str, op: str, stage: int, tensors: list[str], share: float = 1.0) -> None:
        if op == "allgather":  # each worker's rows, gathered by all; two row blocks staged
            rows = sum(graph.tensors[t].nbytes for t in tensors) * share
            nbytes, buffer_bytes = rows * dp, 2 * rows
        else:  # a sparse gradient all-reduced counts as its dense table
            nbytes = sum(graph.tensors[sparse.get(t, t)].nbytes for t in tensors) * share
            buffer_bytes = 2 * nbytes / dp if plan.comm_buffer == "chunked" else nbytes
        for t in tensors:
            collective_of[(t, stage)] = len(collectives)
        collectives.append(GradientCollective(name=name, op=op, stage=stage, tensors=tuple(tensors), nbytes=nbytes,
                                              buffer_bytes=buffer_bytes, layer=graph.tensors[tensors[0]].layer,
                                              share=share))

    def group_key(g: str) -> tuple:
        stage = op_stage[graph.producer_index(g)]
        if grouping == "per_layer":
            return (stage, graph.tensors[grads[g]].layer or graph.tensors[g].layer)
        return (stage, g)

    grouped = [g for g in grads if not (g in sparse and gather) and grads[g] != rp.table]
    last_of = {}  # per_layer: the producer index that completes each group
    for g in grouped:
        key = group_key(g)
        last_of[key] = max(last_of.get(key, -1), graph.producer_index(g))
    open_groups: dict[tuple, list[str]] = {}
    group_of: dict[str, tuple] = {}
    issued: dict[tuple, int] = {}
    bucket_limit = plan.bucket_MiB * units.MiB
    buckets: dict[int, int] = {}  # stage -> buckets closed so far

    def close(key: tuple) -> None:
        members = open_groups.pop(key)
        for g in members:
            del group_of[g]
        issued[key] = issued.get(key, 0) + 1
        label = members[0] if grouping == "per_tensor" else key[1]
        emit(f"allreduce:{label}" + (f"#{issued[key]}" if issued[key] > 1 else "") + suffix(key[0]),
             "allreduce", key[0], members)

    for i, op in enumerate(graph.ops):
        for t in op.inputs:  # a gradient read before its group is complete: reduce what is ready
            if t in group_of:
                close(group_of[t])
        for t in op.outputs:
            if t not in grads:
                continue
            op_name = "allgather" if t in sparse and gather else "allreduce"
            if rp.table is not None and grads[t] == rp.table:  # each piece's rows over its own stage's ring
                for stage, f in pieces:
                    emit(f"{op_name}:{t}@{stage}", op_name, stage, [t], share=f)
                continue
            if op_name == "allgather":
                emit(f"allgather:{t}" + suffix(op_stage[i]), "allgather", op_stage[i], [t])
                continue
            key = group_key(t)
            if grouping == "bucket":
                key = (key[0], f"bucket{buckets.get(key[0], 0)}")
            open_groups.setdefault(key, []).append(t)
            group_of[t] = key
            if grouping == "per_tensor" or (grouping == "per_layer" and i == last_of[group_key(t)]):
                close(key)
            elif grouping == "bucket" and sum(graph.tensors[sparse.get(g, g)].nbytes
                                              for g in open_groups[key]) >= bucket_limit:
                buckets[key[0]] = buckets.get(key[0], 0) + 1
                close(key)
    for key in list(open_groups):
        close(key)
    return collectives, collective_of
