"""Speech recognition: pyramidal bidirectional LSTM encoder, hybrid-attention decoder.

The speech model of Hestness et al., PPoPP 2019 (section 2.5, Figure 5): the
attention model of Battenberg et al. 2017 ("Exploring neural transducers for
end-to-end speech recognition"), whose TensorFlow graph Catamount profiles
(``catamount/tests/full/tf_speech_attention.py`` in the public
baidu-research/catamount repository).  We follow the variables and loop
lengths that file binds:

- input: ``seq_len`` frames of ``features`` (40) filter-bank values, normalized
  by stored means and deviations (``InputNormalizer``, 2 x 40 untrained values);
- encoder: ``layers`` (3) bidirectional LSTM layers of width h (kernels
  ``[40 + h, 4h]`` then ``[3h, 4h]``: input ``2h`` plus recurrent ``h``), with a
  stride-2 max pooling in time between layers, so they run ``T``, ``T/2``,
  ``T/4`` steps;
- attention keys: an affine layer ``[2h, A]`` + ``[A]`` on the encoder output
  (attention dimension ``A`` = 128);
- decoder, ``T / 4`` steps (Catamount binds decoder steps to the last encoder
  layer's length): an attention LSTM of width ``h/2`` on ``[previous character
  one-hot (V = 31), previous context (2h)]``; hybrid (content + location)
  attention (Chorowski et al. 2015) with query ``[2 (h/2), A]`` from the
  attention LSTM's state, a convolution of the previous alignments (width 50,
  4 filters; ``Q [50, 1, 4]``, ``U [1, 4, A]``), bias ``b [A]`` and scoring
  vector ``w [A]``; a decoder LSTM of width ``h/2`` on ``[attention LSTM output,
  context]``; an output projection ``[h/2, V]`` + ``[V]`` per step;
- two scalar variables (global step, learning rate) complete Catamount's count.

Sequences pass through ``bidirectional_dynamic_rnn``'s plumbing (reversal of
the backward direction's input and output, TensorArray scatter/reads and
writes/gather, concatenation); element-wise gradients carry TensorFlow's
reduce-sum/reshape pair (placeholders of unknown length and batch); stack
push/pop costs nothing (as Catamount counts it).

At hidden 1024, 96 frames, subbatch 32 this has Catamount's 71,084,729
parameters.  The paper unrolls about 300 encoder steps (its FLOPs/param of
775 b, Table 2, follows from 300 / 150 / 75 encoder and 75 decoder steps), so
``seq_len`` defaults to 300.

Example
-------
>>> from distsim.workload import build_workload
>>> g = build_workload("speech", hidden=64, seq_len=8, batch=2)
>>> g.params > 0
True
"""

from __future__ import annotations

from distsim.graph import OpKind, TensorKind, check_dims
from distsim.errors import ConfigError
from distsim.workload import WORKLOADS

from ._blocks import StepBuilder, check_choice, softmax_xent
from ._recurrent import TANH, TANH_GRAD, LSTMLayer, add_n, stack, unstack, zeros

OPTIONS = {
    "hidden": (int, 1024),
    "seq_len": (int, 300),
    "batch": (int, 32),
    "layers": (int, 3),
    "vocab": (int, 31),
    "features": (int, 40),
    "attention": (int, 128),
    "conv_width": (int, 50),
    "conv_filters": (int, 4),
    "optimizer": (str, "sgd"),
    "precision": (str, "fp32"),  # distsim.precision: fp32, tf32, bf16, fp16, fp8
}

SOFTMAX_FLOPS, SOFTMAX_GRAD_FLOPS = 5, 3
# dynamic_rnn's per-step sequence-length selects in the encoder.  Catamount's graph has an
# ``input_len`` placeholder, but its test file does not show whether the encoder consumes it;
# with the selects our bytes would be 2.9% below Catamount's base graph (without: 4.9%) and
# Table 2's mu 22% above the paper's (without: 4%), so we leave them out.
SEQ_MASK = False


