"""Word language model: embedding, L LSTM layers, full-softmax output.

The graph mirrors the TensorFlow training graph that Catamount analyses
(``word_lm_n2004_l2_..._s80`` in baidu-research/catamount), op by op:

- ``embedding``: gather of the step's token rows from ``[vocab, embed_dim]``;
- ``lstm{i}``: per time step a BasicLSTMCell: concat ``[x_t, h_{t-1}]``, one
  matmul with the ``[in + hidden, 4 hidden]`` kernel, bias add, split into the
  i, j, f, o gates, sigmoid/tanh, ``c = c*sig(f + 1) + sig(i)*tanh(j)``,
  ``h = tanh(c)*sig(o)``;
- ``output``: the time steps' outputs collapsed to ``[seq_len*batch, .]``, an
  optional LSTM projection ``[hidden, projection]`` (Sak et al. 2014; applied
  to the last layer's output only, as in Catamount's LSTM-p), a full softmax
  ``[vocab, hidden or projection]`` plus bias, and the cross-entropy loss.

Backward ops mirror the forward ones: a matmul's backprop is two matmuls
(input and weight gradient, 2x the forward FLOPs); recurrent kernels get one
weight gradient per time step, accumulated across steps by an add (TF's
while-loop gradient accumulator).  The embedding gradient is sparse (the
step's rows only, TF's IndexedSlices).  Parameters are updated by SGD
(default), momentum or Adam, with their optimizer state.

The parameter count is Catamount's ``16h^2 + 2hv + 8h + v + 2`` for two layers
(the ``+ 2`` are the scalar learning-rate and global-step variables).
"""

from __future__ import annotations

from distsim.graph import GraphBuilder, OpKind, Phase, TensorKind, check_dims
from distsim.errors import ConfigError
from distsim.workload import WORKLOADS

OPTIONS = {
    "layers": (int, 2),
    "hidden": (int, 2004),
    "vocab": (int, 10004),
    "embed_dim": (int, 0),  # 0: same as hidden
    "projection": (int, 0),  # 0: no projection
    "seq_len": (int, 80),
    "batch": (int, 64),
    "optimizer": (str, "sgd"),
    "precision": (str, "fp32"),  # distsim.precision: fp32, tf32, bf16, fp16, fp8
}

# Elementwise FLOPs per element (algorithmic, after TFprof's conventions:
# 1 per add/mul, a few for transcendental activations).
SIGMOID_FLOPS = 4
TANH_FLOPS = 4
SOFTMAX_FLOPS = 5  # max, subtract, exp, sum, divide
FORGET_BIAS = 1.0  # BasicLSTMCell adds 1.0 to the forget gate (one add per element)

# optimizer -> (state tensors per parameter, FLOPs per updated element, tensors read+written per element)
OPTIMIZERS = {
    "sgd": (0, 2, 3),  # w -= lr*g: read w, g; write w
    "momentum": (1, 4, 5),  # m = mu*m + g; w -= lr*m
    "adam": (2, 10, 7),  # m, v moments, bias-corrected step
}


def optimizer_spec(name: str) -> tuple[int, int, int]:
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise ConfigError(f"unknown optimizer {name!r}; accepted: {', '.join(OPTIMIZERS)}") from None


def add_update(gb: GraphBuilder, weight: str, grad: str, elements: int, optimizer: str, *, rows: int | None = None) -> None:
    """Append the update of ``weight`` by ``grad``.

    ``rows`` (elements actually touched) makes it a sparse update of only the
    rows in ``grad`` (embedding tables); otherwise the whole tensor is updated.
    """
    n_state, flops_per, _ = optimizer_spec(optimizer)
    gb.optimizer_update(weight, grad, elements, moments=n_state, flops_per_element=flops_per, touched=rows,
                        state_prefix="opt_state")


def binary_grad(gb: GraphBuilder, prefix: str, grad: str, others: tuple, elements: int) -> tuple[str, str]:
    """Gradients of a binary elementwise op ``out = x (*|+) y`` for both inputs.

    For ``*`` (``others`` = (y, x)) each input's gradient is ``grad * other``;
    for ``+`` (``others`` = (None, None)) it is ``grad``.  As in TensorFlow's
    _MulGrad/_AddGrad, each is then reduced to its input's broadcast shape by
    a Sum op (a full pass over the gradient even when no axis is reduced).
    """
    outs = []
    for side, other in zip("xy", others):
        src = grad
        if other is not None:
            src = gb.elementwise(f"{prefix}/grad_{side}", [grad, other], f"{prefix}/grad_{side}", elements)
        (red,) = gb.op(f"{prefix}/grad_{side}/reduce", OpKind.REDUCTION, [src], [(f"{prefix}/d_{side}", elements)])
        outs.append(red)
    return outs[0], outs[1]


