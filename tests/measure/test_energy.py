"""Energy sources: nvidia-smi power logs against exact integrals, Zeus through a fake at its import."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from groupconv.errors import GroupConvError
from groupconv.measure import energy
from groupconv.measure.energy import (
    EnergySourceError,
    NoEnergySource,
    NvidiaSmiLogSource,
    PowerLog,
    ZeusSource,
    available_source,
    integrate_power,
    measure_idle_power,
    read_power_log,
)
from measure_fakes import FakeZeusState, hide_zeus, install_fake_zeus

BASE = 1_700_000_000.0  # a whole second, so millisecond offsets print exactly


def stamp(t: float) -> str:
    """nvidia-smi's timestamp for POSIX time t (local time, milliseconds)."""
    return datetime.fromtimestamp(t).strftime("%Y/%m/%d %H:%M:%S.%f")[:-3]


def write_log(path: Path, times, powers, *, header="timestamp, power.draw [W]", unit=" W") -> Path:
    lines = [header] if header else []
    lines += [f"{stamp(t)}, {p:.2f}{unit}" for t, p in zip(times, powers)]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- nvidia-smi log: parsing ----------------------------------------------------------


def test_log_is_parsed_in_local_time_with_units(tmp_path):
    times = BASE + np.arange(5) * 0.1
    path = write_log(tmp_path / "p.csv", times, [50, 60, 70, 80, 90])
    samples = read_power_log(path)
    np.testing.assert_allclose(samples.time_s, times, atol=1e-6)
    np.testing.assert_allclose(samples.power_W, [50, 60, 70, 80, 90])


@pytest.mark.parametrize(
    "header, unit",
    [
        ("timestamp, power.draw [W]", ""),  # --format=csv,nounits
        ("", " W"),  # --format=csv,noheader
        ("timestamp, index, power.draw [W]", None),  # more query fields
    ],
)
def test_log_variants(tmp_path, header, unit):
    times = BASE + np.arange(3) * 0.1
    if unit is None:
        text = header + "\n" + "".join(f"{stamp(t)}, 0, {p} W\n" for t, p in zip(times, [10, 20, 30]))
        path = tmp_path / "p.csv"
        path.write_text(text)
    else:
        path = write_log(tmp_path / "p.csv", times, [10, 20, 30], header=header, unit=unit)
    np.testing.assert_allclose(read_power_log(path).power_W, [10, 20, 30])


@pytest.mark.parametrize(
    "bad_line, needle",
    [
        ("2024/05/01 12:00:00.300, [N/A]", "power.draw '[N/A]' is not a number"),
        ("2024/05/01 12:00:00.300, [Not Supported]", "is not a number"),
        ("12:00:00, 65.4 W", "timestamp '12:00:00' is not like"),
        ("2024/05/01 12:00:00.050, 65.4 W", "goes backwards"),
        ("2024/05/01 12:00:00.300", "expected timestamp and power.draw"),
    ],
)
def test_malformed_log_line_is_named(tmp_path, bad_line, needle):
    path = tmp_path / "p.csv"
    path.write_text(
        "timestamp, power.draw [W]\n2024/05/01 12:00:00.100, 60.0 W\n"
        f"2024/05/01 12:00:00.200, 61.0 W\n{bad_line}\n"
    )
    with pytest.raises(EnergySourceError) as info:
        read_power_log(path)
    assert f"{path} line 4" in str(info.value)
    assert needle in str(info.value)
    assert isinstance(info.value, GroupConvError)


