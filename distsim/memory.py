"""Memory check: what each accelerator of a plan must hold at its peak.

Per stage (every data-parallel worker holds the same), the peak of a
traversal of that stage's ops (:func:`stage_peak`) as for the whole graph
(:meth:`distsim.graph.Graph.footprint_min_bytes`: the lower of build order and
a memory-greedy order), where

- resident tensors (weights, optimizer state, step inputs) are live
  throughout on every stage that reads them (one that no op touches, such
  as an unused scalar variable, on its layer's stage); a sharded table and its
  optimizer state count ``f_k`` of their bytes on piece ``k``'s stage;
- a tensor received from another stage is allocated just before its first
  consumer here and freed after its last; a tensor sent away is freed when
  its last local consumer (or, with none, its producer) has run;
- communication buffers (data parallelism only) add the largest staging
  buffer of the stage's gradient collectives: a whole dense gradient for a
  ring all-reduce (the tensor is copied into the collective's buffer, as
  Horovod's fusion buffer does; ``comm_buffer="chunked"``: the two ring
  chunks in flight), and two of the worker's row blocks for a streamed
  all-gather (one arriving while the previous one is applied).

Reported in GiB (2**30 bytes), as the paper's tables are.
"""

from __future__ import annotations

import pandas as pd

from . import units
from .graph import Graph, TensorKind
from .lower import Lowering
from .lower_pipeline import PipelineLowering
from .plan import ResolvedPlan, gradient_of

CATEGORIES = ("weights", "optimizer_state", "gradients", "activations", "inputs", "comm_buffers")
_KIND_CATEGORY = {
    TensorKind.WEIGHT: "weights",
    TensorKind.OPTIMIZER_STATE: "optimizer_state",
    TensorKind.GRADIENT: "gradients",
    TensorKind.ACTIVATION: "activations",
    TensorKind.INPUT: "inputs",
}


def gradient_tensors(graph: Graph) -> set[str]:
    """The final gradients and the partial ones accumulated into them in place (``acc += dW_t``)."""
    out = set(gradient_of(graph))
    todo = list(out)
    while todo:
        op = graph.producer(todo.pop())
        if op is not None and op.inplace:
            for t in op.inputs:
                if t not in out and not graph.tensors[t].kind.resident:
                    out.add(t)
                    todo.append(t)
    return out


def stage_peak(graph: Graph, ops: list[int], scale: dict[str, float], order: list[int],
               gradients: set[str] = frozenset()) -> tuple[float, dict]:
    """Peak live bytes of ``ops`` run in ``order`` (a permutation of ``ops``) and the live bytes per category
    then (tensors in ``gradients`` count as gradients whatever their kind)."""
    tensors = graph.tensors
    consumers: dict[str, int] = {}
    for i in ops:
        for t in graph.ops[i].inputs:
            consumers[t] = consumers.get(t, 0) + 1
    size = {t: tensors[t].nbytes * scale.get(t, 1.0) for t in consumers}
    for i in ops:
        for t in graph.ops[i].outputs:
            size[t] = tensors[t].nbytes * scale.get(t, 1.0)
    live_by = {c: 0.0 for c in CATEGORIES}
    resident = {t for t in consumers if tensors[t].kind.resident}
    for t in resident:
        live_by[_KIND_CATEGORY[tensors[t].kind]] += size[t]
    live = sum(live_by.values())
    peak, at_peak = live, dict(live_by)
    present: set[str] = set(resident)
    remaining = dict(consumers)

    def add(t: str, sign: int):
        nonlocal live
        live_by["gradients" if t in gradients else _KIND_CATEGORY[tensors[t].kind]] += sign * size[t]
        live += sign * size[t]

    for i in order:
        op = graph.ops[i]
        for t in op.inputs:  # received from another stage
            if t not in present:
                present.add(t)
                add(t, +1)
        for t in op.outputs:
            add(t, +1)
            present.add(t)
        if op.inplace and op.inputs[0] in present and remaining[op.inputs[0]] == 1:
            add(op.inputs[0], -1)
            present.discard(op.inputs[0])
            remaining[op.inputs[0]] = 0
        if live > peak:
            peak, at_peak = live, dict(live_by)
        for t in op.inputs:
            if remaining.get(t, 0) == 0:
                continue
            remaining[t] -= 1
            if remaining[t] == 0 and t not in resident and t in present:
                present.discard(t)
                add(t, -1)
        for t in op.outputs:
            if consumers.get(t, 0) == 0 and t in present:
                present.discard(t)
                add(t, -1)
    return peak, at_peak


def unread_resident_bytes(graph: Graph, rp: ResolvedPlan) -> list[dict[str, float]]:
    """Resident tensors no op reads or writes (e.g. a scalar training variable) per stage and category.

    They are held, like any weight, by the stage of their layer (stage 0 if
    the layer is on none), so that a one-stage plan holds the whole graph's
    :meth:`~distsim.graph.Graph.footprint_min_bytes`.
    """
    from .evalcache import cached

    def untouched() -> list:  # computed once per graph
        touched = {t for op in graph.ops for t in op.inputs + op.outputs}
        return [t for name, t in graph.tensors.items() if t.kind.resident and name not in touched]

    out = [dict.fromkeys(CATEGORIES, 0.0) for _ in rp.stages]
    for t in cached(graph, "unread_resident", untouched):
        out[rp.stage_of.get(t.layer, 0)][_KIND_CATEGORY[t.kind]] += t.nbytes
    return out


