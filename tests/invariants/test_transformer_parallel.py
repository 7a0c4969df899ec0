"""Tensor, pipeline and data parallelism with ZeRO and recomputation: invariants against closed forms.

Sources: Megatron-LM tensor parallelism (Shoeybi et al. 2019, section 3: two all-reduces per layer in the
forward pass and two in the backward); pipeline bubble (p-1)/(m+p-1) of GPipe (Huang et al. 2019) and
1F1B (Narayanan et al. SC'21, section 2.2.1), and (p-1)/(v m) of the interleaved schedule (section 2.2.2);
ZeRO memory per rank (Rajbhandari et al. SC'20, section 5: 2 + 2 + 12 bytes a parameter, K/N_d sharded);
activations per layer with tensor and sequence parallelism (Korthikanti et al. 2022, Table 2).
"""

import numpy as np
import pytest

from distsim.errors import ConfigError
from distsim.graph import Phase
from distsim.lower import lower
from distsim.lower_pipeline import PipelineLowering, pipeline_order
from distsim.memory import activation_peak_bytes, memory_check
from distsim.parallel import simulate_plan
from distsim.plan import Plan
from distsim.topology import build_topology
from distsim.workload import build_workload

from assertions import raises_one_line

DIMS = dict(layers=4, hidden=64, heads=4, seq_len=32, vocab=128, micro_batch=2, precision="fp16")


@pytest.fixture(scope="module")
def gpt():
    return build_workload("gpt", **DIMS)


def lowered(graph, **plan):
    return lower(graph, Plan(**plan).resolve(graph))


def test_defaults_are_not_layer_granular():
    plan = Plan(data_parallel=4)
    assert not plan.layer_granular and plan.pipeline_schedule is None and plan.accelerators == 4
    assert Plan.from_dict(plan.to_dict()) == plan


def test_round_trip_and_describe():
    plan = Plan(data_parallel=2, tensor_parallel=2, sequence_parallel=True, pipeline_parallel=2, micro_batches=4,
                pipeline_schedule="interleaved", layers_per_virtual_stage=1, zero=1, recompute="selective")
    assert Plan.from_dict(plan.to_dict()) == plan
    assert plan.accelerators == 8
    assert plan.describe() == "dp2 x pp2 x tp2 sp mb4 interleaved/1 zero1 recompute-selective"
    assert Plan(micro_batches=2).pipeline_schedule == "1f1b"


@pytest.mark.parametrize("kwargs, message", [
    (dict(tensor_parallel=0), "tensor_parallel must be a positive integer, got 0"),
    (dict(sequence_parallel=True), "sequence_parallel needs tensor_parallel > 1"),
    (dict(zero=4), "zero must be one of 0, 1, 2, 3, got 4"),
    (dict(recompute="some"), "recompute must be one of none, selective, full, got 'some'"),
    (dict(pipeline_schedule="zigzag"), "pipeline_schedule must be one of gpipe, 1f1b, interleaved, got 'zigzag'"),
    (dict(pipeline_schedule="interleaved", pipeline_parallel=2, micro_batches=2),
     "pipeline_schedule 'interleaved' needs layers_per_virtual_stage"),
    (dict(layers_per_virtual_stage=2), "layers_per_virtual_stage is for pipeline_schedule 'interleaved'"),
    (dict(pipeline_schedule="interleaved", pipeline_parallel=2, micro_batches=3, layers_per_virtual_stage=1),
     "needs micro_batches a multiple of pipeline_parallel"),
    (dict(micro_batches=2, gradient_grouping="bucket"), "gradient_grouping='bucket' applies to plans simulated op"),
    (dict(zero=1, schedule="layerwise"), "schedule='layerwise' applies to plans simulated op by op"),
])
def test_bad_fields_are_one_line_errors(kwargs, message):
    raises_one_line(message, Plan, **kwargs)


def test_pipeline_must_divide_the_layers(gpt):
    raises_one_line("pipeline_parallel=3 does not divide the 4 layers", Plan(pipeline_parallel=3).resolve, gpt)


