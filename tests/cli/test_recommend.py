"""``groupconv recommend``: JSON keys, budgets by variant, one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest

from groupconv.cli import main
from groupconv.design import recommend
from groupconv.fit import fit_model, paper_dataset
from groupconv.networks import build_network


def test_paper_fit_json_matches_the_library(capsys):
    assert main(["recommend", "mobilenet_v1", "--paper-fit", "P4000", "--batch", "16",
                 "--max-params", "e2gc:32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    budget = build_network("mobilenet_v1", "e2gc", 32).params
    rec = recommend("mobilenet_v1", fit_model("gpu", paper_dataset("mobilenet_v1", "P4000")),
                    batch=16, max_params=budget)
    assert out["groups"] == list(rec.groups) and len(out["groups"]) == 13
    assert out["max_params"] == budget and out["params"] <= budget
    assert out["energy_J"] == pytest.approx(rec.cost) and out["time_s"] is None
    assert out["macs"] == build_network("mobilenet_v1", "e2gc", 1, groups=out["groups"]).macs


def test_table_output(capsys):
    assert main(["recommend", "resnext50", "--paper-fit", "P100", "--max-macs", "4.2e9"]) == 0
    out = capsys.readouterr().out
    assert "groups:" in out and "layer4.2.conv2" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["vgg", "--paper-fit", "P100"], "unknown architecture 'vgg'"),
        (["mobilenet_v1", "--paper-fit", "P100", "--max-params", "10"], "the least possible is 4,209,088"),
        (["mobilenet_v1", "--paper-fit", "P100", "--max-params", "lots"], "--max-params must be a number"),
        (["mobilenet_v1", "--paper-fit", "P100", "--max-params", "e2gc:x"], "must be an integer"),
        (["mobilenet_v1", "--paper-fit", "P100", "--max-params", "e2gc:3"], "does not divide"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert main(["recommend", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("groupconv: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_missing_platform_file_is_named(capsys):
    pytest.importorskip("groupconv.platform")
    assert main(["recommend", "mobilenet_v1", "--platform", "/nonexistent/p.json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("groupconv: error: ") and "p.json" in err and len(err.strip().splitlines()) == 1


def _roofline_platform(path):
    """A platform file with roofline constants only (every op priced from the roofline)."""
    platform = pytest.importorskip("groupconv.platform")
    p = platform.Platform(device="cpu", metadata={"threads": 1, "dtype": "float32"},
                          roofline=platform.Roofline(50e9, 20e9, 5e-6), time_models={})
    return p.save(path)


def test_platform_file_roofline_only(tmp_path, capsys):
    """On a pure roofline, fewer weights never cost more time: unbudgeted, depthwise
    everywhere is optimal, and the reported time is the platform's prediction of that network."""
    pytest.importorskip("torch")
    import warnings

    from groupconv.networks import build_module
    from groupconv.networks.catalogue import grouped_channels
    from groupconv.platform import Platform, predict

    path = _roofline_platform(tmp_path / "roof.json")
    assert main(["recommend", "mobilenet_v1", "--platform", str(path), "--batch", "2", "--size", "96",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["groups"] == list(grouped_channels("mobilenet_v1"))
    assert out["energy_J"] is None and out["objective"] == "time_s"
    module = build_module("mobilenet_v1", "e2gc", 1, groups=out["groups"], device="meta")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = predict(Platform.load(path), module, (2, 3, 96, 96)).time_s
    assert out["time_s"] == pytest.approx(expected)
    assert any("never measured" in n for n in out["notes"])
    # every variant priced the same way is no faster than the recommendation
    assert all(out["time_s"] <= row["cost"] + 1e-12 for row in out["variants"])
