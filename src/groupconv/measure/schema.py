"""The runs CSV: its columns, a writer that appends, flushes and resumes, a checked reader.

One row per measurement. Time, energy and memory are **per frame** (per input image):
the measured window divided by ``repeats * batch``. The column list
:data:`COLUMNS` (name, type, meaning) is the schema; ``docs/measure.md`` prints it.

A campaign writes with :class:`RunWriter`: the header only when the file is new, then
each row as soon as it is measured, flushed and fsynced. Opened again on the same file,
the writer knows which configurations (:data:`KEY_COLUMNS`) are done, so a killed
campaign resumes where it stopped and measures each configuration once. A last line cut
short by a kill is dropped (with a warning) and measured again; any other bad row is a
:class:`~groupconv.errors.GroupConvError` naming its line.

:func:`read_runs` validates a file and loads it as a pandas DataFrame.
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import GroupConvError
from ..vocab import LAYER_METHODS
from .energy import ENERGY_SOURCES
from .locking import WriterLock

__all__ = [
    "Column",
    "COLUMNS",
    "COLUMN_NAMES",
    "KEY_COLUMNS",
    "WORKLOADS",
    "ROW_METHODS",
    "MODES",
    "RunWriter",
    "read_runs",
    "read_rows",
    "row_key",
    "check_csv_lines",
    "format_value",
]

WORKLOADS: tuple[str, ...] = ("layer", "network")
#: ``method`` values: the layer forms, and "network" for network rows.
ROW_METHODS: tuple[str, ...] = (*LAYER_METHODS, "network")
MODES: tuple[str, ...] = ("forward", "forward_backward")


@dataclass(frozen=True)
class Column:
    """One CSV column: ``kind`` is "str", "int", "float" or "bool"; ``required`` means never empty."""

    name: str
    kind: str
    doc: str
    required: bool = False


#: The schema, in file order.
COLUMNS: tuple[Column, ...] = (
    Column("workload", "str", "'layer' or 'network'", True),
    Column("arch", "str", "network rows: architecture (e.g. 'mobilenet_v1'); empty for layers"),
    Column("variant", "str", "network rows: variant (e.g. 'e2gc', 'fggc'); empty for layers"),
    Column("group", "int", "network rows: the variant's group setting (G or g); empty for layers"),
    Column("in_channels", "int", "layer rows: input channels n"),
    Column("out_channels", "int", "layer rows: output channels m"),
    Column("kernel", "int", "layer rows: square kernel size d_k"),
    Column("height", "int", "input height (layers: also the output height; networks: image size)", True),
    Column("width", "int", "input width", True),
    Column("groups", "int", "layer rows: number of groups N (1 dense, in_channels depthwise)"),
    Column("batch", "int", "frames per batch B", True),
    Column("method", "str", "'dense', 'gc', 'dw', 'bgc' (layers) or 'network'", True),
    Column("mode", "str", "'forward' or 'forward_backward' (one forward + one backward pass)", True),
    Column("dtype", "str", "tensor dtype, e.g. 'float32'", True),
    Column("time_s", "float", "time per frame: mean over trials of window / (repeats * batch)", True),
    Column("time_std_s", "float", "standard deviation of time_s over trials (0 with one trial)", True),
    Column("energy_J", "float", "energy per frame (gross, idle included); empty when unavailable"),
    Column("energy_std_J", "float", "standard deviation of energy_J over trials; empty when unavailable"),
    Column("energy_source", "str", "'zeus-nvml', 'zeus-rapl', 'nvidia-smi-log' or 'none'", True),
    Column("idle_power_W", "float", "idle power of the energy source's device, measured on its own"),
    Column("peak_memory_bytes", "float", "peak bytes held by torch's allocator for one step / batch"),
    Column("peak_memory_batch_bytes", "int", "the same peak for the whole batch (one step)"),
    Column("macs", "int", "multiply-accumulates per frame of the workload (BGC: both convolutions)"),
    Column("params", "int", "parameters of the torch module"),
    Column("trials", "int", "number of timed windows", True),
    Column("repeats", "int", "steps (one batch each) per window", True),
    Column("window_s", "float", "mean length of one timed window", True),
    Column("device", "str", "device name (GPU model or CPU model)", True),
    Column("driver", "str", "GPU driver version; empty on CPU or when unreadable"),
    Column("torch_version", "str", "torch.__version__", True),
    Column("cuda_version", "str", "torch.version.cuda; empty for CPU builds"),
    Column("cudnn_version", "str", "torch.backends.cudnn.version() on GPU; empty on CPU"),
    Column("cudnn_benchmark", "bool", "torch.backends.cudnn.benchmark during the run (GPU only)"),
    Column("threads", "int", "torch.get_num_threads() during the run", True),
    Column("clock_sm_MHz", "float", "GPU SM clock (CPU: mean core clock) read after the trials"),
    Column("clock_mem_MHz", "float", "GPU memory clock read after the trials; empty on CPU"),
    Column("timestamp", "str", "UTC time the row was written, ISO 8601", True),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
_BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}

#: The configuration: a resumed campaign skips a row whose key is already in the file.
KEY_COLUMNS: tuple[str, ...] = (
    "workload",
    "arch",
    "variant",
    "group",
    "in_channels",
    "out_channels",
    "kernel",
    "height",
    "width",
    "groups",
    "batch",
    "method",
    "mode",
    "dtype",
    "device",
    # the conditions a row was measured under: a campaign resumed with other threads or
    # another torch measures its rows again under the new ones, next to the old
    "threads",
    "torch_version",
)


def format_value(value: object) -> str:
    """How a value is written: None/NaN -> empty, floats at full precision (``repr``)."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        number = float(value)
        return "" if math.isnan(number) else repr(number)
    return str(value).replace("\r", " ").replace("\n", " ")  # one row per line


