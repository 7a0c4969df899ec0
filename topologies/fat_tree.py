"""k-ary fat-tree (Al-Fares et al. 2008): k pods, k/2 edge and k/2 aggregation switches each."""

from __future__ import annotations

import networkx as nx

from distsim.errors import ConfigError, require_positive_int
from distsim.topology import (DEFAULT_BANDWIDTH_BYTES_PER_S, DEFAULT_LATENCY_S, TOPOLOGIES, Topology, add_link,
                              check_link_params)


@TOPOLOGIES.register("fat_tree")
def fat_tree(nodes: int, *, k: int | None = None, bandwidth_bytes_per_s: float = DEFAULT_BANDWIDTH_BYTES_PER_S,
             latency_s: float = DEFAULT_LATENCY_S) -> Topology:
    """A k-ary fat-tree holding ``nodes`` accelerators (at most k**3/4).

    ``k`` (even) defaults to the smallest that fits.  Each edge switch has
    k/2 hosts and links to the k/2 aggregation switches of its pod; each
    aggregation switch links to k/2 of the (k/2)**2 core switches.  All
    links have the same bandwidth, so the tree has full bisection; routing
    takes one shortest path per pair (no ECMP), which can overstate core
    contention.

    Examples
    --------
    >>> t = fat_tree(16)
    >>> len(t.endpoints), len(t.route(0, 15)) - 1
    (16, 6)
    """
    n = require_positive_int("nodes", nodes)
    if k is None:
        k = 2
        while k ** 3 // 4 < n:
            k += 2
    k = require_positive_int("k", k)
    if k % 2 or k ** 3 // 4 < n:
        raise ConfigError(f"k must be even with k**3/4 >= nodes={n}, got k={k}")
    bw, lat = check_link_params(bandwidth_bytes_per_s, latency_s)
    half = k // 2
    g = nx.Graph()
    g.add_nodes_from(range(n), kind="accelerator")
    for c in range(half * half):
        g.add_node(f"core{c}", kind="switch")
    host = 0
    for p in range(k):
        for a in range(half):
            agg = f"agg{p}.{a}"
            g.add_node(agg, kind="switch")
            for c in range(half):
                add_link(g, agg, f"core{a * half + c}", bw, lat)
        for e in range(half):
            edge = f"edge{p}.{e}"
            g.add_node(edge, kind="switch")
            for a in range(half):
                add_link(g, edge, f"agg{p}.{a}", bw, lat)
            for _ in range(half):
                if host < n:
                    add_link(g, host, edge, bw, lat)
                    host += 1
    return Topology(f"fat_tree_k{k}", g)
