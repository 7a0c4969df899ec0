"""``distsim fit LAW FILE.csv``: fit a scaling law's constants to measured points."""

from __future__ import annotations

from ..scaling.fit import LAWS, fit_law, read_points
from ._common import dump_json


def register(sub) -> None:
    lines = "; ".join(f"{name}: {LAWS.get(name).summary}" for name in LAWS.names())
    p = sub.add_parser(
        "fit",
        help="fit a scaling law (learning-curve, model-size, steps, critical-batch) to a CSV",
        description=f"Fit a scaling law to the points of a CSV file, in log space. Laws: {lines}.",
    )
    p.add_argument("law", metavar="LAW", help=f"one of: {', '.join(LAWS.names())}")
    p.add_argument("file", metavar="FILE.csv", help="CSV with a header row")
    p.add_argument("--x", metavar="COL", help="column of the independent variable (default per law)")
    p.add_argument("--y", metavar="COL", help="column of the measured value (default per law)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_run)


def _run(args) -> int:
    spec = LAWS.get(args.law)
    x_col, y_col = args.x or spec.x, args.y or spec.y
    x, y = read_points(args.file, x_col, y_col)
    result = fit_law(args.law, x, y)
    record = {"x": x_col, "y": y_col, **result.to_dict()}
    if args.json:
        print(dump_json(record))
        return 0
    level = f"{result.confidence:.0%}"
    print(f"law: {args.law} ({spec.summary}); x={x_col}, y={y_col}, {result.n_points} points")
    for name, value in result.constants.items():
        lo, hi = result.intervals[name]
        print(f"{name} = {value:.6g}  ({level} CI {lo:.6g} .. {hi:.6g})")
    print(f"R^2 (log space) = {result.r2_log:.6f}")
    return 0
