"""Two-level: fast links inside a node of k accelerators, a slower network between nodes."""

from __future__ import annotations

import networkx as nx

from distsim.errors import ConfigError, require_positive_int
from distsim.topology import (DEFAULT_BANDWIDTH_BYTES_PER_S, DEFAULT_LATENCY_S, TOPOLOGIES, Topology, add_link,
                              check_link_params)

#: Default network link between nodes: 12.5 GB/s (a 100 Gb/s NIC), 5 us.
DEFAULT_INTER_BANDWIDTH_BYTES_PER_S = 12.5e9
DEFAULT_INTER_LATENCY_S = 5e-6


@TOPOLOGIES.register("two_level")
def two_level(nodes: int, *, local_size: int = 8,
              bandwidth_bytes_per_s: float = DEFAULT_BANDWIDTH_BYTES_PER_S, latency_s: float = DEFAULT_LATENCY_S,
              inter_bandwidth_bytes_per_s: float = DEFAULT_INTER_BANDWIDTH_BYTES_PER_S,
              inter_latency_s: float = DEFAULT_INTER_LATENCY_S) -> Topology:
    """``nodes`` accelerators in groups of ``local_size`` (one server each).

    Inside a group every pair has a fast link (``bandwidth_bytes_per_s``,
    ``latency_s``).  Every accelerator also has its own NIC link
    (``inter_*``) to one network switch ``"net"``, so a transfer between
    groups crosses two network links.  Accelerator ``i`` is in group
    ``i // local_size`` (node attribute ``group``).

    Examples
    --------
    >>> t = two_level(16, local_size=4)
    >>> t.route(0, 1), t.route(0, 4)
    ((0, 1), (0, 'net', 4))
    """
    n = require_positive_int("nodes", nodes)
    k = require_positive_int("local_size", local_size)
    if n % k:
        raise ConfigError(f"nodes={n} is not a multiple of local_size={k}")
    bw, lat = check_link_params(bandwidth_bytes_per_s, latency_s)
    ibw, ilat = check_link_params(inter_bandwidth_bytes_per_s, inter_latency_s, "inter_")
    g = nx.Graph()
    for i in range(n):
        g.add_node(i, kind="accelerator", group=i // k)
    if n > k:
        g.add_node("net", kind="switch")
    for i in range(n):
        base = (i // k) * k
        for j in range(i + 1, base + k):
            add_link(g, i, j, bw, lat)
        if n > k:
            add_link(g, i, "net", ibw, ilat)
    return Topology(f"two_level{n // k}x{k}", g)
