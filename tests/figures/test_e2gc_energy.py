"""The E2GC Fig. 1 redrawn from Tables III/IV with fitted curves."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from groupconv.figures import registry
from groupconv.figures.e2gc_energy import make_e2gc_fig1_fit
from groupconv.paper_tables import load_epf


def test_figure_is_registered_and_plots_every_measurement():
    assert registry()["e2gc_fig1_fit"] is make_e2gc_fig1_fit
    fig = make_e2gc_fig1_fit()
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert len(axes) == 8  # 2 networks x 2 platforms x (E2GC, FgGC)
    measured = []
    for ax in axes:
        lines = ax.get_lines()
        assert len(lines) == 9  # 3 batch sizes x (measured, best model, paper law)
        points = [line for line in lines if line.get_linestyle() == "None"]
        measured.extend(y for line in points for y in line.get_ydata())
    # every EPF of Tables III/IV appears once, in mJ
    assert np.allclose(np.sort(measured), np.sort(load_epf().epf_J.to_numpy() * 1e3))
