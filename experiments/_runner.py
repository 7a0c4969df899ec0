"""Running reproduction scripts from ``experiments/``.

An experiment is a module ``experiments/NAME.py`` that defines

- ``run(quick: bool = False) -> pandas.DataFrame``: the result table.  Notes for
  the reader (a typo in the paper, a residual) go in ``df.attrs["notes"]`` as a
  list of strings;
- optionally ``plot(df, out_dir) -> list[pathlib.Path]``: PNG figures;
- optionally ``report(df) -> str``: the table as a person reads it (at most
  :data:`WIDTH` columns); without one the generic :func:`format_frame` is used;
- optionally ``COLUMN_NAMES``: {column: name} renames applied to the JSON and
  CSV outputs (to put the unit in a name, e.g. ``memory_gib``);

and ends with ``if __name__ == "__main__": script_main(run, plot)`` so that
``python experiments/NAME.py`` and ``distsim experiment NAME`` do the same.

``--json`` prints ``{"rows": [...], "notes": [...]}``; CSV cells holding lists
are JSON strings.
"""

from __future__ import annotations

import argparse
import importlib
import math
import pkgutil
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pandas as pd

from distsim.errors import ConfigError

#: Widest text table printed (characters).
WIDTH = 120


def experiment_names() -> list[str]:
    from distsim import experiments

    return sorted(
        m.name for m in pkgutil.iter_modules(experiments.__path__) if not m.name.startswith("_")
    )


def load_experiment(name: str):
    names = experiment_names()
    if name not in names:
        raise ConfigError(f"unknown experiment {name!r}; accepted: {', '.join(names)}")
    return importlib.import_module(f"distsim.experiments.{name}")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    from distsim.commands._common import output_dir_arg

    parser.add_argument("--json", action="store_true", help="print the table as a JSON list of records")
    parser.add_argument("--out", metavar="DIR", type=output_dir_arg, help="write NAME.csv (and PNG figures) into DIR")
    parser.add_argument("--quick", action="store_true", help="a smaller, faster version (used by the tests)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="run the experiment's grid on a local Dask cluster of N workers (experiments with a grid)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="run the experiment's grid on an existing Dask cluster")


def format_value(value) -> str:
    """A cell as text: 4 significant digits, lists compact, booleans yes/no, missing as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]" if len(value) <= 6 else f"[{len(value)} items]"
    if hasattr(value, "item"):  # numpy scalar
        return format_value(value.item())
    return str(value)


def render_table(headers: list[str], rows: list[list[str]], *, left=1) -> str:
    """Aligned plain-text table: the first ``left`` columns (or the indices in a set) left-aligned, the rest right."""
    left = set(range(left)) if isinstance(left, int) else set(left)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule] + [line(r) for r in rows])


def format_frame(df: pd.DataFrame, width: int = WIDTH) -> str:
    """Any result table as text within ``width`` columns: column blocks that fit, each led by the first column."""
    if not len(df.columns):
        return "(no columns)"
    cells = {c: [format_value(v) for v in df[c]] for c in df.columns}
    key, rest = df.columns[0], list(df.columns[1:])
    if max(len(x) for x in [str(key)] + cells[key]) > 30:  # a wide first column: lead each block by a row number
        cells = {"#": [str(i + 1) for i in range(len(df))], **cells}
        key, rest = "#", list(df.columns)
    size = {c: max([len(str(c))] + [len(x) for x in cells[c]]) for c in cells}
    room = width - size[key] - 2
    for c in rest:  # a column wider than a whole block is cut (the CSV and --json keep every value)
        if size[c] > room:
            cells[c] = [x if len(x) <= room else x[: room - 3] + "..." for x in cells[c]]
            size[c] = max([len(str(c))] + [len(x) for x in cells[c]])
    blocks, current, used = [], [], size[key]
    for c in rest:
        if current and used + 2 + size[c] > width:
            blocks.append(current)
            current, used = [], size[key]
        current.append(c)
        used += 2 + size[c]
    blocks.append(current)
    text_cols = {c for c in df.columns if df[c].map(lambda v: isinstance(v, str)).all()} | {"#"}
    out = []
    for block in blocks:
        cols = [key, *block]
        out.append(render_table([str(c) for c in cols], [[cells[c][i] for c in cols] for i in range(len(df))],
                                left={i for i, c in enumerate(cols) if c in text_cols}))
    return "\n\n".join(out)


def emit(name: str, df: pd.DataFrame, plot: Callable | None, *, as_json: bool, out: str | None,
         report: Callable | None = None, column_names: dict | None = None) -> None:
    """Print ``df`` (text or JSON, with its notes) and write CSV/PNG into ``out`` if given (all or nothing)."""
    from distsim.commands._common import dump_json

    notes = list(df.attrs.get("notes", []))
    named = df.rename(columns=column_names or {})
    if as_json:
        print(dump_json({"rows": named.to_dict(orient="records"), "notes": notes}))
    else:
        print(report(df) if report is not None else format_frame(df))
        for note in notes:
            print(textwrap.fill(f"note: {note}", WIDTH, subsequent_indent="      ", break_long_words=False))
    if out:
        from distsim.commands._report import csv_ready
        from distsim.files import StagedOutputs

        with StagedOutputs(out) as stage:  # the CSV and the figures appear together or not at all
            csv_ready(named).to_csv(stage.path / f"{name}.csv", index=False)
            if plot is not None:
                plot(df, stage.path)
        for path in stage.moved:
            print(f"wrote {path}", file=sys.stderr)


def run_experiment(name: str, *, quick: bool = False, as_json: bool = False, out: str | None = None,
                   workers: int | None = None, scheduler: str | None = None) -> pd.DataFrame:
    module = load_experiment(name)
    df = _run_module(name, module.run, quick, out, workers, scheduler)
    emit(name, df, getattr(module, "plot", None), as_json=as_json, out=out, report=getattr(module, "report", None),
         column_names=getattr(module, "COLUMN_NAMES", None))
    return df


def _run_module(name: str, run: Callable, quick: bool, out: str | None, workers: int | None,
                scheduler: str | None) -> pd.DataFrame:
    """``run(quick)``; an experiment whose ``run`` takes ``runner`` and ``store`` (a grid of evaluations, see
    :mod:`distsim.sweep`) gets them from ``--workers``/``--scheduler`` and ``--out DIR`` (``DIR/results/``)."""
    import inspect

    from distsim.sweep import ResultStore, Runner

    if "runner" not in inspect.signature(run).parameters:
        if workers is not None or scheduler is not None:
            raise ConfigError(f"experiment {name} has no grid of evaluations to run on Dask; "
                              f"leave out --workers and --scheduler")
        return run(quick=quick)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be a positive integer, got {workers}")
    runner = Runner(workers=workers, scheduler=scheduler, progress=None)
    store = ResultStore(Path(out) / "results") if out else None
    return run(quick=quick, runner=runner, store=store)


def script_main(run: Callable, plot: Callable | None = None, argv: list[str] | None = None) -> int:
    """Entry point for ``python experiments/NAME.py [--json] [--out DIR] [--quick]``."""
    from distsim.errors import DistsimError

    main_module = sys.modules["__main__"]
    name = Path(getattr(main_module, "__file__", "experiment")).stem
    parser = argparse.ArgumentParser(prog=f"experiments/{name}.py", description=main_module.__doc__)
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    try:
        df = _run_module(name, run, args.quick, args.out, args.workers, args.scheduler)
        emit(name, df, plot, as_json=args.json, out=args.out, report=getattr(main_module, "report", None),
             column_names=getattr(main_module, "COLUMN_NAMES", None))
    except DistsimError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    return 0
