"""How one workload is measured: warm-up, timed windows, trials, peak memory, per frame.

The protocol for one module and one input batch ``x``:

1. **Step.** ``forward``: ``module.eval()`` and one forward pass under
   ``torch.inference_mode()``. ``forward_backward`` (E2GC's EPF: "one forward and one
   backward pass"): ``module.train()``, gradients set to None, one forward pass and one
   backward pass from a fixed output gradient of ones (a stand-in for the next layer's
   gradient). For layers the input requires a gradient (the layer sits inside a
   network); for networks it does not (it is the image).
2. **Warm-up.** ``warmup`` steps, then more until ``warmup_s`` seconds have passed
   (GPU clocks ramp up, cuDNN's benchmark mode picks its algorithms here).
3. **Window length.** ``max(min_window_s, window_factor * source.update_period_s)``:
   an energy reading is only as good as the window is long compared with how often the
   counter updates. ``repeats`` (steps per window) is calibrated so one window lasts at
   least that long, from the fastest of several timings.
4. **Trials.** ``trials`` windows of ``repeats`` steps; each is timed with CUDA events
   on a GPU or ``time.perf_counter`` on a CPU, inside an energy window of ``source``.
   If a window still came out shorter than 90% of the target, ``repeats`` grows and the
   trials run again (at most twice more); ``window_s`` records the mean window length.
5. **Per frame.** Each window's time and energy are divided by ``repeats * batch``; the
   result is the mean over trials and the standard deviation (``ddof=1``).
6. **Peak memory**, from one separate step (not timed): the bytes the workload holds in
   torch's allocator at its peak: the module's parameters and buffers, the input and the
   output gradient, plus the peak of everything the step allocates (activations,
   gradients, temporaries, cuDNN workspaces). GPU: ``torch.cuda.max_memory_allocated``.
   CPU: torch's profiler with ``profile_memory=True``, which sees every allocation of
   torch's CPU allocator; memory that libraries such as oneDNN allocate on their own is
   not seen. Reported per frame (divided by ``batch``) and for the whole batch.

:func:`fastest_window` is the other public timing option, for time alone (no energy
to integrate): the same step, warm-up and window sizing, but the **fastest** of the
``trials`` windows (a window can only be slowed down by other work, so the minimum is
the best estimate of the undisturbed time) on a chosen clock (:data:`CLOCKS`): this
thread's CPU time, wall time, or CUDA events.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import _validate as v
from .energy import EnergySource, NoEnergySource

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["CLOCKS", "MODES", "FastestWindow", "Protocol", "Result", "fastest_window", "measure", "make_step",
           "peak_memory_bytes"]

MODES: tuple[str, ...] = ("forward", "forward_backward")

#: Clocks of :func:`fastest_window`: ``auto`` (CUDA events on a GPU; on a CPU this
#: thread's CPU time with one torch thread, wall time with several), ``thread_time``,
#: ``wall`` (``time.perf_counter``) and ``cuda_events``.
CLOCKS: tuple[str, ...] = ("auto", "thread_time", "wall", "cuda_events")


@dataclass(frozen=True)
class Protocol:
    """Settings of a measurement (see the module docstring for what each step does).

    Parameters
    ----------
    mode : {"forward", "forward_backward"}
    warmup : int
        Warm-up steps (at least this many).
    warmup_s : float
        ... and warm-up for at least this long (s).
    trials : int
        Timed windows; their spread gives ``time_std_s`` and ``energy_std_J``.
    min_window_s : float
        Shortest timed window (s), also when there is no energy source.
    window_factor : float
        A window lasts at least ``window_factor`` update periods of the energy source.
    cudnn_benchmark : bool
        ``torch.backends.cudnn.benchmark`` during the measurement (GPU); recorded.
    measure_memory : bool
        Whether to take the extra step that measures peak memory.
    """

    mode: str = "forward_backward"
    warmup: int = 3
    warmup_s: float = 0.25
    trials: int = 5
    min_window_s: float = 0.1
    window_factor: float = 20.0
    cudnn_benchmark: bool = True
    measure_memory: bool = True

    def __post_init__(self) -> None:
        v.one_of("mode", self.mode, MODES)
        v.nonnegative_int("warmup", self.warmup)
        if self.warmup_s != 0:
            v.finite_positive("warmup_s", self.warmup_s)
        v.positive_int("trials", self.trials)
        v.finite_positive("min_window_s", self.min_window_s)
        v.finite_positive("window_factor", self.window_factor)

    def window_s(self, source: EnergySource) -> float:
        """Target length of one timed window for ``source``."""
        if source.update_period_s is None:
            return self.min_window_s
        return max(self.min_window_s, self.window_factor * source.update_period_s)


@dataclass(frozen=True)
class Result:
    """One measured workload, per frame.

    ``energy_J``/``energy_std_J`` are None when ``energy_source`` is "none";
    ``peak_memory_bytes`` (per frame) and ``peak_memory_batch_bytes`` are None when
    memory was not measured.
    """

    time_s: float
    time_std_s: float
    energy_J: float | None
    energy_std_J: float | None
    energy_source: str
    peak_memory_bytes: float | None
    peak_memory_batch_bytes: int | None
    batch: int
    trials: int
    repeats: int
    window_s: float
    cudnn_benchmark: bool | None

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def make_step(module: torch.nn.Module, x: torch.Tensor, mode: str) -> Callable[[], None]:
    """One step of ``mode`` on ``module`` and batch ``x`` (see the module docstring)."""
    import torch

    v.one_of("mode", mode, MODES)
    if mode == "forward":
        module.eval()

        def forward() -> None:
            with torch.inference_mode():
                module(x)

        return forward

    module.train()
    with torch.no_grad():
        grad_out = torch.ones_like(module(x))
    parameters = [p for p in module.parameters() if p.requires_grad]

    def forward_backward() -> None:
        for p in parameters:
            p.grad = None
        if x.requires_grad:
            x.grad = None
        module(x).backward(grad_out)

    forward_backward.grad_out = grad_out  # type: ignore[attr-defined]
    return forward_backward


def _storage_bytes(tensors: list[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors``."""
    seen: dict[tuple[str, int], int] = {}
    for t in tensors:
        storage = t.untyped_storage()
        seen[(str(t.device), storage.data_ptr())] = storage.nbytes()
    return sum(seen.values())


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence the profiler's native start/stop lines (written to fd 2 by C++)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cpu_peak_increase(step: Callable[[], None]) -> int | None:
    """Peak of (bytes allocated - bytes freed) by torch's CPU allocator during ``step``.

    Uses the allocation events of torch's profiler (``profile_memory=True``), in time
    order. None if this torch's profiler does not expose them.
    """
    from torch.profiler import ProfilerActivity, profile

    with _quiet_native_stderr():
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            step()
    try:
        roots = prof.profiler.kineto_results.experimental_event_tree()
    except AttributeError:
        return None
    events: list[tuple[int, int]] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        fields = node.extra_fields
        if type(fields).__name__ == "_ExtraFields_Allocation" and fields.device.type == "cpu":
            events.append((node.start_time_ns, int(fields.alloc_size)))
        stack.extend(node.children)
    events.sort()
    running = peak = 0
    for _, size in events:
        running += size
        peak = max(peak, running)
    return peak


