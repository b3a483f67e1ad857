"""The measurement protocol on real CPU convolutions: per frame, windows, energy, memory."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from groupconv.errors import GroupConvError  # noqa: E402
from groupconv.measure import NoEnergySource, Protocol, measure  # noqa: E402
from groupconv.measure.protocol import make_step, peak_memory_bytes  # noqa: E402
from groupconv.nn import make_layer  # noqa: E402
from measure_fakes import ConstantPowerSource  # noqa: E402


def conv_and_input(method="dense", n=16, m=16, size=8, groups=None, batch=2):
    torch.manual_seed(0)
    module = make_layer(method, n, m, 3, groups)
    x = torch.randn(batch, n, size, size, requires_grad=True)
    return module, x


def test_time_is_per_frame_and_windows_are_long_enough(fast_protocol):
    module, x = conv_and_input(batch=4)
    result = measure(module, x, fast_protocol)
    assert result.batch == 4 and result.trials == 2 and result.repeats >= 1
    assert result.time_s > 0 and math.isfinite(result.time_std_s)
    # time per frame * frames per window = the window.
    assert result.time_s * result.repeats * 4 == pytest.approx(result.window_s, rel=1e-9)
    assert result.window_s >= 0.8 * fast_protocol.min_window_s
    assert result.energy_J is None and result.energy_std_J is None and result.energy_source == "none"
    assert result.cudnn_benchmark is None  # not a GPU


def test_forward_backward_costs_more_than_forward(fast_protocol):
    module, x = conv_and_input(n=32, m=32, size=16, batch=4)
    forward = measure(module, x, Protocol(**{**fast_protocol.__dict__, "mode": "forward"}))
    both = measure(module, x, fast_protocol)
    assert both.time_s > forward.time_s
    assert both.peak_memory_batch_bytes > forward.peak_memory_batch_bytes


def test_energy_is_per_frame_and_windows_cover_many_update_periods():
    source = ConstantPowerSource(power_W=50.0, update_period_s=0.002)
    protocol = Protocol(warmup=1, warmup_s=0, trials=3, min_window_s=0.001, window_factor=10)
    module, x = conv_and_input(batch=3)
    result = measure(module, x, protocol, source)
    target = protocol.window_s(source)
    assert target == pytest.approx(0.02)
    assert result.energy_source == "zeus-rapl"
    # Three trials (repeated, with longer windows, if a window came out short).
    assert len(source.windows) in (3, 6, 9)
    last = source.windows[-3:]
    assert min(last) >= 0.5 * target and result.window_s >= 0.8 * target
    frames = result.repeats * 3
    assert result.energy_J * frames == pytest.approx(50.0 * sum(last) / 3, rel=1e-9)
    # The energy window wraps the timed window closely: energy ~ power x time.
    assert result.energy_J == pytest.approx(50.0 * result.time_s, rel=0.2)
    assert result.energy_std_J >= 0


def test_no_source_gives_no_energy_not_zero(fast_protocol):
    module, x = conv_and_input()
    result = measure(module, x, fast_protocol, NoEnergySource("none here"))
    assert result.energy_J is None and result.energy_source == "none"


class Double(torch.nn.Module):
    def forward(self, x):
        return x * 2


class Scale(torch.nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x):
        return x * self.w


def test_cpu_peak_memory_counts_every_tensor_exactly():
    x = torch.randn(4, 8, 16, 16)
    step = make_step(Double(), x, "forward")
    # Input and output live together at the peak (plus at most a scalar's bytes).
    assert peak_memory_bytes(step, [x], x.device) == pytest.approx(2 * x.nbytes, abs=64)

    module = Scale(8)
    x = torch.randn(4, 8, 16, 16, requires_grad=True)
    step = make_step(module, x, "forward_backward")
    # x, grad_out, output, grad of x, grad * x (before its sum over batch and space), w, grad of w.
    expected = 5 * x.nbytes + 2 * module.w.nbytes
    got = peak_memory_bytes(step, [module.w, x, step.grad_out], x.device)
    assert got == pytest.approx(expected, abs=64)


def test_conv_peak_memory_bounds_and_structure(fast_protocol):
    module, x = conv_and_input(n=32, m=32, size=8, batch=2)
    result = measure(module, x, fast_protocol)
    weights = sum(p.nbytes for p in module.parameters())
    # At least: weights + input + output gradient + output + weight gradient + input gradient.
    lower = 2 * weights + 4 * x.nbytes
    assert lower <= result.peak_memory_batch_bytes <= 4 * lower
    assert result.peak_memory_bytes == result.peak_memory_batch_bytes / 2

    def peak(method, groups):
        module, x = conv_and_input(method, n=256, m=256, size=4, groups=groups, batch=1)
        return measure(module, x, fast_protocol).peak_memory_batch_bytes

    dense, gc8, bgc8 = peak("dense", None), peak("gc", 8), peak("bgc", 8)
    assert dense > bgc8 > gc8  # weights dominate here: 1, 2/N, 1/N of the dense weights


def test_memory_step_can_be_skipped(fast_protocol):
    module, x = conv_and_input()
    protocol = Protocol(**{**fast_protocol.__dict__, "measure_memory": False})
    result = measure(module, x, protocol)
    assert result.peak_memory_bytes is None and result.peak_memory_batch_bytes is None


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"mode": "backward"}, "unknown mode 'backward'"),
        ({"trials": 0}, "trials must be a positive integer, got 0"),
        ({"min_window_s": 0}, "min_window_s must be a finite positive number, got 0"),
        ({"window_factor": -1.0}, "window_factor must be a finite positive number"),
        ({"warmup": -1}, "warmup must be a non-negative integer, got -1"),
    ],
)
def test_bad_protocol_settings(kwargs, needle):
    with pytest.raises(GroupConvError, match=needle):
        Protocol(**kwargs)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_measurement_uses_cuda_memory_and_records_cudnn_mode(fast_protocol):
    module, x = conv_and_input(n=64, m=64, size=14, batch=8)
    module, x = module.cuda(), x.detach().cuda().requires_grad_(True)
    result = measure(module, x, fast_protocol)
    assert result.cudnn_benchmark is True
    weights = sum(p.nbytes for p in module.parameters())
    assert result.peak_memory_batch_bytes >= 2 * weights + 4 * x.nbytes
    assert result.time_s > 0


def test_fastest_window_is_the_minimum_of_its_windows_on_the_chosen_clock():
    """The public time-only option: per step, the fastest window; a clock that does not
    fit the device is a one-line error; wall and thread time agree on a busy loop."""
    import time

    from groupconv.errors import GroupConvError
    from groupconv.measure import FastestWindow, Protocol, fastest_window

    class Busy(torch.nn.Module):  # about 1 ms of pure-Python work on this thread
        def forward(self, x):
            end = time.perf_counter() + 1e-3
            while time.perf_counter() < end:
                pass
            return x

    protocol = Protocol(mode="forward", warmup=1, warmup_s=0.0, trials=3, min_window_s=0.01, measure_memory=False)
    x = torch.zeros(2)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        auto = fastest_window(Busy(), x, protocol)
    finally:
        torch.set_num_threads(previous)
    assert isinstance(auto, FastestWindow) and auto.clock == "thread_time" and auto.trials == 3
    wall = fastest_window(Busy(), x, protocol, clock="wall")
    assert wall.clock == "wall" and wall.repeats >= 5
    for t in (auto, wall):
        assert 0.9e-3 <= t.time_s < 5e-3 and t.time_std_s >= 0
    with pytest.raises(GroupConvError, match="cuda_events"):
        fastest_window(Busy(), x, protocol, clock="cuda_events")
    with pytest.raises(GroupConvError, match="clock"):
        fastest_window(Busy(), x, protocol, clock="sundial")
