"""The E2GC paper's Fig. 1 redrawn from its Tables III/IV, with fitted model curves.

One panel per network x platform (2 x 2, one paper column). Both families share one x axis
running the same way, the number of groups: FgGC's g is the same in every grouped conv;
E2GC's constant group size G gives g = channels / G groups in each grouped conv, and is
placed at the geometric mean of those g over the network's grouped convs (so that, as for
FgGC, "more groups" is to the right). Points are the paper's EPF per batch size (filled:
E2GC, open: FgGC), solid lines the best model and dashed lines the paper's law, each fitted
to that network x platform; each panel's title gives both fits' MAPE once.
"""

from __future__ import annotations

from functools import lru_cache

from matplotlib.figure import Figure

from ..fit import BEST_MODEL, fit_model, paper_dataset
from ..networks import build_network
from ..paper_tables import PLATFORMS
from ._save import column_figure, paper_style

__all__ = ["FIGURES", "make_e2gc_fig1_fit", "groups_axis"]

_NETWORKS = (("mobilenet_v1", "MobileNet-V1"), ("resnext50", "ResNeXt-50"))
_FAMILIES = (("e2gc", "E2GC (mean g)", "o", "full"), ("fggc", "FgGC", "^", "none"))
_COLORS = {1: "tab:blue", 4: "tab:orange", 16: "tab:green"}


@lru_cache(maxsize=None)
def groups_axis(network: str, variant: str, group: int) -> float:
    """Where a network variant sits on the figure's x axis: the geometric mean, over the
    grouped convs the variant changes, of their number of groups (FgGC: exactly ``group``)."""
    import numpy as np

    net = build_network(network, variant, group)
    varied = [layer.groups for layer in net.layers if layer.name in net.varied]
    return float(np.exp(np.mean(np.log(varied))))


def make_e2gc_fig1_fit() -> Figure:
    """EPF vs number of groups, measured and predicted, per network, platform and batch size."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    with paper_style():
        fig = column_figure(3.8)
        axes = fig.subplots(len(_NETWORKS), len(PLATFORMS), sharex="row")
        for row, (network, net_title) in enumerate(_NETWORKS):
            for col, platform in enumerate(PLATFORMS):
                ax = axes[row, col]
                data = paper_dataset(network, platform)
                best = fit_model(BEST_MODEL, data, loo=False)
                paper = fit_model("paper", data, loo=False)
                table = best.table().assign(paper_J=paper.predicted)
                for variant, _, marker, fill in _FAMILIES:
                    part = table[table["variant"] == variant]
                    for batch, sub in part.groupby("batch"):
                        sub = sub.assign(x=[groups_axis(network, variant, int(g)) for g in sub["group"]])
                        sub = sub.sort_values("x")
                        color = _COLORS.get(int(batch), "black")
                        x = sub["x"].to_numpy()
                        ax.plot(x, sub["energy_J"] * 1e3, marker, color=color, fillstyle=fill,
                                linestyle="none", markeredgewidth=0.7)
                        ax.plot(x, sub["predicted_J"] * 1e3, "-", color=color, linewidth=0.9)
                        ax.plot(x, sub["paper_J"] * 1e3, "--", color=color, linewidth=0.7, alpha=0.7)
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                low, high = ax.get_xlim()
                ticks = [4.0**k * 2 for k in range(0, 6) if low <= 4.0**k * 2 <= high]
                ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
                ax.xaxis.set_minor_locator(NullLocator())
                ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
                ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
                ax.yaxis.set_minor_locator(NullLocator())
                ax.set_title(f"{net_title}, {platform}\nMAPE {BEST_MODEL} {best.mape * 100:.1f}%, "
                             f"law {paper.mape * 100:.0f}%", fontsize=7)
                ax.grid(True, which="major", alpha=0.3)
                if row == len(_NETWORKS) - 1:
                    ax.set_xlabel("groups g per conv")
        fig.supylabel("EPF per frame (mJ)", fontsize=7.5)
        handles = [Line2D([], [], color=c, marker="s", linestyle="none", markersize=4, label=f"B = {b}")
                   for b, c in _COLORS.items()]
        handles += [Line2D([], [], color="gray", marker=m, fillstyle=f, linestyle="none", label=name)
                    for _, name, m, f in _FAMILIES]
        handles += [Line2D([], [], color="gray", linestyle="-", label=f"{BEST_MODEL} model"),
                    Line2D([], [], color="gray", linestyle="--", label="paper's law")]
        fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False,
                   columnspacing=0.9, handletextpad=0.4)
    return fig


FIGURES = {"e2gc_fig1_fit": make_e2gc_fig1_fit}
