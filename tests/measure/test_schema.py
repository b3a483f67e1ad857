"""The runs CSV: header once, append + resume, exact round trip, line-numbered errors."""

from __future__ import annotations

import math
import warnings

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.errors import GroupConvError
from groupconv.measure.schema import COLUMN_NAMES, KEY_COLUMNS, RunWriter, read_rows, read_runs, row_key


def make_row(**overrides) -> dict[str, object]:
    """A valid layer row (no energy source) with ``overrides`` applied."""
    row: dict[str, object] = {
        "workload": "layer", "arch": None, "variant": None, "group": None,
        "in_channels": 64, "out_channels": 64, "kernel": 3, "height": 14, "width": 14,
        "groups": 4, "batch": 1, "method": "gc", "mode": "forward_backward", "dtype": "float32",
        "time_s": 1.25e-3, "time_std_s": 1e-5, "energy_J": None, "energy_std_J": None,
        "energy_source": "none", "idle_power_W": None, "peak_memory_bytes": 4096.0,
        "peak_memory_batch_bytes": 4096, "macs": 1806336, "params": 9216, "trials": 5,
        "repeats": 80, "window_s": 0.1, "device": "Some CPU", "driver": None,
        "torch_version": "2.13.0+cpu", "cuda_version": None, "cudnn_version": None,
        "cudnn_benchmark": None, "threads": 1, "clock_sm_MHz": 2400.0, "clock_mem_MHz": None,
        "timestamp": "2026-01-01T00:00:00+00:00",
    }
    row.update(overrides)
    return row


def network_row(**overrides) -> dict[str, object]:
    return make_row(
        workload="network", arch="mobilenet_v1", variant="e2gc", group=8, in_channels=None,
        out_channels=None, kernel=None, groups=None, height=224, width=224, method="network",
        energy_J=0.05, energy_std_J=0.001, energy_source="zeus-nvml", idle_power_W=40.0,
        device="NVIDIA H100", driver="550.54", cuda_version="12.4", cudnn_version="90100",
        cudnn_benchmark=True, clock_mem_MHz=2619.0, **overrides,
    )


def test_header_once_rows_appended_and_resumed(tmp_path):
    path = tmp_path / "runs.csv"
    with RunWriter(path) as writer:
        assert writer.existing_rows == 0
        writer.write(make_row(groups=2))
        writer.write(make_row(groups=4))
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(COLUMN_NAMES) and len(lines) == 3
    with RunWriter(path) as writer:
        assert writer.existing_rows == 2
        assert writer.is_done(row_key(make_row(groups=2)))
        assert not writer.is_done(row_key(make_row(groups=8)))
        writer.write(make_row(groups=8))
        with pytest.raises(GroupConvError, match="already has a row"):
            writer.write(make_row(groups=4))
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and lines.count(lines[0]) == 1


def test_each_row_is_on_disk_as_soon_as_it_is_written(tmp_path):
    path = tmp_path / "runs.csv"
    writer = RunWriter(path)
    writer.write(make_row())
    assert len(read_runs(path)) == 1  # before close
    writer.close()


def test_read_runs_types_and_missing_energy_is_nan(tmp_path):
    path = tmp_path / "runs.csv"
    with RunWriter(path) as writer:
        writer.write(make_row())
        writer.write(network_row())
    frame = read_runs(path)
    assert list(frame.columns) == list(COLUMN_NAMES)
    layer, net = frame.iloc[0], frame.iloc[1]
    assert math.isnan(layer["energy_J"]) and layer["energy_source"] == "none"
    assert net["energy_J"] == 0.05 and net["idle_power_W"] == 40.0
    assert str(frame["groups"].dtype) == "Int64" and pd.isna(net["groups"]) and layer["groups"] == 4
    assert str(frame["cudnn_benchmark"].dtype) == "boolean" and bool(net["cudnn_benchmark"])
    assert frame["time_s"].dtype == "float64" and frame["time_s"].iloc[0] == 1.25e-3
    assert layer["arch"] == "" and net["arch"] == "mobilenet_v1"


@settings(max_examples=30, deadline=None)
@given(
    time_s=st.floats(1e-9, 1e3, allow_nan=False),
    energy_J=st.one_of(st.none(), st.floats(1e-9, 1e3)),
    batch=st.integers(1, 4096),
    device=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), min_size=1, max_size=20).filter(str.strip),
)
def test_values_round_trip_exactly(tmp_path_factory, time_s, energy_J, batch, device):
    path = tmp_path_factory.mktemp("rt") / "runs.csv"
    source = "none" if energy_J is None else "zeus-rapl"
    row = make_row(time_s=time_s, energy_J=energy_J, energy_std_J=energy_J, energy_source=source,
                   batch=batch, device=device)
    with RunWriter(path) as writer:
        writer.write(row)
    got = read_runs(path).iloc[0]
    assert got["time_s"] == time_s and got["batch"] == batch and got["device"] == device
    assert (math.isnan(got["energy_J"]) if energy_J is None else got["energy_J"] == energy_J)
    assert row_key(read_rows(path)[0]) == row_key(row)


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"time_s": "abc"}, "time_s 'abc' is not a number"),
        ({"batch": "1.5"}, "batch '1.5' is not an integer"),
        ({"energy_J": "0.3"}, "energy_J is given but energy_source is 'none'"),
        ({"energy_source": "zeus-nvml"}, "energy_J '' must be positive"),
        ({"energy_source": "watts"}, "energy_source 'watts' is not one of"),
        ({"mode": "backward"}, "mode 'backward' is not one of"),
        ({"method": "network"}, "layer row has method 'network'"),
        ({"in_channels": ""}, "layer row has no in_channels"),
        ({"time_s": "0"}, "time_s '0' is not positive"),
        ({"time_s": "nan"}, "time_s 'nan' is not a finite non-negative number"),
        ({"cudnn_benchmark": "yes"}, "cudnn_benchmark 'yes' is not True or False"),
        ({"device": ""}, "device is empty"),
    ],
)
def test_corrupt_row_names_its_line(tmp_path, change, needle):
    path = tmp_path / "runs.csv"
    with RunWriter(path) as writer:
        writer.write(make_row(groups=2))
        writer.write(make_row(groups=4))
        writer.write(make_row(groups=8))
    rows = read_rows(path)
    rows[1].update(change)
    lines = path.read_text().splitlines()
    lines[2] = ",".join(rows[1][name] for name in COLUMN_NAMES)
    path.write_text("\n".join(lines) + "\n")
    before = path.read_text()
    for action in (read_runs, RunWriter):
        with pytest.raises(GroupConvError) as info:
            action(path)
        assert f"{path} line 3: {needle}" in str(info.value)
        assert "\n" not in str(info.value)
    assert path.read_text() == before  # the writer did not touch a corrupt file