def test_tensor_parallel_allreduce_volume_per_layer(gpt):
    """Megatron: per layer and pass two all-reduces of the b x s x h activation (element bytes)."""
    act = DIMS["micro_batch"] * DIMS["seq_len"] * DIMS["hidden"] * 2
    low = lowered(gpt, tensor_parallel=4)
    for i in range(DIMS["layers"]):
        info = low.layers[f"layer{i}"]
        assert info.tp_fwd == (("allreduce", act),) * 2
        assert info.tp_bwd == (("allreduce", act),) * 2
    sp = lowered(gpt, tensor_parallel=4, sequence_parallel=True).layers["layer1"]
    assert sorted(sp.tp_fwd) == sorted((("reducescatter", act), ("allgather", act)) * 2)
    assert lowered(gpt, micro_batches=2).layers["layer1"].tp_fwd == ()


def test_tensor_parallel_splits_matmul_flops(gpt):
    """A rank runs 1/t of every matmul of a layer."""
    low = lowered(gpt, tensor_parallel=4)
    for i in low.layers["layer0"].fwd_ops:
        if gpt.ops[i].gemm is not None:
            assert low.op_share[i] == 0.25


def test_activations_per_layer_korthikanti(gpt):
    """Bytes kept per layer: s b h (10 + 24/t + 5 a s / (h t)); with sequence parallelism all of it / t."""
    s, b, h, a = DIMS["seq_len"], DIMS["micro_batch"], DIMS["hidden"], DIMS["heads"]
    t = 4
    plain = lowered(gpt, tensor_parallel=t).layers["layer2"].saved_bytes
    assert plain == pytest.approx(s * b * h * (10 + 24 / t + 5 * a * s / (h * t)))
    sp = lowered(gpt, tensor_parallel=t, sequence_parallel=True).layers["layer2"].saved_bytes
    assert sp == pytest.approx(s * b * h * (34 + 5 * a * s / h) / t)
    selective = lowered(gpt, tensor_parallel=t, sequence_parallel=True, recompute="selective").layers["layer2"]
    assert selective.saved_bytes == pytest.approx(s * b * h * 34 / t)
    full = lowered(gpt, tensor_parallel=t, sequence_parallel=True, recompute="full").layers["layer2"]
    assert full.saved_bytes == pytest.approx(2 * s * b * h / t)  # the layer's input only


def test_recompute_flops(gpt):
    """Full recomputation adds one forward pass of every transformer layer; selective the attention core."""
    none = lowered(gpt, micro_batches=2)
    full = lowered(gpt, micro_batches=2, recompute="full")
    fwd = sum(op.flops for op in gpt.ops if op.phase == Phase.FORWARD and op.layer.startswith("layer"))
    assert full.flops_per_micro_batch() - none.flops_per_micro_batch() == fwd
    s, b, h = DIMS["seq_len"], DIMS["micro_batch"], DIMS["hidden"]
    selective = lowered(gpt, micro_batches=2, recompute="selective")
    extra = selective.flops_per_micro_batch() - none.flops_per_micro_batch()
    assert extra > 4 * b * s * s * h * DIMS["layers"]  # scores and context products of every layer


def uniform_bubble(graph, p, m, schedule, per_virtual=None):
    """Step time with 1 s per layer forward and 2 s backward (ends and optimizer free, links instant)."""
    plan = Plan(pipeline_parallel=p, micro_batches=m, pipeline_schedule=schedule,
                layers_per_virtual_stage=per_virtual)
    low = lower(graph, plan.resolve(graph))
    durations = np.zeros(len(graph.ops))
    for layer, info in low.layers.items():
        if layer.startswith("layer"):
            durations[info.fwd_ops[0]] = 1.0
            durations[info.bwd_ops[0]] = 2.0
    topo = build_topology("ring", p, bandwidth_bytes_per_s=1e30, latency_s=0.0)
    step = simulate_plan(low, durations, topo).step_time_s
    ideal = m * 3.0 * DIMS["layers"] / p
    return 1 - ideal / step


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
@pytest.mark.parametrize("p, m", [(2, 1), (2, 5), (4, 8), (4, 3)])
def test_bubble_closed_form(gpt, schedule, p, m):
    assert uniform_bubble(gpt, p, m, schedule) == pytest.approx((p - 1) / (m + p - 1))


