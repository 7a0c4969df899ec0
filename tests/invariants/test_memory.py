"""Per-accelerator memory check of a plan (distsim/memory.py), on small word-LM graphs."""

import numpy as np
import pytest

from distsim import units
from distsim.evaluate import evaluate_plan
from distsim.hardware import paper_hardware
from distsim.lower import lower
from distsim.memory import CATEGORIES, memory_check, memory_failures
from distsim.plan import Plan, gradient_of, sparse_gradients
from distsim.transforms import fuse_gradient_accumulation
from planner_graphs import FOUR_STAGES, small_lm

CAPACITY = 32 * units.GiB  # Table 4: 32 GB per accelerator


def check(g, plan, capacity=CAPACITY):
    return memory_check(lower(g, plan.resolve(g)), capacity)


@pytest.mark.parametrize("projection", [0, 16])
def test_one_stage_one_worker_is_the_graph_footprint(projection):
    """One accelerator holds the whole step: the graph's minimal footprint, nothing more."""
    g = small_lm(projection=projection)
    table = check(g, Plan())
    assert len(table) == 1
    assert table["total_gib"][0] == units.to_gib(g.footprint_min_bytes())
    assert table["comm_buffers_gib"][0] == 0
    assert table[[f"{c}_gib" for c in CATEGORIES]].sum(axis=1)[0] == pytest.approx(table["total_gib"][0], rel=1e-12)


@pytest.mark.parametrize("n", [2, 4, 16])
def test_data_parallel_adds_the_largest_dense_gradient(n):
    """Fusion-buffer accounting (the paper's 113.8 -> 125.7 GB): the collective copies the whole dense
    gradient, so the largest one is added; a worker's sparse rows stream through two row blocks."""
    g = small_lm()
    sparse = sparse_gradients(g)
    largest_dense = max(g.tensors[t].nbytes for t in gradient_of(g) if t not in sparse)
    rows = max(g.tensors[t].nbytes for t in sparse)
    assert largest_dense > 2 * rows  # so the dense gradient is what counts here
    one, many = check(g, Plan()), check(g, Plan(data_parallel=n))
    assert units.to_gib(largest_dense) == pytest.approx(many["total_gib"][0] - one["total_gib"][0], rel=1e-12)
    assert many["comm_buffers_gib"][0] == units.to_gib(largest_dense)


@pytest.mark.parametrize("n", [2, 4, 32])
def test_chunked_buffers_hold_two_ring_chunks(n):
    """comm_buffer="chunked": only the two chunks in flight, 2 S / N of a dense gradient; the sparse
    rows' all-gather still needs two row blocks (2 x rows)."""
    g = small_lm()
    sparse = sparse_gradients(g)
    largest_dense = max(g.tensors[t].nbytes for t in gradient_of(g) if t not in sparse)
    rows = max(g.tensors[t].nbytes for t in sparse)
    want = max(2 * largest_dense / n, 2 * rows)
    assert lower(g, Plan(data_parallel=n, comm_buffer="chunked").resolve(g)).buffer_bytes() == [want]
    one, many = check(g, Plan()), check(g, Plan(data_parallel=n, comm_buffer="chunked"))
    assert many["total_gib"][0] - one["total_gib"][0] == pytest.approx(units.to_gib(want), rel=1e-12)


def test_buffers_sit_on_the_stage_of_each_gradient():
    g = small_lm()
    buffers = lower(g, Plan(data_parallel=2, stages=FOUR_STAGES).resolve(g)).buffer_bytes()
    t = g.tensors
    assert buffers == [2 * t["embedding/table.grad_rows"].nbytes, t["lstm0/t0/grad/acc_kernel"].nbytes,
                       t["lstm1/t0/grad/acc_kernel"].nbytes, t["output/softmax_w.grad"].nbytes]
    assert lower(g, Plan(stages=FOUR_STAGES).resolve(g)).buffer_bytes() == [0.0] * 4


def test_fused_accumulation_lowers_the_lstm_stages():
    """The per-step dW_t buffers disappear (the GEMM accumulates in place)."""
    g = small_lm()
    plain = check(g, Plan(stages=FOUR_STAGES))
    fused_graph = fuse_gradient_accumulation(g)
    fused = memory_check(lower(fused_graph, Plan(stages=FOUR_STAGES).resolve(fused_graph)), CAPACITY)
    for s in (1, 2):  # lstm0, lstm1
        assert fused["total_gib"][s] < plain["total_gib"][s]
    for s in (0, 3):
        assert fused["total_gib"][s] <= plain["total_gib"][s]
    via_plan = evaluate_plan(g, Plan(stages=FOUR_STAGES, fuse_accumulation=True), paper_hardware(), simulate=False)
    np.testing.assert_array_equal(via_plan.memory["total_gib"], fused["total_gib"])


def test_a_plan_that_does_not_fit():
    g = small_lm()
    capacity = 0.9 * g.footprint_min_bytes()
    table = check(g, Plan(), capacity)
    r = table.iloc[0]
    assert not r["fits"]
    assert r["excess_gib"] == pytest.approx(r["total_gib"] - units.to_gib(capacity), rel=1e-12)
    assert r["capacity_gib"] == units.to_gib(capacity)
    failures = memory_failures(table)
    assert len(failures) == 1 and failures[0].startswith("stage 0 (embedding+lstm0+lstm1+output+step) needs")
    assert f"largest: {r['largest']}" in failures[0]


def test_only_the_stages_over_capacity_fail():
    g = small_lm()
    table = check(g, Plan(stages=FOUR_STAGES))
    capacity = (table["total_gib"][0] + table["total_gib"][3]) / 2 * units.GiB  # between stage 0's and stage 3's
    table = check(g, Plan(stages=FOUR_STAGES), capacity)
    assert list(table["fits"]) == [bool(t <= units.to_gib(capacity)) for t in table["total_gib"]]
    assert table["fits"][0] and not table["fits"][3]
    assert (table.loc[table["fits"], "excess_gib"] == 0).all()
    names = memory_failures(table)
    assert len(names) == (~table["fits"]).sum()
    assert any(line.startswith("stage 3 (output+step)") for line in names)


def test_balanced_shards_even_out_the_piece_holders():
    """Table 5 row 6: splitting the embedding into 3 pieces on the first three accelerators evens out their
    footprints ({32, 31, 31, 32} GB).  Water filling on a table large enough to reach every holder."""
    g = small_lm(vocab=20000)
    ev = evaluate_plan(g, Plan(stages=FOUR_STAGES, shard_stages=(0, 1, 2)), paper_hardware(), simulate=False)
    fractions = ev.plan.shard_fractions
    assert sum(fractions) == pytest.approx(1.0) and all(f > 0 for f in fractions)
    holders = ev.memory["total_gib"][:3]
    assert holders.max() / holders.min() - 1 < 0.01
    unbalanced = evaluate_plan(g, Plan(stages=FOUR_STAGES, shard_stages=(0, 1, 2),
                                       shard_fractions=(1 / 3, 1 / 3, 1 / 3)), paper_hardware(), simulate=False)
    assert holders.max() < unbalanced.memory["total_gib"][:3].max()


def test_a_small_table_stays_with_the_lightest_holder():
    """When one holder plus the whole table is still below the others, water filling gives it all."""
    g = small_lm()
    ev = evaluate_plan(g, Plan(stages=FOUR_STAGES, shard_stages=(0, 1, 2)), paper_hardware(), simulate=False)
    assert ev.plan.shard_fractions == pytest.approx((1.0, 0.0, 0.0))
