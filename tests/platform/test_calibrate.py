"""calibrate(): a tiny real calibration, its runs CSV, resuming, one-line errors."""

from __future__ import annotations

import csv
import pytest

from groupconv.errors import GroupConvError
from groupconv.platform import Platform, calibrate, runs_path_for
from groupconv.platform.runs import RUN_COLUMNS

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("cal") / "p.json"
    platform = calibrate("cpu", out, budget_s=4, progress=False)
    return out, platform


def test_tiny_calibration_writes_platform_and_runs(tiny, tmp_path):
    out, platform = tiny
    assert out.is_file() and runs_path_for(out).is_file()
    # the file round-trips (NaN standard errors are written as null, so compare the files)
    assert Platform.load(out).save(tmp_path / "again.json").read_text() == out.read_text()
    assert platform.save(tmp_path / "value.json").read_text() == out.read_text()
    assert platform.metadata["threads"] == 1
    assert not platform.has_energy or platform.metadata["energy_source"] != "none"
    rows = list(csv.DictReader(runs_path_for(out).open()))
    assert tuple(rows[0].keys()) == RUN_COLUMNS
    # roofline constants are the best measured ratios (recomputed from the rows by hand)
    peak = max(float(r["macs"]) / float(r["time_s"]) for r in rows if r["phase"] != "network" and float(r["macs"]) > 0)
    assert platform.roofline.peak_macs_per_s == pytest.approx(peak)
    # at least the convs, a memory op and the networks got points within 4 s
    kernels = {r["kernel"] for r in rows}
    assert {"conv_mkldnn", "network"} <= kernels
    assert platform.e2gc.get("fitted_to") in (None, "time_s", "energy_J")
    # the file says how many points each kernel model saw, and under which conditions
    assert platform.metadata["points_per_model"] == {k: m.n for k, m in platform.time_models.items()}
    assert platform.metadata["threads"] == 1 and platform.metadata["dtype"] == "float32" and platform.device == "cpu"
    assert sum(int(r["calls"]) for r in rows if r["kernel"] == "conv_mkldnn") >= 1


def test_resume_measures_only_what_is_missing(tiny, tmp_path):
    out, _ = tiny
    runs = runs_path_for(out)
    copy = tmp_path / "p.json"
    lines = runs.read_text().splitlines(keepends=True)
    # killed half-way: the last row cut mid-line
    runs_path_for(copy).write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    with pytest.warns(UserWarning, match="cut short"):
        calibrate("cpu", copy, budget_s=4, progress=False)
    again = list(csv.DictReader(runs_path_for(copy).open()))
    keys = [r["key"] for r in again]
    assert len(keys) == len(set(keys))  # nothing measured twice
    assert set(r["key"] for r in csv.DictReader(runs.open())) <= set(keys)  # the cut row measured again


def test_foreign_runs_file_is_one_line_error(tmp_path):
    out = tmp_path / "p.json"
    runs_path_for(out).write_text("a,b\n1,2\n")
    with pytest.raises(GroupConvError, match="not a calibration runs file"):
        calibrate("cpu", out, budget_s=1, progress=False)


def test_unknown_device_is_one_line_error():
    with pytest.raises(GroupConvError, match="tpu"):
        calibrate("tpu", None, budget_s=1, progress=False)
