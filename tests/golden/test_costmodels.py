"""Cost models: roofline, per-op, tiled_best, cache_aware = TSS (PPoPP 2019 §5.2, §6.1; Table 4;
Coleman & McKinley, PLDI 1995)."""

import math

import pytest
from hypothesis import given, settings, strategies as st

from distsim.costmodels import (
    COST_MODELS, analyze_step, cache_aware_step_s, cost_model_names, op_times_s, per_op_step_s, roofline_step_s,
    step_s, utilization,
)
from distsim.costmodels.cache_aware import CacheAware, tss_candidates, tss_gemm_bytes, tss_tile
from distsim.costmodels.tiled_best import tiled_gemm_bytes
from distsim.device import Device, get_device
from distsim.errors import ConfigError
from distsim.graph import Gemm, GraphBuilder, OpKind, TensorKind
from distsim.workload import build_workload

V100 = get_device("paper-v100")


def test_paper_v100_ridge_points():
    """Table 4 / §5.2: ridge point 17.4 FLOP/B at peak, 19.9 at achievable rates."""
    assert V100.ridge_point == pytest.approx(17.4, abs=0.05)
    assert V100.achievable_ridge_point == pytest.approx(19.9, abs=0.05)


def _one_op_graph(flops, nbytes):
    gb = GraphBuilder("one")
    x = gb.tensor("x", 1, TensorKind.INPUT)
    gb.op("op", OpKind.ELEMENTWISE, [x], [("y", 1)], flops=flops, nbytes=nbytes)
    return gb.build()


def test_roofline_formula_compute_and_memory_bound():
    c, a = 1e12, 1e9
    g = _one_op_graph(c, a)
    assert roofline_step_s(g, V100) == pytest.approx(c / (0.8 * 15.67e12))
    g = _one_op_graph(1e9, 1e12)
    assert roofline_step_s(g, V100) == pytest.approx(1e12 / (0.7 * 898e9))


def test_per_op_is_sum_of_op_maxima_and_never_below_roofline():
    gb = GraphBuilder("two")
    x = gb.tensor("x", 1, TensorKind.INPUT)
    gb.op("compute", OpKind.MATMUL, [x], [("y", 1)], flops=1e12, nbytes=1)
    gb.op("memory", OpKind.ELEMENTWISE, ["y"], [("z", 1)], flops=1, nbytes=1e11)
    g = gb.build()
    expected = 1e12 / V100.achievable_flop_per_s + 1e11 / V100.achievable_bytes_per_s
    assert per_op_step_s(g, V100) == pytest.approx(expected)
    assert per_op_step_s(g, V100) >= roofline_step_s(g, V100)


def test_roofline_op_times_sum_to_graph_level_time():
    g = build_workload("wordlm", hidden=64, vocab=100, seq_len=4, batch=8)
    assert op_times_s(g, V100, "roofline").sum() == pytest.approx(roofline_step_s(g, V100))


def test_gemm_that_fits_in_cache_has_no_extra_traffic():
    g = Gemm(64, 64, 64)
    algorithmic = (3 * 64 * 64) * 4
    assert tiled_gemm_bytes(g, 6e6) == algorithmic


def test_gemm_restreams_when_operands_exceed_cache():
    """Square 4096^3 fp32 with a 1 MB cache: C tile 512x512; A and B each read 8 times."""
    g = Gemm(4096, 4096, 4096)
    t = int(math.isqrt(int(1e6 / 4)))  # 500
    passes = math.ceil(4096 / t)
    expected = 4 * (4096 * 4096 * passes * 2 + 4096 * 4096)
    assert tiled_gemm_bytes(g, 1e6) == expected


def test_zero_cache_streams_every_operand_access():
    g = Gemm(8, 8, 8)
    assert tiled_gemm_bytes(g, 0) == 4 * (2 * 8 * 8 * 8 + 64)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000), st.integers(1, 5000), st.floats(1e4, 1e8), st.floats(1.0, 8.0))
