"""The CLI's shared behaviour: one-line errors with exit code 2, every subcommand registered."""

import subprocess
import sys
from pathlib import Path

import pytest

from groupconv.cli import build_parser, main

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_every_subcommand_is_registered():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    assert set(commands) == {"approx", "calibrate", "count", "design", "figures", "fit", "measure", "optimum-g", "predict", "recommend"}


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["nope"], "invalid choice: 'nope'"),
        (["fit", "--paper-table", "e2gc-mobilenet", "--platform", "V100"], "invalid choice: 'V100'"),
        (["approx", "--groups", "x"], "not an integer: 'x'"),
        (["count", "mobilenet_v1", "--variant", "e2gc", "--group", "0"], "got 0"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(argv, fragment, capsys):
    try:
        code = main(argv)  # errors found by the library come back as the return code
    except SystemExit as exc:  # errors found by argparse exit
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err


def test_closed_pipe_is_not_a_traceback():
    """`groupconv count ... --json | head -c 10` must end quietly."""
    command = (
        f"{sys.executable} -m groupconv count resnext50 --variant fggc --group 32 --json | head -c 10"
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.stdout.startswith("{")
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert result.returncode == 0
