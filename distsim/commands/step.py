"""``distsim step WORKLOAD``: what one training step costs on one accelerator."""

from __future__ import annotations

from .. import units
from ..costmodels import analyze_step, cost_model_names, get_cost_model
from ..device import device_names, get_device
from ..workload import WORKLOADS, configure_workload, resolve_workload_arg, workload_options
from ._common import dump_json, output_file_arg, parse_set_options


def register(sub) -> None:
    p = sub.add_parser(
        "step",
        help="FLOPs, bytes, footprint and step time of one training step on one accelerator",
        description=(
            "Build WORKLOAD's training-step graph and time it on one accelerator with every registered cost "
            "model (" + _models_help() + "). "
            "Options per workload (--set NAME=VALUE; default in brackets): " + _options_help()
        ),
    )
    p.add_argument("workload", metavar="WORKLOAD", nargs="?",
                   help="workload name (e.g. wordlm); optional with a --workload-file providing one workload")
    p.add_argument("--workload-file", metavar="FILE.py",
                   help="your own model: a Python file that defines build(**options) -> Graph or registers "
                        "builders with @WORKLOADS.register(NAME) (see examples/my_mlp.py)")
    p.add_argument("--set", dest="options", action="append", metavar="NAME=VALUE",
                   help="a workload dimension, e.g. --set hidden=4096 (repeatable; applied over --preset)")
    p.add_argument("--preset", metavar="NAME", help="a named set of workload dimensions (e.g. megatron-1.7b for gpt)")
    p.add_argument("--device", default="paper-v100",
                   help="accelerator name or a YAML spec file (default: paper-v100; built in: %s)"
                   % ", ".join(_safe_device_names()))
    p.add_argument("--cost-model", metavar="NAME",
                   help="print this cost model's step time only, also as step_s/utilization in --json "
                        "(default: all of them)")
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


def _models_help() -> str:
    try:
        return "; ".join(f"{name}: {get_cost_model(name).description}" for name in cost_model_names())
    except Exception:  # --help must not fail
        return "see distsim/costmodels/"


def _safe_device_names() -> list[str]:
    try:
        return device_names()
    except Exception:  # --help must not fail
        return []


def _run(args) -> int:
    args.workload = resolve_workload_arg(args.workload, args.workload_file)
    models = cost_model_names()
    if args.cost_model is not None:
        get_cost_model(args.cost_model)  # ConfigError listing the accepted names
        models = [args.cost_model]
    device = get_device(args.device)
    graph = configure_workload(args.workload, preset=args.preset, options=parse_set_options(args.options))
    report = analyze_step(graph, device) | {"options": graph.dims}
    if args.cost_model is not None:
        report |= {"cost_model": args.cost_model, "step_s": report[f"{args.cost_model}_step_s"],
                   "utilization": report[f"{args.cost_model}_utilization"]}
    if args.trace:
        _trace(graph, device, args.cost_model, args.trace)
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
        ("on-chip cache", f"{report['cache_bytes'] / units.MiB:,.4g} MiB"),
    ]
    rows += [(f"step, {name}", f"{report[name + '_step_s']:.4g} s  ({report[name + '_utilization']:.1%} utilization)")
             for name in models]
    print(f"{args.workload} on {device.name} at {report['precision']}")
    for name, value in rows:
        print(f"  {name:<24}{value}")
    return 0


def _trace(graph, device, cost_model: str | None, path: str) -> None:
    """Simulate the step on one accelerator (the chosen cost model, default cache_aware) and write its timeline."""
    from ..evaluate import simulate_step
    from ..hardware import Hardware
    from ..plan import Plan
    from ._report import write_trace

    hardware = Hardware(device=device, cost_model=cost_model or "cache_aware", name="one accelerator")
    write_trace(simulate_step(graph, Plan(), hardware), graph, path)
