"""Calibrate a platform: measure the specs, write the runs CSV, fit (orchestration only).

:func:`calibrate` measures, with the measurement module's timing
(:func:`groupconv.measure.fastest_window`, or :func:`groupconv.measure.measure` where an
energy meter is read), in three phases, writing one row per measurement to a resumable
runs CSV beside the platform file (``platform.json`` -> ``platform.runs.csv``,
:mod:`~groupconv.platform.runs`):

1. **Roofline** (:func:`~groupconv.platform.specs.roofline_specs`).
2. **Operators** (:func:`~groupconv.platform.specs.operator_specs`), in designed order,
   with the backward of one op (:func:`~groupconv.platform.backward.backward_specs`,
   timed by :mod:`~groupconv.platform.backward_modules`) after every three forward ones;
   ``budget_s`` cuts the list where the time runs out.
3. **Networks** (:func:`~groupconv.platform.specs.network_specs`), timed whole, once
   before the operators and once after (the fit keeps each network's fastest time).

What each spec builds is in :mod:`~groupconv.platform.modules`; the platform is then
fitted from the rows by :func:`~groupconv.platform.fitting.fit_platform`. A calibration
killed half-way resumes: the rows already in the runs CSV are kept and only the missing
configurations are measured.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections.abc import Iterable
from datetime import datetime, timezone

from .. import _validate as v
from ..errors import CalibrationWarning, GroupConvError
from .backward import backward_specs
from .backward_modules import measure_backward
from .fitting import fit_platform
from .models import OpFeatures, features_of
from .modules import build_spec, one_copy
from .platform import Platform
from .predict import collapse_loops
from .runs import check_conditions, feature_columns, open_runs, runs_path_for
from .specs import Spec, network_specs, operator_specs, roofline_specs

__all__ = ["DEFAULT_BUDGET_S", "calibrate"]

#: Default budget: a complete calibration (s).
DEFAULT_BUDGET_S = 540.0


def _measure_spec(spec: Spec, device: str, dtype: str, threads: int, source, protocol) -> list[dict[str, object]]:
    """Measure one spec; rows (one per kernel the spec ran, network: one row)."""
    from ..measure import fastest_window, measure
    from ..measure.workloads import torch_dtype
    from ..networks import count_module

    if spec.phase == "backward":  # the backward of one op, timed on its own (platform/backward_modules.py)
        return measure_backward(spec, device, dtype, threads, protocol)
    module, x, copies = build_spec(spec, device, torch_dtype(dtype))
    batch = int(x.shape[0])
    if source.available:
        result = measure(module, x, protocol, source)
        per_call = result.time_s * batch / copies
        std = result.time_std_s * batch / copies
        energy = None if result.energy_J is None else result.energy_J * batch / copies
        repeats, trials = result.repeats, result.trials
    else:
        # time alone: the fastest window, on this thread's CPU time at one thread
        timed = fastest_window(module, x, protocol, clock="auto")
        per_call, std, energy = timed.time_s / copies, timed.time_std_s / copies, None
        repeats, trials = timed.repeats, timed.trials
    counted = one_copy(module, copies) if spec.phase != "network" else module
    base = {
        "key": spec.key, "phase": spec.phase, "kind": spec.kind, "spec": json.dumps(spec.p, sort_keys=True),
        "batch": batch, "copies": copies, "time_s": per_call, "time_std_s": std, "energy_J": energy,
        "repeats": repeats, "trials": trials, "device": device, "threads": threads, "dtype": dtype,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if spec.phase == "network":
        return [dict(base, **feature_columns(OpFeatures(kernel="network", macs=0.0, bytes=0.0), calls=0))]
    # on the device: the kernels it dispatches (a GRU's loop of small ops priced whole, as in predict)
    ops = collapse_loops(count_module(counted, (x,), device=None), counted).ops
    if not ops:
        raise GroupConvError(f"calibration op {spec.key} recorded no operator")
    # the op that does the work (a linear also records a free transpose, a batch norm an
    # empty tensor): its features describe the row, whose time includes the free ones
    feats = [features_of(o, device=device, threads=threads) for o in ops]
    f0 = max(feats, key=lambda f: (f.kernel != "view", f.macs, f.bytes))
    if spec.kind == "view":
        f0 = feats[0]
    # a module that calls its kernel several times (a bidirectional LSTM: one fused layer
    # per direction) is one row of that many calls
    same = [f for f in feats if f.kernel == f0.kernel and f.op == f0.op]
    calls = len(same) if f0.kernel in ("rnn",) else 1
    return [dict(base, **feature_columns(f0, calls))]


def _protocol(budget_s: float):
    from ..measure import Protocol

    short = budget_s < 60
    return Protocol(mode="forward", warmup=2, warmup_s=0.01 if short else 0.02, trials=5,
                    min_window_s=0.005 if short else 0.01, measure_memory=False)


def _network_protocol(budget_s: float):
    """Whole networks are what the correction is learned from: the fastest of 15 windows
    of 20 ms (about half a second each, some 25 s for the 48 networks), so that a moment
    of interference (the other thread of a 2-thread run preempted) cannot pass for a
    network's time, as it did with 5 windows of 10 ms."""
    from ..measure import Protocol

    if budget_s < 60:
        return _protocol(budget_s)
    return Protocol(mode="forward", warmup=2, warmup_s=0.02, trials=15, min_window_s=0.02, measure_memory=False)


