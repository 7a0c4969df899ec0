"""Plan: validation (one-line ConfigErrors naming field and value) and plain-data round trips."""

import pytest

from assertions import raises_one_line

from distsim.errors import ConfigError
from distsim.plan import Plan, gradient_of, sparse_gradients
from planner_graphs import FOUR_STAGES, small_lm


def test_data_parallel_zero():
    raises_one_line(r"data_parallel .*got 0", Plan, data_parallel=0)


def test_stage_names_unknown_layer():
    msg = raises_one_line(r"stages\[1\] names layer 'lstm9'", Plan(stages=(("embedding",), ("lstm9",))).resolve,
                          small_lm())
    assert "lstm0" in msg  # lists the graph's layers


def test_layer_on_two_stages():
    stages = (("embedding", "lstm0"), ("lstm0", "lstm1", "output", "step"))
    raises_one_line(r"layer 'lstm0' is placed on stages 0 and 1", Plan(stages=stages).resolve, small_lm())


def test_layer_on_no_stage():
    stages = (("embedding", "lstm0"), ("lstm1", "step"))
    raises_one_line(r"layer 'output' is on no stage", Plan(stages=stages).resolve, small_lm())


def test_shard_stage_out_of_range():
    plan = Plan(stages=FOUR_STAGES, shard_stages=(0, 4))
    raises_one_line(r"shard_stages names stage 4.*0\.\.3", plan.resolve, small_lm())


def test_negative_shard_stage():
    raises_one_line(r"shard_stages entry .*-1", Plan, shard_stages=(-1,))


def test_embedding_shards_zero():
    raises_one_line(r"embedding_shards .*got 0", Plan.from_dict, {"embedding_shards": 0})


def test_embedding_shards_shorthand():
    assert Plan.from_dict({"embedding_shards": 3, "stages": [list(s) for s in FOUR_STAGES]}).shard_stages == (0, 1, 2)
    assert Plan.from_dict({"embedding_shards": 1}).shard_stages == ()


def test_unknown_key_lists_valid_ones():
    msg = raises_one_line(r"unknown plan key 'data_paralel'", Plan.from_dict, {"data_paralel": 2})
    assert "data_parallel" in msg and "embedding_shards" in msg


def test_batch_not_divisible_by_data_parallel():
    raises_one_line(r"data_parallel=3 does not divide batch=8", Plan, data_parallel=3, batch=8)


def test_batch_not_subbatch_times_workers():
    """small_lm's subbatch is 8: dp 2 makes a global batch of 16, not 32."""
    raises_one_line(r"batch=32 is not subbatch 8 x data_parallel 2", Plan(data_parallel=2, batch=32).resolve,
                    small_lm())
    assert Plan(data_parallel=2, batch=16).resolve(small_lm()).plan.batch == 16


def test_bad_schedule():
    raises_one_line(r"schedule must be one of wavefront, layerwise, got 'pipelined'", Plan, schedule="pipelined")


def test_shard_fractions_must_sum_to_one():
    raises_one_line(r"shard_fractions must sum to 1, got 0\.9", Plan, shard_stages=(0, 1), shard_fractions=(0.5, 0.4))


def test_shard_fractions_one_per_stage():
    raises_one_line(r"shard_fractions has 3 entries for 2 shard_stages", Plan, shard_stages=(0, 1),
                    shard_fractions=(0.5, 0.25, 0.25))


@pytest.mark.parametrize("field, value", [("sparse_gradients", "reduce"), ("comm_buffer", "ring"),
                                          ("overlap", "yes"), ("fuse_accumulation", 1)])
def test_other_enumerations(field, value):
    raises_one_line(rf"{field} .*{value!r}", Plan, **{field: value})


@pytest.mark.parametrize("plan", [
    Plan(),
    Plan(data_parallel=4, batch=32, overlap=True, comm_buffer="chunked"),
    Plan(data_parallel=2, stages=FOUR_STAGES, shard_stages=(0, 1, 2), shard_fractions=(0.5, 0.25, 0.25),
         schedule="layerwise", sparse_gradients="allreduce", fuse_accumulation=True),
])
def test_to_dict_from_dict_round_trip(plan):
    data = plan.to_dict()
    assert Plan.from_dict(data) == plan
    assert isinstance(data["shard_stages"], list)  # plain data (YAML-ready)
    assert data["stages"] is None or all(isinstance(s, list) for s in data["stages"])


def test_derived_counts():
    plan = Plan(data_parallel=512, stages=FOUR_STAGES, shard_stages=(0, 1, 2))
    assert (plan.stage_count, plan.accelerators, plan.embedding_shards) == (4, 2048, 3)  # Table 5 row 6
    assert plan.describe() == "dp512 x [embedding | lstm0 | lstm1 | output+step] shard3"


def test_resolve_places_every_layer():
    rp = Plan(stages=FOUR_STAGES, shard_stages=(0, 1, 2), shard_fractions=(0.5, 0.25, 0.25)).resolve(small_lm())
    assert rp.stage_of == {"embedding": 0, "lstm0": 1, "lstm1": 2, "output": 3, "step": 3}
    assert rp.table == "embedding/table"
    assert rp.pieces == [(0, 0.5), (1, 0.25), (2, 0.25)]


def test_gradients_and_the_sparse_one():
    """Seven trainable tensors: table, two LSTM kernels and biases, softmax weight and bias; only the
    embedding's gradient is its rows (tokens x hidden = 32 x 64 x 4 B)."""
    g = small_lm()
    grads = gradient_of(g)
    assert sorted(grads.values()) == sorted(["embedding/table", "lstm0/kernel", "lstm0/bias", "lstm1/kernel",
                                             "lstm1/bias", "output/softmax_w", "output/softmax_b"])
    sparse = sparse_gradients(g)
    assert list(sparse.values()) == ["embedding/table"]
    assert g.tensors[next(iter(sparse))].nbytes == 8 * 4 * 64 * 4


def test_shard_layer_needs_a_sparse_table():
    plan = Plan(stages=FOUR_STAGES, shard_layer="lstm0", shard_stages=(1, 2))
    raises_one_line(r"shard_layer 'lstm0' has no table with a sparse gradient", plan.resolve, small_lm())
    plan = Plan(stages=FOUR_STAGES, shard_layer="decoder", shard_stages=(1, 2))
    raises_one_line(r"shard_layer 'decoder' is not a layer", plan.resolve, small_lm())


def test_memory_only_summary_has_no_timing():
    """evaluate_plan(..., simulate=False): memory fields filled, timing fields None."""
    from distsim.evaluate import evaluate_plan
    from distsim.workload import build_workload

    g = build_workload("wordlm", hidden=64, vocab=1000, seq_len=4, batch=8)
    s = evaluate_plan(g, Plan(data_parallel=2), simulate=False).summary()
    assert s["step_s"] is None and s["days_per_epoch"] is None
    assert s["memory_gib"] and s["accelerators"] == 2
