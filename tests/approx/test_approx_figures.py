"""BGC paper Fig. 1 and Fig. 2: registered, and drawing exactly the sweep's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from groupconv.approx.measure import ApproxConfig
from groupconv.figures import registry
from groupconv.figures.bgc_approx import PAPER_GROUPS, make_fig1, make_fig2, paper_sweeps

SMALL = ApproxConfig(in_channels=64, out_channels=64, data_samples=16, weight_samples=2)


def test_registered_for_groupconv_figures():
    names = registry()
    assert names["bgc_fig1"] is make_fig1 and names["bgc_fig2"] is make_fig2


def test_fig1_plots_log_E_against_log_one_minus_one_over_N():
    fig = make_fig1(SMALL)
    sweeps = paper_sweeps(SMALL)
    axes = fig.get_axes()
    assert len(axes) == 2
    for ax, dist in zip(axes, ("normal", "uniform")):
        lines = ax.get_lines()
        gc_points = lines[0]
        expected_x = np.log(1 - 1 / np.array(PAPER_GROUPS, dtype=float))
        np.testing.assert_allclose(gc_points.get_xdata(), expected_x)
        np.testing.assert_allclose(gc_points.get_ydata(), np.log([r.E for r in sweeps[dist].select("gc")]))
        assert f"slope {sweeps[dist].slope('gc'):.2f}" in gc_points.get_label()


def test_fig2_draws_both_readings_of_p():
    fig = make_fig2(SMALL)
    sweeps = paper_sweeps(SMALL)
    left, right = fig.get_axes()
    assert "text" in left.get_title() and "caption" in right.get_title()
    n_groups = np.array(PAPER_GROUPS, dtype=float)
    bgc = np.array([r.rel_E for r in sweeps["normal"].select("bgc")])
    labels = [line.get_label() for line in left.get_lines()]
    left_bgc = left.get_lines()[labels.index("BGC, normal")]
    right_bgc = right.get_lines()[labels.index("BGC, normal")]
    np.testing.assert_allclose(left_bgc.get_ydata(), bgc / (1 - 1 / n_groups) ** 2)
    np.testing.assert_allclose(right_bgc.get_ydata(), bgc / (1 - 1 / n_groups) ** 3)


@pytest.mark.slow
def test_default_figures_save(tmp_path):
    from groupconv.figures import make_all

    written = make_all(tmp_path, ["bgc_fig1", "bgc_fig2"])
    assert sorted(p.name for p in written) == ["bgc_fig1.png", "bgc_fig1.svg", "bgc_fig2.png", "bgc_fig2.svg"]
    assert all(p.stat().st_size > 1000 for p in written)
