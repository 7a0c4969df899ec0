"""The engine's fast paths give what the plain algorithms give.

- :meth:`Topology.route` returns networkx's ``shortest_path`` for every pair (same tie-breaks),
  also on graphs with high-degree hubs where it skips scanning neighbours;
- exact mode (callbacks, one timeout per end time) keeps closed forms and is deterministic;
- same-instant contention follows the rule in :mod:`distsim.network`'s docstring.
"""

from __future__ import annotations

import itertools

import networkx as nx
import pytest

from distsim.collectives import closed_form as cf
from distsim.errors import ConfigError
from distsim.network import CountingEnvironment, Network
from distsim.simulator import Simulator, simulate_collective
from distsim.topology import Topology, build_topology

B, A, S = 1e9, 1e-6, 1e8


def _alpha_beta(graph: nx.Graph) -> nx.Graph:
    for u, v in graph.edges:
        graph.edges[u, v].update(bandwidth_bytes_per_s=B, latency_s=A)
    return graph


@pytest.mark.parametrize("name,nodes,opts", [
    ("ring", 9, {}), ("torus2d", 16, {}), ("torus2d", 12, {}), ("torus3d", 27, {}), ("switch", 9, {}),
    ("fully_connected", 6, {}), ("two_level", 16, {"local_size": 4}), ("fat_tree", 16, {}),
])
def test_route_is_networkx_shortest_path_on_builders(name, nodes, opts):
    t = build_topology(name, nodes, **opts)
    for a, b in itertools.permutations(t.graph.nodes, 2):
        assert t.route(a, b) == tuple(nx.shortest_path(t.graph, a, b)), (a, b)


@pytest.mark.parametrize("seed", range(6))
def test_route_is_networkx_shortest_path_on_graphs_with_hubs(seed):
    # hubs make the route look frontier nodes up instead of scanning; labels shuffled so that
    # adjacency order differs from label order
    g = nx.barabasi_albert_graph(30, 2, seed=seed) if seed % 2 else nx.powerlaw_cluster_graph(30, 1, 0.3, seed=seed)
    g = _alpha_beta(nx.relabel_nodes(g, {n: (n * 7) % 30 for n in g}))
    t = Topology("hubs", g)
    for a, b in itertools.permutations(g.nodes, 2):
        assert t.route(a, b) == tuple(nx.shortest_path(g, a, b)), (a, b)


def test_route_and_participants_errors():
    g = _alpha_beta(nx.Graph([(0, 1), (2, 3)]))
    t = Topology("two islands", g)
    with pytest.raises(ConfigError, match="does not connect"):
        t.route(0, 3)
    with pytest.raises(ConfigError, match="does not connect"):
        t.participants([0, 1, 2])
    with pytest.raises(ConfigError, match="not in"):
        t.route(0, 9)
    assert t.participants([2, 3]) == [2, 3]


def test_route_info_matches_route_and_path_params():
    t = build_topology("two_level", 16, local_size=4)
    path, lat, bw, keys, ids = t.route_info(0, 5)
    assert path == t.route(0, 5) and (lat, bw) == t.path_params(path)
    assert keys == tuple(t.link_key(u, v) for u, v in zip(path, path[1:]))
    assert ids == tuple(t.link_index()[k] for k in keys)


@pytest.mark.parametrize("algorithm,topo_name,n", [
    ("ring", "ring", 64), ("tree", "switch", 64), ("halving_doubling", "switch", 64),
    ("ring", "fully_connected", 8),
])
def test_exact_mode_keeps_closed_form_at_scale(algorithm, topo_name, n):
    topo = build_topology(topo_name, n, bandwidth_bytes_per_s=B, latency_s=A)
    lat, bw = topo.path_params(topo.route(0, 1))
    from distsim.collectives import get_algorithm
    expected = get_algorithm(algorithm).closed_form_s("allreduce", n, S, bandwidth_bytes_per_s=bw, latency_s=lat)
    r = simulate_collective("allreduce", S, topo, algorithm=algorithm, mode="exact")
    assert r.step_time_s == pytest.approx(expected, rel=1e-12)
    assert len(r.transfers) == get_algorithm(algorithm).schedule("allreduce", n, S).transfer_count


