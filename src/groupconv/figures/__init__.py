"""The papers' figures, regenerated from groupconv's own models.

Every module in this package (other than those starting with ``_``) defines::

    FIGURES = {"name": make_function, ...}

where ``make_function()`` returns a :class:`matplotlib.figure.Figure` built from the
embedded defaults (no GPU, no downloads). :func:`make_all` saves each one as
``<out_dir>/<name>.png``, ``.svg`` and ``.pdf`` (see :mod:`._save`).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import GroupConvError
from ._save import COLUMN_WIDTH_IN, column_figure, paper_style, save_figure

__all__ = ["registry", "make_all", "save_figure", "paper_style", "column_figure", "COLUMN_WIDTH_IN"]


def registry() -> dict[str, Callable]:
    """Name -> figure-making function, for every figure the package knows."""
    figures: dict[str, Callable] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        figures.update(module.FIGURES)
    return figures


def make_all(
    out_dir: str | Path = "figures",
    names: Iterable[str] | None = None,
    progress: bool = False,
) -> list[Path]:
    """Make and save the named figures (all by default); returns the files written."""
    known = registry()
    chosen = list(known) if names is None else list(names)
    for name in chosen:
        if name not in known:
            raise GroupConvError(f"unknown figure {name!r}; choose one of {', '.join(known)}")
    # A bad output folder is reported before any figure is drawn.
    if not str(out_dir).strip():
        raise GroupConvError(f"output folder must be a path, got {str(out_dir)!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise GroupConvError(f"output folder {str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    if progress:
        from tqdm.auto import tqdm

        chosen_iter = tqdm(chosen, desc="figures", unit="fig")
    else:
        chosen_iter = chosen
    written: list[Path] = []
    for name in chosen_iter:
        written.extend(save_figure(known[name](), out_dir, name))
    return written