def row_key(row: Mapping[str, object]) -> tuple[str, ...]:
    """The configuration key of a row (values as written in the file)."""
    return tuple(
        row[name] if isinstance(row.get(name), str) else format_value(row.get(name))
        for name in KEY_COLUMNS
    )


#: Integer columns that count something that exists (the others may be 0).
_POSITIVE_INTS = frozenset({"group", "in_channels", "out_channels", "kernel", "height", "width", "groups", "batch",
                            "trials", "repeats", "threads"})


def _check_row(fields: Mapping[str, str], where: str) -> None:
    """Validate one row of strings; raise GroupConvError naming ``where`` (file and line)."""

    def bad(problem: str) -> GroupConvError:
        return GroupConvError(f"{where}: {problem}")

    for name in COLUMN_NAMES:
        text = fields[name]
        column = _BY_NAME[name]
        if text == "":
            if column.required:
                raise bad(f"{name} is empty")
            continue
        if column.kind == "int":
            try:
                number = int(text)
            except ValueError:
                raise bad(f"{name} {text!r} is not an integer") from None
            if number < (1 if name in _POSITIVE_INTS else 0):
                raise bad(f"{name} {text!r} is not {'positive' if name in _POSITIVE_INTS else 'non-negative'}")
        elif column.kind == "float":
            try:
                number = float(text)
            except ValueError:
                raise bad(f"{name} {text!r} is not a number") from None
            if not math.isfinite(number) or number < 0:
                raise bad(f"{name} {text!r} is not a finite non-negative number")
        elif column.kind == "bool" and text not in ("True", "False"):
            raise bad(f"{name} {text!r} is not True or False")
    for name, allowed in (
        ("workload", WORKLOADS),
        ("method", ROW_METHODS),
        ("mode", MODES),
        ("energy_source", ENERGY_SOURCES),
    ):
        if fields[name] not in allowed:
            raise bad(f"{name} {fields[name]!r} is not one of {', '.join(allowed)}")
    if float(fields["time_s"]) <= 0:
        raise bad(f"time_s {fields['time_s']!r} is not positive")
    if fields["energy_source"] == "none":
        if fields["energy_J"] != "":
            raise bad("energy_J is given but energy_source is 'none'")
    elif fields["energy_J"] == "" or float(fields["energy_J"]) <= 0:
        raise bad(f"energy_J {fields['energy_J']!r} must be positive for source {fields['energy_source']!r}")
    if fields["workload"] == "layer":
        for name in ("in_channels", "out_channels", "kernel", "groups"):
            if fields[name] == "":
                raise bad(f"layer row has no {name}")
        if fields["method"] == "network":
            raise bad("layer row has method 'network'")
    else:
        for name in ("arch", "variant", "group"):
            if fields[name] == "":
                raise bad(f"network row has no {name}")
        if fields["method"] != "network":
            raise bad(f"network row has method {fields['method']!r}, expected 'network'")