def test_interleaved_bubble_closed_form(gpt):
    """Interleaving v chunks per stage divides the bubble time by v: (p-1)/v over m + (p-1)/v."""
    p, m, v = 2, 4, 2
    bubble = uniform_bubble(gpt, p, m, "interleaved", per_virtual=1)
    assert bubble == pytest.approx(((p - 1) / v) / (m + (p - 1) / v))


def test_schedule_orders():
    assert pipeline_order("gpipe", 2, 1, 2, 0) == [("F", 0, 0), ("F", 0, 1), ("B", 0, 0), ("B", 0, 1)]
    assert pipeline_order("1f1b", 4, 1, 6, 1)[:5] == [("F", 1, 0), ("F", 1, 1), ("F", 1, 2), ("B", 1, 0),
                                                      ("F", 1, 3)]
    order = pipeline_order("interleaved", 2, 2, 4, 0)
    assert sorted(order) == sorted([(k, c, mb) for k in "FB" for c in (0, 2) for mb in range(4)])


def test_in_flight_micro_batches(gpt):
    """1F1B's first stage holds p micro-batches' activations, GPipe's every micro-batch."""
    p, m = 2, 6
    for schedule, held in (("1f1b", p), ("gpipe", m)):
        low = lowered(gpt, pipeline_parallel=p, micro_batches=m, pipeline_schedule=schedule)
        chunk = sum(low.layers[x].saved_bytes for x in low.chunks[0])
        assert activation_peak_bytes(low, 0) == pytest.approx(held * chunk)


def test_zero_memory_per_rank(gpt):
    """Mixed-precision Adam: 2 + 2 + 12 bytes a parameter; ZeRO 1/2/3 divide 12, then 2, then 2 by N_d."""
    dp = 4
    mem = {z: memory_check(lowered(gpt, data_parallel=dp, zero=z, micro_batches=2), 80 * 2 ** 30).iloc[0] for z in range(4)}
    params = gpt.params / 2 ** 30
    assert mem[0].weights_gib == pytest.approx(2 * params)
    assert mem[0].gradients_gib == pytest.approx(2 * params)
    assert mem[0].optimizer_state_gib == pytest.approx(12 * params)
    assert mem[1].optimizer_state_gib == pytest.approx(12 * params / dp)
    assert mem[1].gradients_gib == pytest.approx(2 * params)
    assert mem[2].gradients_gib == pytest.approx(2 * params / dp)
    assert mem[3].weights_gib == pytest.approx(2 * params / dp)


def test_memory_failure_names_numbers(gpt):
    table = memory_check(lowered(gpt, pipeline_parallel=2, micro_batches=2), 1e6)
    assert not table["fits"].any() and (table["excess_gib"] > 0).all()


def test_layer_granular_step_runs_end_to_end(gpt):
    from distsim.evaluate import evaluate_plan
    from distsim.hardware import get_hardware

    plan = Plan(data_parallel=2, tensor_parallel=2, pipeline_parallel=2, micro_batches=4, zero=1,
                recompute="full")
    ev = evaluate_plan(gpt, plan, get_hardware("dgx-a100"))
    assert isinstance(ev.lowering, PipelineLowering)
    assert ev.fits and ev.step_s > 0 and ev.batch == DIMS["micro_batch"] * 4 * 2
    names = set(ev.result.ops["name"])
    assert {"dp:reducescatter@0", "dp:allgather@1", "optimizer@0"} <= names
    assert any(n.startswith("send:F") for n in names) and any(n.startswith("send:B") for n in names)


def test_tensor_parallel_group_inside_a_server(gpt):
    """Default placement (tensor-parallel ranks fastest): a group of 8 is one DGX server, its all-reduces on
    NVSwitch; spreading the group over two servers (a placement) puts them on InfiniBand and is slower."""
    from distsim.evaluate import simulate_step
    from distsim.hardware import get_hardware

    plan = Plan(data_parallel=2, tensor_parallel=8, micro_batches=2)
    hw = get_hardware("dgx-a100")
    packed = simulate_step(gpt, plan, hw).step_time_s
    nodes = hw.topology_for(2, 8).endpoints
    spread = hw.with_changes(placement=tuple(n for pair in zip(nodes[:8], nodes[8:]) for n in pair))
    assert simulate_step(gpt, plan, spread).step_time_s > packed
