"""``distsim plan WORKLOAD --gpus N --global-batch B``: the layer-granular plan search and its frontier."""

from __future__ import annotations

import sys

from ..errors import ConfigError, require_positive_int
from ..transformer_search import search_layer_plans
from ..units import to_gib
from ..workload import configure_workload, workload_options
from ._common import dump_json, parse_set_options


def run_layer_search(args) -> int:
    gpus = []
    for item in args.gpus.split(","):
        try:
            gpus.append(require_positive_int("--gpus entry", int(item.strip())))
        except ValueError:
            raise ConfigError(f"--gpus expects comma-separated integers, got {args.gpus!r}") from None
    if args.global_batch is None:
        raise ConfigError("--gpus needs --global-batch B (sequences per iteration)")
    if "micro_batch" not in (workload_options(args.workload) or {}):
        raise ConfigError(f"--gpus searches layer-granular plans of a workload with a micro_batch option (gpt); "
                          f"{args.workload!r} has none")
    options = parse_set_options(args.options)
    options.pop("micro_batch", None)
    from .plan import hardware_from_args

    hardware = hardware_from_args(args)

    def build(micro_batch: int):
        return configure_workload(args.workload, preset=args.preset, options={**options, "micro_batch": micro_batch})

    df = search_layer_plans(build, hardware, gpus=gpus, batch=args.global_batch,
                            progress=False if args.no_progress else None)
    shown = df if args.all else df[df["pareto"]]
    if args.json:
        print(dump_json(shown.to_dict(orient="records")))
    else:
        print(f"hardware: {hardware.describe()}")
        cols = ["plan", "accelerators", "micro_batch", "step_s", "samples_per_s", "utilization", "max_memory_gib"]
        print(shown[cols].to_string(index=False) if len(shown) else "no plan fits")
    a = df.attrs
    print(f"{a['candidates']} plans, {a['simulated']} fit in {to_gib(hardware.capacity_bytes):g} GiB "
          f"and were simulated, {int(df['pareto'].sum())} on the frontier (GPUs, step time, memory), "
          f"{a['elapsed_s']:.1f} s", file=sys.stderr)
    if args.out:
        from pathlib import Path

        Path(args.out).mkdir(parents=True, exist_ok=True)
        df.to_csv(Path(args.out) / "layer_plans.csv", index=False)
    return 0
