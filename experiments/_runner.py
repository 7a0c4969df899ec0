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
    from distsim.commands._common import output_dir_arg

    parser.add_argument("--json", action="store_true", help="print the table as a JSON list of records")
    parser.add_argument("--out", metavar="DIR", type=output_dir_arg, help="write NAME.csv (and PNG figures) into DIR")
    parser.add_argument("--quick", action="store_true", help="a smaller, faster version (used by the tests)")


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
        from distsim.commands._report import csv_ready
        from distsim.files import StagedOutputs

        with StagedOutputs(out) as stage:  # the CSV and the figures appear together or not at all
            csv_ready(df).to_csv(stage.path / f"{name}.csv", index=False)
            if plot is not None:
                plot(df, stage.path)
        for path in stage.moved:
            print(f"wrote {path}", file=sys.stderr)


def run_experiment(name: str, *, quick: bool = False, as_json: bool = False, out: str | None = None) -> pd.DataFrame:
    module = load_experiment(name)
    df = module.run(quick=quick)
    emit(name, df, getattr(module, "plot", None), as_json=as_json, out=out)
    return df


def script_main(run: Callable, plot: Callable | None = None, argv: list[str] | None = None) -> int:
    """Entry point for ``python experiments/NAME.py [--json] [--out DIR] [--quick]``."""
    from distsim.errors import DistsimError

    main_module = sys.modules["__main__"]
    name = Path(getattr(main_module, "__file__", "experiment")).stem
    parser = argparse.ArgumentParser(prog=f"experiments/{name}.py", description=main_module.__doc__)
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    try:
        df = run(quick=args.quick)
        emit(name, df, plot, as_json=args.json, out=args.out)
    except DistsimError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    return 0
