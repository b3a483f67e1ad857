"""E2GC Fig. 3: M_c, AI and memory accesses from SConv to DWConv, normalised to DWConv.

The paper's setting: n = m = 512, 3x3 filters, 14x14 feature maps, g = 1, 2, ..., 512.
Memory accesses are estimated as 1/AI = (P + A)/M_c, accesses per MAC, as the paper does
(Sec. III-A), and labelled so. Every value comes from :mod:`groupconv.cost.numeric`.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .. import _validate as v
from ..cost import numeric as num
from ..errors import GroupConvError
from ._save import column_figure, paper_style

__all__ = ["FIGURES", "fig3_data", "make_fig3"]


def fig3_data(m: int = 512, n: int = 512, d_k: int = 3, h: int = 14, w: int = 14) -> dict[str, np.ndarray]:
    """The curves of E2GC Fig. 3, normalised to DWConv (g = m).

    Returns
    -------
    dict of ndarray
        ``g`` (1, 2, 4, ..., m; m must be a power of two dividing n), ``G`` = m/g, and
        ``macs``, ``ai``, ``memory_accesses`` each divided by its value at g = m.
    """
    m = v.positive_int("m", m)
    if m & (m - 1):
        raise GroupConvError(f"m must be a power of two for Fig. 3's axis, got {m}")
    v.divides("m", m, "n", v.positive_int("n", n))
    g = 2.0 ** np.arange(int(np.log2(m)) + 1)
    macs = num.macs(m, n, d_k, h, w, g, integer_groups=True)
    ai = num.arithmetic_intensity(m, n, d_k, h, w, g, integer_groups=True)
    memory = num.memory_access_proxy(m, n, d_k, h, w, g, integer_groups=True)
    return {
        "g": g,
        "G": m / g,
        "macs": macs / macs[-1],
        "ai": ai / ai[-1],
        "memory_accesses": memory / memory[-1],
    }


def make_fig3(m: int = 512, n: int = 512, d_k: int = 3, h: int = 14, w: int = 14) -> Figure:
    """E2GC Fig. 3 for the given layer (defaults: the paper's 512 -> 512, 3x3, 14x14).

    Bottom axis: the number of groups g (SConv at g = 1, DWConv at g = m); top axis: the
    channels per group G = m/g. Right axis: memory accesses per MAC, 1/AI = (P + A)/M_c,
    the paper's proxy for memory accesses.
    """
    data = fig3_data(m, n, d_k, h, w)
    with paper_style():
        fig = column_figure(2.7)
        ax = fig.add_subplot()
        x = np.arange(len(data["g"]))
        ax.plot(x, data["macs"], "o-", color="tab:blue", label="$M_c$ (MACs)")
        ax.plot(x, data["ai"], "s-", color="tab:green", label="AI")
        ax.set_yscale("log")
        ax.set_ylabel("$M_c$ and AI / DWConv's")
        ax.set_xticks(x, [str(int(gi)) for gi in data["g"]])
        ax.set_xlabel(f"number of groups g (1 = SConv, {m} = DWConv)")
        ax.grid(True, which="major", alpha=0.3)
        top = ax.secondary_xaxis("top")
        top.set_xticks(x, [str(int(Gi)) for Gi in data["G"]])
        top.set_xlabel("channels per group G = m/g")

        right = ax.twinx()
        right.plot(x, data["memory_accesses"], "^--", color="tab:red", label="accesses per MAC (1/AI)")
        right.set_yscale("log")
        right.set_ylabel("accesses per MAC (1/AI) / DWConv's", color="tab:red")
        right.tick_params(axis="y", colors="tab:red")

        handles = ax.get_lines() + right.get_lines()
        fig.legend(handles, [line_.get_label() for line_ in handles], loc="outside lower center",
                   ncol=3, frameon=False, columnspacing=1.0, handlelength=1.5)
        ax.set_title(f"n = {n}, m = {m}, {d_k}x{d_k} filters, {h}x{w} maps")
    return fig


FIGURES = {"e2gc_fig3": make_fig3}
