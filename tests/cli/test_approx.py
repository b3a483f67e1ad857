"""``groupconv approx`` through ``groupconv.cli.main``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from groupconv.approx import theory
from groupconv.cli import main

PAPER_CALL = (
    "approx --in-channels 256 --out-channels 256 --kernel 3 --length 32 --data-samples 256 "
    "--weight-samples 8 --groups 4 8 16 32 64 --dist normal --method gc bgc --seed 0 --json"
).split()


@pytest.mark.slow
def test_the_issue_call_prints_theory_checked_json(capsys):
    assert main(PAPER_CALL) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["method"], r["groups"]) for r in records] == [
        (m, n) for m in ("gc", "bgc") for n in (4, 8, 16, 32, 64)
    ]
    for r in records:
        N, method = r["groups"], r["method"]
        assert r["bound_thm"] == theory.bound_thm(method, N, 3)
        assert r["bound_iid"] == theory.bound_iid(method, N, 3, 256)
        assert r["rel_E_population"] == pytest.approx(theory.rel_E_population(method, N, 256))
        # E differs from E_W[E | data] only by weight-sampling noise ...
        assert abs(r["E"] - r["expected_E_given_data"]) < 4 * r["E_stderr"]
        # ... and from E[E] by that plus data noise, which for this configuration is no
        # larger than the weight noise (sd 7.5-13.5 over 12 seeds vs E_stderr 11-18).
        assert abs(r["E"] - r["expected_E"]) < 4 * math.sqrt(2) * r["E_stderr"]
        assert r["expected_E_low"] <= r["expected_E"] <= r["expected_E_high"]
        # the relative error sits below the paper's iid bound by about the factor K
        assert r["rel_E"] < r["bound_iid"] / 3 < r["bound_thm"]
        assert r["rows"] == 256 * 32 and r["expected_kind"] == "bracketed"
    gc = [r["E"] for r in records if r["method"] == "gc"]
    bgc = [r["E"] for r in records if r["method"] == "bgc"]
    assert all(b < g for b, g in zip(bgc, gc))  # BGC is better at every N
    groups = [4, 8, 16, 32, 64]
    assert theory.fitted_slope(groups, gc) == pytest.approx(
        theory.fitted_slope(groups, [r["expected_E"] for r in records[:5]]), abs=0.02)
    assert theory.fitted_slope(groups, bgc) == pytest.approx(
        theory.fitted_slope(groups, [r["expected_E"] for r in records[5:]]), abs=0.02)


def test_table_output_and_user_data(capsys, tmp_path):
    args = "approx --in-channels 8 --out-channels 8 --length 10 --data-samples 12 --weight-samples 3 --groups 2 4".split()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "method" in out and "slope of log E vs log(1-1/N), bgc" in out
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).standard_normal((6, 8, 5, 5)))
    assert main(["approx", "--data", str(path), "--kernel", "3", "--out-channels", "4",
                 "--groups", "2", "--method", "gc", "--json", "--errors"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["expected_E"] is None and len(record["errors"]) == 8
    assert record["rows"] == 6 * 25
    assert record["unknowns"] == 4 * 9  # 3 x 3 kernel on 2-D data
    assert main("approx --size 6 6 --in-channels 4 --out-channels 4 --data-samples 4 --groups 2 --json".split()) == 0
    assert json.loads(capsys.readouterr().out)[0]["unknowns"] == 2 * 9


def test_reference_solver_from_the_cli(capsys):
    base = "approx --in-channels 8 --out-channels 8 --length 8 --data-samples 10 --weight-samples 2 --groups 2 --json".split()
    assert main(base) == 0
    fast = json.loads(capsys.readouterr().out)
    assert main(base + ["--solver", "reference"]) == 0
    ref = json.loads(capsys.readouterr().out)
    for a, b in zip(fast, ref):
        assert a["E"] == pytest.approx(b["E"], rel=1e-8, abs=1e-12)


@pytest.mark.parametrize(
    "extra, message",
    [
        ("--groups 3", "in_channels=256 is not divisible by groups=3"),
        ("--dist cauchy", "unknown dist 'cauchy'"),
        ("--method shuffle", "unknown method 'shuffle'"),
        ("--data-samples 1 --groups 2", "under-determined"),
        ("--padding full", "unknown padding 'full'"),
        ("--solver magic", "unknown solver 'magic'"),
        ("--init xavier", "unknown init 'xavier'"),
        ("--data {nan}", "non-finite"),
        ("--data {missing}", "No such file"),
        ("--data {text}", "cannot read"),
        ("--data {empty}", "cannot read"),
        ("--kernel 3 3", "--kernel 3 3 is 2-D but --length 8 is a 1-D input"),
        ("--data {cplx}", "data are complex"),
    ],
)
def test_bad_input_exits_2_with_one_line(extra, message, capsys, tmp_path):
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((2, 256, 8), np.nan))
    text = tmp_path / "text.npy"
    text.write_text("not an array")
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    cplx = tmp_path / "complex.npy"
    np.save(cplx, np.ones((2, 256, 8)) * (1 + 1j))
    extra = extra.format(nan=nan, missing=tmp_path / "missing.npy", text=text, empty=empty, cplx=cplx)
    code = main(["approx", "--length", "8", *extra.split()])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("groupconv: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_argparse_rejects_non_numbers_with_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["approx", "--groups", "four"])
    assert info.value.code == 2


def test_progress_bar_goes_to_stderr_and_keeps_json_clean(capsys):
    args = "approx --in-channels 8 --out-channels 8 --length 8 --data-samples 10 --weight-samples 2 --groups 2 4 --json --progress".split()
    assert main(args) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 4
    assert "approx" in captured.err and "structure" in captured.err  # tqdm's description and unit


def test_errors_flag_without_json_is_an_error(capsys):
    from groupconv.cli import main

    code = main(["approx", "--in-channels", "8", "--out-channels", "8", "--groups", "2", "--errors"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--errors applies to the --json output only" in err


def test_huge_sizes_are_refused_up_front_with_the_bytes(capsys):
    assert main(["approx", "--in-channels", "1000000000"]) == 2
    err = capsys.readouterr().err
    # float64 data S x n x D = 256 * 1e9 * 32 and dense weights S_w x m x n x K = 8 * 256 * 1e9 * 3
    needed = 8 * (256 * 10**9 * 32 + 8 * 256 * 10**9 * 3)
    assert f"needs at least 104 TiB ({needed:,} bytes)" in err  # 1.147e14 / 2**40 = 104.3
    assert err.startswith("groupconv: error: approx with n=1000000000") and err.count("\n") == 1


def test_table_explains_its_columns_and_bound_thm_above_one(capsys):
    assert main(["approx", "--in-channels", "16", "--out-channels", "16", "--groups", "8",
                 "--method", "gc", "--weight-samples", "1", "--data-samples", "32"]) == 0
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.startswith("gc "))
    # bound_thm = K (1 - 1/N)^2 = 3 * (7/8)^2 = 2.2969 > 1: the legend says why that is allowed
    assert float(row[8]) == pytest.approx(3 * (7 / 8) ** 2, abs=1e-4)
    for column in ("rel_E =", "expected =", "population =", "bound_iid =", "bound_thm =", "lost out ="):
        assert column in out, column
    assert "can exceed 1" in out

def test_repeated_group_counts_are_computed_once(capsys):
    args = "approx --in-channels 8 --out-channels 8 --length 8 --data-samples 10 --weight-samples 2 --groups 2 4 2 4 --method gc bgc gc --json".split()
    assert main(args) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["method"], r["groups"]) for r in records] == [("gc", 2), ("gc", 4), ("bgc", 2), ("bgc", 4)]


def test_bgc_slope_leaves_out_n2_where_its_leading_term_vanishes(capsys):
    args = ("approx --in-channels 16 --out-channels 16 --length 16 --data-samples 64 --weight-samples 2 "
            "--groups 2 4 8 --method bgc --json").split()
    assert main(args) == 0
    records = {r["groups"]: r["E"] for r in json.loads(capsys.readouterr().out)}
    # the slope of log E against log(1 - 1/N) through N = 4 and 8 only, by hand (two points)
    by_hand = (math.log(records[8]) - math.log(records[4])) / (math.log(1 - 1 / 8) - math.log(1 - 1 / 4))
    assert main(args[:-1]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("slope of log E"))
    assert line.endswith("(N = 2 left out: (1 - 2/N) = 0)")
    assert float(line.split(":")[1].split()[0]) == pytest.approx(by_hand, abs=1e-3)
    # with N = 2 in the fit the slope would be far from BGC's ~2.5 (the defect this guards)
    with_n2 = np.polyfit(np.log([1 - 1 / 2, 1 - 1 / 4, 1 - 1 / 8]),
                         np.log([records[2], records[4], records[8]]), 1)[0]
    assert abs(with_n2 - by_hand) > 1
