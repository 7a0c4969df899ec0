"""Running reproduction scripts from ``experiments/``.

An experiment is a module ``experiments/NAME.py`` that defines

- ``run(quick: bool = False) -> pandas.DataFrame``: the result table.  Notes for
  the reader (a typo in the paper, a residual) go in ``df.attrs["notes"]`` as a
  list of strings;
- optionally ``plot(df, out_dir) -> list[pathlib.Path]``: PNG figures;

and ends with ``if __name__ == "__main__": script_main(run, plot)`` so that
``python experiments/NAME.py`` and ``distsim experiment NAME`` do the same.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path
from typing import Callable

import pandas as pd

from distsim.errors import ConfigError


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
    parser.add_argument("--json", action="store_true", help="print the table as a JSON list of records")
    parser.add_argument("--out", metavar="DIR", help="write NAME.csv (and PNG figures) into DIR")
    parser.add_argument("--quick", action="store_true", help="a smaller, faster version (used by the tests)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="run the experiment's grid on a local Dask cluster of N workers (experiments with a grid)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="run the experiment's grid on an existing Dask cluster")


def emit(name: str, df: pd.DataFrame, plot: Callable | None, *, as_json: bool, out: str | None) -> None:
    """Print ``df`` (text or JSON) and write CSV/PNG into ``out`` if given."""
    from distsim.commands._common import dump_json

    notes = list(df.attrs.get("notes", []))
    if as_json:
        print(dump_json(df.to_dict(orient="records")))
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_rows", 500):
            print(df.to_string(index=False))
        for note in notes:
            print(f"note: {note}")
    if out:
        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        csv = out_dir / f"{name}.csv"
        df.to_csv(csv, index=False)
        written = [csv]
        if plot is not None:
            written += list(plot(df, out_dir) or [])
        for path in written:
            print(f"wrote {path}", file=sys.stderr)


def run_experiment(name: str, *, quick: bool = False, as_json: bool = False, out: str | None = None,
                   workers: int | None = None, scheduler: str | None = None) -> pd.DataFrame:
    module = load_experiment(name)
    df = _run_module(name, module.run, quick, out, workers, scheduler)
    emit(name, df, getattr(module, "plot", None), as_json=as_json, out=out)
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
        emit(name, df, plot, as_json=args.json, out=args.out)
    except DistsimError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    return 0