def test_wrong_field_count_and_header_are_named(tmp_path):
    path = tmp_path / "runs.csv"
    with RunWriter(path) as writer:
        writer.write(make_row())
    text = path.read_text()
    path.write_text(text + "layer,1,2\n")
    with pytest.raises(GroupConvError, match=r"line 3: a short row .*: 3 fields, the header has"):
        read_runs(path)
    path.write_text("workload,time_s\nlayer,1\n")
    with pytest.raises(GroupConvError, match="line 1: header lacks column"):
        read_runs(path)
    with pytest.raises(GroupConvError, match="does not exist"):
        read_runs(tmp_path / "none.csv")


def test_extra_columns_are_kept_by_the_reader_but_refused_by_the_writer(tmp_path):
    path = tmp_path / "runs.csv"
    with RunWriter(path) as writer:
        writer.write(make_row())
    lines = path.read_text().splitlines()
    path.write_text(f"{lines[0]},note\n{lines[1]},hello\n")
    assert read_runs(path)["note"].tolist() == ["hello"]
    with pytest.raises(GroupConvError, match="differ from this version's schema"):
        RunWriter(path)


def test_a_row_cut_short_by_a_kill_is_dropped_and_measured_again(tmp_path):
    path = tmp_path / "runs.csv"
    with RunWriter(path) as writer:
        writer.write(make_row(groups=2))
        writer.write(make_row(groups=4))
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # the kill hit in the middle of the last row
    with pytest.warns(UserWarning, match="line 3 was cut short"):
        writer = RunWriter(path)
    assert writer.existing_rows == 1 and not writer.is_done(row_key(make_row(groups=4)))
    writer.write(make_row(groups=4))
    writer.close()
    assert read_runs(path)["groups"].tolist() == [2, 4]


def test_a_complete_last_row_without_newline_is_kept(tmp_path):
    path = tmp_path / "runs.csv"
    with RunWriter(path) as writer:
        writer.write(make_row(groups=2))
    path.write_text(path.read_text().rstrip("\n"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with RunWriter(path) as writer:
            assert writer.existing_rows == 1
            writer.write(make_row(groups=4))
    assert read_runs(path)["groups"].tolist() == [2, 4]


def test_writer_validates_rows_before_writing(tmp_path):
    path = tmp_path / "runs.csv"
    with RunWriter(path) as writer:
        with pytest.raises(GroupConvError, match="energy_J 0.0 must be positive|energy_J '0.0' must be positive"):
            writer.write(make_row(energy_J=0.0, energy_source="zeus-nvml"))
        bad = make_row()
        del bad["time_s"]
        with pytest.raises(GroupConvError, match="row lacks column"):
            writer.write(bad)
    assert len(path.read_text().splitlines()) == 1


def test_key_columns_are_columns():
    assert set(KEY_COLUMNS) <= set(COLUMN_NAMES)
    for name in ("time_s", "energy_J", "energy_source", "timestamp", "peak_memory_bytes"):
        assert name not in KEY_COLUMNS


def test_docs_list_every_column():
    from pathlib import Path

    from groupconv.measure.schema import COLUMNS

    docs = (Path(__file__).resolve().parents[2] / "docs" / "measure.md").read_text()
    for column in COLUMNS:
        assert f"| `{column.name}` |" in docs, column.name
        assert column.doc in docs, column.name


def test_run_writer_with_another_schema_resumes_and_refuses_foreign_files(tmp_path):
    """The writer a platform calibration reuses: its own columns and key, the same format."""
    columns = ("key", "time_s", "note")
    path = tmp_path / "other.csv"
    with RunWriter(path, columns=columns, key_columns=("key",), name="test file") as w:
        w.write({"key": "a", "time_s": 0.1, "note": None})
        w.write({"key": "b", "time_s": 2.5e-7})  # a missing column is written empty
        with pytest.raises(GroupConvError, match="already has a row"):
            w.write({"key": "a", "time_s": 1.0})
    assert path.read_text() == "key,time_s,note\na,0.1,\nb,2.5e-07,\n"
    path.write_text(path.read_text() + "c,0.")  # killed mid-row
    with pytest.warns(UserWarning, match="cut short"):
        again = RunWriter(path, columns=columns, key_columns=("key",), name="test file")
    assert [r["key"] for r in again.rows] == ["a", "b"] and again.is_done(("a",)) and not again.is_done(("c",))
    again.close()
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("x,y\n1,2\n")
    with pytest.raises(GroupConvError, match="not a test file of this version"):
        RunWriter(foreign, columns=columns, key_columns=("key",), name="test file")