def _copy(sb, name: str, x: str) -> str:
    """A whole-tensor copy (reverse_sequence, reshape): bytes in + out."""
    return sb.data(name, [x], [(name, sb.elements(x))])[0]


class _BiLayer:
    """A bidirectional LSTM layer over a ``[steps * b, in_dim]`` sequence, as
    ``bidirectional_dynamic_rnn`` with sequence lengths builds it: the backward
    direction reverses its input and output, each direction reads and writes
    its sequence through TensorArrays, and the outputs are concatenated."""

    def __init__(self, sb, name, steps, b, h, in_dim):
        self.sb, self.name, self.steps, self.b, self.h, self.in_dim = sb, name, steps, b, h, in_dim
        self.fw = LSTMLayer(sb, f"{name}/fw", b, h, in_dim, steps, seq_mask=SEQ_MASK)
        self.bw = LSTMLayer(sb, f"{name}/bw", b, h, in_dim, steps, seq_mask=SEQ_MASK)

    def forward(self, x: str) -> str:
        sb, name, q, b, h, k = self.sb, self.name, self.steps, self.b, self.h, self.in_dim
        y_fw = stack(sb, f"{name}/fw/stack", self.fw.forward(unstack(sb, f"{name}/fw/unstack", x, q, k, b)), h, b)
        x_rev = _copy(sb, f"{name}/bw/reverse", x)
        y_bw = stack(sb, f"{name}/bw/stack", self.bw.forward(unstack(sb, f"{name}/bw/unstack", x_rev, q, k, b)), h, b)
        y_bw = _copy(sb, f"{name}/bw/unreverse", y_bw)
        return sb.data(f"{name}/concat", [y_fw, y_bw], [(f"{name}/concat", 2 * q * b * h)])[0]

    def backward(self, dy: str, need_dx: bool) -> str | None:
        sb, name, q, b, h, k = self.sb, self.name, self.steps, self.b, self.h, self.in_dim
        n = q * b * h
        d_fw, d_bw = sb.data(f"{name}/grad/split", [dy], [(f"{name}/grad/d_fw", n), (f"{name}/grad/d_bw", n)])
        d_bw = _copy(sb, f"{name}/bw/grad/reverse", d_bw)
        dx_fw = self.fw.backward(unstack(sb, f"{name}/fw/grad/unstack", d_fw, q, h, b), need_dx=need_dx)
        dx_bw = self.bw.backward(unstack(sb, f"{name}/bw/grad/unstack", d_bw, q, h, b), need_dx=need_dx)
        if not need_dx:
            return None
        dx_fw = stack(sb, f"{name}/fw/grad/stack", dx_fw, k, b)
        dx_bw = _copy(sb, f"{name}/bw/grad/unreverse", stack(sb, f"{name}/bw/grad/stack", dx_bw, k, b))
        return add_n(sb, f"{name}/grad/d_x", [dx_fw, dx_bw], q * b * k)


