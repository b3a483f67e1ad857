"""``groupconv calibrate``: a tiny real calibration writes the platform and its runs file."""

from __future__ import annotations

import pytest

from groupconv.cli import main

pytest.importorskip("torch")


def test_calibrate_cli_tiny_budget(tmp_path, capsys):
    out = tmp_path / "p.json"
    code = main(["calibrate", "--device", "cpu", "--out", str(out), "--budget-s", "2", "--quiet"])
    text = capsys.readouterr().out
    assert code == 0 and out.is_file() and (tmp_path / "p.runs.csv").is_file()
    assert "roofline:" in text and "energy:" in text
