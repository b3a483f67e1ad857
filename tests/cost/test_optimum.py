"""The optimum number of groups: Eq. 2, admissible g, the full Eq. 1 solver, the proxy minimiser."""

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from groupconv.cost import ConvLayer, optimum
from groupconv.cost import numeric as num
from groupconv.cost import symbolic as S
from groupconv.errors import GroupConvError


@given(m=st.integers(1, 600), n=st.integers(1, 600))
def test_admissible_groups_are_the_common_divisors(m, n):
    brute = tuple(d for d in range(1, min(m, n) + 1) if m % d == 0 and n % d == 0)
    assert optimum.admissible_groups(m, n) == brute


@given(g=st.floats(0.01, 5000), m=st.sampled_from([24, 64, 96, 512, 1000]), n=st.sampled_from([48, 128, 512, 1024]))
def test_nearest_admissible_is_closest_on_a_log_scale(g, m, n):
    best = optimum.nearest_admissible_groups(g, m, n)
    assert m % best == 0 and n % best == 0
    for d in optimum.admissible_groups(m, n):
        assert abs(math.log(best / g)) <= abs(math.log(d / g)) + 1e-12


def test_nearest_admissible_examples():
    assert optimum.nearest_admissible_groups(33.03, 512, 512) == 32
    assert optimum.nearest_admissible_groups(3.0, 8, 8) == 4  # log: 4/3 closer than 3/2
    assert optimum.nearest_admissible_groups(math.sqrt(8), 8, 8) == 2  # exact tie -> smaller
    assert optimum.nearest_admissible_groups(1e6, 512, 768) == 256  # clips to gcd
    assert optimum.nearest_admissible_groups(0.01, 512, 768) == 1


def plain_full_balance(m, n, d_k, h, w, beta, gamma, batch):
    """Solve M_c^(1-beta) (P/B + A)^beta = gamma with scipy's brentq on ConvLayer counts."""
    dense = ConvLayer(m, n, d_k, h, w)

    def residual(log_g):  # log of the balance minus log gamma (no overflow for huge g)
        balance_log = (1 - beta) * (math.log(dense.macs) - log_g) + beta * math.log(
            dense.params * math.exp(-log_g) / batch + dense.activations
        )
        return balance_log - math.log(gamma)

    return math.exp(brentq(residual, -100, 5000, xtol=1e-12, rtol=1e-14, maxiter=500))


@settings(max_examples=50, deadline=None)
@given(
    m=st.integers(1, 1024),
    n=st.integers(1, 1024),
    d_k=st.sampled_from([1, 3, 5]),
    d=st.integers(1, 112),
    beta=st.floats(0.02, 0.95),  # beta -> 1 with small gamma sends g beyond float range
    log_gamma=st.floats(0, 18),
    batch=st.integers(1, 64),
)
def test_full_balance_solver_matches_brentq(m, n, d_k, d, beta, log_gamma, batch):
    gamma = 10.0**log_gamma
    fast = optimum.balance_groups_full(m, n, d_k, d, d, beta, gamma, batch)
    plain = plain_full_balance(m, n, d_k, d, d, beta, gamma, batch)
    assert fast == pytest.approx(plain, rel=1e-9)
    assert fast >= num.optimum_groups(m, n, d_k, d, d, beta, gamma, batch) * (1 - 1e-12)


def test_full_balance_solver_matches_the_half_beta_closed_form():
    root = S.full_balance_half_beta()
    for m, n, d_k, d, gamma in [(512, 512, 3, 14, 1e6), (64, 256, 1, 56, 3e3), (32, 32, 3, 112, 1e8)]:
        exact = float(root.subs({S.m: m, S.n: n, S.d_k: d_k, S.h: d, S.w: d, S.gamma: sp.Float(gamma, 30)}))
        assert optimum.balance_groups_full(m, n, d_k, d, d, 0.5, gamma) == pytest.approx(exact, rel=1e-10)


def test_full_balance_solver_is_vectorised_and_balances():
    beta = np.array([0.2, 0.5, 0.8])[:, None]
    gamma = np.array([1e3, 1e5, 1e7])[None, :]
    g = optimum.balance_groups_full(256, 512, 3, 28, 28, beta, gamma, 4)
    assert g.shape == (3, 3)
    lhs = num.balance_lhs(256, 512, 3, 28, 28, g, beta, 4)
    assert np.allclose(lhs, np.broadcast_to(gamma, (3, 3)), rtol=1e-10)


