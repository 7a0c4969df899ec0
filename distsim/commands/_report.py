"""Printing and writing plan tables, shared by ``distsim plan`` and ``distsim run``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from ..files import StagedOutputs
from ..search import best_plan
from ._common import _jsonable, dump_json

#: Columns of the text table: (column, header, format).
TABLE = (
    ("plan", "plan", str),
    ("accelerators", "accel", "{:d}".format),
    ("batch", "batch", "{:d}".format),
    ("step_s", "step s", "{:.4g}".format),
    ("days_per_epoch", "days/epoch", "{:.4g}".format),
    ("utilization", "util", "{:.1%}".format),
    ("memory_gib", "memory GiB", lambda m: ", ".join(f"{x:.3g}" for x in m)),
)


def format_table(df: pd.DataFrame) -> str:
    """Plans as an aligned text table (memory per accelerator of one worker, in GiB); text left, numbers right."""
    cells: dict[str, list[str]] = {h: [f(v) for v in df[c]] for c, h, f in TABLE if c in df.columns}
    for c in ("fits", "pareto", "meets_target"):
        if c in df.columns:
            cells[c.replace("_", " ")] = ["yes" if v else "no" for v in df[c]]
    left = {"plan", "memory GiB"}
    widths = {h: max([len(h)] + [len(x) for x in col]) for h, col in cells.items()}

    def line(values: dict[str, str]) -> str:
        return "  ".join(v.ljust(widths[h]) if h in left else v.rjust(widths[h]) for h, v in values.items()).rstrip()

    rows = [line({h: h for h in cells})]
    rows += [line({h: col[i] for h, col in cells.items()}) for i in range(len(df))]
    return "\n".join(rows)


def describe_row(row) -> str:
    """One line: the plan, its accelerators, days per epoch, utilization and memory."""
    memory = ", ".join(f"{x:.3g}" for x in row["memory_gib"])
    return (f"{row['plan']}: {int(row['accelerators'])} accelerators, {row['days_per_epoch']:.3g} days/epoch, "
            f"{row['utilization']:.1%} utilization, memory [{memory}] GiB")


def search_verdict(df: pd.DataFrame, capacity_gib: float) -> str:
    """The closing line of a search: the best plan for the target, or why there is none."""
    target = df.attrs.get("target_days")
    if not len(df):
        misfit = df.attrs.get("closest_misfit")
        text = f"no plan fits in {capacity_gib:.3g} GiB per accelerator"
        if misfit:
            text += f"; closest: {misfit['plan']}, over by {misfit['excess_gib']:.3g} GiB"
            if misfit["failures"]:
                text += f" ({misfit['failures'][0]})"
        return text
    best = best_plan(df, target)
    if target is None:
        return "fewest accelerators: " + describe_row(best)
    if best is None:
        return f"no fitting plan reaches {target:g} days/epoch; fastest: " + describe_row(
            df.sort_values("days_per_epoch", kind="mergesort").iloc[0])
    return f"best plan for <= {target:g} days/epoch: " + describe_row(best)


def search_stats(df: pd.DataFrame) -> str:
    a = df.attrs
    return (f"searched {a.get('candidates', 0)} plans: {a.get('memory_checks', 0)} memory checks, "
            f"{a.get('simulated', 0)} simulated, {len(df)} fit, {int(df['pareto'].sum()) if len(df) else 0} "
            f"on the Pareto frontier; {a.get('elapsed_s', 0.0):.1f} s")


def print_search(df: pd.DataFrame, *, hardware, show_all: bool, as_json: bool) -> None:
    """Print the frontier (or every fitting plan) as text or JSON records, the hardware, the stats and the verdict."""
    from ..units import to_gib

    capacity_gib = to_gib(hardware.capacity_bytes)
    shown = df if show_all or not len(df) else df[df["pareto"]]
    if as_json:
        print(dump_json(records(shown)))
        print(f"hardware: {hardware.describe()}", file=sys.stderr)
        print(search_stats(df), file=sys.stderr)
        print(search_verdict(df, capacity_gib), file=sys.stderr)
        return
    print(f"hardware: {hardware.describe()}")
    print(search_stats(df))
    if len(shown):
        print(format_table(shown))
    print(search_verdict(df, capacity_gib))


def records(df: pd.DataFrame) -> list[dict]:
    return df.to_dict(orient="records")


def csv_ready(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose list and dict cells are JSON strings (``["embedding"]``), not Python reprs."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, (list, tuple, dict))).any():
            out[col] = out[col].map(lambda v: json.dumps(_jsonable(v)) if isinstance(v, (list, tuple, dict)) else v)
    return out


def write_csv(df: pd.DataFrame, out: str | Path, name: str) -> Path:
    """Write ``out/name.csv`` atomically (list columns as JSON strings)."""
    with StagedOutputs(out) as stage:
        csv_ready(df).to_csv(stage.path / f"{name}.csv", index=False)
    for path in stage.moved:
        print(f"wrote {path}", file=sys.stderr)
    return stage.moved[0]


def write_search(df: pd.DataFrame, out: str | Path, name: str) -> None:
    """CSV of every fitting plan and, when any fit, the days-vs-accelerators scatter (PNG); both or neither."""
    with StagedOutputs(out) as stage:
        csv_ready(df).to_csv(stage.path / f"{name}.csv", index=False)
        if len(df):
            from distsim.experiments.plan_search import plot

            plot(df, stage.path, name=name, paper=False)  # the paper's plan is the case study's only
    for path in stage.moved:
        print(f"wrote {path}", file=sys.stderr)


# ---- timelines (--trace FILE) ---------------------------------------------------------------
def op_args(graph) -> dict:
    """{op name: {"flops", "memory_bytes"}} from the graph, for the trace's event args."""
    return {op.name: {"flops": int(op.flops), "memory_bytes": int(op.nbytes)} for op in graph.ops}