def _count_problem(path: Path, number: int, got: int, expected: int) -> GroupConvError:
    """A row of the wrong number of fields, named for what it most likely is."""
    if got > expected:
        what = ("two rows glued into one line (two processes writing the file at once?)"
                if got >= 2 * expected - 1 else "too many fields")
    else:
        what = "a short row (a line cut short, or two processes writing the file at once?)"
    return GroupConvError(f"{path} line {number}: {what}: {got} fields, the header has {expected}")


def _repeated_header(path: Path, number: int) -> GroupConvError:
    return GroupConvError(
        f"{path} line {number}: the header again (two files concatenated?); "
        "keep one header line, or fit the files one at a time"
    )


def _duplicate_key(path: Path, number: int, first: int) -> GroupConvError:
    return GroupConvError(
        f"{path} line {number}: repeats the configuration of line {first} "
        "(two processes writing the file at once?); remove one of them"
    )


def check_csv_lines(path: str | os.PathLike[str]) -> None:
    """Check a CSV's lines before a lenient reader (pandas) sees them: a repeated header,
    a row of another field count (short, cut or glued), and a bad ``method``, each a
    one-line :class:`~groupconv.errors.GroupConvError` naming the line. A file with every
    column of the runs schema (:data:`COLUMNS`) is validated row by row as
    :func:`read_rows` does."""
    path = Path(path)
    text = _read_text(path)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    content = [(n, line) for n, line in enumerate(lines, start=1) if line.strip() and not line.startswith("#")]
    if not content:
        raise GroupConvError(f"{path}: the file is empty (no header)")
    head_number, head_line = content[0]
    header = _csv_fields(path, head_number, head_line)
    if set(COLUMN_NAMES) <= set(header):
        _parse_lines(path, text)
        return
    method = header.index("method") if "method" in header else None
    for number, line in content[1:]:
        if line == head_line:
            raise _repeated_header(path, number)
        values = _csv_fields(path, number, line)
        if len(values) != len(header):
            raise _count_problem(path, number, len(values), len(header))
        if method is not None and values[method] not in ROW_METHODS:
            raise GroupConvError(
                f"{path} line {number}: method {values[method]!r} is not one of {', '.join(ROW_METHODS)}"
            )


def _csv_fields(path: Path, number: int, line: str) -> list[str]:
    try:
        return next(csv.reader([line], strict=True))
    except csv.Error as exc:
        raise GroupConvError(f"{path} line {number}: not valid CSV ({exc})") from None
    except StopIteration:
        return []