def peak_memory_bytes(step: Callable[[], None], alive: list[torch.Tensor], device: torch.device) -> int | None:
    """Peak bytes of one ``step``: the storages in ``alive`` plus the step's peak allocation.

    ``alive`` lists the tensors the workload holds between steps (parameters, buffers,
    input, output gradient). Gradients must be None before the call (the step makes them).
    """
    import torch

    baseline = _storage_bytes(alive)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return baseline + torch.cuda.max_memory_allocated(device) - before
    increase = _cpu_peak_increase(step)
    return None if increase is None else baseline + increase


def _timed_window(step: Callable[[], None], repeats: int, device: torch.device) -> float:
    """Seconds for ``repeats`` steps: CUDA events on a GPU, perf_counter on a CPU."""
    import torch

    if device.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeats):
            step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0
    begin = time.perf_counter()
    for _ in range(repeats):
        step()
    return time.perf_counter() - begin


def _calibrate(step: Callable[[], None], target_s: float, device: torch.device) -> int:
    """Steps per window so that a window lasts at least ``target_s``.

    Like timeit's autorange: double the number of steps until a window lasts a quarter
    of the target, then time three more such windows and size the window from the
    fastest (a slow outlier must not make the windows too short).
    """
    n = 1
    while True:
        elapsed = _timed_window(step, n, device)
        if elapsed >= target_s / 4 or n >= 1 << 20:
            break
        n *= 2
    fastest = min([elapsed] + [_timed_window(step, n, device) for _ in range(3)])
    per_step = max(fastest / n, 1e-9)
    return max(1, math.ceil(1.05 * target_s / per_step))


