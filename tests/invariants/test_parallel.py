"""Plan simulation (distsim/parallel.py): invariants and closed-form checks on small word-LM graphs."""

import numpy as np
import pandas as pd
import pytest

from distsim.collectives.closed_form import ring_allgather_s, ring_allreduce_s
from distsim.costmodels import op_times_s
from distsim.device import get_device
from distsim.evaluate import evaluate_plan, simulate_step
from distsim.hardware import Hardware, paper_hardware
from distsim.lower import lower
from distsim.memory import memory_check
from distsim.parallel import sequence_streams, simulate_plan, wavefront_order
from distsim.plan import Plan, gradient_of, sparse_gradients
from distsim.topology import DEFAULT_BANDWIDTH_BYTES_PER_S
from distsim import units
from distsim.errors import ConfigError
from planner_graphs import FOUR_STAGES, small_lm

DEVICE = get_device("paper-v100")
#: 56 GB/s links of 1 us on a plan-shaped torus.
HW = Hardware(device=DEVICE)


def durations(g):
    return op_times_s(g, DEVICE)


def simulate(g, plan, hardware=HW):
    return simulate_step(g, plan, hardware, durations=durations(g))


def step_s(g, plan, hardware=HW):
    return simulate(g, plan, hardware).step_time_s


def test_single_worker_step_is_the_sum_of_op_times():
    """One accelerator, one stream: the ops run back to back."""
    g = small_lm()
    assert step_s(g, Plan()) == pytest.approx(float(durations(g).sum()), rel=1e-12)


def test_data_parallel_is_never_faster_and_grows_with_workers():
    """Per-hop latency is fixed, so every ring step adds alpha: 2(N-1) alpha per all-reduce grows with N."""
    g = small_lm()
    single = step_s(g, Plan())
    times = [step_s(g, Plan(data_parallel=n)) for n in (2, 4, 8, 16)]
    assert times[0] > single
    assert all(b > a for a, b in zip(times, times[1:]))


@pytest.mark.parametrize("sparse_mode", ["allgather", "allreduce"])
@pytest.mark.parametrize("n", [2, 3, 8])
def test_gradient_exchange_matches_the_closed_form_ring(n, sparse_mode):
    """No latency, no overlap: the step is the single-worker step plus one ring collective per gradient
    (Patarasuk & Yuan 2009), each uncontended on the N-ring of the torus:

    - dense gradient of S bytes: all-reduce ``2(N-1)/N S/B``;
    - sparse rows, ``S`` bytes per worker, all-gathered (``N S`` gathered): ``(N-1)/N N S/B = (N-1) S/B``;
      or all-reduced as the dense table ``T``: ``2(N-1)/N T/B``.
    """
    g = small_lm()
    B = DEFAULT_BANDWIDTH_BYTES_PER_S
    sparse = sparse_gradients(g)
    want = 0.0
    for grad, weight in gradient_of(g).items():
        if grad in sparse and sparse_mode == "allgather":
            want += ring_allgather_s(n, n * g.tensors[grad].nbytes, B, 0.0)
            assert ring_allgather_s(n, n * g.tensors[grad].nbytes, B, 0.0) == pytest.approx(
                (n - 1) * g.tensors[grad].nbytes / B)
        else:
            want += ring_allreduce_s(n, g.tensors[weight].nbytes, B, 0.0)
    plan = Plan(data_parallel=n, overlap=False, sparse_gradients=sparse_mode)
    got = step_s(g, plan, Hardware(device=DEVICE, link_latency_s=0.0)) - step_s(g, Plan())
    assert got == pytest.approx(want, rel=1e-9)


def test_overlap_is_never_slower():
    g = small_lm()
    for n in (2, 8):
        assert step_s(g, Plan(data_parallel=n, overlap=True)) <= step_s(g, Plan(data_parallel=n)) + 1e-15


@pytest.mark.parametrize("projection", [0, 16])
def test_wavefront_never_slower_than_layerwise(projection):
    """Layerwise waits for a whole phase before handing over; wavefront pipelines the time steps."""
    g = small_lm(projection=projection)
    wave = step_s(g, Plan(stages=FOUR_STAGES, schedule="wavefront"))
    layer = step_s(g, Plan(stages=FOUR_STAGES, schedule="layerwise"))
    assert wave <= layer
    if projection:  # shaped like the case study: the LSTM stages overlap their time steps
        assert wave < layer * 0.95


