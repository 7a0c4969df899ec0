"""Topologies: which accelerators and switches exist and which links join them.

A :class:`Topology` wraps an undirected :class:`networkx.Graph`.  Nodes carry
``kind`` (``"accelerator"`` or ``"switch"``); edges carry
``bandwidth_bytes_per_s`` and ``latency_s`` (the alpha-beta parameters of one
link).  Links are full duplex by default: each direction is its own resource
(see :mod:`distsim.network`).  Routing takes a shortest path by hop count, the
one networkx's bidirectional breadth-first search (``nx.shortest_path``) picks,
so the choice is deterministic for a given graph (no ECMP: one path per pair).
:meth:`Topology.route` runs that same search but looks a frontier up in a
high-degree node's neighbours instead of scanning them all, so a route through
a switch of N ports costs O(1), not O(N).  A topology's graph must not change
after the :class:`Topology` is built (routes and components are cached).

Topologies come from pure builder functions registered in :data:`TOPOLOGIES`
(one module each in ``topologies/``) or from a YAML file (:func:`load_topology`)
whose keys use human units (``bandwidth_GBps``, ``latency_us``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Hashable, Iterable, Sequence

import networkx as nx

from . import units
from .errors import ConfigError, require_positive, require_positive_int, short
from .files import load_yaml
from .registry import Registry

#: Reference link bandwidth: 56 GB/s (PPoPP 2019, Table 4).
DEFAULT_BANDWIDTH_BYTES_PER_S = 56e9
#: Default per-hop latency (alpha): 1 microsecond.  The paper states none.
DEFAULT_LATENCY_S = 1e-6
#: Most accelerators a topology builder is asked for; a larger one is refused up front
#: (a networkx graph of this size takes about 1 GB and minutes to route).
MAX_TOPOLOGY_NODES = 1 << 17

TOPOLOGIES: Registry = Registry("topology", packages=["distsim.topologies"])

ACCELERATOR = "accelerator"
SWITCH = "switch"


class Topology:
    """An interconnect: accelerators, switches and alpha-beta links.

    Parameters
    ----------
    name : str
        Shown in messages and results.
    graph : networkx.Graph
        Undirected; every edge needs ``bandwidth_bytes_per_s`` (> 0) and
        ``latency_s`` (>= 0); a node's ``kind`` defaults to accelerator.
    duplex : bool
        Full duplex (default): the two directions of a link are independent
        resources.  Half duplex: both directions share one.

    Notes
    -----
    ``endpoints`` lists the accelerators in node insertion order; collectives
    rank their participants in that order unless given a list.
    """

    def __init__(self, name: str, graph: nx.Graph, *, duplex: bool = True):
        if graph.is_directed():
            raise ConfigError(f"topology {name}: graph must be undirected (links are duplex pairs)")
        self.name = name
        self.graph = graph
        self.duplex = bool(duplex)
        for u, v, data in graph.edges(data=True):
            for key, allow_zero in (("bandwidth_bytes_per_s", False), ("latency_s", True)):
                if key not in data:
                    raise ConfigError(f"topology {name}: link {u}-{v} lacks {key}")
                require_positive(f"topology {name}: link {u}-{v} {key}", data[key], allow_zero=allow_zero)
        for n, data in graph.nodes(data=True):
            data.setdefault("kind", ACCELERATOR)
            if data["kind"] not in (ACCELERATOR, SWITCH):
                raise ConfigError(f"topology {name}: node {n} kind {data['kind']!r}; accepted: accelerator, switch")
        self.endpoints: list[Hashable] = [n for n, d in graph.nodes(data=True) if d["kind"] == ACCELERATOR]
        self._index = {n: i for i, n in enumerate(graph.nodes)}
        self._path_params: dict[tuple, tuple[float, float]] = {}
        self._route_info: dict[tuple, tuple] = {}
        self._link_index: dict | None = None
        self._star_cache: dict[tuple, dict | None] = {}  # participants -> star_arrays
        self._adj = graph._adj  # the plain dict of dicts behind graph.adj (no view objects per lookup)
        self._neighbour_rank: dict = {}  # node -> {neighbour: position in adjacency order}
        self._component: dict | None = None  # node -> connected component number

    def __repr__(self) -> str:
        return (f"Topology({self.name!r}, accelerators={len(self.endpoints)}, "
                f"switches={self.graph.number_of_nodes() - len(self.endpoints)}, links={self.graph.number_of_edges()})")

    # ---- links ------------------------------------------------------------
    def link_key(self, u, v) -> tuple:
        """The resource a transfer from ``u`` to ``v`` occupies (one per direction if duplex)."""
        if self.duplex or self._index[u] < self._index[v]:
            return (u, v)
        return (v, u)

    def link_order(self, key: tuple) -> tuple[int, int]:
        """A total order of link resources (acquired in this order: no deadlock)."""
        return (self._index[key[0]], self._index[key[1]])

    def link(self, u, v) -> dict:
        return self.graph.edges[u, v]

    def directed_links(self) -> list[tuple]:
        """Every link resource key."""
        keys = []
        for u, v in self.graph.edges:
            keys.append(self.link_key(u, v))
            if self.duplex:
                keys.append((v, u))
        return keys

    def link_index(self) -> dict:
        """``{link resource key: number}``, numbering :meth:`directed_links` (computed once)."""
        if self._link_index is None:
            self._link_index = {key: i for i, key in enumerate(self.directed_links())}
        return self._link_index

    def star_arrays(self, nodes: Sequence) -> dict | None:
        """Per-node link arrays when every node in ``nodes`` has one link, all to the same hub.

        Then the route between two of them is ``(a, hub, b)`` (the only shortest
        path), and :func:`distsim.collectives.executor.symmetric_plan` checks whole
        steps with numpy.  Returns None otherwise, else numpy arrays indexed like
        ``nodes``: ``up_latency_s``, ``up_bandwidth``, ``up_id`` (link number of
        node->hub), ``down_latency_s``, ``down_bandwidth``, ``down_id`` (hub->node).
        """
        key = tuple(nodes)
        if key in self._star_cache:
            return self._star_cache[key]
        if len(self._star_cache) >= 8:  # a few participant lists at a time (e.g. a plan's groups)
            self._star_cache.pop(next(iter(self._star_cache)))
        arrays = self._star_cache[key] = self._star_arrays(key)
        return arrays

    def _star_arrays(self, nodes: tuple) -> dict | None:
        import numpy as np

        adj = self._adj
        if not nodes or any(len(adj.get(n, ())) != 1 for n in nodes):
            return None
        hubs = {next(iter(adj[n])) for n in nodes}
        if len(hubs) != 1:
            return None
        (hub,) = hubs
        index = self.link_index()
        edges = [adj[n][hub] for n in nodes]
        lat = np.array([e["latency_s"] for e in edges], dtype=float)
        bw = np.array([e["bandwidth_bytes_per_s"] for e in edges], dtype=float)
        return {"hub": hub, "up_latency_s": lat, "up_bandwidth": bw, "down_latency_s": lat, "down_bandwidth": bw,
                "up_id": np.array([index[self.link_key(n, hub)] for n in nodes], dtype=np.intp),
                "down_id": np.array([index[self.link_key(hub, n)] for n in nodes], dtype=np.intp)}

    # ---- routing ----------------------------------------------------------
    def route(self, src, dst) -> tuple:
        """Nodes of the shortest path (by hops) from ``src`` to ``dst``, both included.

        The path ``nx.shortest_path(graph, src, dst)`` returns (tested), cached per pair.
        """
        info = self._route_info.get((src, dst))
        return info[0] if info is not None else self.route_info(src, dst)[0]

    def _find_path(self, src, dst) -> tuple:
        if src == dst:
            raise ConfigError(f"topology {self.name}: a transfer from node {src!r} to itself")
        adj = self._adj
        for end in (src, dst):
            if end not in adj:
                raise ConfigError(f"topology {self.name!r}: node {end!r} is not in the graph")
        nbrs = adj[src]
        if dst in nbrs:
            return (src, dst)
        if len(nbrs) == 1:  # e.g. an accelerator on a switch: the search expands its one neighbour next
            (hop,) = nbrs
            if dst in adj[hop]:
                return (src, hop, dst)
        return self._bidirectional_path(src, dst)

    def _first_hit(self, v, other: dict):
        """The first neighbour of ``v`` (adjacency order) that is a key of ``other``, or None."""
        nbrs = self._adj[v]
        if len(nbrs) <= len(other):
            for w in nbrs:
                if w in other:
                    return w
            return None
        hits = [w for w in other if w in nbrs]
        if len(hits) <= 1:
            return hits[0] if hits else None
        rank = self._neighbour_rank.get(v)
        if rank is None:
            rank = self._neighbour_rank[v] = {w: i for i, w in enumerate(nbrs)}
        return min(hits, key=rank.__getitem__)

    def _bidirectional_path(self, source, target) -> tuple:
        """networkx's bidirectional BFS (same fringe order, same meeting node, same path).

        A level expansion first asks which neighbour of ``v`` meets the other
        search (:meth:`_first_hit`); only when none does is ``v``'s whole
        neighbourhood added to the fringe, as networkx does.
        """
        adj = self._adj
        pred = {source: None}
        succ = {target: None}
        forward, reverse = [source], [target]
        meet = None
        while forward and reverse and meet is None:
            if len(forward) <= len(reverse):
                level, forward, mine, other, fringe = forward, [], pred, succ, "f"
            else:
                level, reverse, mine, other, fringe = reverse, [], succ, pred, "r"
            grown = forward if fringe == "f" else reverse
            for v in level:
                hit = self._first_hit(v, other)
                if hit is not None:
                    if hit not in mine:
                        mine[hit] = v
                    meet = hit
                    break
                for w in adj[v]:
                    if w not in mine:
                        grown.append(w)
                        mine[w] = v
        if meet is None:
            raise ConfigError(f"topology {self.name!r} does not connect nodes {source!r} and {target!r}")
        path = []
        w = meet
        while w is not None:
            path.append(w)
            w = pred[w]
        path.reverse()
        w = succ[meet]
        while w is not None:
            path.append(w)
            w = succ[w]
        return tuple(path)

    def path_params(self, path: Sequence) -> tuple[float, float]:
        """``(latency_s, bandwidth_bytes_per_s)`` of a path: latencies add, the slowest link limits."""
        key = tuple(path)
        params = self._path_params.get(key)
        if params is None:
            adj = self._adj
            edges = [adj[u][v] for u, v in zip(key, key[1:])]
            params = (float(sum(e["latency_s"] for e in edges)), float(min(e["bandwidth_bytes_per_s"] for e in edges)))
            self._path_params[key] = params
        return params

    def route_info(self, src, dst) -> tuple[tuple, float, float, tuple, tuple]:
        """``(path, latency_s, bandwidth_bytes_per_s, link_keys, link_ids)`` of the route, cached per pair.

        ``link_keys`` are the link resources (:meth:`link_key`) of the path in path order,
        ``link_ids`` their numbers in :meth:`link_index`; latency and bandwidth are
        :meth:`path_params` of the path.
        """
        info = self._route_info.get((src, dst))
        if info is None:
            path = self._find_path(src, dst)
            adj = self._adj
            hops = tuple(zip(path, path[1:]))
            lat, bw = 0, None  # as path_params: latencies summed in path order, the slowest bandwidth
            for u, v in hops:
                edge = adj[u][v]
                lat += edge["latency_s"]
                if bw is None or edge["bandwidth_bytes_per_s"] < bw:
                    bw = edge["bandwidth_bytes_per_s"]
            keys = hops if self.duplex else tuple([self.link_key(u, v) for u, v in hops])
            index = self._link_index or self.link_index()
            info = (path, float(lat), float(bw), keys, tuple([index[k] for k in keys]))
            self._route_info[(src, dst)] = info
        return info

    def transfer_time_s(self, src, dst, nbytes: float) -> float:
        """Uncontended time of one transfer: sum of latencies + nbytes / slowest bandwidth."""
        info = self.route_info(src, dst)
        return info[1] + nbytes / info[2]

    # ---- participants -----------------------------------------------------
    def participants(self, nodes: int | Iterable | None = None) -> list:
        """Resolve ``nodes`` (a count, a list of node names, or None for all) and check them.

        Raises ConfigError naming a node the topology lacks, a count beyond its
        accelerators, or two participants it does not connect.
        """
        if nodes is None:
            chosen = list(self.endpoints)
        elif isinstance(nodes, int) and not isinstance(nodes, bool):
            n = require_positive_int("nodes", nodes)
            if n > len(self.endpoints):
                raise ConfigError(
                    f"nodes: topology {self.name!r} has {len(self.endpoints)} accelerators, asked for {n}")
            chosen = self.endpoints[:n]
        else:
            chosen = list(nodes)
            for n in chosen:
                if n not in self.graph:
                    raise ConfigError(f"node {n!r} is not in topology {self.name!r}")
            if len(set(chosen)) != len(chosen):
                raise ConfigError(f"participants of topology {self.name!r} repeat a node")
        if not chosen:
            raise ConfigError("nodes: need at least one participant")
        component = self.components()
        first = component[chosen[0]]
        for n in chosen:
            if component[n] != first:
                raise ConfigError(f"topology {self.name!r} does not connect nodes {chosen[0]!r} and {n!r}")
        return chosen

    def components(self) -> dict:
        """``{node: number of its connected component}`` (computed once)."""
        if self._component is None:
            self._component = {n: i for i, nodes in enumerate(nx.connected_components(self.graph)) for n in nodes}
        return self._component


def add_link(graph: nx.Graph, u, v, bandwidth_bytes_per_s: float, latency_s: float) -> None:
    """Add an alpha-beta link (SI units) to a builder's graph."""
    graph.add_edge(u, v, bandwidth_bytes_per_s=float(bandwidth_bytes_per_s), latency_s=float(latency_s))


