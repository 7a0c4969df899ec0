"""GPT: a decoder-only transformer language model, as Megatron-LM trains it.

One training step of one micro-batch (``micro_batch`` sequences of
``seq_len`` tokens, ``T = micro_batch * seq_len``), op by op, after the model
of Narayanan et al., SC'21 (section 3.2 and Eq. 3) and Megatron-LM's
``ParallelTransformerLayer`` (Shoeybi et al. 2019):

- ``embedding``: word (``[vocab, hidden]``) plus learned position
  (``[seq_len, hidden]``) embedding, then dropout;
- ``layer{i}``, i < ``layers``: pre-norm layernorm; QKV projection
  ``[hidden, 3 hidden]`` and its bias; attention scores ``Q K^T`` (one
  ``[s, d] x [d, s]`` product per sequence and head, ``d = hidden / heads``);
  fused scale + causal mask + softmax; attention dropout; context ``P V``;
  output projection and fused bias + dropout + residual add; layernorm;
  MLP ``[hidden, ffn_hidden]`` with fused bias + GeLU, ``[ffn_hidden, hidden]``
  with fused bias + dropout + residual add;
- ``output``: final layernorm, logits against the word embedding (tied, as
  Megatron's GPT shares it), fused softmax cross-entropy, mean loss.

``attention="flash"`` replaces scores, softmax, dropout and context with one
fused op (FlashAttention, Dao et al. 2022) that keeps no ``s x s`` tensor: it
saves the per-row log-sum-exp (fp32) and its backward recomputes the scores.

Backward: a linear layer's is two matrix multiplies (input and weight
gradient) plus a bias reduction; element-wise ops have their gradient op; the
residual stream adds its two branches' gradients.  Dropout masks are 1 byte an
element.  What the backward reads is what the forward keeps alive, so the
activation footprint per layer is Korthikanti et al. 2022's Eq. 1,
``s b h (34 + 5 a s / h)`` bytes at 2-byte precision (tested).  The
optimizer (Adam by default) follows :mod:`distsim.precision`.

FLOPs per element of the non-matmul ops are the named constants below
(algorithmic estimates, not measurements); matmuls count ``2mnk``, the full
``s x s`` scores as Megatron computes them (the causal mask is applied after).
Non-matmul FLOPs are under 1% of a step for the Table 1 shapes.

Parameters: ``12 l h^2 (1 + 13/(12h) + (V + s)/(12 l h)) + 2h`` with
``ffn_hidden = 4h`` (Narayanan et al., section 5.1, plus the final
layernorm's ``2h``).
"""

from __future__ import annotations

from distsim.errors import ConfigError
from distsim.graph import Gemm, OpKind, TensorKind, check_dims
from distsim.workload import WORKLOADS

from ._blocks import StepBuilder, check_choice

OPTIONS = {
    "layers": (int, 12),
    "hidden": (int, 768),
    "heads": (int, 12),
    "ffn_hidden": (int, 0),  # 0: 4 * hidden
    "seq_len": (int, 1024),
    "vocab": (int, 51200),
    "micro_batch": (int, 8),
    "precision": (str, "fp32"),  # distsim.precision: fp32, tf32, bf16, fp16, fp8
    "attention": (str, "unfused"),  # unfused (Megatron 2021) or flash
    "optimizer": (str, "adam"),
}
ATTENTION = ("unfused", "flash")

# FLOPs per element of the non-matmul ops (algorithmic counts).
LAYERNORM_FLOPS = 7  # mean, centre, square and sum, scale by 1/std, gamma, beta
LAYERNORM_GRAD_FLOPS = 14  # input gradient (two row reductions and the combination)
LAYERNORM_PARAM_GRAD_FLOPS = 3  # dgamma (multiply, sum) and dbeta (sum)
SOFTMAX_FLOPS = 7  # scale, mask, max, subtract, exp, sum, divide
SOFTMAX_GRAD_FLOPS = 5  # dP*P, row sum, subtract, multiply, scale
DROPOUT_FLOPS = 2  # compare a random number, scale the kept elements
BIAS_GELU_FLOPS = 9  # bias add + tanh-approximated GeLU
BIAS_GELU_GRAD_FLOPS = 12
BIAS_DROPOUT_ADD_FLOPS = 4  # bias, dropout (2), residual add
XENT_FLOPS = 5  # max, subtract, exp, sum, log (per logit)
XENT_GRAD_FLOPS = 2  # softmax minus one-hot, times the loss gradient
MASK_BYTES = 1  # a dropout mask element (torch.bool)
INDEX_BYTES = 4  # a token id or label (int32)
LSE_BYTES = 4  # flash attention's per-row log-sum-exp (fp32)


