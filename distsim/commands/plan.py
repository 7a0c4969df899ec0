"""``distsim plan WORKLOAD``: search data x layer x embedding-shard plans; print the Pareto frontier."""

from __future__ import annotations

from .. import units
from ..config import build_hardware
from ..datasets import user_dataset
from ..errors import ConfigError, require_positive, require_positive_int
from ..hardware import HOP_LATENCY_S
from ..search import DEFAULT_DATA_PARALLEL, SearchOptions, search_plans
from ..workload import configure_workload, resolve_workload_arg
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
    p.add_argument("workload", metavar="WORKLOAD", nargs="?",
                   help="workload name (e.g. wordlm); optional with a --workload-file providing one workload")
    p.add_argument("--workload-file", metavar="FILE.py",
                   help="your own model: a Python file that defines build(**options) -> Graph or registers "
                        "builders with @WORKLOADS.register(NAME) (see examples/my_mlp.py)")
    p.add_argument("--set", dest="options", action="append", metavar="NAME=VALUE",
                   help="a workload dimension, e.g. --set hidden=4096 (repeatable; applied over --preset)")
    p.add_argument("--preset", metavar="NAME", help="a named set of workload dimensions (e.g. case-study)")
    add_hardware_arguments(p)
    p.add_argument("--data-parallel", metavar="D,D,...",
                   help="data-parallel degrees to try (default: powers of two, 1 to 4096)")
    p.add_argument("--target-days", type=float, metavar="D", help="days per epoch to reach")
    p.add_argument("--max-accelerators", type=int, metavar="N", help="skip plans needing more accelerators")
    p.add_argument("--max-stages", type=int, metavar="S", help="at most S stages per worker")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--dataset", metavar="NAME", help="what an epoch is (default: the workload's)")
    data.add_argument("--samples", type=float, metavar="N", help="samples in an epoch (your own data set)")
    p.add_argument("--all", action="store_true", help="list every fitting plan, not only the frontier")
    p.add_argument("--json", action="store_true", help="print the plans as a JSON list of records")
    p.add_argument("--out", metavar="DIR", type=output_dir_arg,
                   help="write plans.csv (every fitting plan) and plans.png into DIR; "
                        "keep every evaluation in DIR/results/ (a rerun skips finished ones)")
    p.add_argument("--trace", metavar="FILE", type=output_file_arg,
                   help="write the chosen plan's simulated step as a Chrome/Perfetto trace (JSON)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it shows only on a terminal)")
    add_sweep_arguments(p)
    p.add_argument("--gpus", metavar="N,N,...", help="search tensor x pipeline x data parallelism, micro-batch, "
                   "schedule, ZeRO and recomputation on N GPUs instead (a workload with a micro_batch option, "
                   "e.g. gpt; distsim/transformer_search.py)")
    p.add_argument("--global-batch", type=int, metavar="B", help="with --gpus: sequences per iteration")
    p.set_defaults(func=_run)


def add_sweep_arguments(p) -> None:
    """Where a sweep's evaluations run (default: in this process); see distsim.sweep."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="run the evaluations on a local Dask cluster of N worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run the evaluations on an existing Dask cluster (e.g. tcp://host:8786, started with "
                            "`dask scheduler` and `dask worker ADDRESS`)")


def sweep_from_args(args):
    """(Runner, ResultStore or None) from --workers / --scheduler / --out."""
    from pathlib import Path

    from ..sweep import ResultStore, Runner

    if args.workers is not None:
        require_positive_int("--workers", args.workers)
    runner = Runner(scheduler=args.scheduler, workers=args.workers, progress=False if args.no_progress else None)
    store = ResultStore(Path(args.out) / "results") if args.out else None
    return runner, store


def add_hardware_arguments(p) -> None:
    """The "where" flags shared by ``plan`` and ``step``-like commands (units in the flag names)."""
    p.add_argument("--hardware", metavar="PRESET",
                   help="hardware preset: paper-2019 (default), dgx-a100, dgx-h100")
    p.add_argument("--device", help="accelerator name or YAML spec file (default: the preset's)")
    p.add_argument("--topology", metavar="NAME|FILE",
                   help="interconnect: a topology builder (sized to each plan) or a topology YAML file "
                        "(default: the preset's; paper-2019: a plan-shaped 2-D torus)")
    memory = p.add_mutually_exclusive_group()
    memory.add_argument("--memory-GiB", "--memory-gib", dest="memory_GiB", type=float, metavar="G",
                        help="memory per accelerator in GiB (2^30 bytes; default: the device's)")
    memory.add_argument("--memory-GB", "--memory-gb", dest="memory_GB", type=float, metavar="G",
                        help="memory per accelerator in GB (1e9 bytes)")
    p.add_argument("--link-GBps", "--link-gbps", dest="link_GBps", type=float, metavar="B",
                   help="plan-shaped torus: link bandwidth in GB/s, 1e9 bytes/s (paper-2019: 56)")
    p.add_argument("--latency-us", dest="latency_us", type=float, metavar="L",
                   help="plan-shaped torus: per-hop link latency in microseconds (paper-2019: the calibrated %g)"
                        % (HOP_LATENCY_S / units.US))
    p.add_argument("--cost-model", metavar="NAME",
                   help="op timing model (default: cache_aware; see distsim step for all)")


def hardware_from_args(args):
    return build_hardware(args.device, preset=args.hardware, link_GBps=args.link_GBps, latency_us=args.latency_us,
                          memory_GiB=args.memory_GiB, memory_GB=args.memory_GB, topology=args.topology,
                          cost_model=args.cost_model, prefix="--")


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
    if args.target_days is not None:
        require_positive("--target-days", args.target_days)
    for flag in ("max_accelerators", "max_stages"):
        if getattr(args, flag) is not None:
            require_positive_int("--" + flag.replace("_", "-"), getattr(args, flag))
    degrees = parse_degrees(args.data_parallel)
    args.workload = resolve_workload_arg(args.workload, args.workload_file)
    if args.gpus is not None:
        from ._plan_layers import run_layer_search

        return run_layer_search(args)
    graph = configure_workload(args.workload, preset=args.preset, options=parse_set_options(args.options))
    hardware = hardware_from_args(args)
    options = SearchOptions(max_stages=args.max_stages, progress=False if args.no_progress else None)
    dataset = args.dataset if args.samples is None else user_dataset(args.samples, field="--samples")
    runner, store = sweep_from_args(args)
    df = search_plans(graph, hardware, data_parallel=degrees, target_days=args.target_days, dataset=dataset,
                      max_accelerators=args.max_accelerators, options=options, runner=runner, store=store)
    print_search(df, hardware=hardware, show_all=args.all, as_json=args.json)
    if args.out:
        write_search(df, args.out, "plans")
    if args.trace:
        trace_chosen(df, graph, hardware, dataset, args.trace)
    return 0
