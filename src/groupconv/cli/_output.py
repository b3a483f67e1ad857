"""How much the CLI says on stderr: ``-q/--quiet``, ``-v/--verbose``, grouped warnings.

By default every warning raised while a command runs is collected and, when it ends,
printed as one line per kind (its first message, and how many more of that kind there
were, with ``-v`` to see all). ``-v`` prints each warning as it comes; ``-q`` prints none
and hides the progress bars. Errors are always printed.

A kind is the warning's category where it is one of groupconv's named categories
(:mod:`groupconv.errors`), else its message with the numbers blanked. A warning that
comes from another library (torch, numpy) is labelled with that library's name, not
``groupconv``.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

from .. import _progress
from ..errors import GroupConvWarning

__all__ = ["add_verbosity", "verbosity", "reporting_warnings"]

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def add_verbosity(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """Add ``-q/--quiet`` and ``-v/--verbose`` to ``parser`` (a subcommand's, or the top
    one) and to every subcommand under it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                add_verbosity(sub)
    group = parser.add_mutually_exclusive_group()
    default = {} if top else {"default": argparse.SUPPRESS}
    group.add_argument("-q", "--quiet", action="store_true", **default,
                       help="print no warnings and no progress bars (errors still)")
    group.add_argument("-v", "--verbose", action="store_true", **default,
                       help="print every warning in full as it comes (default: one line per kind with a count)")


def verbosity(args: argparse.Namespace) -> int:
    """-1 quiet, 0 default, 1 verbose (and ``args.quiet``, ``args.verbose`` set either way)."""
    args.quiet, args.verbose = getattr(args, "quiet", False), getattr(args, "verbose", False)
    return -1 if getattr(args, "quiet", False) else 1 if getattr(args, "verbose", False) else 0


def _source(category, filename: str, text: str = "") -> str:
    """``groupconv`` for the package's own warnings, else the top package of the file
    (torch's C++ warnings name the Python caller's file: they say where they were triggered)."""
    if issubclass(category, GroupConvWarning):
        return "groupconv"
    if "(Triggered internally at " in text:
        return "torch"
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return "python"
    if path.is_relative_to(_PACKAGE_DIR):
        return "groupconv"
    parts = path.parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            i = parts.index(marker)
            if i + 1 < len(parts):
                return Path(parts[i + 1]).stem.split("-")[0]
    return "python"


def _kind(category, text: str) -> tuple:
    if issubclass(category, GroupConvWarning) and category is not GroupConvWarning:
        return (category,)
    return (category, re.sub(r"\d+(\.\d+)?", "#", text))


def _line(source: str, category, text: str) -> str:
    name = "" if category in (UserWarning, GroupConvWarning) else f" ({category.__name__})"
    return f"{source}: warning: {text}{name}"


@contextmanager
def reporting_warnings(level: int):
    """Collect, group and print the warnings raised inside the block (see the module docstring)."""
    _progress.set_enabled(level >= 0)
    groups: dict[tuple, list] = {}

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        source = _source(category, filename, text)
        if level > 0:
            print(_line(source, category, text), file=sys.stderr)
        elif level == 0:
            groups.setdefault(_kind(category, text), []).append((source, category, text))

    with warnings.catch_warnings():
        warnings.showwarning = show
        try:
            yield
        finally:
            for items in groups.values():
                source, category, text = items[0]
                more = len(items) - 1
                extra = f" [and {more} more like it; -v shows all]" if more else ""
                print(_line(source, category, text) + extra, file=sys.stderr)
