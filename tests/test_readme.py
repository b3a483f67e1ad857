"""The README's facts and commands, checked against the code (so that they cannot drift)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from groupconv.networks.catalogue import MACS_TOLERANCE, PARAMS_TOLERANCE, compare_with_paper

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_mac_and_param_counts_as_stated():
    frame = compare_with_paper()
    within = int((frame["macs_rel_err"].abs() <= MACS_TOLERANCE).sum())
    assert f"{within} of {len(frame)} MAC counts within {MACS_TOLERANCE:.1%}" in README
    worst = frame["params_rel_err"].abs().max()
    stated = float(re.search(r"parameter counts within ([0-9.]+)%", README).group(1)) / 100
    assert worst <= stated < PARAMS_TOLERANCE
    assert round(worst * 100, 2) == stated * 100  # the stated bound is the worst case, rounded


def test_paths_named_in_the_readme_exist():
    for path in re.findall(r"`((?:data|notebooks|figures|benchmarks|docs|tools|src)/[^`\s]*)`", README):
        assert (ROOT / path.rstrip("/")).exists(), path


def test_ci_runs_exactly_the_readme_test_command():
    lines = README.splitlines()
    command = lines[lines.index("<!-- test-command -->") + 2]
    script = (ROOT / ".ci" / "run").read_text()
    extracted = subprocess.run(
        ["awk", "/<!-- test-command -->/{getline; getline; print; exit}", "README.md"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert extracted == command
    assert "tools/install_torch.py" in command
    assert "pip install" not in script  # .ci/run installs nothing beyond the README's command
