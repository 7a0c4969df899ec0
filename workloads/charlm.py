"""Character language model: embedding, recurrent highway network, full softmax.

The character LM of Hestness et al., PPoPP 2019 (section 2.3, Figure 3), as in
Catamount's profiled TensorFlow graph (``char_lm_n2004_l10_..._rhn_b128_vchar
_d1.0_s150``; ``catamount/tests/full/tf_language_models.py`` in the public
baidu-research/catamount repository): one RHN layer of recurrence depth 10
(Zilly et al. 2017) with a coupled carry gate, an embedding ``[v, h]`` and a
full softmax ``[v, h]`` + bias ``[v]``.  Catamount's parameter count is
``22 h^2 + 2 h v + 20 h + v + 2``; the two extra scalars are its global step
and learning-rate variables, kept here as untrained weights so the count is
exact.

As in Catamount's graph, weight gradients are per time step and accumulated
across the 150 steps, saved activations cost no bytes (stack ops count zero),
sequences pass through TensorArrays, and each element-wise gradient carries
TensorFlow's reduce-sum/reshape pair (dynamic batch and length).

Example
-------
>>> from distsim.workload import build_workload
>>> g = build_workload("charlm", hidden=64, seq_len=5, batch=2)
>>> g.params == 22 * 64**2 + 2 * 64 * 98 + 20 * 64 + 98 + 2
True
"""

from __future__ import annotations

from distsim.graph import check_dims
from distsim.workload import WORKLOADS

from ._blocks import StepBuilder, check_choice, embedding_bwd, embedding_fwd, softmax_xent
from ._recurrent import RHNLayer, stack, unstack

OPTIONS = {
    "hidden": (int, 2004),
    "vocab": (int, 98),
    "layers": (int, 1),
    "depth": (int, 10),
    "seq_len": (int, 150),
    "batch": (int, 128),
    "optimizer": (str, "sgd"),
    "precision": (str, "fp32"),  # distsim.precision: fp32, tf32, bf16, fp16, fp8
}


@WORKLOADS.register("charlm")
def build_charlm(**options):
    """One training step of the RHN character LM.

    Parameters
    ----------
    hidden : int
        RHN state width h (default 2004, Catamount's base graph).
    vocab : int
        Characters v (98).
    layers : int
        Stacked RHN layers (1, as in the paper).
    depth : int
        Recurrence depth of each RHN layer (10).
    seq_len : int
        Unrolled time steps (150).
    batch : int
        Subbatch size (128).
    optimizer : str
        ``sgd`` (default), ``momentum`` or ``adam``.
    """
    d = check_dims(options, OPTIONS)
    check_choice("optimizer", d["optimizer"], ("sgd", "momentum", "adam"))
    h, v, q, b = d["hidden"], d["vocab"], d["seq_len"], d["batch"]
    sb = StepBuilder("charlm", d["optimizer"], d["precision"])
    sb.dynamic_shapes = True  # batch and length are dynamic in the profiled graph
    sb.fwd("embedding")
    emb = sb.param("embedding/weights", v * h)
    ids = sb.input("input/ids", q * b)
    labels = sb.input("input/labels", q * b)
    rhns = []
    for i in range(d["layers"]):
        sb.fwd(f"rhn{i}")
        rhns.append(RHNLayer(sb, f"rhn{i}", b, h, h, q, d["depth"]))
    sb.fwd("output")
    w_out = sb.param("output/W_softmax", v * h)
    b_out = sb.param("output/b_softmax", v)
    sb.param("global_step", 1, trainable=False)
    sb.param("learning_rate", 1, trainable=False)

    # forward
    sb.fwd("embedding")
    x = embedding_fwd(sb, "embedding/lookup", emb, ids, q * b, h)
    for i, rhn in enumerate(rhns):
        sb.fwd(f"rhn{i}")
        xs = unstack(sb, f"rhn{i}/unstack", x, q, h, b)
        x = stack(sb, f"rhn{i}/stack", rhn.forward(xs), h, b)
    sb.fwd("output")
    z = sb.matmul("output/matmul", x, w_out, q * b, v, h)
    logits = sb.ew("output/bias", [z, b_out], q * b * v)
    _, dlogits = softmax_xent(sb, "output/xent", logits, labels, q * b, v)

    # backward
    sb.bwd("output")
    sb.bias_bwd("output/grad", dlogits, b_out)
    dx = sb.dense_bwd("output/grad", dlogits, x, w_out, q * b, v, h)
    for i in reversed(range(len(rhns))):
        sb.bwd(f"rhn{i}")
        dys = unstack(sb, f"rhn{i}/grad/unstack", dx, q, h, b)
        dxs = rhns[i].backward(dys)
        dx = stack(sb, f"rhn{i}/grad/stack", dxs, h, b)
    sb.bwd("embedding")
    embedding_bwd(sb, "embedding/grad", emb, dx, ids)
    return sb.finish({k: d[k] for k in ("hidden", "vocab", "layers", "depth", "seq_len", "batch")})


build_charlm.OPTIONS = OPTIONS