def _trials(
    step: Callable[[], None],
    repeats: int,
    trials: int,
    source: EnergySource,
    device: torch.device,
    sync: Callable[[], None],
) -> tuple[list[float], list[float]]:
    """Time (s) and energy (J) of ``trials`` windows of ``repeats`` steps each."""
    times: list[float] = []
    energies: list[float] = []
    for _ in range(trials):
        sync()
        source.begin_window()
        times.append(_timed_window(step, repeats, device))
        if source.available:
            energies.append(source.end_window())
    return times, energies


def measure(
    module: torch.nn.Module,
    x: torch.Tensor,
    protocol: Protocol = Protocol(),
    source: EnergySource | None = None,
) -> Result:
    """Measure time, energy and peak memory per frame of ``module`` on batch ``x``.

    Parameters
    ----------
    module : torch.nn.Module
        On the same device as ``x``.
    x : torch.Tensor
        The input batch; ``x.shape[0]`` is the batch size. Set ``requires_grad`` for a
        layer inside a network (its input gradient is then computed in backward).
    protocol : Protocol
    source : EnergySource, optional
        Default: no energy (:class:`~groupconv.measure.energy.NoEnergySource`).

    Returns
    -------
    Result
    """
    import torch

    source = source if source is not None else NoEnergySource()
    device = x.device
    batch = int(x.shape[0])
    cuda = device.type == "cuda"
    previous_benchmark = torch.backends.cudnn.benchmark
    on_device = contextlib.ExitStack()
    if cuda:
        torch.backends.cudnn.benchmark = protocol.cudnn_benchmark
        on_device.enter_context(torch.cuda.device(device))  # events and streams of this GPU
    try:
        step = make_step(module, x, protocol.mode)

        def sync() -> None:
            if cuda:
                torch.cuda.synchronize(device)

        # Warm-up: at least `warmup` steps and at least `warmup_s` seconds.
        begin = time.perf_counter()
        done = 0
        while done < protocol.warmup or time.perf_counter() - begin < protocol.warmup_s:
            step()
            done += 1
            if done % 8 == 0:
                sync()
        sync()

        target = protocol.window_s(source)
        repeats = _calibrate(step, target, device)

        peak = None
        if protocol.measure_memory:
            for p in module.parameters():
                p.grad = None
            if x.requires_grad:
                x.grad = None
            alive = [*module.parameters(), *module.buffers(), x]
            grad_out = getattr(step, "grad_out", None)
            if grad_out is not None:
                alive.append(grad_out)
            peak = peak_memory_bytes(step, alive, device)

        # Trials; if steps ran faster than calibrated and a window came out shorter than
        # 90% of the target, lengthen the windows and measure again (at most twice).
        for attempt in range(3):
            times, energies = _trials(step, repeats, protocol.trials, source, device, sync)
            if min(times) >= 0.9 * target or attempt == 2:
                break
            repeats = math.ceil(1.1 * repeats * target / min(times))
    finally:
        on_device.close()
        if cuda:
            torch.backends.cudnn.benchmark = previous_benchmark

    frames = repeats * batch
    per_frame = [t / frames for t in times]
    energies = [e / frames for e in energies]

    def spread(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else 0.0

    return Result(
        time_s=statistics.fmean(per_frame),
        time_std_s=spread(per_frame),
        energy_J=statistics.fmean(energies) if energies else None,
        energy_std_J=spread(energies) if energies else None,
        energy_source=source.name if source.available else "none",
        peak_memory_bytes=None if peak is None else peak / batch,
        peak_memory_batch_bytes=peak,
        batch=batch,
        trials=protocol.trials,
        repeats=repeats,
        window_s=statistics.fmean(times),
        cudnn_benchmark=protocol.cudnn_benchmark if cuda else None,
    )


@dataclass(frozen=True)
class FastestWindow:
    """Time of one step (the whole batch) by :func:`fastest_window`.

    ``time_s`` is the fastest window / ``repeats``; ``time_std_s`` the standard deviation
    over the ``trials`` windows (per step); ``clock`` the clock that timed them.
    """

    time_s: float
    time_std_s: float
    repeats: int
    trials: int
    clock: str

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def resolve_clock(clock: str, device: torch.device | str, threads: int) -> str:
    """The concrete clock ``auto`` stands for (see :data:`CLOCKS`)."""
    v.one_of("clock", clock, CLOCKS)
    cuda = str(device).startswith("cuda")
    if clock == "auto":
        return "cuda_events" if cuda else ("thread_time" if threads == 1 else "wall")
    if clock == "cuda_events" and not cuda:
        from ..errors import GroupConvError

        raise GroupConvError(f"clock 'cuda_events' needs a CUDA device, got {str(device)!r}")
    return clock


def fastest_window(module: torch.nn.Module, x: torch.Tensor, protocol: Protocol = Protocol(), *,
                   clock: str = "auto") -> FastestWindow:
    """Time one step of ``module`` on ``x``: the fastest of ``protocol.trials`` windows.

    The step, the warm-up and the window sizing of :func:`measure` (``protocol.mode``,
    ``warmup``, ``warmup_s``, ``min_window_s``), but no energy and no memory, and the
    **minimum** over windows instead of the mean.

    Parameters
    ----------
    module, x : as for :func:`measure`
    protocol : Protocol
    clock : {"auto", "thread_time", "wall", "cuda_events"}
        How each window is timed. ``thread_time`` (this thread's CPU time) is the time
        the work took when every kernel runs on the calling thread (``torch.set_num_threads(1)``),
        whatever else the machine runs: on a machine shared with other work, wall-clock
        windows are stretched by time-slicing, CPU time is not. With several threads use
        ``wall``. ``auto`` picks CUDA events on a GPU, ``thread_time`` at one torch
        thread, ``wall`` otherwise.

    Returns
    -------
    FastestWindow
    """
    import torch

    device = x.device
    clock = resolve_clock(clock, device, torch.get_num_threads())
    step = make_step(module, x, protocol.mode)
    begin = time.perf_counter()
    done = 0
    while done < protocol.warmup or time.perf_counter() - begin < protocol.warmup_s:
        step()
        done += 1
    repeats = _calibrate(step, protocol.min_window_s, device)
    if clock == "cuda_events":
        torch.cuda.synchronize(device)
        times = [_timed_window(step, repeats, device) / repeats for _ in range(protocol.trials)]
    else:
        now = time.thread_time if clock == "thread_time" else time.perf_counter
        times = []
        for _ in range(protocol.trials):
            start = now()
            for _ in range(repeats):
                step()
            times.append((now() - start) / repeats)
    return FastestWindow(time_s=min(times), time_std_s=statistics.stdev(times) if len(times) > 1 else 0.0,
                         repeats=repeats, trials=protocol.trials, clock=clock)
