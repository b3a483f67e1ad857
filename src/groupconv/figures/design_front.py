"""The figure of a design: the Pareto front of predicted cost against error, with the
paper's constant plans (GC/FgGC and BGC with one N, E2GC with one G) drawn on it."""

from __future__ import annotations

from pathlib import Path

from ._save import save_figure

__all__ = ["FIGURES", "front_figure"]

#: None for ``groupconv figures``: a design front needs a design (made by ``groupconv design
#: ... --figure`` and in ``notebooks/08_design.ipynb``).
FIGURES: dict = {}

_MARKERS = {"gc": ("o", "tab:blue", "GC / FgGC, constant N"), "bgc": ("s", "tab:orange", "BGC, constant N"),
            "e2gc": ("^", "tab:green", "E2GC, constant G")}


def front_figure(result, out_dir: str | Path | None = None, name: str = "design_front", ax=None):
    """Draw ``result`` (a :class:`~groupconv.design.design.Design`); returns ``(fig, paths)``.

    The x axis is the predicted cost per frame (ms or mJ), the y axis the total error
    (the design's aggregate). With ``out_dir`` the figure is saved as PNG,
    SVG (:func:`groupconv.figures.save_figure`) and PDF, sized for one paper
    column (3.4 in wide).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    objective = result.objective
    scale, unit = (1e3, "ms") if objective == "time_s" else (1e3, "mJ")
    with plt.rc_context({"font.size": 7, "axes.labelsize": 7, "legend.fontsize": 6.5,
                         "xtick.labelsize": 7, "ytick.labelsize": 7}):
        if ax is None:
            fig, ax = plt.subplots(figsize=(3.4, 2.5), layout="constrained")
        else:
            fig = ax.figure
        xs = [p.cost(objective) * scale for p in result.front]
        ys = [p.error for p in result.front]
        ax.step(xs, ys, where="post", color="0.3", lw=0.9, zorder=1)
        ax.plot(xs, ys, ".", color="0.3", ms=3, label="designed (Pareto front)", zorder=2)
        seen = set()
        for p in result.constant:
            kind = p.label.split()[0]
            marker, color, label = _MARKERS.get(kind, ("x", "k", kind))
            ax.plot(p.cost(objective) * scale, p.error, marker, mfc="none", color=color, ms=4.5,
                    label=None if kind in seen else label, zorder=3)
            seen.add(kind)
        if result.chosen is not None:
            c = result.chosen
            ax.plot(c.cost(objective) * scale, c.error, "*", color="tab:red", ms=8, label="chosen", zorder=4)
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xlabel(f"predicted {'time' if objective == 'time_s' else 'energy'} per frame ({unit})")
        ax.set_ylabel("total error (sum of " + ("network" if result.aggregate == "network_E" else "layer")
                      + " output E)")
        ax.legend(frameon=False, loc="upper right")
        ax.grid(alpha=0.3, lw=0.4)
    paths = []
    if out_dir is not None:
        paths = save_figure(fig, out_dir, name)  # PNG, SVG and PDF, each once
    return fig, paths
