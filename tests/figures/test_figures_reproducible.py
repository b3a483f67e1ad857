"""`groupconv figures` gives byte-identical files across two runs (issue 19 item 9): PNG,
SVG and PDF, with the fit of E2GC Fig. 1 redone in each, in two fresh processes that differ
in hash seed and in the BLAS/OpenMP thread settings of their environment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

FIGURES = ("e2gc_fig1_fit", "e2gc_fig3")


@pytest.mark.slow
def test_two_runs_write_identical_bytes(tmp_path):
    outs = []
    for i, (seed, threads) in enumerate((("1", "1"), ("2", "2"))):
        out = tmp_path / f"run{i}"
        env = {**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
               "MKL_NUM_THREADS": threads}
        args = [sys.executable, "-m", "groupconv", "figures", "--out", str(out), "--only", *FIGURES]
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        outs.append(out)
    files = sorted(p.name for p in outs[0].iterdir())
    assert files == sorted(f"{n}.{e}" for n in FIGURES for e in ("png", "svg", "pdf"))
    for name in files:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
