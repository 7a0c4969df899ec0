"""Layer-granular lowering: tensor, pipeline and data parallelism with ZeRO and recomputation.

Layer-granular plans (tensor and pipeline parallelism, micro-batches, ZeRO, recomputation;
:attr:`distsim.plan.Plan.layer_granular`) are lowered by :func:`lower_layers` to a
:class:`PipelineLowering`: per layer its ops per pass and the share one tensor-parallel rank
runs, its tensor-parallel collectives, the activations it keeps; per stage its passes in
schedule order (:func:`pipeline_order`), what one rank holds and its data-parallel traffic.
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph import Graph
from .plan import ResolvedPlan, gradient_of


@dataclass(frozen=True)
class LayerLowering:
    """One layer of a layer-granular plan, per micro-batch and per tensor-parallel rank.

    ``fwd_ops`` / ``bwd_ops`` / ``update_ops``: the layer's op indices per
    pass; ``recompute_ops``: forward ops re-run before its backward;
    ``tp_fwd`` / ``tp_bwd``: its tensor-parallel collectives per pass as
    ``(op, nbytes)`` (nbytes as :meth:`distsim.simulator.Simulator.add_collective`
    takes them, the whole tensor); ``saved_bytes``: activations kept from its
    forward to its backward (per rank, after recomputation's savings);
    ``working_bytes``: the activations a recomputed layer re-creates during its
    backward (0 without recomputation).
    """

    name: str
    fwd_ops: tuple[int, ...]
    bwd_ops: tuple[int, ...]
    update_ops: tuple[int, ...]
    recompute_ops: tuple[int, ...]
    tp_fwd: tuple[tuple[str, float], ...]
    tp_bwd: tuple[tuple[str, float], ...]
    saved_bytes: float
    working_bytes: float


@dataclass(frozen=True)
class PipelineLowering:
    """A layer-granular plan placed on one data-parallel replica (see :func:`lower_layers`).

    ``chunks``: model chunks (tuples of layer names) in pipeline order, chunk
    ``k`` on stage ``k mod stages``; ``op_share``: the fraction of each op
    one tensor-parallel rank runs (``1/t`` for split ops, ``1`` for replicated
    ones; update ops also ``1/dp`` with ZeRO >= 1); ``send_fwd_bytes`` /
    ``send_bwd_bytes``: bytes one rank sends from chunk ``k`` to chunk ``k+1``
    (activations) and back (their gradients) per micro-batch, each rank its
    ``1/t`` share (Megatron's scatter/gather optimisation, Narayanan et al.
    section 4.1); ``held``: per stage and tensor, the fraction of each
    resident tensor one rank holds (weights, optimizer state) and of each
    weight's gradient; ``gradient_bytes`` / ``weight_bytes``: per stage, what
    one rank's data-parallel collectives move.
    """

    graph: Graph
    resolved: ResolvedPlan
    chunks: tuple[tuple[str, ...], ...]
    layers: dict
    op_share: tuple[float, ...]
    send_fwd_bytes: tuple[float, ...]
    send_bwd_bytes: tuple[float, ...]
    held: tuple[dict, ...]
    gradient_bytes: tuple[float, ...]
    weight_bytes: tuple[float, ...]
    zero3_gather: dict  # layer -> bytes of its weights one rank all-gathers before each pass (ZeRO-3)
    orders: tuple = ()  # per stage: its passes in order, (pass "F"/"B", chunk, micro-batch)
    collectives: tuple = ()
    layer_granular: bool = True

    @property
    def plan(self):
        return self.resolved.plan

    @property
    def stages(self) -> int:
        return self.plan.stage_count

    def chunk_stage(self, k: int) -> int:
        return k % self.stages

    def stage_chunks(self, stage: int) -> list[int]:
        return list(range(stage, len(self.chunks), self.stages))

    def layer_s(self, durations, layer: str, ops: str) -> float:
        """Seconds of one rank's share of ``layer``'s ``ops`` ("fwd_ops", ...) given seconds per op."""
        info = self.layers[layer]
        return float(sum(durations[i] * self.op_share[i] for i in getattr(info, ops)))

    def flops_per_micro_batch(self) -> float:
        """FLOPs of one micro-batch over the whole model (all ranks of a replica), recomputation included."""
        ops = self.graph.ops
        total = 0.0
        for info in self.layers.values():
            total += sum(ops[i].flops for i in info.fwd_ops + info.bwd_ops + info.recompute_ops)
        return total


def _residual_elements(graph: Graph, order: dict[str, int]) -> int:
    """Elements of the largest forward tensor passed from one layer to a later one (the residual stream)."""
    from .graph import Phase

    best = 0
    for i, op in enumerate(graph.ops):
        if op.phase != Phase.FORWARD:
            continue
        for t in op.outputs:
            if any(graph.ops[c].phase == Phase.FORWARD and order[graph.ops[c].layer] > order[op.layer]
                   for c in graph.consumer_indices(t)):
                best = max(best, graph.tensors[t].elements)
    return best


def _attention_core(graph: Graph, fwd_ops: list[int]) -> set[int]:
    """Forward ops from an activation-by-activation matmul to the next (scores, softmax, dropout, context)."""
    from .graph import OpKind

    core: set[int] = set()
    made_in_core: set[str] = set()
    for i in fwd_ops:
        op = graph.ops[i]
        acts = [t for t in op.inputs if not graph.tensors[t].kind.resident]
        if op.kind == OpKind.MATMUL and len(acts) == len(op.inputs):
            core.add(i)
        elif op.kind != OpKind.MATMUL and acts and all(t in made_in_core for t in acts):
            core.add(i)
        else:
            continue
        made_in_core.update(op.outputs)
    return core


def lower_layers(graph: Graph, rp: ResolvedPlan) -> PipelineLowering:
    """Lower a layer-granular plan (tensor/pipeline parallelism, ZeRO, recomputation) for one replica.

    Tensor parallelism (Megatron, Shoeybi et al. 2019) is derived from the
    graph.  A non-matmul op writing a tensor of the residual stream's size (the
    largest forward tensor passed between layers: layernorms, residual adds,
    dropout-adds and their gradients) is *replicated* on every rank; every
    other op (matmuls, attention, activation functions, their gradients) is
    *split*: a rank runs ``1/t`` of its FLOPs and bytes (``sequence_parallel``:
    every op is split).  A replicated op reading a tensor that a split op of
    the same pass wrote needs the ranks' partial results combined: an
    all-reduce of that tensor (two per transformer layer and pass: after the
    attention and the MLP forward, before them backward); with sequence
    parallelism a reduce-scatter plus an all-gather of the same size.
    A weight read by a split op is split ``t`` ways (with its gradient and
    optimizer state); the others are replicated.

    Recomputation applies to the layers between the graph's first and last
    (a transformer's blocks): ``full`` keeps each layer's inputs and re-runs
    its forward (and its forward collectives) before its backward;
    ``selective`` re-runs the attention core (:func:`_attention_core`) and
    drops the tensors only it and the backward read.
    """
    from .graph import Phase, TensorKind

    plan = rp.plan
    t, dp = plan.tensor_parallel, plan.data_parallel
    layers = graph.layers()
    order = {layer: k for k, layer in enumerate(layers)}
    chunks = tuple(plan.chunks(layers))
    chunk_of = {layer: k for k, c in enumerate(chunks) for layer in c}
    ops = graph.ops
    tensors = graph.tensors
    residual = _residual_elements(graph, order) if t > 1 else 0

    def tensor_parallel_region(i: int) -> bool:
        from .graph import OpKind

        op = ops[i]
        if t == 1 or op.phase == Phase.UPDATE:
            return False
        if op.kind == OpKind.MATMUL:
            return True
        return not any(tensors[o].elements == residual and not tensors[o].kind.persistent for o in op.outputs)

    region = [tensor_parallel_region(i) for i in range(len(ops))]
    split = [r or (plan.sequence_parallel and ops[i].phase != Phase.UPDATE) for i, r in enumerate(region)]
    split_weights = {w for i, op in enumerate(ops) if region[i]
                     for w in op.inputs if tensors[w].kind == TensorKind.WEIGHT}
    grads = gradient_of(graph)  # gradient -> weight
    grad_of_weight = {w: g for g, w in grads.items()}

    def weight_of_update(i: int) -> str | None:
        ws = [x for x in ops[i].inputs if tensors[x].kind == TensorKind.WEIGHT]
        return ws[0] if ws else None

    share = []
    for i, op in enumerate(ops):
        if op.phase == Phase.UPDATE:
            w = weight_of_update(i)
            f = (1 / t if w in split_weights else 1.0) / (dp if plan.zero >= 1 else 1)
        else:
            f = 1 / t if split[i] else 1.0
        share.append(f)

    def act_scale(name: str) -> float:
        p = graph.producer_index(name)
        return 1 / t if (p is not None and split[p]) or plan.sequence_parallel else 1.0

    by_layer: dict[str, dict[str, list[int]]] = {layer: {"fwd": [], "bwd": [], "update": []} for layer in layers}
    for i, op in enumerate(ops):
        by_layer[op.layer][op.phase.value].append(i)

    def tp_collectives(op_ids: list[int]) -> tuple:
        if t == 1:
            return ()
        out = []
        local = set(op_ids)
        for i in op_ids:
            if region[i]:
                continue
            for x in dict.fromkeys(ops[i].inputs):
                p = graph.producer_index(x)
                if p is not None and p in local and region[p]:
                    nbytes = float(tensors[x].nbytes)
                    # sequence parallelism: a reduce-scatter here and the matching all-gather where the
                    # region starts again, each of the whole tensor (Korthikanti et al. 2022, section 4.2.2)
                    out += [("reducescatter", nbytes), ("allgather", nbytes)] if plan.sequence_parallel \
                        else [("allreduce", nbytes)]
        return tuple(out)

    # the backward layer that reads each forward activation last (backward runs in reverse layer order)
    last_reader: dict[str, str] = {}
    for i, op in enumerate(ops):
        if op.phase != Phase.BACKWARD:
            continue
        for x in op.inputs:
            p = graph.producer_index(x)
            if p is not None and ops[p].phase == Phase.FORWARD:
                last_reader[x] = op.layer
    saved_by_layer: dict[str, list[str]] = {}
    for x, layer in last_reader.items():
        saved_by_layer.setdefault(layer, []).append(x)

    body = set(layers[1:-1])
    info = {}
    for layer in layers:
        fwd, bwd, upd = by_layer[layer]["fwd"], by_layer[layer]["bwd"], by_layer[layer]["update"]
        saved = saved_by_layer.get(layer, [])
        all_saved = sum(tensors[x].nbytes * act_scale(x) for x in saved)
        recompute: list[int] = []
        working = 0.0
        kept = all_saved
        mode = plan.recompute if layer in body else "none"
        tp_fwd = tp_collectives(fwd)
        if mode == "full":
            recompute = list(fwd)
            local = {o for i in fwd for o in ops[i].outputs}
            inputs = {x for x in saved if x not in local}  # the layer's inputs (the previous layer's output)
            kept = sum(tensors[x].nbytes * act_scale(x) for x in inputs)
            working = all_saved - kept
        elif mode == "selective":
            core = _attention_core(graph, fwd)
            recompute = sorted(core)
            core_out = {o for i in core for o in ops[i].outputs}
            dropped = {x for x in saved if x in core_out and all(
                c in core or ops[c].phase != Phase.FORWARD for c in graph.consumer_indices(x))}
            working = sum(tensors[x].nbytes * act_scale(x) for x in dropped)
            kept = all_saved - working
        info[layer] = LayerLowering(
            name=layer, fwd_ops=tuple(fwd), bwd_ops=tuple(bwd), update_ops=tuple(upd),
            recompute_ops=tuple(recompute), tp_fwd=tp_fwd, tp_bwd=tp_collectives(bwd),
            saved_bytes=kept, working_bytes=working)

    # point-to-point traffic between consecutive chunks (per micro-batch, per rank)
    send_fwd = [0.0] * max(0, len(chunks) - 1)
    send_bwd = [0.0] * max(0, len(chunks) - 1)
    for x, tensor in tensors.items():
        p = graph.producer_index(x)
        if p is None:
            continue
        src = chunk_of[ops[p].layer]
        readers = {chunk_of[ops[c].layer] for c in graph.consumer_indices(x) if ops[c].phase == ops[p].phase}
        for dst in readers:
            if ops[p].phase == Phase.FORWARD and dst == src + 1:
                send_fwd[src] += tensor.nbytes / t
            elif ops[p].phase == Phase.BACKWARD and dst == src - 1:
                send_bwd[dst] += tensor.nbytes / t

    # what each stage's rank holds: resident tensors its ops touch, and the gradients of its weights
    p_stages = plan.stage_count
    held: list[dict[str, float]] = []
    gradient_bytes, weight_bytes = [], []
    zero3 = {}
    for s in range(p_stages):
        stage_layers = [layer for k in range(s, len(chunks), p_stages) for layer in chunks[k]]
        stage_set = set(stage_layers)
        touched = {x for layer in stage_layers for ph in ("fwd", "bwd", "update")
                   for i in by_layer[layer][ph] for x in ops[i].inputs + ops[i].outputs}
        frac: dict[str, float] = {}
        for x in touched:
            kind = tensors[x].kind
            if not kind.persistent and kind != TensorKind.GRADIENT and x not in grads:
                continue
            if x not in grads and any(ops[c].inplace and ops[c].inputs[0] == x for c in graph.consumer_indices(x)
                                      if ops[c].layer in stage_set):
                continue  # a partial gradient whose buffer becomes a final gradient here: counted once
            w = grads.get(x, x)
            if kind == TensorKind.OPTIMIZER_STATE:
                w = next((y for y in (x.rsplit("/", 1)[0],) if y in tensors), x)
            producer = graph.producer_index(x)
            f = 1 / t if w in split_weights or (producer is not None and split[producer]) else 1.0
            shard = {TensorKind.OPTIMIZER_STATE: 1, TensorKind.WEIGHT: 3}.get(kind, 2)  # ZeRO stage sharding it
            if plan.zero >= shard:
                f /= dp
            frac[x] = f
        held.append(frac)
        stage_weights = [x for x in touched if tensors[x].kind == TensorKind.WEIGHT]
        gradient_bytes.append(sum(tensors[grad_of_weight[w]].nbytes * (1 / t if w in split_weights else 1.0)
                                  for w in stage_weights if w in grad_of_weight))
        weight_bytes.append(sum(tensors[w].nbytes * (1 / t if w in split_weights else 1.0) for w in stage_weights))
    if plan.zero >= 3:
        for layer in layers:
            ws = {x for i in by_layer[layer]["fwd"] for x in ops[i].inputs if tensors[x].kind == TensorKind.WEIGHT}
            zero3[layer] = sum(tensors[w].nbytes * (1 / t if w in split_weights else 1.0) for w in ws)
    orders = tuple(tuple(pipeline_order(plan.pipeline_schedule, p_stages, len(chunks) // p_stages,
                                        plan.micro_batches, s)) for s in range(p_stages))
    return PipelineLowering(graph=graph, resolved=rp, chunks=chunks, layers=info, op_share=tuple(share),
                            send_fwd_bytes=tuple(send_fwd), send_bwd_bytes=tuple(send_bwd), held=tuple(held),
                            gradient_bytes=tuple(gradient_bytes), weight_bytes=tuple(weight_bytes),
                            zero3_gather=zero3, orders=orders)


def pipeline_order(schedule: str, stages: int, chunks_per_stage: int, micro_batches: int,
                   stage: int) -> list[tuple[str, int, int]]:
    """The passes ``stage`` runs, in order: ``(pass, chunk, micro-batch)``, ``pass`` "F" or "B",
    ``chunk`` the global chunk index (``local x stages + stage``).

    ``gpipe``: every forward, then every backward (Huang et al. 2019).
    ``1f1b``: ``stages - stage - 1`` warm-up forwards, then one forward and
    one backward in turn, then the remaining backwards (PipeDream-Flush,
    Narayanan et al. 2021).  ``interleaved``: the same with ``v`` chunks per
    stage, the unit ``k`` being chunk ``(k / p) mod v`` (reversed for
    backwards) of micro-batch ``(k / (p v)) p + k mod p``, and
    ``2 (p - stage - 1) + (v - 1) p`` warm-up forwards (Megatron-LM's
    ``forward_backward_pipelining_with_interleaving``).
    """
    p, v, m = stages, chunks_per_stage, micro_batches
    total = m * v

    def unit(k: int, backward: bool) -> tuple[str, int, int]:
        local = (k // p) % v if v > 1 else 0
        if backward:
            local = v - 1 - local
        mb = (k // (p * v)) * p + k % p if v > 1 else k
        return ("B" if backward else "F", local * p + stage, mb)

    if schedule == "gpipe":
        return [unit(k, False) for k in range(total)] + [unit(k, True) for k in range(total)]
    warmup = min(total, (p - stage - 1) * 2 + (v - 1) * p if v > 1 else p - stage - 1)
    out = [unit(k, False) for k in range(warmup)]
    f, b = warmup, 0
    while f < total:
        out.append(unit(f, False))
        out.append(unit(b, True))
        f, b = f + 1, b + 1
    out += [unit(k, True) for k in range(b, total)]
    return out
