"""BGC with N groups against GC with N/2: the same cost, and under white data the same error."""

from __future__ import annotations

import numpy as np
import pytest

from groupconv.approx import theory
from groupconv.approx.measure import ApproxConfig, approximability
from groupconv.approx.structures import BGCStructure, GCStructure
from groupconv.cost.numeric import gc_variant_cost, gc_variant_params
from groupconv.figures import registry
from groupconv.figures.bgc_approx import make_equal_cost, paper_sweeps

SMALL = ApproxConfig(in_channels=64, out_channels=64, data_samples=16, weight_samples=2)


@pytest.mark.parametrize("N", [4, 8, 16])
def test_bgc_at_N_costs_what_gc_at_half_N_costs(N):
    n, m, K, D = 64, 32, 9, 49
    # hand arithmetic: 2 K m n / N weights for BGC (BGC Table 1), K m n / (N/2) for GC
    assert gc_variant_params("BGC", n, m, K, N) == gc_variant_params("GC", n, m, K, N // 2) == 2 * K * m * n // N
    # conv MACs too; BGC adds D n additions for the mean (Eq. 3.14)
    assert gc_variant_cost("BGC", n, m, K, N, D) == gc_variant_cost("GC", n, m, K, N // 2, D) + D * n


@pytest.mark.parametrize("N", [4, 8, 16, 32])
def test_white_data_theory_gives_equal_error_at_equal_cost(N):
    n = 64
    # (1 - 2/N)/n for both: BGC's features span n/N + n/N channels, GC's 2n/N
    assert theory.rel_E_population("bgc", N, n) == pytest.approx(theory.rel_E_population("gc", N // 2, n), rel=1e-15)
    bgc, gc = BGCStructure(N).layout(n, n), GCStructure(N // 2).layout(n, n)
    assert theory.rel_E_population_layout(bgc) == pytest.approx(theory.rel_E_population_layout(gc), rel=1e-15)
    # same unknowns per output (2 n K / N), so the same finite-sample bias and padding factor
    for padding in ("valid", "same"):
        a = theory.expected_E(bgc, (3,), (16,), padding, 40, 2 / (3 * n))
        b = theory.expected_E(gc, (3,), (16,), padding, 40, 2 / (3 * n))
        assert a.E == pytest.approx(b.E, rel=1e-12)


def test_measured_errors_at_equal_cost_agree_within_sampling_noise():
    sweep = approximability(ApproxConfig(in_channels=32, out_channels=32, data_samples=64,
                                         weight_samples=8, seed=2), groups=(2, 4, 8), methods=("gc", "bgc"))
    for N in (4, 8):
        b, g = sweep.result("bgc", N), sweep.result("gc", N // 2)
        assert abs(b.E - g.E) < 4 * np.hypot(b.E_stderr, g.E_stderr)
        # and against the exact data-conditional expectations, which differ only by how
        # these particular data fill the two feature sets
        assert b.expected_E_given_data == pytest.approx(g.expected_E_given_data, rel=0.05)


def test_equal_cost_figure_plots_the_sweep_against_parameters_kept():
    assert registry()["bgc_equal_cost"] is make_equal_cost
    fig = make_equal_cost(SMALL)
    (ax,) = fig.get_axes()
    sweep = paper_sweeps(SMALL)["normal"]
    lines = {line.get_label(): line for line in ax.get_lines()}
    gc, bgc = lines["GC, N = 4..64"], lines["BGC, N = 4..64"]
    np.testing.assert_allclose(gc.get_xdata(), [1 / r.groups for r in sweep.select("gc")])
    np.testing.assert_allclose(bgc.get_xdata(), [2 / r.groups for r in sweep.select("bgc")])
    np.testing.assert_allclose(bgc.get_ydata(), [64 * r.rel_E for r in sweep.select("bgc")])
    white = lines[r"white data: $1 - f$ (GC and BGC)"]
    np.testing.assert_allclose(white.get_ydata(), 1 - white.get_xdata())
