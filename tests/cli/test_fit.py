"""``groupconv fit`` end to end (in process, through groupconv.cli.main)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from groupconv.cli import main
from groupconv.cost import ConvLayer
from groupconv.fit import Workload, get_model

ROOT = Path(__file__).resolve().parents[2]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_paper_table_json_has_the_documented_keys(capsys):
    code, out, err = run_cli(capsys, "fit", "--paper-table", "e2gc-mobilenet", "--gpu", "P100",
                             "--model", "paper", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert {"model", "params", "stderr", "mape", "loo_mape"} <= set(result)
    assert result["model"] == "paper"
    assert set(result["params"]) == {"scale", "beta"}
    assert 0 <= result["params"]["beta"] <= 1
    assert 0 < result["mape"] < 1 and result["loo_mape"] >= result["mape"]  # fractions
    assert len(result["optima"]) == 6


def test_default_model_is_the_best_one_and_text_is_the_report(capsys):
    code, out, _ = run_cli(capsys, "fit", "--paper-table", "e2gc-resnext", "--gpu", "P4000")
    assert code == 0
    assert out.startswith("[[Model]] gpu")
    assert "[[Parameters]]" in out and "[[Optima]]" in out


def test_bootstrap_adds_intervals(capsys):
    code, out, _ = run_cli(capsys, "fit", "--paper-table", "e2gc-mobilenet", "--gpu", "P4000",
                           "--model", "macs", "--bootstrap", "20", "--json")
    assert code == 0
    result = json.loads(out)
    assert set(result["intervals"]) == set(result["params"])
    for name, (low, high) in result["intervals"].items():
        assert low <= high


def _synthetic_runs(path: Path, params: dict, noise: float = 0.01, seed: int = 0) -> None:
    """Layer rows in the measurement schema, energies from the gpu model with known params."""
    rng = np.random.default_rng(seed)
    model = get_model("gpu")
    rows = []
    for channels, size in ((64, 56), (128, 28), (256, 14), (512, 7)):
        for groups in (1, 4, channels // 8, channels):
            for batch in (1, 4, 16, 64):
                layer = ConvLayer(channels, channels, 3, size, size, groups=groups, batch=batch)
                energy = model.predict([Workload((layer,), batch)], params)[0] * np.exp(noise * rng.standard_normal())
                method = "dense" if groups == 1 else ("dw" if groups == channels else "gc")
                rows.append({"workload": "layer", "arch": "", "variant": "", "group": "",
                             "in_channels": channels, "out_channels": channels, "kernel": 3,
                             "height": size, "width": size, "groups": groups, "batch": batch,
                             "method": method, "mode": "forward", "dtype": "float32", "time_s": 1e-3,
                             "energy_J": energy, "device": "sim"})
    rows.append({**rows[0], "energy_J": "", "batch": 2})  # a row without an energy reading
    pd.DataFrame(rows).to_csv(path, index=False)


def test_runs_file_fit_recovers_the_generating_parameters(tmp_path, capsys):
    params = {"e_mac_J": 2e-11, "e_weight_J": 1e-9, "e_tile_J": 2e-7, "e_tile_batch_J": 1e-6,
              "e_frame_J": 1e-4, "e_batch_J": 5e-4, "kappa": 0.8}
    path = tmp_path / "runs.csv"
    _synthetic_runs(path, params)
    code, out, err = run_cli(capsys, "fit", str(path), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["model"] == "gpu" and result["n_points"] == 64
    assert any("skipped 1 row with no energy_J" in n for n in result["notes"])
    for name, true in params.items():
        estimate, se = result["params"][name], result["stderr"][name]
        assert abs(estimate - true) < 4 * se, (name, estimate, true, se)
    assert result["mape"] < 0.012
    assert "optima" not in result  # layer rows have no variants


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit"], "nothing to fit"),
        (["fit", "missing.csv"], "runs file not found: missing.csv"),
        (["fit", "x.csv", "--paper-table", "e2gc-resnext"], "not both"),
        (["fit", "--paper-table", "e2gc-resnext"], "needs --gpu"),
        (["fit", "--paper-table", "e2gc-resnext", "--gpu", "P100", "--model", "gpu", "--alpha", "0.5"],
         "alpha applies to the paper model only"),
        (["fit", "--paper-table", "e2gc-resnext", "--gpu", "P100", "--model", "paper", "--alpha", "2"],
         r"alpha must lie in \(0, 1\]"),
        (["fit", "--paper-table", "e2gc-resnext", "--gpu", "P100", "--mode", "forward"], "runs file"),
    ],
)
def test_bad_requests_exit_2_with_one_line(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("groupconv: error: ") and err.count("\n") == 1
    assert pd.Series([err]).str.contains(message).item(), err


def test_missing_columns_exit_2(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    path.write_text("workload,in_channels,out_channels,kernel,height,width,batch,energy_J\nlayer,8,8,3,4,4,1,0.1\n")
    code, _, err = run_cli(capsys, "fit", str(path))
    assert code == 2 and "groups" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "row, message",
    [
        ("layer,8,8,3,4,4,abc,1,0.1", "runs.csv: line 2: column groups must be a positive integer, got 'abc'"),
        ("layer,8,8,3,4,4,2,1,-1", "runs.csv: line 2: energy_J must be finite and > 0, got -1.0"),
        ("layer,8,8,3,4,4,2,1,inf", "runs.csv: line 2: energy_J must be finite and > 0, got inf"),
        ("layer,8,8,3,4,4,2,1,-inf", "runs.csv: line 2: energy_J must be finite and > 0, got -inf"),
    ],
)
def test_bad_cells_are_named_once_and_plainly(tmp_path, capsys, row, message):
    path = tmp_path / "runs.csv"
    path.write_text(f"workload,in_channels,out_channels,kernel,height,width,groups,batch,energy_J\n{row}\n")
    code, _, err = run_cli(capsys, "fit", str(path))
    assert code == 2 and err == f"groupconv: error: {tmp_path / message}\n"


def test_argparse_rejects_a_bad_platform_with_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--paper-table", "e2gc-resnext", "--platform", "V100"])
    assert exc.value.code == 2
    assert "invalid choice: 'V100'" in capsys.readouterr().err


def test_cli_module_does_not_import_torch_and_runs_as_a_program(tmp_path):
    code = "import sys, groupconv.cli.fit, groupconv.fit; print('torch' in sys.modules)"
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
    bad = subprocess.run([sys.executable, "-m", "groupconv", "fit", str(tmp_path / "none.csv")],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_cli_choices_follow_the_registry():
    """The CLI lists models without importing groupconv.fit; keep the two in sync."""
    from groupconv.cli import fit as cli_fit
    from groupconv.fit import BEST_MODEL, MODELS
    from groupconv.fit.data import PAPER_TABLES
    from groupconv.paper_tables import PLATFORMS

    assert cli_fit._MODELS == tuple(MODELS)
    assert cli_fit._BEST == BEST_MODEL
    assert cli_fit._TABLES == tuple(PAPER_TABLES)
    assert cli_fit._PLATFORMS == PLATFORMS


def test_cpu_measurement_without_energy_is_fitted_as_time(tmp_path, capsys):
    """The new user's loop on a CPU: `measure layer` writes rows with empty energy_J, and
    `fit` fits time per frame, says so, and models the bgc rows instead of skipping them."""
    pytest.importorskip("torch")
    runs = tmp_path / "runs.csv"
    code = main(["measure", "layer", "--in-channels", "16", "--out-channels", "16", "--size", "8",
                 "--groups", "2", "4", "--method", "gc", "bgc", "dw", "--batch", "1", "2", "--mode", "forward",
                 "--out", str(runs), "--trials", "2", "--warmup", "1", "--warmup-seconds", "0",
                 "--min-window", "0.002", "--no-memory", "--quiet", "--energy", "none"])
    assert code == 0
    capsys.readouterr()
    frame = pd.read_csv(runs)
    assert frame["energy_J"].isna().all() and (frame["method"] == "bgc").sum() == 4
    code, out, err = run_cli(capsys, "fit", str(runs), "--model", "macs", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["quantity"] == "time_s" and result["n_points"] == len(frame) == 10  # (2 gc + 2 bgc + 1 dw) x 2 batches
    assert any("fitted time_s" in n for n in result["notes"])
    assert any("bgc layers modelled" in n for n in result["notes"])
    code, out, _ = run_cli(capsys, "fit", str(runs), "--model", "macs")
    assert "fitted quantity = time_s" in out


def test_layer_and_network_rows_are_not_pooled(tmp_path, capsys):
    runs = tmp_path / "mixed.csv"
    runs.write_text(
        "workload,arch,variant,group,in_channels,out_channels,kernel,height,width,groups,batch,method,time_s,energy_J\n"
        "layer,,,,64,64,3,14,14,4,8,gc,0.001,\n"
        "network,mobilenet_v1,e2gc,4,,,,,,,2,network,0.01,\n"
    )
    code, _, err = run_cli(capsys, "fit", str(runs))
    assert code == 2 and "--workload" in err and len(err.strip().splitlines()) == 1
