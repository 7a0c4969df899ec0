"""``distsim step WORKLOAD``: what one training step costs on one accelerator."""

from __future__ import annotations

from .. import units
from ..costmodel import analyze_step
from ..device import device_names, get_device
from ..errors import ConfigError
from ..workload import WORKLOADS, build_workload, resolve_workload_arg, workload_options
from ._common import dump_json, parse_set_options


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
    p.add_argument("workload", metavar="WORKLOAD", nargs="?",
                   help="workload name (e.g. wordlm); optional with a --workload-file providing one workload")
    p.add_argument("--workload-file", metavar="FILE.py",
                   help="your own model: a Python file that defines build(**options) -> Graph or registers "
                        "builders with @WORKLOADS.register(NAME) (see examples/my_mlp.py)")
    p.add_argument("--set", dest="options", action="append", metavar="NAME=VALUE",
                   help="a workload dimension, e.g. --set hidden=4096 (repeatable)")
    p.add_argument("--device", default="paper-v100",
                   help="accelerator name or a YAML spec file (default: paper-v100; built in: %s)"
                   % ", ".join(_safe_device_names()))
    p.add_argument("--json", action="store_true", help="print one JSON object")
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
    args.workload = resolve_workload_arg(args.workload, args.workload_file)
    if args.workload not in WORKLOADS:
        raise ConfigError(f"unknown workload {args.workload!r}; accepted: {', '.join(WORKLOADS.names())}")
    accepted = workload_options(args.workload)
    for name in options:
        if accepted and name not in accepted:
            raise ConfigError(f"unknown option {name!r} for {args.workload}; accepted: {', '.join(accepted)}")
    device = get_device(args.device)
    graph = build_workload(args.workload, **options)
    report = analyze_step(graph, device) | {"options": graph.dims}
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
