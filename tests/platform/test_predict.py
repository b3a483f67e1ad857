"""predict(): per-op prices summed per frame; counts cross-checked against torch."""

from __future__ import annotations

import pytest

from groupconv.errors import GroupConvError
from groupconv.platform import Prediction, UnmeasuredKernelWarning, predict

torch = pytest.importorskip("torch")
nn = torch.nn


def _net():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.ReLU())


def test_total_is_hand_sum_per_frame(hand_platform):
    batch = 2
    with pytest.warns(UnmeasuredKernelWarning, match="view"):
        result = predict(hand_platform, _net(), (batch, 3, 8, 8))
    assert isinstance(result, Prediction)
    # B = 2 > 1 sends the dense conv to oneDNN; groups == in_channels is depthwise; batch norm
    # records a free aten.empty first ("view": no model here, so the roofline's fixed 1e-7 s)
    assert [o.kernel for o in result.ops] == ["conv_mkldnn", "view", "norm", "activation", "conv_dw", "activation"]
    assert result.unmeasured == ("view",)
    # hand: conv1 macs = 2*16*3*9*64 = 55296; conv2 (dw) = 2*16*1*9*64 = 18432
    # norm bytes (eval: running statistics are read, not written): read 2*16*64*4 = 8192
    # + 4 vectors of 16 floats (256), write the output 8192 -> 16640; relu: 2 * 8192 = 16384 each
    expected = (2e-6 + 1e-10 * 55296) + 1e-7 + (1e-6 + 1e-9 * 16640) + (1e-6 + 1e-9 * 16384) \
        + (2e-6 + 1e-10 * 18432) + (1e-6 + 1e-9 * 16384)
    assert result.time_s == pytest.approx(expected / batch)
    assert sum(o.time_s for o in result.ops) == pytest.approx(result.time_s)
    assert result.energy_J is None
    d = result.as_dict()
    assert {"time_s", "energy_J", "ops"} <= set(d) and len(d["ops"]) == 6
    assert set(result.op_table().columns) >= {"op", "op_class", "module", "time_s", "energy_J", "bound", "macs", "bytes"}


@pytest.mark.filterwarnings("ignore::groupconv.platform.UnmeasuredKernelWarning")
def test_macs_match_flop_counter(hand_platform):
    from torch.utils.flop_counter import FlopCounterMode

    model, x = _net().eval(), torch.randn(4, 3, 8, 8)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    result = predict(hand_platform, model, (4, 3, 8, 8))
    assert result.macs * 4 == counter.get_total_flops() // 2  # per frame x batch = FLOPs / 2


@pytest.mark.filterwarnings("ignore::groupconv.platform.UnmeasuredKernelWarning")
def test_model_that_does_not_run_is_one_line(hand_platform):
    with pytest.raises(GroupConvError, match=r"input shape \(1, 5, 8, 8\)") as info:
        predict(hand_platform, _net(), (1, 5, 8, 8))
    assert "\n" not in str(info.value)


@pytest.mark.filterwarnings("ignore::groupconv.platform.UnmeasuredKernelWarning")
def test_bad_mode_and_missing_inputs(hand_platform):
    with pytest.raises(GroupConvError, match="mode"):
        predict(hand_platform, _net(), (1, 3, 8, 8), mode="train")
    with pytest.raises(GroupConvError, match="needs inputs"):
        predict(hand_platform, _net())


@pytest.mark.filterwarnings("ignore::groupconv.platform.UnmeasuredKernelWarning")
def test_forward_backward_costs_more(hand_platform):
    fwd = predict(hand_platform, _net(), (1, 3, 8, 8))
    fb = predict(hand_platform, _net(), (1, 3, 8, 8), mode="forward_backward")
    assert fb.time_s > fwd.time_s
    assert {o.phase for o in fb.ops} == {"forward", "backward"}


@pytest.mark.filterwarnings("ignore::groupconv.platform.UnmeasuredKernelWarning")
def test_prediction_from_counts(hand_platform):
    """A ModelCount-like value (ops + batch) is priced without tracing."""
    from groupconv.networks import count_module

    direct = predict(hand_platform, _net(), (2, 3, 8, 8))
    counted = predict(hand_platform, count_module(_net(), (2, 3, 8, 8)))
    assert counted.time_s == pytest.approx(direct.time_s)


def test_prediction_names_the_model_of_every_op_and_the_roofline_fallbacks(hand_platform):
    with pytest.warns(UnmeasuredKernelWarning):
        result = predict(hand_platform, _net(), (2, 3, 8, 8))
    assert [o.model for o in result.ops] == ["conv_mkldnn", "roofline", "norm", "activation", "conv_dw", "activation"]
    assert result.roofline_ops == {"aten.empty.memory_format (view)": 1}
    d = result.as_dict()
    assert d["roofline_ops"] == result.roofline_ops and d["threads"] == 1 and d["traced_on"] == "cpu"
    assert d["by_model"]["activation"] == pytest.approx(sum(o.time_s for o in result.ops if o.model == "activation"))


def test_other_conditions_than_the_platform_are_refused(hand_platform):
    with pytest.raises(GroupConvError, match="calibrated with 1 thread"):
        predict(hand_platform, _net(), (1, 3, 8, 8), threads=2)
    with pytest.raises(GroupConvError, match="calibrated in float32, the model runs in float64"):
        predict(hand_platform, _net().double(), (torch.zeros(1, 3, 8, 8, dtype=torch.float64),))
    with pytest.raises(GroupConvError, match="trace must be"):
        predict(hand_platform, _net(), (1, 3, 8, 8), trace="gpu")


def test_a_gru_is_priced_as_one_loop_per_call_with_the_counters_totals(hand_platform):
    from groupconv.networks import count_module
    from groupconv.platform.predict import trace_counts

    model = nn.GRU(10, 16, 2, batch_first=True)
    x = torch.randn(1, 7, 10)
    raw = count_module(model, (x,), device="cpu")
    merged = trace_counts(hand_platform, model, (x,))
    loops = [o for o in merged.ops if o.op == "groupconv.rnn_loop.default"]
    assert len(loops) == 1 and loops[0].input_shapes[0] == (len(raw.ops) - (len(merged.ops) - 1),)
    assert sum(o.macs for o in merged.ops) == sum(o.macs for o in raw.ops)
    assert sum(o.bytes_read + o.bytes_written for o in merged.ops) == sum(o.bytes_read + o.bytes_written for o in raw.ops)
