"""The E2GC paper's Fig. 1 redrawn from its Tables III/IV, with fitted model curves.

One panel per network x platform x family: EPF against G (E2GC, constant group size)
or g (FgGC, fixed number of groups), measured points per batch size, the best model's
fit (solid) and the paper's law (dashed), each fitted to that network x platform.
"""

from __future__ import annotations

from matplotlib.figure import Figure

__all__ = ["FIGURES", "make_e2gc_fig1_fit"]

_NETWORKS = (("mobilenet_v1", "MobileNet-V1"), ("resnext50", "ResNeXt-50"))
_FAMILIES = (("e2gc", "E2GC", "G (channels per group)"), ("fggc", "FgGC", "g (number of groups)"))
_COLORS = {1: "tab:blue", 4: "tab:orange", 16: "tab:green"}


def make_e2gc_fig1_fit() -> Figure:
    """EPF vs g / G, measured and predicted, per network, platform and batch size."""
    import numpy as np

    from ..fit import BEST_MODEL, fit_model, paper_dataset
    from ..paper_tables import PLATFORMS

    fig = Figure(figsize=(15, 7), layout="constrained")
    axes = fig.subplots(len(_NETWORKS), len(PLATFORMS) * len(_FAMILIES))
    for row, (network, net_title) in enumerate(_NETWORKS):
        for p, platform in enumerate(PLATFORMS):
            data = paper_dataset(network, platform)
            best = fit_model(BEST_MODEL, data, loo=False)
            paper = fit_model("paper", data, loo=False)
            table = best.table().assign(paper_J=paper.predicted)
            for f, (variant, family, xlabel) in enumerate(_FAMILIES):
                ax = axes[row, p * len(_FAMILIES) + f]
                part = table[table["variant"] == variant]
                for batch, sub in part.groupby("batch"):
                    sub = sub.sort_values("group")
                    color = _COLORS.get(int(batch), "black")
                    x = sub["group"].to_numpy()
                    ax.plot(x, sub["energy_J"] * 1e3, "o", color=color, label=f"measured B={batch}")
                    ax.plot(x, sub["predicted_J"] * 1e3, "-", color=color, label=f"{BEST_MODEL} model B={batch}")
                    ax.plot(x, sub["paper_J"] * 1e3, "--", color=color, alpha=0.6, label=f"paper law B={batch}")
                ax.set_xscale("log", base=2)
                ticks = np.sort(part["group"].unique())
                ax.set_xticks(ticks, [str(t) for t in ticks])
                ax.set_title(f"{net_title} {family}, {platform}\n"
                             f"{BEST_MODEL} MAPE {best.mape * 100:.1f}%, paper {paper.mape * 100:.1f}%",
                             fontsize=9)
                ax.set_xlabel(xlabel, fontsize=8)
                if p == 0 and f == 0:
                    ax.set_ylabel("EPF (mJ)")
                ax.tick_params(labelsize=8)
                ax.grid(True, alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels) // 1 if len(labels) <= 9 else 9,
               fontsize=8)
    fig.suptitle("E2GC Fig. 1 from Tables III/IV: EPF per frame (forward + backward) vs group setting; "
                 "points measured, lines fitted per network x platform")
    return fig


FIGURES = {"e2gc_fig1_fit": make_e2gc_fig1_fit}