def energy_from_conv_layer(layer: ConvLayer, alpha: float, beta: float) -> float:
    """E = M_c (alpha / AI_B)^beta from ConvLayer's exact counts (independent of numeric.py)."""
    return layer.macs * (alpha / layer.arithmetic_intensity) ** beta


@settings(max_examples=40, deadline=None)
@given(
    m=st.sampled_from([16, 24, 64, 96, 256, 512]),
    n=st.sampled_from([16, 32, 48, 128, 512]),
    d_k=st.sampled_from([1, 3]),
    d=st.integers(1, 56),
    beta=st.floats(0.02, 0.98),
    batch=st.integers(1, 32),
)
def test_energy_proxy_minimiser_is_always_the_largest_admissible_g(m, n, d_k, d, beta, batch):
    brute = min(
        optimum.admissible_groups(m, n),
        key=lambda g: energy_from_conv_layer(ConvLayer(m, n, d_k, d, d, groups=g, batch=batch), 0.5, beta),
    )
    assert optimum.min_energy_groups(m, n, d_k, d, d, beta, batch) == brute == math.gcd(m, n)


def test_optimum_g_for_the_fig3_layer():
    r = optimum.optimum_g(512, 512, 3, 14, beta=0.5, gamma=1e6)
    assert r.g_eq2 == pytest.approx(512 * 512 * 9 * 14 / 1e6)  # (hw)^(1/2) = 14
    assert (r.g, r.G) == (32, 16)
    assert r.G_eq2 == pytest.approx(512 / r.g_eq2)
    assert r.g_full == pytest.approx(plain_full_balance(512, 512, 3, 14, 14, 0.5, 1e6, 1), rel=1e-9)
    assert r.g_full_admissible == optimum.nearest_admissible_groups(r.g_full, 512, 512)
    assert r.g_min_energy == 512
    d = r.as_dict()
    assert d["G_full_admissible"] == 512 // r.g_full_admissible and d["groups"] is None


def test_optimum_g_from_alpha_and_const():
    by_gamma = optimum.optimum_g(128, 256, 3, 28, beta=0.4, gamma=2e4 * 0.3**-0.4)
    by_alpha = optimum.optimum_g(128, 256, 3, 28, beta=0.4, alpha=0.3, const=2e4)
    assert by_alpha.gamma == pytest.approx(by_gamma.gamma)
    assert by_alpha.g_eq2 == pytest.approx(by_gamma.g_eq2)


def test_batch_lowers_eq2_groups_by_batch_to_the_beta():
    one = optimum.optimum_g(256, 256, 3, 14, beta=0.25, gamma=1e5)
    sixteen = optimum.optimum_g(256, 256, 3, 14, beta=0.25, gamma=1e5, batch=16)
    assert sixteen.g_eq2 == pytest.approx(one.g_eq2 / 16**0.25)


def test_eq4_numerically_constant_group_size_along_a_network():
    # Halving d_f while doubling n keeps G = m/g fixed (h = w = d_f, beta = 1/2).
    stages = [(64, 64, 56), (64, 128, 28), (64, 256, 14), (64, 512, 7)]
    sizes = [64 / num.optimum_groups(m, n, 3, d, d, 0.5, 1e3) for m, n, d in stages]
    assert np.allclose(sizes, sizes[0], rtol=1e-12)
    # The same layers at fixed n change G: the invariance is not automatic.
    fixed_n = [64 / num.optimum_groups(m, 64, 3, d, d, 0.5, 1e3) for m, _, d in stages]
    assert not np.allclose(fixed_n, fixed_n[0])


