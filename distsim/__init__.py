"""distsim: a discrete-event simulator of distributed deep-learning training.

The data flow is workload graph ("what") + plan ("how") + hardware ("where":
device, topology, placement) -> one lowering -> memory check and simulation
-> result.  ``docs/python.md`` shows the library by example.

The names below are the public face; they are imported on first use, so
``import distsim`` stays cheap and does no I/O.

==============================  ===========================================
what                            names
==============================  ===========================================
build or register a workload    ``GraphBuilder``, ``Graph``, ``TensorKind``, ``OpKind``, ``Phase``,
                                ``WORKLOADS``, ``build_workload``, ``configure_workload``,
                                ``load_workload_file``
devices                         ``Device``, ``get_device``, ``load_devices``, ``device_names``
topologies                      ``Topology``, ``TOPOLOGIES``, ``build_topology``, ``load_topology``
plans                           ``Plan``
hardware                        ``Hardware``, ``HARDWARE``, ``get_hardware``, ``paper_hardware``,
                                ``topology_spec``
data sets                       ``Dataset``, ``DATASETS``, ``get_dataset``, ``user_dataset``
evaluate and search             ``evaluate_plan``, ``simulate_step``, ``search_plans``, ``pareto_front``
analyze one step                ``analyze_step``, ``op_times_s``, ``COST_MODELS``
errors                          ``DistsimError``, ``ConfigError``
==============================  ===========================================
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "distsim.graph": ("GraphBuilder", "Graph", "TensorKind", "OpKind", "Phase"),
    "distsim.workload": ("WORKLOADS", "build_workload", "configure_workload", "load_workload_file"),
    "distsim.device": ("Device", "get_device", "load_devices", "device_names"),
    "distsim.topology": ("Topology", "TOPOLOGIES", "build_topology", "load_topology"),
    "distsim.plan": ("Plan",),
    "distsim.hardware": ("Hardware", "HARDWARE", "get_hardware", "paper_hardware", "topology_spec"),
    "distsim.datasets": ("Dataset", "DATASETS", "get_dataset", "user_dataset"),
    "distsim.evaluate": ("evaluate_plan", "simulate_step"),
    "distsim.search": ("search_plans", "pareto_front"),
    "distsim.costmodels": ("analyze_step", "op_times_s", "COST_MODELS"),
    "distsim.errors": ("DistsimError", "ConfigError"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'distsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
