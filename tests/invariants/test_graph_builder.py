"""GraphBuilder mistakes are one-line ConfigErrors naming the op or tensor (issue 11, part 3)."""

from __future__ import annotations

import math

import pytest

from distsim.errors import ConfigError
from distsim.evaluate import evaluate_plan
from distsim.hardware import paper_hardware
from distsim.datasets import Dataset
from distsim.graph import Graph, GraphBuilder, Op, OpKind, Phase, Tensor, TensorKind, greedy_order
from distsim.plan import Plan


def started() -> GraphBuilder:
    b = GraphBuilder("g")
    b.layer = "fc"
    b.tensor("w", 16, TensorKind.WEIGHT)
    b.tensor("x", 8, TensorKind.INPUT)
    b.matmul("y", "x", "w", "y", 2, 4, 4)
    return b


def test_reading_an_undefined_tensor_names_the_op():
    b = started()
    with pytest.raises(ConfigError, match=r"op 'relu' reads tensor 'h', which is not defined"):
        b.elementwise("relu", ["h"], "a", 8)


def test_reading_a_tensor_nobody_wrote_names_the_op():
    b = started()
    b.tensor("h", 8)  # an activation defined but never written
    with pytest.raises(ConfigError, match=r"op 'relu' reads activation 'h' before any op writes it"):
        b.elementwise("relu", ["h"], "a", 8)


def test_a_tensor_written_twice_names_both_ops():
    b = started()
    b.tensor("acc", 8)
    b.op("first", OpKind.ELEMENTWISE, ["y"], ["acc"])
    with pytest.raises(ConfigError, match=r"op 'second' writes 'acc', which op 'first' already wrote"):
        b.op("second", OpKind.ELEMENTWISE, ["y"], ["acc"])
    with pytest.raises(ConfigError, match=r"op 'third': output 'y' already exists"):
        b.op("third", OpKind.ELEMENTWISE, ["x"], [("y", 8)])


def test_writing_a_weight_is_rejected_so_no_cycle_can_be_built():
    """The mistake behind the old bare ``AssertionError: graph has a cycle``: an op writing a weight read earlier."""
    b = started()
    b.phase = Phase.BACKWARD
    dw = b.matmul("dw", "x", "y", "dw", 4, 4, 2, out_kind=TensorKind.GRADIENT)
    with pytest.raises(ConfigError, match=r"op 'new_w' writes weight 'w'; weights, optimizer state and inputs"):
        b.op("new_w", OpKind.OPTIMIZER, ["w", dw], ["w"])


def test_an_update_with_outputs_is_rejected():
    b = started()
    b.phase = Phase.BACKWARD
    dw = b.matmul("dw", "x", "y", "dw", 4, 4, 2, out_kind=TensorKind.GRADIENT)
    b.phase = Phase.UPDATE
    with pytest.raises(ConfigError, match=r"op 'sgd' is an update but has outputs \['w_new'\]"):
        b.elementwise("sgd", ["w", dw], "w_new", 16)
    assert b.op("sgd", OpKind.OPTIMIZER, ["w", dw], [], flops=32) == ()
    assert len(b.build({"batch": 2}).ops) == 3


@pytest.mark.parametrize("call, message", [
    (lambda b: b.op("o", "conv2d", ["x"], [("o", 1)]), r"op 'o': kind must be one of OpKind.MATMUL, .*got 'conv2d'"),
    (lambda b: b.tensor("t", 4, "weights"), r"tensor 't': kind must be one of TensorKind.WEIGHT, .*got 'weights'"),
    (lambda b: b.op("o", OpKind.DATA, ["x"], [("o", 1)], out_kind=3), r"op 'o': out_kind must be one of"),
    (lambda b: b.tensor("t", 0), r"tensor 't': elements must be a positive integer, got 0"),
    (lambda b: b.tensor("t", 2.5), r"tensor 't': elements must be a positive integer, got 2.5"),
    (lambda b: b.elementwise("e", ["x"], "e", -3), r"op 'e': elements must be a positive integer, got -3"),
    (lambda b: b.op("o", OpKind.DATA, ["x"], [("o", 1)], flops=-1), r"op 'o': flops must be non-negative"),
    (lambda b: b.op("o", OpKind.DATA, ["x"], [("o", 1)], flops=math.nan), r"op 'o': flops must be finite"),
    (lambda b: b.op("o", OpKind.DATA, ["x"], [("o", 1)], nbytes=math.inf), r"op 'o': nbytes must be finite"),
    (lambda b: b.matmul("mm", "x", "w", "mm", 0, 4, 4), r"op 'mm': m must be a positive integer, got 0"),
    (lambda b: b.op("o", OpKind.DATA, "x", [("o", 1)]), r"op 'o': inputs and outputs must be lists"),
    (lambda b: b.op("o", OpKind.DATA, ["x"], [("o", 1, 2)]), r"op 'o': a new output is \(name, elements\)"),
    (lambda b: b.tensor("w", 4), r"tensor 'w' defined twice"),
    (lambda b: b.op("", OpKind.DATA, ["x"], []), r"op name must be a non-empty string"),
])
def test_bad_values_name_the_op_or_tensor(call, message):
    with pytest.raises(ConfigError, match=message):
        call(started())