def test_contended_exact_runs_are_identical():
    def run():
        sim = Simulator(build_topology("torus2d", 16, bandwidth_bytes_per_s=B, latency_s=A))
        first = sim.add_collective("hd", "allreduce", S, algorithm="halving_doubling", mode="exact")
        sim.add_collective("ring", "allreduce", S, mode="exact")
        sim.add_send("p2p", 0, 10, S, deps=[first])
        return sim.run()

    a, b = run(), run()
    assert a.step_time_s == b.step_time_s
    assert a.transfers.equals(b.transfers) and a.links.equals(b.links) and a.ops.equals(b.ops)
    assert list(a.link_spans) == list(b.link_spans)


def test_free_route_is_taken_whole_at_start():
    # Regression pin of the documented rule: started together on a ring of 4, transfer 0->2
    # (links 0->1, 1->2) finds both free and takes them at once; 1->2, started next, waits.
    topo = build_topology("ring", 4, bandwidth_bytes_per_s=B, latency_s=0.0)
    env = CountingEnvironment()
    net = Network(env, topo)
    ends = {}
    for name, src, dst in (("long", 0, 2), ("short", 1, 2)):
        net.start(src, dst, 1e6, lambda n: ends.__setitem__(n, env.now), name)
    env.run()
    assert ends == pytest.approx({"long": 1e-3, "short": 2e-3})


def test_simultaneous_uncontended_transfers_share_one_timeout():
    topo = build_topology("ring", 8, bandwidth_bytes_per_s=B, latency_s=A)
    r = simulate_collective("allreduce", S, topo, mode="exact")
    assert r.step_time_s == pytest.approx(cf.ring_allreduce_s(8, S, B, A), rel=1e-12)
    # 2(n-1) steps of n transfers, one timeout each: events still count every transfer end
    assert 2 * 7 * 8 <= r.events < 2 * 7 * 8 + 20


@pytest.mark.parametrize("algorithm", ["halving_doubling", "tree", "ring"])
def test_star_fast_path_plans_equal_the_route_by_route_plans(algorithm, monkeypatch):
    from distsim.collectives import get_algorithm
    from distsim.collectives.executor import symmetric_plan

    topo = build_topology("switch", 128, bandwidth_bytes_per_s=B, latency_s=A)
    sched = get_algorithm(algorithm).schedule("allreduce", 128, S)
    fast, reason_fast = symmetric_plan(sched, topo.endpoints, topo)
    assert topo.star_arrays(topo.endpoints) is not None
    monkeypatch.setattr(Topology, "star_arrays", lambda self, nodes: None)
    slow, reason_slow = symmetric_plan(sched, topo.endpoints, build_topology("switch", 128, bandwidth_bytes_per_s=B,
                                                                              latency_s=A))
    assert reason_fast == reason_slow
    assert (fast is None) == (slow is None)
    for a, b in zip(fast or [], slow or []):
        assert (a.src, a.dst, a.nbytes, a.duration_s, a.repeat, a.count) == (b.src, b.dst, b.nbytes, b.duration_s,
                                                                              b.repeat, b.count)
        assert [(list(ids), nb, busy) for ids, nb, busy in a.account] == \
            [(list(ids), nb, busy) for ids, nb, busy in b.account]


def test_star_fast_path_reports_the_same_shared_link():
    from distsim.collectives.executor import symmetry_violation
    from distsim.collectives.schedule import Schedule, Step

    topo = build_topology("switch", 100)
    sched = Schedule("allreduce", "custom", 100, 2.0, (Step(((0, 1, 1.0), (2, 3, 1.0), (0, 4, 1.0)), 1, "fan"),))
    reason = symmetry_violation(sched, topo.endpoints, topo)
    assert reason == "step 0 (fan): two transfers share link 0->sw"
