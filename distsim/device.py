"""Accelerator specs.

A :class:`Device` is a frozen spec in SI units.  Specs ship in
``distsim/data/devices.yaml`` (keys in human units, converted once here) and
more can be loaded from a user's YAML file with :func:`load_devices`.
Timing models live in :mod:`distsim.costmodels`.  Cache sizes are binary in files
(``cache_MiB``): vendors' cache "MB" (NVIDIA's 6 MB V100 L2 = 6,144 KiB) are MiB.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from . import units
from .errors import ConfigError, require_positive, short
from .files import parse_yaml, read_text

_FILE_KEYS = {
    "description", "source", "peak_TFLOPS", "memory_bandwidth_GBps", "cache_MiB", "memory_GiB",
    "compute_efficiency", "bandwidth_efficiency", "precision",
}


@dataclass(frozen=True, kw_only=True)
class Device:
    """An accelerator.

    Parameters
    ----------
    peak_flop_per_s : dict
        Peak FLOP/s per precision name (``"fp32"``, ``"bf16"``, ...).
    precision : str
        Selects :attr:`flop_per_s` of the device on its own; a workload graph
        is timed at its own precision (:meth:`at_precision`).
    memory_bandwidth_bytes_per_s, cache_bytes, memory_bytes : float
        Off-chip bandwidth (B/s), on-chip (L2) cache and memory capacity (B).
    compute_efficiency, bandwidth_efficiency : float
        Achievable fractions of peak, in (0, 1] (the paper uses 0.8 and 0.7).
    """

    name: str
    peak_flop_per_s: dict = field(hash=False)
    memory_bandwidth_bytes_per_s: float
    cache_bytes: float
    memory_bytes: float
    compute_efficiency: float = 0.8
    bandwidth_efficiency: float = 0.7
    precision: str = "fp32"
    description: str = ""
    source: str = ""

    def __post_init__(self):
        if not self.peak_flop_per_s:
            raise ConfigError(f"device {self.name}: peak_flop_per_s must name at least one precision")
        for prec, value in self.peak_flop_per_s.items():
            require_positive(f"device {self.name}: peak FLOP/s for {prec}", value)
        if not isinstance(self.precision, str) or self.precision not in self.peak_flop_per_s:
            raise ConfigError(
                f"device {self.name}: precision {short(self.precision)} not in its peaks; accepted: "
                + ", ".join(self.peak_flop_per_s)
            )
        require_positive(f"device {self.name}: memory_bandwidth", self.memory_bandwidth_bytes_per_s)
        require_positive(f"device {self.name}: cache", self.cache_bytes, allow_zero=True)
        require_positive(f"device {self.name}: memory", self.memory_bytes)
        for key in ("compute_efficiency", "bandwidth_efficiency"):
            value = getattr(self, key)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 < value <= 1):
                raise ConfigError(f"device {self.name}: {key} must be in (0, 1], got {short(value)}")

    @property
    def flop_per_s(self) -> float:
        """Peak FLOP/s at the selected precision."""
        return float(self.peak_flop_per_s[self.precision])

    @property
    def achievable_flop_per_s(self) -> float:
        return self.flop_per_s * self.compute_efficiency

    @property
    def achievable_bytes_per_s(self) -> float:
        return self.memory_bandwidth_bytes_per_s * self.bandwidth_efficiency

    @property
    def ridge_point(self) -> float:
        """FLOP/byte where peak compute and peak bandwidth balance."""
        return self.flop_per_s / self.memory_bandwidth_bytes_per_s

    @property
    def achievable_ridge_point(self) -> float:
        return self.achievable_flop_per_s / self.achievable_bytes_per_s

    def at_precision(self, precision: str) -> "Device":
        """This device running ``precision`` (a graph's ``Graph.precision``).

        Raises ConfigError when the device lists no peak for it.
        """
        if precision == self.precision:
            return self
        if precision not in self.peak_flop_per_s:
            raise ConfigError(
                f"device {self.name}: no peak for precision {precision!r}; accepted: " + ", ".join(self.peak_flop_per_s)
            )
        return replace(self, precision=precision)

    def with_(self, **changes) -> "Device":
        """A copy with some fields changed (e.g. ``cache_bytes`` for a what-if)."""
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, name: str, d: dict) -> "Device":
        """From a file entry with human units (see devices.yaml)."""
        if not isinstance(d, dict):
            raise ConfigError(f"device {name}: expected a mapping, got {type(d).__name__}")
        if "cache_MB" in d:
            raise ConfigError(f"device {name}: key 'cache_MB' was replaced by 'cache_MiB' (binary, 1 MiB = 2^20 B; "
                              "vendors' cache \"MB\" are MiB: the V100's 6 MB L2 is cache_MiB: 6)")
        unknown = set(d) - _FILE_KEYS
        if unknown:
            raise ConfigError(
                f"device {name}: unknown key {sorted(unknown)[0]!r}; accepted: {', '.join(sorted(_FILE_KEYS))}"
            )
        for key in ("peak_TFLOPS", "memory_bandwidth_GBps", "cache_MiB", "memory_GiB"):
            if key not in d:
                raise ConfigError(f"device {name}: missing key {key!r}")
        peaks = d["peak_TFLOPS"]
        if not isinstance(peaks, dict) or not peaks:
            raise ConfigError(f"device {name}: peak_TFLOPS must map precision to TFLOP/s, got {short(peaks)}")
        for key in ("precision", "description", "source"):
            if key in d and not isinstance(d[key], str):
                raise ConfigError(f"device {name}: {key} must be a string, got {short(d[key])}")
        for key in ("compute_efficiency", "bandwidth_efficiency"):
            if key in d:
                require_positive(f"device {name}: {key}", d[key])
        return cls(
            name=name,
            peak_flop_per_s={k: require_positive(f"device {name}: peak_TFLOPS.{k}", v) * units.TERA for k, v in peaks.items()},
            memory_bandwidth_bytes_per_s=require_positive(f"device {name}: memory_bandwidth_GBps", d["memory_bandwidth_GBps"]) * units.GB,
            cache_bytes=require_positive(f"device {name}: cache_MiB", d["cache_MiB"], allow_zero=True) * units.MiB,
            memory_bytes=require_positive(f"device {name}: memory_GiB", d["memory_GiB"]) * units.GiB,
            compute_efficiency=d.get("compute_efficiency", 0.8),
            bandwidth_efficiency=d.get("bandwidth_efficiency", 0.7),
            precision=d.get("precision", next(iter(peaks))),
            description=d.get("description", ""),
            source=d.get("source", ""),
        )


def _parse_file(text: str, origin: str) -> dict[str, Device]:
    doc = parse_yaml(text, origin)
    if not isinstance(doc, dict) or not isinstance(doc.get("devices"), dict):
        raise ConfigError(f"{origin}: expected a mapping with a 'devices' section")
    if doc.get("schema", 1) != 1 or isinstance(doc.get("schema"), bool):
        raise ConfigError(f"{origin}: unsupported schema {short(doc.get('schema'))}; accepted: 1")
    if not doc["devices"]:
        raise ConfigError(f"{origin}: the 'devices' section is empty")
    return {name: Device.from_dict(name, spec) for name, spec in doc["devices"].items()}


def builtin_devices() -> dict[str, Device]:
    text = resources.files("distsim").joinpath("data/devices.yaml").read_text()
    return _parse_file(text, "devices.yaml")


def load_devices(path: str | Path) -> dict[str, Device]:
    """Devices from a user's YAML file (same format as the built-in one)."""
    return _parse_file(read_text(path, "device file"), str(path))


def device_names() -> list[str]:
    return sorted(builtin_devices())


def get_device(name: str, *, spec_file: str | Path | None = None) -> Device:
    """A built-in device by name, or one from ``spec_file``.

    ``name`` may also be a path to a YAML file holding exactly one device.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"device must be a device name or a YAML file path, got {short(name)}")
    devices = builtin_devices()
    if spec_file is not None:
        devices.update(load_devices(spec_file))
    elif name.endswith((".yaml", ".yml")):
        loaded = load_devices(name)
        if len(loaded) != 1:
            raise ConfigError(f"{name}: expected exactly one device, found {len(loaded)}")
        return next(iter(loaded.values()))
    if name not in devices:
        raise ConfigError(f"unknown device {name!r}; accepted: {', '.join(sorted(devices))}")
    return devices[name]
