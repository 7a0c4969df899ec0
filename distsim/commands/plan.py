"""``distsim plan WORKLOAD``: search data x layer x embedding-shard plans; print the Pareto frontier."""

from __future__ import annotations

from .. import units
from ..config import build_system
from ..device import get_device
from ..evaluate import HOP_LATENCY_S
from ..errors import ConfigError, require_positive, require_positive_int
from ..search import DEFAULT_DATA_PARALLEL, SearchOptions, search_plans
from ..workload import configure_workload
from ._common import check_degrees, output_dir_arg, output_file_arg, parse_set_options
from ._report import print_search, trace_chosen, write_search


def register(sub) -> None:
    p = sub.add_parser(
        "plan",
        help="search parallel plans that fit in memory; print the Pareto frontier",
        description=(
            "Try every data-parallel degree x contiguous stage partition x embedding sharding (with and "
            "without fused gradient accumulation and chunked gradient buffers), check each plan's memory "
            "per accelerator, simulate those that fit and print the Pareto frontier over accelerators "
            "(fewer), days per epoch (fewer) and utilization (higher). Memory is reported in GiB (2^30 bytes)."
        ),
    )
    p.add_argument("workload", metavar="WORKLOAD", help="workload name (e.g. wordlm)")
    p.add_argument("--set", dest="options", action="append", metavar="NAME=VALUE",
                   help="a workload dimension, e.g. --set hidden=4096 (repeatable; applied over --preset)")
    p.add_argument("--preset", metavar="NAME", help="a named set of workload dimensions (e.g. case-study)")
    p.add_argument("--device", default="paper-v100", help="accelerator name or YAML spec file (default: paper-v100)")
    memory = p.add_mutually_exclusive_group()
    memory.add_argument("--memory-gib", type=float, metavar="G",
                        help="memory per accelerator in GiB (2^30 bytes; default: the device's)")
    memory.add_argument("--memory-gb", type=float, metavar="G", help="memory per accelerator in GB (1e9 bytes)")
    p.add_argument("--link-GBps", "--link-gbps", dest="link_GBps", type=float, metavar="B",
                   help="link bandwidth in GB/s, 1e9 bytes/s (default: 56)")
    p.add_argument("--hop-latency-us", type=float, metavar="L",
                   help="per-hop link latency in microseconds (default: the calibrated %g)" % (HOP_LATENCY_S / units.US))
    p.add_argument("--data-parallel", metavar="D,D,...",
                   help="data-parallel degrees to try (default: powers of two, 1 to 4096)")
    p.add_argument("--target-days", type=float, metavar="D", help="days per epoch to reach")
    p.add_argument("--max-accelerators", type=int, metavar="N", help="skip plans needing more accelerators")
    p.add_argument("--max-stages", type=int, metavar="S", help="at most S stages per worker")
    p.add_argument("--dataset", metavar="NAME", help="what an epoch is (default: the workload's)")
    p.add_argument("--all", action="store_true", help="list every fitting plan, not only the frontier")
    p.add_argument("--json", action="store_true", help="print the plans as a JSON list of records")
    p.add_argument("--out", metavar="DIR", type=output_dir_arg, help="write plans.csv (every fitting plan) and plans.png into DIR")
    p.add_argument("--trace", metavar="FILE", type=output_file_arg,
                   help="write the chosen plan's simulated step as a Chrome/Perfetto trace (JSON)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it shows only on a terminal)")
    p.set_defaults(func=_run)


def parse_degrees(text: str | None) -> tuple[int, ...]:
    if text is None:
        return DEFAULT_DATA_PARALLEL
    out = []
    for item in text.split(","):
        try:
            out.append(int(item.strip()))
        except ValueError:
            raise ConfigError(f"--data-parallel expects comma-separated integers, got {text!r}") from None
    degrees = tuple(require_positive_int("--data-parallel entry", d) for d in out)
    check_degrees("--data-parallel", degrees)
    return degrees


def _run(args) -> int:
    for flag in ("memory_gib", "memory_gb", "link_GBps", "target_days"):
        if getattr(args, flag) is not None:
            require_positive("--" + flag.replace("_", "-"), getattr(args, flag))
    if args.hop_latency_us is not None:
        require_positive("--hop-latency-us", args.hop_latency_us, allow_zero=True)
    for flag in ("max_accelerators", "max_stages"):
        if getattr(args, flag) is not None:
            require_positive_int("--" + flag.replace("_", "-"), getattr(args, flag))
    degrees = parse_degrees(args.data_parallel)
    graph = configure_workload(args.workload, preset=args.preset, options=parse_set_options(args.options))
    system = build_system(get_device(args.device), link_GBps=args.link_GBps, hop_latency_us=args.hop_latency_us,
                          memory_GiB=args.memory_gib, memory_GB=args.memory_gb)
    options = SearchOptions(max_stages=args.max_stages, progress=False if args.no_progress else None)
    df = search_plans(graph, system, data_parallel=degrees, target_days=args.target_days, dataset=args.dataset,
                      max_accelerators=args.max_accelerators, options=options)
    print_search(df, capacity_gib=units.to_gib(system.capacity_bytes), show_all=args.all, as_json=args.json)
    if args.out:
        write_search(df, args.out, "plans")
    if args.trace:
        trace_chosen(df, graph, system, args.dataset, args.trace)
    return 0
