"""Approximability of real torch Conv1d / Conv2d layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from groupconv.approx.measure import approximability
from groupconv.approx.structures import PartitionedGCStructure
from groupconv.approx.torch_layers import (
    approximability_of_conv,
    dense_weight,
    grouped_weights,
    layer_gram,
)
from groupconv.errors import GroupConvError


def _output_energy(conv, x) -> float:
    """Mean over samples of ||conv(x) - bias||^2, by torch itself."""
    conv = conv.double()
    with torch.no_grad():
        y = conv(x)
        if conv.bias is not None:
            y = y - conv.bias.view(1, -1, *([1] * (x.ndim - 2)))
    return float((y**2).sum()) / x.shape[0]


@pytest.mark.parametrize(
    "make, spatial",
    [
        (lambda: torch.nn.Conv1d(6, 4, 3, padding=1), (15,)),
        (lambda: torch.nn.Conv1d(6, 4, 4, padding="same", dilation=2, bias=False), (15,)),
        (lambda: torch.nn.Conv1d(6, 4, 3, stride=2, padding=2, padding_mode="reflect"), (15,)),
        (lambda: torch.nn.Conv2d(6, 4, (3, 2), stride=(2, 1), padding=(1, 0)), (7, 9)),
        (lambda: torch.nn.Conv2d(6, 4, 3, padding="same", padding_mode="circular", groups=2), (6, 6)),
        (lambda: torch.nn.Conv2d(6, 4, 3, padding="valid", dilation=2), (8, 8)),
    ],
)
def test_layer_gram_sees_what_the_layer_sees(make, spatial):
    torch.manual_seed(0)
    conv = make()
    x = torch.randn(5, 6, *spatial, dtype=torch.float64)
    gram = layer_gram(conv, x)
    w = dense_weight(conv).reshape(4, -1)
    ours = float(np.einsum("ij,jk,ik->", w, gram.gram, w)) / 5
    assert ours == pytest.approx(_output_energy(conv, x), rel=1e-10)


def test_agrees_with_the_generic_solver_on_a_conv1d():
    torch.manual_seed(1)
    conv = torch.nn.Conv1d(8, 8, 3, padding=1)  # zeros, length kept: the generic "same"
    x = np.random.default_rng(1).standard_normal((20, 8, 16))
    layer = approximability_of_conv(conv, [2, 4], data=x)
    generic = approximability(groups=(2, 4), data=x, weights=dense_weight(conv)[None])
    for a, b in zip(layer.results, generic.results):
        assert (a.method, a.groups) == (b.method, b.groups)
        assert a.E == pytest.approx(b.E, rel=1e-10)
        assert a.rel_E == pytest.approx(b.rel_E, rel=1e-10)


def test_grouped_layer_is_exactly_a_gc():
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=4)
    layer = approximability_of_conv(conv, [2, 4, 8], methods=("gc",), data_samples=8)
    by_n = {r.groups: r for r in layer.results}
    assert by_n[4].rel_output_E < 1e-12 and by_n[2].rel_output_E < 1e-12  # coarser grouping too
    assert by_n[8].rel_output_E > 0.2  # a finer grouping must cut connections


def test_replacement_weights_run_as_real_grouped_convs():
    torch.manual_seed(3)
    conv = torch.nn.Conv2d(6, 6, 3, padding=1, bias=False).double()
    x = torch.randn(16, 6, 8, 8, dtype=torch.float64)
    layer = approximability_of_conv(conv, [3], data=x, return_weights=True)
    with torch.no_grad():
        target = conv(x)
        gc = F.conv2d(x, torch.tensor(grouped_weights(layer.weights[("gc", 3)], "gc", 3)), padding=1, groups=3)
        w_gc, w_bar = grouped_weights(layer.weights[("bgc", 3)], "bgc", 3)
        x_bar = x.reshape(16, 3, 2, 8, 8).mean(dim=1)
        bgc = F.conv2d(x, torch.tensor(w_gc), padding=1, groups=3) + F.conv2d(x_bar, torch.tensor(w_bar), padding=1)
    results = {r.method: r for r in layer.results}
    assert float(((target - gc) ** 2).sum()) / 16 == pytest.approx(results["gc"].E, rel=1e-9)
    assert float(((target - bgc) ** 2).sum()) / 16 == pytest.approx(results["bgc"].E, rel=1e-9)
    assert results["bgc"].E < results["gc"].E


def test_random_data_defaults_and_extra_structures():
    torch.manual_seed(4)
    conv = torch.nn.Conv1d(8, 8, 3, padding=1)
    perm = PartitionedGCStructure.permuted(4, 8, 8, seed=0)
    layer = approximability_of_conv(conv, 4, structures=(perm,), dist="uniform", seed=1)
    assert layer.data_source == "uniform" and layer.positions == 32
    # enough samples for 8 rows per unknown of the largest fit (BGC N=4: 4 features x 3 taps)
    assert layer.samples * layer.positions >= 8 * 12
    assert [r.method for r in layer.results] == ["gc", "bgc", "permuted-gc"]
    assert "lost output" in layer.table() and len(layer.to_frame()) == 3


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda c: approximability_of_conv(torch.nn.Linear(4, 4), 2), "Conv1d or Conv2d"),
        (lambda c: approximability_of_conv(torch.nn.ConvTranspose1d(4, 4, 3), 2), "Conv1d or Conv2d"),
        (lambda c: approximability_of_conv(c, 3), "not divisible by groups=3"),
        (lambda c: approximability_of_conv(c, 2, data=np.ones((3, 5, 10))), "5 channels"),
        (lambda c: approximability_of_conv(c, 2, data=np.ones((3, 4, 10, 10))), "shape"),
        (lambda c: approximability_of_conv(c, 2, data=np.full((3, 4, 10), np.inf)), "non-finite"),
        (lambda c: approximability_of_conv(c, 2, data=np.zeros((3, 4, 10))), "all zero"),
        (lambda c: approximability_of_conv(c, 2, data=np.ones((1, 4, 2))), "under-determined"),
        (lambda c: approximability_of_conv(c, 2, methods=("dense",)), "unknown method"),
        (lambda c: approximability_of_conv(c, 2, dist="laplace"), "unknown dist"),
    ],
)
def test_bad_input_is_a_one_line_error(call, match):
    conv = torch.nn.Conv1d(4, 4, 3, padding=1)
    with pytest.raises(GroupConvError, match=match) as info:
        call(conv)
    assert "\n" not in str(info.value)
