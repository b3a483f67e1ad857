"""The E2GC Fig. 1 redrawn from Tables III/IV with fitted curves."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from groupconv.figures import registry
from groupconv.figures.e2gc_energy import groups_axis, make_e2gc_fig1_fit
from groupconv.paper_tables import load_epf


def test_figure_is_registered_and_plots_every_measurement():
    assert registry()["e2gc_fig1_fit"] is make_e2gc_fig1_fit
    fig = make_e2gc_fig1_fit()
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert len(axes) == 4  # 2 networks x 2 platforms, both families in each panel
    measured = []
    for ax in axes:
        lines = ax.get_lines()
        assert len(lines) == 18  # 2 families x 3 batch sizes x (measured, best model, paper law)
        points = [line for line in lines if line.get_linestyle() == "None"]
        measured.extend(y for line in points for y in line.get_ydata())
        # each fit's MAPE is given once, in the panel's title
        assert ax.get_title().count("MAPE") == 1
        # one x direction: more groups to the right, in every panel and for both families
        for line in points:
            assert np.all(np.diff(line.get_xdata()) > 0)
    # every EPF of Tables III/IV appears once, in mJ
    assert np.allclose(np.sort(measured), np.sort(load_epf().epf_J.to_numpy() * 1e3))


def test_x_is_the_number_of_groups_for_both_families():
    # FgGC: g itself
    assert groups_axis("mobilenet_v1", "fggc", 8) == pytest.approx(8)
    # E2GC G = 1 on MobileNet-V1 is depthwise: 13 grouped convs with 32, 64, 128, 128, 256,
    # 256, 512 x 6, 1024 channels, one group per channel -> their geometric mean
    channels = [32, 64, 128, 128, 256, 256] + [512] * 6 + [1024]
    assert groups_axis("mobilenet_v1", "e2gc", 1) == pytest.approx(np.exp(np.mean(np.log(channels))))
    # larger G (more channels per group) means fewer groups, so smaller x
    xs = [groups_axis("mobilenet_v1", "e2gc", G) for G in (1, 2, 4, 8, 16, 32)]
    assert np.all(np.diff(xs) < 0)
