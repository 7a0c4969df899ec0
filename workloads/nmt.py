"""Neural machine translation: bidirectional LSTM encoder, LSTM decoder with Luong attention.

The NMT model of Hestness et al., PPoPP 2019 (section 2.4, Figure 4; Luong et
al. 2015), as in Catamount's profiled graph of TensorFlow's ``nmt`` tutorial
model (``nmt_el2_dl1_n1024_b128``; ``catamount/tests/full/tf_language_models.py``
in the public baidu-research/catamount repository).  A 2-layer bidirectional
encoder in that code is one forward and one backward LSTM (kernels ``[2h, 4h]``
+ bias ``[4h]``) whose outputs are concatenated to ``2h``; the decoder is one
LSTM with input feeding (input ``[embedding h, previous attention h]`` plus
recurrent ``h``: kernel ``[3h, 4h]``); Luong (multiplicative) attention with a
memory layer ``[2h, h]`` (keys from the encoder outputs) and an attention
layer ``[3h, h]`` (``[decoder output, context]`` -> attention output, no bias);
an output projection ``[h, v]`` (no bias); source and target embeddings
``[v, h]``.  Parameters ``33 h^2 + 3 h v + 12 h + 1`` (the 1: the global step).

Source and target sentences both have ``seq_len`` steps (Catamount binds both
loops to one sequence length).  The decoder starts from a zero state.

Beyond the matrix work, the step contains what TensorFlow's graph of that
model contains and Catamount counts (each assumption moves bytes, not FLOPs):
the ``dynamic_rnn`` TensorArray plumbing (scatter + per-step reads, per-step
writes + gather), input dropout on every LSTM (the tutorial's default
``dropout=0.2``), the encoder's per-step sequence-length selects
(``dynamic_rnn`` with source lengths), the reduce-sum/reshape pair TensorFlow
adds to each element-wise gradient when shapes are dynamic (the graph reads an
iterator of unknown batch and length), the transposed, masked attention
memory, the tensordot transposes/reshapes of the output projection and its
3-D logits, and gradient clipping by global norm (``max_gradient_norm=5``).
Catamount counts stack push/pop ops (saved activations) as zero bytes, and so
do we.  Without these the bytes of Catamount's base graph would be 25% low;
with them they are 3.3% low (``tests/test_workload_nmt.py``).

Example
-------
>>> from distsim.workload import build_workload
>>> g = build_workload("nmt", hidden=32, vocab=100, seq_len=4, batch=2)
>>> g.params == 33 * 32**2 + 3 * 32 * 100 + 12 * 32 + 1
True
"""

from __future__ import annotations

from distsim.graph import OpKind, check_dims
from distsim.workload import WORKLOADS

from ._blocks import StepBuilder, check_choice, embedding_bwd, embedding_fwd, softmax_xent
from ._recurrent import LSTMLayer, add_n, stack, unstack, zeros

OPTIONS = {
    "hidden": (int, 1024),
    "vocab": (int, 36548),
    "seq_len": (int, 19),
    "batch": (int, 128),
    "optimizer": (str, "sgd"),
    "precision": (str, "fp32"),  # distsim.precision: fp32, tf32, bf16, fp16, fp8
}

SOFTMAX_FLOPS, SOFTMAX_GRAD_FLOPS = 5, 3


