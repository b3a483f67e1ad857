"""Refusing runs that cannot fit in memory, before anything is allocated.

A huge size (``--in-channels 1000000000``) should end in one line that says what the run
would need, not in an allocator's traceback. :func:`check_fits` compares a lower bound on
the bytes a run needs with the memory of the device it runs on and raises a one-line
:class:`~groupconv.errors.GroupConvError` when the bound alone does not fit.
"""

from __future__ import annotations

import os

from .errors import GroupConvError

__all__ = ["format_bytes", "device_memory_bytes", "check_fits"]


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units, about 3 significant digits:
    ``format_bytes(3 * 2**40) == '3 TiB'``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            break
        value /= 1024
    if unit == "B":
        return f"{int(value)} B"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    text = f"{value:.{digits}f}"
    return f"{text.rstrip('0').rstrip('.') if '.' in text else text} {unit}"


def device_memory_bytes(device: str = "cpu") -> int | None:
    """Total memory of ``device``: physical RAM for ``cpu``, the GPU's memory for ``cuda[:N]``
    (through torch); ``None`` where it cannot be read."""
    if device == "cpu":
        try:
            return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    try:
        import torch

        index = int(device.split(":")[1]) if ":" in device else 0
        return int(torch.cuda.get_device_properties(index).total_memory)
    except Exception:  # no CUDA, a bad index: the run itself will say so
        return None


def check_fits(what: str, needed_bytes: int, device: str = "cpu", *, available: int | None = None) -> None:
    """Raise unless ``needed_bytes`` (a lower bound) fits in the memory of ``device``.

    ``available`` overrides the device's memory (tests, or a known budget).
    """
    total = device_memory_bytes(device) if available is None else available
    if total is not None and needed_bytes > total:
        raise GroupConvError(
            f"{what} needs at least {format_bytes(needed_bytes)} ({needed_bytes:,} bytes), "
            f"more than the {format_bytes(total)} of {device} memory; use smaller sizes"
        )
