"""The numpy twins against sympy, against ConvLayer, against real torch convolutions."""

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.cost import ConvLayer
from groupconv.cost import numeric as num
from groupconv.cost import symbolic as S
from groupconv.errors import GroupConvError


@st.composite
def layer_shapes(draw):
    """A valid group conv: g divides m and n."""
    g = draw(st.sampled_from([1, 2, 3, 4, 8, 16, 32]))
    return dict(
        m=g * draw(st.integers(1, 64)),
        n=g * draw(st.integers(1, 64)),
        d_k=draw(st.sampled_from([1, 3, 5, 7])),
        h=draw(st.integers(1, 112)),
        w=draw(st.integers(1, 112)),
        g=g,
    )


betas = st.floats(0.01, 0.99)
alphas = st.floats(0.01, 1.0)
gammas = st.floats(1e-3, 1e9)
batches = st.integers(1, 256)


def sym(expr, **values) -> float:
    """Evaluate a sympy expression with 30-digit arithmetic (integers stay exact)."""
    point = {getattr(S, name): (sp.Float(v, 30) if isinstance(v, float) else v) for name, v in values.items()}
    return float(expr.subs(point).evalf(30))


@settings(max_examples=60, deadline=None)
@given(shape=layer_shapes(), batch=batches, beta=betas, alpha=alphas, gamma=gammas)
def test_numeric_equals_symbolic(shape, batch, beta, alpha, gamma):
    m, n, d_k, h, w, g = (shape[k] for k in ("m", "n", "d_k", "h", "w", "g"))
    rel = 1e-11
    assert num.macs(m, n, d_k, h, w, g) == pytest.approx(sym(S.GCONV_MACS, **shape), rel=rel)
    assert num.params(m, n, d_k, g) == pytest.approx(sym(S.GCONV_PARAMS, m=m, n=n, d_k=d_k, g=g), rel=rel)
    assert num.activations(m, n, h, w) == pytest.approx(sym(S.GCONV_ACTIVATIONS, m=m, n=n, h=h, w=w), rel=rel)
    assert num.arithmetic_intensity(m, n, d_k, h, w, g, batch) == pytest.approx(
        sym(S.GCONV_AI_BATCH, **shape, B=batch), rel=rel
    )
    assert num.memory_access_proxy(m, n, d_k, h, w, g, batch) == pytest.approx(
        sym(S.MEMORY_ACCESS_PROXY, **shape, B=batch), rel=rel
    )
    assert num.optimum_groups(m, n, d_k, h, w, beta, gamma) == pytest.approx(
        sym(S.EQ2_PRINTED, m=m, n=n, d_k=d_k, h=h, w=w, beta=beta, gamma=gamma), rel=1e-9
    )
    assert num.optimum_groups(m, n, d_k, h, w, beta, gamma, batch) == pytest.approx(
        sym(S.derive_eq2_batch(), m=m, n=n, d_k=d_k, h=h, w=w, beta=beta, gamma=gamma, B=batch), rel=1e-9
    )
    assert num.energy_proxy(m, n, d_k, h, w, g, alpha, beta, batch) == pytest.approx(
        sym(S.ENERGY_PROXY, **shape, alpha=alpha, beta=beta, B=batch), rel=1e-9
    )
    assert num.gamma_from_const(gamma, alpha, beta) == pytest.approx(
        sym(S.GAMMA_DEFINITION, const=gamma, alpha=alpha, beta=beta), rel=1e-9
    )


@settings(max_examples=100, deadline=None)
@given(shape=layer_shapes(), batch=batches)
def test_numeric_equals_conv_layer_counts(shape, batch):
    m, n, d_k, h, w, g = (shape[k] for k in ("m", "n", "d_k", "h", "w", "g"))
    layer = ConvLayer(m, n, d_k, h, w, groups=g, batch=batch)
    assert num.macs(m, n, d_k, h, w, g, integer_groups=True) == layer.macs
    assert num.flops(m, n, d_k, h, w, g) == layer.flops
    assert num.params(m, n, d_k, g) == layer.params
    assert num.activations(m, n, h, w) == layer.activations
    assert num.group_size(m, g) == layer.group_size
    assert num.arithmetic_intensity(m, n, d_k, h, w, g, batch) == pytest.approx(
        layer.arithmetic_intensity, rel=1e-12
    )
    assert num.memory_access_proxy(m, n, d_k, h, w, g, batch) == pytest.approx(
        layer.elements_moved / (batch * layer.macs), rel=1e-12
    )


