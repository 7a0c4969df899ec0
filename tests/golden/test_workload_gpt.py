"""The GPT workload against the closed forms of the Megatron-LM papers.

Sources: Narayanan et al., "Efficient Large-Scale Language Model Training on
GPU Clusters Using Megatron-LM", SC'21 (parameter count, section 5.1; FLOPs,
Eq. 3; Table 1's model shapes) and Korthikanti et al., "Reducing Activation
Recomputation in Large Transformer Models", 2022 (activations per layer, Eq. 1).
"""

import pytest
from hypothesis import given, settings, strategies as st

from distsim.errors import ConfigError
from distsim.graph import OpKind, Phase, TensorKind
from distsim.workload import build_workload, configure_workload
from distsim.workloads import gpt

SMALL = dict(layers=2, hidden=64, heads=4, seq_len=32, vocab=100, micro_batch=2)
SHAPES = [SMALL, dict(layers=3, hidden=96, heads=6, seq_len=16, vocab=211, micro_batch=3),
          dict(layers=1, hidden=32, heads=1, seq_len=8, vocab=50, micro_batch=1)]


def narayanan_params(l, h, V, s):
    """Section 5.1: 12 l h^2 (1 + 13/(12h) + (V + s)/(12 l h)), multiplied out."""
    return 12 * l * h * h + 13 * l * h + (V + s) * h


@pytest.mark.parametrize("dims", SHAPES)
def test_params_closed_form_plus_final_layernorm(dims):
    g = build_workload("gpt", **dims)
    l, h, V, s = dims["layers"], dims["hidden"], dims["vocab"], dims["seq_len"]
    assert g.params - narayanan_params(l, h, V, s) == 2 * h  # the final layernorm's gamma and beta


# Table 1's "Number of parameters (billion)" column, to its one decimal.
TABLE1_PARAMS_B = {"megatron-1.7b": 1.7, "megatron-3.6b": 3.6, "megatron-7.5b": 7.5, "megatron-18.4b": 18.4,
                   "megatron-39.1b": 39.1, "megatron-76.1b": 76.1, "megatron-145.6b": 145.6,
                   "megatron-310.1b": 310.1, "megatron-529.6b": 529.6, "megatron-1008b": 1008.0}


@pytest.mark.parametrize("preset", sorted(TABLE1_PARAMS_B))
def test_presets_match_table1_params(preset):
    d = gpt.PRESETS[preset]
    closed = narayanan_params(d["layers"], d["hidden"], d["vocab"], d["seq_len"])
    assert round(closed / 1e9, 1) == TABLE1_PARAMS_B[preset]
    if d["layers"] <= 24:  # building the big ones is covered by the benchmark, not the suite
        assert configure_workload("gpt", preset=preset).params == closed + 2 * d["hidden"]


def matmul_flops(g):
    return sum(op.flops for op in g.ops if op.kind is OpKind.MATMUL)


@pytest.mark.parametrize("dims", SHAPES)
def test_matmul_flops_eq3_without_recomputation(dims):
    """Eq. 3 counts 4 passes (recomputation): 96 B s l h^2 (1 + s/(6h) + V/(16 l h)).

    Without recomputation a step is 3 passes of the transformer layers and of the
    logits: 72 B s l h^2 (1 + s/(6h)) + 6 B s h V, i.e. 72 B s l h^2 (1 + s/(6h) +
    V/(12 l h)).  (The logits are not recomputed, so their term stays 6 B s h V:
    96 x V/(16 l h) = 72 x V/(12 l h).)  Our matmuls match it exactly.
    """
    g = build_workload("gpt", **dims)
    B, s, l, h, V = dims["micro_batch"], dims["seq_len"], dims["layers"], dims["hidden"], dims["vocab"]
    without = 72 * B * s * l * h * h + 12 * B * s * s * l * h + 6 * B * s * h * V
    assert matmul_flops(g) == without
    eq3 = 96 * B * s * l * h * h + 16 * B * s * s * l * h + 6 * B * s * h * V  # 96 B s l h^2 (1 + s/6h + V/16lh)
    one_forward_of_layers = 24 * B * s * l * h * h + 4 * B * s * s * l * h
    assert eq3 - matmul_flops(g) == one_forward_of_layers  # full recomputation = +1 forward


def test_non_matmul_flops_small_at_table1_shape():
    """The remainder (layernorm, softmax, dropout, GeLU, residual, loss, Adam) is
    under 1% of the step at Table 1's smallest row (1.7B, 24 layers)."""
    g = configure_workload("gpt", preset="megatron-1.7b")
    rest = g.flops - matmul_flops(g)
    assert 0 < rest / g.flops < 0.01


def saved_bytes(g, layer):
    """Bytes of forward tensors that the backward of ``layer`` reads."""
    names = {t for op in g.ops if op.layer == layer and op.phase is Phase.BACKWARD for t in op.inputs
             if g.producer(t) is not None and g.producer(t).phase is Phase.FORWARD}
    return sum(g.tensors[t].nbytes for t in names)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_activations_per_layer_korthikanti_eq1(precision):
    """Eq. 1 (2-byte activations, 1-byte dropout masks, no recomputation): s b h (34 + 5 a s / h)."""
    d = dict(SMALL, precision=precision)
    g = build_workload("gpt", **d)
    s, b, h, a = d["seq_len"], d["micro_batch"], d["hidden"], d["heads"]
    for i in range(d["layers"]):
        assert saved_bytes(g, f"layer{i}") == 34 * s * b * h + 5 * a * s * s * b


