"""2-D and 3-D tori (wrap-around meshes)."""

from __future__ import annotations

import itertools
import math

import networkx as nx

from distsim.errors import ConfigError, require_positive_int
from distsim.topology import (DEFAULT_BANDWIDTH_BYTES_PER_S, DEFAULT_LATENCY_S, TOPOLOGIES, Topology, add_link,
                              check_link_params)


def balanced_dims(nodes: int, ndim: int) -> tuple[int, ...]:
    """The most cube-like factorisation of ``nodes`` into ``ndim`` factors (largest first).

    >>> balanced_dims(16, 2), balanced_dims(12, 3), balanced_dims(7, 2)
    ((4, 4), (3, 2, 2), (7, 1))
    """
    if ndim == 1:
        return (nodes,)
    best = None
    for d in range(1, nodes + 1):
        if nodes % d == 0:
            rest = balanced_dims(nodes // d, ndim - 1)
            dims = tuple(sorted((d, *rest), reverse=True))
            score = (dims[0], dims)
            if best is None or score < best[0]:
                best = (score, dims)
    return best[1]


def _torus(name: str, nodes: int, dims, ndim: int, bw: float, lat: float) -> Topology:
    n = require_positive_int("nodes", nodes)
    bw, lat = check_link_params(bw, lat)
    dims = tuple(balanced_dims(n, ndim) if dims is None else dims)
    if len(dims) != ndim or any(not isinstance(d, int) or d < 1 for d in dims):
        raise ConfigError(f"dims must be {ndim} positive integers, got {dims!r}")
    if math.prod(dims) != n:
        raise ConfigError(f"dims {dims} hold {math.prod(dims)} nodes, not nodes={n}")
    g = nx.Graph()
    coords = list(itertools.product(*(range(d) for d in dims)))
    index = {c: i for i, c in enumerate(coords)}
    for i, c in enumerate(coords):
        g.add_node(i, kind="accelerator", coord=c)
    for c in coords:
        for axis, size in enumerate(dims):
            if size == 1:
                continue
            nb = list(c)
            nb[axis] = (c[axis] + 1) % size
            u, v = index[c], index[tuple(nb)]
            if not g.has_edge(u, v):  # size 2: the wrap link is the same link
                add_link(g, u, v, bw, lat)
    return Topology(f"{name}{'x'.join(map(str, dims))}", g)


@TOPOLOGIES.register("torus2d")
def torus2d(nodes: int, *, dims: tuple[int, int] | None = None,
            bandwidth_bytes_per_s: float = DEFAULT_BANDWIDTH_BYTES_PER_S, latency_s: float = DEFAULT_LATENCY_S) -> Topology:
    """A 2-D torus; node ``i`` has coordinate ``graph.nodes[i]["coord"]`` (row-major).

    Examples
    --------
    >>> t = torus2d(16)
    >>> t.graph.number_of_edges(), t.name
    (32, 'torus2d4x4')
    """
    return _torus("torus2d", nodes, dims, 2, bandwidth_bytes_per_s, latency_s)


@TOPOLOGIES.register("torus3d")
def torus3d(nodes: int, *, dims: tuple[int, int, int] | None = None,
            bandwidth_bytes_per_s: float = DEFAULT_BANDWIDTH_BYTES_PER_S, latency_s: float = DEFAULT_LATENCY_S) -> Topology:
    """A 3-D torus.

    Examples
    --------
    >>> torus3d(27).graph.number_of_edges()
    81
    """
    return _torus("torus3d", nodes, dims, 3, bandwidth_bytes_per_s, latency_s)
