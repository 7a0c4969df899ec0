"""The ``distsim`` console script.

Subcommands live in :mod:`distsim.commands`, one module each, discovered at
start-up: a module defines ``register(subparsers)`` which adds its parser and
sets ``func``.

Exit status: 0 on success; 2 with one line on stderr for every user error (a
:class:`~distsim.errors.DistsimError` or a malformed command line); 130 after
Ctrl-C and 143 after SIGTERM, each with one line; 1 for an internal error (a
bug), whose traceback is printed followed by a line saying it is a bug.
Outputs are written atomically (see :mod:`distsim.files`), so an interrupted
command leaves each output whole or absent.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
import threading
import traceback

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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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


def _raise_terminated(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run one command line; returns the exit status (see the module doc)."""
    name = "distsim"
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        parser = build_parser()
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