def stage_compute_s(g, rp):
    d = durations(g)
    split = lower(g, rp).split
    per = np.zeros(len(rp.stages))
    for i, op in enumerate(g.ops):
        if i in split:
            for s, f in rp.pieces:
                per[s] += d[i] * f
        else:
            per[rp.stage_of[op.layer]] += d[i]
    return per


@pytest.mark.parametrize("plan", [
    Plan(stages=FOUR_STAGES),
    Plan(stages=FOUR_STAGES, schedule="layerwise"),
    Plan(stages=FOUR_STAGES, shard_stages=(0, 1, 2), shard_fractions=(0.5, 0.25, 0.25)),
    Plan(stages=(("embedding", "lstm0"), ("lstm1", "output", "step")), data_parallel=4),
])
def test_layer_parallel_step_at_least_the_busiest_stage(plan):
    g = small_lm()
    rp = plan.resolve(g)
    per = stage_compute_s(g, rp)
    assert per.sum() == pytest.approx(durations(g).sum(), rel=1e-12)  # every op's time placed once
    result = simulate(g, plan)
    assert result.step_time_s >= per.max() * (1 - 1e-12)
    busy = result.ops[result.ops["kind"] == "compute"].groupby("device")["duration_s"].sum()
    np.testing.assert_allclose(sorted(busy), sorted(per[per > 0]), rtol=1e-12)


def test_sharding_keeps_the_table_bytes():
    """Three pieces of the table on stages 0-2 hold the whole table between them (and f_k of it each)."""
    g = small_lm(vocab=20000)
    table_gib = units.to_gib(g.tensors["embedding/table"].nbytes)
    system = paper_hardware()
    fractions = (0.5, 0.3, 0.2)
    sharded = evaluate_plan(g, Plan(stages=FOUR_STAGES, shard_stages=(0, 1, 2), shard_fractions=fractions), system)
    bare = memory_check(sharded.lowering.with_fractions((0.0, 0.0, 0.0)), system.capacity_bytes)
    pieces = (sharded.memory["weights_gib"] - bare["weights_gib"])[:3]
    np.testing.assert_allclose(pieces, [f * table_gib for f in fractions], rtol=1e-9)
    assert pieces.sum() == pytest.approx(table_gib, rel=1e-12)
    unsharded = evaluate_plan(g, Plan(stages=FOUR_STAGES), system)
    assert sharded.memory["weights_gib"].sum() == pytest.approx(unsharded.memory["weights_gib"].sum(), rel=1e-12)


def test_sharded_lookup_time_is_split_not_duplicated():
    g = small_lm()
    plan = Plan(stages=FOUR_STAGES, shard_stages=(0, 1, 2), shard_fractions=(0.5, 0.25, 0.25))
    ops = simulate(g, plan).ops
    assert ops[ops["kind"] == "compute"]["duration_s"].sum() == pytest.approx(durations(g).sum(), rel=1e-12)


@pytest.mark.parametrize("plan", [
    Plan(data_parallel=4, overlap=True),
    Plan(stages=FOUR_STAGES, data_parallel=2, shard_stages=(0, 1, 2), shard_fractions=(0.5, 0.25, 0.25)),
])
def test_same_input_same_result(plan):
    g = small_lm()
    a = simulate(g, plan)
    b = simulate(g, plan)
    assert a.step_time_s == b.step_time_s
    pd.testing.assert_frame_equal(a.ops, b.ops)
    pd.testing.assert_frame_equal(a.transfers, b.transfers)


def test_sequence_streams_between_the_lstm_layers():
    """TensorArray hand-over lstm0 -> lstm1 (forward) and lstm1 -> lstm0 (backward), one read per step."""
    g = small_lm()
    found = {g.ops[r].name: w for r, w in sequence_streams(g).items()}
    want = {f"lstm1/in/read{k}": f"lstm0/out/w{k}" for k in range(4)}
    want |= {f"lstm0/grad/d_out/read{k}": f"lstm1/grad/d_in/w{k}" for k in range(4)}
    assert found == want
    for r, w in sequence_streams(g).items():
        assert g.tensors[g.ops[r].outputs[0]].nbytes == g.tensors[w].nbytes