def test_flash_attention_keeps_no_s_by_s_tensor():
    d = dict(layers=2, hidden=32, heads=4, seq_len=64, vocab=50, micro_batch=1, precision="bf16")  # s^2 a > s * 4h
    unfused, flash = build_workload("gpt", **d), build_workload("gpt", **d, attention="flash")
    s, b, h, a, l = d["seq_len"], d["micro_batch"], d["hidden"], d["heads"], d["layers"]
    activations = lambda g: [t for t in g.tensors.values() if t.kind is TensorKind.ACTIVATION]  # noqa: E731
    assert max(t.elements for t in activations(unfused)) == b * a * s * s
    assert all(t.elements < b * a * s * s for t in activations(flash))
    # what a layer keeps: Eq. 1 without the 5 a s^2 b of the attention core, plus the fp32 row statistics
    assert saved_bytes(flash, "layer0") == 34 * s * b * h + 4 * b * a * s
    # its backward recomputes the scores and softmax (+ dropout): the forward attention core once more
    recompute = 2 * b * s * s * h + (gpt.SOFTMAX_FLOPS + gpt.DROPOUT_FLOPS) * b * a * s * s
    assert flash.flops - unfused.flops == l * recompute
    assert flash.footprint_min_bytes() < unfused.footprint_min_bytes()


def test_mixed_precision_adam_bytes_per_parameter():
    """fp32: 4 (weight) + 8 (moments); bf16: 2 (weight) + 4 (master) + 8 (moments); gradients as the weights."""
    fp32, bf16 = build_workload("gpt", **SMALL), build_workload("gpt", **SMALL, precision="bf16")
    P = fp32.params
    assert bf16.params == P
    weight = lambda g: sum(t.nbytes for t in g.tensors_of_kind(TensorKind.WEIGHT))  # noqa: E731
    state = lambda g: sum(t.nbytes for t in g.tensors_of_kind(TensorKind.OPTIMIZER_STATE))  # noqa: E731
    assert (weight(fp32), state(fp32)) == (4 * P, 8 * P)
    assert (weight(bf16), state(bf16)) == (2 * P, 12 * P)
    final_grads = [op.inputs[1] for op in bf16.ops if op.phase is Phase.UPDATE]
    assert sum(bf16.tensors[t].nbytes for t in final_grads) == 2 * P
    assert weight(bf16) + state(bf16) + 2 * P == 16 * P  # the usual 16 bytes per parameter
    assert bf16.flops - fp32.flops == P  # one cast to the bf16 copy per parameter


def test_layers_are_tagged_for_stage_splitting():
    g = build_workload("gpt", **SMALL)
    assert g.layers() == ["embedding", "layer0", "layer1", "output"]
    for op in g.ops:
        if op.phase is not Phase.UPDATE and "/" in op.name and op.name.split("/")[0].startswith("layer"):
            assert op.layer == op.name.split("/")[0]


@pytest.mark.parametrize("bad,field", [(dict(hidden=65), "hidden"), (dict(attention="fast"), "attention"),
                                      (dict(precision="fp64"), "precision"), (dict(heads=0), "heads"),
                                      (dict(colour=1), "colour")])
def test_bad_options(bad, field):
    with pytest.raises(ConfigError, match=field):
        build_workload("gpt", **(SMALL | bad))


def test_data_parallel_gradients():
    from distsim.evaluate import simulate_step
    from distsim.plan import Plan, gradient_of

    g = build_workload("gpt", **SMALL)
    grads = gradient_of(g)
    assert len(grads) == sum(op.phase is Phase.UPDATE for op in g.ops)
    assert g.tensors[grads["embedding/word.grad"]].layer == "embedding"  # the tied embedding's one gradient
    assert simulate_step(g, Plan(data_parallel=4)).step_time_s > simulate_step(g, Plan()).step_time_s


@settings(max_examples=25, deadline=None)
@given(l=st.integers(1, 3), a=st.integers(1, 4), dh=st.integers(1, 8), f=st.integers(1, 64), s=st.integers(1, 16),
       V=st.integers(1, 64), B=st.integers(1, 3), attention=st.sampled_from(gpt.ATTENTION),
       precision=st.sampled_from(["fp32", "bf16", "fp8"]))
def test_any_shape_params_and_matmul_flops(l, a, dh, f, s, V, B, attention, precision):
    """Any ffn_hidden f: per layer 4h^2 + 2hf + 9h + f parameters and, per pass,
    2T(4h^2 + 2hf) + 4Bs^2h matmul FLOPs; the logits 2ThV; three passes."""
    h, T = a * dh, B * s
    g = build_workload("gpt", layers=l, hidden=h, heads=a, ffn_hidden=f, seq_len=s, vocab=V, micro_batch=B,
                       attention=attention, precision=precision)
    assert g.params == l * (4 * h * h + 2 * h * f + 9 * h + f) + (V + s) * h + 2 * h
    layer_fwd = 2 * T * (4 * h * h + 2 * h * f) + 4 * B * s * s * h
    flash_recompute = 2 * B * s * s * h if attention == "flash" else 0
    matmul = sum(op.gemm.flops for op in g.ops if op.gemm is not None)
    attention_core = sum(op.flops for op in g.ops if op.kind is OpKind.MATMUL and op.gemm is None)
    non_gemm_core = (gpt.SOFTMAX_FLOPS + gpt.DROPOUT_FLOPS) * B * a * s * s * 2 \
        + (gpt.SOFTMAX_GRAD_FLOPS + gpt.DROPOUT_FLOPS) * B * a * s * s  # flash: fused element-wise work
    expected = l * (3 * layer_fwd + flash_recompute) + 6 * T * h * V
    if attention == "flash":
        assert matmul + attention_core - l * non_gemm_core == expected
    else:
        assert attention_core == 0 and matmul == expected
    assert g.footprint_min_bytes() <= g.footprint_total_bytes