def test_tiled_best_more_cache_never_more_traffic(m, n, k, cache, factor):
    g = Gemm(m, n, k)
    algorithmic = 4 * (m * k + k * n + m * n)
    small, big = tiled_gemm_bytes(g, cache), tiled_gemm_bytes(g, cache * factor)
    assert algorithmic <= big <= small


@settings(max_examples=15, deadline=None)
@given(st.integers(8, 64), st.integers(8, 128), st.integers(1, 4), st.floats(1.0, 4.0))
def test_more_bandwidth_or_cache_never_slower(h, v, q, factor):
    g = build_workload("wordlm", hidden=h, vocab=v, seq_len=q, batch=4)
    small = V100.with_(cache_bytes=1e4)
    fast = small.with_(memory_bandwidth_bytes_per_s=small.memory_bandwidth_bytes_per_s * factor)
    big_cache = small.with_(cache_bytes=1e4 * factor)
    for model in ("tiled_best", "cache_aware"):
        base = step_s(g, small, model)
        assert step_s(g, fast, model) <= base * (1 + 1e-12)
        assert per_op_step_s(g, small) <= base * (1 + 1e-12)
    # square tiles only grow with the cache; TSS tiles need not (direct-mapped self-interference)
    assert step_s(g, big_cache, "tiled_best") <= step_s(g, small, "tiled_best") * (1 + 1e-12)
    assert roofline_step_s(g, small) <= per_op_step_s(g, small) * (1 + 1e-12)


def test_utilization_definition():
    assert utilization(15.67e12, V100, 1.0) == pytest.approx(1.0)
    assert utilization(15.67e12, V100, 1.0, accelerators=2) == pytest.approx(0.5)


def test_analyze_step_keys_and_roofline_utilization():
    g = build_workload("wordlm", hidden=64, vocab=100, seq_len=4, batch=8)
    r = analyze_step(g, V100)
    for key in ("params", "flops", "bytes", "footprint_total_bytes", "footprint_min_bytes", "roofline_step_s",
                "cache_aware_step_s", "roofline_utilization", "cache_aware_utilization", "tiled_best_step_s",
                "per_op_step_s", "cache_aware_bytes", "tiled_best_bytes"):
        assert key in r
    for name in cost_model_names():
        assert r[f"{name}_step_s"] == pytest.approx(step_s(g, V100, name))
    assert r["roofline_utilization"] <= 0.8 + 1e-12


def test_unknown_model_lists_accepted():
    g = build_workload("wordlm", hidden=8, vocab=8, seq_len=1, batch=1)
    with pytest.raises(ConfigError, match="unknown cost model 'magic'; accepted: cache_aware, per_op, roofline"):
        op_times_s(g, V100, "magic")


def test_registry_order_most_optimistic_first():
    assert cost_model_names() == ["roofline", "per_op", "tiled_best", "cache_aware"]
    assert all(COST_MODELS.get(n).name == n and COST_MODELS.get(n).description for n in cost_model_names())


# --- cache_aware: Coleman & McKinley tile size selection (TSS) ---

def test_tss_candidates_follow_the_euclidean_algorithm():
    """C = 1024, N = 200: 1024 = 5 x 200 + 24, 200 = 8 x 24 + 8, 24 = 3 x 8.  Candidate segment
    lengths 200, 24, 8; rows 5 (5 x 200 <= 1024), 41 (row 41 starts at 41 x 200 mod 1024 = 8, within
    24 of row 0), 128 (128 x 200 = 25 x 1024: row 128 lands on row 0)."""
    assert tss_candidates(1024, 200, 1000) == ((5, 200), (41, 24), (128, 8))
    assert tss_tile(1024, 1000, 200) == (128, 8)  # largest area: 128 x 8 = 1024 > 5 x 200 > 41 x 24
    assert tss_tile(1024, 4, 200) == (4, 200)  # only 4 rows: 4 x 200 beats 4 x 24 and 4 x 8


def test_docstring_examples():
    import doctest

    from distsim.costmodels import cache_aware

    result = doctest.testmod(cache_aware)
    assert result.attempted > 0 and result.failed == 0