def check_link_params(bandwidth_bytes_per_s: float, latency_s: float, prefix: str = "") -> tuple[float, float]:
    return (require_positive(f"{prefix}bandwidth_bytes_per_s", bandwidth_bytes_per_s),
            require_positive(f"{prefix}latency_s", latency_s, allow_zero=True))


def build_topology(name: str, nodes: int, **options) -> Topology:
    """A registered topology: ``build_topology("ring", 8, bandwidth_bytes_per_s=56e9)``."""
    if not isinstance(name, str):
        raise ConfigError(f"topology builder must be a name, got {short(name)}; accepted: {', '.join(TOPOLOGIES.names())}")
    builder = TOPOLOGIES.get(name)
    n = require_positive_int(f"topology {name}: nodes", nodes)
    if n > MAX_TOPOLOGY_NODES:
        raise ConfigError(f"topology {name}: {n} nodes is more than {MAX_TOPOLOGY_NODES} (the limit)")
    try:
        return builder(nodes, **options)
    except TypeError as exc:
        raise ConfigError(f"topology {name}: {exc}") from None


# ---- YAML ------------------------------------------------------------------
_FILE_KEYS = {"schema", "name", "builder", "nodes", "switches", "links", "defaults", "duplex", "options"}
_LINK_KEYS = {"a", "b", "bandwidth_GBps", "latency_us"}


