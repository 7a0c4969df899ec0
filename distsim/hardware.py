"""Where a plan runs: one accelerator type, a topology of links and the placement of plan ranks.

A :class:`Hardware` is the "where" of an evaluation (the "what" is a graph,
the "how" a :class:`~distsim.plan.Plan`).  Its topology is one of

- ``None``: a *plan-shaped torus*, a ``data_parallel x stages`` 2-D torus of
  identical links (``link_bandwidth_bytes_per_s``, ``link_latency_s``) built
  for each plan, so that each stage's data-parallel ring and each worker's
  chain of stages use direct links (the paper's system, preset ``paper-2019``);
- a :class:`TopologySpec`: a registered builder (``two_level``, ``fat_tree``,
  ...) and its options, built with as many accelerators as the plan needs (in
  whole servers of ``local_size``) unless the spec fixes ``nodes``;
- a :class:`~distsim.topology.Topology`: a fixed cluster (e.g. from a YAML file).

Placement
    Plan rank ``r = w * stages + s`` (worker ``w``'s stage ``s``) runs on the
    topology's ``r``-th accelerator (its ``endpoints`` order) unless
    ``placement`` lists the node of every rank.  With builders that number
    accelerators server by server (``two_level``, ``dgx``), a worker's
    stages are neighbours (the same server while they fit in one) and each
    stage's data-parallel ring visits the servers in order.

Presets (:data:`HARDWARE`, ``get_hardware(name)``): ``paper-2019`` (Table 4
of Hestness et al. 2019: the V100-like accelerator, 56 GB/s links, the fitted
:data:`HOP_LATENCY_S`), ``dgx-a100`` and ``dgx-h100`` (servers of 8 GPUs on
NVSwitch, InfiniBand between servers; links and sources below).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Hashable

from . import units
from .device import Device, get_device
from .errors import ConfigError, require_positive
from .costmodels import DEFAULT_COST_MODEL
from .registry import Registry
from .topology import DEFAULT_BANDWIDTH_BYTES_PER_S, DEFAULT_LATENCY_S, Topology, build_topology

#: Per-hop latency of the paper's links (seconds), a calibrated constant.  The paper
#: gives none; it was fitted once, to the utilization drop between Table 5's two
#: data-parallel rows (512 -> 1024 workers, 38% -> 34%), and is used unchanged by
#: every experiment (``docs/reproduction.md`` says what it then predicts).
HOP_LATENCY_S = 75e-6
#: Link bandwidth of the paper's system (Table 4): 56 GB/s.
LINK_BANDWIDTH_BYTES_PER_S = DEFAULT_BANDWIDTH_BYTES_PER_S



@dataclass(frozen=True)
class TopologySpec:
    """A registered topology builder and its options (SI units), sized to the plan unless ``nodes`` is given."""

    kind: str
    options: tuple = ()  # sorted (name, value) pairs
    nodes: int | None = None

    def build(self, accelerators: int) -> Topology:
        """The topology for a plan of ``accelerators``: ``nodes`` if given, else the plan's count rounded
        up to whole servers (a multiple of the ``local_size`` option, where the builder has one)."""
        if self.nodes is not None:
            return _build(self.kind, self.nodes, self.options)
        granule = int(dict(self.options).get("local_size", 1))
        return _build(self.kind, -(-accelerators // granule) * granule, self.options)

    def describe(self) -> str:
        opts = dict(self.options)
        parts = [self.kind + (f" of {self.nodes}" if self.nodes else "")]
        options = ", ".join(f"{_short(key)} {_human(key, value)}" for key, value in opts.items())
        return parts[0] + (f" ({options})" if options else "")


@lru_cache(maxsize=64)
def _build(kind: str, nodes: int, options: tuple) -> Topology:
    return build_topology(kind, nodes, **dict(options))


def _short(key: str) -> str:
    return key.removesuffix("_bytes_per_s").removesuffix("_s") if key.endswith(("_bytes_per_s", "latency_s")) else key


def _human(key: str, value) -> str:
    if key.endswith("bandwidth_bytes_per_s"):
        return f"{value / units.GB:g} GB/s"
    if key.endswith("latency_s"):
        return f"{value / units.US:g} us"
    return str(value)


def topology_spec(kind: str, nodes: int | None = None, **options) -> TopologySpec:
    """A :class:`TopologySpec`; ``kind`` must be a registered builder."""
    from .topology import TOPOLOGIES

    if kind not in TOPOLOGIES:
        raise ConfigError(f"unknown topology {kind!r}; accepted: {', '.join(TOPOLOGIES.names())}")
    return TopologySpec(kind=kind, options=tuple(sorted(options.items())), nodes=nodes)


@dataclass(frozen=True, kw_only=True)
class Hardware:
    """An accelerator type, its interconnect and the placement of plan ranks (see module doc).

    Parameters
    ----------
    device : Device
        Every accelerator's spec.
    topology : Topology, TopologySpec or None
        The interconnect; None: a plan-shaped 2-D torus of ``link_*`` links.
    link_bandwidth_bytes_per_s, link_latency_s : float
        Links of the plan-shaped torus (bytes/s, seconds per hop).
    memory_bytes : float, optional
        Capacity each accelerator offers a plan (default: the device's memory).
    cost_model : str
        How op times are computed (a name in :data:`distsim.costmodels.COST_MODELS`).
    placement : tuple, optional
        Topology node of each plan rank ``w * stages + s``.
    name : str
        Shown in reports.
    """

    device: Device
    topology: Topology | TopologySpec | None = None
    link_bandwidth_bytes_per_s: float = DEFAULT_BANDWIDTH_BYTES_PER_S
    link_latency_s: float = DEFAULT_LATENCY_S
    memory_bytes: float | None = None
    cost_model: str = DEFAULT_COST_MODEL
    placement: tuple[Hashable, ...] | None = None
    name: str = "custom"

    def __post_init__(self):
        from .costmodels import COST_MODELS

        if not isinstance(self.device, Device):
            raise ConfigError(f"hardware device must be a Device, got {self.device!r}")
        require_positive("link_bandwidth_bytes_per_s", self.link_bandwidth_bytes_per_s)
        require_positive("link_latency_s", self.link_latency_s, allow_zero=True)
        if self.memory_bytes is not None:
            require_positive("memory_bytes", self.memory_bytes)
        COST_MODELS.get(self.cost_model)  # one line naming the accepted models if unknown
        if self.topology is not None and not isinstance(self.topology, (Topology, TopologySpec)):
            raise ConfigError(f"topology must be a Topology or a TopologySpec, got {self.topology!r}")
        if self.placement is not None:
            placement = tuple(self.placement)
            if len(set(placement)) != len(placement):
                raise ConfigError("placement lists a node twice")
            if isinstance(self.topology, Topology):
                for n in placement:
                    if n not in self.topology.graph or self.topology.graph.nodes[n]["kind"] != "accelerator":
                        raise ConfigError(f"placement names {n!r}, which is not an accelerator of "
                                          f"topology {self.topology.name!r}")
            object.__setattr__(self, "placement", placement)

    @property
    def capacity_bytes(self) -> float:
        return self.memory_bytes if self.memory_bytes is not None else self.device.memory_bytes

    def topology_for(self, data_parallel: int, stages: int) -> Topology | None:
        """The interconnect a plan of ``data_parallel x stages`` accelerators runs on (None for one)."""
        n = data_parallel * stages
        if isinstance(self.topology, Topology):
            topo = self.topology
        elif isinstance(self.topology, TopologySpec):
            if n == 1 and self.topology.nodes is None:
                return None
            topo = self.topology.build(n)
        else:
            if n == 1:
                return None
            topo = _build("torus2d", n, (("bandwidth_bytes_per_s", self.link_bandwidth_bytes_per_s),
                                         ("dims", (data_parallel, stages)), ("latency_s", self.link_latency_s)))
        if len(topo.endpoints) < n:
            raise ConfigError(f"the plan needs {n} accelerators; topology {topo.name!r} has {len(topo.endpoints)}")
        return topo

    def placement_for(self, data_parallel: int, stages: int, topology: Topology | None) -> list:
        """Topology node of each plan rank ``w * stages + s``."""
        n = data_parallel * stages
        if topology is None:
            return [0]
        if self.placement is None:
            return list(topology.endpoints[:n])
        if len(self.placement) < n:
            raise ConfigError(f"placement lists {len(self.placement)} nodes; the plan has {n} ranks")
        for node in self.placement[:n]:
            if node not in topology.graph:
                raise ConfigError(f"placement names {node!r}, which is not in topology {topology.name!r}")
        return list(self.placement[:n])

    def describe(self) -> str:
        """One line: the device, the links and latency used (what every report states)."""
        if self.topology is None:
            links = (f"plan-shaped 2-D torus, {self.link_bandwidth_bytes_per_s / units.GB:g} GB/s links, "
                     f"{self.link_latency_s / units.US:g} us per hop")
        elif isinstance(self.topology, TopologySpec):
            links = self.topology.describe()
        else:
            links = describe_links(self.topology)
        memory = f"{units.to_gib(self.capacity_bytes):g} GiB"
        return f"{self.name}: {self.device.name} ({memory}), {links}, cost model {self.cost_model}"

    def with_changes(self, **changes) -> "Hardware":
        return replace(self, **changes)


def describe_links(topology: Topology) -> str:
    """The distinct link kinds of a topology, e.g. ``two_level2x8: 56 GB/s 1 us x56, 12.5 GB/s 5 us x16``."""
    kinds: dict[tuple[float, float], int] = {}
    for _, _, d in topology.graph.edges(data=True):
        key = (d["bandwidth_bytes_per_s"], d["latency_s"])
        kinds[key] = kinds.get(key, 0) + 1
    text = ", ".join(f"{bw / units.GB:g} GB/s {lat / units.US:g} us x{count}"
                     for (bw, lat), count in sorted(kinds.items(), reverse=True))
    return f"{topology.name} ({text})"


#: Hardware presets: name -> function(device=None, **overrides) -> Hardware.
HARDWARE: Registry = Registry("hardware preset")


@HARDWARE.register("paper-2019")
def paper_2019(device: str | Device = "paper-v100", **overrides) -> Hardware:
    """Table 4 of Hestness et al. (PPoPP 2019): the accelerator, 56 GB/s links, :data:`HOP_LATENCY_S` per hop,
    on a plan-shaped 2-D torus."""
    dev = get_device(device) if isinstance(device, str) else device
    fields_ = dict(device=dev, link_bandwidth_bytes_per_s=LINK_BANDWIDTH_BYTES_PER_S, link_latency_s=HOP_LATENCY_S,
                   name="paper-2019")
    fields_.update(overrides)
    return Hardware(**fields_)


# DGX-like servers: 8 GPUs joined by NVSwitch, one InfiniBand NIC per GPU to a non-blocking network.
# NVSwitch is modelled as a full mesh of per-pair links at the GPU's NVLink bandwidth (one direction):
# exact for rings and pairwise exchanges, optimistic for all-to-all.  The network is one switch (a
# non-blocking fat-tree), so a transfer between servers crosses two NIC links.
#: DGX A100: NVLink 3, 600 GB/s per GPU in both directions together (300 GB/s each way);
#: 8 x 200 Gb/s HDR InfiniBand per server, one per GPU (25 GB/s).  NVIDIA DGX A100 datasheet.
DGX_A100_LINKS = dict(local_size=8, bandwidth_bytes_per_s=300e9, inter_bandwidth_bytes_per_s=200e9 / 8)
#: DGX H100: NVLink 4, 900 GB/s per GPU in both directions together (450 GB/s each way);
#: 8 x 400 Gb/s NDR InfiniBand per server (50 GB/s).  NVIDIA DGX H100 datasheet.
DGX_H100_LINKS = dict(local_size=8, bandwidth_bytes_per_s=450e9, inter_bandwidth_bytes_per_s=400e9 / 8)
#: Per-link latencies of the DGX presets: assumed typical values (not fitted): 1 us per NVLink
#: transfer, 2.5 us per NIC link (5 us GPU to GPU across the network).
DGX_LATENCIES = dict(latency_s=1e-6, inter_latency_s=2.5e-6)


def _dgx_preset(name: str, default_device: str, links: dict):
    def preset(device: str | Device = default_device, **overrides) -> Hardware:
        dev = get_device(device) if isinstance(device, str) else device
        fields_ = dict(device=dev, topology=topology_spec("two_level", **links, **DGX_LATENCIES), name=name)
        fields_.update(overrides)
        return Hardware(**fields_)

    preset.__doc__ = f"DGX-like servers of 8 x {default_device}, NVSwitch inside, InfiniBand between."
    return preset


HARDWARE.register("dgx-a100")(_dgx_preset("dgx-a100", "a100-sxm4-80gb", DGX_A100_LINKS))
HARDWARE.register("dgx-h100")(_dgx_preset("dgx-h100", "h100-sxm5-80gb", DGX_H100_LINKS))


def get_hardware(preset: str, **overrides) -> Hardware:
    """A hardware preset by name (``paper-2019``, ``dgx-a100``, ``dgx-h100``), fields overridden."""
    return HARDWARE.get(preset)(**overrides)


def paper_hardware(device: str | Device = "paper-v100", **overrides) -> Hardware:
    """The ``paper-2019`` preset (the reference study's system)."""
    return paper_2019(device, **overrides)
