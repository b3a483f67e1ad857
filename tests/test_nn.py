"""BalancedGroupConv (BGC Eq. 3.1) against a dense conv with BGC-structured weight; make_layer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from groupconv.cost import ConvLayer  # noqa: E402
from groupconv.errors import GroupConvError  # noqa: E402
from groupconv.nn import BalancedGroupConv, make_layer  # noqa: E402


def explicit_dense_weight(layer: BalancedGroupConv) -> torch.Tensor:
    """Block (k, l) of the equivalent dense weight: delta_kl W^kk + W-bar^k / N, block by block."""
    big_n = layer.groups
    n, m = layer.in_channels, layer.out_channels
    n_n, m_n = n // big_n, m // big_n
    w_gc = layer.grouped.weight.detach()
    w_bar = layer.balance.weight.detach()
    dense = torch.zeros(m, n, *w_gc.shape[2:], dtype=w_gc.dtype)
    for k in range(big_n):
        rows = slice(k * m_n, (k + 1) * m_n)
        for l in range(big_n):
            cols = slice(l * n_n, (l + 1) * n_n)
            block = w_bar[rows] / big_n  # W-bar^k acts on x-bar = (1/N) sum_l x^l
            if k == l:
                block = block + w_gc[rows]  # W^kk: group k's slice of the grouped weight
            dense[rows, cols] = block
    return dense


@settings(max_examples=25, deadline=None)
@given(
    big_n=st.sampled_from([1, 2, 3, 4]),
    n_n=st.integers(1, 3),
    m_n=st.integers(1, 3),
    kernel=st.sampled_from([1, 3, (3, 1)]),
    stride=st.sampled_from([1, 2]),
    size=st.integers(3, 7),
    bias=st.booleans(),
)
def test_bgc_equals_dense_conv_with_bgc_structure(big_n, n_n, m_n, kernel, stride, size, bias):
    torch.manual_seed(0)
    layer = BalancedGroupConv(big_n * n_n, big_n * m_n, kernel, big_n, stride=stride, bias=bias).double()
    x = torch.randn(2, big_n * n_n, size, size + 1, dtype=torch.float64)
    dense = explicit_dense_weight(layer)
    expected = F.conv2d(
        x, dense, layer.grouped.bias, stride=stride, padding=layer.grouped.padding
    )
    got = layer(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(layer.dense_weight().detach(), dense, rtol=0, atol=1e-12)


def test_bgc_float32_matches_dense_to_1e5_and_gradients_agree():
    torch.manual_seed(1)
    layer = BalancedGroupConv(32, 48, 3, 8)
    dense = explicit_dense_weight(layer)
    x = torch.randn(4, 32, 9, 9, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y = layer(x)
    y_ref = F.conv2d(x_ref, dense, padding=1)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(y)
    y.backward(grad)
    y_ref.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-5)


def test_group_mean_is_the_mean_of_the_channel_groups():
    layer = BalancedGroupConv(12, 6, 3, 3)
    x = torch.randn(2, 12, 5, 5)
    expected = (x[:, 0:4] + x[:, 4:8] + x[:, 8:12]) / 3
    torch.testing.assert_close(layer.group_mean(x), expected)


def test_bgc_is_one_grouped_conv_plus_one_small_conv():
    layer = BalancedGroupConv(64, 128, 3, 4)
    convs = [m for m in layer.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2
    assert (layer.grouped.in_channels, layer.grouped.out_channels, layer.grouped.groups) == (64, 128, 4)
    assert (layer.balance.in_channels, layer.balance.out_channels, layer.balance.groups) == (16, 128, 1)


@pytest.mark.parametrize("n, m, k, big_n", [(64, 64, 3, 2), (1024, 1024, 3, 16), (32, 96, 5, 4)])
def test_bgc_parameters_are_2_K_m_n_over_N(n, m, k, big_n):
    layer = BalancedGroupConv(n, m, k, big_n)
    assert sum(p.numel() for p in layer.parameters()) == 2 * k * k * m * n // big_n  # BGC Table 1
    with_bias = BalancedGroupConv(n, m, k, big_n, bias=True)
    assert sum(p.numel() for p in with_bias.parameters()) == 2 * k * k * m * n // big_n + m


@pytest.mark.parametrize(
    "method, groups, layer_groups",
    [("dense", None, 1), ("dense", 1, 1), ("gc", 4, 4), ("dw", None, 16), ("dw", 16, 16), ("bgc", 4, 4)],
)
def test_make_layer_forms_params_and_shapes(method, groups, layer_groups):
    module = make_layer(method, 16, 32, 3, groups)
    x = torch.randn(2, 16, 7, 7)
    assert module(x).shape == (2, 32, 7, 7)
    counted = ConvLayer(16, 32, 3, 7, 7, groups=layer_groups).weight_params
    expected = 2 * counted if method == "bgc" else counted
    assert sum(p.numel() for p in module.parameters()) == expected


def test_make_layer_gc_is_a_real_grouped_conv():
    module = make_layer("gc", 8, 8, 3, 4)
    assert isinstance(module, torch.nn.Conv2d) and module.groups == 4 and module.bias is None
    # Input group 0 only reaches output group 0.
    x = torch.zeros(1, 8, 5, 5)
    x[:, 0:2] = torch.randn(1, 2, 5, 5)
    y = module(x)
    assert y[:, 2:].abs().max() == 0
    assert y[:, :2].abs().max() > 0


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda: make_layer("conv", 8, 8, 3, 2), "unknown method 'conv'"),
        (lambda: make_layer("gc", 8, 8, 3, 3), "in_channels=8 is not divisible by groups=3"),
        (lambda: make_layer("gc", 8, 6, 3, 4), "out_channels=6 is not divisible by groups=4"),
        (lambda: make_layer("gc", 8, 8, 3), "needs groups"),
        (lambda: make_layer("dense", 8, 8, 3, 4), "groups=4"),
        (lambda: make_layer("dw", 8, 12, 3), "out_channels=12 is not divisible by groups=8"),
        (lambda: make_layer("dw", 8, 8, 3, 2), "groups=2"),
        (lambda: make_layer("bgc", 8, 8, 0, 2), "kernel must be a positive integer, got 0"),
        (lambda: BalancedGroupConv(8, 8, 3, 0), "groups must be a positive integer, got 0"),
        (lambda: BalancedGroupConv(8, 8, 3, 2)(torch.zeros(1, 6, 4, 4)), "input has shape (1, 6, 4, 4)"),
    ],
)
def test_bad_input_is_a_one_line_groupconv_error(call, needle):
    with pytest.raises(GroupConvError) as info:
        call()
    assert needle in str(info.value)
    assert "\n" not in str(info.value)