def _bmm(sb: StepBuilder, name: str, inputs: list[str], m: int, n: int, k: int, batch: int, nbytes: int) -> str:
    """Batched matmul reading parts of its inputs (``nbytes`` given): ``batch`` products ``[m,k] x [k,n]``."""
    gemm = Gemm(m, n, k, batch, sb.g.element_bytes)
    return sb.g.op(name, OpKind.MATMUL, inputs, [(name, m * n * batch)], flops=gemm.flops, nbytes=nbytes,
                   gemm=gemm)[0]


def _masked(sb: StepBuilder, name: str, inputs: list[str], elements: int, flops_per_element: int) -> tuple[str, str]:
    """An op writing ``name`` and its 1-byte dropout mask ``name/mask``."""
    g = sb.g
    mask = g.tensor(f"{name}/mask", elements, element_bytes=MASK_BYTES)
    return g.op(name, OpKind.ELEMENTWISE, inputs, [(name, elements), mask], flops=flops_per_element * elements)


def _layernorm(sb: StepBuilder, name: str, x: str, gamma: str, beta: str, elements: int) -> str:
    return sb.g.op(name, OpKind.ELEMENTWISE, [x, gamma, beta], [(name, elements)],
                   flops=LAYERNORM_FLOPS * elements)[0]


def _layernorm_bwd(sb: StepBuilder, name: str, dy: str, x: str, gamma: str, beta: str, elements: int) -> str:
    g, width = sb.g, sb.params[gamma]
    dx = g.op(f"{name}/grad", OpKind.ELEMENTWISE, [dy, x, gamma], [(f"{name}/grad", elements)],
              flops=LAYERNORM_GRAD_FLOPS * elements)[0]
    dg, db = g.op(f"{name}/grad_params", OpKind.REDUCTION, [dy, x],
                  [(f"{gamma}.grad", width), (f"{beta}.grad", width)],
                  flops=LAYERNORM_PARAM_GRAD_FLOPS * elements, out_kind=TensorKind.GRADIENT)
    sb.grad(gamma, dg, accumulate=False)
    sb.grad(beta, db, accumulate=False)
    return dx


class _Shape:
    """The dimensions one builder call works with."""

    def __init__(self, d: dict):
        self.l, self.h, self.a, self.f = d["layers"], d["hidden"], d["heads"], d["ffn_hidden"]
        self.s, self.v, self.b = d["seq_len"], d["vocab"], d["micro_batch"]
        self.t = self.b * self.s  # tokens
        self.d = self.h // self.a  # head size
        self.probs = self.b * self.a * self.s * self.s  # elements of one s x s tensor over heads and batch
        self.flash = d["attention"] == "flash"


def _layer_params(sb: StepBuilder, p: str, z: _Shape) -> dict[str, str]:
    h, f = z.h, z.f
    sizes = dict(ln1_g=h, ln1_b=h, qkv_w=h * 3 * h, qkv_b=3 * h, proj_w=h * h, proj_b=h,
                 ln2_g=h, ln2_b=h, fc1_w=h * f, fc1_b=f, fc2_w=f * h, fc2_b=h)
    return {k: sb.param(f"{p}/{k}", n) for k, n in sizes.items()}


def _attention_fwd(sb: StepBuilder, p: str, qkv: str, z: _Shape) -> tuple[str, dict]:
    g, eb = sb.g, sb.g.element_bytes
    th, bas = z.t * z.h, z.probs
    if z.flash:
        lse = g.tensor(f"{p}/attn/lse", z.b * z.a * z.s, element_bytes=LSE_BYTES)
        flops = 4 * z.b * z.s * z.s * z.h + (SOFTMAX_FLOPS + DROPOUT_FLOPS) * bas
        ctx = g.op(f"{p}/attn/flash", OpKind.MATMUL, [qkv], [(f"{p}/attn/context", th), lse], flops=flops)[0]
        return ctx, dict(lse=lse)
    # scores: Q K^T per sequence and head, reading Q and K (2/3 of qkv)
    scores = _bmm(sb, f"{p}/attn/scores", [qkv, qkv], z.s, z.s, z.d, z.b * z.a, eb * (2 * th + bas))
    probs = g.op(f"{p}/attn/softmax", OpKind.SOFTMAX, [scores], [(f"{p}/attn/probs", bas)],
                 flops=SOFTMAX_FLOPS * bas)[0]
    dropped, mask = _masked(sb, f"{p}/attn/dropout", [probs], bas, DROPOUT_FLOPS)
    ctx = _bmm(sb, f"{p}/attn/context", [dropped, qkv], z.s, z.d, z.s, z.b * z.a, eb * (bas + 2 * th))
    return ctx, dict(probs=probs, dropped=dropped, mask=mask)