def write_trace(result, graph, path: str) -> None:
    """Write ``result``'s step as a Chrome/Perfetto trace (atomically) and say so on stderr."""
    args = op_args(graph)
    names = {name.split("[")[0] for name in result.ops["name"]} | set(result.ops["name"])
    written = result.to_chrome_trace(path, op_args={n: args[n.split("[")[0]] for n in names
                                                    if n.split("[")[0] in args})
    print(f"wrote {written} (open in https://ui.perfetto.dev or chrome://tracing)", file=sys.stderr)


def chosen_row(df: pd.DataFrame):
    """The plan a search's verdict names: the best for the target, else the fastest; None when none fits."""
    if not len(df):
        return None
    best = best_plan(df, df.attrs.get("target_days"))
    return best if best is not None else df.sort_values("days_per_epoch", kind="mergesort").iloc[0]


def plan_of_row(row):
    """The :class:`~distsim.plan.Plan` of one row of a search's table."""
    from ..plan import Plan

    fractions = row.get("shard_fractions")
    return Plan(data_parallel=int(row["data_parallel"]), stages=tuple(tuple(s) for s in row["stage_layers"]),
                shard_stages=tuple(int(s) for s in row["shard_stages"] or ()),
                shard_fractions=None if fractions is None else tuple(fractions), schedule=row["schedule"],
                fuse_accumulation=bool(row["fuse_accumulation"]), comm_buffer=row["comm_buffer"])


def trace_chosen(df: pd.DataFrame, graph, hardware, dataset, path: str) -> None:
    """Simulate the search's chosen plan again and write its trace; a line on stderr when none fits."""
    from ..evaluate import evaluate_plan

    row = chosen_row(df)
    if row is None:
        print(f"no plan fits, so no trace was written to {path}", file=sys.stderr)
        return
    ev = evaluate_plan(graph, plan_of_row(row), hardware, dataset=dataset)
    write_trace(ev.result, ev.graph, path)
