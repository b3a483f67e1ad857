"""ConvLayer counts against brute force and against the E2GC Table II forms."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from groupconv.cost import ConvLayer
from groupconv.errors import GroupConvError


def brute_force_macs(layer: ConvLayer) -> int:
    """Count multiply-adds by walking every output element and every weight it touches."""
    per_group_in = layer.in_channels // layer.groups
    count = 0
    for _oc, _y, _x in itertools.product(
        range(layer.out_channels), range(layer.out_height), range(layer.out_width)
    ):
        count += per_group_in * layer.kernel_h * layer.kernel_w
    return count


@given(
    g=st.sampled_from([1, 2, 4]),
    mult_in=st.integers(1, 3),
    mult_out=st.integers(1, 3),
    k=st.sampled_from([1, 3]),
    h=st.integers(1, 4),
    w=st.integers(1, 4),
)
def test_macs_equal_brute_force(g, mult_in, mult_out, k, h, w):
    layer = ConvLayer(g * mult_in, g * mult_out, k, h, w, groups=g)
    assert layer.macs == brute_force_macs(layer)
    assert layer.flops == 2 * layer.macs


@given(
    m=st.sampled_from([32, 64, 128, 512]),
    n=st.sampled_from([32, 64, 256]),
    k=st.sampled_from([1, 3, 5]),
    d=st.integers(1, 56),
    g=st.sampled_from([1, 2, 4, 8, 16, 32]),
)
def test_table_ii_closed_forms(m, n, k, d, g):
    layer = ConvLayer(m, n, k, d, d, groups=g)
    assert layer.macs * g == n * m * k * k * d * d  # M_c = n m h w d_k^2 / g
    assert layer.params * g == n * m * k * k  # P = n m d_k^2 / g
    assert layer.activations == (n + m) * d * d  # A independent of g
    dense = layer.with_groups(1)
    assert dense.macs == g * layer.macs  # MACs scale as 1/g
    expected_ai = (n * m * d * d * k * k) / (n * m * k * k + g * (n + m) * d * d)
    assert layer.arithmetic_intensity == pytest.approx(expected_ai, rel=1e-12)


def test_batch_aware_intensity_reads_weights_once_per_batch():
    layer = ConvLayer(64, 64, 3, 14, 14, groups=4, batch=16)
    assert layer.elements_moved == layer.total_params + 16 * layer.activations
    assert layer.arithmetic_intensity == pytest.approx(
        16 * layer.macs / (layer.total_params + 16 * layer.activations)
    )
    assert layer.bytes_moved("float16") == 2 * layer.elements_moved


def test_linear_layer_counts():
    fc = ConvLayer.linear(1024, 1000)
    assert fc.macs == 1024 * 1000
    # params = weights only since operator-level counting made it mean one thing
    # everywhere (Network.params, ModelCount.params); the bias is apart
    assert fc.params == 1024 * 1000 and fc.bias_params == 1000
    assert fc.total_params == 1024 * 1000 + 1000
    assert fc.elements_moved == fc.total_params + fc.activations  # the bias is still read


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(in_channels=64, out_channels=64, groups=3), "in_channels=64 is not divisible by groups=3"),
        (dict(in_channels=64, out_channels=30, groups=4), "out_channels=30 is not divisible by groups=4"),
        (dict(in_channels=0, out_channels=8), "in_channels must be a positive integer, got 0"),
        (dict(in_channels=8, out_channels=8, out_height=-1), "out_height must be a positive integer, got -1"),
        (dict(in_channels=8, out_channels=8, kernel=(3, 3, 3)), "kernel must be an int or a pair"),
    ],
)
def test_bad_shapes_name_the_value(kwargs, fragment):
    with pytest.raises(GroupConvError) as info:
        ConvLayer(**kwargs)
    assert fragment in str(info.value)
