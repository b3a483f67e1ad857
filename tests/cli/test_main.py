"""The CLI's shared behaviour: one-line errors with exit code 2, every subcommand registered."""

import subprocess
import sys
from pathlib import Path

import pytest

from groupconv.cli import build_parser, main

SRC = str(Path(__file__).resolve().parents[2] / "src")


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
        (["count", "mobilenet_v1", "--variant", "e2gc", "--groups", "0"], "got 0"),
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
        f"{sys.executable} -m groupconv count resnext50 --variant fggc --groups 32 --json | head -c 10"
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


# A figures-only install: importing torch fails as it does when torch is not installed.
_NO_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _NoTorch())
from groupconv.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_torch_command_without_torch_is_one_line_naming_the_extra(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, "measure", "layer", "--in-channels", "8", "--out-channels", "8",
         "--size", "4", "--out", str(tmp_path / "runs.csv")],
        capture_output=True, text=True, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr == ("groupconv: error: 'groupconv measure' needs torch, which is not installed; "
                           'run: python tools/install_torch.py && pip install -e ".[torch]"\n')
    # the torch-free commands still work in the same situation
    done = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, "optimum-g", "--in-channels", "64", "--out-channels", "64",
         "--kernel", "3", "--size", "14", "--beta", "0.5", "--gamma", "1e6"],
        capture_output=True, text=True, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}, timeout=120,
    )
    assert done.returncode == 0 and "Eq. 2" in done.stdout


def test_a_missing_module_that_is_no_extra_is_not_hidden(monkeypatch):
    import groupconv.cli.optimum as optimum

    def broken(args):
        raise ModuleNotFoundError("No module named 'groupconv_typo'", name="groupconv_typo")

    monkeypatch.setattr(optimum, "run", broken)
    with pytest.raises(ModuleNotFoundError):
        main(["optimum-g", "--in-channels", "8", "--out-channels", "8", "--kernel", "3", "--size", "4",
              "--beta", "0.5", "--gamma", "1"])
