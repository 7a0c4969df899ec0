"""Ring and fully connected topologies."""

from __future__ import annotations

import networkx as nx

from distsim.errors import require_positive_int
from distsim.topology import (DEFAULT_BANDWIDTH_BYTES_PER_S, DEFAULT_LATENCY_S, TOPOLOGIES, Topology, add_link,
                              check_link_params)


@TOPOLOGIES.register("ring")
def ring(nodes: int, *, bandwidth_bytes_per_s: float = DEFAULT_BANDWIDTH_BYTES_PER_S,
         latency_s: float = DEFAULT_LATENCY_S) -> Topology:
    """``nodes`` accelerators ``0..nodes-1``, node ``i`` linked to ``i+1 mod nodes``.

    Examples
    --------
    >>> ring(4).graph.number_of_edges()
    4
    """
    n = require_positive_int("nodes", nodes)
    bw, lat = check_link_params(bandwidth_bytes_per_s, latency_s)
    g = nx.Graph()
    g.add_nodes_from(range(n), kind="accelerator")
    if n == 2:
        add_link(g, 0, 1, bw, lat)
    elif n > 2:
        for i in range(n):
            add_link(g, i, (i + 1) % n, bw, lat)
    return Topology(f"ring{n}", g)


@TOPOLOGIES.register("fully_connected")
def fully_connected(nodes: int, *, bandwidth_bytes_per_s: float = DEFAULT_BANDWIDTH_BYTES_PER_S,
                    latency_s: float = DEFAULT_LATENCY_S) -> Topology:
    """Every pair of accelerators has its own link (n(n-1)/2 links).

    Examples
    --------
    >>> fully_connected(4).graph.number_of_edges()
    6
    """
    n = require_positive_int("nodes", nodes)
    bw, lat = check_link_params(bandwidth_bytes_per_s, latency_s)
    g = nx.Graph()
    g.add_nodes_from(range(n), kind="accelerator")
    for i in range(n):
        for j in range(i + 1, n):
            add_link(g, i, j, bw, lat)
    return Topology(f"fully_connected{n}", g)