def test_wavefront_order_is_a_topological_permutation():
    g = small_lm()
    order = wavefront_order(g, sequence_streams(g))
    assert sorted(order) == list(range(len(g.ops)))
    pos = {i: k for k, i in enumerate(order)}
    for i in range(len(g.ops)):
        for p in g.predecessors(i):
            assert pos[p] < pos[i]


def test_durations_must_match_the_graph():
    g = small_lm()
    with pytest.raises(ConfigError, match=r"durations has 3 entries"):
        simulate_plan(lower(g, Plan().resolve(g)), [1.0, 2.0, 3.0])


def grouped_dense_bytes(g, grouping):
    """Bytes per collective of the dense gradients, grouped as the plan says (sparse rows travel alone)."""
    sparse = sparse_gradients(g)
    groups: dict = {}
    for grad, weight in gradient_of(g).items():
        if grad not in sparse:
            key = grad if grouping == "per_tensor" else g.tensors[weight].layer
            groups[key] = groups.get(key, 0) + g.tensors[grad].nbytes
    return list(groups.values())


@pytest.mark.parametrize("grouping", ["per_tensor", "per_layer"])
@pytest.mark.parametrize("n", [2, 4])
def test_gradient_grouping_matches_the_closed_form_ring(grouping, n):
    """Overlap off, 10 us per hop: the step grows by one closed-form ring collective per group,
    ``2(N-1)(a + S_g/(N B))`` per dense group ``g`` plus ``(N-1)(a + S/B)`` for the sparse rows
    (``S`` bytes per worker, all-gathered).  Per layer there are fewer groups, so less latency."""
    g = small_lm()
    B, a = DEFAULT_BANDWIDTH_BYTES_PER_S, 10e-6
    hardware = Hardware(device=DEVICE, link_latency_s=a)
    rows = g.tensors["embedding/table.grad_rows"].nbytes
    want = sum(ring_allreduce_s(n, s, B, a) for s in grouped_dense_bytes(g, grouping))
    want += ring_allgather_s(n, n * rows, B, a)
    plan = Plan(data_parallel=n, gradient_grouping=grouping)
    got = step_s(g, plan, hardware) - step_s(g, Plan(), hardware)
    assert got == pytest.approx(want, rel=1e-9)
    assert len(lower(g, plan.resolve(g)).collectives) == len(grouped_dense_bytes(g, grouping)) + 1


def test_buckets_fill_in_production_order():
    """DDP-style buckets: gradients join the open bucket in the order they are produced; a bucket
    goes when it reaches bucket_MiB, the rest at the end; sparse rows travel alone."""
    g = small_lm()
    plan = Plan(data_parallel=2, gradient_grouping="bucket", bucket_MiB=0.2)  # 209,715 bytes
    found = lower(g, plan.resolve(g)).collectives
    dense = [c for c in found if c.op == "allreduce"]
    # backward produces the output bias, output weight, then lstm1's and lstm0's kernel and bias
    assert [c.tensors for c in dense] == [("output/softmax_b.grad", "output/softmax_w.grad"),
                                          ("lstm1/t0/grad/acc_kernel", "lstm1/t0/grad/acc_bias",
                                           "lstm0/t0/grad/acc_kernel"),
                                          ("lstm0/t0/grad/acc_bias",)]
    assert [c.nbytes for c in dense] == [4000 + 256000, 131072 + 1024 + 131072, 1024]
    assert sum(c.op == "allgather" for c in found) == 1
    one = lower(g, Plan(data_parallel=2, gradient_grouping="bucket", bucket_MiB=100).resolve(g)).collectives
    assert [len(c.tensors) for c in one if c.op == "allreduce"] == [6]
    # the staging buffer of a bucket is the bucket
    assert lower(g, plan.resolve(g)).buffer_bytes() == [max(c.nbytes for c in dense)]


@pytest.mark.parametrize("bad,needle", [
    (dict(gradient_grouping="layer"), "gradient_grouping must be one of per_tensor, per_layer, bucket"),
    (dict(bucket_MiB=0), "bucket_MiB must be positive"),
    (dict(bucket_MiB=True), "bucket_MiB must be a number"),
])
def test_bad_grouping(bad, needle):
    with pytest.raises(ConfigError, match=needle):
        Plan(**bad)
