"""``distsim run FILE.yaml``: evaluate the plans of a what-if file, or run the search it describes."""

from __future__ import annotations

import pandas as pd

from ..config import load_scenario
from ..datasets import user_dataset
from ..errors import ConfigError
from ..evaluate import evaluate_plan
from ..search import search_plans
from ..sweep import evaluate_plans
from ._common import dump_json, output_dir_arg, output_file_arg
from ._report import format_table, print_search, records, trace_chosen, write_csv, write_search, write_trace
from .plan import add_sweep_arguments, sweep_from_args

#: Per-accelerator memory columns printed for a single plan (GiB).
MEMORY_COLUMNS = ("stage", "layers", "weights_gib", "optimizer_state_gib", "gradients_gib", "activations_gib",
                  "inputs_gib", "comm_buffers_gib", "total_gib", "capacity_gib", "fits")


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run a what-if written as YAML (one plan, several plans, or a search)",
        description=(
            "Read FILE (YAML, schema: 1): workload {name or file (your own model, a .py), preset, set}, device, "
            "hardware {preset, link_GBps, latency_us, memory_GiB or memory_GB, cost_model, topology, placement}, "
            "dataset (a name or {samples, name}), and one of plan (summary and "
            "per-accelerator memory), plans (one table) or search (like distsim plan). See examples/."
        ),
    )
    p.add_argument("file", metavar="FILE", help="scenario YAML file")
    p.add_argument("--all", action="store_true", help="with search: list every fitting plan, not only the frontier")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--out", metavar="DIR", type=output_dir_arg, help="write CSV (and, for a search, a PNG) into DIR")
    p.add_argument("--trace", metavar="FILE", type=output_file_arg,
                   help="write the simulated step (of the plan, or the search's chosen plan) as a Chrome/Perfetto trace")
    p.add_argument("--no-progress", action="store_true", help="no progress bar during a search")
    p.add_argument("--samples", type=float, metavar="N",
                   help="samples in an epoch (your own data set; replaces the file's dataset)")
    add_sweep_arguments(p)
    p.set_defaults(func=_run)


def _run(args) -> int:
    scenario = load_scenario(args.file)
    if args.samples is not None:
        from dataclasses import replace

        scenario = replace(scenario, dataset=user_dataset(args.samples, field="--samples"))
    if args.trace and scenario.search is None and not scenario.single:
        raise ConfigError("--trace needs a file with one plan (plan:) or a search (it traces the chosen plan), "
                          f"not {len(scenario.plans)} plans")
    graph = scenario.workload.build()
    hardware = scenario.hardware
    if scenario.search is not None:
        spec = scenario.search
        options = spec.options
        if args.no_progress:
            from dataclasses import replace

            options = replace(options, progress=False)
        runner, store = sweep_from_args(args)
        df = search_plans(graph, hardware, data_parallel=spec.data_parallel, target_days=spec.target_days,
                          dataset=scenario.dataset, max_accelerators=spec.max_accelerators, options=options,
                          runner=runner, store=store)
        print_search(df, hardware=hardware, show_all=args.all, as_json=args.json)
        if args.out:
            write_search(df, args.out, scenario.name)
        if args.trace:
            trace_chosen(df, graph, hardware, scenario.dataset, args.trace)
        return 0

    label = "plan" if scenario.single else "plans[{}]"
    for i, plan in enumerate(scenario.plans):  # every reference checked before anything runs
        try:
            plan.resolve(graph)
        except ConfigError as exc:
            raise ConfigError(f"{args.file}: {label.format(i)}: {exc}") from None
    if scenario.single:
        ev = evaluate_plan(graph, scenario.plans[0], hardware, dataset=scenario.dataset)
        table = pd.DataFrame([ev.summary()])
        memory = ev.memory[list(MEMORY_COLUMNS)]
        if args.json:
            print(dump_json({"summary": ev.summary(), "memory": records(memory), "failures": ev.memory_failures(),
                             "hardware": hardware.describe()}))
        else:
            print(f"hardware: {hardware.describe()}")
            for key, value in ev.summary().items():
                print(f"  {key:<18}{_fmt(value)}")
            print()
            with pd.option_context("display.width", 250, "display.max_columns", 50):
                print(memory.round(2).to_string(index=False))
            for line in ev.memory_failures():
                print(f"does not fit: {line}")
        if args.out:
            write_csv(table, args.out, scenario.name)
            write_csv(memory, args.out, f"{scenario.name}_memory")
        if args.trace:
            write_trace(ev.result, ev.graph, args.trace)
        return 0

    runner, store = sweep_from_args(args)
    outcomes = evaluate_plans(graph, scenario.plans, hardware, scenario.dataset, runner=runner, store=store)
    table = pd.DataFrame([o["summary"] for o in outcomes])
    if args.json:
        print(dump_json(records(table)))
    else:
        print(f"hardware: {hardware.describe()}")
        print(format_table(table))
        for i, outcome in enumerate(outcomes):
            for line in outcome["failures"]:
                print(f"plans[{i}] does not fit: {line}")
    if args.out:
        write_csv(table, args.out, scenario.name)
    return 0


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)
