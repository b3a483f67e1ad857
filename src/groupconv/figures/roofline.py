"""Roofline figure of a platform, with the operators of a predicted network on it.

x: arithmetic intensity (MACs per byte moved), y: MAC rate (MAC/s); the roof is
``min(peak, intensity * bandwidth)`` from the platform's roofline constants. Each operator
of a :class:`~groupconv.platform.Prediction` is a point at its predicted rate, coloured
by kernel type; ops without MACs (memory-bound by construction) are not drawn (their
rate is 0) but counted in the legend.
"""

from __future__ import annotations

from matplotlib.figure import Figure

__all__ = ["FIGURES", "roofline_figure"]

#: Nothing for ``groupconv figures`` to regenerate: the roofline needs a platform file.
FIGURES: dict = {}


def roofline_figure(platform, prediction=None, *, title: str | None = None) -> Figure:
    """A column-width (3.4 in) roofline plot of ``platform`` (and ``prediction``'s ops)."""
    import numpy as np

    r = platform.roofline
    fig = Figure(figsize=(3.4, 2.6))
    ax = fig.add_subplot()
    ai = np.logspace(-2, 3, 200)
    ax.loglog(ai, np.minimum(r.peak_macs_per_s, ai * r.bandwidth_bytes_per_s), color="k", lw=1.2, label="roofline")
    ax.axvline(r.ridge_macs_per_byte, color="0.6", lw=0.6, ls=":")
    if prediction is not None:
        kernels = sorted({o.kernel for o in prediction.ops})
        cmap = {k: f"C{i % 10}" for i, k in enumerate(kernels)}
        for k in kernels:
            pts = [(o.macs / o.bytes, o.macs / o.time_s) for o in prediction.ops
                   if o.kernel == k and o.macs > 0 and o.bytes > 0 and o.time_s > 0]
            n = sum(1 for o in prediction.ops if o.kernel == k)
            if pts:
                x, y = zip(*pts)
                ax.scatter(x, y, s=8, color=cmap[k], label=f"{k} ({n})", alpha=0.8, lw=0)
            else:
                ax.scatter([], [], s=8, color=cmap[k], label=f"{k} ({n}, no MACs)")
    ax.set_xlabel("arithmetic intensity (MAC/byte)", fontsize=7)
    ax.set_ylabel("MAC/s", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set_title(title or f"{platform.metadata.get('device_name', platform.device)}", fontsize=7)
    ax.legend(fontsize=6, loc="lower right", frameon=False)
    fig.tight_layout()
    return fig
