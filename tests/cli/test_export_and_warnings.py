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


def test_warnings_are_one_line_per_kind(files, tmp_path, capsys):
    """`approx` on data with two dead channels: one warning per rank-deficient fit with -v,
    one line for the kind by default, nothing with -q."""
    x = np.random.default_rng(0).normal(size=(64, 8, 6, 6))
    x[:, [1, 5]] = 0.0
    np.save(tmp_path / "dead.npy", x)
    base = ["approx", "--data", str(tmp_path / "dead.npy"), "--out-channels", "8", "--kernel", "3",
            "--groups", "2", "4", "--method", "gc", "bgc", "--weight-samples", "2", "--json"]
    assert main([*base, "-v"]) == 0
    every = capsys.readouterr().err.splitlines()
    assert main(base) == 0
    grouped = capsys.readouterr().err.splitlines()
    assert main([*base, "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert len(every) > 4 and all("(DeadChannelsWarning)" in l for l in every)
    assert grouped == [every[0] + f" [and {len(every) - 1} more like it; -v shows all]"]


def test_design_notes_the_dead_channels_once(files, capsys):
    """The 5-conv ReLU CNN with dead channels: the library raises one DeadChannelsWarning
    per rank-deficient fit; design prints none of them on stderr, one note with their count."""
    from groupconv.approx.network import approximability_of_model
    from groupconv.networks import resolve_model

    model, data = resolve_model(f"{files / 'usernet.py'}:build"), torch.load(files / "x.pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        approximability_of_model(model, data, methods=("gc", "bgc"), groups=[2, 4])
    raw = [w for w in caught if issubclass(w.category, DeadChannelsWarning)]
    assert len(raw) > 10
    assert main(_design(files)) == 0
    out = capsys.readouterr()
    assert out.err == ""
    notes = [l for l in out.out.splitlines() if "DeadChannelsWarning" in l]
    assert len(notes) == 1 and notes[0].startswith(f"note: {len(raw)} least-squares fit(s)")
    assert len(out.out.splitlines()) < 40


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


def test_design_text_explains_itself(files):
    """design's text: what the error means, the constant plans once each, a note when the
    chosen plan is predicted slower than the dense model (here: a BGC plan put in its place)."""
    import dataclasses

    from groupconv.design import design
    from groupconv.networks import resolve_model

    model, data = resolve_model(f"{files / 'usernet.py'}:build"), torch.load(files / "x.pt")
    result = design(model, Platform.load(files / "p.json"), data, groups=(2, 4), max_error=0.5)
    text = result.summary()
    assert "above 1 worse than zeros" in text and "the paper's constant plans" in text
    assert "[gc N=2 = e2gc G=4]" in text  # one row per distinct plan, all its names
    assert "slower than the dense model" not in text or result.chosen.time_s > result.table.base_time_s
    slow = max(result.constant, key=lambda p: p.time_s)
    assert slow.time_s > result.table.base_time_s
    text = dataclasses.replace(result, chosen=slow).summary()
    assert "note: the chosen plan is predicted slower than the dense model" in text
    assert len(result.summary(rows=3).splitlines()) < len(result.summary(rows=None).splitlines()) or len(result.front) <= 3


def test_calibrate_says_what_it_resumed_and_skipped():
    import argparse

    from groupconv.cli.calibrate import _points_line

    meta = {"points_measured": 40, "points_resumed": 30, "points_skipped_for_budget": 1000,
            "points_planned": 1040, "budget_s": 60.0}
    line = _points_line(meta, argparse.Namespace(budget_s=60.0))
    assert line == ("points: 40 of 1040 planned (30 resumed from the existing runs file, 10 measured now); "
                    "1000 skipped for the 60 s budget (rerun with a larger --budget-s to add them: "
                    "the runs file is resumed)")
