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
        gc_points = next(line for line in lines if line.get_label().startswith("GC measured"))
        expected_x = np.log(1 - 1 / np.array(PAPER_GROUPS, dtype=float))
        np.testing.assert_allclose(gc_points.get_xdata(), expected_x)
        np.testing.assert_allclose(gc_points.get_ydata(), np.log([r.E for r in sweeps[dist].select("gc")]))
        assert f"slope {sweeps[dist].slope('gc'):.2f}" in gc_points.get_label()
        # N is marked on a top axis at x = log(1 - 1/N); each panel has its own y range
        (top,) = ax.child_axes
        np.testing.assert_allclose(top.get_xticks(), expected_x)
        assert [t.get_text() for t in top.get_xticklabels()] == [str(g) for g in PAPER_GROUPS]
        values = np.log([r.E for m in ("gc", "bgc") for r in sweeps[dist].select(m)])
        low, high = ax.get_ylim()
        assert low <= values.min() and values.max() <= high
        assert (values.max() - values.min()) / (high - low) > 0.8  # the data fill the panel


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
    for ax in (left, right):
        lines = ax.get_lines()
        by_label = {line.get_label(): line for line in lines}
        # the K/n it cites (K = 3 taps, n = 64) is drawn ...
        k_over_n = next(line for label, line in by_label.items() if label.startswith("K/n = "))
        np.testing.assert_allclose(k_over_n.get_ydata(), [3 / 64, 3 / 64])
        assert ax.get_ylim()[1] >= 3 / 64
        # ... and the exact expectation lies on top of every data line
        exact = [line for line in lines if line.get_color() == "black" and len(line.get_xdata()) == 5]
        data = [line for line in lines if line.get_marker() not in ("None", "", None)]
        assert len(exact) == 2 and data
        assert min(line.get_zorder() for line in exact) > max(line.get_zorder() for line in data)


@pytest.mark.slow
def test_default_figures_save(tmp_path):
    from groupconv.figures import make_all

    written = make_all(tmp_path, ["bgc_fig1", "bgc_fig2"])
    assert sorted(p.name for p in written) == [f"bgc_fig{i}.{ext}" for i in (1, 2) for ext in ("pdf", "png", "svg")]
    assert all(p.stat().st_size > 1000 for p in written)