def test_optimum_g_for_layer_matches_optimum_g():
    layer = ConvLayer(256, 256, 3, 28, 28, groups=8, batch=4)
    r = optimum.optimum_g_for_layer(layer, beta=0.5, gamma=1e5)
    assert r == optimum.optimum_g(256, 256, 3, 28, 28, beta=0.5, gamma=1e5, batch=4, groups=8)
    with pytest.raises(GroupConvError, match=r"square kernel, got \(1, 3\)"):
        optimum.optimum_g_for_layer(ConvLayer(8, 8, (1, 3), 4, 4), beta=0.5, gamma=1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(beta=1.0, gamma=1.0), r"beta must lie in \(0, 1\), got 1.0"),
        (dict(beta=-0.1, gamma=1.0), r"beta must lie in \(0, 1\), got -0.1"),
        (dict(beta=0.5, gamma=0.0), "gamma must be a finite positive number, got 0.0"),
        (dict(beta=0.5, alpha=0.0, const=1.0), r"alpha must lie in \(0, 1\], got 0.0"),
        (dict(beta=0.5, alpha=1.2, const=1.0), r"alpha must lie in \(0, 1\], got 1.2"),
        (dict(beta=0.5, alpha=0.5, const=-3.0), "const must be a finite positive number, got -3.0"),
        (dict(beta=0.5, alpha=0.5), "const is missing"),
        (dict(beta=0.5), "alpha is missing"),
        (dict(beta=0.5, gamma=1.0, alpha=0.5), "give either gamma or alpha and const, not both"),
        (dict(beta=0.5, gamma=1.0, groups=3), "in_channels=64 is not divisible by groups=3"),
        (dict(beta=0.5, gamma=1.0, groups=64), "out_channels=32 is not divisible by groups=64"),
        (dict(beta=0.5, gamma=1.0, batch=0), "batch must be a positive integer, got 0"),
    ],
)
def test_optimum_g_bad_input(kwargs, message):
    with pytest.raises(GroupConvError, match=message):
        optimum.optimum_g(64, 32, 3, 14, **kwargs)


def test_non_positive_sizes_are_named():
    with pytest.raises(GroupConvError, match="in_channels must be a positive integer, got 0"):
        optimum.optimum_g(0, 32, 3, 14, beta=0.5, gamma=1.0)
    with pytest.raises(GroupConvError, match="height must be a positive integer, got -2"):
        optimum.optimum_g(8, 32, 3, -2, beta=0.5, gamma=1.0)
    with pytest.raises(GroupConvError, match="m must be a positive integer, got 0"):
        optimum.admissible_groups(0, 4)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 64), st.integers(1, 64), st.sampled_from([1, 3, 5]), st.integers(1, 56),
       st.floats(0.0, 1.0, exclude_min=True, exclude_max=True), st.floats(1e-3, 1e6))
def test_layer_eq2_solves_the_papers_balance_equation(m, n, k, hw, beta, gamma):
    """At Eq. 2's g, M_c^(1-beta) P^beta = gamma with M_c, P of a g-group conv (Eq. 1 -> Eq. 2)."""
    layer = ConvLayer(m, n, k, hw, hw)
    g = optimum.eq2_groups(layer, beta, gamma)
    dense = layer.with_groups(1)
    macs, params = dense.macs / g, dense.weight_params / g  # Table II: both scale as 1/g
    assert macs ** (1 - beta) * params**beta == pytest.approx(gamma, rel=1e-9)


def test_layer_eq2_by_hand_and_its_scaling():
    layer = ConvLayer(512, 512, 3, 14, 14)
    assert optimum.eq2_groups(layer, 0.5, 1e6) == pytest.approx(512 * 512 * 9 * 14 / 1e6)
    # Eq. 3: with beta = 1/2 and h = w = d_f, g is proportional to m n d_f
    half = ConvLayer(256, 256, 3, 28, 28)
    assert optimum.eq2_groups(layer, 0.5, 1.0) / optimum.eq2_groups(half, 0.5, 1.0) == pytest.approx(4 * 14 / 28)
    with pytest.raises(GroupConvError, match="gamma"):
        optimum.eq2_groups(layer, 0.5, 0.0)
    with pytest.raises(GroupConvError, match="beta"):
        optimum.eq2_groups(layer, 1.5, 1.0)


def test_calibrated_gamma_reproduces_groups_from_eq2():
    layers = [ConvLayer(c, c, 3, s, s) for c, s in ((64, 56), (128, 28), (256, 14), (512, 7))]
    gamma0 = 3.0e4
    exact = [optimum.eq2_groups(layer, 0.3, gamma0) for layer in layers]
    groups = [max(1, round(g)) for g in exact]
    gamma = optimum.calibrate_gamma(layers, 0.3, groups)
    # least squares on log g: the log residuals sum to zero
    assert sum(math.log(optimum.eq2_groups(l, 0.3, gamma) / g) for l, g in zip(layers, groups)) == pytest.approx(0, abs=1e-9)
    assert gamma == pytest.approx(gamma0, rel=0.05)
    
