"""The workload registry: ``build_workload("wordlm", hidden=2048)`` -> Graph.

Each module in ``workloads/`` registers a builder with ``@WORKLOADS.register``.
A builder takes keyword options (named dimensions such as ``hidden``,
``vocab``, ``seq_len``, ``batch``), validates them with
:func:`distsim.graph.check_dims` and returns a :class:`distsim.graph.Graph`.
A builder may expose ``OPTIONS`` (name -> (type, default)) for ``--help``.
"""

from __future__ import annotations

from .graph import Graph
from .registry import Registry

WORKLOADS: Registry = Registry("workload", packages=["distsim.workloads"])


def build_workload(name: str, **options) -> Graph:
    return WORKLOADS.get(name)(**options)


def workload_options(name: str) -> dict:
    return dict(getattr(WORKLOADS.get(name), "OPTIONS", {}))


def workload_presets(name: str) -> dict[str, dict]:
    """Named option sets of a workload (its module's ``PRESETS``; empty if it has none)."""
    import sys

    module = sys.modules.get(WORKLOADS.get(name).__module__)
    return {k: dict(v) for k, v in getattr(module, "PRESETS", {}).items()}


def configure_workload(name: str, *, preset: str | None = None, options: dict | None = None) -> Graph:
    """Build ``name`` from a preset (optional) overridden by ``options``, rejecting unknown names.

    Examples
    --------
    >>> g = configure_workload("wordlm", preset="case-study", options={"hidden": 64, "vocab": 100})
    >>> g.dims["hidden"], g.dims["projection"]
    (64, 2048)
    """
    from .errors import ConfigError

    if name not in WORKLOADS:
        raise ConfigError(f"unknown workload {name!r}; accepted: {', '.join(WORKLOADS.names())}")
    dims: dict = {}
    if preset is not None:
        presets = workload_presets(name)
        if preset not in presets:
            raise ConfigError(f"unknown preset {preset!r} for {name}; accepted: {', '.join(presets) or 'none'}")
        dims.update(presets[preset])
    accepted = workload_options(name)
    for key in options or {}:
        if accepted and key not in accepted:
            raise ConfigError(f"unknown option {key!r} for {name}; accepted: {', '.join(accepted)}")
    dims.update(options or {})
    return build_workload(name, **dims)
