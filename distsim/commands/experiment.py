"""``distsim experiment NAME``: run a reproduction script from experiments/."""

from __future__ import annotations

from ..experiments._runner import add_output_arguments, experiment_names, run_experiment


def register(sub) -> None:
    try:
        names = ", ".join(experiment_names())
    except Exception:  # the experiments package must never break --help
        names = "see experiments/"
    p = sub.add_parser(
        "experiment",
        help="run a reproduction experiment (table5, dp_scaling, ...)",
        description=f"Run a reproduction script from experiments/. Available: {names}.",
    )
    p.add_argument("name", metavar="NAME", help=f"experiment name ({names})")
    add_output_arguments(p)
    p.set_defaults(func=_run)


def _run(args) -> int:
    run_experiment(args.name, quick=args.quick, as_json=args.json, out=args.out, workers=args.workers,
                   scheduler=args.scheduler)
    return 0