def _name(node) -> str:
    """A node name for a message, cut short."""
    text = str(node) if isinstance(node, (str, int)) and not isinstance(node, bool) else short(node)
    return text if len(text) <= 60 else text[:48] + f"...({len(text)} chars)"


def _link_from_file(origin: str, entry, defaults: dict) -> tuple:
    if isinstance(entry, (list, tuple)) and len(entry) == 2:
        entry = {"a": entry[0], "b": entry[1]}
    if not isinstance(entry, dict):
        raise ConfigError(f"{origin}: a link is [a, b] or a mapping with keys a, b, bandwidth_GBps, latency_us; "
                          f"got {short(entry)}")
    unknown = set(entry) - _LINK_KEYS
    if unknown:
        raise ConfigError(f"{origin}: unknown link key {sorted(unknown)[0]!r}; accepted: {', '.join(sorted(_LINK_KEYS))}")
    if "a" not in entry or "b" not in entry:
        raise ConfigError(f"{origin}: a link needs both ends 'a' and 'b'")
    if entry["a"] == entry["b"]:
        raise ConfigError(f"{origin}: link {_name(entry['a'])}-{_name(entry['b'])} joins a node to itself")
    bw = require_positive(f"{origin}: bandwidth_GBps", entry.get("bandwidth_GBps", defaults["bandwidth_GBps"]))
    lat = require_positive(f"{origin}: latency_us", entry.get("latency_us", defaults["latency_us"]), allow_zero=True)
    return entry["a"], entry["b"], bw * units.GB, lat * units.US


