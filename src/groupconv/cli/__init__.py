"""The ``groupconv`` command line.

Each subcommand lives in its own module in this package and defines::

    def register(subparsers) -> None:
        parser = subparsers.add_parser("name", help="...")
        ...
        parser.set_defaults(func=run)

    def run(args) -> int:  # the exit code
        ...

:func:`main` finds those modules, builds the parser and runs the chosen command. Bad
input raises :class:`~groupconv.errors.GroupConvError`; ``main`` prints it as one line
(``groupconv: error: ...``) and returns 2, with no traceback. argparse's usage errors
are one line too and also exit with 2. So are, centrally here, every :class:`OSError`
(a missing file, a permission, a full disk: ``<reason>: <file>``) and whatever a user's
own model raises or a factory's ``sys.exit`` (wrapped where the model is called, in a
:class:`~groupconv.errors.UserModelError` naming the model and the original message).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from ..errors import GroupConvError
from ._output import add_verbosity, reporting_warnings, verbosity

__all__ = ["main", "build_parser"]

#: Optional top-level modules and the install command that brings each.
_EXTRAS = {
    "torch": 'python tools/install_torch.py && pip install -e ".[torch]"',  # the CPU build without a GPU
    "zeus": 'pip install -e ".[energy]"',
    "pynvml": 'pip install -e ".[energy]"',
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus a pointer to --help), exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand module of this package registered."""
    from .. import __version__

    parser = _Parser(
        prog="groupconv",
        description="Cost, energy and approximability of group convolution.",
    )
    parser.add_argument("--version", action="version", version=f"groupconv {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(subparsers)
    add_verbosity(parser, top=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with reporting_warnings(verbosity(args)):  # one line per kind of warning (-q none, -v all)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except GroupConvError as exc:
        print(f"groupconv: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (e.g. `groupconv count ... --json | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        # any file-system failure (missing file, permission, full disk: ENOSPC, EIO...):
        # one line naming the file, outputs are written to a temporary file and renamed,
        # so nothing partial is left behind (see groupconv._atomic)
        print(f"groupconv: error: {_os_error_text(exc)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        # torch and zeus are imported lazily, inside the commands that need them: a
        # figures-only install that runs such a command lands here, once for all of them
        top = (exc.name or "").split(".")[0]
        if top not in _EXTRAS:
            raise
        print(
            f"groupconv: error: 'groupconv {args.command}' needs {top}, which is not installed; "
            f"run: {_EXTRAS[top]}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt as exc:
        # a measurement campaign says how many rows it kept (see measure.campaign)
        detail = f": {exc}" if str(exc) else ""
        print(f"groupconv: interrupted{detail}", file=sys.stderr)
        return 130


def _one_line(text: str) -> str:
    """A message as one line (a user's exception text may hold newlines)."""
    return " ".join(text.split())


def _os_error_text(exc: OSError) -> str:
    """``<reason>: <file>`` for an OSError (the reason alone when it names no file)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        target = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
        return _one_line(f"{reason}: {target}")
    return _one_line(reason)
