"""Topology builders, YAML loading, routing and participant checks."""

from __future__ import annotations

import math

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distsim.errors import ConfigError
from distsim.topology import (DEFAULT_BANDWIDTH_BYTES_PER_S, TOPOLOGIES, build_topology, get_topology, load_topology,
                              topology_from_dict)


def test_registry_lists_every_builder():
    assert set(TOPOLOGIES.names()) >= {"ring", "torus2d", "torus3d", "fully_connected", "switch", "two_level", "fat_tree"}


def test_default_bandwidth_is_table4_link():
    # PPoPP 2019 Table 4: inter-device links of 56 GB/s
    assert DEFAULT_BANDWIDTH_BYTES_PER_S == 56e9
    t = build_topology("ring", 4)
    assert all(d["bandwidth_bytes_per_s"] == 56e9 for _, _, d in t.graph.edges(data=True))


@pytest.mark.parametrize("name,nodes,edges", [
    ("ring", 8, 8),                 # n links
    ("ring", 2, 1),                 # a single link, used both ways
    ("fully_connected", 6, 15),     # n(n-1)/2
    ("switch", 5, 5),               # one port each
    ("torus2d", 16, 32),            # 2 links per node on a 4x4
    ("torus3d", 64, 192),           # 3 links per node on a 4x4x4
    ("two_level", 16, 2 * 28 + 16),  # k(k-1)/2 per group of 8, plus one NIC each
    ("fat_tree", 16, 48),           # k=4: 16 host + 16 edge-agg + 16 agg-core
])
def test_link_counts(name, nodes, edges):
    t = build_topology(name, nodes)
    assert len(t.endpoints) == nodes
    assert t.graph.number_of_edges() == edges
    assert nx.is_connected(t.graph)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(["ring", "torus2d", "torus3d", "switch", "fully_connected", "fat_tree"]),
       nodes=st.integers(1, 40))
def test_builders_connect_every_accelerator(name, nodes):
    t = build_topology(name, nodes)
    assert len(t.endpoints) == nodes
    assert t.participants(nodes) == t.endpoints
    if nodes > 1:
        # shortest routes: a route is never longer than the graph's diameter
        path = t.route(t.endpoints[0], t.endpoints[-1])
        assert len(path) - 1 == nx.shortest_path_length(t.graph, t.endpoints[0], t.endpoints[-1])


def test_torus_routes_wrap_around():
    t = build_topology("torus2d", 16)  # 4x4, row-major
    assert len(t.route(0, 3)) - 1 == 1  # (0,0)->(0,3) wraps
    assert len(t.route(0, 10)) - 1 == 4  # (0,0)->(2,2): 2 + 2 hops


def test_path_params_add_latency_and_take_slowest_link():
    t = build_topology("two_level", 8, local_size=4, bandwidth_bytes_per_s=50e9, latency_s=1e-6,
                       inter_bandwidth_bytes_per_s=10e9, inter_latency_s=3e-6)
    assert t.path_params(t.route(0, 1)) == (1e-6, 50e9)
    lat, bw = t.path_params(t.route(0, 4))  # 0 -> net -> 4
    assert lat == pytest.approx(6e-6) and bw == 10e9
    assert t.transfer_time_s(0, 4, 1e9) == pytest.approx(6e-6 + 0.1)


def test_yaml_explicit_and_builder(tmp_path):
    t = load_topology("topologies/presets/line4.yaml")
    assert t.endpoints == ["a", "b", "c", "d"]
    assert t.route("a", "d") == ("a", "b", "c", "d")
    assert t.link("c", "d")["bandwidth_bytes_per_s"] == 28e9  # bandwidth_GBps: 28
    assert t.link("a", "b")["latency_s"] == pytest.approx(1e-6)  # latency_us: 1
    pair = load_topology("topologies/presets/dgx_pair.yaml")
    assert pair.name == "dgx_pair" and len(pair.endpoints) == 8
    assert pair.link(0, "net")["bandwidth_bytes_per_s"] == pytest.approx(12.5e9)
    f = tmp_path / "t.yaml"
    f.write_text("builder: torus2d\nnodes: 9\ndefaults: {bandwidth_GBps: 10, latency_us: 0}\n")
    t = get_topology(str(f), 9)
    assert t.graph.number_of_edges() == 18 and t.link(0, 1)["bandwidth_bytes_per_s"] == 10e9