def memory_check(lowering: Lowering, capacity_bytes: float) -> pd.DataFrame:
    """One row per accelerator of a worker: peak GiB by category, capacity and whether it fits.

    ``lowering`` (:func:`distsim.lower.lower`) says which ops and tensor
    pieces each stage holds and the staging buffer of each gradient collective.

    Columns: ``stage``, ``layers``, one ``<category>_gib`` per category,
    ``total_gib``, ``capacity_gib``, ``fits``, ``excess_gib`` (0 when it fits)
    and ``largest`` (the category that fills it most).
    """
    if isinstance(lowering, PipelineLowering):
        return pipeline_memory_check(lowering, capacity_bytes)
    graph, rp = lowering.graph, lowering.resolved
    from .evalcache import stage_memory  # stage_peak of both orders, recorded once per graph and op set

    buffers = lowering.buffer_bytes()
    unread = unread_resident_bytes(graph, rp)
    rows = []
    for s, ops in enumerate(lowering.stage_ops):
        peak, cats = stage_memory(graph, tuple(ops), lowering.scale(s))
        cats = {c: cats[c] + unread[s][c] for c in CATEGORIES}  # live throughout: adds to every point
        cats["comm_buffers"] = buffers[s]
        total = peak + sum(unread[s].values()) + buffers[s]
        rows.append(_row(s, "+".join(rp.stages[s]), cats, total, capacity_bytes))
    return pd.DataFrame(rows)


def activation_peak_bytes(lowering: PipelineLowering, stage: int) -> float:
    """Peak activation bytes one rank of ``stage`` holds under the plan's schedule.

    Walking the stage's passes in order (:func:`distsim.lower_pipeline.pipeline_order`),
    a chunk's forward adds the activations its layers keep for the backward
    (after recomputation's savings) and its backward frees them; while a
    layer's backward runs, the activations its recomputation re-creates are
    live too.  So 1F1B's first stage holds ``p`` micro-batches, GPipe's ``m``.
    """
    layers = lowering.layers
    saved = {k: sum(layers[x].saved_bytes for x in c) for k, c in enumerate(lowering.chunks)}
    working = {k: max((layers[x].working_bytes for x in c), default=0.0) for k, c in enumerate(lowering.chunks)}
    live = peak = 0.0
    for kind, k, _ in lowering.orders[stage]:
        if kind == "F":
            live += saved[k]
            peak = max(peak, live)
        else:
            peak = max(peak, live + working[k])
            live -= saved[k]
    return peak


def pipeline_memory_check(lowering: PipelineLowering, capacity_bytes: float) -> pd.DataFrame:
    """:func:`memory_check` of a layer-granular plan: one row per pipeline stage (what one of its ranks holds).

    Weights, gradients and optimizer state are the resident tensors a stage's
    ops touch and its weights' gradients, each at the fraction one rank holds
    (``1/t`` of a tensor-parallel split weight; ZeRO stage 1 divides the
    optimizer state by the data-parallel ranks, 2 also the gradients, 3 also
    the weights); the step's inputs count whole; activations are
    :func:`activation_peak_bytes`; communication buffers, with ZeRO-3, hold
    the largest layer's gathered weights.
    """
    graph = lowering.graph
    tensors = graph.tensors
    grads = gradient_of(graph)
    rows = []
    for s in range(lowering.stages):
        cats = dict.fromkeys(CATEGORIES, 0.0)
        for x, f in lowering.held[s].items():
            kind = tensors[x].kind
            category = "gradients" if x in grads or kind == TensorKind.GRADIENT else _KIND_CATEGORY[kind]
            cats[category] += tensors[x].nbytes * f
        stage_layers = [x for k in lowering.stage_chunks(s) for x in lowering.chunks[k]]
        touched = {x for layer in stage_layers for i in lowering.layers[layer].fwd_ops + lowering.layers[layer].bwd_ops
                   for x in graph.ops[i].inputs}
        cats["inputs"] = float(sum(tensors[x].nbytes for x in touched if tensors[x].kind == TensorKind.INPUT))
        cats["activations"] = activation_peak_bytes(lowering, s)
        cats["comm_buffers"] = max((lowering.zero3_gather.get(x, 0.0) for x in stage_layers), default=0.0)
        total = sum(cats.values())
        rows.append(_row(s, _layer_span(stage_layers), cats, total, capacity_bytes))
    return pd.DataFrame(rows)


def _row(stage: int, layers: str, cats: dict, total: float, capacity_bytes: float) -> dict:
    """One accelerator's row of a memory table (GiB by category, capacity, fit, excess, largest)."""
    row = {"stage": stage, "layers": layers}
    row.update({f"{c}_gib": units.to_gib(cats[c]) for c in CATEGORIES})
    row.update(total_gib=units.to_gib(total), capacity_gib=units.to_gib(capacity_bytes),
               fits=bool(total <= capacity_bytes), excess_gib=max(0.0, units.to_gib(total - capacity_bytes)),
               largest=max(CATEGORIES, key=lambda c: cats[c]))
    return row


def _layer_span(layers: list[str]) -> str:
    return "+".join(layers) if len(layers) <= 3 else f"{layers[0]}..{layers[-1]} ({len(layers)} layers)"


def memory_failures(table: pd.DataFrame) -> list[str]:
    """One line per accelerator that does not fit, naming what fills it and by how much it is over."""
    out = []
    for r in table.itertuples():
        if not r.fits:
            out.append(f"stage {r.stage} ({r.layers}) needs {r.total_gib:.1f} GiB of {r.capacity_gib:.1f} GiB "
                       f"(over by {r.excess_gib:.1f} GiB; largest: {r.largest} "
                       f"{getattr(r, r.largest + '_gib'):.1f} GiB)")
    return out