def test_tss_rows_search_spans_chunks():
    """Rows found past the first search chunk: C = 2^20, N = 1, h = 1: 2^20 rows fit, capped by the array."""
    assert tss_candidates(2**20, 1, 200_000) == ((200_000, 1),)
    assert tss_candidates(2**20, 3, 10**7)[0] == (349_525, 3)  # floor(2^20 / 3) whole rows of 3


def _occupied(cache, leading, rows, height):
    return [(i * leading + j) % cache for i in range(rows) for j in range(height)]


@settings(max_examples=80, deadline=None)
@given(st.integers(16, 4096), st.integers(1, 9000), st.integers(1, 300))
def test_tss_candidates_have_no_self_interference_and_are_maximal(cache, leading, rows):
    """Each candidate's row segments occupy distinct cache positions; one more row would clash."""
    for w, h in tss_candidates(cache, leading, rows):
        assert 1 <= w <= rows and 1 <= h <= min(cache, leading)
        cells = _occupied(cache, leading, w, h)
        assert len(set(cells)) == len(cells) <= cache
        if w < rows:
            more = _occupied(cache, leading, w + 1, h)
            assert len(set(more)) < len(more)


def test_first_operand_that_fits_moves_every_operand_once():
    g = Gemm(m=100, n=5000, k=300)  # A = 30,000 elements, the cache 65,536
    assert tss_gemm_bytes(g, 2**18) == 4 * (100 * 300 + 300 * 5000 + 100 * 5000)


def test_case_study_lstm_gemm_exact():
    """Case-study recurrent GEMM [128 x 39,936] x [39,936 x 79,872], fp32, 6 MiB = 1,572,864 elements:
    39 rows of 39,936 fit (39 x 39,936 = 1,557,504), the largest TSS tile; B is read ceil(128/39) = 4
    times, A and C once.  Intensity 2mnk / bytes = 16.0 FLOP/B, below the 19.9 ridge: memory-bound."""
    m, n, k = 128, 79872, 39936
    assert tss_tile(6 * 2**20 // 4, m, k) == (39, 39936)
    want = 4 * (m * k + 4 * k * n + m * n)
    assert tss_gemm_bytes(Gemm(m, n, k), 6 * 2**20) == want
    assert 2 * m * n * k / want == pytest.approx(16.0, abs=0.05)


def test_resident_and_layout_alternatives():
    g = Gemm(m=128, n=79872, k=39936)
    a_row = tss_gemm_bytes(g, 6 * 2**20)
    # column-major A ([k, m] in memory, leading dimension 128): 12,288 whole columns, k in 4 chunks
    assert tss_gemm_bytes(g, 6 * 2**20, layout="col") == 4 * (128 * 39936 + 39936 * 79872 + 7 * 128 * 79872)
    assert tss_gemm_bytes(g, 6 * 2**20, resident="B") < a_row
    assert tss_gemm_bytes(g, 6 * 2**20, resident="C") > 0
    with pytest.raises(ConfigError, match="resident operand 'D'; accepted: A, B, C"):
        CacheAware(resident="D")


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 3000), st.integers(1, 3000), st.integers(0, 2**22),
       st.sampled_from(["A", "B", "C"]), st.sampled_from(["row", "col"]))
def test_tss_traffic_never_below_algorithmic(m, n, k, cache, resident, layout):
    g = Gemm(m, n, k)
    assert tss_gemm_bytes(g, cache, resident, layout) >= 4 * (m * k + k * n + m * n)


def test_cache_size_moves_the_case_study():
    """The knob works: the case study's cache-aware step changes with the L2 size (paper-v100)."""
    g = build_workload("wordlm", hidden=1024, projection=256, vocab=20000, seq_len=4, batch=128)
    times = {mib: cache_aware_step_s(g, V100.with_(cache_bytes=mib * 2**20)) for mib in (0.0625, 0.25, 4)}
    assert times[0.0625] > times[0.25] > times[4] == pytest.approx(per_op_step_s(g, V100))