def _attention_bwd(sb: StepBuilder, p: str, d_ctx: str, qkv: str, ctx: str, saved: dict, z: _Shape) -> str:
    g, eb = sb.g, sb.g.element_bytes
    th, bas = z.t * z.h, z.probs
    if z.flash:
        # recompute scores and softmax, then dV, dP, dQ, dK: five s x s x d products
        flops = 10 * z.b * z.s * z.s * z.h + (SOFTMAX_FLOPS + SOFTMAX_GRAD_FLOPS + 2 * DROPOUT_FLOPS) * bas
        return g.op(f"{p}/attn/flash/grad", OpKind.MATMUL, [d_ctx, qkv, ctx, saved["lse"]],
                    [(f"{p}/attn/d_qkv", 3 * th)], flops=flops)[0]
    d_dropped = _bmm(sb, f"{p}/attn/context/grad_probs", [d_ctx, qkv], z.s, z.s, z.d, z.b * z.a,
                     eb * (2 * th + bas))
    d_v = _bmm(sb, f"{p}/attn/context/grad_v", [saved["dropped"], d_ctx], z.s, z.d, z.s, z.b * z.a,
               eb * (bas + 2 * th))
    d_probs = g.op(f"{p}/attn/dropout/grad", OpKind.ELEMENTWISE, [d_dropped, saved["mask"]],
                   [(f"{p}/attn/dropout/grad", bas)], flops=DROPOUT_FLOPS * bas)[0]
    d_scores = g.op(f"{p}/attn/softmax/grad", OpKind.SOFTMAX, [d_probs, saved["probs"]],
                    [(f"{p}/attn/softmax/grad", bas)], flops=SOFTMAX_GRAD_FLOPS * bas)[0]
    d_q = _bmm(sb, f"{p}/attn/scores/grad_q", [d_scores, qkv], z.s, z.d, z.s, z.b * z.a, eb * (bas + 2 * th))
    d_k = _bmm(sb, f"{p}/attn/scores/grad_k", [d_scores, qkv], z.s, z.d, z.s, z.b * z.a, eb * (bas + 2 * th))
    return sb.data(f"{p}/attn/d_qkv", [d_q, d_k, d_v], [(f"{p}/attn/d_qkv", 3 * th)])[0]


def _layer_fwd(sb: StepBuilder, p: str, x: str, w: dict, z: _Shape) -> tuple[str, dict]:
    g, t, h, f = sb.g, z.t, z.h, z.f
    sb.fwd(p)
    ln1 = _layernorm(sb, f"{p}/ln1", x, w["ln1_g"], w["ln1_b"], t * h)
    qkv0 = sb.matmul(f"{p}/qkv", ln1, w["qkv_w"], t, 3 * h, h)
    qkv = sb.ew(f"{p}/qkv_bias", [qkv0, w["qkv_b"]], t * 3 * h)
    ctx, attn = _attention_fwd(sb, p, qkv, z)
    proj = sb.matmul(f"{p}/proj", ctx, w["proj_w"], t, h, h)
    x1, mask1 = _masked(sb, f"{p}/residual1", [proj, w["proj_b"], x], t * h, BIAS_DROPOUT_ADD_FLOPS)
    ln2 = _layernorm(sb, f"{p}/ln2", x1, w["ln2_g"], w["ln2_b"], t * h)
    fc1 = sb.matmul(f"{p}/fc1", ln2, w["fc1_w"], t, f, h)
    act = g.op(f"{p}/bias_gelu", OpKind.ELEMENTWISE, [fc1, w["fc1_b"]], [(f"{p}/bias_gelu", t * f)],
               flops=BIAS_GELU_FLOPS * t * f)[0]
    fc2 = sb.matmul(f"{p}/fc2", act, w["fc2_w"], t, h, f)
    out, mask2 = _masked(sb, f"{p}/residual2", [fc2, w["fc2_b"], x1], t * h, BIAS_DROPOUT_ADD_FLOPS)
    return out, dict(x=x, ln1=ln1, qkv=qkv, ctx=ctx, attn=attn, mask1=mask1, x1=x1, ln2=ln2, fc1=fc1, act=act,
                     mask2=mask2)


