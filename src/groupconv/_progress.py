"""Progress bars on long steps (tqdm), shown on a terminal only and silenced by ``-q``.

Library code wraps a long loop in :func:`progress`; a bar appears on stderr when stderr
is a terminal (tqdm's ``disable=None``) and progress is enabled. The CLI's ``-q/--quiet``
calls :func:`set_enabled(False) <set_enabled>`; so can a user of the library, or set the
environment variable ``GROUPCONV_PROGRESS=0``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["progress", "set_enabled", "enabled"]

T = TypeVar("T")
_ENABLED = [os.environ.get("GROUPCONV_PROGRESS", "1") not in ("0", "false", "no")]


def set_enabled(on: bool) -> None:
    """Turn progress bars on (the default: on a terminal) or off everywhere."""
    _ENABLED[0] = bool(on)


def enabled() -> bool:
    """Whether progress bars may be shown (they still need a terminal)."""
    return _ENABLED[0]


def progress(iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """``iterable`` wrapped in a tqdm bar on stderr (a terminal only; none with ``-q``)."""
    if not _ENABLED[0]:
        return iter(iterable)
    from tqdm import tqdm  # the plain bar: tqdm.auto warns in a notebook without ipywidgets

    return iter(tqdm(iterable, desc=desc, total=total, unit=unit, disable=None, leave=False, dynamic_ncols=True))
