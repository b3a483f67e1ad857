"""The calibration runs CSV: its columns, where it lives, and its resumable writer.

One row per measured spec (:class:`~groupconv.platform.specs.Spec`), keyed by the
spec's ``key``; ``time_s``/``energy_J`` are per **call** of the op (per step for a
network row). The file lives beside the platform file (``x.json`` -> ``x.runs.csv``,
:func:`runs_path_for`) and is written with the measurement module's
:class:`~groupconv.measure.RunWriter` (each row flushed and fsynced; a killed
calibration resumes, a row cut short is measured again).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..measure.schema import RunWriter

__all__ = ["RUN_COLUMNS", "open_runs", "runs_path_for"]

#: Columns of the calibration runs CSV (``time_s``/``energy_J`` are per **call**).
RUN_COLUMNS: tuple[str, ...] = (
    "key", "phase", "kind", "spec", "kernel", "op", "batch", "copies", "calls", "macs", "bytes", "groups",
    "cin_per_group", "cout_per_group", "out_pixels", "taps", "outer", "lead", "weight_bytes",
    "time_s", "time_std_s", "energy_J", "repeats", "trials", "device", "threads", "dtype", "timestamp",
)


def runs_path_for(out: str | os.PathLike[str]) -> Path:
    """The runs CSV kept beside a platform file: ``x.json`` -> ``x.runs.csv``."""
    out = Path(out)
    return out.with_name(out.stem + ".runs.csv")


def open_runs(path: str | os.PathLike[str]) -> RunWriter:
    """A :class:`~groupconv.measure.RunWriter` on a calibration runs CSV (:data:`RUN_COLUMNS`,
    keyed by ``key``); its ``rows`` are those already in the file. A file of other columns
    is a one-line error ("not a calibration runs file of this version")."""
    return RunWriter(path, columns=RUN_COLUMNS, key_columns=("key",), name="calibration runs file")
