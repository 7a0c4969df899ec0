"""The link model: alpha-beta transfers, contention on shared links, duplex."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distsim.network import CountingEnvironment, Network
from distsim.topology import Topology, build_topology, topology_from_dict

B, A = 1e9, 1e-3  # 1 GB/s, 1 ms: easy numbers


def run_transfers(topo, transfers):
    """Start every (src, dst, nbytes) at time 0; return end times and the network."""
    env = CountingEnvironment()
    net = Network(env, topo)
    ends = []

    def one(i, s, d, nb):
        yield from net.transfer(s, d, nb, tag=str(i))
        ends.append((i, env.now))

    for i, (s, d, nb) in enumerate(transfers):
        env.process(one(i, s, d, nb))
    env.run()
    return dict(ends), net, env


def line(n=3, bw=B, lat=A):
    return build_topology("ring", n, bandwidth_bytes_per_s=bw, latency_s=lat) if n > 2 else None


def test_single_transfer_is_alpha_plus_size_over_beta():
    ends, net, _ = run_transfers(line(4), [(0, 1, 1e6)])
    assert ends[0] == pytest.approx(A + 1e6 / B)  # 1 ms + 1 ms
    assert net.link_bytes[(0, 1)] == 1e6


def test_multi_hop_sums_latency_and_takes_bottleneck():
    t = topology_from_dict({"nodes": ["a", "b", "c"], "defaults": {"latency_us": 1000},
                            "links": [{"a": "a", "b": "b", "bandwidth_GBps": 2}, {"a": "b", "b": "c", "bandwidth_GBps": 1}]})
    ends, net, _ = run_transfers(t, [("a", "c", 1e6)])
    # 2 hops x 1 ms + 1e6 B / 1e9 B/s (slowest link)
    assert ends[0] == pytest.approx(2e-3 + 1e-3)
    assert net.transfers[0][7] == 2


def test_shared_link_serialises_first_come_first_served():
    ends, _, _ = run_transfers(line(4), [(0, 1, 1e6), (0, 1, 1e6), (0, 1, 1e6)])
    d = A + 1e6 / B
    assert [ends[i] for i in range(3)] == pytest.approx([d, 2 * d, 3 * d])


def test_full_duplex_directions_do_not_contend():
    ends, _, _ = run_transfers(line(4), [(0, 1, 1e6), (1, 0, 1e6)])
    assert ends[0] == ends[1] == pytest.approx(A + 1e-3)


def test_half_duplex_directions_contend():
    half = Topology("half", build_topology("ring", 4, bandwidth_bytes_per_s=B, latency_s=A).graph, duplex=False)
    ends, _, _ = run_transfers(half, [(0, 1, 1e6), (1, 0, 1e6)])
    assert sorted(ends.values()) == pytest.approx([2e-3, 4e-3])


def test_crossing_multi_hop_transfers_do_not_deadlock():
    # 0->2 and 2->0 the long way round on a ring share no link; 0->2 and 1->3 share 1->2
    ring = build_topology("ring", 4, bandwidth_bytes_per_s=B, latency_s=0.0)
    ends, _, _ = run_transfers(ring, [(0, 2, 1e6), (1, 3, 1e6), (3, 1, 1e6), (2, 0, 1e6)])
    assert len(ends) == 4 and max(ends.values()) <= 4 * 2e-3


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.floats(1.0, 1e6)), min_size=1, max_size=12))
def test_invariants_random_traffic(transfers):
    transfers = [(s, d, nb) for s, d, nb in transfers if s != d]
    if not transfers:
        return
    topo = build_topology("torus2d", 6, bandwidth_bytes_per_s=B, latency_s=1e-6)
    ends, net, env = run_transfers(topo, transfers)
    makespan = env.now
    # never faster than alone; links never busier than the run is long (capacity 1)
    for i, (s, d, nb) in enumerate(transfers):
        assert ends[i] >= topo.transfer_time_s(s, d, nb) * (1 - 1e-12)
    for key, busy in net.link_busy_s.items():
        assert busy <= makespan * (1 + 1e-12)
    # bytes conserved: every transfer's bytes appear on each link of its route
    expected = sum(nb * (len(topo.route(s, d)) - 1) for s, d, nb in transfers)
    assert sum(net.link_bytes.values()) == pytest.approx(expected)
    # deterministic
    again, net2, _ = run_transfers(topo, transfers)
    assert again == ends and net2.transfers == net.transfers


def test_counting_environment_counts_events():
    _, _, env = run_transfers(line(4), [(0, 1, 1.0)])
    assert env.events_processed > 0
