"""Single switch (star): every accelerator has one link to a non-blocking switch."""

from __future__ import annotations

import networkx as nx

from distsim.errors import require_positive_int
from distsim.topology import (DEFAULT_BANDWIDTH_BYTES_PER_S, DEFAULT_LATENCY_S, TOPOLOGIES, Topology, add_link,
                              check_link_params)


@TOPOLOGIES.register("switch")
def switch(nodes: int, *, bandwidth_bytes_per_s: float = DEFAULT_BANDWIDTH_BYTES_PER_S,
           latency_s: float = DEFAULT_LATENCY_S) -> Topology:
    """Accelerators ``0..nodes-1`` each linked to switch ``"sw"``.

    A transfer between two accelerators crosses two links (latency ``2 *
    latency_s``); the switch itself adds no contention beyond its ports.

    Examples
    --------
    >>> switch(4).route(0, 3)
    (0, 'sw', 3)
    """
    n = require_positive_int("nodes", nodes)
    bw, lat = check_link_params(bandwidth_bytes_per_s, latency_s)
    g = nx.Graph()
    g.add_nodes_from(range(n), kind="accelerator")
    g.add_node("sw", kind="switch")
    for i in range(n):
        add_link(g, i, "sw", bw, lat)
    return Topology(f"switch{n}", g)