@WORKLOADS.register("speech")
def build_speech(**options):
    """One training step of the attention speech model.

    Parameters
    ----------
    hidden : int
        Encoder LSTM width h (default 1024); both decoder LSTMs are h/2 wide.
    seq_len : int
        Encoder input frames T (300); must allow ``layers - 1`` halvings.
    batch : int
        Subbatch size (32, Catamount's base graph).
    layers : int
        Bidirectional encoder layers (3), with stride-2 pooling between them.
    vocab : int
        Output characters V (31).
    features : int
        Input features per frame (40).
    attention : int
        Attention dimension A (128).
    conv_width, conv_filters : int
        Location-attention convolution (50, 4).
    optimizer : str
        ``sgd`` (default), ``momentum`` or ``adam``.
    """
    d = check_dims(options, OPTIONS)
    check_choice("optimizer", d["optimizer"], ("sgd", "momentum", "adam"))
    h, T, b, V, F, A = d["hidden"], d["seq_len"], d["batch"], d["vocab"], d["features"], d["attention"]
    cw, nf, L = d["conv_width"], d["conv_filters"], d["layers"]
    if h < 2:
        raise ConfigError(f"hidden must be at least 2 (decoder LSTMs are hidden/2 wide), got {h}")
    D = T // 2 ** (L - 1)
    if D < 1:
        raise ConfigError(f"seq_len must be at least {2 ** (L - 1)} for {L} encoder layers, got {T}")
    ah = dh = h // 2
    sb = StepBuilder("speech", d["optimizer"], d["precision"])
    sb.dynamic_shapes = True  # placeholders of unknown length and batch, as in Catamount's graph
    g = sb.g

    # ---- variables -----------------------------------------------------------
    sb.fwd("input")
    audio = sb.input("input/audio", T * b * F)
    labels = sb.input("input/labels", D * b)
    means = sb.param("input/normalizer_means", F, trainable=False)
    std = sb.param("input/normalizer_std", F, trainable=False)
    sb.fwd("attention")
    w_keys = sb.param("attention/state_W", 2 * h * A)
    b_keys = sb.param("attention/state_b", A)
    w_query = sb.param("attention/W", 2 * ah * A)
    b_att = sb.param("attention/b", A)
    v_att = sb.param("attention/w", A)
    conv_q = sb.param("attention/Q", cw * nf)
    conv_u = sb.param("attention/U", nf * A)
    sb.fwd("output")
    w_out = sb.param("output/W", dh * V)
    b_out = sb.param("output/b", V)
    sb.param("global_step", 1, trainable=False)
    sb.param("learning_rate", 1, trainable=False)

    # ---- encoder -------------------------------------------------------------
    sb.fwd("input")
    x = sb.ew("input/center", [audio, means], T * b * F)
    x = sb.ew("input/scale", [x, std], T * b * F)
    enc_layers = []
    in_dim, steps = F, T
    for i in range(L):
        name = f"encoder{i}"
        sb.fwd(name)
        pool_in = None
        if i > 0:  # stride-2 max pooling in time over the whole sequence
            pool_in = x
            steps //= 2
            x = sb.ew(f"{name}/pool", [x], steps * b * in_dim)
        layer = _BiLayer(sb, name, steps, b, h, in_dim)
        enc_layers.append((layer, pool_in))
        x = layer.forward(x)
        in_dim = 2 * h
    assert steps == D
    enc = x  # [D * b, 2h]

    # ---- decoder ---------------------------------------------------------------
    sb.fwd("attention")
    keys = sb.matmul("attention/keys", enc, w_keys, D * b, A, 2 * h)
    keys = sb.ew("attention/keys_bias", [keys, b_keys], D * b * A)
    sb.fwd("decoder")
    att_cell = LSTMLayer(sb, "decoder/attention_cell", b, ah, V + 2 * h, D)
    dec_cell = LSTMLayer(sb, "decoder/decoder_cell", b, dh, ah + 2 * h, D)
    att_cell.start()
    dec_cell.start()
    ctx = zeros(sb, "attention/context_init", 2 * b * h)
    align = zeros(sb, "attention/align_init", b * D)
    saved, logits = [], []
    for t in range(D):
        p = f"attention/t{t}"
        sb.fwd("decoder")
        onehot = g.op(f"decoder/t{t}/one_hot", OpKind.DATA, [labels], [(f"decoder/t{t}/one_hot", b * V)])[0]
        x_att = sb.data(f"decoder/t{t}/att_in", [onehot, ctx], [(f"decoder/t{t}/att_in", b * (V + 2 * h))])[0]
        a_out = att_cell.step(x_att)
        state = sb.data(f"decoder/t{t}/att_state", [att_cell.c_prev, a_out], [(f"decoder/t{t}/att_state", 2 * b * ah)])[0]
        sb.fwd("attention")
        query = sb.matmul(f"{p}/query", state, w_query, b, A, 2 * ah)
        align_prev = align
        f_loc = g.op(f"{p}/conv_q", OpKind.CONV, [align, conv_q], [(f"{p}/conv_q", b * D * nf)], flops=2 * b * D * cw * nf)[0]
        loc = g.op(f"{p}/conv_u", OpKind.CONV, [f_loc, conv_u], [(f"{p}/conv_u", b * D * A)], flops=2 * b * D * nf * A)[0]
        pre = sb.ew(f"{p}/add_keys", [keys, query], b * D * A)
        pre = sb.ew(f"{p}/add_loc", [pre, loc], b * D * A)
        pre = sb.ew(f"{p}/add_bias", [pre, b_att], b * D * A)
        energy = sb.ew(f"{p}/tanh", [pre], b * D * A, TANH)
        scored = sb.ew(f"{p}/mul_w", [energy, v_att], b * D * A)
        e = sb.reduce(f"{p}/score", scored, b * D)
        align = sb.ew(f"{p}/align", [e], b * D, SOFTMAX_FLOPS, kind=OpKind.SOFTMAX)
        weighted = sb.ew(f"{p}/weighted", [align, enc], D * b * 2 * h)
        ctx = sb.reduce(f"{p}/context", weighted, b * 2 * h)
        sb.fwd("decoder")
        x_dec = sb.data(f"decoder/t{t}/dec_in", [a_out, ctx], [(f"decoder/t{t}/dec_in", b * (ah + 2 * h))])[0]
        d_out = dec_cell.step(x_dec)
        sb.fwd("output")
        z = sb.matmul(f"output/t{t}/matmul", d_out, w_out, b, V, dh)
        logits.append(sb.ew(f"output/t{t}/bias", [z, b_out], b * V))
        saved.append(tuple(sb.push(v) for v in (state, energy, align, d_out, f_loc)) + (sb.push(align_prev, "/conv"),))
    sb.fwd("output")
    all_logits = stack(sb, "output/stack", logits, V, b)
    _, dlogits = softmax_xent(sb, "output/xent", all_logits, labels, D * b, V)

    # ---- backward: decoder -------------------------------------------------------
    sb.bwd("output")
    dls = unstack(sb, "output/grad/unstack", dlogits, D, V, b)
    d_enc = d_keys = d_ctx_next = d_align_next = None
    for t in reversed(range(D)):
        p = f"attention/t{t}/grad"
        state, energy, align_t, d_out, loc_in, conv_in = (sb.pop(v) for v in saved[t])
        sb.bwd("output")
        sb.bias_bwd(f"output/t{t}/grad", dls[t], b_out, accumulate=True)
        dd = sb.dense_bwd(f"output/t{t}/grad", dls[t], d_out, w_out, b, V, dh, accumulate=True)
        sb.bwd("decoder")
        dx_dec = dec_cell.backward_step(t, dd)
        d_a_out1, d_ctx1 = sb.data(f"decoder/t{t}/grad/dec_in_split", [dx_dec],
                                   [(f"decoder/t{t}/grad/d_a_out", b * ah), (f"decoder/t{t}/grad/d_ctx", 2 * b * h)])
        sb.bwd("attention")
        d_ctx = add_n(sb, f"{p}/d_ctx", [d_ctx1, d_ctx_next], 2 * b * h)
        d_weighted = sb.data(f"{p}/d_weighted", [d_ctx], [(f"{p}/d_weighted", D * b * 2 * h)])[0]
        d_enc_t = sb.ew(f"{p}/d_enc", [d_weighted, align_t], D * b * 2 * h)
        d_align_m = sb.ew(f"{p}/d_align_mul", [d_weighted, enc], D * b * 2 * h)
        d_align = sb.reduce(f"{p}/d_align_sum", d_align_m, b * D)
        d_align = add_n(sb, f"{p}/d_align_total", [d_align, d_align_next], b * D)
        d_e = sb.ew(f"{p}/d_score", [align_t, d_align], b * D, SOFTMAX_GRAD_FLOPS)
        d_scored = sb.data(f"{p}/d_scored", [d_e], [(f"{p}/d_scored", b * D * A)])[0]
        d_energy = sb.bgrad(sb.ew(f"{p}/d_energy", [d_scored, v_att], b * D * A))
        d_vw = sb.reduce(f"{p}/d_w", sb.ew(f"{p}/d_w_mul", [d_scored, energy], b * D * A), A, out_kind=TensorKind.GRADIENT)
        sb.grad(v_att, d_vw, accumulate=True)
        d_pre = sb.ew(f"{p}/d_tanh", [energy, d_energy], b * D * A, TANH_GRAD)
        d_pre_b = sb.bgrad(d_pre, "b")
        sb.bias_bwd(f"{p}/att_bias", d_pre_b, b_att, accumulate=True)
        d_loc = sb.bgrad(d_pre, "loc")
        d_keys_t = sb.bgrad(d_pre, "keys")
        d_query = sb.reduce(f"{p}/d_query", sb.bgrad(d_pre, "query"), b * A)
        d_keys = sb.accumulate(f"{p}/d_keys_acc", d_keys or zeros(sb, "attention/d_keys_zeros", D * b * A), d_keys_t)
        d_enc = sb.accumulate(f"{p}/d_enc_acc", d_enc or zeros(sb, "attention/d_enc_zeros", D * b * 2 * h), d_enc_t)
        # location convolutions: input and filter gradients, each the forward's FLOPs
        d_f = g.op(f"{p}/conv_u_dx", OpKind.CONV, [d_loc, conv_u], [(f"{p}/conv_u_dx", b * D * nf)], flops=2 * b * D * nf * A)[0]
        d_u = g.op(f"{p}/conv_u_dw", OpKind.CONV, [loc_in, d_loc], [(f"{p}/conv_u_dw", nf * A)], flops=2 * b * D * nf * A, out_kind=TensorKind.GRADIENT)[0]
        sb.grad(conv_u, d_u, accumulate=True)
        d_q = g.op(f"{p}/conv_q_dw", OpKind.CONV, [conv_in, d_f], [(f"{p}/conv_q_dw", cw * nf)], flops=2 * b * D * cw * nf, out_kind=TensorKind.GRADIENT)[0]
        sb.grad(conv_q, d_q, accumulate=True)
        d_align_next = None
        if t > 0:
            d_align_next = g.op(f"{p}/conv_q_dx", OpKind.CONV, [d_f, conv_q], [(f"{p}/conv_q_dx", b * D)], flops=2 * b * D * cw * nf)[0]
        d_state = sb.dense_bwd(f"{p}/query", d_query, state, w_query, b, A, 2 * ah, accumulate=True)
        d_c_att, d_h_att = sb.data(f"{p}/d_state_split", [d_state], [(f"{p}/d_c_att", b * ah), (f"{p}/d_h_att", b * ah)])
        sb.bwd("decoder")
        d_a_out = add_n(sb, f"decoder/t{t}/grad/d_att_out", [d_a_out1, d_h_att], b * ah)
        dx_att = att_cell.backward_step(t, d_a_out, dc_extra=d_c_att, need_dx=True)
        _, d_ctx_prev = sb.data(f"decoder/t{t}/grad/att_in_split", [dx_att],
                                [(f"decoder/t{t}/grad/d_onehot", b * V), (f"decoder/t{t}/grad/d_ctx_prev", 2 * b * h)])
        d_ctx_next = d_ctx_prev if t > 0 else None

    # ---- backward: encoder --------------------------------------------------------
    sb.bwd("attention")
    sb.bias_bwd("attention/keys/grad", d_keys, b_keys)
    d_enc_keys = sb.dense_bwd("attention/keys/grad", d_keys, enc, w_keys, D * b, A, 2 * h)
    d_enc = add_n(sb, "attention/d_encoder", [d_enc, d_enc_keys], D * b * 2 * h)
    dx = d_enc
    for i in reversed(range(L)):
        layer, pool_in = enc_layers[i]
        sb.bwd(layer.name)
        dx = layer.backward(dx, need_dx=i > 0)
        if i > 0:  # max-pool gradient: each pooled gradient goes to the frame that won
            dx = sb.ew(f"{layer.name}/pool/grad", [pool_in, dx], sb.elements(pool_in))
    return sb.finish({k: d[k] for k in OPTIONS if k != "optimizer"} | {"decoder_steps": D})


build_speech.OPTIONS = OPTIONS
