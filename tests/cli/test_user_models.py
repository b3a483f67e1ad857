"""A user's model that raises its own exception or calls sys.exit: one line naming the
model and the original message, exit 2 (issue 17 item 4)."""

from __future__ import annotations

import pytest

from groupconv.cli import main

pytest.importorskip("torch")

MODEL = """
import sys
import torch.nn as nn
class WeightsMissing(Exception):
    pass
def raises():
    raise WeightsMissing("no file /nowhere/w.bin")
def exits():
    sys.exit(3)
class Forward(nn.Module):
    def forward(self, x):
        raise WeightsMissing("forward needs a dict input")
def forward():
    return Forward()
class ExitForward(nn.Module):
    def forward(self, x):
        sys.exit(7)
def exit_forward():
    return ExitForward()
"""


@pytest.mark.parametrize("factory, needles", [
    ("raises", ["the factory raised WeightsMissing: no file /nowhere/w.bin"]),
    ("exits", ["the factory called sys.exit(3)"]),
    ("forward", ["model Forward raised WeightsMissing: forward needs a dict input"]),
    ("exit_forward", ["model ExitForward called sys.exit(7)"]),
])
@pytest.mark.parametrize("command", ["count", "predict"])
def test_user_model_errors_are_one_line_exit_2(tmp_path, capsys, factory, needles, command):
    path = tmp_path / "m.py"
    path.write_text(MODEL)
    argv = [command, f"{path}:{factory}", "--input-shape", "1,3,8,8"]
    if command == "predict":
        from pathlib import Path

        argv += ["--platform", str(Path(__file__).resolve().parents[2] / "data/platforms/cpu-epyc-1t.json")]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("groupconv: error:"), err
    for needle in needles:
        assert needle in err[0]


DATA_FILES = {
    "exit_at_import.py": ("import sys\nsys.exit(3)\n", "importing {f} called sys.exit(3)"),
    "raise_at_import.py": ("raise RuntimeError('no shards mounted')\n",
                           "importing {f} raised RuntimeError: no shards mounted"),
    "syntax.py": ("def make(:\n    pass\n", "importing {f} raised SyntaxError"),
    "exit_in_factory.py": ("import sys\ndef make():\n    sys.exit(4)\n", "the factory called sys.exit(4)"),
}


@pytest.mark.parametrize("name", sorted(DATA_FILES))
def test_a_data_file_that_exits_or_raises_is_one_line_exit_2(tmp_path, capsys, name):
    """``design --data FILE.py:FACTORY`` where the user's data file calls ``sys.exit`` (or
    raises) while it is imported: one line naming the file, exit 2, no traceback - the
    same line as for a model file, since both go through ``load_user_module``."""
    from pathlib import Path

    source, expected = DATA_FILES[name]
    data = tmp_path / name
    data.write_text(source)
    model = tmp_path / "m.py"
    model.write_text("import torch.nn as nn\ndef build():\n    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())\n")
    platform = Path(__file__).resolve().parents[2] / "data/platforms/cpu-epyc-1t.json"
    code = main(["design", f"{model}:build", "--platform", str(platform), "--data", f"{data}:make", "--groups", "2"])
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("groupconv"), err
    assert ": error: data spec " in err[0] and expected.format(f=data) in err[0], err[0]
    assert "Traceback" not in captured.err + captured.out
