"""The ``distsim`` console script.

Subcommands live in :mod:`distsim.commands`, one module each, discovered at
start-up: a module defines ``register(subparsers)`` which adds its parser and
sets ``func``.  Every :class:`~distsim.errors.DistsimError` becomes one line on
stderr and exit status 2, as argparse does for malformed arguments.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__, commands
from .errors import DistsimError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distsim",
        description="Discrete-event simulator of distributed deep-learning training.",
    )
    parser.add_argument("--version", action="version", version=f"distsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DistsimError as exc:
        print(f"distsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `distsim ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
