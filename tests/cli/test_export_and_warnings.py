"""A user's model with its own module class: the export loads in a fresh process; the
warnings of a design run are grouped (one line per kind), silenced by -q, all shown by -v,
and filterable by category (issue 19, items 1 and 2)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("groupconv.platform")

from groupconv.cli import main  # noqa: E402
from groupconv.errors import DeadChannelsWarning, GroupConvWarning  # noqa: E402
from groupconv.platform import Platform  # noqa: E402
from groupconv.platform.models import Roofline  # noqa: E402

# a 5-conv ReLU CNN with a custom module class; channel 0 of every block is dead
# (its weights and bias are zero), so every fit on its input has a dead channel
MODEL = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.act = nn.ReLU()
        with torch.no_grad():
            self.conv.weight[0] = 0
            self.conv.bias[0] = -1

    def forward(self, x):
        return self.act(self.conv(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(Block(3, 8), *[Block(8, 8) for _ in range(4)])
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(self.body(x).mean((2, 3)))


def build():
    torch.manual_seed(0)
    return Net()
'''


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("user")
    (d / "usernet.py").write_text(MODEL)
    Platform(device="cpu", metadata={"threads": 1}, roofline=Roofline(2e9, 4e9, 1e-6), time_models={}).save(d / "p.json")
    torch.manual_seed(2)
    torch.save(torch.randn(24, 3, 8, 8), d / "x.pt")
    return d


def _design(files, *extra):
    return ["design", f"{files / 'usernet.py'}:build", "--platform", str(files / "p.json"),
            "--data", str(files / "x.pt"), "--groups", "2", "4", *extra]


def _fresh(code: str, cwd) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_export_loads_in_a_fresh_process(files, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_design(files, "--max-error", "0.5", "--export", str(out), "-q")) == 0
    assert {p.name for p in out.iterdir()} == {"plan.json", "model.pt2", "weights.pt", "model.pt"}
    x = torch.randn(3, 3, 8, 8)
    torch.save(x, tmp_path / "probe.pt")
    # the same process: the reference output of the converted model
    with torch.no_grad():
        ref = torch.load(out / "model.pt", weights_only=False)(x)
    np.save(tmp_path / "ref.npy", ref.numpy())
    # a fresh process elsewhere, without the model's source: the exported program
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _fresh(f"import torch, numpy as np\n"
           f"m = torch.export.load({str(out / 'model.pt2')!r}).module()\n"
           f"y = m(torch.load({str(tmp_path / 'probe.pt')!r})).detach().numpy()\n"
           f"np.save('y.npy', y)\n", elsewhere)
    np.testing.assert_allclose(np.load(elsewhere / "y.npy"), ref.numpy(), rtol=1e-5, atol=1e-6)
    # a fresh process where the user's file imports: the pickled module, its class intact
    printed = _fresh(f"import torch, numpy as np\n"
                     f"m = torch.load({str(out / 'model.pt')!r}, weights_only=False)\n"
                     f"print(type(m).__module__, type(m).__name__)\n"
                     f"np.save({str(tmp_path / 'z.npy')!r}, m(torch.load({str(tmp_path / 'probe.pt')!r})).detach().numpy())\n",
                     files)
    assert printed.split() == ["usernet", "Net"]
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), ref.numpy())
    # the state dict loads with weights_only=True and has the converted layers' shapes
    state = torch.load(out / "weights.pt", weights_only=True)
    assert set(state) == set(torch.load(out / "model.pt", weights_only=False).state_dict())


def test_warnings_are_one_line_per_kind(files, capsys):
    assert main(_design(files, "-v")) == 0
    every = [l for l in capsys.readouterr().err.splitlines() if l]
    assert main(_design(files)) == 0
    grouped = [l for l in capsys.readouterr().err.splitlines() if l]
    assert main(_design(files, "-q")) == 0
    quiet = capsys.readouterr().err
    # design notes the dead-channel fits once in its output; other kinds (e.g. the
    # roofline-priced kernels of a platform without kernel models) are one line each
    kinds = {l.split(": warning: ")[0] + l.split("(")[-1] for l in every}
    assert len(grouped) <= len(kinds) < len(every) or len(every) == len(grouped) <= 2
    assert all("more like it; -v shows all" in l for l in grouped if l not in every)
    assert quiet == ""


def test_library_warnings_have_named_categories():
    from groupconv.approx.data import gram_from_data, sample_data, sample_weights
    from groupconv.approx.solvers import GramSolver
    from groupconv.approx.structures import GCStructure

    assert issubclass(DeadChannelsWarning, GroupConvWarning) and issubclass(GroupConvWarning, UserWarning)
    rng = np.random.default_rng(10)
    x = sample_data("normal", 8, 4, (10,), rng)
    x[:, 1] = 0.0  # a dead (all-zero) input channel, as after a ReLU
    w = sample_weights(2, 4, 4, (3,), rng)
    layout = GCStructure(2).layout(4, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=DeadChannelsWarning)
        GramSolver(gram_from_data(x, 3), w).solve(layout)
    assert caught == []
    with pytest.warns(DeadChannelsWarning, match="input channel 1 identically zero"):
        GramSolver(gram_from_data(x, 3), w).solve(layout)
