"""Resuming a calibration or a campaign under other conditions (issue 17 item 1).

A runs file carries its conditions (device, threads, dtype, torch) in every row: a
calibration refuses, in one line, to fit a platform from rows of other conditions; a
measurement campaign measures its rows again under the new ones, keyed on them.
"""

from __future__ import annotations

import csv

import pytest

from groupconv.cli import main
from groupconv.errors import GroupConvError
from groupconv.measure import read_runs
from groupconv.platform import Platform, calibrate, runs_path_for
from groupconv.platform.runs import CONDITION_COLUMNS

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def one_thread(tmp_path_factory):
    out = tmp_path_factory.mktemp("cond") / "p.json"
    with pytest.warns(UserWarning, match="fewer than"):  # a 2 s budget fits kernels on few points
        calibrate("cpu", out, budget_s=2, threads=1, progress=False)
    return out


def test_every_calibration_row_carries_its_conditions(one_thread):
    rows = list(csv.DictReader(runs_path_for(one_thread).open()))
    assert rows
    for name in CONDITION_COLUMNS:
        assert all(r[name] for r in rows), name
    assert {r["threads"] for r in rows} == {"1"}
    assert {r["torch_version"] for r in rows} == {torch.__version__}


@pytest.mark.parametrize("flags, needle", [
    (["--threads", "2"], "threads='1'.*threads='2'"),
    (["--dtype", "float64"], "dtype='float32'.*dtype='float64'"),
])
def test_calibrate_beside_a_runs_file_of_other_conditions_refuses(one_thread, tmp_path, capsys, flags, needle):
    out = tmp_path / "p.json"
    runs_path_for(out).write_bytes(runs_path_for(one_thread).read_bytes())
    before = runs_path_for(out).read_bytes()
    code = main(["calibrate", "--out", str(out), "--budget-s", "2", "--quiet", *flags])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("groupconv: error:"), err
    import re
    assert re.search(needle, lines[0]), lines[0]
    assert "another --out" in lines[0]
    assert not out.exists()  # no platform labelled with the new conditions
    assert runs_path_for(out).read_bytes() == before  # the old rows untouched


def test_a_row_of_another_torch_is_refused(one_thread, tmp_path):
    out = tmp_path / "p.json"
    lines = runs_path_for(one_thread).read_text().splitlines(keepends=True)
    header = lines[0].strip().split(",")
    cells = next(csv.reader([lines[1]]))
    cells[header.index("torch_version")] = "1.0.0"
    import io
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    runs_path_for(out).write_text(lines[0] + buf.getvalue() + "".join(lines[2:]))
    with pytest.raises(GroupConvError, match="torch_version='1.0.0' \\(line 2\\)"):
        calibrate("cpu", out, budget_s=2, threads=1, progress=False)


def test_calibrate_resumes_under_the_same_conditions(one_thread, tmp_path):
    out = tmp_path / "p.json"
    runs_path_for(out).write_bytes(runs_path_for(one_thread).read_bytes())
    n = len(runs_path_for(out).read_text().splitlines())
    with pytest.warns(UserWarning):
        platform = calibrate("cpu", out, budget_s=2, threads=1, progress=False)
    assert Platform.load(out).metadata["threads"] == platform.metadata["threads"] == 1
    assert len(runs_path_for(out).read_text().splitlines()) >= n


def test_a_runs_file_without_the_condition_columns_is_refused(one_thread, tmp_path):
    out = tmp_path / "p.json"
    rows = list(csv.reader(runs_path_for(one_thread).open()))
    with runs_path_for(out).open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([r[:-2] for r in rows])  # an older version's file
    with pytest.raises(GroupConvError, match="lacks column\\(s\\) device_name, torch_version"):
        calibrate("cpu", out, budget_s=2, threads=1, progress=False)


QUICK = ["--trials", "2", "--warmup-seconds", "0", "--min-window", "0.005", "--quiet"]
LAYER = ["measure", "layer", "--in-channels", "8", "--out-channels", "8", "--size", "4", "--groups", "2",
         "--method", "gc", "--batch", "1", "--mode", "forward"]


def test_measure_threads_2_beside_a_one_thread_file_measures_the_rows_again(tmp_path, capsys):
    out = tmp_path / "runs.csv"
    assert main([*LAYER, "--out", str(out), "--threads", "1", *QUICK]) == 0
    assert main([*LAYER, "--out", str(out), "--threads", "1", *QUICK]) == 0  # nothing new
    assert len(read_runs(out)) == 1
    assert main([*LAYER, "--out", str(out), "--threads", "2", *QUICK]) == 0
    frame = read_runs(out)
    assert sorted(frame["threads"].tolist()) == [1, 2]  # one row per condition, keyed on it
    assert main([*LAYER, "--out", str(out), "--threads", "2", *QUICK]) == 0
    assert len(read_runs(out)) == 2
    capsys.readouterr()
    # fitting a file of mixed conditions asks which (as for mixed devices)
    assert main(["fit", str(out), "--model", "macs"]) == 2
    err = capsys.readouterr().err
    assert "threads" in err and len(err.strip().splitlines()) == 1
