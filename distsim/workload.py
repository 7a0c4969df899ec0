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

WORKLOADS: Registry = Registry("workload", packages=["workloads"])


def build_workload(name: str, **options) -> Graph:
    return WORKLOADS.get(name)(**options)


def workload_options(name: str) -> dict:
    return dict(getattr(WORKLOADS.get(name), "OPTIONS", {}))
