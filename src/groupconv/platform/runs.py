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

from ..errors import GroupConvError
from ..measure.schema import RunWriter, format_value
from .models import OpFeatures

__all__ = ["RUN_COLUMNS", "CONDITION_COLUMNS", "check_conditions", "feature_columns", "open_runs", "row_features", "row_value", "runs_path_for"]

#: Columns of the calibration runs CSV (``time_s``/``energy_J`` are per **call**).
RUN_COLUMNS: tuple[str, ...] = (
    "key", "phase", "kind", "spec", "kernel", "op", "batch", "copies", "calls", "macs", "bytes", "groups",
    "cin_per_group", "cout_per_group", "out_pixels", "taps", "outer", "lead", "weight_bytes", "row",
    "strided_bytes", "time_s", "time_std_s", "energy_J", "repeats", "trials", "device", "threads", "dtype", "timestamp",
    "device_name", "torch_version",
)
#: The measurement conditions every row carries: a calibration resumes only from rows of
#: its own conditions (:func:`check_conditions`).
CONDITION_COLUMNS: tuple[str, ...] = ("device", "device_name", "threads", "dtype", "torch_version")


def runs_path_for(out: str | os.PathLike[str]) -> Path:
    """The runs CSV kept beside a platform file: ``x.json`` -> ``x.runs.csv``."""
    out = Path(out)
    return out.with_name(out.stem + ".runs.csv")


def open_runs(path: str | os.PathLike[str]) -> RunWriter:
    """A :class:`~groupconv.measure.RunWriter` on a calibration runs CSV (:data:`RUN_COLUMNS`,
    keyed by ``key``); its ``rows`` are those already in the file. A file of other columns
    is a one-line error ("not a calibration runs file of this version")."""
    return RunWriter(path, columns=RUN_COLUMNS, key_columns=("key",), name="calibration runs file")


def check_conditions(path: str | os.PathLike[str], rows, conditions: dict[str, object]) -> None:
    """Refuse (one line) to resume a calibration from rows measured under other conditions.

    A platform is fitted from the rows of one device, thread count, dtype and torch: a
    runs file measured under others would give a platform labelled with the new conditions
    but fitted on the old rows. The message names the first differing condition and the
    way out (another ``--out``, or deleting the runs file).
    """
    wanted = {k: format_value(conditions[k]) for k in CONDITION_COLUMNS}
    for number, row in enumerate(rows, start=2):
        for name in CONDITION_COLUMNS:
            have = str(row.get(name, ""))
            if have != wanted[name]:
                raise GroupConvError(
                    f"{path} holds rows measured with {name}={have!r} (line {number}), this calibration runs "
                    f"with {name}={wanted[name]!r}: a platform is fitted from rows of one set of conditions; "
                    "calibrate into another --out, or delete the runs file to start afresh"
                )


def row_value(row: dict[str, object], name: str) -> float | None:
    """The number in column ``name`` of a runs row (None where it is empty or absent)."""
    value = row.get(name)
    if value is None or value == "":
        return None
    return float(value)


def row_features(r: dict[str, object], calls: int) -> OpFeatures:
    """The :class:`OpFeatures` of one call of the op a runs row timed ``calls`` times."""
    def i(name: str) -> int:
        return int(float(r[name])) if r.get(name) not in (None, "") else 1

    return OpFeatures(
        kernel=str(r["kernel"]), macs=row_value(r, "macs") / calls, bytes=row_value(r, "bytes") / calls,
        groups=i("groups"), op=str(r.get("op") or ""), batch=i("batch"), cin_per_group=i("cin_per_group"),
        cout_per_group=i("cout_per_group"), out_pixels=i("out_pixels"), taps=i("taps"), outer=i("outer"),
        lead=i("lead"), weight_bytes=row_value(r, "weight_bytes") or 0.0, row=i("row"),
        strided_bytes=row_value(r, "strided_bytes") or 0.0,
    )


def feature_columns(f: OpFeatures, calls: int = 1) -> dict[str, object]:
    """The runs-row columns of a measured op's features (``calls`` calls of it timed as one
    row: MACs and bytes summed over them)."""
    return {"kernel": f.kernel, "op": f.op, "calls": calls, "macs": f.macs * calls, "bytes": f.bytes * calls,
            "groups": f.groups, "cin_per_group": f.cin_per_group, "cout_per_group": f.cout_per_group,
            "out_pixels": f.out_pixels, "taps": f.taps, "outer": f.outer, "lead": f.lead,
            "weight_bytes": f.weight_bytes, "row": f.row, "strided_bytes": f.strided_bytes}
