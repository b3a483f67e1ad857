"""A new user's walk through the README on their own model file with a custom module class
(issue 19's target): count -> calibrate -> predict -> measure -> design -> export -> load,
each a real `groupconv` process: no traceback, exit 0, under 40 lines of output by default,
and the exported program loads and runs in a fresh process without the model's source."""

from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("groupconv.platform")

MODEL = '''
import torch
from torch import nn


class ConvBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(ConvBlock(3, 16), *[ConvBlock(16, 16) for _ in range(4)])
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.body(x).mean((2, 3)))


def build():
    torch.manual_seed(0)
    return Net()
'''


def _groupconv(*args, cwd) -> str:
    done = subprocess.run([sys.executable, "-m", "groupconv", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text
    assert "Traceback" not in text, text
    lines = text.splitlines()
    assert len(lines) < 40, f"{args[0]} printed {len(lines)} lines:\n{text}"
    return text


@pytest.mark.slow
def test_readme_walk_on_a_users_own_model(tmp_path):
    (tmp_path / "mynet.py").write_text(MODEL)
    torch.manual_seed(1)
    torch.save(torch.randn(16, 3, 12, 12), tmp_path / "x.pt")
    shape = ("--input-shape", "1,3,12,12")
    count = _groupconv("count", "mynet.py:build", *shape, cwd=tmp_path)
    assert "MACs" in count
    cal = _groupconv("calibrate", "--device", "cpu", "--out", "p.json", "--budget-s", "3", cwd=tmp_path)
    assert "skipped for the 3 s budget" in cal
    predicted = _groupconv("predict", "mynet.py:build", *shape, "--platform", "p.json", cwd=tmp_path)
    assert "predicted time per frame:" in predicted and " ms" in predicted
    measured = _groupconv("measure", "model", "mynet.py:build", *shape, "--trials", "2", "--min-window", "0.02",
                          cwd=tmp_path)
    assert "ms/frame" in measured
    designed = _groupconv("design", "mynet.py:build", "--platform", "p.json", "--data", "x.pt",
                          "--max-error", "0.2", "--export", "out", *shape, cwd=tmp_path)
    assert "ms/frame" in designed and "wrote program: out/model.pt2" in designed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([sys.executable, "-c", "import torch\n"
                           "m = torch.export.load('../out/model.pt2').module()\n"
                           "print(tuple(m(torch.randn(2, 3, 12, 12)).shape))"],
                          cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.split() == ["(2,", "10)"], done.stderr