def test_a_bad_phase_names_the_op():
    b = started()
    b.phase = "backward"
    with pytest.raises(ConfigError, match=r"op 'o': builder phase must be one of Phase.FORWARD"):
        b.op("o", OpKind.DATA, ["x"], [("o", 1)])


def test_enum_values_given_as_their_strings_are_accepted():
    b = started()
    b.phase = "bwd"
    b.op("o", "elementwise", ["y"], [("o", 8)], out_kind="gradient")
    g = b.build()
    assert g.ops[-1].kind is OpKind.ELEMENTWISE and g.ops[-1].phase is Phase.BACKWARD
    assert g.tensors["o"].kind is TensorKind.GRADIENT


def test_empty_graph_and_bad_dims():
    with pytest.raises(ConfigError, match="graph 'e' has no ops"):
        GraphBuilder("e").build()
    with pytest.raises(ConfigError, match="dims must be a mapping"):
        started().build(dims=[("batch", 2)])


def test_a_cycle_in_a_hand_made_graph_names_an_op():
    """Graph(...) built by hand (not through the builder) can still hold a cycle; greedy_order says where."""
    tensors = {"w": Tensor("w", 4, TensorKind.WEIGHT), "a": Tensor("a", 4)}
    ops = [Op("read_w", OpKind.ELEMENTWISE, 1, 8, ("w",), ("a",), "L", Phase.FORWARD),
           Op("write_w", OpKind.ELEMENTWISE, 1, 8, ("a",), ("w",), "L", Phase.FORWARD)]
    with pytest.raises(ConfigError, match=r"graph 'cyc' has a cycle through op 'read_w'"):
        greedy_order(Graph("cyc", ops, tensors))


