"""Helpers shared by the subcommand modules (argument types, JSON output)."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from typing import Any

__all__ = [
    "cli_model",
    "int_arg",
    "positive_int_arg",
    "nonnegative_int_arg",
    "int_at_least",
    "float_arg",
    "positive_float_arg",
    "nonnegative_float_arg",
    "print_json",
    "shape_arg",
    "deprecated_alias",
    "model_inputs",
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


_SHAPE = re.compile(r"[0-9]+(?:,[0-9]+)*|[0-9]+(?:x[0-9]+)*")


def shape_arg(text: str) -> tuple[int, ...]:
    """argparse type, the one shape grammar of every command: positive integers joined by
    commas (``1,3,224,224``) or by ``x`` (``1x3x224x224``), nothing else: ``1,3,x``,
    ``1,,3,8,8``, ``x1,3,8,8`` and ``1,3,8,8x`` are refused, naming the value."""
    body = text.strip()
    if not _SHAPE.fullmatch(body):
        raise argparse.ArgumentTypeError(
            f"not a shape: {text!r} (positive integers joined by commas or by x, e.g. 1,3,224,224 or 1x3x224x224)")
    shape = tuple(int(s) for s in re.split("[,x]", body))
    if any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"not a shape of positive integers: {text!r}")
    return shape


def deprecated_alias(parser, old: str, new: str, **kwargs) -> None:
    """Accept the old spelling ``old`` of option ``new`` (same ``dest``, hidden from
    ``--help``): using it prints one line ``groupconv: note: OLD is deprecated: use NEW``."""
    base = argparse._AppendAction if kwargs.get("action") == "append" else argparse._StoreAction
    kwargs.pop("action", None)
    kwargs.setdefault("default", argparse.SUPPRESS)

    class Deprecated(base):  # type: ignore[misc, valid-type]
        def __call__(self, p, namespace, values, option_string=None):
            print(f"groupconv: note: {old} is deprecated: use {new}", file=sys.stderr)
            super().__call__(p, namespace, values, option_string)

    parser.add_argument(old, action=Deprecated, help=argparse.SUPPRESS, **kwargs)


def cli_model(args: argparse.Namespace):
    """The model ``args.model`` names: a catalogue network with its ``--variant``/``--groups``,
    or any other MODEL spec (which takes neither: one line if given)."""
    from ..errors import GroupConvError
    from ..networks import ARCHITECTURES, resolve_model

    if args.model in ARCHITECTURES:
        return resolve_model(args.model, variant=args.variant, group=args.group)
    if args.variant is not None or args.group is not None:
        raise GroupConvError(f"--variant/--groups are for catalogue networks ({', '.join(ARCHITECTURES)}), "
                             f"not {args.model!r}")
    return resolve_model(args.model)


def model_inputs(shapes, input_dtype: str):
    """The inputs of a model from ``--input-shape`` (one or several) and ``--input-dtype``:
    the shape(s) themselves for float32 (the counter makes the tensors), else zero tensors
    of that dtype (e.g. int64 token ids)."""
    import torch

    from ..errors import GroupConvError

    dtype = getattr(torch, input_dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise GroupConvError(f"--input-dtype must be a torch dtype name such as float32 or int64, got {input_dtype!r}")
    if dtype == torch.float32:
        return list(shapes) if len(shapes) > 1 else shapes[0]
    return tuple(torch.zeros(s, dtype=dtype) for s in shapes)
