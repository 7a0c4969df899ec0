"""The ``distsim`` console script.

Subcommands live in :mod:`distsim.commands`, one module each, discovered at
start-up: a module defines ``register(subparsers)`` which adds its parser and
sets ``func``.  Only the module of the command being run is imported, so that
``distsim --help`` and a light command do not pay for the heavy ones' imports.

Exit status: 0 on success; 2 with one line on stderr for every user error (a
:class:`~distsim.errors.DistsimError` or a malformed command line); 130 after
Ctrl-C and 143 after SIGTERM, each with one line; 1 for an internal error (a
bug), whose traceback is printed followed by a line saying it is a bug.
Outputs are written atomically (see :mod:`distsim.files`), so an interrupted
command leaves each output whole or absent.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import pkgutil
import signal
import sys
import threading
import traceback
from pathlib import Path

from . import __version__, commands
from .errors import DistsimError

EXIT_USER_ERROR = 2
EXIT_BUG = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives (so ``finally`` blocks clean up)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``distsim plan: error: ... (see distsim plan --help)``."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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
    parser = _Parser(
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


def _raise_terminated(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run one command line; returns the exit status (see the module doc)."""
    name = "distsim"
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    if argv is None:
        argv = sys.argv[1:]
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)  # --help, --version and malformed lines exit (SystemExit 0 or 2)
        name = f"distsim {args.command}"
        return int(args.func(args) or 0)
    except DistsimError as exc:
        print(f"{name}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{name}: interrupted (Ctrl-C); outputs not yet written were not written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print(f"{name}: terminated (SIGTERM); outputs not yet written were not written", file=sys.stderr)
        return EXIT_TERMINATED
    except BrokenPipeError:  # e.g. `distsim ... | head`
        return 0
    except MemoryError:
        print(f"{name}: error: ran out of memory; this is a bug (a size guard should have refused the "
              "input up front): please report the command line", file=sys.stderr)
        return EXIT_BUG
    except Exception:
        traceback.print_exc()
        print(f"{name}: internal error: this is a bug in distsim, not in your input; please report it "
              "with the command line and the traceback above", file=sys.stderr)
        return EXIT_BUG
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