def calibrate(
    device: str = "cpu",
    out: str | os.PathLike[str] | None = None,
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    threads: int | None = None,
    dtype: str = "float32",
    energy: str = "auto",
    seed: int = 0,
    progress: bool | None = None,
) -> Platform:
    """Measure this machine and fit a :class:`Platform` (see the module docstring).

    Parameters
    ----------
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    out : path, optional
        Where to save the platform JSON; the runs CSV goes beside it
        (:func:`runs_path_for`). Without it nothing is written (and nothing resumes).
    budget_s : float
        Wall-clock budget of the measurements (s); the designed operator set is cut where
        it runs out. Default 540 (a complete calibration on a 2-core CPU stays within 10 minutes, the networks and the fit included).
    threads : int, optional
        ``torch.set_num_threads`` during calibration (restored afterwards); default 1 on
        a CPU, torch's default on a GPU. The kernel a conv takes depends on it.
    dtype : str
        Tensor dtype, e.g. ``"float32"``.
    energy : {"auto", "zeus", "none"}
        Energy source (as in :func:`groupconv.measure.run_campaign`).
    seed : int
        Seed of the designed operator set.
    progress : bool, optional
        tqdm bar with an ETA (default: only on a terminal).

    Returns
    -------
    Platform
    """
    import torch
    from tqdm import tqdm

    from ..measure.campaign import resolve_source
    from ..measure.environment import describe_environment, resolve_device
    from ..measure.workloads import torch_dtype

    device = resolve_device(device)
    budget_s = v.finite_positive("budget_s", budget_s)
    torch_dtype(dtype)  # names a bad dtype
    if threads is None and device == "cpu":
        threads = 1
    if threads is not None:
        threads = v.positive_int("threads", threads)
    seed = v.nonnegative_int("seed", seed)
    progress = sys.stderr.isatty() if progress is None else progress
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    threads_now = torch.get_num_threads()
    source = resolve_source(energy, device)
    env = describe_environment(device)
    conditions = {"device": device, "device_name": env.device, "threads": threads_now, "dtype": dtype,
                  "torch_version": env.torch_version}
    runs = open_runs(runs_path_for(out)) if out is not None else None
    if runs is not None:
        try:  # never a platform fitted on rows of other conditions
            check_conditions(runs.path, runs.rows, conditions)
        except GroupConvError:
            runs.close()
            torch.set_num_threads(previous_threads)
            raise
    rows: dict[str, dict[str, object]] = {} if runs is None else {r["key"]: dict(r) for r in runs.rows}
    resumed = len(rows)  # points already in the runs file, reused
    protocol, net_protocol = _protocol(budget_s), _network_protocol(budget_s)
    # a resumed calibration has already spent the time between its first and last rows
    begin = time.perf_counter() - _time_spent(rows.values())
    skipped: list[str] = []
    try:
        roof = roofline_specs()
        nets = network_specs()
        ops = _interleave(operator_specs(threads=threads_now, seed=seed), backward_specs(threads=threads_now, seed=seed))
        # phases share the budget: roofline first, networks last (a reserve of ~15 %)
        net_reserve = min(0.15 * budget_s, 120.0)
        n_nets = len(nets) if budget_s >= 60 else 4
        # the roofline and the networks always run (a platform needs its roofline constants
        # and its network correction: they take a few seconds, the reserve); the designed
        # operator set fills the rest of the budget
        plan: list[tuple[Spec, float]] = [(s, math.inf) for s in roof]
        if budget_s >= 60:  # the networks twice, first and last: the fit keeps each one's fastest
            plan += [(s, math.inf) for s in nets]
            nets = network_specs(round=1)
        plan += [(s, budget_s - net_reserve) for s in ops]
        plan += [(s, math.inf) for s in nets[:n_nets]]
        with tqdm(total=round(budget_s), desc="calibrate", unit="s", disable=not progress,
                  bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]") as bar:
            for spec, deadline in plan:
                elapsed = time.perf_counter() - begin
                if spec.key in rows:
                    continue
                if elapsed >= deadline:
                    skipped.append(spec.key)
                    continue
                try:
                    new = _measure_spec(spec, device, dtype, threads_now, source,
                                        net_protocol if spec.phase == "network" else protocol)
                except RuntimeError as exc:  # e.g. out of memory on a small device
                    warnings.warn(f"calibration point {spec.key} failed: {exc}".split("\n")[0], CalibrationWarning,
                                  stacklevel=2)
                    continue
                for row in new:
                    row.update(device_name=conditions["device_name"], torch_version=conditions["torch_version"])
                    rows[spec.key] = row
                    if runs is not None:
                        runs.write(row)
                bar.n = min(budget_s, time.perf_counter() - begin)
                bar.refresh()
    finally:
        if runs is not None:
            runs.close()
        torch.set_num_threads(previous_threads)
    metadata = {
        "device_name": env.device,
        "driver": env.driver,
        "torch_version": env.torch_version,
        "cuda_version": env.cuda_version,
        "cudnn_version": env.cudnn_version,
        "threads": threads_now,
        "dtype": dtype,
        "energy_source": source.name if source.available else "none",
        "budget_s": budget_s,
        "measured_s": round(time.perf_counter() - begin, 1),
        "protocol": {k: getattr(protocol, k) for k in protocol.__dataclass_fields__},
        "network_protocol": {k: getattr(net_protocol, k) for k in net_protocol.__dataclass_fields__},
        "runs_file": None if out is None else runs_path_for(out).name,
        "seed": seed,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "groupconv_counter": _counter_name(),
        "points_measured": len(rows),
        "points_skipped_for_budget": len(skipped),
        "points_resumed": resumed,
        "points_planned": len(plan),
        "clock": ("measure (mean of windows, with energy)" if source.available else
                  "cuda events (fastest window)" if device != "cpu" else
                  "thread_time (fastest window)" if threads_now == 1 else "perf_counter (fastest window)"),
    }
    platform = fit_platform(list(rows.values()), device=device, metadata=metadata)
    _warn_if_thin(platform, budget_s)
    if out is not None:
        platform.save(out)
    return platform


