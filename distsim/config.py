"""What-if files: a YAML scenario <-> frozen dataclasses, strict and versioned (``schema: 1``).

A scenario names a workload ("what"), an accelerator and its links ("where")
and either plans to evaluate or a search to run ("how")::

    schema: 1
    workload: {name: wordlm, preset: case-study, set: {hidden: 8192}}
    device: paper-v100          # a built-in name, or a device YAML file (relative to this file)
    system: {link_GBps: 56, hop_latency_us: 75, memory_GiB: 32}
    dataset: wordlm-target      # optional: what an epoch is
    plan: {data_parallel: 512, stages: [[embedding], [lstm0], [lstm1], [output, step]], embedding_shards: 3}
    # or  plans: [{...}, {...}]   (rows of one table)
    # or  search: {data_parallel: [64, 128, 256], target_days: 7}

Units are human in the file and converted once, here: ``link_GBps`` in GB/s
(1e9 bytes/s), ``hop_latency_us`` in microseconds, ``memory_GiB`` in GiB
(2**30 bytes, as ``memory_GiB`` in ``devices.yaml``) or ``memory_GB`` in GB
(1e9 bytes).  Unknown keys are rejected with the accepted ones listed; every
error is one line naming the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import units
from .device import Device, get_device
from .errors import ConfigError, require_in_range, require_positive, require_positive_int
from .evaluate import System
from .files import load_yaml
from .graph import Graph
from .plan import Plan
from .search import DEFAULT_DATA_PARALLEL, SearchOptions
from .topology import MAX_TOPOLOGY_NODES
from .workload import configure_workload

SCHEMA_VERSION = 1
TOP_KEYS = ("schema", "workload", "device", "system", "dataset", "plan", "plans", "search")
WORKLOAD_KEYS = ("name", "preset", "set")
SYSTEM_KEYS = ("link_GBps", "hop_latency_us", "memory_GiB", "memory_GB", "cost_mode")
SEARCH_KEYS = ("data_parallel", "target_days", "max_accelerators", *SearchOptions.field_names())


def _check_keys(where: str, data, accepted) -> dict:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {data!r}")
    unknown = sorted(str(k) for k in set(data) - set(accepted))
    if unknown:
        raise ConfigError(f"unknown {where} key {unknown[0]!r}; accepted: {', '.join(accepted)}")
    return data


def build_system(device: Device, *, link_GBps: float | None = None, hop_latency_us: float | None = None,
                 memory_GiB: float | None = None, memory_GB: float | None = None,
                 cost_mode: str | None = None, prefix: str = "") -> System:
    """A :class:`System` from human units (the one place they are converted); ``None`` keeps the default.

    ``prefix`` is put before field names in errors (``"--"`` for the command line).
    """
    if memory_GiB is not None and memory_GB is not None:
        raise ConfigError(f"give {prefix}memory_GiB or {prefix}memory_GB, not both")
    kwargs: dict = {}
    if link_GBps is not None:
        kwargs["link_bandwidth_bytes_per_s"] = require_in_range(f"{prefix}link_GBps", link_GBps, 1e-6, 1e6, "GB/s") * units.GB
    if hop_latency_us is not None:
        kwargs["hop_latency_s"] = require_in_range(f"{prefix}hop_latency_us", hop_latency_us, 1e-6, 1e9, "us",
                                                   allow_zero=True) * units.US
    if memory_GiB is not None:
        kwargs["memory_bytes"] = require_in_range(f"{prefix}memory_GiB", memory_GiB, 1e-6, 1e9, "GiB") * units.GiB
    if memory_GB is not None:
        kwargs["memory_bytes"] = require_in_range(f"{prefix}memory_GB", memory_GB, 1e-6, 1e9, "GB") * units.GB
    if cost_mode is not None:
        kwargs["cost_mode"] = cost_mode
    return System(device=device, **kwargs)


@dataclass(frozen=True, kw_only=True)
class WorkloadSpec:
    """A workload by name, an optional preset and option overrides (``set``)."""

    name: str
    preset: str | None = None
    options: dict = field(default_factory=dict, hash=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"workload name must be a string, got {self.name!r}")
        if self.preset is not None and not isinstance(self.preset, str):
            raise ConfigError(f"workload preset must be a string, got {self.preset!r}")
        if not isinstance(self.options, dict):
            raise ConfigError(f"workload set must be a mapping of option: value, got {self.options!r}")

    def build(self) -> Graph:
        return configure_workload(self.name, preset=self.preset, options=self.options)


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
    """A what-if: workload, system, dataset and either plans (``single``: one ``plan:``) or a search."""

    workload: WorkloadSpec
    system: System
    dataset: str | None = None
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
    if "name" not in wl:
        raise ConfigError("workload needs a name, e.g. workload: {name: wordlm}")
    workload = WorkloadSpec(name=wl["name"], preset=wl.get("preset"), options=wl.get("set") or {})

    device_name = data.get("device", "paper-v100")
    if not isinstance(device_name, str):
        raise ConfigError(f"device must be a device name or a YAML file path, got {device_name!r}")
    if device_name.endswith((".yaml", ".yml")) and not Path(device_name).is_absolute():
        device_name = str(Path(base_dir) / device_name)
    system_keys = _check_keys("system", data.get("system") or {}, SYSTEM_KEYS)
    system = build_system(get_device(device_name), prefix="system ", **system_keys)

    dataset = data.get("dataset")
    if dataset is not None and not isinstance(dataset, str):
        raise ConfigError(f"dataset must be a data set name, got {dataset!r}")

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
    return Scenario(workload=workload, system=system, dataset=dataset, plans=plans, single=kind == "plan",
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
