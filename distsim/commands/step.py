"""``distsim step WORKLOAD``: what one training step costs on one accelerator."""

from __future__ import annotations

from .. import units
from ..costmodel import analyze_step
from ..device import device_names, get_device
from ..errors import ConfigError
from ..workload import WORKLOADS, build_workload, workload_options
from ._common import dump_json, output_file_arg, parse_set_options


def register(sub) -> None:
    p = sub.add_parser(
        "step",
        help="FLOPs, bytes, footprint and step time of one training step on one accelerator",
        description=(
            "Build WORKLOAD's training-step graph and time it on one accelerator with three models: "
            "graph-level roofline, per-op roofline, and cache-aware (tiled matmul re-streaming). "
            "Options per workload (--set NAME=VALUE; default in brackets): " + _options_help()
        ),
    )
    p.add_argument("workload", metavar="WORKLOAD", help="workload name (e.g. wordlm)")
    p.add_argument("--set", dest="options", action="append", metavar="NAME=VALUE",
                   help="a workload dimension, e.g. --set hidden=4096 (repeatable)")
    p.add_argument("--device", default="paper-v100",
                   help="accelerator name or a YAML spec file (default: paper-v100; built in: %s)"
                   % ", ".join(_safe_device_names()))
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--trace", metavar="FILE", type=output_file_arg,
                   help="write the step on one accelerator (cache-aware op times) as a Chrome/Perfetto trace")
    p.set_defaults(func=_run)


def _options_help() -> str:
    try:
        parts = []
        for name in WORKLOADS.names():
            opts = workload_options(name)
            parts.append(f"{name}: " + ", ".join(f"{k} [{d}]" for k, (_, d) in opts.items()))
        return "; ".join(parts) + ". For wordlm, embed_dim 0 means hidden and projection 0 means none."
    except Exception:  # --help must not fail
        return "see workloads/."


def _safe_device_names() -> list[str]:
    try:
        return device_names()
    except Exception:  # --help must not fail
        return []


def _run(args) -> int:
    options = parse_set_options(args.options)
    if args.workload not in WORKLOADS:
        raise ConfigError(f"unknown workload {args.workload!r}; accepted: {', '.join(WORKLOADS.names())}")
    accepted = workload_options(args.workload)
    for name in options:
        if accepted and name not in accepted:
            raise ConfigError(f"unknown option {name!r} for {args.workload}; accepted: {', '.join(accepted)}")
    device = get_device(args.device)
    graph = build_workload(args.workload, **options)
    report = analyze_step(graph, device) | {"options": graph.dims}
    if args.trace:
        _trace(graph, device, args.trace)
    if args.json:
        print(dump_json(report))
        return 0
    rows = [
        ("parameters", f"{report['params']:,}"),
        ("FLOPs / step", f"{report['flops'] / units.TERA:,.3f} TFLOP"),
        ("bytes / step", f"{report['bytes'] / units.TB:,.3f} TB"),
        ("operational intensity", f"{report['operational_intensity']:.2f} FLOP/B"),
        ("footprint (total)", f"{units.to_gib(report['footprint_total_bytes']):,.2f} GiB"),
        ("footprint (minimal)", f"{units.to_gib(report['footprint_min_bytes']):,.2f} GiB"),
        ("step, roofline", f"{report['roofline_step_s']:.4g} s  ({report['roofline_utilization']:.1%} utilization)"),
        ("step, per-op", f"{report['per_op_step_s']:.4g} s  ({report['per_op_utilization']:.1%} utilization)"),
        ("step, cache-aware", f"{report['cache_aware_step_s']:.4g} s  ({report['cache_aware_utilization']:.1%} utilization)"),
    ]
    print(f"{args.workload} on {device.name}")
    for name, value in rows:
        print(f"  {name:<24}{value}")
    return 0


def _trace(graph, device, path: str) -> None:
    """Simulate the step on one accelerator (cache-aware op times) and write its timeline."""
    from ..costmodel import op_times_s
    from ..parallel import simulate_plan
    from ..plan import Plan
    from ._report import write_trace

    result = simulate_plan(graph, Plan(data_parallel=1).resolve(graph), op_times_s(graph, device, "cache_aware"))
    write_trace(result, graph, path)
