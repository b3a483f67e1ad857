"""Campaigns: measure a list of workloads into a runs CSV, resumably, with a progress bar.

::

    from groupconv.measure import layer_workloads, run_campaign
    work = layer_workloads(64, 64, 3, 14, groups=[2, 4, 8, 16], methods=["gc", "bgc"], batches=[1, 4])
    report = run_campaign(work, "runs.csv")        # CPU, energy if Zeus can read RAPL

Each workload is built fresh (seeded), measured with the :class:`Protocol`, and its row is
appended to the CSV at once. Workloads whose configuration is already in the file are
skipped, so running the same campaign again after a kill finishes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Union

from .. import _validate as v
from .._memory import check_fits
from ..errors import GroupConvError
from .energy import (
    EnergySource,
    NoEnergySource,
    ZeusSource,
    available_source,
    measure_idle_power,
)
from .environment import describe_environment, read_clocks, resolve_device
from .protocol import Protocol, measure
from .schema import RunWriter, read_rows, read_runs, row_key
from .workloads import DTYPES, LayerWorkload, NetworkWorkload

__all__ = ["CampaignReport", "CampaignInterrupted", "run_campaign", "resolve_source", "ENERGY_CHOICES"]


class CampaignInterrupted(KeyboardInterrupt):
    """Ctrl-C during a campaign; the message says how many rows the runs CSV kept and that
    running the same campaign again resumes it (rows are written as they are measured)."""

Workload = Union[LayerWorkload, NetworkWorkload]

#: What ``energy=`` accepts as a string (an :class:`EnergySource` object works too).
ENERGY_CHOICES: tuple[str, ...] = ("auto", "zeus", "none")


@dataclass(frozen=True)
class CampaignReport:
    """What a campaign did: rows measured now, rows skipped (already in the file).

    ``keys`` are the configuration keys of all the campaign's workloads;
    :meth:`frame` loads their rows.
    """

    path: Path
    measured: int
    skipped: int
    energy_source: str
    idle_power_W: float | None
    keys: frozenset[tuple[str, ...]] = frozenset()
    energy_note: str = ""

    def frame(self):
        """This campaign's rows of the runs CSV (all of them, also earlier ones), as a DataFrame."""
        frame = read_runs(self.path)
        mask = [row_key(row) in self.keys for row in read_rows(self.path)]
        return frame[mask].reset_index(drop=True)


def resolve_source(energy: str | EnergySource, device: str) -> EnergySource:
    """The energy source for ``energy`` on ``device``.

    ``"auto"``: the best available (:func:`~groupconv.measure.energy.available_source`);
    ``"zeus"``: Zeus or an error saying why not; ``"none"``: no energy; an
    :class:`EnergySource` is used as it is.
    """
    if isinstance(energy, EnergySource):
        return energy
    v.one_of("energy source", energy, ENERGY_CHOICES)
    if energy == "none":
        return NoEnergySource("energy measurement switched off")
    source = available_source(device)
    if energy == "zeus" and not source.available:
        kind = "gpu" if device.startswith("cuda") else "cpu"
        index = int(device.split(":")[1]) if ":" in device else 0
        return ZeusSource(kind, index)  # raises EnergySourceError with Zeus's reason
    return source


