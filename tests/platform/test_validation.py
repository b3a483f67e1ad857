"""Platform files validated field by field on load (issue 17 item 2).

The damaged-file cases of the issue, each a one-line error with exit code 2 (no
prediction of -1.834 ms, NaN, inf or 1.28e9 s); the published JSON Schema checked with
jsonschema against the shipped platform files; strict JSON on stdout.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import jsonschema
import pytest

from groupconv.cli import main
from groupconv.errors import GroupConvError
from groupconv.platform import Platform
from groupconv.platform.schema import platform_schema, validate_platform

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "data" / "platforms").glob("*.json"))
GOOD = ROOT / "data" / "platforms" / "cpu-epyc-1t.json"


def test_published_schema_is_the_one_the_package_reads():
    published = json.loads((ROOT / "docs" / "platform.schema.json").read_text())
    assert published == platform_schema()
    jsonschema.Draft202012Validator.check_schema(published)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_platforms_pass_the_schema_and_the_semantic_checks(path):
    d = json.loads(path.read_text())
    jsonschema.validate(d, platform_schema(), cls=jsonschema.Draft202012Validator)
    validate_platform(d, path.name)
    Platform.load(path)


def _damage(edit):
    d = json.loads(GOOD.read_text())
    edit(d)
    return d


def _set(path, value):
    def edit(d):
        node = d
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _scale(path, index, factor):
    def edit(d):
        node = d
        for key in path:
            node = node[key]
        node[index] *= factor
    return edit


# (id, edit, what the one line says): the cases and their neighbours
DAMAGED = [
    ("negative_c0", _set(("time_models", "conv_mkldnn", "c0"), -1.834e-3), r"c0: -0\.001834 is less than the minimum of 0"),
    ("nan_c0", _set(("time_models", "conv_mkldnn", "c0"), math.nan), r"c0 is nan, not a finite number"),
    ("inf_theta", _set(("time_models", "activation", "theta"), [math.inf, 1.0, 0.0]), r"theta\[0\] is inf"),
    ("huge_theta_1e9s", _scale(("time_models", "conv_mkldnn", "theta"), 0, 1e8), r"predicts up to .* s per call"),
    ("huge_power_exponent", _scale(("time_models", "activation", "theta"), 1, 30), r"predicts up to .* s per call"),
    ("negative_linear_term", _set(("time_models", "conv_mkldnn", "theta"), [-1e-9] + [0.0] * 8), r"theta\[0\].*less than the minimum of 0"),
    ("unknown_form", _set(("time_models", "conv_mkldnn", "form"), "cubic"), r"form: 'cubic' is not one of"),
    ("missing_form", lambda d: d["time_models"]["norm"].pop("form"), r"'form' is a required property"),
    ("short_theta", _set(("time_models", "conv_mkldnn", "theta"), [1e-11, 1e-10]), r"2 coefficient\(s\) in theta for 9 feature\(s\)"),
    ("short_power_theta", _set(("time_models", "activation", "theta"), [-26.0, 1.1]), r"2 coefficient\(s\) in theta for 2 feature\(s\) of a power model \(expected 3\)"),
    ("zero_peak", _set(("roofline", "peak_macs_per_s"), 0.0), r"peak_macs_per_s: 0\.0 is less than or equal to the minimum of 0"),
    ("zero_bandwidth", _set(("roofline", "bandwidth_bytes_per_s"), 0), r"bandwidth_bytes_per_s"),
    ("negative_fixed", _set(("roofline", "fixed_s"), -1e-6), r"fixed_s"),
    ("string_peak", _set(("roofline", "peak_macs_per_s"), "fast"), r"peak_macs_per_s: 'fast' is not of type 'number'"),
    ("factor_zero", _set(("network_correction", "factors", "conv"), 0.0), r"factors\.conv: 0\.0 is less than the minimum of 0\.02"),
    ("factor_huge", _set(("network_correction", "time_factor"), 1e6), r"time_factor: 1000000\.0 is greater than the maximum of 50"),
    ("unknown_kernel", lambda d: d["time_models"].__setitem__("warp_drive", dict(d["time_models"]["norm"], kernel="warp_drive")), r"unknown kernel type 'warp_drive'"),
    ("unknown_feature", _set(("time_models", "norm", "features"), ["log_bytes", "log_vibes"]), r"unknown feature 'log_vibes'"),
    ("zero_points", _set(("time_models", "norm", "n"), 0), r"n: 0 is less than the minimum of 1"),
    ("bad_threads", _set(("metadata", "threads"), 0), r"threads: 0 is less than the minimum of 1"),
    ("bad_device", _set(("device",), "tpu"), r"device: 'tpu' does not match"),
    ("no_roofline", lambda d: d.pop("roofline"), r"'roofline' is a required property"),
    ("extra_key", _set(("surprise",), 1), r"Additional properties are not allowed"),
    ("ranges_inverted", _set(("time_models", "activation", "ranges", "log_bytes"), [17.0, 10.0]), r"minimum above its maximum"),
]


@pytest.mark.parametrize("case", DAMAGED, ids=[c[0] for c in DAMAGED])
def test_damaged_platform_is_refused_on_load(case):
    _, edit, needle = case
    d = _damage(edit)
    with pytest.raises(GroupConvError) as info:
        Platform.from_dict(json.loads(json.dumps(d)), "p.json")
    message = str(info.value)
    assert "\n" not in message and message.startswith("p.json: ")
    assert re.search(needle, message), message


MODEL = """
import torch.nn as nn
def tiny():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.AdaptiveAvgPool2d(1))
"""


@pytest.mark.parametrize("case", DAMAGED, ids=[c[0] for c in DAMAGED])
def test_damaged_platform_in_predict_is_one_line_exit_2(case, tmp_path, capsys):
    pytest.importorskip("torch")
    _, edit, _ = case
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_damage(edit)))  # NaN/Infinity written as Python's json writes them
    model = tmp_path / "m.py"
    model.write_text(MODEL)
    code = main(["predict", f"{model}:tiny", "--platform", str(path), "--input-shape", "1,3,8,8", "--json"])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("groupconv: error: "), captured.err
    assert captured.out == ""


def test_the_good_platform_predicts_positive_finite_times_in_strict_json(tmp_path, capsys):
    pytest.importorskip("torch")
    model = tmp_path / "m.py"
    model.write_text(MODEL)
    assert main(["predict", f"{model}:tiny", "--platform", str(GOOD), "--input-shape", "1,3,8,8", "--json"]) == 0
    out = capsys.readouterr().out
    d = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert d["time_s"] > 0 and math.isfinite(d["time_s"])


def test_a_platform_built_in_python_with_a_bad_model_never_predicts_a_nonpositive_time():
    pytest.importorskip("torch")
    from groupconv.cost import ConvLayer
    from groupconv.platform import KernelModel

    good = Platform.load(GOOD)
    bad = KernelModel(kernel="conv_mkldnn", features=("macs",), c0=-1.0, theta=(0.0,), c0_stderr=0.0,
                      theta_stderr=(0.0,), n=10, fit_mape=0.0, cv_mape=None, form="linear")
    p = Platform(device="cpu", metadata=dict(good.metadata), roofline=good.roofline, time_models={"conv_mkldnn": bad})
    layer = ConvLayer(64, 64, 3, 14, 14)
    # the roofline bound keeps it positive; a NaN coefficient is refused
    assert p.features(layer, 4).kernel == "conv_mkldnn"
    assert p.predict_op(layer, 4, warn=False) > 0
    nan = KernelModel(kernel="conv_mkldnn", features=("macs",), c0=math.nan, theta=(0.0,), c0_stderr=0.0,
                      theta_stderr=(0.0,), n=10, fit_mape=0.0, cv_mape=None, form="linear")
    p = Platform(device="cpu", metadata=dict(good.metadata), roofline=good.roofline, time_models={"conv_mkldnn": nan})
    with pytest.raises(GroupConvError, match="its model of conv_mkldnn is damaged"):
        p.predict_op(layer, 4, warn=False)


def test_save_refuses_what_load_would_refuse(tmp_path):
    """A platform with a model of an unknown kernel type is refused when saved, naming the
    file, and nothing is written: calibrate never leaves a file its own loader refuses."""
    from groupconv.platform import KernelModel

    good = Platform.load(GOOD)
    odd = KernelModel(kernel="warp_drive", features=("macs",), c0=1e-6, theta=(1e-9,), c0_stderr=0.0,
                      theta_stderr=(0.0,), n=10, fit_mape=0.0, cv_mape=None, form="linear")
    p = Platform(device="cpu", metadata=dict(good.metadata), roofline=good.roofline, time_models={"warp_drive": odd})
    out = tmp_path / "p.json"
    with pytest.raises(GroupConvError, match=r"p\.json.*warp_drive"):
        p.save(out)
    assert not out.exists()


def test_phase_and_op_models_are_valid_names():
    """A backward model of one op (backward:conv_mkldnn:aten.convolution_backward.weight_only,
    as a complete calibration writes) passes the schema; a name of another shape does not."""
    d = json.loads(GOOD.read_text())
    model = next(iter(d["time_models"].values()))
    d["time_models"] = {"backward:conv_mkldnn:aten.convolution_backward.weight_only": {**model, "kernel": "backward:conv_mkldnn"}}
    validate_platform(d, "p")
    d["time_models"] = {"backward:conv_mkldnn:aten.op:extra": {**model, "kernel": "backward:conv_mkldnn"}}
    with pytest.raises(GroupConvError, match="does not match"):
        validate_platform(d, "p")


def test_print_json_is_strict_and_notes_non_finite_numbers(capsys):
    from groupconv.cli._common import print_json
    import numpy as np

    print_json({"a": math.nan, "b": [1.0, math.inf], "c": np.float64(2.5), "d": np.array([1.0, np.nan])})
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"a": None, "b": [1.0, None], "c": 2.5, "d": [1.0, None]}
    assert "NaN" not in captured.out and "Infinity" not in captured.out
    assert captured.err.strip() == "groupconv: note: 3 non-finite number(s) (NaN or infinity) written as null"