def _layer_bwd(sb: StepBuilder, p: str, d_out: str, w: dict, s: dict, z: _Shape) -> str:
    g, t, h, f = sb.g, z.t, z.h, z.f
    sb.bwd(p)
    d_fc2 = sb.ew(f"{p}/residual2/grad", [d_out, s["mask2"]], t * h, DROPOUT_FLOPS)
    sb.bias_bwd(f"{p}/fc2", d_fc2, w["fc2_b"])
    d_act = sb.dense_bwd(f"{p}/fc2", d_fc2, s["act"], w["fc2_w"], t, h, f)
    d_fc1 = g.op(f"{p}/bias_gelu/grad", OpKind.ELEMENTWISE, [d_act, s["fc1"], w["fc1_b"]],
                 [(f"{p}/bias_gelu/grad", t * f)], flops=BIAS_GELU_GRAD_FLOPS * t * f)[0]
    sb.bias_bwd(f"{p}/fc1", d_fc1, w["fc1_b"])
    d_ln2 = sb.dense_bwd(f"{p}/fc1", d_fc1, s["ln2"], w["fc1_w"], t, f, h)
    d_x1_norm = _layernorm_bwd(sb, f"{p}/ln2", d_ln2, s["x1"], w["ln2_g"], w["ln2_b"], t * h)
    d_x1 = sb.ew(f"{p}/residual2/grad_sum", [d_out, d_x1_norm], t * h)
    d_proj = sb.ew(f"{p}/residual1/grad", [d_x1, s["mask1"]], t * h, DROPOUT_FLOPS)
    sb.bias_bwd(f"{p}/proj", d_proj, w["proj_b"])
    d_ctx = sb.dense_bwd(f"{p}/proj", d_proj, s["ctx"], w["proj_w"], t, h, h)
    d_qkv = _attention_bwd(sb, p, d_ctx, s["qkv"], s["ctx"], s["attn"], z)
    sb.bias_bwd(f"{p}/qkv", d_qkv, w["qkv_b"])
    d_ln1 = sb.dense_bwd(f"{p}/qkv", d_qkv, s["ln1"], w["qkv_w"], t, 3 * h, h)
    d_x_norm = _layernorm_bwd(sb, f"{p}/ln1", d_ln1, s["x"], w["ln1_g"], w["ln1_b"], t * h)
    return sb.ew(f"{p}/residual1/grad_sum", [d_x1, d_x_norm], t * h)


