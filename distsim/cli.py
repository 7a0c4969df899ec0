"""The ``distsim`` console script.

Subcommands live in :mod:`distsim.commands`, one module each, discovered at
start-up: a module defines ``register(subparsers)`` which adds its parser and
sets ``func``.  Only the module of the command being run is imported, so that
``distsim --help`` and a light command do not pay for the heavy ones' imports.  Every :class:`~distsim.errors.DistsimError` becomes one line on
stderr and exit status 2, as argparse does for malformed arguments.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

from . import __version__, commands
from .errors import DistsimError


def _command_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))


def _help_line(name: str) -> str | None:
    """The ``help=`` a command module gives ``add_parser``, read from its source (no import)."""
    spec = importlib.util.find_spec(f"{commands.__name__}.{name}")
    try:
        tree = ast.parse(Path(spec.origin).read_text())
    except (OSError, SyntaxError, TypeError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_parser":
            for kw in node.keywords:
                if kw.arg == "help" and isinstance(kw.value, ast.Constant):
                    return kw.value.value
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given ``argv``, only the command it names is imported (fast start-up).

    Without ``argv`` every command module is imported and registered.  With it,
    the others are listed by name and help line only, read from their source.
    """
    parser = argparse.ArgumentParser(
        prog="distsim",
        description="Discrete-event simulator of distributed deep-learning training.",
    )
    parser.add_argument("--version", action="version", version=f"distsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    chosen = None
    if argv is not None:
        chosen = next((a for a in argv if not a.startswith("-")), "")
    for name in _command_names():
        if chosen is None or name == chosen:
            importlib.import_module(f"{commands.__name__}.{name}").register(sub)
        else:
            sub.add_parser(name, help=_help_line(name))
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
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