def _parse_lines(path: Path, text: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header and validated rows of a runs CSV's text; errors name the file line."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last row
    if not lines:
        raise GroupConvError(f"{path}: the file is empty (no header)")
    header = _csv_fields(path, 1, lines[0])
    missing = [name for name in COLUMN_NAMES if name not in header]
    if missing:
        raise GroupConvError(f"{path} line 1: header lacks column(s) {', '.join(missing)}")
    if len(set(header)) != len(header):
        raise GroupConvError(f"{path} line 1: header repeats a column name")
    rows: list[dict[str, str]] = []
    seen: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if line == lines[0]:
            raise _repeated_header(path, number)
        values = _csv_fields(path, number, line)
        if len(values) != len(header):
            raise _count_problem(path, number, len(values), len(header))
        fields = dict(zip(header, values))
        _check_row(fields, f"{path} line {number}")
        key = row_key(fields)
        if key in seen:
            raise _duplicate_key(path, number, seen[key])
        seen[key] = number
        rows.append(fields)
    return header, rows


def _parse_plain(path: Path, text: str, columns: tuple[str, ...], name: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV of another schema (``columns``): the header must be
    exactly ``columns``, each row must have as many fields."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise GroupConvError(f"{path}: the file is empty (no header)")
    header = _csv_fields(path, 1, lines[0])
    if tuple(header) != columns:
        lacking = [c for c in columns if c not in header]
        detail = f"it lacks column(s) {', '.join(lacking)}" if lacking and len(lacking) < len(columns) else "columns differ"
        raise GroupConvError(f"{path}: not a {name} of this version ({detail}); write to a new file")
    rows: list[dict[str, str]] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if line == lines[0]:
            raise _repeated_header(path, number)
        values = _csv_fields(path, number, line)
        if len(values) != len(header):
            raise _count_problem(path, number, len(values), len(header))
        rows.append(dict(zip(header, values)))
    return header, rows


def _read_text(path: Path) -> str:
    """The file's text; a file that is not UTF-8 text is the user's error."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise GroupConvError(f"{path}: not a text CSV file ({exc.reason} at byte {exc.start})") from None


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The validated rows of a runs CSV as dicts of the strings in the file."""
    path = Path(path)
    if not path.is_file():
        raise GroupConvError(f"runs file {str(path)!r} does not exist")
    return _parse_lines(path, _read_text(path))[1]


def read_runs(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Validate and load a runs CSV.

    Returns
    -------
    pandas.DataFrame
        One row per measurement, columns in :data:`COLUMNS` order (plus any extra
        columns the file has). Integer columns use pandas' nullable ``Int64`` (empty for
        network rows' layer columns), floats are ``float64`` (empty -> NaN: ``energy_J``
        is NaN when the energy was unavailable), ``cudnn_benchmark`` is ``boolean``.

    Raises
    ------
    GroupConvError
        If the file is missing, has a bad header, or a row is malformed; the message
        names the line.
    """
    path = Path(path)
    if not path.is_file():
        raise GroupConvError(f"runs file {str(path)!r} does not exist")
    header, rows = _parse_lines(path, _read_text(path))
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    for column in COLUMNS:
        values = [None if text == "" else text for text in frame[column.name]]
        if column.kind == "int":
            frame[column.name] = pd.array(
                [None if x is None else int(x) for x in values], dtype="Int64"
            )
        elif column.kind == "float":
            frame[column.name] = pd.array(
                [math.nan if x is None else float(x) for x in values], dtype="float64"
            )
        elif column.kind == "bool":
            frame[column.name] = pd.array(
                [None if x is None else x == "True" for x in values], dtype="boolean"
            )
    extra = [name for name in header if name not in _BY_NAME]
    return frame[list(COLUMN_NAMES) + extra]


class RunWriter:
    """Append rows to a runs CSV, one at a time, flushed and fsynced; resumable.

    Opening an existing file validates it (a bad row raises, naming its line) and
    collects the keys of the rows already there (:meth:`is_done`) and the rows themselves
    (:attr:`rows`, dicts of the strings in the file). A last line without its newline (a
    write cut short by a kill) is dropped with a warning if it is not a complete valid row.

    By default the file is a measurement campaign's runs CSV (:data:`COLUMNS`, keyed by
    :data:`KEY_COLUMNS`, every row checked). Another resumable CSV (a platform
    calibration's, say) passes its own ``columns`` and ``key_columns`` and a ``name`` for
    its messages; its rows are then checked for their number of fields only, and a file
    whose header differs is refused as "not a <name> of this version".

    Use as a context manager or call :meth:`close`.

    Parameters
    ----------
    path : path
    columns : sequence of str, optional
        The header, in file order (default :data:`COLUMN_NAMES`).
    key_columns : sequence of str, optional
        The columns that identify a configuration (default :data:`KEY_COLUMNS`).
    name : str
        What the file is, for error messages.
    """

    def __init__(self, path: str | os.PathLike[str], *, columns: Sequence[str] | None = None,
                 key_columns: Sequence[str] | None = None, name: str = "runs file") -> None:
        self.path = Path(path)
        self._custom = columns is not None
        self.columns: tuple[str, ...] = tuple(columns) if columns is not None else COLUMN_NAMES
        self.key_columns: tuple[str, ...] = tuple(key_columns) if key_columns is not None else KEY_COLUMNS
        self.name = name
        self._done: set[tuple[str, ...]] = set()
        self.rows: list[dict[str, str]] = []
        self.existing_rows = 0
        self._handle = None
        if self.path.is_dir():
            raise GroupConvError(f"{name} {str(self.path)!r} is a directory")
        # one writer at a time: a second process is refused, naming the holder
        self._lock = WriterLock(self.path, name).acquire()
        try:
            if self.path.exists() and self.path.stat().st_size > 0:
                self._load_existing()
                self._handle = open(self.path, "a", encoding="utf-8", newline="")
            else:
                if self.path.parent and not self.path.parent.exists():
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "w", encoding="utf-8", newline="")
                try:
                    self._write_line(list(self.columns))
                except OSError:  # e.g. a full disk: leave no empty or half-headed file
                    self._handle.close()
                    self._handle = None
                    self.path.unlink(missing_ok=True)
                    raise
        except BaseException:
            if self._handle is not None:
                self._handle.close()
            self._lock.release()
            raise
        self._header_len = len(self.columns)

    def _key(self, row: Mapping[str, object]) -> tuple[str, ...]:
        if not self._custom:
            return row_key(row)
        return tuple(
            row[name] if isinstance(row.get(name), str) else format_value(row.get(name)) for name in self.key_columns
        )

    def _parse(self, text: str) -> tuple[list[str], list[dict[str, str]]]:
        if not self._custom:
            return _parse_lines(self.path, text)
        return _parse_plain(self.path, text, self.columns, self.name)

    def _load_existing(self) -> None:
        text = _read_text(self.path)
        if not text.endswith("\n"):
            cut = text.rfind("\n") + 1
            if cut == 0:
                raise GroupConvError(f"{self.path} line 1: the header is incomplete")
            self._parse(text[:cut])  # complete lines: any error is real
            header_line = text[: text.index("\n") + 1]
            try:
                self._parse(header_line + text[cut:])
                text += "\n"  # a complete row that only lacks its newline
            except GroupConvError:
                number = text.count("\n") + 1
                warnings.warn(
                    f"{self.path} line {number} was cut short (killed while writing); "
                    "dropping it, that configuration will be measured again",
                    stacklevel=3,
                )
                text = text[:cut]
            with open(self.path, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        header, rows = self._parse(text)
        if header != list(self.columns):
            raise GroupConvError(
                f"{self.path} line 1: its columns differ from this version's schema; "
                "write to a new file"
            )
        first: dict[tuple[str, ...], int] = {}
        for number, row in enumerate(rows, start=2):
            key = self._key(row)
            if key in first:
                raise _duplicate_key(self.path, self._line_of(text, number), first[key])
            first[key] = self._line_of(text, number)
        self._done = set(first)
        self.rows = rows
        self.existing_rows = len(rows)

    @staticmethod
    def _line_of(text: str, row_number: int) -> int:
        """File line of the ``row_number``-th non-blank line (header = 1)."""
        count = 0
        for number, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                count += 1
                if count == row_number:
                    return number
        return row_number

    def _write_line(self, values: list[str]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values)
        self._handle.write(buffer.getvalue())
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def is_done(self, key: tuple[str, ...]) -> bool:
        """Whether a row with this configuration key is already in the file."""
        return key in self._done

    def write(self, row: Mapping[str, object]) -> None:
        """Validate and append one row (a mapping with every column of the schema;
        a custom schema's missing columns are written empty)."""
        if not self._custom:
            missing = [name for name in self.columns if name not in row]
            if missing:
                raise GroupConvError(f"row lacks column(s) {', '.join(missing)}")
        values = {name: format_value(row.get(name)) for name in self.columns}
        if not self._custom:
            _check_row(values, f"row for {self.path}")
        key = self._key(values)
        if key in self._done:
            raise GroupConvError(f"{self.path} already has a row for configuration {key}")
        self._write_line([values[name] for name in self.columns])
        self._done.add(key)
        self.rows.append(values)

    def close(self) -> None:
        try:
            if self._handle is not None:
                self._handle.close()
        finally:
            self._lock.release()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
