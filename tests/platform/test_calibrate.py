"""calibrate(): a tiny real calibration, resuming, the designed set, fitting from rows."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from groupconv.errors import GroupConvError
from groupconv.platform import Platform, calibrate, fit_platform, runs_path_for
from groupconv.platform.calibrate import RUN_COLUMNS, _spec_kernel, network_specs, operator_specs

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


def test_resume_measures_only_what_is_missing(tiny, tmp_path):
    out, _ = tiny
    runs = runs_path_for(out)
    copy = tmp_path / "p.json"
    lines = runs.read_text().splitlines(keepends=True)
    # killed half-way: the last row cut mid-line
    runs_path_for(copy).write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
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


def test_designed_set_prefix_covers_every_kernel():
    specs = operator_specs(threads=1)
    kernels = {_spec_kernel(s, 1) for s in specs}
    assert {"conv_mkldnn", "conv_slow", "conv_dw", "norm", "activation", "pool", "matmul", "cat", "copy",
            "elementwise", "softmax"} <= kernels
    first = {_spec_kernel(s, 1) for s in specs[:40]}
    assert first == kernels  # a 40-point budget already reaches every kernel
    assert len({s.key for s in specs}) == len(specs)
    # synthetic networks only: none of the validation architectures
    assert {s.kind for s in network_specs()} == {"plain", "dwsep", "resgroup", "mixer", "widedw", "bottleneck"}


def _row(key, phase, kind, kernel, time_s, macs=0, nbytes=0, groups=1, spec=None, batch=1, op=""):
    return {"key": key, "phase": phase, "kind": kind, "spec": json.dumps(spec or {}), "kernel": kernel, "op": op,
            "batch": batch, "copies": 1, "calls": 1, "macs": macs, "bytes": nbytes, "groups": groups,
            "cin_per_group": 1, "cout_per_group": 1, "out_pixels": 1, "taps": 1, "outer": 1,
            "time_s": time_s, "time_std_s": 0.0, "energy_J": None}


def test_fit_platform_recovers_synthetic_laws():
    """Rows generated from t = 3 us + bytes / 20 GB/s: the fitted model predicts them back."""
    rows = [_row("tiny", "roofline", "tiny", "activation", 2e-6, nbytes=8)]
    rows.append(_row("gemm", "roofline", "linear", "matmul", 1e-2, macs=5e8, nbytes=1e7))
    rng = np.random.default_rng(0)
    for i, b in enumerate(rng.uniform(1e4, 1e8, 30)):
        rows.append(_row(f"bn{i}", "op", "bn", "norm", 3e-6 + b / 2e10, nbytes=b))
    platform = fit_platform(rows, device="cpu", metadata={"threads": 1, "dtype": "float32"})
    assert platform.roofline.peak_macs_per_s == pytest.approx(5e10)  # 5e8 MACs in 10 ms
    assert platform.roofline.bandwidth_bytes_per_s == pytest.approx(max(b / (3e-6 + b / 2e10) for b in
                                                                        [float(r["bytes"]) for r in rows[2:]]))
    assert platform.roofline.fixed_s == 2e-6
    norm = platform.time_models["norm"]
    assert norm.fit_mape < 0.02
    assert norm.c0 == pytest.approx(3e-6, rel=0.1)
    assert math.isclose(platform.network_correction["time_factor"], 1.0)
    assert "not fitted" in platform.e2gc["note"]  # no conv points: the E2GC law is not fitted, and says so


def test_fit_platform_needs_microbenchmarks():
    with pytest.raises(GroupConvError, match="budget"):
        fit_platform([_row("bn", "op", "bn", "norm", 1e-5, nbytes=1e5)], device="cpu", metadata={})


def test_group_factors_recover_known_corrections():
    """y = 1.3 * conv + 0.7 * matmul + 1.0 * norm + 0.8 * memory: recovered (weak ridge)."""
    from groupconv.platform.calibrate import _group_factors

    rng = np.random.default_rng(3)
    T = rng.uniform(0.1, 1.0, (24, 4)) * np.array([1.0, 0.5, 0.2, 0.3])
    truth = np.array([1.3, 0.7, 1.0, 0.8])
    a = _group_factors(T, T @ truth, prior=1.0, strength=1e-4)
    assert a == pytest.approx(truth, rel=1e-3)
    # a group no network uses stays at the prior
    T[:, 2] = 0.0
    a = _group_factors(T, T @ truth, prior=1.1, strength=1e-4)
    assert a[2] == 1.1 and a[0] == pytest.approx(1.3, rel=1e-3)
