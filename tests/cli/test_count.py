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
        (["mobilenet_v1", "--variant", "e2gc", "--groups", "1"], ("mobilenet_v1", "e2gc", 1, 1)),
        (["resnext50", "--variant", "fggc", "--groups", "32", "--batch", "16"], ("resnext50", "fggc", 32, 16)),
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
    assert main(["count", "mobilenet_v1", "--variant", "fggc", "--groups", "8"]) == 0
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
        (["resnet50", "--variant", "e2gc", "--groups", "1"], "'resnet50'"),
        (["mobilenet_v1", "--variant", "e2gc", "--groups", "3"], "G=3"),
        (["resnext50", "--variant", "fggc", "--groups", "3"], "g=3"),
        (["mobilenet_v1", "--variant", "e2gc", "--groups", "0"], "0"),
        (["mobilenet_v1", "--variant", "e2gc", "--groups", "-4"], "-4"),
        (["mobilenet_v1", "--variant", "e2gc", "--groups", "two"], "'two'"),
        (["mobilenet_v1", "--variant", "bgc", "--groups", "2"], "'bgc'"),
        (["mobilenet_v1", "--variant", "e2gc", "--groups", "2", "--batch", "0"], "batch"),
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
        [sys.executable, "-m", "groupconv", "count", "mobilenet_v1", "--variant", "e2gc", "--groups", "3"],
        capture_output=True, text=True, env=env,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    code = (
        "import sys; from groupconv.cli import main; "
        "main(['count', 'resnext50', '--variant', 'e2gc', '--groups', '4', '--json']); "
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(ok.stdout)["macs"] == build_network("resnext50", "e2gc", 4).macs
    assert ok.stderr.strip() == "False"


# --- any torch model, traced at the operator level -------------------------------------
MODEL_FILE = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))


class Spectral(nn.Module):
    def forward(self, x):
        return torch.fft.rfft(x).abs()


def build():
    return Net()


class Pair(nn.Module):
    def forward(self, a, b):
        return a @ b


def spectral():
    return Spectral()


def pair():
    return Pair()
