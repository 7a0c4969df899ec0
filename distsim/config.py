"""What-if files: a YAML scenario <-> frozen dataclasses, strict and versioned (``schema: 1``).

A scenario names a workload ("what"), an accelerator and its links ("where")
and either plans to evaluate or a search to run ("how")::

    schema: 1
    workload: {name: wordlm, preset: case-study, set: {hidden: 8192}}
    # or  workload: {file: my_model.py, set: {...}}   (your own model; name: picks one if it has several)
    device: paper-v100          # a built-in name, or a device YAML file (relative to this file)
    hardware: {preset: paper-2019, link_GBps: 56, latency_us: 75, memory_GiB: 32}
    # or  hardware: {preset: dgx-a100}
    # or  hardware: {topology: {kind: two_level, local_size: 8, bandwidth_GBps: 300, latency_us: 1,
    #                           inter_bandwidth_GBps: 25, inter_latency_us: 2.5}}
    # or  hardware: {topology: my_cluster.yaml, placement: [gpu0, gpu1, ...]}
    dataset: wordlm-target      # optional: what an epoch is; or {samples: 60000, name: my-data}
    plan: {data_parallel: 512, stages: [[embedding], [lstm0], [lstm1], [output, step]], embedding_shards: 3}
    # or  plans: [{...}, {...}]   (rows of one table)
    # or  search: {data_parallel: [64, 128, 256], target_days: 7}

``hardware`` (all keys optional) starts from a preset (default ``paper-2019``;
see :mod:`distsim.hardware`); ``link_GBps`` and ``latency_us`` set the links of
the plan-shaped torus, ``topology`` replaces the interconnect: a registered
builder's name or a mapping ``{kind: NAME, nodes: N, options...}`` (sized to
the plan unless ``nodes`` is given), or a topology YAML file.

Units are human in the file and converted once, here: ``link_GBps`` and
``*_GBps`` options in GB/s (1e9 bytes/s), ``latency_us`` and ``*_us`` options in
microseconds, ``memory_GiB`` in GiB (2**30 bytes, as ``memory_GiB`` in
``devices.yaml``) or ``memory_GB`` in GB (1e9 bytes).  Unknown keys are rejected with the accepted ones listed; every
error is one line naming the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import units
from .datasets import Dataset, user_dataset
from .device import Device, get_device
from .errors import ConfigError, require_in_range, require_positive, require_positive_int
from .files import load_yaml
from .graph import Graph
from .hardware import Hardware, TopologySpec, get_hardware, topology_spec
from .topology import Topology, _si_options, load_topology
from .plan import Plan
from .search import DEFAULT_DATA_PARALLEL, SearchOptions
from .topology import MAX_TOPOLOGY_NODES
from .workload import configure_workload, workload_from_file

SCHEMA_VERSION = 1
TOP_KEYS = ("schema", "workload", "device", "hardware", "dataset", "plan", "plans", "search")
WORKLOAD_KEYS = ("name", "file", "preset", "set")
DATASET_KEYS = ("samples", "name")
HARDWARE_KEYS = ("preset", "link_GBps", "latency_us", "memory_GiB", "memory_GB", "cost_model", "topology",
                 "placement")
SEARCH_KEYS = ("data_parallel", "target_days", "max_accelerators", *SearchOptions.field_names())


def _check_keys(where: str, data, accepted) -> dict:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {data!r}")
    unknown = sorted(str(k) for k in set(data) - set(accepted))
    if unknown:
        raise ConfigError(f"unknown {where} key {unknown[0]!r}; accepted: {', '.join(accepted)}")
    return data


def build_hardware(device: Device | str | None = None, *, preset: str | None = None, link_GBps: float | None = None,
                   latency_us: float | None = None, memory_GiB: float | None = None, memory_GB: float | None = None,
                   cost_model: str | None = None, topology=None, placement=None, base_dir: str | Path = ".",
                   prefix: str = "") -> Hardware:
    """A :class:`Hardware` from human units (the one place they are converted); ``None`` keeps the preset's.

    ``topology`` is a registered builder name, a topology YAML file path
    (relative to ``base_dir``), a mapping ``{kind, nodes, options in human
    units}`` or ``{file: PATH}``.  ``prefix`` is put before field names in
    errors (``"--"`` for the command line, ``"hardware "`` in files).
    """
    def label(key: str) -> str:  # a file's key, or its command-line flag
        return prefix + (key.replace("_", "-") if prefix == "--" else key)

    if memory_GiB is not None and memory_GB is not None:
        raise ConfigError(f"give {label('memory_GiB')} or {label('memory_GB')}, not both")
    if preset is not None and not isinstance(preset, str):
        raise ConfigError(f"{label('preset')} must be a hardware preset name, got {preset!r}")
    kwargs: dict = {}
    if device is not None:
        kwargs["device"] = get_device(device) if isinstance(device, str) else device
    if link_GBps is not None:
        kwargs["link_bandwidth_bytes_per_s"] = require_in_range(label("link_GBps"), link_GBps, 1e-6, 1e6, "GB/s") * units.GB
    if latency_us is not None:
        kwargs["link_latency_s"] = require_in_range(label("latency_us"), latency_us, 1e-6, 1e9, "us",
                                                    allow_zero=True) * units.US
    if memory_GiB is not None:
        kwargs["memory_bytes"] = require_in_range(label("memory_GiB"), memory_GiB, 1e-6, 1e9, "GiB") * units.GiB
    if memory_GB is not None:
        kwargs["memory_bytes"] = require_in_range(label("memory_GB"), memory_GB, 1e-6, 1e9, "GB") * units.GB
    if cost_model is not None:
        kwargs["cost_model"] = cost_model
    if topology is not None:
        if link_GBps is not None or latency_us is not None:
            raise ConfigError(f"{label('link_GBps')} and {label('latency_us')} set the plan-shaped torus; with "
                              f"{label('topology')} give the links in the topology")
        kwargs["topology"] = topology_input(topology, base_dir=base_dir, where=label("topology"))
    if placement is not None:
        if not isinstance(placement, (list, tuple)) or not placement:
            raise ConfigError(f"{label('placement')} must list the topology node of every plan rank, got {placement!r}")
        kwargs["placement"] = tuple(placement)
    if preset is None and topology is not None:
        kwargs["name"] = "custom"
    return get_hardware(preset or "paper-2019", **kwargs)


def topology_input(value, *, base_dir: str | Path = ".", where: str = "topology") -> Topology | TopologySpec:
    """A topology from a file path, a builder name or a ``{kind, nodes, ...}`` / ``{file}`` mapping."""
    if isinstance(value, str):
        path = Path(value) if Path(value).is_absolute() else Path(base_dir) / value
        if value.endswith((".yaml", ".yml")) or path.is_file():
            return load_topology(path)
        return topology_spec(value)
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a builder name, a file path or a mapping with 'kind' or 'file', "
                          f"got {value!r}")
    if "file" in value:
        if set(value) != {"file"}:
            raise ConfigError(f"{where}: 'file' takes no other keys")
        return topology_input(str(value["file"]), base_dir=base_dir, where=where)
    if "kind" not in value:
        raise ConfigError(f"{where} needs 'kind' (a topology builder) or 'file'")
    options = dict(value)
    kind = options.pop("kind")
    nodes = options.pop("nodes", None)
    if nodes is not None:
        nodes = require_positive_int(f"{where} nodes", nodes)
    if not isinstance(kind, str):
        raise ConfigError(f"{where} kind must be a topology builder name, got {kind!r}")
    spec = topology_spec(kind, nodes, **_si_options(where, options))
    spec.build(1)  # fail now, not mid-search, on a bad option
    return spec


@dataclass(frozen=True, kw_only=True)
class WorkloadSpec:
    """A workload by name (or a user's workload ``file``), an optional preset and option overrides (``set``)."""

    name: str | None = None
    preset: str | None = None
    options: dict = field(default_factory=dict, hash=False)
    file: str | None = None

    def __post_init__(self):
        if self.file is not None and (not isinstance(self.file, str) or not self.file):
            raise ConfigError(f"workload file must be a path to a Python file, got {self.file!r}")
        if (self.file is None or self.name is not None) and (not isinstance(self.name, str) or not self.name):
            raise ConfigError(f"workload name must be a string, got {self.name!r}")
        if self.preset is not None and not isinstance(self.preset, str):
            raise ConfigError(f"workload preset must be a string, got {self.preset!r}")
        if not isinstance(self.options, dict):
            raise ConfigError(f"workload set must be a mapping of option: value, got {self.options!r}")

    def build(self) -> Graph:
        name = self.name if self.file is None else workload_from_file(self.file, self.name)
        return configure_workload(name, preset=self.preset, options=self.options)


@dataclass(frozen=True, kw_only=True)
class SearchSpec:
    """The arguments of :func:`distsim.search.search_plans` from a file's ``search:`` section."""

    data_parallel: tuple[int, ...] = DEFAULT_DATA_PARALLEL
    target_days: float | None = None
    max_accelerators: int | None = None
    options: SearchOptions = field(default_factory=SearchOptions)

    def __post_init__(self):
        dp = self.data_parallel
        if isinstance(dp, (list, tuple)):
            if not dp:
                raise ConfigError("search data_parallel must list at least one degree")
            dp = tuple(require_positive_int("search data_parallel entry", d) for d in dp)
        else:
            dp = (require_positive_int("search data_parallel", dp),)
        if max(dp) > MAX_TOPOLOGY_NODES:
            raise ConfigError(f"search data_parallel {max(dp)} is more than {MAX_TOPOLOGY_NODES} (the limit)")
        object.__setattr__(self, "data_parallel", dp)
        if self.target_days is not None:
            object.__setattr__(self, "target_days", require_positive("search target_days", self.target_days))
        if self.max_accelerators is not None:
            require_positive_int("search max_accelerators", self.max_accelerators)

    @classmethod
    def from_dict(cls, data) -> "SearchSpec":
        data = dict(_check_keys("search", data if data is not None else {}, SEARCH_KEYS))
        top = {k: data.pop(k) for k in ("data_parallel", "target_days", "max_accelerators") if k in data}
        return cls(**top, options=SearchOptions(**data))


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A what-if: workload, hardware, dataset and either plans (``single``: one ``plan:``) or a search."""

    workload: WorkloadSpec
    hardware: Hardware
    dataset: str | Dataset | None = None
    plans: tuple[Plan, ...] = ()
    single: bool = False
    search: SearchSpec | None = None
    source: str = "scenario"

    def __post_init__(self):
        if bool(self.plans) == (self.search is not None):
            raise ConfigError("a scenario needs exactly one of plan, plans or search")

    @property
    def name(self) -> str:
        """The file's stem (used for output file names)."""
        return Path(self.source).stem


def scenario_from_dict(data, *, base_dir: str | Path = ".", source: str = "scenario") -> Scenario:
    """A :class:`Scenario` from parsed YAML; device file paths are relative to ``base_dir``."""
    data = _check_keys("top-level", data, TOP_KEYS)
    if "schema" not in data:
        raise ConfigError(f"missing key 'schema' (this format is schema: {SCHEMA_VERSION})")
    if data["schema"] != SCHEMA_VERSION or isinstance(data["schema"], bool):
        raise ConfigError(f"unsupported schema {data['schema']!r}; accepted: {SCHEMA_VERSION}")
    if "workload" not in data:
        raise ConfigError("missing key 'workload' (e.g. workload: {name: wordlm, preset: case-study})")
    wl = data["workload"]
    wl = {"name": wl} if isinstance(wl, str) else _check_keys("workload", wl, WORKLOAD_KEYS)
    if "name" not in wl and "file" not in wl:
        raise ConfigError("workload needs a name or a file, e.g. workload: {name: wordlm} or {file: my_model.py}")
    workload_file = wl.get("file")
    if isinstance(workload_file, str) and not Path(workload_file).is_absolute():
        workload_file = str(Path(base_dir) / workload_file)
    workload = WorkloadSpec(name=wl.get("name"), preset=wl.get("preset"), options=wl.get("set") or {},
                            file=workload_file)

    device_name = data.get("device")
    if device_name is not None and not isinstance(device_name, str):
        raise ConfigError(f"device must be a device name or a YAML file path, got {device_name!r}")
    if device_name and device_name.endswith((".yaml", ".yml")) and not Path(device_name).is_absolute():
        device_name = str(Path(base_dir) / device_name)
    hardware_keys = _check_keys("hardware", data.get("hardware") or {}, HARDWARE_KEYS)
    hardware = build_hardware(device_name, prefix="hardware ", base_dir=base_dir, **hardware_keys)

    dataset = data.get("dataset")
    if isinstance(dataset, dict):
        ds = _check_keys("dataset", dataset, DATASET_KEYS)
        if "samples" not in ds:
            raise ConfigError("dataset needs samples, e.g. dataset: {samples: 60000, name: my-data}")
        dataset = user_dataset(ds["samples"], ds.get("name"), field="dataset samples")
    elif dataset is not None and not isinstance(dataset, str):
        raise ConfigError(f"dataset must be a data set name or {{samples: N, name: ...}}, got {dataset!r}")

    given = [k for k in ("plan", "plans", "search") if k in data]
    if len(given) != 1:
        raise ConfigError("a scenario needs exactly one of plan, plans or search"
                          + (f"; got {', '.join(given)}" if given else ""))
    kind = given[0]
    plans: tuple[Plan, ...] = ()
    search = None
    if kind == "plan":
        plans = (_plan("plan", data["plan"]),)
    elif kind == "plans":
        if not isinstance(data["plans"], list) or not data["plans"]:
            raise ConfigError(f"plans must be a non-empty list of plans, got {data['plans']!r}")
        plans = tuple(_plan(f"plans[{i}]", p) for i, p in enumerate(data["plans"]))
    else:
        search = SearchSpec.from_dict(data["search"])
    return Scenario(workload=workload, hardware=hardware, dataset=dataset, plans=plans, single=kind == "plan",
                    search=search, source=source)


def _plan(where: str, data) -> Plan:
    try:
        return Plan.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file; every problem is a one-line :class:`ConfigError` starting with the file name."""
    path = Path(path)
    data = load_yaml(path, "scenario file")  # bytes, UTF-8, safe YAML with size guards
    try:
        return scenario_from_dict(data, base_dir=path.parent, source=str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
