"""Energy sources behind one small interface.

An :class:`EnergySource` measures the energy of a window of wall-clock time::

    source.begin_window()
    ...                      # the work
    energy_J = source.end_window()

Sources:

* :class:`ZeusSource` - the live source. Zeus's ``ZeusMonitor`` reads NVML's energy
  counter on Volta and newer NVIDIA GPUs (``"zeus-nvml"``; on older GPUs Zeus polls
  NVML power itself) or Intel RAPL on CPUs where it is readable (``"zeus-rapl"``).
  Zeus is imported lazily; its exceptions become :class:`EnergySourceError`.
* :class:`NvidiaSmiLogSource` - integrates a power log written by
  ``nvidia-smi --query-gpu=timestamp,power.draw --format=csv -lms 100 -f LOG``
  over the window (trapezoid rule). :func:`read_power_log` and
  :func:`integrate_power` do the same offline.
* :class:`NoEnergySource` - the explicit "nothing here" object: results measured with
  it have no energy (``energy_J`` empty, ``energy_source`` ``"none"``), never 0 J.

:func:`available_source` picks the best live source for a device once and caches it,
the way Zeus's ``zeus.device.gpu.get_gpus`` does.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from .. import _validate as v
from ..errors import GroupConvError

__all__ = [
    "ENERGY_SOURCES",
    "EnergySource",
    "EnergySourceError",
    "NoEnergySource",
    "ZeusSource",
    "NvidiaSmiLogSource",
    "PowerLog",
    "read_power_log",
    "integrate_power",
    "available_source",
    "measure_idle_power",
    "NVML_UPDATE_PERIOD_S",
    "RAPL_UPDATE_PERIOD_S",
]

#: Values of the ``energy_source`` column.
ENERGY_SOURCES: tuple[str, ...] = ("zeus-nvml", "zeus-rapl", "nvidia-smi-log", "none")

#: Assumed update period of NVML's energy counter / power reading (s). NVIDIA does not
#: document it; it is tens of milliseconds on recent GPUs; 0.1 s is a conservative value.
NVML_UPDATE_PERIOD_S = 0.1
#: Update period of Intel RAPL energy counters (about 1 ms).
RAPL_UPDATE_PERIOD_S = 0.001


class EnergySourceError(GroupConvError):
    """An energy source cannot give a reading (missing hardware, permissions, bad log)."""


class EnergySource:
    """Energy of a window of wall-clock time.

    Attributes
    ----------
    name : str
        The ``energy_source`` column value (one of :data:`ENERGY_SOURCES`).
    update_period_s : float or None
        How often the underlying reading changes; a measurement window should be many
        times longer (see :class:`~groupconv.measure.protocol.Protocol`). None: no
        readings at all (:class:`NoEnergySource`).
    """

    name: str = "none"
    update_period_s: float | None = None

    @property
    def available(self) -> bool:
        """Whether :meth:`end_window` returns energy (False only for :class:`NoEnergySource`)."""
        return True

    def begin_window(self) -> None:
        """Start a measurement window."""
        raise NotImplementedError

    def end_window(self) -> float:
        """End the window started by :meth:`begin_window`; its energy in joules (> 0)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for logs and notebooks."""
        return f"{self.name} (update period {self.update_period_s} s)"

    def close(self) -> None:
        """Release what the source holds (processes, handles)."""

    def __enter__(self) -> EnergySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NoEnergySource(EnergySource):
    """No energy reading on this machine; ``reason`` says why (shown to the user).

    :meth:`end_window` raises: a caller must check :attr:`available` and record the
    energy as unavailable rather than as 0 J.
    """

    name = "none"
    update_period_s = None

    def __init__(self, reason: str = "no energy source requested") -> None:
        self.reason = reason

    @property
    def available(self) -> bool:
        return False

    def begin_window(self) -> None:
        return None

    def end_window(self) -> float:
        raise EnergySourceError(f"energy is unavailable: {self.reason}")

    def describe(self) -> str:
        return f"none ({self.reason})"

    def __repr__(self) -> str:
        return f"NoEnergySource(reason={self.reason!r})"


def _vendor_error(source: str, exc: BaseException) -> EnergySourceError:
    """A vendor exception as our one-line error, naming the source."""
    message = " ".join(str(exc).split()) or "no message"
    return EnergySourceError(f"{source}: {type(exc).__name__}: {message}")


def _check_energy(source: str, energy_J: float) -> float:
    """Refuse a reading that is not a positive finite number (never a silent 0 J)."""
    if not math.isfinite(energy_J) or energy_J <= 0:
        raise EnergySourceError(
            f"{source} reported {energy_J!r} J for the window; the window is probably "
            "shorter than the counter's update period (lengthen it)"
        )
    return float(energy_J)


class ZeusSource(EnergySource):
    """Zeus's ``ZeusMonitor`` on one GPU (``"zeus-nvml"``) or one CPU package (``"zeus-rapl"``).

    Parameters
    ----------
    kind : {"gpu", "cpu"}
        GPU: NVML energy counter (Volta and newer; Zeus polls power on older GPUs).
        CPU: RAPL package energy (plus DRAM energy where RAPL exposes it and
        ``include_dram`` is True).
    index : int
        GPU index as torch sees it (``CUDA_VISIBLE_DEVICES`` respected by Zeus) or RAPL
        package index.
    update_period_s : float, optional
        Defaults to :data:`NVML_UPDATE_PERIOD_S` or :data:`RAPL_UPDATE_PERIOD_S`.
    include_dram : bool, default True
        CPU only: add RAPL's DRAM energy when it is available.
    """

    def __init__(
        self,
        kind: str = "gpu",
        index: int = 0,
        *,
        update_period_s: float | None = None,
        include_dram: bool = True,
    ) -> None:
        v.one_of("zeus device kind", kind, ("gpu", "cpu"))
        self.kind = kind
        self.index = v.nonnegative_int("device index", index)
        self.name = "zeus-nvml" if kind == "gpu" else "zeus-rapl"
        default = NVML_UPDATE_PERIOD_S if kind == "gpu" else RAPL_UPDATE_PERIOD_S
        self.update_period_s = v.finite_positive(
            "update_period_s", default if update_period_s is None else update_period_s
        )
        self.include_dram = include_dram
        self._window = f"groupconv-{id(self)}"
        try:
            from zeus.monitor import ZeusMonitor
        except ImportError as exc:
            raise EnergySourceError(
                f"{self.name}: zeus is not installed ({exc}); pip install zeus"
            ) from None
        try:
            if kind == "gpu":
                self._monitor = ZeusMonitor(gpu_indices=[self.index], cpu_indices=[])
            else:
                self._monitor = ZeusMonitor(gpu_indices=[], cpu_indices=[self.index])
        except Exception as exc:  # any vendor failure becomes our one-line error
            raise _vendor_error(self.name, exc) from None

    def begin_window(self) -> None:
        try:
            self._monitor.begin_window(self._window, restart=True)
        except Exception as exc:
            raise _vendor_error(self.name, exc) from None

    def end_window(self) -> float:
        try:
            measurement = self._monitor.end_window(self._window)
        except Exception as exc:
            raise _vendor_error(self.name, exc) from None
        if self.kind == "gpu":
            readings = measurement.gpu_energy or {}
            if self.index not in readings:
                raise EnergySourceError(f"zeus-nvml: no reading for GPU {self.index}")
            energy = float(readings[self.index])
        else:
            readings = measurement.cpu_energy or {}
            if self.index not in readings:
                raise EnergySourceError(f"zeus-rapl: no reading for CPU package {self.index}")
            energy = float(readings[self.index])
            dram = getattr(measurement, "dram_energy", None) or {}
            if self.include_dram and self.index in dram:
                energy += float(dram[self.index])
        return _check_energy(self.name, energy)

    def describe(self) -> str:
        what = f"GPU {self.index}" if self.kind == "gpu" else f"CPU package {self.index}"
        return f"{self.name} on {what} (update period {self.update_period_s} s)"

    def __repr__(self) -> str:
        return f"ZeusSource(kind={self.kind!r}, index={self.index})"


# --- nvidia-smi power logs -------------------------------------------------------------

_TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S.%f"


@dataclass(frozen=True)
class PowerSamples:
    """Power samples: ``time_s`` (POSIX seconds, increasing) and ``power_W``."""

    time_s: np.ndarray
    power_W: np.ndarray


class PowerLog:
    """An nvidia-smi power log, read incrementally as nvidia-smi appends to it.

    The log is the CSV that ``nvidia-smi --query-gpu=timestamp,power.draw --format=csv
    -lms 100 -i GPU -f LOG`` writes: a header ``timestamp, power.draw [W]`` and lines
    such as ``2024/05/01 12:00:00.123, 65.43 W``. More query fields may follow; the
    header locates ``timestamp`` and ``power.draw``. ``--format=csv,nounits`` (no
    ``W``) and ``noheader`` (then the first two fields are timestamp and power) work too.
    nvidia-smi writes local time without a zone; times are converted with the local
    zone of this machine (so read the log on the machine that wrote it).

    Log one GPU (``-i``): timestamps must not go backwards.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._offset = 0
        self._line_number = 0
        self._header: list[str] | None = None
        self._time_column = 0
        self._power_column = 1
        self._times: list[float] = []
        self._powers: list[float] = []

    def _error(self, line_number: int, problem: str) -> EnergySourceError:
        return EnergySourceError(f"power log {self.path} line {line_number}: {problem}")

    def refresh(self) -> PowerSamples:
        """Read complete lines appended since the last call; all samples so far."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            raise EnergySourceError(f"power log {self.path} does not exist") from None
        end = chunk.rfind(b"\n")
        if end >= 0:
            complete = chunk[: end + 1]
            self._offset += len(complete)
            for raw in complete.decode("utf-8", errors="replace").split("\n")[:-1]:
                self._line_number += 1
                self._parse_line(raw, self._line_number)
        return self.samples

    def _parse_line(self, raw: str, line_number: int) -> None:
        text = raw.strip()
        if not text:
            return
        fields = [field.strip() for field in text.split(",")]
        if fields[0].lower() == "timestamp":
            self._read_header(fields, line_number)
            return
        if len(fields) <= max(self._time_column, self._power_column):
            raise self._error(line_number, f"expected timestamp and power.draw, got {text!r}")
        stamp, power_text = fields[self._time_column], fields[self._power_column]
        try:
            moment = datetime.strptime(stamp, _TIMESTAMP_FORMAT).timestamp()
        except ValueError:
            raise self._error(
                line_number, f"timestamp {stamp!r} is not like '2024/05/01 12:00:00.123'"
            ) from None
        number = power_text[:-1].strip() if power_text.endswith("W") else power_text
        try:
            power = float(number)
        except ValueError:
            raise self._error(line_number, f"power.draw {power_text!r} is not a number") from None
        if not math.isfinite(power) or power < 0:
            raise self._error(line_number, f"power.draw {power_text!r} is not a valid power")
        if self._times and moment < self._times[-1]:
            raise self._error(
                line_number,
                f"timestamp {stamp!r} goes backwards (log one GPU with nvidia-smi -i)",
            )
        self._times.append(moment)
        self._powers.append(power)

    def _read_header(self, fields: list[str], line_number: int) -> None:
        names = [field.split("[")[0].strip().lower() for field in fields]
        if "power.draw" not in names:
            raise self._error(line_number, f"header has no power.draw column: {fields!r}")
        if self._header is not None and fields != self._header:
            raise self._error(line_number, f"header changed to {fields!r}")
        self._header = fields
        self._time_column = names.index("timestamp")
        self._power_column = names.index("power.draw")

    @property
    def samples(self) -> PowerSamples:
        return PowerSamples(np.asarray(self._times, float), np.asarray(self._powers, float))


def read_power_log(path: str | os.PathLike[str]) -> PowerSamples:
    """All samples of an nvidia-smi power log (see :class:`PowerLog` for the format)."""
    return PowerLog(path).refresh()


def integrate_power(samples: PowerSamples, t0: float, t1: float) -> float:
    """Energy (J) over ``[t0, t1]`` from power samples, by the trapezoid rule.

    The power at ``t0`` and ``t1`` is linearly interpolated between the neighbouring
    samples; the samples strictly inside the window are used as they are.

    Raises
    ------
    EnergySourceError
        If the window is empty or the samples do not cover it.
    """
    times, powers = samples.time_s, samples.power_W
    if not t1 > t0:
        raise EnergySourceError(f"window end {t1!r} is not after its start {t0!r}")
    if len(times) < 2:
        raise EnergySourceError(f"the power log has {len(times)} sample(s); need 2 around the window")
    if t0 < times[0] or t1 > times[-1]:
        raise EnergySourceError(
            f"window [{t0:.3f}, {t1:.3f}] s is not covered by the power log "
            f"[{times[0]:.3f}, {times[-1]:.3f}] s"
        )
    inside = (times > t0) & (times < t1)
    t = np.concatenate(([t0], times[inside], [t1]))
    p = np.concatenate(([np.interp(t0, times, powers)], powers[inside], [np.interp(t1, times, powers)]))
    return float(np.sum(np.diff(t) * (p[1:] + p[:-1]) / 2.0))


class NvidiaSmiLogSource(EnergySource):
    """Energy from an nvidia-smi power log, integrated over each window.

    The window's start and end are wall-clock times (``clock``, default
    :func:`time.time`); :meth:`end_window` waits (up to ``wait_s``) until the log has a
    sample after the window's end, then integrates with :func:`integrate_power`.

    Parameters
    ----------
    log_path : path
        The log nvidia-smi writes (see :class:`PowerLog`).
    interval_ms : int, default 100
        nvidia-smi's ``-lms`` logging interval; the update period of this source.
    gpu_index : int, default 0
        Only used by :meth:`start` (``nvidia-smi -i``).
    wait_s : float, default 5
        How long :meth:`end_window` waits for the log to pass the window's end.
    clock : callable, default time.time
        Wall clock matching the log's timestamps (tests inject one).
    """

    name = "nvidia-smi-log"

    def __init__(
        self,
        log_path: str | os.PathLike[str],
        *,
        interval_ms: int = 100,
        gpu_index: int = 0,
        wait_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log = PowerLog(log_path)
        self.interval_ms = v.positive_int("interval_ms", interval_ms)
        self.update_period_s = self.interval_ms / 1000.0
        self.gpu_index = v.nonnegative_int("gpu_index", gpu_index)
        self.wait_s = v.finite_positive("wait_s", wait_s)
        self._clock = clock
        self._t0: float | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls, log_path: str | os.PathLike[str], *, interval_ms: int = 100, gpu_index: int = 0, **kwargs
    ) -> NvidiaSmiLogSource:
        """Start ``nvidia-smi`` logging to ``log_path`` and return a source reading it.

        :meth:`close` stops the nvidia-smi process.
        """
        executable = shutil.which("nvidia-smi")
        if executable is None:
            raise EnergySourceError("nvidia-smi-log: nvidia-smi is not on PATH")
        source = cls(log_path, interval_ms=interval_ms, gpu_index=gpu_index, **kwargs)
        command = [
            executable,
            "--query-gpu=timestamp,power.draw",
            "--format=csv",
            "--loop-ms",
            str(source.interval_ms),
            "--id",
            str(source.gpu_index),
            "--filename",
            os.fspath(log_path),
        ]
        source._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + source.wait_s
        while time.monotonic() < deadline:  # wait for the first samples
            if source._process.poll() is not None:
                err = (source._process.stderr.read() if source._process.stderr else b"").decode()
                raise EnergySourceError(f"nvidia-smi-log: nvidia-smi exited: {' '.join(err.split())}")
            if Path(log_path).exists() and len(source.log.refresh().time_s) >= 2:
                break
            time.sleep(source.update_period_s)
        return source

    def begin_window(self) -> None:
        self._t0 = self._clock()

    def end_window(self) -> float:
        if self._t0 is None:
            raise EnergySourceError("nvidia-smi-log: end_window without begin_window")
        t0, t1 = self._t0, self._clock()
        self._t0 = None
        deadline = time.monotonic() + self.wait_s
        samples = self.log.refresh()
        while len(samples.time_s) == 0 or samples.time_s[-1] < t1:
            if time.monotonic() >= deadline:
                last = f"{samples.time_s[-1]:.3f}" if len(samples.time_s) else "none"
                raise EnergySourceError(
                    f"nvidia-smi-log: {self.log.path} has no sample after the window end "
                    f"{t1:.3f} s within {self.wait_s} s (last sample: {last}); is nvidia-smi logging?"
                )
            time.sleep(min(self.update_period_s, 0.05))
            samples = self.log.refresh()
        return _check_energy(self.name, integrate_power(samples, t0, t1))

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None

    def describe(self) -> str:
        return f"nvidia-smi-log from {self.log.path} (interval {self.interval_ms} ms)"

    def __repr__(self) -> str:
        return f"NvidiaSmiLogSource({str(self.log.path)!r}, interval_ms={self.interval_ms})"


# --- choosing a source --------------------------------------------------------------------

_AVAILABLE: dict[str, EnergySource] = {}


def _probe(device: str) -> EnergySource:
    """The best live source for ``device`` ("cpu", "cuda", "cuda:1"), or a NoEnergySource."""
    kind = "cpu" if device == "cpu" else "gpu"
    index = 0
    if kind == "gpu" and ":" in device:
        index = int(device.split(":", 1)[1])
    try:
        from zeus.device import get_cpus, get_gpus
    except ImportError:
        return NoEnergySource("zeus is not installed; pip install zeus")
    try:
        if kind == "gpu":
            gpus = get_gpus()
            if index >= len(gpus):
                return NoEnergySource(f"zeus sees {len(gpus)} GPU(s), not GPU {index}")
        else:
            cpus = get_cpus()
            if len(cpus) == 0:
                return NoEnergySource("zeus sees no RAPL CPU package")
    except Exception as exc:  # Zeus raises its own init/permission errors here
        what = "NVML" if kind == "gpu" else "RAPL"
        return NoEnergySource(f"zeus cannot read {what}: {' '.join(str(exc).split())}")
    try:
        return ZeusSource(kind, index)
    except EnergySourceError as exc:
        return NoEnergySource(str(exc))


def available_source(device: str = "cpu", *, refresh: bool = False) -> EnergySource:
    """The best live energy source for ``device``, checked once and cached.

    ``"cuda"``/``"cuda:N"`` gives ``ZeusSource("gpu", N)`` if Zeus can open NVML,
    ``"cpu"`` gives ``ZeusSource("cpu", 0)`` if RAPL is readable; otherwise a
    :class:`NoEnergySource` whose ``reason`` says why. ``refresh=True`` checks again.
    """
    if not isinstance(device, str) or not (
        device == "cpu" or device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())
    ):
        raise GroupConvError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    key = "cuda:0" if device == "cuda" else device
    if refresh or key not in _AVAILABLE:
        _AVAILABLE[key] = _probe(key)
    return _AVAILABLE[key]


def measure_idle_power(
    source: EnergySource, seconds: float, *, sync: Callable[[], None] | None = None
) -> float | None:
    """Idle power (W) of ``source``'s device over ``seconds`` of sleep; None without a source.

    ``sync`` (e.g. ``torch.cuda.synchronize``) is called first so that no queued work
    runs inside the idle window.
    """
    seconds = v.finite_positive("idle seconds", seconds)
    if not source.available:
        return None
    if sync is not None:
        sync()
    start = time.perf_counter()
    source.begin_window()
    time.sleep(seconds)
    energy = source.end_window()
    return energy / (time.perf_counter() - start)
