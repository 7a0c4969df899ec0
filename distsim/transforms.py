"""Graph rewrites a plan may ask for (each returns a new :class:`~distsim.graph.Graph`)."""

from __future__ import annotations

from dataclasses import replace

from .graph import Graph, OpKind


def fuse_gradient_accumulation(graph: Graph) -> Graph:
    """Fold each ``acc += dW_t`` into the matmul that computes ``dW_t`` (a GEMM with beta = 1).

    An in-place add whose second input is a matmul's output read by nothing
    else becomes part of that matmul: the fused op reads the accumulator and
    writes it in place, so the per-step ``dW_t`` buffer and the separate pass
    over it disappear.  FLOPs are kept (the adds move into the GEMM); bytes
    are the matmul's, with ``dW_t``'s write replaced by the accumulator's read
    and write.  Graphs without the pattern come back unchanged.

    Examples
    --------
    >>> from distsim.workload import build_workload
    >>> g = build_workload("wordlm", hidden=8, vocab=10, seq_len=3, batch=2)
    >>> f = fuse_gradient_accumulation(g)
    >>> len(g.ops) - len(f.ops), f.flops == g.flops
    (4, True)
    """
    ops = list(graph.ops)
    replaced: dict[int, object] = {}
    dropped: set[int] = set()
    for i, add in enumerate(ops):
        if not add.inplace or len(add.inputs) != 2:
            continue
        acc, dw = add.inputs
        producer = graph.producer_index(dw)
        if producer is None or producer in replaced or len(graph.consumer_indices(dw)) != 1:
            continue
        mm = ops[producer]
        if mm.kind != OpKind.MATMUL or len(mm.outputs) != 1:
            continue
        acc_bytes = graph.tensors[acc].nbytes
        acc_producer = graph.producer_index(acc)
        if acc_producer is not None and acc_producer > producer:
            continue  # the accumulator is not ready when the matmul runs
        replaced[producer] = replace(
            mm, inputs=(acc, *mm.inputs), outputs=add.outputs, flops=mm.flops + add.flops,
            nbytes=mm.nbytes - graph.tensors[dw].nbytes + 2 * acc_bytes, inplace=True)
        dropped.add(i)
    if not replaced:
        return graph
    new_ops = [replaced.get(i, op) for i, op in enumerate(ops) if i not in dropped]
    used = {t for op in new_ops for t in op.inputs + op.outputs}
    tensors = {n: t for n, t in graph.tensors.items() if n in used or t.kind.resident}
    return Graph(graph.name, new_ops, tensors, dict(graph.dims, fused_accumulation=True))
