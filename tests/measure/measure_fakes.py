"""Fakes at the hardware boundary: a fake ``zeus`` package, constant-power sources.

Zeus tests itself by replacing NVML/RAPL with fakes; we do the same one level up, by
putting fake ``zeus``, ``zeus.monitor`` and ``zeus.device`` modules into ``sys.modules``.
The fake monitor's counters advance at a fixed power with real (or scripted) time, so
results are checkable against power x time.
"""

from __future__ import annotations

import sys
import time
import types
from dataclasses import dataclass, field

from groupconv.measure.energy import EnergySource


@dataclass
class FakeMeasurement:
    time: float
    gpu_energy: dict[int, float]
    cpu_energy: dict[int, float] | None = None
    dram_energy: dict[int, float] | None = None


@dataclass
class FakeZeusState:
    """Knobs of the fake Zeus install."""

    n_gpus: int = 1
    n_cpus: int = 1
    gpu_power_W: float = 100.0
    cpu_power_W: float = 30.0
    dram_power_W: float | None = 5.0
    gpu_init_error: Exception | None = None
    cpu_init_error: Exception | None = None
    window_error: Exception | None = None
    scripted_energy_J: list[float] | None = None  # returned by end_window in turn, if set
    monitors: list = field(default_factory=list)


def install_fake_zeus(monkeypatch, state: FakeZeusState | None = None) -> FakeZeusState:
    """Put a fake zeus into sys.modules (undone by monkeypatch at the end of the test)."""
    state = state or FakeZeusState()

    class Devices:
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

    def get_gpus():
        if state.gpu_init_error is not None:
            raise state.gpu_init_error
        return Devices(state.n_gpus)

    def get_cpus():
        if state.cpu_init_error is not None:
            raise state.cpu_init_error
        return Devices(state.n_cpus)

    class ZeusMonitor:
        def __init__(self, gpu_indices=None, cpu_indices=None, **kwargs):
            self.gpu_indices = list(gpu_indices or [])
            self.cpu_indices = list(cpu_indices or [])
            self.windows: dict[str, float] = {}
            state.monitors.append(self)

        def begin_window(self, key, sync_execution=True, restart=False):
            if state.window_error is not None:
                raise state.window_error
            if key in self.windows and not restart:
                raise ValueError(f"Measurement window '{key}' already exists")
            self.windows[key] = time.perf_counter()

        def end_window(self, key, sync_execution=True, cancel=False):
            if state.window_error is not None:
                raise state.window_error
            elapsed = time.perf_counter() - self.windows.pop(key)
            if state.scripted_energy_J is not None:
                value = state.scripted_energy_J.pop(0)
                gpu = {i: value for i in self.gpu_indices}
                cpu = {i: value for i in self.cpu_indices} or None
                return FakeMeasurement(elapsed, gpu, cpu, None)
            gpu = {i: state.gpu_power_W * elapsed for i in self.gpu_indices}
            cpu = {i: state.cpu_power_W * elapsed for i in self.cpu_indices} or None
            dram = None
            if state.dram_power_W is not None and self.cpu_indices:
                dram = {i: state.dram_power_W * elapsed for i in self.cpu_indices}
            return FakeMeasurement(elapsed, gpu, cpu, dram)

    zeus = types.ModuleType("zeus")
    monitor = types.ModuleType("zeus.monitor")
    device = types.ModuleType("zeus.device")
    monitor.ZeusMonitor = ZeusMonitor
    device.get_gpus = get_gpus
    device.get_cpus = get_cpus
    zeus.monitor = monitor
    zeus.device = device
    monkeypatch.setitem(sys.modules, "zeus", zeus)
    monkeypatch.setitem(sys.modules, "zeus.monitor", monitor)
    monkeypatch.setitem(sys.modules, "zeus.device", device)
    return state


def hide_zeus(monkeypatch) -> None:
    """Make ``import zeus`` fail as if it were not installed."""
    for name in ("zeus", "zeus.monitor", "zeus.device"):
        monkeypatch.setitem(sys.modules, name, None)


class ConstantPowerSource(EnergySource):
    """A source whose device draws ``power_W`` all the time (energy = power x wall time)."""

    name = "zeus-rapl"

    def __init__(self, power_W: float, update_period_s: float = 0.001) -> None:
        self.power_W = power_W
        self.update_period_s = update_period_s
        self.windows: list[float] = []

    def begin_window(self) -> None:
        self._t0 = time.perf_counter()

    def end_window(self) -> float:
        elapsed = time.perf_counter() - self._t0
        self.windows.append(elapsed)
        return self.power_W * elapsed
