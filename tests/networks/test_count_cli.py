"""``groupconv count``: JSON output, the table, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from groupconv.cli import main
from groupconv.networks import build_network


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["mobilenet_v1", "--variant", "e2gc", "--group", "1"], ("mobilenet_v1", "e2gc", 1, 1)),
        (["resnext50", "--variant", "fggc", "--group", "32", "--batch", "16"], ("resnext50", "fggc", 32, 16)),
    ],
)
def test_json_is_one_object_with_int_totals(argv, expected, capsys):
    assert main(["count", *argv, "--json"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)  # exactly one JSON document, nothing else on stdout
    assert out.err == ""
    net = build_network(*expected)
    assert (data["arch"], data["variant"], data["group"], data["batch"]) == expected
    assert type(data["params"]) is int and type(data["macs"]) is int
    assert (data["params"], data["macs"]) == (net.params, net.macs)
    assert data["layers"] == [layer.as_dict() for layer in net.layers]
    assert all(layer["batch"] == expected[3] for layer in data["layers"])


def test_table_lists_every_layer_and_the_totals(capsys):
    assert main(["count", "mobilenet_v1", "--variant", "fggc", "--group", "8"]) == 0
    out = capsys.readouterr().out
    net = build_network("mobilenet_v1", "fggc", 8)
    for layer in net.layers:
        assert layer.name in out
    assert f"{net.params:,}" in out and f"{net.macs:,}" in out
    assert "7.30 M" in out and "1086.03 M" in out  # Table III's printed values
    total_line = next(line for line in out.splitlines() if line.startswith("total"))
    assert total_line.split()[-2:] == [f"{net.params:,}", f"{net.macs:,}"]


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["resnet50", "--variant", "e2gc", "--group", "1"], "'resnet50'"),
        (["mobilenet_v1", "--variant", "e2gc", "--group", "3"], "G=3"),
        (["resnext50", "--variant", "fggc", "--group", "3"], "g=3"),
        (["mobilenet_v1", "--variant", "e2gc", "--group", "0"], "0"),
        (["mobilenet_v1", "--variant", "e2gc", "--group", "-4"], "-4"),
        (["mobilenet_v1", "--variant", "e2gc", "--group", "two"], "'two'"),
        (["mobilenet_v1", "--variant", "bgc", "--group", "2"], "'bgc'"),
        (["mobilenet_v1", "--variant", "e2gc", "--group", "2", "--batch", "0"], "batch"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, fragment, capsys):
    assert main(["count", *argv]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("groupconv: error:")
    assert fragment in lines[0] and "Traceback" not in out.err


def test_cli_process_exit_code_and_no_torch():
    """The real entry point: exit code 2, one stderr line, and no torch import for `count`."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    bad = subprocess.run(
        [sys.executable, "-m", "groupconv", "count", "mobilenet_v1", "--variant", "e2gc", "--group", "3"],
        capture_output=True, text=True, env=env,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    code = (
        "import sys; from groupconv.cli import main; "
        "main(['count', 'resnext50', '--variant', 'e2gc', '--group', '4', '--json']); "
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(ok.stdout)["macs"] == build_network("resnext50", "e2gc", 4).macs
    assert ok.stderr.strip() == "False"
