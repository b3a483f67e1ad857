"""Saving a figure as PNG and SVG with reproducible bytes."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

__all__ = ["save_figure"]


def save_figure(fig: Figure, out_dir: str | Path, name: str) -> list[Path]:
    """Save ``fig`` as ``out_dir/name.png`` and ``out_dir/name.svg``; returns both paths.

    Dates and random ids are left out of the files so that regenerating a figure with
    the same data gives the same bytes.
    """
    import matplotlib

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    fig.savefig(png, dpi=150, bbox_inches="tight", metadata={"Software": None})
    with matplotlib.rc_context({"svg.hashsalt": "groupconv"}):
        fig.savefig(svg, bbox_inches="tight", metadata={"Date": None, "Creator": None})
    return [png, svg]