def run_campaign(
    workloads: Sequence[Workload],
    out: str | Path,
    *,
    protocol: Protocol = Protocol(),
    device: str = "cpu",
    dtype: str = "float32",
    energy: str | EnergySource = "auto",
    idle_s: float | None = None,
    threads: int | None = None,
    seed: int = 0,
    progress: bool = True,
    on_row: Callable[[dict[str, object]], None] | None = None,
) -> CampaignReport:
    """Measure every workload not yet in ``out`` and append one row for each.

    Parameters
    ----------
    workloads : sequence of LayerWorkload or NetworkWorkload
        Each workload's ``mode`` overrides ``protocol.mode``.
    out : path
        The runs CSV (created, or resumed if it exists).
    protocol : Protocol
        Warm-up, trials, window length, cuDNN benchmark mode.
    device : {"cpu", "cuda", "cuda:N"}
    dtype : {"float32", "float16", "bfloat16", "float64"}
    energy : {"auto", "zeus", "none"} or EnergySource
        See :func:`resolve_source`.
    idle_s : float, optional
        Seconds of idle-power measurement before the first workload (only with an energy
        source). Default: the protocol's window length, at least 1 s.
    threads : int, optional
        ``torch.set_num_threads`` for the campaign (restored afterwards). Default: 1 on
        a CPU (see ``docs/measure.md``: several threads on small convolutions measure
        thread synchronisation and whatever else runs on the machine), torch's default
        on a GPU. Recorded in the ``threads`` column.
    seed : int
        ``torch.manual_seed`` before building each workload.
    progress : bool
        Show a tqdm progress bar with an ETA.
    on_row : callable, optional
        Called with each row right after it is written (a hook for notebooks and tests).

    Returns
    -------
    CampaignReport

    Raises
    ------
    GroupConvError
        On bad input, and before anything is allocated when the largest workload's weights
        and activations alone exceed the device's memory (the message gives the bytes).
    CampaignInterrupted
        On Ctrl-C; the rows measured so far are in ``out`` and a rerun resumes.
    """
    import torch
    from tqdm import tqdm

    v.one_of("dtype", dtype, DTYPES)
    device = resolve_device(device)
    if idle_s is not None:
        v.finite_positive("idle_s", idle_s)
    for item in workloads:
        if not isinstance(item, (LayerWorkload, NetworkWorkload)):
            raise GroupConvError(f"not a workload: {item!r}")
    if workloads:
        biggest = max(workloads, key=lambda w: w.min_memory_bytes(dtype))
        check_fits(f"measuring {biggest.label} ({dtype})", biggest.min_memory_bytes(dtype), device)
    source = resolve_source(energy, device)
    previous_threads = torch.get_num_threads()
    if threads is None and device == "cpu":
        threads = 1
    if threads is not None:
        torch.set_num_threads(v.positive_int("threads", threads))
    try:
        with RunWriter(out) as writer:
            env = describe_environment(device)
            # the key carries the conditions (device, dtype, threads, torch): resumed under
            # other ones, the campaign measures its rows again under the new conditions
            base = {"dtype": dtype, "device": env.device, "threads": env.threads, "torch_version": env.torch_version}
            keys = {row_key({**w.key_fields(), **base}): w for w in workloads}
            todo = [w for key, w in keys.items() if not writer.is_done(key)]
            skipped = len(keys) - len(todo)
            idle_power = None
            if todo and source.available:
                seconds = idle_s if idle_s is not None else max(1.0, protocol.window_s(source))
                sync = (lambda: torch.cuda.synchronize(device)) if device != "cpu" else None
                idle_power = measure_idle_power(source, seconds, sync=sync)
            written = 0
            with tqdm(todo, desc="measure", unit="config", disable=not progress) as bar:
                try:
                    for workload in bar:
                        bar.set_postfix_str(workload.label, refresh=False)
                        row = _measure_one(workload, protocol, source, device, dtype, seed)
                        row.update(env.as_dict())
                        row.update(base)
                        row["cudnn_benchmark"] = row.pop("_cudnn_benchmark")
                        row["idle_power_W"] = idle_power
                        row["timestamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
                        writer.write(row)
                        written += 1
                        if on_row is not None:
                            on_row(row)
                except KeyboardInterrupt:
                    kept = skipped + written
                    raise CampaignInterrupted(
                        f"kept {kept} row{'' if kept == 1 else 's'} in {out} ({written} measured now, "
                        f"{len(todo) - written} not yet); run the same command again to resume"
                    ) from None
    finally:
        torch.set_num_threads(previous_threads)
    return CampaignReport(
        Path(out), len(todo), skipped, source.name if source.available else "none", idle_power,
        frozenset(keys), source.describe(),
    )


def _measure_one(
    workload: Workload, protocol: Protocol, source: EnergySource, device: str, dtype: str, seed: int
) -> dict[str, object]:
    """Build, measure and describe one workload (the row without environment columns)."""
    import torch

    torch.manual_seed(seed)
    try:
        module, x = workload.build(device, dtype)
        result = measure(module, x, dataclasses.replace(protocol, mode=workload.mode), source)
    except torch.cuda.OutOfMemoryError:
        raise GroupConvError(
            f"out of GPU memory measuring {workload.label}; use a smaller batch"
        ) from None
    clock_sm, clock_mem = read_clocks(device)
    params = sum(p.numel() for p in module.parameters())
    del module, x
    if device != "cpu":
        torch.cuda.empty_cache()
    row = dict(workload.key_fields())
    row.update(
        time_s=result.time_s,
        time_std_s=result.time_std_s,
        energy_J=result.energy_J,
        energy_std_J=result.energy_std_J,
        energy_source=result.energy_source,
        peak_memory_bytes=result.peak_memory_bytes,
        peak_memory_batch_bytes=result.peak_memory_batch_bytes,
        macs=workload.macs,
        params=params,
        trials=result.trials,
        repeats=result.repeats,
        window_s=result.window_s,
        clock_sm_MHz=clock_sm,
        clock_mem_MHz=clock_mem,
        _cudnn_benchmark=result.cudnn_benchmark,
    )
    return row
