"""Collectives: each algorithm against its closed form, exact vs symmetric mode, contention, scale."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distsim.collectives import COLLECTIVES, get_algorithm
from distsim.collectives import closed_form as cf
from distsim.collectives.executor import symmetry_violation
from distsim.errors import ConfigError
from distsim.simulator import Simulator, simulate_collective
from distsim.topology import build_topology

B = 56e9  # PPoPP 2019 Table 4 link
A = 1e-6  # per-hop latency
S = 1e9


def sim_time(op, algorithm, topo, n=None, nbytes=S, mode="auto", **options):
    return simulate_collective(op, nbytes, topo, algorithm=algorithm, participants=n, mode=mode, **options).step_time_s


def ring(n, bw=B, lat=A):
    return build_topology("ring", n, bandwidth_bytes_per_s=bw, latency_s=lat)


@pytest.mark.parametrize("n", [2, 3, 8, 64])
def test_ring_allreduce_closed_form(n):
    # Reduce-scatter: n-1 steps, each rank sends S/n to its successor over one link:
    # a + S/(nB) per step.  All-gather: the same again.  T = 2(n-1)a + 2(n-1)/n * S/B.
    expected = 2 * (n - 1) * A + 2 * (n - 1) / n * S / B
    got = sim_time("allreduce", "ring", ring(n))
    assert got == pytest.approx(expected, rel=1e-3)  # the 0.1% ...
    assert got == pytest.approx(expected, rel=1e-12)  # ... and in fact to rounding


@pytest.mark.parametrize("op", ["allgather", "reducescatter"])
@pytest.mark.parametrize("n", [2, 5, 16])
def test_ring_allgather_reducescatter_closed_form(op, n):
    # n-1 steps of S/n bytes: T = (n-1)a + (n-1)/n S/B
    assert sim_time(op, "ring", ring(n)) == pytest.approx((n - 1) * A + (n - 1) / n * S / B, rel=1e-12)


@pytest.mark.parametrize("n,p", [(2, 1), (8, 1), (8, 4), (16, 7)])
def test_ring_broadcast_pipeline_closed_form(n, p):
    # piece S/P; the last piece leaves the root at step P-1 and needs n-1 hops: n-2+P steps of a + S/(PB)
    expected = (n - 2 + p) * (A + S / (p * B))
    assert sim_time("broadcast", "ring", ring(n), chunks=p) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n", [2, 4, 16, 64])
def test_tree_closed_forms_on_switch(n):
    # On a switch every transfer crosses two links: route latency 2a, bandwidth B; distinct
    # senders and receivers in each level use distinct ports, so nothing contends.
    topo = build_topology("switch", n, bandwidth_bytes_per_s=B, latency_s=A)
    levels = math.ceil(math.log2(n))
    assert sim_time("broadcast", "tree", topo) == pytest.approx(levels * (2 * A + S / B), rel=1e-12)
    assert sim_time("allreduce", "tree", topo) == pytest.approx(2 * levels * (2 * A + S / B), rel=1e-12)


def test_tree_allreduce_non_power_of_two_is_at_most_closed_form():
    topo = build_topology("switch", 5, bandwidth_bytes_per_s=B, latency_s=A)
    assert sim_time("allreduce", "tree", topo) <= cf.tree_allreduce_s(5, S, B, 2 * A) * (1 + 1e-12)


@pytest.mark.parametrize("n", [2, 8, 32])
def test_halving_doubling_closed_form(n):
    # Halving: step k exchanges S/2^(k+1) with the partner n/2^(k+1) away; sum_k S/2^(k+1) = (n-1)/n S.
    # Doubling mirrors it.  On a fully connected topology each pair has its own link:
    # T = 2 log2(n) a + 2 (n-1)/n S/B.
    topo = build_topology("fully_connected", n, bandwidth_bytes_per_s=B, latency_s=A)
    expected = 2 * math.log2(n) * A + 2 * (n - 1) / n * S / B
    assert sim_time("allreduce", "halving_doubling", topo) == pytest.approx(expected, rel=1e-12)
    half = math.log2(n) * A + (n - 1) / n * S / B
    assert sim_time("allgather", "halving_doubling", topo) == pytest.approx(half, rel=1e-12)
    assert sim_time("reducescatter", "halving_doubling", topo) == pytest.approx(half, rel=1e-12)


@pytest.mark.parametrize("n,k", [(16, 4), (32, 8), (8, 8), (4, 1)])
def test_hierarchical_closed_form_on_two_level(n, k):
    # Inside a group: ring reduce-scatter and all-gather, 2(k-1) steps of S/k over fast links.
    # Across the m = n/k groups: ring all-reduce of each S/k shard among equal local ranks,
    # 2(m-1) steps of S/(km), each crossing two NIC links (latency 2 a_net, bandwidth B_net).
    bl, al, bg, ag = 50e9, 1e-6, 10e9, 4e-6
    topo = build_topology("two_level", n, local_size=k, bandwidth_bytes_per_s=bl, latency_s=al,
                          inter_bandwidth_bytes_per_s=bg, inter_latency_s=ag)
    m = n // k
    expected = 2 * (k - 1) * (al + S / (k * bl)) + 2 * (m - 1) * (2 * ag + S / (k * m * bg))
    assert sim_time("allreduce", "hierarchical", topo, local_size=k) == pytest.approx(expected, rel=1e-12)
    assert get_algorithm("hierarchical").closed_form_s(
        "allreduce", n, S, bandwidth_bytes_per_s=bl, latency_s=al, local_size=k,
        inter_bandwidth_bytes_per_s=bg, inter_latency_s=2 * ag) == pytest.approx(expected, rel=1e-12)


def test_p2p_send_closed_form():
    topo = build_topology("ring", 8, bandwidth_bytes_per_s=B, latency_s=A)
    sim = Simulator(topo)
    sim.add_send("x", 0, 3, S)
    # three hops: 3a + S/B
    assert sim.run().step_time_s == pytest.approx(3 * A + S / B, rel=1e-12)


@pytest.mark.parametrize("algorithm,op,topo_name,n,opts", [
    ("ring", "allreduce", "ring", 16, {}),
    ("ring", "allgather", "ring", 7, {}),
    ("ring", "broadcast", "ring", 9, {"chunks": 3}),
    ("tree", "allreduce", "switch", 16, {}),
    ("halving_doubling", "allreduce", "fully_connected", 16, {}),
    ("hierarchical", "allreduce", "two_level", 32, {"local_size": 8}),
])
def test_closed_form_functions_match_simulation(algorithm, op, topo_name, n, opts):
    topo = build_topology(topo_name, n, **({"local_size": 8} if topo_name == "two_level" else {}))
    lat, bw = topo.path_params(topo.route(0, 1))
    extra = dict(opts)
    if algorithm == "hierarchical":
        extra.update(zip(("inter_latency_s", "inter_bandwidth_bytes_per_s"), topo.path_params(topo.route(0, 8))))
    t_cf = cf.collective_time_s(op, algorithm, n, S, bandwidth_bytes_per_s=bw, latency_s=lat, **extra)
    assert sim_time(op, algorithm, topo, **opts) == pytest.approx(t_cf, rel=1e-12)


@pytest.mark.parametrize("algorithm,op,topo_name,n,opts", [
    ("ring", "allreduce", "ring", 2, {}),
    ("ring", "allreduce", "ring", 12, {}),
    ("ring", "reducescatter", "switch", 16, {}),
    ("ring", "broadcast", "ring", 6, {"chunks": 4}),
    ("tree", "broadcast", "switch", 13, {}),
    ("tree", "allreduce", "fully_connected", 16, {}),
    ("halving_doubling", "allreduce", "switch", 8, {}),
    ("hierarchical", "allreduce", "two_level", 16, {"local_size": 4}),
])
def test_symmetric_and_exact_modes_agree(algorithm, op, topo_name, n, opts):
    topo = build_topology(topo_name, n, **({"local_size": opts["local_size"]} if topo_name == "two_level" else {}))
    exact = simulate_collective(op, S, topo, algorithm=algorithm, mode="exact", **opts)
    sym = simulate_collective(op, S, topo, algorithm=algorithm, mode="symmetric", **opts)
    assert sym.modes[op] == "symmetric" and exact.modes[op] == "exact"
    assert sym.step_time_s == pytest.approx(exact.step_time_s, rel=1e-12)
    # same traffic: transfers, bytes and per-link bytes and busy time
    assert sym.transfers["count"].sum() == len(exact.transfers)
    assert sym.summary()["bytes_transferred"] == pytest.approx(exact.summary()["bytes_transferred"])
    keyed = lambda r: r.links.set_index(["src", "dst"])[["bytes", "busy_s"]].sort_index()
    assert keyed(sym).to_numpy() == pytest.approx(keyed(exact).to_numpy())
    assert sym.events < exact.events


def test_symmetry_check_rejects_shared_links_and_auto_falls_back():
    # halving-doubling on a ring: partners 4 apart route over shared links
    topo = ring(8)
    sched = get_algorithm("halving_doubling").schedule("allreduce", 8, S)
    assert "share link" in symmetry_violation(sched, topo.endpoints, topo)
    with pytest.raises(ConfigError, match="symmetric mode is not exact"):
        simulate_collective("allreduce", S, topo, algorithm="halving_doubling", mode="symmetric")
    r = simulate_collective("allreduce", S, topo, algorithm="halving_doubling")
    assert r.modes["allreduce"] == "exact"
    # ... and contention makes it slower than its closed form at the one-hop parameters
    assert r.step_time_s > cf.halving_doubling_allreduce_s(8, S, B, A) * 1.2


def test_contention_two_concurrent_ring_allreduces():
    # Two equal ring all-reduces start together on the same ring.  Each step, both want the
    # same link; FIFO gives it to the first (d = a + S/(nB)), then the second (2d).  The first
    # collective's next transfer is requested at d, before the second's at 2d, so it is served
    # next (2d..3d), and so on: the second finishes after 2 * 2(n-1) steps of d, i.e. exactly
    # twice the closed form, and the first one step earlier.
    n = 6
    topo = ring(n)
    sim = Simulator(topo)
    sim.add_collective("first", "allreduce", S, mode="exact")
    sim.add_collective("second", "allreduce", S, mode="exact")
    r = sim.run()
    closed = cf.ring_allreduce_s(n, S, B, A)
    d = A + S / (n * B)
    ends = r.ops.set_index("name")["end_s"]
    assert ends["second"] == pytest.approx(2 * closed, rel=1e-12)
    assert ends["first"] == pytest.approx(2 * closed - d, rel=1e-12)
    assert ends["first"] > closed
    assert r.links["utilization"].max() <= 1 + 1e-12


def test_ring_on_a_torus_in_rank_order_contends():
    # Ranks 0..15 in row-major order on a 4x4 torus: 3->4, 7->8, ... are two hops and
    # share a link with the one-hop neighbour transfers; slower than the ring closed form.
    topo = build_topology("torus2d", 16, bandwidth_bytes_per_s=B, latency_s=A)
    t = sim_time("allreduce", "ring", topo)
    assert t > cf.ring_allreduce_s(16, S, B, A) * 1.5


def test_symmetric_mode_scales_to_65536_nodes():
    """The time it takes is a benchmark figure (benchmarks/bench_engine.py), not asserted here."""
    n = 65536
    r = simulate_collective("allreduce", S, ring(n))
    assert r.modes["allreduce"] == "symmetric"
    assert r.step_time_s == pytest.approx(2 * (n - 1) * A + 2 * (n - 1) / n * S / B, rel=1e-12)
    assert r.transfers["count"].sum() == n * 2 * (n - 1)


@pytest.mark.parametrize("algorithm,op,n", [("ring", "allreduce", 8), ("halving_doubling", "allreduce", 8),
                                           ("tree", "broadcast", 8), ("hierarchical", "allreduce", 16)])
def test_bytes_conserved(algorithm, op, n):
    opts = {"local_size": 4} if algorithm == "hierarchical" else {}
    sched = get_algorithm(algorithm).schedule(op, n, S, **opts)
    topo = build_topology("two_level" if algorithm == "hierarchical" else "switch", n, **opts)
    r = simulate_collective(op, S, topo, algorithm=algorithm, mode="exact", **opts)
    assert r.transfers["nbytes"].sum() == pytest.approx(sched.total_bytes)
    # each transfer's bytes cross every link of its route once
    assert r.links["bytes"].sum() == pytest.approx((r.transfers["nbytes"] * r.transfers["hops"]).sum())


def test_schedule_byte_totals():
    n = 8
    # ring all-reduce: every rank sends S/n in each of 2(n-1) steps
    assert get_algorithm("ring").schedule("allreduce", n, S).total_bytes == pytest.approx(2 * (n - 1) * S)
    # halving-doubling sends the same total as the ring
    assert get_algorithm("halving_doubling").schedule("allreduce", n, S).total_bytes == pytest.approx(2 * (n - 1) * S)
    # binomial broadcast: n-1 whole copies
    assert get_algorithm("tree").schedule("broadcast", n, S).total_bytes == pytest.approx((n - 1) * S)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 12), nbytes=st.floats(1.0, 1e10), bw=st.floats(1e8, 1e11), factor=st.floats(1.0, 8.0),
       lat=st.floats(0.0, 1e-4), algorithm=st.sampled_from(["ring", "tree"]))
def test_more_bandwidth_never_slower(n, nbytes, bw, factor, lat, algorithm):
    slow = sim_time("allreduce", algorithm, build_topology("switch", n, bandwidth_bytes_per_s=bw, latency_s=lat),
                    nbytes=nbytes)
    fast = sim_time("allreduce", algorithm,
                    build_topology("switch", n, bandwidth_bytes_per_s=bw * factor, latency_s=lat), nbytes=nbytes)
    assert fast <= slow * (1 + 1e-12)


def test_same_input_identical_result():
    topo = build_topology("torus2d", 9)
    a = simulate_collective("allreduce", S, topo, mode="exact")
    b = simulate_collective("allreduce", S, build_topology("torus2d", 9), mode="exact")
    assert a.summary() == b.summary()
    assert a.transfers.equals(b.transfers) and a.links.equals(b.links)


def test_single_node_costs_nothing():
    assert sim_time("allreduce", "ring", ring(3), n=1) == 0.0
    assert cf.collective_time_s("allreduce", "ring", 1, S) == 0.0


@pytest.mark.parametrize("call,msg", [
    (lambda: get_algorithm("butterfly"), "unknown collective algorithm 'butterfly'; accepted: halving_doubling"),
    (lambda: get_algorithm("tree").schedule("allgather", 4, S), "does not implement 'allgather'"),
    (lambda: get_algorithm("halving_doubling").schedule("allreduce", 6, S), "power-of-two"),
    (lambda: get_algorithm("ring").schedule("allreduce", 4, 0), "bytes must be positive"),
    (lambda: get_algorithm("ring").schedule("allreduce", 0, S), "nodes must be a positive integer"),
    (lambda: get_algorithm("hierarchical").schedule("allreduce", 10, S, local_size=4), "not a multiple"),
])
def test_bad_input(call, msg):
    with pytest.raises(ConfigError, match=msg):
        call()


def test_registry_names():
    assert set(COLLECTIVES.names()) == {"ring", "tree", "halving_doubling", "hierarchical", "p2p"}


def test_bus_bandwidth_factor():
    assert cf.bus_bandwidth_factor("allreduce", 8) == 2 * 7 / 8
    assert cf.bus_bandwidth_factor("allgather", 8) == 7 / 8
    assert cf.bus_bandwidth_factor("broadcast", 8) == 1.0


@settings(max_examples=25, deadline=None)
@given(case=st.sampled_from([("ring", "allreduce", "ring"), ("ring", "allgather", "ring"),
                             ("ring", "reducescatter", "switch"), ("tree", "broadcast", "switch"),
                             ("halving_doubling", "allreduce", "fully_connected")]),
       n=st.integers(2, 12), nbytes=st.floats(1.0, 1e10), bw=st.floats(1e8, 1e11), lat=st.floats(0.0, 1e-4))
def test_exact_mode_matches_closed_form_property(case, n, nbytes, bw, lat):
    algorithm, op, topo_name = case
    if algorithm == "halving_doubling":
        n = 1 << (n.bit_length() - 1)  # a power of two
    topo = build_topology(topo_name, n, bandwidth_bytes_per_s=bw, latency_s=lat)
    route_lat, route_bw = topo.path_params(topo.route(0, 1))
    expected = cf.collective_time_s(op, algorithm, n, nbytes, bandwidth_bytes_per_s=route_bw, latency_s=route_lat)
    assert sim_time(op, algorithm, topo, nbytes=nbytes, mode="exact") == pytest.approx(expected, rel=1e-9)