@WORKLOADS.register("gpt")
def build_gpt(**options):
    """Build one training step (one micro-batch) of a GPT model.

    Examples
    --------
    >>> g = build_gpt(layers=2, hidden=64, heads=4, seq_len=32, vocab=100, micro_batch=2)
    >>> g.params == 12 * 2 * 64**2 + 13 * 2 * 64 + (100 + 32) * 64 + 2 * 64
    True
    """
    d = check_dims(options, OPTIONS)
    check_choice("attention", d["attention"], ATTENTION)
    check_choice("optimizer", d["optimizer"], ("sgd", "momentum", "adam"))
    if d["hidden"] % d["heads"]:
        raise ConfigError(f"hidden must be a multiple of heads ({d['heads']}), got {d['hidden']}")
    d["ffn_hidden"] = d["ffn_hidden"] or 4 * d["hidden"]
    z = _Shape(d)
    sb = StepBuilder("gpt", d["optimizer"], d["precision"])
    g, t, h = sb.g, z.t, z.h

    # ---------------- parameters and inputs ----------------
    sb.fwd("embedding")
    word = sb.param("embedding/word", z.v * h)
    pos = sb.param("embedding/position", z.s * h)
    ids = g.tensor("input/token_ids", t, TensorKind.INPUT, element_bytes=INDEX_BYTES)
    weights = []
    for i in range(z.l):
        sb.fwd(f"layer{i}")
        weights.append(_layer_params(sb, f"layer{i}", z))
    sb.fwd("output")
    lnf_g, lnf_b = sb.param("output/ln_g", h), sb.param("output/ln_b", h)
    labels = g.tensor("input/labels", t, TensorKind.INPUT, element_bytes=INDEX_BYTES)

    # ---------------- forward ----------------
    sb.fwd("embedding")
    eb = g.element_bytes
    emb = g.op("embedding/lookup", OpKind.EMBEDDING, [word, pos, ids], [("embedding/lookup", t * h)], flops=t * h,
               nbytes=eb * (2 * t * h + z.s * h) + INDEX_BYTES * t)[0]
    x, mask0 = _masked(sb, "embedding/dropout", [emb], t * h, DROPOUT_FLOPS)
    saved = []
    for i in range(z.l):
        x, s = _layer_fwd(sb, f"layer{i}", x, weights[i], z)
        saved.append(s)
    sb.fwd("output")
    lnf = _layernorm(sb, "output/ln", x, lnf_g, lnf_b, t * h)
    logits = sb.matmul("output/logits", lnf, word, t, z.v, h)
    loss_rows, probs = g.op("output/xent", OpKind.SOFTMAX, [logits, labels],
                            [("output/loss_rows", t), ("output/probs", t * z.v)], flops=XENT_FLOPS * t * z.v)
    loss = sb.reduce("output/loss", loss_rows, 1)

    # ---------------- backward ----------------
    sb.bwd("output")
    d_logits = sb.ew("output/xent/grad", [probs, labels, loss], t * z.v, XENT_GRAD_FLOPS)
    d_word_logits = sb.matmul("output/logits/dw", d_logits, lnf, z.v, h, t, out_kind=TensorKind.GRADIENT)
    d_lnf = sb.matmul("output/logits/dx", d_logits, word, t, h, z.v)
    d_x = _layernorm_bwd(sb, "output/ln", d_lnf, x, lnf_g, lnf_b, t * h)
    for i in reversed(range(z.l)):
        d_x = _layer_bwd(sb, f"layer{i}", d_x, weights[i], saved[i], z)
    sb.bwd("embedding")
    d_emb = sb.ew("embedding/dropout/grad", [d_x, mask0], t * h, DROPOUT_FLOPS)
    d_pos = g.op("embedding/position/grad", OpKind.REDUCTION, [d_emb], [("embedding/position.grad", z.s * h)],
                 flops=t * h, out_kind=TensorKind.GRADIENT)[0]
    sb.grad(pos, d_pos, accumulate=False)
    # the tied word embedding: the lookup's rows are added into the logits' weight gradient in place
    d_word = g.op("embedding/word/grad", OpKind.EMBEDDING, [d_word_logits, d_emb, ids],
                  [("embedding/word.grad", z.v * h)], flops=t * h, nbytes=eb * 3 * t * h + INDEX_BYTES * t,
                  out_kind=TensorKind.GRADIENT, inplace=True)[0]
    sb.grad(word, d_word, accumulate=False)

    return sb.finish(dict(d, tokens=t, samples=z.b))


build_gpt.OPTIONS = OPTIONS


def _megatron(heads: int, hidden: int, layers: int, micro_batch: int) -> dict:
    return dict(layers=layers, hidden=hidden, heads=heads, seq_len=2048, vocab=51200, micro_batch=micro_batch,
                precision="fp16")


# Model shapes of Narayanan et al., SC'21, Table 1 (seq 2048, vocab 51,200, fp16), keyed by the
# table's parameter count in billions; micro-batch as in the table's row.
PRESETS = {
    "megatron-1.7b": _megatron(24, 2304, 24, 16),
    "megatron-3.6b": _megatron(32, 3072, 30, 16),
    "megatron-7.5b": _megatron(32, 4096, 36, 16),
    "megatron-18.4b": _megatron(48, 6144, 40, 8),
    "megatron-39.1b": _megatron(64, 8192, 48, 4),
    "megatron-76.1b": _megatron(80, 10240, 60, 2),
    "megatron-145.6b": _megatron(96, 12288, 80, 2),
    "megatron-310.1b": _megatron(128, 16384, 96, 1),
    "megatron-529.6b": _megatron(128, 20480, 105, 1),
    "megatron-1008b": _megatron(160, 25600, 128, 1),
}