def tiny_gpt(batch=2, seq=8, d=16, heads=2, vocab=32, layers=2) -> Graph:
    """A GPT-like step built with the builder alone, as a new user would (pre-LN blocks, tied-free LM head)."""
    b = GraphBuilder("tiny_gpt")
    tokens, dh = batch * seq, d // heads
    b.layer = "embedding"
    ids = b.tensor("ids", tokens, TensorKind.INPUT)
    emb = b.tensor("wte", vocab * d, TensorKind.WEIGHT)
    weights = {"embedding": [emb]}
    for i in range(layers):
        b.layer = f"block{i}"
        weights[b.layer] = [b.tensor(f"block{i}/{n}", size, TensorKind.WEIGHT)
                            for n, size in (("qkv", d * 3 * d), ("proj", d * d), ("fc", d * 4 * d), ("out", 4 * d * d))]
    b.layer = "head"
    weights["head"] = [b.tensor("lm_head", d * vocab, TensorKind.WEIGHT)]
    b.layer = "embedding"
    x = b.op("embed", OpKind.EMBEDDING, [emb, ids], [("x0", tokens * d)])[0]
    saved = []
    for i in range(layers):
        b.layer = f"block{i}"
        qkv_w, proj_w, fc_w, out_w = weights[b.layer]
        qkv = b.matmul(f"b{i}/qkv", x, qkv_w, f"b{i}/qkv", tokens, 3 * d, d)
        scores = b.matmul(f"b{i}/scores", qkv, qkv, f"b{i}/scores", seq, seq, dh, batch=batch * heads)
        probs = b.elementwise(f"b{i}/softmax", [scores], f"b{i}/probs", batch * heads * seq * seq,
                              kind=OpKind.SOFTMAX, flops_per_element=5)
        ctx = b.matmul(f"b{i}/ctx", probs, qkv, f"b{i}/ctx", seq, dh, seq, batch=batch * heads)
        attn = b.matmul(f"b{i}/proj", ctx, proj_w, f"b{i}/attn", tokens, d, d)
        h = b.elementwise(f"b{i}/res1", [x, attn], f"b{i}/h", tokens * d)
        up = b.matmul(f"b{i}/fc", h, fc_w, f"b{i}/up", tokens, 4 * d, d)
        act = b.elementwise(f"b{i}/gelu", [up], f"b{i}/act", tokens * 4 * d, flops_per_element=8)
        down = b.matmul(f"b{i}/out", act, out_w, f"b{i}/down", tokens, d, 4 * d)
        saved.append((x, ctx, h, act))
        x = b.elementwise(f"b{i}/res2", [h, down], f"b{i}/y", tokens * d)
    b.layer = "head"
    logits = b.matmul("logits", x, weights["head"][0], "logits", tokens, vocab, d)
    b.phase = Phase.BACKWARD
    dlogits = b.elementwise("loss_grad", [logits, ids], "dlogits", tokens * vocab, flops_per_element=5)
    grads = {"head": [b.matmul("dlm_head", x, dlogits, "dlm_head", d, vocab, tokens, out_kind=TensorKind.GRADIENT)]}
    dx = b.matmul("dx_head", dlogits, weights["head"][0], "dx_head", tokens, d, vocab)
    for i in reversed(range(layers)):
        b.layer = f"block{i}"
        x_in, ctx, h, act = saved[i]
        d_out = b.matmul(f"b{i}/d_out_w", act, dx, f"b{i}/d_out_w", 4 * d, d, tokens, out_kind=TensorKind.GRADIENT)
        d_act = b.matmul(f"b{i}/d_act", dx, weights[b.layer][3], f"b{i}/d_act", tokens, 4 * d, d)
        d_fc = b.matmul(f"b{i}/d_fc_w", h, d_act, f"b{i}/d_fc_w", d, 4 * d, tokens, out_kind=TensorKind.GRADIENT)
        d_h = b.matmul(f"b{i}/d_h", d_act, weights[b.layer][2], f"b{i}/d_h", tokens, d, 4 * d)
        d_proj = b.matmul(f"b{i}/d_proj_w", ctx, d_h, f"b{i}/d_proj_w", d, d, tokens, out_kind=TensorKind.GRADIENT)
        d_qkv = b.matmul(f"b{i}/d_qkv_w", x_in, d_h, f"b{i}/d_qkv_w", d, 3 * d, tokens, out_kind=TensorKind.GRADIENT)
        dx = b.matmul(f"b{i}/d_x", d_h, weights[b.layer][0], f"b{i}/d_x", tokens, d, 3 * d)
        grads[b.layer] = [d_qkv, d_proj, d_fc, d_out]
    b.layer = "embedding"
    grads["embedding"] = [b.op("d_wte", OpKind.EMBEDDING, [dx, ids], [("d_wte", tokens * d)],
                               out_kind=TensorKind.GRADIENT)[0]]
    b.phase = Phase.UPDATE
    for layer, ws in weights.items():
        b.layer = layer
        for w, g in zip(ws, grads[layer]):
            b.op(f"{w}/update", OpKind.OPTIMIZER, [w, g], [], flops=2 * b.elements(w))
    return b.build({"batch": batch, "seq_len": seq})


def test_a_gpt_like_graph_built_with_the_builder_evaluates():
    g = tiny_gpt()
    d, vocab, layers = 16, 32, 2
    assert g.params == vocab * d + layers * 12 * d * d + d * vocab
    ev = evaluate_plan(g, Plan(data_parallel=2), paper_hardware(), dataset=Dataset(name="toy", samples=1000))
    assert ev.step_s > 0 and ev.fits
    assert ev.steps_per_epoch == pytest.approx(1000 / (2 * 2))