def test_header_without_power_column_is_refused(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("timestamp, temperature.gpu\n")
    with pytest.raises(EnergySourceError, match="line 1: header has no power.draw"):
        read_power_log(path)


def test_missing_log_is_an_error(tmp_path):
    with pytest.raises(EnergySourceError, match="does not exist"):
        read_power_log(tmp_path / "nope.csv")


def test_log_is_read_incrementally_and_partial_lines_wait(tmp_path):
    path = write_log(tmp_path / "p.csv", BASE + np.array([0.0, 0.1]), [10, 20])
    log = PowerLog(path)
    assert len(log.refresh().time_s) == 2
    with open(path, "a") as handle:
        handle.write(f"{stamp(BASE + 0.2)}, 30.00 W\n{stamp(BASE + 0.3)}, 4")  # last line unfinished
    assert len(log.refresh().time_s) == 3
    with open(path, "a") as handle:
        handle.write("0.00 W\n")
    samples = log.refresh()
    np.testing.assert_allclose(samples.power_W, [10, 20, 30, 40])


# --- integration ----------------------------------------------------------------------


def test_constant_and_linear_power_integrate_exactly(tmp_path):
    times = BASE + np.arange(0, 3.01, 0.1)
    path = write_log(tmp_path / "c.csv", times, np.full(times.shape, 75.0))
    samples = read_power_log(path)
    assert integrate_power(samples, BASE + 0.25, BASE + 2.05) == pytest.approx(75.0 * 1.8, rel=1e-6)

    a, b = 40.0, 20.0  # p(t) = a + b (t - BASE): trapezoid with interpolated edges is exact
    path = write_log(tmp_path / "l.csv", times, a + b * (times - BASE))
    samples = read_power_log(path)
    t0, t1 = 0.33, 2.71
    exact = a * (t1 - t0) + b / 2 * (t1**2 - t0**2)
    assert integrate_power(samples, BASE + t0, BASE + t1) == pytest.approx(exact, rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    powers=st.lists(st.floats(0, 400), min_size=2, max_size=30),
    u0=st.floats(0, 1),
    u1=st.floats(0, 1),
)
def test_integral_equals_quadrature_of_the_interpolated_power(powers, u0, u1):
    times = BASE + np.arange(len(powers)) * 0.1
    samples = energy.PowerSamples(times, np.asarray(powers))
    span = times[-1] - times[0]
    t0, t1 = sorted((times[0] + u0 * span, times[0] + u1 * span))
    if t1 - t0 < 1e-6:
        return
    got = integrate_power(samples, t0, t1)
    inside = [t - BASE for t in times if t0 < t < t1]
    exact, _ = integrate.quad(
        lambda s: np.interp(s, times - BASE, powers), t0 - BASE, t1 - BASE, points=inside or None, limit=200
    )
    assert got == pytest.approx(exact, rel=1e-6, abs=1e-6)
    middle = (t0 + t1) / 2
    assert got == pytest.approx(
        integrate_power(samples, t0, middle) + integrate_power(samples, middle, t1), rel=1e-9, abs=1e-9
    )


def test_window_outside_the_log_is_refused(tmp_path):
    times = BASE + np.arange(5) * 0.1
    samples = read_power_log(write_log(tmp_path / "p.csv", times, [1, 2, 3, 4, 5]))
    with pytest.raises(EnergySourceError, match="not covered by the power log"):
        integrate_power(samples, BASE - 1, BASE + 0.2)
    with pytest.raises(EnergySourceError, match="not after its start"):
        integrate_power(samples, BASE + 0.2, BASE + 0.2)


# --- nvidia-smi log as a source -------------------------------------------------------


def test_log_source_integrates_its_window(tmp_path):
    times = BASE + np.arange(0, 5.01, 0.1)
    path = write_log(tmp_path / "p.csv", times, 100 + 10 * (times - BASE))
    clock = iter([BASE + 1.0, BASE + 3.0])
    source = NvidiaSmiLogSource(path, clock=lambda: next(clock))
    assert source.name == "nvidia-smi-log" and source.update_period_s == pytest.approx(0.1)
    source.begin_window()
    got = source.end_window()
    assert got == pytest.approx(100 * 2 + 5 * (9 - 1), rel=1e-6)


def test_log_source_times_out_when_the_log_stops(tmp_path):
    path = write_log(tmp_path / "p.csv", BASE + np.arange(3) * 0.1, [1, 2, 3])
    clock = iter([BASE + 0.05, BASE + 10.0])
    source = NvidiaSmiLogSource(path, clock=lambda: next(clock), wait_s=0.2)
    source.begin_window()
    with pytest.raises(EnergySourceError, match="no sample after the window end"):
        source.end_window()


def test_starting_nvidia_smi_without_it_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(energy.shutil, "which", lambda name: None)
    with pytest.raises(EnergySourceError, match="nvidia-smi is not on PATH"):
        NvidiaSmiLogSource.start(tmp_path / "p.csv")


# --- no source ----------------------------------------------------------------------------


def test_no_source_never_reports_zero_joules():
    source = NoEnergySource("testing")
    assert not source.available and source.name == "none" and source.update_period_s is None
    source.begin_window()
    with pytest.raises(EnergySourceError, match="energy is unavailable: testing"):
        source.end_window()
    assert measure_idle_power(source, 0.01) is None


# --- Zeus through a fake at its import boundary ------------------------------------------


@pytest.fixture
def fresh_cache(monkeypatch):
    monkeypatch.setattr(energy, "_AVAILABLE", {})


def test_zeus_gpu_source_reads_the_gpu_energy(monkeypatch):
    state = install_fake_zeus(monkeypatch, FakeZeusState(scripted_energy_J=[12.5]))
    source = ZeusSource("gpu", 0)
    assert source.name == "zeus-nvml" and source.update_period_s == energy.NVML_UPDATE_PERIOD_S
    source.begin_window()
    assert source.end_window() == 12.5
    monitor = state.monitors[-1]
    assert monitor.gpu_indices == [0] and monitor.cpu_indices == []


def test_zeus_cpu_source_adds_dram_energy(monkeypatch):
    install_fake_zeus(monkeypatch, FakeZeusState(cpu_power_W=30.0, dram_power_W=5.0))
    source = ZeusSource("cpu", 0)
    assert source.name == "zeus-rapl"

    def bracketed(src):
        """Energy of a >= 50 ms window, with the wall time just inside and just outside it."""
        outer_start = time_now()
        src.begin_window()
        inner_start = time_now()
        while time_now() - inner_start < 0.05:
            pass
        inner = time_now() - inner_start
        got = src.end_window()
        return got, inner, time_now() - outer_start

    # package + DRAM at 35 W: the fake's window lies between the two wall-clock brackets
    got, inner, outer = bracketed(source)
    assert 35.0 * inner <= got <= 35.0 * outer
    got, inner, outer = bracketed(ZeusSource("cpu", 0, include_dram=False))
    assert 30.0 * inner <= got <= 30.0 * outer  # the package alone


def time_now() -> float:
    import time

    return time.perf_counter()


def test_zero_joules_from_zeus_is_an_error_not_a_result(monkeypatch):
    install_fake_zeus(monkeypatch, FakeZeusState(scripted_energy_J=[0.0]))
    source = ZeusSource("gpu", 0)
    source.begin_window()
    with pytest.raises(EnergySourceError, match="reported 0.0 J"):
        source.end_window()


def test_zeus_errors_become_one_line_energy_source_errors(monkeypatch):
    install_fake_zeus(monkeypatch, FakeZeusState(window_error=RuntimeError("NVML_ERROR_GPU_IS_LOST\nretry")))
    source = ZeusSource("gpu", 0)
    with pytest.raises(EnergySourceError) as info:
        source.begin_window()
    assert str(info.value) == "zeus-nvml: RuntimeError: NVML_ERROR_GPU_IS_LOST retry"


def test_missing_zeus_is_reported_not_hidden(monkeypatch, fresh_cache):
    hide_zeus(monkeypatch)
    with pytest.raises(EnergySourceError, match="zeus is not installed"):
        ZeusSource("gpu", 0)
    source = available_source("cpu")
    assert isinstance(source, NoEnergySource) and "zeus is not installed" in source.reason


def test_available_source_picks_zeus_and_checks_once(monkeypatch, fresh_cache):
    state = install_fake_zeus(monkeypatch, FakeZeusState(n_gpus=2))
    gpu = available_source("cuda:1")
    assert isinstance(gpu, ZeusSource) and gpu.name == "zeus-nvml" and gpu.index == 1
    assert available_source("cuda:1") is gpu  # cached
    assert available_source("cpu").name == "zeus-rapl"
    state.cpu_init_error = PermissionError("RAPL needs root")
    assert available_source("cpu").name == "zeus-rapl"  # still the cached answer
    refreshed = available_source("cpu", refresh=True)
    assert isinstance(refreshed, NoEnergySource) and "RAPL needs root" in refreshed.reason
    assert isinstance(available_source("cuda:5"), NoEnergySource)


def test_available_source_rejects_bad_device():
    with pytest.raises(GroupConvError, match="device must be"):
        available_source("tpu")


def test_idle_power_is_energy_over_time(monkeypatch):
    install_fake_zeus(monkeypatch, FakeZeusState(gpu_power_W=55.0))
    calls = []
    idle = measure_idle_power(ZeusSource("gpu", 0), 0.05, sync=lambda: calls.append(1))
    assert calls == [1]
    assert idle == pytest.approx(55.0, rel=0.1)
    assert math.isfinite(idle)
