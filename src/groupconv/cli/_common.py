"""Helpers shared by the subcommand modules (argument types, JSON output)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

__all__ = [
    "int_arg",
    "positive_int_arg",
    "nonnegative_int_arg",
    "int_at_least",
    "float_arg",
    "positive_float_arg",
    "nonnegative_float_arg",
    "print_json",
]


def int_arg(text: str) -> int:
    """argparse type: any integer (the library checks the range and names the value)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def positive_int_arg(text: str) -> int:
    """argparse type: an integer >= 1 (argparse reports the bad value and exits 2)."""
    value = int_arg(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def nonnegative_int_arg(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int_arg(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def int_at_least(low: int):
    """argparse type factory: an integer >= ``low`` (the message names the flag and the bound)."""

    def parse(text: str) -> int:
        value = int_arg(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
        return value

    parse.__name__ = f"int_at_least_{low}"
    return parse


def float_arg(text: str) -> float:
    """argparse type: a float (range checks happen in the library, which names the value)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def positive_float_arg(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = float_arg(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite positive number, got {text!r}")
    return value


def nonnegative_float_arg(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = float_arg(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite non-negative number, got {text!r}")
    return value


def print_json(obj: Any) -> None:
    """Print ``obj`` as strict, indented JSON on stdout.

    Strict: no ``NaN``/``Infinity`` (which are not JSON); a non-finite number is written
    as ``null`` and a one-line note on stderr says how many there were.
    """
    count = [0]

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            count[0] += 1
            return None
        if hasattr(value, "tolist") and not isinstance(value, (list, tuple, dict, str)):
            return clean(value.tolist())  # numpy scalars and arrays
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    text = json.dumps(clean(obj), indent=2, allow_nan=False, default=str)
    sys.stdout.write(text + "\n")
    if count[0]:
        print(f"groupconv: note: {count[0]} non-finite number(s) (NaN or infinity) written as null",
              file=sys.stderr)