@WORKLOADS.register("nmt")
def build_nmt(**options):
    """One training step of the attention NMT model.

    Parameters
    ----------
    hidden : int
        LSTM and attention width h (default 1024, Catamount's base graph).
    vocab : int
        Word pieces v, shared size of source and target vocabularies (36,548).
    seq_len : int
        Source and target time steps (19, Catamount's base).
    batch : int
        Subbatch size (128).
    optimizer : str
        ``sgd`` (default), ``momentum`` or ``adam``.
    """
    d = check_dims(options, OPTIONS)
    check_choice("optimizer", d["optimizer"], ("sgd", "momentum", "adam"))
    h, v, q, b = d["hidden"], d["vocab"], d["seq_len"], d["batch"]
    n = b * h
    sb = StepBuilder("nmt", d["optimizer"], d["precision"])
    sb.dynamic_shapes = True  # the nmt graph is fed by an iterator of unknown batch and length

    sb.fwd("embedding")
    emb_src = sb.param("embedding/encoder", v * h)
    emb_tgt = sb.param("embedding/decoder", v * h)
    src = sb.input("input/source_ids", q * b)
    tgt_in = sb.input("input/target_ids", q * b)
    tgt_out = sb.input("input/target_labels", q * b)
    sb.fwd("encoder0")
    fw = LSTMLayer(sb, "encoder0/fw", b, h, h, q, dropout=True, seq_mask=True)
    bw = LSTMLayer(sb, "encoder0/bw", b, h, h, q, dropout=True, seq_mask=True)
    sb.fwd("attention")
    w_mem = sb.param("attention/memory_layer", 2 * h * h)
    sb.fwd("decoder")
    dec = LSTMLayer(sb, "decoder", b, h, 2 * h, q, dropout=True)
    sb.fwd("attention")
    w_att = sb.param("attention/attention_layer", 3 * h * h)
    sb.fwd("output")
    w_proj = sb.param("output/projection", h * v)
    sb.param("global_step", 1, trainable=False)

    # ---- encoder -----------------------------------------------------------
    sb.fwd("embedding")
    x_src = embedding_fwd(sb, "embedding/encoder_lookup", emb_src, src, q * b, h)
    sb.fwd("encoder0")
    xs = unstack(sb, "encoder0/fw/unstack", x_src, q, h, b)
    x_rev = sb.data("encoder0/bw/reverse", [x_src], [("encoder0/bw/reverse", q * n)])[0]
    xs_rev = unstack(sb, "encoder0/bw/unstack", x_rev, q, h, b)
    y_fw = stack(sb, "encoder0/fw/stack", fw.forward(xs), h, b)
    y_bw_rev = stack(sb, "encoder0/bw/stack", bw.forward(xs_rev), h, b)
    y_bw = sb.data("encoder0/bw/unreverse", [y_bw_rev], [("encoder0/bw/unreverse", q * n)])[0]
    enc_tm = sb.data("encoder0/concat", [y_fw, y_bw], [("encoder0/concat", 2 * q * n)])[0]
    # the attention memory: batch-major, masked beyond each source length
    sb.fwd("attention")
    src_len = sb.input("input/source_lengths", b)
    enc_bm = sb.data("attention/memory_transpose", [enc_tm], [("attention/memory_transpose", 2 * q * n)])[0]
    mask = sb.ew("attention/memory_mask", [src_len], q * b)
    enc = sb.ew("attention/memory", [enc_bm, mask], 2 * q * n)

    # ---- decoder with attention ------------------------------------------------
    sb.fwd("attention")
    keys = sb.matmul("attention/keys", enc, w_mem, q * b, h, 2 * h)
    sb.fwd("embedding")
    x_tgt = embedding_fwd(sb, "embedding/decoder_lookup", emb_tgt, tgt_in, q * b, h)
    sb.fwd("decoder")
    ys = unstack(sb, "decoder/unstack", x_tgt, q, h, b)
    dec.start()
    att = zeros(sb, "attention/init", n)
    saved, atts = [], []
    for t in range(q):
        p = f"attention/t{t}"
        sb.fwd("decoder")
        x_t = sb.data(f"decoder/t{t}/feed", [ys[t], att], [(f"decoder/t{t}/feed", 2 * n)])[0]
        h_t = dec.step(x_t)
        sb.fwd("attention")
        score = sb.matmul(f"{p}/score", h_t, keys, 1, q, h, batch=b)
        align = sb.ew(f"{p}/align", [score], b * q, SOFTMAX_FLOPS, kind=OpKind.SOFTMAX)
        ctx = sb.matmul(f"{p}/context", align, enc, 1, 2 * h, q, batch=b)
        cat = sb.data(f"{p}/concat", [h_t, ctx], [(f"{p}/concat", 3 * n)])[0]
        att = sb.matmul(f"{p}/output", cat, w_att, b, h, 3 * h)
        saved.append(tuple(sb.push(x) for x in (h_t, align, cat)))
        atts.append(att)
    sb.fwd("output")
    a = stack(sb, "output/stack", atts, h, b)
    # TensorFlow's Dense on the 3-D decoder output is a tensordot (reshape, matmul,
    # reshape) and the sparse cross-entropy of 3-D logits reshapes them to 2-D: each
    # reshape reads and writes the logits in Catamount's accounting.
    # tensordot transposes and reshapes both operands, the [h, v] kernel included
    a2 = _reshape(sb, "output/tensordot/a_reshape", _reshape(sb, "output/tensordot/a_transpose", a))
    k2 = _reshape(sb, "output/tensordot/kernel_reshape", _reshape(sb, "output/tensordot/kernel_transpose", w_proj))
    logits2 = sb.matmul("output/projection_matmul", a2, k2, q * b, v, h)
    logits3 = _reshape(sb, "output/logits_3d", logits2)
    logits = _reshape(sb, "output/xent/logits_2d", logits3)
    _, backprop = softmax_xent(sb, "output/xent", logits, tgt_out, q * b, v)

    # ---- backward ------------------------------------------------------------
    sb.bwd("output")
    # d(loss)/d(logits) = d(loss)/d(crossent) (broadcast) * backprop, reshaped back
    dlogits = sb.ew("output/grad/broadcast_mul", [backprop], q * b * v)
    dlogits = _reshape(sb, "output/grad/logits_3d", dlogits)
    dlogits = _reshape(sb, "output/grad/logits_2d", dlogits)
    da = sb.matmul("output/grad/dx", dlogits, k2, q * b, h, v)
    dk = sb.matmul("output/grad/dw", a2, dlogits, h, v, q * b)
    dk = _reshape(sb, "output/grad/kernel_reshape", _reshape(sb, "output/grad/kernel_transpose", dk))
    sb.grad(w_proj, dk, accumulate=False)
    da = _reshape(sb, "output/grad/a_transpose", _reshape(sb, "output/grad/a_reshape", da))
    das = unstack(sb, "output/grad/unstack", da, q, h, b)
    d_keys = d_enc = d_feed = None
    d_emb_tgt: list[str | None] = [None] * q
    for t in reversed(range(q)):
        p = f"attention/t{t}/grad"
        sb.bwd("attention")
        h_t, align, cat = (sb.pop(x) for x in saved[t])
        da_t = add_n(sb, f"{p}/d_att", [das[t], d_feed], n)
        dcat = sb.dense_bwd(p, da_t, cat, w_att, b, h, 3 * h, accumulate=True)
        dh_att, dctx = sb.data(f"{p}/d_split", [dcat], [(f"{p}/d_h_att", n), (f"{p}/d_ctx", 2 * n)])
        dalign = sb.matmul(f"{p}/d_align", dctx, enc, 1, q, 2 * h, batch=b)
        denc_t = sb.matmul(f"{p}/d_values", align, dctx, q, 2 * h, 1, batch=b)
        dscore = sb.ew(f"{p}/d_score", [align, dalign], b * q, SOFTMAX_GRAD_FLOPS)
        dh_score = sb.matmul(f"{p}/d_h_score", dscore, keys, 1, h, q, batch=b)
        dkeys_t = sb.matmul(f"{p}/d_keys", dscore, h_t, q, h, 1, batch=b)
        # loop-invariant encoder tensors accumulate their gradient with one add per step
        d_enc = sb.accumulate(f"{p}/d_values_acc", d_enc or zeros(sb, "attention/d_values_zeros", 2 * q * n), denc_t)
        d_keys = sb.accumulate(f"{p}/d_keys_acc", d_keys or zeros(sb, "attention/d_keys_zeros", q * n), dkeys_t)
        dh_t = add_n(sb, f"{p}/d_h", [dh_att, dh_score], n)
        sb.bwd("decoder")
        dx_t = dec.backward_step(t, dh_t)
        d_emb_tgt[t], d_feed = sb.data(f"decoder/t{t}/grad/feed_split", [dx_t], [(f"decoder/t{t}/grad/d_emb", n), (f"decoder/t{t}/grad/d_feed", n)])
        d_feed = d_feed if t > 0 else None
    sb.bwd("embedding")
    d_x_tgt = stack(sb, "embedding/decoder_grad_stack", d_emb_tgt, h, b)
    embedding_bwd(sb, "embedding/decoder_grad", emb_tgt, d_x_tgt, tgt_in)
    sb.bwd("attention")
    d_enc_keys = sb.dense_bwd("attention/keys/grad", d_keys, enc, w_mem, q * b, h, 2 * h)
    d_enc = add_n(sb, "attention/d_encoder", [d_enc, d_enc_keys], 2 * q * n)
    d_enc = sb.bgrad(sb.ew("attention/memory/grad", [d_enc, mask], 2 * q * n))
    d_enc = sb.data("attention/memory_transpose/grad", [d_enc], [("attention/memory_transpose/grad", 2 * q * n)])[0]
    sb.bwd("encoder0")
    dy_fw, dy_bw = sb.data("encoder0/grad/split", [d_enc], [("encoder0/grad/d_fw", q * n), ("encoder0/grad/d_bw", q * n)])
    dy_bw_rev = sb.data("encoder0/bw/grad/reverse", [dy_bw], [("encoder0/bw/grad/reverse", q * n)])[0]
    dx_fw = stack(sb, "encoder0/fw/grad/stack", fw.backward(unstack(sb, "encoder0/fw/grad/unstack", dy_fw, q, h, b)), h, b)
    dx_bw_rev = stack(sb, "encoder0/bw/grad/stack", bw.backward(unstack(sb, "encoder0/bw/grad/unstack", dy_bw_rev, q, h, b)), h, b)
    dx_bw = sb.data("encoder0/bw/grad/unreverse", [dx_bw_rev], [("encoder0/bw/grad/unreverse", q * n)])[0]
    dx_src = add_n(sb, "encoder0/grad/d_x", [dx_fw, dx_bw], q * n)
    sb.bwd("embedding")
    embedding_bwd(sb, "embedding/encoder_grad", emb_src, dx_src, src)
    sb.clip_by_global_norm()
    return sb.finish({k: d[k] for k in ("hidden", "vocab", "seq_len", "batch")})


def _reshape(sb: StepBuilder, name: str, x: str) -> str:
    """A copy (reshape or transpose): Catamount counts its input and output bytes."""
    return sb.data(name, [x], [(name, sb.elements(x))])[0]


build_nmt.OPTIONS = OPTIONS
