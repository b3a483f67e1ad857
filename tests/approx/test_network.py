"""Whole models: per-layer approximability on captured activations, and conversion to GC/BGC."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from groupconv.approx.network import (
    CONVERT_COLUMNS,
    MODEL_COLUMNS,
    approximability_of_model,
    capture_inputs,
    convert_model,
    eligible_convs,
)
from groupconv.approx.torch_layers import approximability_of_conv
from groupconv.errors import GroupConvError
from groupconv.nn import BalancedGroupConv


def _model(dtype=torch.float64):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 1, stride=2), nn.ReLU(),
        nn.Conv2d(16, 16, 3, groups=16, padding=1),  # depthwise: not eligible
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3),
    ).to(dtype)


def test_rows_match_the_layer_function_on_independently_computed_activations():
    model = _model()
    x = torch.randn(20, 4, 8, 8, dtype=torch.float64)
    result = approximability_of_model(model, x, methods=("gc", "bgc"), groups=(2, 4, 2))
    assert list(result.layers) == ["0", "2", "5"]
    assert list(result.to_frame().columns) == list(MODEL_COLUMNS)
    assert model.training  # restored after capturing in eval mode
    model.eval()
    with torch.no_grad():  # the inputs of layers 0, 2 and 5, by slicing the Sequential
        acts = {"0": x, "2": model[:2](x), "5": model[:5](x)}
    for name, act in acts.items():
        direct = approximability_of_conv(model.get_submodule(name), (2, 4), ("gc", "bgc"), data=act)
        rows = [r for r in result.rows if r["layer"] == name]
        assert [(r["method"], r["groups"]) for r in rows] == [
            ("gc", 2), ("gc", 4), ("bgc", 2), ("bgc", 4)]
        for row, ref in zip(rows, direct.results):
            assert row["E"] == pytest.approx(ref.E, rel=1e-12)
            assert row["rel_output_E"] == pytest.approx(ref.rel_output_E, rel=1e-12)


@pytest.mark.parametrize("method", ["gc", "bgc"])
def test_converted_layers_have_exactly_the_reported_output_error(method):
    model = _model()
    x = torch.randn(24, 4, 8, 8, dtype=torch.float64)
    new, report = convert_model(model, x, method=method, groups=4)
    assert list(report.columns) == list(CONVERT_COLUMNS)
    assert list(report.layer) == ["0", "2", "5"]
    acts = capture_inputs(model, x)
    for row in report.itertuples():
        old, repl = model.get_submodule(row.layer), new.get_submodule(row.layer)
        assert isinstance(repl, BalancedGroupConv if method == "bgc" else nn.Conv2d)
        with torch.no_grad():
            diff = old(acts[row.layer]) - repl(acts[row.layer])
        measured = float((diff**2).sum()) / diff.shape[0]
        assert measured == pytest.approx(row.E, rel=1e-9)  # the converted layer's error on data
        # parameters: the replacement's own weight tensors, counted by torch
        weights = [p for n, p in repl.named_parameters() if n.endswith("weight")]
        assert row.params_after == sum(p.numel() for p in weights)
        assert row.params_before == old.weight.numel()
        # MACs against torch's FlopCounterMode (flops = 2 MACs); BGC adds n D mean additions
        with FlopCounterMode(display=False) as counter:
            repl(acts[row.layer][:1])
        out_positions = repl(acts[row.layer][:1]).shape[-1] * repl(acts[row.layer][:1]).shape[-2]
        extra = old.in_channels * out_positions if method == "bgc" else 0
        assert row.macs_after == counter.get_total_flops() // 2 + extra
    assert isinstance(new[7], nn.Conv2d) and new[7].groups == 16  # left alone
    assert not any(isinstance(m, BalancedGroupConv) for m in model.modules())  # original untouched


def test_float32_model_converts_and_the_error_agrees_to_float32_precision():
    model = _model(torch.float32)
    x = torch.randn(16, 4, 8, 8)
    new, report = convert_model(model, x, method="gc", groups=2, layers=["2"])
    assert list(report.layer) == ["2"] and new[2].weight.dtype == torch.float32
    act = capture_inputs(model, x, ["2"])["2"].float()
    with torch.no_grad():
        diff = model[2](act) - new[2](act)
    assert float((diff.double() ** 2).sum()) / 16 == pytest.approx(report.E[0], rel=1e-4)


def test_zero_initialised_conv_converts_with_zero_error():
    model = _model()
    nn.init.zeros_(model[2].weight)
    _, report = convert_model(model, torch.randn(12, 4, 8, 8, dtype=torch.float64), "bgc", 2)
    row = report[report.layer == "2"].iloc[0]
    assert row.E == 0.0 and row.rel_output_E == 0.0


def test_bad_requests_are_one_line_errors():
    model = _model()
    x = torch.randn(8, 4, 8, 8, dtype=torch.float64)
    with pytest.raises(GroupConvError, match="no dense conv named 'nope'"):
        convert_model(model, x, layers=["nope"])
    with pytest.raises(GroupConvError, match="not divisible by groups=8"):
        convert_model(model, x, method="gc", groups=8, layers=["0", "2"])  # layer 0 has 4 inputs
    new, report = convert_model(model, x, method="gc", groups=8)  # layers=None: those N divides
    assert list(report.layer) == ["2", "5"] and new[0].groups == 1
    with pytest.raises(GroupConvError, match="divisible by groups=3"):
        convert_model(model, x, method="gc", groups=3)
    with pytest.raises(GroupConvError, match="unknown method"):
        approximability_of_model(model, x, methods=("shuffle",))
    with pytest.raises(GroupConvError, match="no dense Conv1d/Conv2d"):
        approximability_of_model(nn.Sequential(nn.Linear(3, 3)), torch.randn(2, 3))
    assert list(eligible_convs(model)) == ["0", "2", "5"]