@pytest.mark.parametrize(
    "m, n, k, h, w, g",
    [(8, 12, 3, 5, 6, 4), (16, 16, 3, 7, 7, 16), (6, 9, 1, 4, 3, 3), (4, 8, 5, 6, 6, 1)],
)
def test_numeric_equals_real_torch_convolution(m, n, k, h, w, g):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    conv = torch.nn.Conv2d(m, n, k, padding=k // 2, groups=g, bias=False)
    x = torch.randn(1, m, h, w)
    with FlopCounterMode(display=False) as counter:
        y = conv(x)
    assert y.shape == (1, n, h, w)
    assert num.macs(m, n, k, h, w, g) == counter.get_total_flops() / 2
    assert num.params(m, n, k, g) == conv.weight.numel()
    assert num.activations(m, n, h, w) == x.numel() + y.numel()


def test_arrays_broadcast_and_agree_with_scalar_calls():
    g = np.array([1, 2, 4, 8])[:, None]
    batch = np.array([1, 4, 16])[None, :]
    grid = num.arithmetic_intensity(64, 128, 3, 14, 14, g, batch)
    assert isinstance(grid, np.ndarray) and grid.shape == (4, 3)
    for i, gi in enumerate(g[:, 0]):
        for j, bj in enumerate(batch[0]):
            assert grid[i, j] == num.arithmetic_intensity(64, 128, 3, 14, 14, int(gi), int(bj))
    assert num.activations(64, 64, np.arange(1, 4), 2).shape == (3,)
    assert num.params([16, 32], 32, 3, 1).tolist() == [16 * 32 * 9, 32 * 32 * 9]
    assert isinstance(num.macs(8, 8, 3, 4, 4, 2), float)


def test_non_integer_groups_are_allowed_for_the_continuous_model():
    assert num.macs(64, 64, 3, 4, 4, 2.5) == pytest.approx(64 * 64 * 9 * 16 / 2.5)
    with pytest.raises(GroupConvError, match="g must be a positive integer, got 2.5"):
        num.macs(64, 64, 3, 4, 4, 2.5, integer_groups=True)


def test_memory_access_proxy_is_inverse_intensity():
    g = np.array([1, 4, 16, 64])
    ai = num.arithmetic_intensity(64, 64, 3, 28, 28, g, 8)
    assert np.allclose(num.memory_access_proxy(64, 64, 3, 28, 28, g, 8) * ai, 1.0, rtol=1e-14)


def test_energy_proxy_decreases_with_groups():
    g = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
    for beta in (0.05, 0.5, 0.95):
        for batch in (1, 16):
            energy = num.energy_proxy(512, 512, 3, 14, 14, g, 0.7, beta, batch)
            assert np.all(np.diff(energy) < 0)


def test_balance_lhs_at_eq2_groups_is_gamma():
    beta, gamma = 0.3, 2.5e5
    g = num.optimum_groups(256, 128, 3, 28, 28, beta, gamma)
    assert num.balance_lhs(256, 128, 3, 28, 28, g, beta, keep_activations=False) == pytest.approx(gamma)
    assert num.balance_lhs(256, 128, 3, 28, 28, g, beta) > gamma  # A > 0 adds to the balance


@settings(max_examples=40, deadline=None)
@given(
    method=st.sampled_from(num.GC_VARIANTS),
    groups=st.sampled_from([1, 2, 4, 8]),
    cin=st.integers(1, 32),
    cout=st.integers(1, 32),
    k=st.sampled_from([1, 3, 9, 25]),
    size=st.integers(1, 4096),
)
def test_gc_variants_numeric_equal_symbolic(method, groups, cin, cout, k, size):
    n_in, m_out = groups * cin, groups * cout
    row = S.bgc_variant(method)
    pt = {S.n_in: n_in, S.m_out: m_out, S.K: k, S.N: groups, S.D: size}
    assert num.gc_variant_params(method, n_in, m_out, k, groups) == pytest.approx(float(row.params.subs(pt)), rel=1e-12)
    assert num.gc_variant_cost(method, n_in, m_out, k, groups, size) == pytest.approx(float(row.cost.subs(pt)), rel=1e-12)


def test_gc_variant_keys_match_the_symbolic_table():
    assert num.GC_VARIANTS == tuple(row.key for row in S.BGC_TABLE)


@pytest.mark.parametrize("n_in, m_out, k, h, w, groups", [(64, 64, 3, 14, 14, 4), (1024, 1024, 3, 7, 7, 16), (32, 48, 1, 8, 8, 8)])
def test_bgc_cost_equals_two_group_convolutions_plus_the_mean(n_in, m_out, k, h, w, groups):
    diagonal = ConvLayer(n_in, m_out, k, h, w, groups=groups)
    balancing = ConvLayer(n_in // groups, m_out, k, h, w)
    mean_ops = n_in * h * w  # (N-1) n_N D additions + n_N D scalings
    assert num.bgc_cost(n_in, m_out, k * k, groups, h * w) == diagonal.macs + balancing.macs + mean_ops
    assert num.gc_variant_cost("GC", n_in, m_out, k * k, groups, h * w) == diagonal.macs
    assert num.gc_variant_cost("SC", n_in, m_out, k * k, groups, h * w) == diagonal.with_groups(1).macs


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: num.macs(0, 8, 3, 4, 4), "m must be a positive integer, got 0"),
        (lambda: num.macs(8, [8, -2], 3, 4, 4), "n must be a positive integer, got -2"),
        (lambda: num.macs(8, 8, 2.5, 4, 4), "d_k must be a positive integer, got 2.5"),
        (lambda: num.macs(8, 8, 3, math.nan, 4), "h must be a positive integer, got nan"),
        (lambda: num.macs(8, 8, 3, 4, 4, 0), "g must be a finite positive number, got 0"),
        (lambda: num.macs(64, 64, 3, 4, 4, 3, integer_groups=True), "m=64 is not divisible by g=3"),
        (lambda: num.params(64, [32, 30], 3, 4, integer_groups=True), "n=30 is not divisible by g=4"),
        (lambda: num.macs("64", 8, 3, 4, 4), "m must be a number or an array of numbers, got '64'"),
        (lambda: num.arithmetic_intensity(8, 8, 3, 4, 4, 1, 0), "batch must be a positive integer, got 0"),
        (lambda: num.optimum_groups(8, 8, 3, 4, 4, 1.0, 1.0), r"beta must lie in \(0, 1\), got 1.0"),
        (lambda: num.optimum_groups(8, 8, 3, 4, 4, 0.0, 1.0), r"beta must lie in \(0, 1\), got 0.0"),
        (lambda: num.optimum_groups(8, 8, 3, 4, 4, 0.5, -1.0), "gamma must be a finite positive number, got -1.0"),
        (lambda: num.energy_proxy(8, 8, 3, 4, 4, 1, 1.5, 0.5), r"alpha must lie in \(0, 1\], got 1.5"),
        (lambda: num.energy_proxy(8, 8, 3, 4, 4, 1, [0.5, 0.0], 0.5), r"alpha must lie in \(0, 1\], got 0.0"),
        (lambda: num.gamma_from_const(0, 0.5, 0.5), "const must be a finite positive number, got 0"),
        (lambda: num.bgc_cost(64, 30, 9, 4, 49), "out_channels=30 is not divisible by groups=4"),
        (lambda: num.gc_variant_params("XGC", 8, 8, 9, 2), "unknown group convolution variant 'XGC'"),
        (lambda: num.gc_variant_cost("BGC", 8, 8, 9, 2, 0), "size must be a positive integer, got 0"),
    ],
)
def test_bad_input_names_the_value(call, message):
    with pytest.raises(GroupConvError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_alpha_one_is_allowed_and_beta_one_is_not():
    assert num.energy_proxy(8, 8, 3, 4, 4, 1, 1.0, 0.5) > 0
    with pytest.raises(GroupConvError):
        num.energy_proxy(8, 8, 3, 4, 4, 1, 1.0, 1.0)
