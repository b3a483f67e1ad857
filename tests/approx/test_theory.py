"""Bounds (numeric vs sympy), exact expectations vs Monte Carlo, slopes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.approx import theory
from groupconv.approx.data import DATA_VARIANCE, gram_from_data, he_variance, sample_data, sample_weights
from groupconv.approx.measure import ApproxConfig, approximability
from groupconv.approx.solvers import GramSolver
from groupconv.approx.structures import BGCStructure, GCStructure, PartitionedGCStructure
from groupconv.cost.numeric import gc_variant_cost, gc_variant_params
from groupconv.errors import GroupConvError
from groupconv.figures import registry
from groupconv.figures.bgc_approx import make_equal_cost, paper_sweeps


@given(st.integers(1, 49), st.integers(1, 512), st.integers(1, 256), st.sampled_from(["gc", "bgc"]))
@settings(max_examples=60, deadline=None)
def test_numeric_bounds_equal_sympy(K, n, N, method):
    exprs, (Ks, Ns, ns) = theory.symbolic_bounds()
    subs = {Ks: K, Ns: N, ns: n}
    assert theory.bound_thm(method, N, K) == pytest.approx(float(exprs[(method, "thm")].subs(subs)), rel=1e-14)
    assert theory.bound_iid(method, N, K, n) == pytest.approx(float(exprs[(method, "iid")].subs(subs)), rel=1e-14)
    pop, (Np, np_) = theory.symbolic_rel_E_population()
    expected = float(pop[method].subs({Np: N, np_: n}))
    assert theory.rel_E_population(method, N, n) == pytest.approx(max(expected, 0.0), rel=1e-14, abs=1e-300)


def test_bound_values_from_the_paper():
    # §5.1: K/n = 3/256 ~ 11.72e-3
    assert theory.bound_iid("gc", 1e9, 3, 256) == pytest.approx(11.72e-3, abs=1e-5)
    np.testing.assert_allclose(theory.bound_thm("gc", [2, 4], 3), [0.75, 3 * 0.5625])
    np.testing.assert_allclose(theory.bound_thm("bgc", [2, 4], 3), [3 / 8, 3 * 0.421875])


def test_population_is_below_the_iid_bound_by_the_factor_K():
    n_groups = np.array([2, 4, 8, 16, 32, 64])
    for method in ("gc", "bgc"):
        pop = theory.rel_E_population(method, n_groups, 256)
        bound = theory.bound_iid(method, n_groups, 3, 256)
        assert np.all(pop <= bound / 3 + 1e-18)
    # GC: exactly bound / K
    np.testing.assert_allclose(theory.rel_E_population("gc", n_groups, 256), theory.bound_iid("gc", n_groups, 3, 256) / 3)


def test_slope_limits_in_sympy():
    assert theory.symbolic_slope_limit("gc") == 1
    assert theory.symbolic_slope_limit("bgc") == 2


def test_fitted_slope_recovers_a_known_power():
    n_groups = np.array([4, 8, 16, 32, 64])
    for gamma, c in ((1.0, 3.0), (2.0, 0.1), (2.7, 5.0)):
        values = c * (1 - 1 / n_groups) ** gamma
        assert theory.fitted_slope(n_groups, values) == pytest.approx(gamma, rel=1e-12)
        assert theory.mean_slope(n_groups, values) == pytest.approx(gamma, rel=1e-12)
    # The population BGC curve (1-2/N) over N = 4..64: the slope is 2.44, not 2.
    # Ordinary least squares by hand: slope = cov(x, y) / var(x).
    x = [math.log(1 - 1 / N) for N in (4, 8, 16, 32, 64)]
    y = [math.log(1 - 2 / N) for N in (4, 8, 16, 32, 64)]
    mx, my = sum(x) / 5, sum(y) / 5
    by_hand = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sum((a - mx) ** 2 for a in x)
    assert theory.fitted_slope(n_groups, 1 - 2 / n_groups) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(2.4393, abs=1e-4)  # docs/approx.md quotes 2.44
    with pytest.raises(GroupConvError, match="at least two points"):
        theory.fitted_slope([1, 4], [0.0, 1.0])


def test_expected_population_formula_by_hand():
    # GC, valid padding: E_pop = v s2 (n - n/N) m K (D - K + 1); finite sample: x (1 - p/R)
    n, m, N, K, D, S = 8, 4, 4, 3, 10, 5
    v, s2 = 0.7, 1.3
    exp = theory.expected_E(GCStructure(N).layout(n, m), (K,), (D,), "valid", S, v, s2)
    positions = D - K + 1
    pop = v * s2 * (n - n // N) * m * K * positions
    assert exp.population == pytest.approx(pop)
    assert exp.E == pytest.approx(pop * (1 - (n // N) * K / (S * positions)))
    assert exp.kind == "exact" and exp.low == exp.high == exp.E
    denom = m * n * K * v * n * D * s2
    assert exp.rel_E == pytest.approx(exp.E / denom)


def _monte_carlo(layout, kernel, spatial, padding, samples, dist, seeds):
    """E_W[E | data] (exact given the data) over independent data sets: mean and its SE."""
    n, m = layout.in_channels, layout.out_channels
    values = []
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        x = sample_data(dist, samples, n, spatial, rng)
        w = sample_weights(1, m, n, kernel, rng)
        values.append(GramSolver(gram_from_data(x, kernel, padding), w).expected_error(layout, he_variance(n, kernel)))
    values = np.array(values)
    return values.mean(), values.std(ddof=1) / math.sqrt(len(values))


@pytest.mark.parametrize("padding", ["valid", "circular", "same"])
@pytest.mark.parametrize("dist", ["normal", "uniform"])
@pytest.mark.parametrize(
    "make", [lambda: GCStructure(4), lambda: BGCStructure(4), lambda: BGCStructure(8)],
    ids=["gc4", "bgc4", "bgc8"],
)
def test_expected_E_matches_monte_carlo(padding, dist, make):
    # Small in-sample fits (rows = 2-4x unknowns) so the finite-sample bias is large (25-50%)
    # and the test can tell the exact formula from the naive (1 - p/R) or population one.
    n = m = 16
    kernel, spatial, samples = (3,), (8,), 6
    layout = make().layout(n, m)
    mean, se = _monte_carlo(layout, kernel, spatial, padding, samples, dist, seeds=40)
    exp = theory.expected_E(layout, kernel, spatial, padding, samples, he_variance(n, kernel),
                            DATA_VARIANCE[dist], gaussian=dist == "normal")
    assert abs(mean - exp.E) < 4 * se, (mean, exp, se)
    assert exp.low - 4 * se <= mean <= exp.high + 4 * se
    # the bias is far from negligible here: the population value is many SEs away
    assert abs(mean - exp.population) > 10 * se
    expected_kind = {"valid": "exact", "circular": "exact", "same": "bracketed"}[padding]
    if dist == "uniform" and isinstance(make(), BGCStructure):
        expected_kind = "approximate"
    assert exp.kind == expected_kind


def test_expected_E_2d_and_partitioned():
    n = m = 8
    layout = PartitionedGCStructure.permuted(2, n, m, seed=3).layout(n, m)
    kernel, spatial = (3, 3), (5, 5)
    mean, se = _monte_carlo(layout, kernel, spatial, "same", 3, "uniform", seeds=40)
    exp = theory.expected_E(layout, kernel, spatial, "same", 3, he_variance(n, kernel), 1 / 3, gaussian=False)
    assert exp.kind == "bracketed"  # selections: exact bracket for any i.i.d. data
    assert abs(mean - exp.E) < 4 * se


def test_expected_E_errors():
    layout = GCStructure(2).layout(8, 8)
    with pytest.raises(GroupConvError, match="under-determined"):
        theory.expected_E(layout, (3,), (4,), "same", 1)
    with pytest.raises(GroupConvError, match="weight variance"):
        theory.expected_E(layout, (3,), (4,), "same", 10, weight_var=-1.0)
    with pytest.raises(GroupConvError, match="unknown method"):
        theory.bound_thm("tlgc", 4, 3)
    with pytest.raises(GroupConvError, match="groups must be positive integers"):
        theory.bound_iid("gc", 0.5, 3, 8)


# --- BGC with N groups against GC with N/2 (was test_approx_equal_cost.py) -----------------------
# BGC with N groups against GC with N/2: the same cost, and under white data the same error.

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