'''


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "user_model.py"
    path.write_text(MODEL_FILE)
    return path


def test_file_factory_json(model_file, capsys):
    assert main(["count", f"{model_file}:build", "--input-shape", "2,3,8,8", "--json"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert out.err == ""
    # conv 3 -> 8, 3x3 on 8x8: 8 * 64 * 27; fc 8 -> 4: 32 (per frame, batch 2)
    assert data["macs"] == 8 * 64 * 27 + 32 and data["flops"] == 2 * data["macs"]
    assert data["batch"] == 2 and data["params"] == 8 * 27 + 32 and data["total_params"] == 8 * 27 + 32 + 4
    assert {"bytes", "unsupported", "ops", "layers", "op_types"} <= set(data)
    assert [layer["name"] for layer in data["layers"]] == ["conv", "fc"]
    assert sum(op["macs"] for op in data["ops"]) == 2 * data["macs"]


def test_package_factory_and_several_shapes(model_file, capsys):
    assert main(["count", "torch.nn:Bilinear", "--input-shape", "3,4"]) == 2  # Bilinear() needs arguments
    assert "Bilinear" in capsys.readouterr().err
    assert main(["count", "torch.nn:Identity", "--input-shape", "3,4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_shapes"] == [[3, 4]] and data["macs"] == 0 and data["bytes"] == 0
    assert main(["count", f"{model_file}:pair", "--input-shape", "3,4", "--input-shape", "4,5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_shapes"] == [[3, 4], [4, 5]] and data["macs"] * 3 == 3 * 4 * 5  # mm (3, 4) x (4, 5)


def test_tree_table_and_unsupported_warning(model_file, capsys):
    assert main(["count", f"{model_file}:build", "--input-shape", "2,3,8,8", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "  conv" in out and "  fc" in out and "op class" in out
    assert main(["count", f"{model_file}:spectral", "--input-shape", "2,8"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("groupconv: warning:") and "aten._fft_r2c.default x1" in err[0]


def test_csv_tables(model_file, capsys):
    assert main(["count", f"{model_file}:build", "--input-shape", "2,3,8,8", "--csv", "layers"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("name,kind,") and [line.split(",")[0] for line in lines[1:]] == ["conv", "fc"]
    assert main(["count", f"{model_file}:build", "--input-shape", "2,3,8,8", "--csv", "ops"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].startswith("op,op_class,module") and any(",conv," in row for row in rows[1:])
    assert main(["count", f"{model_file}:build", "--input-shape", "2,3,8,8", "--csv", "ops", "--json"]) == 2
    assert "choose one" in capsys.readouterr().err


def test_catalogue_traced_keeps_the_paper_counts(capsys):
    assert main(["count", "resnext50", "--variant", "fggc", "--groups", "32", "--trace", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    net = build_network("resnext50", "fggc", 32)
    assert (data["macs"], data["params"], data["total_params"]) == (net.macs, net.params, net.total_params)
    assert data["bytes"] > 0 and data["unsupported"] == {}


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["{f}:build", "--input-shape", "2,5,8,8"], "(2, 5, 8, 8)"),
        (["{f}:build"], "--input-shape"),
        (["{f}:nothing", "--input-shape", "2,3,8,8"], "'nothing'"),
        (["no_such_file.py:build", "--input-shape", "2,3,8,8"], "no_such_file.py"),
        (["no_such_package.mod:build", "--input-shape", "2,3,8,8"], "no_such_package"),
        (["{f}:build", "--input-shape", "2,3,8,8", "--input-dtype", "floaty"], "'floaty'"),
        (["mobilenet_v1", "--trace"], "--variant"),
    ],
)
def test_model_errors_exit_2_with_one_line(argv, fragment, model_file, capsys):
    argv = [a.replace("{f}", str(model_file)) for a in argv]
    assert main(["count", *argv]) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert out.out == "" and len(lines) == 1 and lines[0].startswith("groupconv: error:")
    assert fragment in lines[0]


def test_forward_backward_mode_is_a_training_step(model_file, capsys):
    """``--mode forward_backward`` counts what FlopCounterMode counts for one training
    step: the forward and the backward to every parameter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from groupconv.networks import resolve_model

    assert main(["count", f"{model_file}:build", "--input-shape", "2,3,8,8", "--json"]) == 0
    forward = json.loads(capsys.readouterr().out)
    assert main(["count", f"{model_file}:build", "--input-shape", "2,3,8,8", "--mode", "forward_backward", "--json"]) == 0
    step = json.loads(capsys.readouterr().out)
    model = resolve_model(f"{model_file}:build")
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(2, 3, 8, 8)).sum().backward()
    assert step["flops"] * 2 == counter.get_total_flops()  # per frame, batch 2
    # by hand: conv forward 8 * 64 * 27 = 13,824 and its weight gradient (the input needs
    # none); fc forward 32, its input and weight gradients: 2 * 13,824 + 3 * 32 per frame
    assert forward["macs"] == 13_824 + 32 and step["macs"] == 2 * 13_824 + 3 * 32
    assert {op["phase"] for op in step["ops"]} == {"forward", "backward"}
    with pytest.raises(SystemExit) as info:  # argparse refuses an unknown choice
        main(["count", f"{model_file}:build", "--input-shape", "2,3,8,8", "--mode", "train"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--mode" in err[0] and "'train'" in err[0]


def test_module_table_has_output_shapes_and_peak_memory(model_file, capsys):
    assert main(["count", f"{model_file}:build", "--input-shape", "2,3,8,8", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("module"))
    assert "output shape" in header and "peak mem" in header
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "2x8x8x8" in rows["conv"] and rows["fc"].split()[-3] == "2x4"
    assert "peak memory" in out
    assert main(["count", f"{model_file}:build", "--input-shape", "2,3,8,8", "--csv", "modules"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert head.endswith(",output_shape,peak_bytes")
