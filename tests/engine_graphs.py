"""A small synthetic word-LM-like graph (embedding, recurrent layers, output) for the engine tests."""

from __future__ import annotations

from distsim.graph import GraphBuilder, OpKind, Phase, TensorKind


def toy_lm(layers: int = 3, batch: int = 8, hidden: int = 64, vocab: int = 256, steps: int = 2):
    """Forward matmuls per layer and time step, backward in reverse, then per-layer updates.

    Each layer's weight gradient is produced by its last backward op, so the
    layer's all-reduce can start while earlier layers' backward still runs.
    """
    b = GraphBuilder("toy_lm")
    names = ["embedding"] + [f"rnn{i}" for i in range(layers)] + ["output"]
    dims = {n: (hidden, vocab if n in ("embedding", "output") else hidden) for n in names}
    weights = {}
    for n in names:
        b.layer = n
        weights[n] = b.tensor(f"{n}.w", dims[n][0] * dims[n][1], TensorKind.WEIGHT)
    b.layer = "data"
    x = b.tensor("tokens", batch * steps, TensorKind.INPUT)
    b.phase = Phase.FORWARD
    acts = {}
    prev = x
    for n in names:
        b.layer = n
        k, m = dims[n]
        out = b.matmul(f"{n}.fwd", prev, weights[n], f"{n}.y", batch * steps, m if n == "output" else k, k)
        acts[n] = (prev, out)
        prev = out
    b.phase = Phase.BACKWARD
    grad = b.elementwise("loss.grad", [prev], "dy.output", batch * steps * dims["output"][1])
    for n in reversed(names):
        b.layer = n
        k, m = dims[n]
        inp, out = acts[n]
        dx = b.matmul(f"{n}.bwd_data", grad, weights[n], f"{n}.dx", batch * steps, k, m)
        b.matmul(f"{n}.bwd_weight", grad, inp, f"{n}.dw", k, m, batch * steps, out_kind=TensorKind.GRADIENT)
        grad = dx
    b.phase = Phase.UPDATE
    for n in names:
        b.layer = n
        elements = dims[n][0] * dims[n][1]  # an update changes the weight in place: no outputs
        b.op(f"{n}.update", OpKind.OPTIMIZER, [weights[n], f"{n}.dw"], [], flops=2 * elements,
             nbytes=3 * 4 * elements)
    return b.build()
