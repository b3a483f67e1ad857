"""groupconv design: JSON output, --export, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("groupconv.platform")

from groupconv.cli import main  # noqa: E402
from groupconv.platform import Platform  # noqa: E402
from groupconv.platform.models import Roofline  # noqa: E402

MODEL = '''
import torch
from torch import nn

def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))
'''


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("design_cli")
    (d / "net.py").write_text(MODEL)
    Platform(device="cpu", metadata={"threads": 1}, roofline=Roofline(2e9, 4e9, 1e-6), time_models={}).save(d / "p.json")
    torch.manual_seed(2)
    x = torch.randn(32, 3, 8, 8)
    torch.save(x, d / "x.pt")
    np.save(d / "x.npy", x.numpy())
    np.save(d / "bad.npy", np.zeros((4, 2, 8, 8), dtype=np.float32))
    return d


def _args(files, *extra, data="x.pt"):
    return ["design", f"{files / 'net.py'}:build", "--platform", str(files / "p.json"),
            "--data", str(files / data), "--groups", "2", "4", *extra]


def test_json_has_plans_with_layers(files, capsys):
    assert main(_args(files, "--json", "--max-error", "0.05")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plans"] and out["chosen"]["error"] <= 0.05
    for plan in out["plans"]:
        assert {"layers", "time_s", "energy_J", "error", "params"} <= set(plan)
        assert [l["layer"] for l in plan["layers"]] == ["2", "4"]
        assert all({"layer", "method", "groups"} <= set(l) for l in plan["layers"])
    times = [p["time_s"] for p in out["plans"]]
    errors = [p["error"] for p in out["plans"]]
    assert times == sorted(times) and errors == sorted(errors, reverse=True)
    assert {p["label"].split()[0] for p in out["constant_plans"]} == {"gc", "bgc", "e2gc"}


def test_npy_data_gives_the_same_front(files, capsys):
    assert main(_args(files, "--json")) == 0
    a = json.loads(capsys.readouterr().out)["plans"]
    assert main(_args(files, "--json", data="x.npy")) == 0
    b = json.loads(capsys.readouterr().out)["plans"]
    assert [p["error"] for p in a] == pytest.approx([p["error"] for p in b])


def test_input_shape_prices_another_batch(files, capsys):
    assert main(_args(files, "--json")) == 0
    one = json.loads(capsys.readouterr().out)
    assert main(_args(files, "--json", "--input-shape", "4", "3", "8", "8")) == 0
    four = json.loads(capsys.readouterr().out)
    assert one["input_shape"] == [1, 3, 8, 8] and four["input_shape"] == [4, 3, 8, 8]
    # per frame, a batch of 4 amortises the fixed cost of every call: cheaper per frame
    assert four["base_time_s"] < one["base_time_s"]
    # the errors come from the data, not the priced shape
    assert [p["error"] for p in four["plans"]][-1] == 0.0


def test_export_and_figure(files, tmp_path, capsys):
    assert main(_args(files, "--max-error", "0.05", "--export", str(tmp_path / "e"), "--figure", str(tmp_path / "f"))) == 0
    text = capsys.readouterr().out
    assert "chosen (designed" in text
    assert (tmp_path / "e" / "plan.json").exists() and (tmp_path / "e" / "model.pt").exists()
    assert {p.suffix for p in (tmp_path / "f").iterdir()} == {".png", ".svg", ".pdf"}
    model = torch.load(tmp_path / "e" / "model.pt", weights_only=False)
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 4)


@pytest.mark.parametrize(
    ("extra", "data", "message"),
    [
        ((), "bad.npy", "data of shape (4, 2, 8, 8) do not fit the model"),
        (("--max-time-s", "1e-9"), "x.pt", "no plan has a predicted time of at most max_time_s 1e-09 s: the nearest is"),
        (("--max-params", "5"), "x.pt", "no plan has at most max_params 5 weights: the nearest has"),
        (("--export", "somewhere"), "x.pt", "--export needs a budget"),
        ((), "missing.pt", "data file"),
    ],
)
def test_bad_input_is_one_line_exit_2(files, capsys, extra, data, message):
    assert main(_args(files, *extra, data=data)) == 2
    err = capsys.readouterr().err
    assert err.startswith("groupconv: error: ") and message in err
    assert err.count("\n") == 1
