"""Saving a figure as PNG, SVG and PDF with reproducible bytes, and the paper style.

Every figure is drawn for one column of a two-column paper: :data:`COLUMN_WIDTH_IN`
inches wide, fonts of at least :data:`MIN_FONT_PT` points (:func:`paper_style`), so that it
can be placed at 100 % without scaling. :func:`save_figure` writes it as PNG (300 dpi), SVG
(text kept as text, ``svg.fonttype = none``) and PDF (fonts embedded as Type 42), at exactly
the figure's size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from matplotlib.figure import Figure

from .._atomic import atomic_write

__all__ = [
    "COLUMN_WIDTH_IN",
    "MIN_FONT_PT",
    "PAPER_RC",
    "FORMATS",
    "paper_style",
    "column_figure",
    "save_figure",
]

#: Width of one column of a two-column paper (IEEE: 3.5 in; Elsevier: 3.54 in; ACM: 3.33 in).
COLUMN_WIDTH_IN: float = 3.4
#: Smallest font size used anywhere in a figure (points, at 100 % scale).
MIN_FONT_PT: float = 7.0
#: matplotlib settings of the paper style.
PAPER_RC: dict[str, object] = {
    "font.size": 7.5,
    "axes.titlesize": 7.5,
    "axes.labelsize": 7.5,
    "xtick.labelsize": 7.0,
    "ytick.labelsize": 7.0,
    "legend.fontsize": 7.0,
    "legend.title_fontsize": 7.0,
    "figure.titlesize": 8.0,
    "lines.linewidth": 1.0,
    "lines.markersize": 3.5,
    "axes.linewidth": 0.6,
    "grid.linewidth": 0.4,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4,
    "legend.handlelength": 1.8,
    "legend.borderaxespad": 0.3,
    "legend.labelspacing": 0.25,
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
}
#: File formats :func:`save_figure` writes.
FORMATS: tuple[str, ...] = ("png", "svg", "pdf")


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Draw inside this context to get the paper style (matplotlib reads the sizes when an
    artist is created, so the figure keeps them after the context ends)."""
    import matplotlib

    with matplotlib.rc_context(PAPER_RC):
        yield


def column_figure(height_in: float, width_in: float = COLUMN_WIDTH_IN) -> Figure:
    """A figure one column wide with constrained layout (use inside :func:`paper_style`)."""
    return Figure(figsize=(width_in, height_in), layout="constrained")


def save_figure(fig: Figure, out_dir: str | Path, name: str) -> list[Path]:
    """Save ``fig`` as ``out_dir/name.{png,svg,pdf}``; returns the three paths.

    The files have the figure's own size (no tight bounding box), so a column-wide figure
    stays column-wide. Dates and random ids are left out of the files so that regenerating
    a figure with the same data gives the same bytes.
    """
    import matplotlib

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png, svg, pdf = (out / f"{name}.{ext}" for ext in FORMATS)
    with matplotlib.rc_context({"svg.hashsalt": "groupconv", "svg.fonttype": "none", "pdf.fonttype": 42}):
        # each file whole or not at all (a full disk leaves no 0-byte or partial figure)
        with atomic_write(png, "wb") as handle:
            fig.savefig(handle, format="png", dpi=300, metadata={"Software": None})
        with atomic_write(svg, "wb") as handle:
            fig.savefig(handle, format="svg", metadata={"Date": None, "Creator": None})
        with atomic_write(pdf, "wb") as handle:
            fig.savefig(handle, format="pdf",
                        metadata={"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None})
    return [png, svg, pdf]
