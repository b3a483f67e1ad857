"""groupconv calibrate / predict: JSON, figures, one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest

from groupconv.cli import main

torch = pytest.importorskip("torch")

MODEL = '''
import torch.nn as nn

def build():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
'''


@pytest.fixture
def files(tmp_path):
    import math

    from groupconv.platform import KernelModel, Platform, Roofline

    def km(k, f, c0, th):
        return KernelModel(k, f, c0, th, 0.0, tuple(0.0 for _ in th), 10, 0.0, None)

    # t = 2 us + 1e-10 s per MAC (convs), 1 us + 1 ns per byte (norm); the rest: roofline
    conv = ("log_macs",)
    platform = Platform(
        device="cpu", metadata={"device_name": "hand", "threads": 1, "dtype": "float32"},
        roofline=Roofline(1e12, 1e12, 1e-7),
        time_models={"conv_slow": km("conv_slow", conv, 2e-6, (math.log(1e-10), 1.0)),
                     "conv_mkldnn": km("conv_mkldnn", conv, 2e-6, (math.log(1e-10), 1.0)),
                     "conv_dw": km("conv_dw", conv, 2e-6, (math.log(1e-10), 1.0)),
                     "norm": km("norm", ("log_bytes",), 1e-6, (math.log(1e-9), 1.0))},
    )
    path = platform.save(tmp_path / "p.json")
    model = tmp_path / "model.py"
    model.write_text(MODEL)
    return path, model, platform


def test_predict_json_matches_library(files, capsys):
    from groupconv.networks import resolve_model
    from groupconv.platform import predict

    path, model, platform = files
    code = main(["predict", f"{model}:build", "--input-shape", "2,3,8,8", "--platform", str(path), "--json"])
    out = capsys.readouterr()
    assert code == 0
    d = json.loads(out.out)
    assert d["energy_J"] is None and d["batch"] == 2
    with pytest.warns(UserWarning):
        expected = predict(platform, resolve_model(f"{model}:build"), (2, 3, 8, 8))
    assert d["time_s"] == pytest.approx(expected.time_s)
    assert {"op", "op_class", "module", "time_s", "energy_J", "bound", "macs", "bytes"} <= set(d["ops"][0])
    # activation, pool, matmul, view were never measured on this platform: one warning line
    warnings = [line for line in out.err.splitlines() if line.startswith("groupconv: warning:")]
    assert len(warnings) == 1 and "never measured" in warnings[0]


def test_predict_table_and_figure(files, tmp_path, capsys):
    path, _, _ = files
    code = main(["predict", "mobilenet_v1", "--variant", "e2gc", "--groups", "32", "--input-shape", "1,3,32,32",
                 "--platform", str(path), "--figure", str(tmp_path / "fig" / "roof")])
    out = capsys.readouterr().out
    assert code == 0
    assert "predicted time per frame" in out and "n/a (no energy meter)" in out
    assert (tmp_path / "fig" / "roof.png").stat().st_size > 0 and (tmp_path / "fig" / "roof.svg").is_file()


def _one_line_error(capsys, argv, needle):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("groupconv: error:") and needle in err[0], err


def test_bad_inputs_are_one_line(files, tmp_path, capsys):
    path, model, platform = files
    d = platform.as_dict()
    d["schema_version"] = 7
    other = tmp_path / "other.json"
    other.write_text(json.dumps(d))
    _one_line_error(capsys, ["predict", f"{model}:build", "--input-shape", "1,3,8,8", "--platform", str(other)],
                    "schema version 7")
    _one_line_error(capsys, ["predict", f"{model}:build", "--input-shape", "1,5,8,8", "--platform", str(path)],
                    "(1, 5, 8, 8)")
    _one_line_error(capsys, ["predict", f"{tmp_path}/none.py:build", "--input-shape", "1,3,8,8", "--platform",
                             str(path)], "none.py")
    # another thread count than the platform's is refused, not silently mixed
    _one_line_error(capsys, ["predict", f"{model}:build", "--input-shape", "1,3,8,8", "--platform", str(path),
                             "--threads", "2"], "calibrated with 1 thread(s), the prediction asks for 2")
    d = platform.as_dict()
    d["metadata"]["dtype"] = "bfloat16"
    (tmp_path / "bf16.json").write_text(json.dumps(d))
    _one_line_error(capsys, ["predict", f"{model}:build", "--input-shape", "1,3,8,8", "--platform",
                             str(tmp_path / "bf16.json")], "calibrated in bfloat16, the model runs in float32")
    _one_line_error(capsys, ["calibrate", "--device", "tpu", "--out", str(tmp_path / "x.json")], "tpu")
    _one_line_error(capsys, ["calibrate", "--device", "cuda:7", "--out", str(tmp_path / "x.json")], "cuda")


def test_predict_text_is_the_predictions_summary(files, capsys):
    """The CLI prints Prediction.summary(): the library renders the table, the CLI adapts."""
    import warnings

    from groupconv.networks import resolve_model
    from groupconv.platform import predict

    path, model, platform = files
    assert main(["predict", f"{model}:build", "--input-shape", "2,3,8,8", "--platform", str(path), "--top", "3"]) == 0
    out = capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = predict(platform, resolve_model(f"{model}:build"), (2, 3, 8, 8))
    text = result.summary(f"{model}:build", device="hand", top=3)
    assert out == text + "\n"
    lines = text.splitlines()
    assert lines[0] == f"{model}:build on hand, batch 2, forward, {result.threads} thread(s), traced on {result.traced_on}"
    assert lines[1].startswith(f"predicted time per frame: {result.time_s * 1e3:.4g} ms")
    # two header lines: the kernel-model table and the operator table each have one
    fallback = 1 if result.roofline_ops else 0
    assert "slowest 3 of" in text and len(lines) == 4 + 1 + len(result.by_model()) + fallback + 1 + 1 + 3