def unstack(gb: GraphBuilder, prefix: str, seq: str, steps: int, elements: int) -> list[str]:
    """A sequence into per-step tensors, as TF's dynamic_rnn does it: a
    TensorArray scatter (one copy of the sequence) and one read per step."""
    (ta,) = gb.op(prefix + "/scatter", OpKind.DATA, [seq], [(prefix + "/ta", steps * elements)])
    nbytes = 2 * elements * gb.element_bytes
    return [gb.op(f"{prefix}/read{t}", OpKind.DATA, [ta], [(f"{prefix}/x{t}", elements)], nbytes=nbytes)[0]
            for t in range(steps)]


def stack(gb: GraphBuilder, prefix: str, steps: list[str], elements: int) -> str:
    """Per-step tensors into a sequence: one TensorArray write per step and a gather."""
    written = [gb.op(f"{prefix}/write{t}", OpKind.DATA, [x], [(f"{prefix}/w{t}", elements)])[0]
               for t, x in enumerate(steps)]
    return gb.op(prefix + "/gather", OpKind.DATA, written, [(prefix + "/seq", len(steps) * elements)])[0]


@WORKLOADS.register("wordlm")
def build_wordlm(**options):
    """Build one training step of the word LM.

    Examples
    --------
    >>> g = build_wordlm(hidden=2004, vocab=10004, layers=2, seq_len=80, batch=64)
    >>> g.params
    104378326
    """
    d = check_dims(options, OPTIONS)
    L, h, v, q, b = d["layers"], d["hidden"], d["vocab"], d["seq_len"], d["batch"]
    e = d["embed_dim"] or h
    p = d["projection"]
    opt = d["optimizer"]
    optimizer_spec(opt)
    gb = GraphBuilder("wordlm", precision=d["precision"])
    W, G, A, I = TensorKind.WEIGHT, TensorKind.GRADIENT, TensorKind.ACTIVATION, TensorKind.INPUT
    tokens = q * b

    # ---------------- parameters and inputs ----------------
    gb.layer = "embedding"
    emb = gb.tensor("embedding/table", v * e, W)
    ids = gb.tensor("input/token_ids", tokens, I)
    kernels, biases = [], []
    for l in range(L):
        gb.layer = f"lstm{l}"
        in_dim = e if l == 0 else h
        kernels.append(gb.tensor(f"lstm{l}/kernel", (in_dim + h) * 4 * h, W))
        biases.append(gb.tensor(f"lstm{l}/bias", 4 * h, W))
    gb.layer = "output"
    out_dim = p or h
    proj = gb.tensor("output/projection", h * p, W) if p else None
    sm_w = gb.tensor("output/softmax_w", v * out_dim, W)
    sm_b = gb.tensor("output/softmax_b", v, W)
    labels = gb.tensor("input/labels", tokens, I)
    gb.layer = "step"
    scalars = [gb.tensor("step/learning_rate", 1, W), gb.tensor("step/global_step", 1, W)]

    # ---------------- forward ----------------
    gb.phase = Phase.FORWARD
    gb.layer = "embedding"
    rows_bytes = tokens * e * gb.element_bytes
    (x_seq,) = gb.op("embedding/gather", OpKind.EMBEDDING, [emb, ids], [("embedding/out", tokens * e)],
                     nbytes=2 * rows_bytes + tokens * gb.element_bytes)

    saved = []  # per layer, per step: tensors the backward pass reads
    for l in range(L):
        gb.layer = f"lstm{l}"
        in_dim = e if l == 0 else h
        h_prev = gb.tensor(f"lstm{l}/h_init", b * h, I)
        c_prev = gb.tensor(f"lstm{l}/c_init", b * h, I)
        layer_saved, outs = [], []
        x_steps = unstack(gb, f"lstm{l}/in", x_seq, q, b * in_dim)
        for t in range(q):
            s = f"lstm{l}/t{t}/"
            (xh,) = gb.op(s + "concat", OpKind.DATA, [x_steps[t], h_prev], [(s + "xh", b * (in_dim + h))])
            z = gb.matmul(s + "matmul", xh, kernels[l], s + "z", b, 4 * h, in_dim + h)
            zb = gb.elementwise(s + "bias_add", [z, biases[l]], s + "zb", b * 4 * h)
            gi, gj, gf, go = gb.op(s + "split", OpKind.DATA, [zb], [(s + g, b * h) for g in "ijfo"])
            si = gb.elementwise(s + "sig_i", [gi], s + "si", b * h, flops_per_element=SIGMOID_FLOPS)
            tj = gb.elementwise(s + "tanh_j", [gj], s + "tj", b * h, flops_per_element=TANH_FLOPS)
            fb = gb.elementwise(s + "forget_bias", [gf], s + "fb", b * h)
            sf = gb.elementwise(s + "sig_f", [fb], s + "sf", b * h, flops_per_element=SIGMOID_FLOPS)
            so = gb.elementwise(s + "sig_o", [go], s + "so", b * h, flops_per_element=SIGMOID_FLOPS)
            cf = gb.elementwise(s + "c_mul_f", [c_prev, sf], s + "cf", b * h)
            ij = gb.elementwise(s + "i_mul_j", [si, tj], s + "ij", b * h)
            c = gb.elementwise(s + "c", [cf, ij], s + "c", b * h)
            tc = gb.elementwise(s + "tanh_c", [c], s + "tc", b * h, flops_per_element=TANH_FLOPS)
            hh = gb.elementwise(s + "h", [tc, so], s + "h", b * h)
            layer_saved.append(dict(xh=xh, si=si, tj=tj, sf=sf, so=so, c_prev=c_prev, tc=tc))
            outs.append(hh)
            h_prev, c_prev = hh, c
        saved.append(layer_saved)
        x_seq = stack(gb, f"lstm{l}/out", outs, b * h)

    gb.layer = "output"
    H = x_seq
    R = gb.matmul("output/project", H, proj, "output/r_all", tokens, p, h) if p else H
    logits = gb.matmul("output/logits_mm", R, sm_w, "output/logits0", tokens, v, out_dim)
    logits = gb.elementwise("output/bias_add", [logits, sm_b], "output/logits", tokens * v)
    # TF's SparseSoftmaxCrossEntropyWithLogits emits the loss and d(loss)/d(logits) together.
    loss_rows, backprop = gb.op(
        "output/xent", OpKind.SOFTMAX, [logits, labels],
        [("output/loss_rows", tokens), ("output/xent_backprop", tokens * v)],
        flops=SOFTMAX_FLOPS * tokens * v,
    )
    (loss,) = gb.op("output/loss", OpKind.REDUCTION, [loss_rows], [("output/loss", 1)], flops=tokens)

    # ---------------- backward ----------------
    gb.phase = Phase.BACKWARD
    (dloss,) = gb.op("output/d_loss", OpKind.ELEMENTWISE, [loss], [("output/d_loss_rows", tokens)], flops=tokens)
    dlogits = gb.elementwise("output/d_logits", [backprop, dloss], "output/d_logits", tokens * v)
    d_smb = gb.op("output/d_softmax_b", OpKind.REDUCTION, [dlogits], [("output/softmax_b.grad", v)],
                  flops=tokens * v, out_kind=G)[0]
    d_smw = gb.matmul("output/d_softmax_w", dlogits, R, "output/softmax_w.grad", v, out_dim, tokens, out_kind=G)
    dR = gb.matmul("output/d_r", dlogits, sm_w, "output/d_r_all", tokens, out_dim, v)
    grads = {sm_w: (d_smw, v * out_dim), sm_b: (d_smb, v)}
    if p:
        d_proj = gb.matmul("output/d_projection", H, dR, "output/projection.grad", h, p, tokens, out_kind=G)
        dH = gb.matmul("output/d_h", dR, proj, "output/d_h_all", tokens, h, p)
        grads[proj] = (d_proj, h * p)
    else:
        dH = dR
    d_seq = dH

    for l in reversed(range(L)):
        gb.layer = f"lstm{l}"
        in_dim = e if l == 0 else h
        dh_next = dc_next = None
        dk_acc = db_acc = None
        dx_steps: list[str] = [""] * q
        dh_from_above = unstack(gb, f"lstm{l}/grad/d_out", d_seq, q, b * h)
        for t in reversed(range(q)):
            s, sv = f"lstm{l}/t{t}/grad/", saved[l][t]
            dh = dh_from_above[t]
            if dh_next is not None:
                dh = gb.elementwise(s + "dh_sum", [dh, dh_next], s + "dh", b * h)
            # h = tanh(c) * sig(o)
            d_tc, d_so = binary_grad(gb, s + "h", dh, (sv["so"], sv["tc"]), b * h)
            dc = gb.elementwise(s + "d_tanh_c", [d_tc, sv["tc"]], s + "dc0", b * h, flops_per_element=3)
            if dc_next is not None:
                dc = gb.elementwise(s + "dc_sum", [dc, dc_next], s + "dc", b * h)
            # c = c_prev * sig(f) + sig(i) * tanh(j)
            d_cf, d_ij = binary_grad(gb, s + "c", dc, (None, None), b * h)
            dc_prev, d_sf = binary_grad(gb, s + "cf", d_cf, (sv["sf"], sv["c_prev"]), b * h)
            d_si, d_tj = binary_grad(gb, s + "ij", d_ij, (sv["tj"], sv["si"]), b * h)
            di = gb.elementwise(s + "d_i", [d_si, sv["si"]], s + "d_i", b * h, flops_per_element=3)
            dj = gb.elementwise(s + "d_j", [d_tj, sv["tj"]], s + "d_j", b * h, flops_per_element=3)
            d_fb = gb.elementwise(s + "d_fb", [d_sf, sv["sf"]], s + "d_fb", b * h, flops_per_element=3)
            (df,) = gb.op(s + "forget_bias/reduce", OpKind.REDUCTION, [d_fb], [(s + "d_f", b * h)], flops=b * h)
            do = gb.elementwise(s + "d_o", [d_so, sv["so"]], s + "d_o", b * h, flops_per_element=3)
            (dz,) = gb.op(s + "concat", OpKind.DATA, [di, dj, df, do], [(s + "dz", b * 4 * h)])
            final = G if t == 0 else A  # the last accumulation yields the parameter's gradient
            (db,) = gb.op(s + "d_bias", OpKind.REDUCTION, [dz], [(s + "d_bias", 4 * h)], flops=b * 4 * h,
                          out_kind=G if q == 1 else A)
            dxh = gb.matmul(s + "d_xh", dz, kernels[l], s + "d_xh", b, in_dim + h, 4 * h)
            dk = gb.matmul(s + "d_kernel", sv["xh"], dz, s + "d_kernel", in_dim + h, 4 * h, b,
                           out_kind=G if q == 1 else A)
            if dk_acc is None:
                dk_acc, db_acc = dk, db
            else:
                dk_acc = gb.elementwise(s + "acc_kernel", [dk_acc, dk], s + "acc_kernel", (in_dim + h) * 4 * h,
                                        out_kind=final, inplace=True)
                db_acc = gb.elementwise(s + "acc_bias", [db_acc, db], s + "acc_bias", 4 * h, out_kind=final,
                                        inplace=True)
            dx, dh_prev = gb.op(s + "split", OpKind.DATA, [dxh], [(s + "dx", b * in_dim), (s + "dh_prev", b * h)])
            dx_steps[t] = dx
            dh_next, dc_next = dh_prev, dc_prev
        grads[kernels[l]] = (dk_acc, (in_dim + h) * 4 * h)
        grads[biases[l]] = (db_acc, 4 * h)
        d_seq = stack(gb, f"lstm{l}/grad/d_in", dx_steps, b * in_dim)

    gb.layer = "embedding"
    (d_emb,) = gb.op("embedding/d_rows", OpKind.DATA, [d_seq], [("embedding/table.grad_rows", tokens * e)],
                     out_kind=G)

    # ---------------- update ----------------
    for weight, (grad, elements) in grads.items():
        gb.layer = gb._tensors[weight].layer
        add_update(gb, weight, grad, elements, opt)
    gb.layer = "embedding"
    add_update(gb, emb, d_emb, v * e, opt, rows=tokens * e)
    gb.layer = "step"
    gb.phase = Phase.UPDATE
    gb.op("step/increment", OpKind.ELEMENTWISE, [scalars[1]], [], flops=1, nbytes=2 * gb.element_bytes)

    return gb.build(dict(d, embed_dim=e, tokens=tokens, samples=b, element_bytes=gb.element_bytes))


build_wordlm.OPTIONS = OPTIONS


# Named configurations of the PPoPP 2019 study (dimensions only; nothing fitted).
PRESETS = {
    # Catamount's base graph (tf_language_models.py): its published totals are the tests' goldens.
    "catamount-base": dict(layers=2, hidden=2004, vocab=10004, seq_len=80, batch=64),
    # Table 3's projected word LM (~23.8B params, subbatch 128, sequence length 80).
    "table3": dict(layers=2, hidden=38100, vocab=10004, seq_len=80, batch=128),
    # §6 case study, LSTM-p: dimensions from Catamount's LSTM-p test block (facts file).
    "case-study": dict(layers=2, hidden=19968, projection=2048, vocab=800000, seq_len=20, batch=128),
}