@pytest.mark.parametrize("doc,msg", [
    ({"nodes": ["a"], "links": [], "colour": 1}, "unknown key 'colour'"),
    ({"nodes": ["a", "b"], "links": [["a", "z"]]}, "'z' is not a declared"),
    ({"nodes": ["a", "b"], "links": [{"a": "a", "b": "b", "bandwidth_GBps": 0}]}, "bandwidth_GBps must be positive"),
    ({"nodes": ["a", "b"], "links": [{"a": "a", "b": "b", "speed": 1}]}, "unknown link key 'speed'"),
    ({"schema": 2, "nodes": ["a"], "links": []}, "unsupported schema"),
    ({"nodes": ["a", "b"], "links": [["a", "b"], ["b", "a"]]}, "link b-a is listed twice"),
    ({"builder": "hypercube", "nodes": 4}, "unknown topology 'hypercube'"),
])
def test_yaml_errors_name_the_problem(doc, msg):
    with pytest.raises(ConfigError, match=msg):
        topology_from_dict(doc)


def test_participants_checks():
    t = topology_from_dict({"nodes": ["a", "b", "c"], "links": [["a", "b"]]}, "split.yaml")
    assert t.participants(["a", "b"]) == ["a", "b"]
    with pytest.raises(ConfigError, match="does not connect nodes 'a' and 'c'"):
        t.participants(None)
    with pytest.raises(ConfigError, match="node 'x' is not in topology"):
        t.participants(["a", "x"])
    with pytest.raises(ConfigError, match="has 3 accelerators, asked for 4"):
        t.participants(4)
    with pytest.raises(ConfigError, match="does not connect"):
        t.route("a", "c")


@pytest.mark.parametrize("name,kwargs,msg", [
    ("ring", {"bandwidth_bytes_per_s": 0}, "bandwidth_bytes_per_s must be positive"),
    ("ring", {"latency_s": -1}, "latency_s must be non-negative"),
    ("torus2d", {"dims": (3, 3)}, "hold 9 nodes"),
    ("two_level", {"local_size": 3}, "not a multiple of local_size"),
    ("fat_tree", {"k": 3}, "k must be even"),
])
def test_builder_errors(name, kwargs, msg):
    with pytest.raises(ConfigError, match=msg):
        build_topology(name, 8, **kwargs)


def test_half_duplex_shares_one_resource():
    g = build_topology("ring", 4).graph
    from distsim.topology import Topology
    half = Topology("half", g, duplex=False)
    assert half.link_key(1, 0) == half.link_key(0, 1)
    assert len(half.directed_links()) == 4 and len(build_topology("ring", 4).directed_links()) == 8


def test_balanced_torus_dims():
    from distsim.topologies.torus import balanced_dims
    assert balanced_dims(65536, 2) == (256, 256)
    assert math.prod(balanced_dims(60, 3)) == 60


@settings(max_examples=30, deadline=None)
@given(edges=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7), st.floats(0.5, 500), st.floats(0, 50)),
                      min_size=1, max_size=20))
def test_yaml_links_convert_units_once(edges):
    unique = {}
    for a, b, g, u in edges:
        if a != b:
            unique.setdefault(frozenset((a, b)), (a, b, g, u))
    edges = list(unique.values())
    if not edges:
        return
    nodes = sorted({e[0] for e in edges} | {e[1] for e in edges})
    doc = {"nodes": [f"n{i}" for i in nodes],
           "links": [{"a": f"n{a}", "b": f"n{b}", "bandwidth_GBps": g, "latency_us": u} for a, b, g, u in edges]}
    t = topology_from_dict(doc)
    last = {frozenset((a, b)): (g, u) for a, b, g, u in edges}
    assert t.graph.number_of_edges() == len(last)
    for pair, (g, u) in last.items():
        a, b = sorted(pair)
        link = t.link(f"n{a}", f"n{b}")
        assert link["bandwidth_bytes_per_s"] == pytest.approx(g * 1e9)
        assert link["latency_s"] == pytest.approx(u * 1e-6)
