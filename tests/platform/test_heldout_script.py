"""``benchmarks/platform/heldout.py``: its second held-out set builds, runs and is predicted (no timing)."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / "data" / "platforms" / "cpu-epyc-1t-quiet-all.json"


@pytest.fixture(scope="module")
def heldout():
    spec = importlib.util.spec_from_file_location("heldout_script", ROOT / "benchmarks" / "platform" / "heldout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sets_are_disjoint_and_prefixed(heldout):
    first = [key for key, *_ in heldout.networks(112)]  # the default is the first set, unchanged
    second = [key for key, *_ in heldout.networks(112, "second")]
    both = [key for key, *_ in heldout.networks(112, "all")]
    assert len(first) == 24 and len(second) == 10
    assert both == first + second and len(set(both)) == 34
    assert all(key.startswith("set2/") for key in second) and not any(key.startswith("set2/") for key in first)
    with pytest.raises(ValueError, match="which"):
        heldout.networks(112, "third")


def test_second_set_forward_and_backward(heldout):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for key, _family, build, make_input in heldout.networks(64, "second"):
            torch.manual_seed(0)
            model = build()
            model.eval()
            with torch.no_grad():
                y = model(make_input(2))
            assert y.shape[0] == 2 and torch.isfinite(y).all(), key
            model.train()
            y = model(make_input(1))
            y.backward(torch.ones_like(y))
            grads = [p.grad for p in model.parameters() if p.requires_grad]
            assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), key
    finally:
        torch.set_num_threads(previous)


def test_quick_predicts_the_second_set_only(heldout, tmp_path):
    assert heldout.main(["--platform", str(PLATFORM), "--set", "second", "--quick", "--no-measure",
                         "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "predicted.csv").open()))
    keys = {row["key"] for row in rows}
    assert keys and keys <= {key for key, *_ in heldout.networks(112, "second")}
    for row in rows:
        assert row["mode"] == "forward" and row["batch"] == "1"
        t = float(row["predicted_s"])
        assert math.isfinite(t) and t > 0, row
