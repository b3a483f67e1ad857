"""``groupconv optimum-g``: output, JSON, and one-line errors with exit code 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from groupconv.cli import main
from groupconv.cost.optimum import optimum_g

LAYER = ["--in-channels", "512", "--out-channels", "512", "--kernel", "3", "--size", "14"]


def test_text_output_reports_eq2_admissible_full_and_minimiser(capsys):
    assert main(["optimum-g", *LAYER, "--beta", "0.5", "--gamma", "1e6", "--groups", "32"]) == 0
    out = capsys.readouterr().out
    expected = optimum_g(512, 512, 3, 14, beta=0.5, gamma=1e6, groups=32)
    assert f"{expected.g_eq2:.6g}" in out  # 33.0301
    assert "nearest admissible g (divides m and n):  32 (G = 16)" in out
    assert f"{expected.g_full:.6g}" in out
    assert "g minimising M_c*(alpha/AI)^beta:        512" in out
    assert "current g: 32 (G = 16)" in out


def test_json_output_equals_the_library_result(capsys):
    args = ["optimum-g", *LAYER, "--width", "7", "--beta", "0.3", "--alpha", "0.5", "--const", "2e5", "--batch", "8"]
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    expected = optimum_g(512, 512, 3, 14, 7, beta=0.3, alpha=0.5, const=2e5, batch=8)
    assert data == pytest.approx(expected.as_dict())
    assert data["gamma"] == pytest.approx(2e5 * 0.5**-0.3)
    assert data["width"] == 7 and data["batch"] == 8


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--beta", "1.5", "--gamma", "1e6"], "beta must lie in (0, 1), got 1.5"),
        (["--beta", "0", "--gamma", "1e6"], "beta must lie in (0, 1), got 0.0"),
        (["--beta", "0.5", "--gamma", "-2"], "gamma must be a finite positive number, got -2.0"),
        (["--beta", "0.5", "--alpha", "1.5", "--const", "3"], "alpha must lie in (0, 1], got 1.5"),
        (["--beta", "0.5", "--alpha", "0.5"], "const is missing"),
        (["--beta", "0.5"], "alpha is missing"),
        (["--beta", "0.5", "--gamma", "1", "--alpha", "0.5", "--const", "3"], "not both"),
        (["--beta", "0.5", "--gamma", "1", "--groups", "3"], "in_channels=512 is not divisible by groups=3"),
        # Eq. 2's g = 512*512*9*14/1e-300 overflows: the message names gamma, which the user typed
        (["--beta", "0.5", "--gamma", "1e-300"], "gamma=1e-300 puts the balancing g outside floating-point range"),
    ],
)
def test_bad_model_input_is_one_line_and_exit_2(capsys, extra, message):
    assert main(["optimum-g", *LAYER, *extra]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("groupconv: error: ") and message in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    "layer, message",
    [
        (["--in-channels", "0", "--out-channels", "8", "--kernel", "3", "--size", "4"], "argument --in-channels: must be a positive integer, got '0'"),
        (["--in-channels", "8", "--out-channels", "-8", "--kernel", "3", "--size", "4"], "argument --out-channels: must be a positive integer, got '-8'"),
        (["--in-channels", "8", "--out-channels", "8", "--kernel", "0", "--size", "4"], "argument --kernel: must be a positive integer, got '0'"),
        (["--in-channels", "8", "--out-channels", "8", "--kernel", "3", "--size", "0"], "argument --size: must be a positive integer, got '0'"),
        (["--in-channels", "8", "--out-channels", "8", "--kernel", "3", "--size", "4", "--width", "0"], "argument --width: must be a positive integer, got '0'"),
        (["--in-channels", "8", "--out-channels", "8", "--kernel", "3", "--size", "4", "--batch", "0"], "argument --batch: must be a positive integer, got '0'"),
    ],
)
def test_bad_channels_and_sizes_name_the_flag_in_one_line(capsys, layer, message):
    with pytest.raises(SystemExit) as info:
        main(["optimum-g", *layer, "--beta", "0.5", "--gamma", "10"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"groupconv optimum-g: error: {message}") and err.count("\n") == 1


def test_eq2_g_beyond_the_channels_gets_a_note(capsys):
    # Eq. 2: g = m n d_k^2 (h w)^(1-beta) / gamma = 512*512*9*14 / 1e3 = 33030.1 > gcd(512, 512)
    assert main(["optimum-g", *LAYER, "--beta", "0.5", "--gamma", "1e3"]) == 0
    out = capsys.readouterr().out
    assert f"{512 * 512 * 9 * 14 / 1e3:.6g}" in out
    assert "note: Eq. 2's g = 33030.1 exceeds the largest admissible g = gcd(m, n) = 512" in out
    assert main(["optimum-g", *LAYER, "--beta", "0.5", "--gamma", "1e6"]) == 0  # g = 33.0 < 512
    assert "note:" not in capsys.readouterr().out


def test_help_uses_c_in_c_out_not_n_for_channels(capsys):
    with pytest.raises(SystemExit):
        main(["optimum-g", "--help"])
    out = capsys.readouterr().out
    assert "--in-channels C_IN" in out and "--out-channels C_OUT" in out


def test_unparsable_number_is_an_argparse_error_with_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["optimum-g", *LAYER, "--beta", "half", "--gamma", "1"])
    assert info.value.code == 2
    assert "not a number: 'half'" in capsys.readouterr().err


def test_cli_module_imports_neither_torch_nor_sympy():
    src = Path(__file__).resolve().parents[2] / "src"
    code = (
        "import sys; import groupconv.cli.optimum, groupconv.cost; "
        "bad = [m for m in ('torch', 'sympy', 'zeus') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(src)})