#: Fewer calibration points than this behind a kernel type's model: a warning.
MIN_POINTS_PER_KERNEL = 5


def _warn_if_thin(platform: Platform, budget_s: float) -> None:
    """Warn when a short budget left kernel types fitted on a handful of points each."""
    thin = sorted(k for k, m in platform.time_models.items() if ":" not in k and m.n < MIN_POINTS_PER_KERNEL)
    if thin:
        warnings.warn(
            f"a budget of {budget_s:g} s fitted {len(thin)} kernel type(s) on fewer than "
            f"{MIN_POINTS_PER_KERNEL} points each ({', '.join(thin)}): their predictions are rough; "
            f"calibrate with --budget-s 240 or more ({DEFAULT_BUDGET_S:g}, the default, for a complete calibration)",
            CalibrationWarning,
            stacklevel=3,
        )


def _interleave(forward: list[Spec], backward: list[Spec], every: int = 3) -> list[Spec]:
    """One backward spec after every ``every`` forward ones (any prefix calibrates both)."""
    out: list[Spec] = []
    back = list(backward)
    for i, s in enumerate(forward, 1):
        out.append(s)
        if i % every == 0 and back:
            out.append(back.pop(0))
    return out + back


def _time_spent(rows: Iterable[dict[str, object]]) -> float:
    """Seconds between the first and the last row written (0 for none)."""
    stamps = []
    for r in rows:
        try:
            stamps.append(datetime.fromisoformat(str(r["timestamp"])).timestamp())
        except (KeyError, ValueError):
            continue
    return max(stamps) - min(stamps) if stamps else 0.0


def _counter_name() -> str:
    from .. import __version__

    return f"groupconv.networks.count_module ({__version__})"
