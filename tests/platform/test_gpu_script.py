"""The GPU one-shot script, run on the CPU with a tiny budget (what the GPU run does, small)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("torch")


@pytest.mark.slow
def test_oneshot_on_cpu(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu" / "run_all.py"), "--device", "cpu", "--out", str(tmp_path),
           "--budget-s", "200", "--calibrate-s", "3", "--image-size", "32", "--networks", "2", "--batch", "1",
           "--table4-channels", "16", "--table4-groups", "2", "--table4-trials", "1", "--energy", "none"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("environment.json", "platform.json", "platform.runs.csv", "networks.csv", "summary.json",
                 "predicted_vs_measured.png", "predicted_vs_measured.svg", "table4_runs.csv"):
        assert (tmp_path / name).is_file(), name
    rows = list(csv.DictReader((tmp_path / "networks.csv").open()))
    assert len(rows) == 2 and all(float(r["measured_time_s"]) > 0 and float(r["predicted_time_s"]) > 0 for r in rows)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["table4_rc"] == 0 and summary["networks"]["n"] == 2
