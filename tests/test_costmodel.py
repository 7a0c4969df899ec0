"""Timing models: roofline, per-op, cache-aware (PPoPP 2019 §5.2, §6.1; Table 4)."""

import math

import pytest
from hypothesis import given, settings, strategies as st

from distsim.costmodel import (
    analyze_step, cache_aware_step_s, op_times_s, per_op_step_s, roofline_step_s, tiled_gemm_bytes, utilization,
)
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
def test_more_cache_never_more_traffic(m, n, k, cache, factor):
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
    base = cache_aware_step_s(g, small)
    assert cache_aware_step_s(g, fast) <= base * (1 + 1e-12)
    assert cache_aware_step_s(g, big_cache) <= base * (1 + 1e-12)
    assert roofline_step_s(g, small) <= per_op_step_s(g, small) * (1 + 1e-12)
    assert per_op_step_s(g, small) <= cache_aware_step_s(g, small) * (1 + 1e-12)


def test_utilization_definition():
    assert utilization(15.67e12, V100, 1.0) == pytest.approx(1.0)
    assert utilization(15.67e12, V100, 1.0, accelerators=2) == pytest.approx(0.5)


def test_analyze_step_keys_and_roofline_utilization():
    g = build_workload("wordlm", hidden=64, vocab=100, seq_len=4, batch=8)
    r = analyze_step(g, V100)
    for key in ("params", "flops", "bytes", "footprint_total_bytes", "footprint_min_bytes", "roofline_step_s",
                "cache_aware_step_s", "roofline_utilization", "cache_aware_utilization"):
        assert key in r
    assert r["roofline_utilization"] <= 0.8 + 1e-12


def test_unknown_mode():
    g = build_workload("wordlm", hidden=8, vocab=8, seq_len=1, batch=1)
    with pytest.raises(ConfigError, match="timing mode"):
        op_times_s(g, V100, "magic")
