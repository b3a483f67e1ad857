"""Small input checks shared by every module; each raises a one-line GroupConvError.

Use these instead of writing the same ``if ... raise`` again, so that every message
has the same shape: ``<name> must be <rule>, got <value>``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real

from .errors import GroupConvError

__all__ = [
    "positive_int",
    "nonnegative_int",
    "divides",
    "in_interval",
    "finite_positive",
    "one_of",
]


def positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int if it is an integer >= 1, else raise."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise GroupConvError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def nonnegative_int(name: str, value: object) -> int:
    """Return ``value`` as an int if it is an integer >= 0, else raise."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise GroupConvError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def divides(groups_name: str, groups: int, channels_name: str, channels: int) -> None:
    """Raise unless ``groups`` divides ``channels`` (e.g. groups=3 and in_channels=64)."""
    if channels % groups != 0:
        raise GroupConvError(
            f"{channels_name}={channels} is not divisible by {groups_name}={groups}"
        )


def in_interval(
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    low_open: bool = True,
    high_open: bool = True,
) -> float:
    """Return ``value`` as a float if it lies in the interval, else raise.

    ``in_interval("alpha", a, 0, 1, high_open=False)`` checks a in (0, 1].
    """
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise GroupConvError(f"{name} must be a finite number, got {value!r}")
    x = float(value)
    too_low = x <= low if low_open else x < low
    too_high = x >= high if high_open else x > high
    if too_low or too_high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise GroupConvError(f"{name} must lie in {interval}, got {value!r}")
    return x


def finite_positive(name: str, value: object) -> float:
    """Return ``value`` as a float if it is finite and > 0, else raise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise GroupConvError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


def one_of(name: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    options = list(choices)
    if value not in options:
        raise GroupConvError(f"unknown {name} {value!r}; choose one of {', '.join(options)}")
    return str(value)