def _si_options(origin: str, options) -> dict:
    """Builder options from a file: ``*_GBps`` -> ``*_bytes_per_s``, ``*_us`` -> ``*_s``."""
    if not isinstance(options, dict):
        raise ConfigError(f"{origin}: options must be a mapping, got {short(options)}")
    out = {}
    for key, value in options.items():
        if not isinstance(key, str):
            raise ConfigError(f"{origin}: option name {short(key)} must be a string")
        if key.endswith("_GBps"):
            out[key[: -len("_GBps")] + "_bytes_per_s"] = require_positive(f"{origin}: {key}", value) * units.GB
        elif key.endswith("_us"):
            out[key[: -len("_us")] + "_s"] = require_positive(f"{origin}: {key}", value, allow_zero=True) * units.US
        else:
            out[key] = value
    return out


def topology_from_dict(doc: dict, origin: str = "topology") -> Topology:
    """A topology from a parsed YAML document (human units; see docs/engine.md).

    Either ``builder: NAME`` with ``nodes`` (a count), optional
    ``bandwidth_GBps``/``latency_us`` under ``defaults`` and builder ``options``;
    or explicit ``nodes`` (accelerator names), ``switches`` and ``links``.
    """
    if not isinstance(doc, dict):
        raise ConfigError(f"{origin}: expected a mapping")
    unknown = set(doc) - _FILE_KEYS
    if unknown:
        raise ConfigError(f"{origin}: unknown key {sorted(unknown)[0]!r}; accepted: {', '.join(sorted(_FILE_KEYS))}")
    if doc.get("schema", 1) != 1 or isinstance(doc.get("schema"), bool):
        raise ConfigError(f"{origin}: unsupported schema {short(doc.get('schema'))}; accepted: 1")
    name = doc.get("name", Path(origin).stem)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{origin}: name must be a string, got {short(name)}")
    duplex = doc.get("duplex", True)
    if not isinstance(duplex, bool):
        raise ConfigError(f"{origin}: duplex must be true or false, got {short(duplex)}")
    defaults = {"bandwidth_GBps": DEFAULT_BANDWIDTH_BYTES_PER_S / units.GB, "latency_us": DEFAULT_LATENCY_S / units.US}
    raw_defaults = doc.get("defaults") or {}
    if not isinstance(raw_defaults, dict) or set(raw_defaults) - set(defaults):
        raise ConfigError(f"{origin}: defaults accepts only bandwidth_GBps, latency_us")
    defaults.update(raw_defaults)
    if "builder" in doc:
        options = _si_options(origin, doc.get("options") or {})
        options.setdefault("bandwidth_bytes_per_s", require_positive(f"{origin}: bandwidth_GBps", defaults["bandwidth_GBps"]) * units.GB)
        options.setdefault("latency_s", require_positive(f"{origin}: latency_us", defaults["latency_us"], allow_zero=True) * units.US)
        for key in ("switches", "links"):
            if key in doc:
                raise ConfigError(f"{origin}: {key!r} does not apply with 'builder' (the builder makes its own)")
        if "nodes" not in doc:
            raise ConfigError(f"{origin}: 'builder' needs 'nodes' (the number of accelerators)")
        topo = build_topology(doc["builder"], doc["nodes"], **options)
        topo.name = name
        topo.duplex = duplex
        return topo
    if "options" in doc:
        raise ConfigError(f"{origin}: 'options' applies only with 'builder'")
    nodes, switches, links = doc.get("nodes"), doc.get("switches", []), doc.get("links")
    if not isinstance(nodes, list) or not nodes:
        raise ConfigError(f"{origin}: 'nodes' must list the accelerators, got {short(nodes)}")
    if switches is None:
        switches = []
    if not isinstance(switches, list):
        raise ConfigError(f"{origin}: 'switches' must be a list of switch names, got {short(switches)}")
    if not isinstance(links, list):
        raise ConfigError(f"{origin}: 'links' must be a list, got {short(links)}")
    if len(nodes) + len(switches) > MAX_TOPOLOGY_NODES:
        raise ConfigError(f"{origin}: {len(nodes) + len(switches)} nodes is more than {MAX_TOPOLOGY_NODES} (the limit)")
    g = nx.Graph()
    for field_name, names, kind in (("nodes", nodes, ACCELERATOR), ("switches", switches, SWITCH)):
        for n in names:
            if isinstance(n, bool) or not isinstance(n, (str, int)):
                raise ConfigError(f"{origin}: {field_name} entry {short(n)} must be a name (string or integer)")
            if n in g:
                raise ConfigError(f"{origin}: node {short(n)} is declared twice")
            g.add_node(n, kind=kind)
    for entry in links:
        a, b, bw, lat = _link_from_file(origin, entry, defaults)
        for end in (a, b):
            if isinstance(end, bool) or not isinstance(end, (str, int)) or end not in g:
                raise ConfigError(f"{origin}: link end {short(end)} is not a declared node or switch")
        if g.has_edge(a, b):
            raise ConfigError(f"{origin}: link {_name(a)}-{_name(b)} is listed twice")
        add_link(g, a, b, bw, lat)
    return Topology(name, g, duplex=duplex)


def load_topology(path: str | Path) -> Topology:
    """A topology from a YAML file (read safely: see :mod:`distsim.files`)."""
    return topology_from_dict(load_yaml(path, "topology file"), str(path))


def get_topology(name_or_file: str, nodes: int, **options) -> Topology:
    """A builder by name (built for ``nodes`` accelerators) or a YAML file path."""
    if not isinstance(name_or_file, str) or not name_or_file:
        raise ConfigError(f"topology must be a name or a YAML file path, got {short(name_or_file)}")
    if name_or_file.endswith((".yaml", ".yml")) or Path(name_or_file).is_file():
        return load_topology(name_or_file)
    return build_topology(name_or_file, nodes, **options)
