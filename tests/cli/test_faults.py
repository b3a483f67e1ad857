"""The fault sweep (issue 17): hundreds of bad inputs and faults across every command.

Each case runs ``groupconv.cli.main`` in-process and asserts the CLI's promise for bad
input: exit code 2, exactly one stderr line ``groupconv[ <command>]: error: ...`` (other
stderr lines only ``groupconv: warning:`` or ``groupconv: note:``), no traceback, and no
NaN, infinite or negative time on stdout. Faults of the machine (a full disk, a denied
permission) are simulated by monkeypatching the write that would hit them; those cases
also assert that no partial or empty output file is left behind.

The cases are generated from tables: per command, per option, the values it must refuse;
then damaged platform files, damaged runs files, broken user models, bad data files,
unknown names and file-system faults.
"""

from __future__ import annotations

import errno
import io
import json
import math
import re
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from groupconv.cli import main

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
GOOD_PLATFORM = ROOT / "data" / "platforms" / "cpu-epyc-1t.json"

ERROR_LINE = re.compile(r"^groupconv( [a-z-]+)*: error: \S")
OTHER_OK = re.compile(r"^groupconv: (warning|note): ")
BAD_NUMBER = re.compile(r"(?<![\w.])(nan|NaN|-?inf|-?Infinity)(?![\w])|-\d+(\.\d+)?(e-?\d+)? ?(ms|s|us)\b")

MODELS = {
    "tiny.py": """
import torch.nn as nn
def tiny():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
""",
    "own_error.py": """
import torch.nn as nn
class ModelSaysNo(Exception):
    pass
def factory():
    raise ModelSaysNo("weights missing: /nowhere/w.bin")
class Bad(nn.Module):
    def forward(self, x):
        raise ModelSaysNo("forward refuses this input")
def bad_forward():
    return Bad()
class Exits(nn.Module):
    def forward(self, x):
        raise SystemExit(4)
def exit_forward():
    return Exits()
def not_a_module():
    return 42
def exits():
    import sys
    sys.exit(3)
def needs_args(width):
    return nn.Linear(width, width)
def recursion():
    return recursion()
""",
    "import_error.py": "raise RuntimeError('cannot import this model file')\n",
    "import_exit.py": "import sys\nsys.exit(5)\n",
    "syntax_error.py": "def broken(:\n    pass\n",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Files every case may name: {D} the folder, models, platforms, runs files, data."""
    import numpy as np

    d = tmp_path_factory.mktemp("faults")
    for name, text in MODELS.items():
        (d / name).write_text(text)
    shutil.copy(GOOD_PLATFORM, d / "good.json")
    good = json.loads(GOOD_PLATFORM.read_text())
    for name, edit in PLATFORM_DAMAGE.items():
        p = json.loads(json.dumps(good))
        edit(p)
        (d / f"plat_{name}.json").write_text(json.dumps(p))
    (d / "plat_empty.json").write_text("")
    (d / "plat_text.json").write_text("this is not json\n")
    (d / "plat_list.json").write_text("[1, 2, 3]\n")
    (d / "plat_binary.json").write_bytes(bytes(range(256)) * 4)
    (d / "plat_v2.json").write_text(json.dumps({**good, "schema_version": 2}))
    (d / "plat_deep.json").write_text("[" * 100000 + "]" * 100000)
    (d / "a_dir").mkdir()
    (d / "a_file").write_text("a plain file\n")
    # data files
    np.save(d / "img.npy", np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype("float32"))
    np.save(d / "img5.npy", np.random.default_rng(0).standard_normal((2, 5, 8, 8)).astype("float32"))
    np.save(d / "empty.npy", np.zeros((0,), dtype="float32"))
    np.save(d / "empty4.npy", np.zeros((0, 3, 8, 8), dtype="float32"))
    np.save(d / "strings.npy", np.array(["a", "b"]))
    np.save(d / "nan.npy", np.full((2, 3, 8, 8), np.nan, dtype="float32"))
    np.save(d / "seq.npy", np.random.default_rng(0).standard_normal((16, 8, 8)).astype("float32"))
    np.savez(d / "arch.npz", a=np.zeros(3))
    torch.save(torch.zeros(3), d / "x.pt")
    torch.save({"not": "a tensor"}, d / "dict.pt")
    (d / "text.npy").write_text("not numpy\n")
    (d / "text.pt").write_text("not torch\n")
    (d / "data.csv").write_text("1,2,3\n")
    # runs files: a real one measured here, then damaged copies
    runs = d / "runs.csv"
    code = main(["measure", "layer", "--in-channels", "8", "--out-channels", "8", "--size", "4", "--groups", "2", "4",
                 "--method", "gc", "bgc", "--batch", "1", "--mode", "forward", "--out", str(runs), "--trials", "2",
                 "--warmup-seconds", "0", "--min-window", "0.005", "--quiet", "--threads", "1"])
    assert code == 0
    lines = runs.read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    for name, damage in RUNS_DAMAGE.items():
        (d / f"runs_{name}.csv").write_text("".join(damage(list(lines), header)))
    (d / "runs_binary.csv").write_bytes(b"\x00\xff\xfe" * 100)
    (d / "runs_empty.csv").write_text("")
    (d / "runs_nul.csv").write_bytes(lines[0].encode() + b"layer,\x00,\x00\n")
    # a calibration runs file of other conditions (a header of this version, one row at threads=7)
    from groupconv.platform.runs import RUN_COLUMNS

    row = {c: "" for c in RUN_COLUMNS}
    row.update(key="roofline:x", phase="roofline", kind="gemm", spec="{}", kernel="matmul", op="aten.mm.default",
               batch="1", copies="1", calls="1", macs="100", bytes="100", time_s="1e-5", device="cpu", threads="7",
               dtype="float32", timestamp="2026-01-01T00:00:00+00:00", device_name="x", torch_version="0")
    (d / "otherthreads.runs.csv").write_text(",".join(RUN_COLUMNS) + "\n" + ",".join(row[c] for c in RUN_COLUMNS) + "\n")
    (d / "binary.runs.csv").write_bytes(bytes(range(256)) * 8)
    (d / "foreign.runs.csv").write_text("a,b\n1,2\n")
    (d / "glued.runs.csv").write_text(",".join(RUN_COLUMNS) + "\n" + ",".join(["x"] * (2 * len(RUN_COLUMNS) - 1)) + "\n")
    return d


def _set(path, value):
    def edit(p):
        node = p
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


PLATFORM_DAMAGE = {
    "neg_c0": _set(("time_models", "conv_mkldnn", "c0"), -1.834e-3),
    "nan_c0": _set(("time_models", "conv_mkldnn", "c0"), math.nan),
    "inf_c0": _set(("time_models", "conv_mkldnn", "c0"), math.inf),
    "nan_theta": _set(("time_models", "conv_slow", "theta"), [math.nan] * 9),
    "huge_theta": _set(("time_models", "conv_mkldnn", "theta"), [1e-2] * 9),
    "neg_theta": _set(("time_models", "conv_mkldnn", "theta"), [-1e-9] * 9),
    "form_cubic": _set(("time_models", "norm", "form"), "cubic"),
    "short_theta": _set(("time_models", "conv_mkldnn", "theta"), [1e-11]),
    "zero_peak": _set(("roofline", "peak_macs_per_s"), 0.0),
    "neg_bw": _set(("roofline", "bandwidth_bytes_per_s"), -1.0),
    "nan_fixed": _set(("roofline", "fixed_s"), math.nan),
    "factor_zero": _set(("network_correction", "time_factor"), 0.0),
    "factor_nan": _set(("network_correction", "factors", "conv"), math.nan),
    "factor_neg": _set(("network_correction", "factors", "memory"), -0.8),
    "no_models": lambda p: p.pop("time_models"),
    "models_list": _set(("time_models",), []),
    "theta_str": _set(("time_models", "norm", "theta"), "fast"),
    "unknown_kernel": _set(("time_models", "warp"), {"kernel": "warp", "form": "power", "features": [],
                                                     "c0": 1e-6, "theta": [1.0], "n": 3, "fit_mape": 0.1}),
    "huge_exponent": _set(("time_models", "activation", "theta"), [-26.0, 40.0, 0.0]),
}


def _glue(lines, header):
    return [lines[0], lines[1].rstrip("\n") + lines[2], *lines[3:]]


def _set_cell(column, value):
    def damage(lines, header):
        cells = lines[1].rstrip("\n").split(",")
        cells[header.index(column)] = value
        return [lines[0], ",".join(cells) + "\n", *lines[2:]]
    return damage


def _drop_column(column):
    def damage(lines, header):
        i = header.index(column)
        out = []
        for line in lines:
            cells = line.rstrip("\n").split(",")
            out.append(",".join(cells[:i] + cells[i + 1:]) + "\n")
        return out
    return damage


RUNS_DAMAGE = {
    "glued": _glue,
    "cut": lambda ls, h: [ls[0], ls[1][:40] + "\n", *ls[2:]],
    "short10": lambda ls, h: [ls[0], ",".join(ls[1].split(",")[:10]) + "\n", *ls[2:]],
    "header_twice": lambda ls, h: [*ls, *ls],
    "dup_row": lambda ls, h: [*ls, ls[1]],
    "method_weird": _set_cell("method", "weird"),
    "time_nan": _set_cell("time_s", "nan"),
    "time_neg": _set_cell("time_s", "-0.001834"),
    "time_zero": _set_cell("time_s", "0"),
    "time_inf": _set_cell("time_s", "inf"),
    "time_text": _set_cell("time_s", "fast"),
    "groups_zero": _set_cell("groups", "0"),
    "groups_text": _set_cell("groups", "two"),
    "batch_neg": _set_cell("batch", "-4"),
    "mode_weird": _set_cell("mode", "sideways"),
    "workload_weird": _set_cell("workload", "galaxy"),
    "no_time_s": _drop_column("time_s"),
    "header_only": lambda ls, h: [ls[0]],
    "threads_mixed": lambda ls, h: [*ls, _set_cell("threads", "2")(ls, h)[1]],
    "quote_open": lambda ls, h: [ls[0], '"' + ls[1]],
}

TINY = "{D}/tiny.py:tiny"
PLAT = "{D}/good.json"
QUICK = ["--trials", "2", "--warmup-seconds", "0", "--min-window", "0.005", "--quiet", "--threads", "1"]

BASES = {
    "count": ["count", TINY, "--input-shape", "1,3,8,8"],
    "count_cat": ["count", "mobilenet_v1", "--variant", "e2gc", "--group", "2"],
    "predict": ["predict", TINY, "--platform", PLAT, "--input-shape", "1,3,8,8"],
    "recommend": ["recommend", "mobilenet_v1", "--platform", PLAT],
    "design": ["design", TINY, "--platform", PLAT, "--data", "{D}/img.npy", "--groups", "2"],
    "approx": ["approx", "--in-channels", "8", "--out-channels", "8", "--data-samples", "16", "--weight-samples", "1",
               "--groups", "2", "--length", "8"],
    "optimum": ["optimum-g", "--in-channels", "64", "--out-channels", "64", "--kernel", "3", "--size", "14",
                "--beta", "0.5"],
    "fit_paper": ["fit", "--paper-table", "e2gc-mobilenet", "--platform", "P100", "--model", "macs"],
    "fit_runs": ["fit", "{D}/runs.csv", "--model", "macs"],
    "measure": ["measure", "layer", "--in-channels", "8", "--out-channels", "8", "--size", "4", "--groups", "2",
                "--method", "gc", "--batch", "1", "--mode", "forward", "--out", "{T}/m.csv", *QUICK],
    "measure_net": ["measure", "network", "mobilenet_v1", "--variant", "e2gc", "--group", "2", "--batch", "1",
                    "--mode", "forward", "--out", "{T}/n.csv", *QUICK],
    "calibrate": ["calibrate", "--out", "{T}/p.json", "--budget-s", "1", "--quiet"],
    "figures": ["figures", "--out", "{T}/figs", "--only", "e2gc_fig3"],
}

INTS = ["x", "", "1.5", "-1", "0", "nan", "1e3", "0x10"]
NONNEG_INTS = ["x", "", "1.5", "-1", "nan"]
FLOATS_POS = ["x", "", "-1", "0", "nan", "inf", "-inf", "1e999"]
FLOATS_ANY = ["x", "", "nan", "inf", "-inf"]

# (base, option, bad values): every value must be refused with one line
OPTIONS = [
    ("count", "--batch", INTS),
    ("count", "--depth", NONNEG_INTS),
    ("count", "--input-shape", ["1,3,x", "1,,3,8,8", "x1,3,8,8", "1,3,8,8x", "0,3,8,8", "-1,3,8,8", "", "1;3;8;8",
                                "1,3,8,8,", "99999999999,99999999999,99999999,9999999", "1.5,3,8,8", "nan,3,8,8",
                                "1,4,8,8", "1,3,0,8"]),
    ("count", "--input-dtype", ["float99", "int", ""]),
    ("count", "--device", ["tpu", "cuda", "cuda:9", "", "cpu:x"]),
    ("count", "--csv", ["bogus", ""]),
    ("count_cat", "--group", ["x", "0", "-2", "3", "1.5", "1000000"]),
    ("count_cat", "--variant", ["bogus", ""]),
    ("count_cat", "--batch", ["0", "-1", "x"]),
    ("predict", "--input-shape", ["1,3,x", "0,3,8,8", "", "1,3", "99999999999,99999999999,99999999,9999999"]),
    ("predict", "--mode", ["sideways", ""]),
    ("predict", "--top", ["x", "-1", "1.5"]),
    ("predict", "--group", ["x", "0"]),
    ("recommend", "--batch", INTS),
    ("recommend", "--image-size", ["x", "0", "-1", "1.5", "nan"]),
    ("recommend", "--max-params", ["x", "0", "-5", "nan", "inf", "1e999", "1.5", "bogus:1", "e2gc:3"]),
    ("recommend", "--max-macs", ["x", "0", "-5", "nan", "inf", "-inf", "1e999", "2.5"]),
    ("recommend", "--objective", ["energy_J", "speed", ""]),
    ("design", "--groups", ["x", "0", "-1", "3", "1.5"]),
    ("design", "--methods", ["weird", ""]),
    ("design", "--max-error", FLOATS_ANY + ["-1"]),
    ("design", "--max-time-s", FLOATS_POS),
    ("design", "--max-params", ["x", "0", "-1", "1.5"]),
    ("design", "--objective", ["energy_J", "speed"]),
    ("design", "--aggregate", ["bogus"]),
    ("design", "--input-shape", ["x", "0", "-1"]),
    ("approx", "--in-channels", INTS),
    ("approx", "--out-channels", INTS),
    ("approx", "--kernel", ["x", "0", "-1", "1.5"]),
    ("approx", "--length", ["x", "0", "-1"]),
    ("approx", "--data-samples", ["x", "0", "-1", "nan"]),
    ("approx", "--weight-samples", ["x", "0", "-1"]),
    ("approx", "--groups", ["x", "0", "-1", "3", "16"]),
    ("approx", "--method", ["weird", "dense", ""]),
    ("approx", "--dist", ["weird", ""]),
    ("approx", "--init", ["weird"]),
    ("approx", "--solver", ["weird"]),
    ("approx", "--padding", ["weird", "-1", ""]),
    ("approx", "--seed", ["x", "1.5", "-1"]),
    ("optimum", "--in-channels", INTS),
    ("optimum", "--out-channels", INTS),
    ("optimum", "--kernel", ["x", "0", "-1"]),
    ("optimum", "--size", ["x", "0", "-1"]),
    ("optimum", "--width", ["x", "0", "-1"]),
    ("optimum", "--beta", ["x", "nan", "inf", "-1", "0", "2", ""]),
    ("optimum", "--gamma", ["x", "nan", "-1", "0", "inf"]),
    ("optimum", "--alpha", ["x", "nan", "-1", "0", "2", "inf"]),
    ("optimum", "--const", ["x", "nan", "-1", "inf"]),
    ("optimum", "--batch", ["x", "0", "-1"]),
    ("optimum", "--groups", ["x", "0", "-1", "3", "128"]),
    ("fit_paper", "--alpha", ["x", "nan", "0", "-1", "2", "inf"]),
    ("fit_paper", "--bootstrap", ["x", "0", "-1"]),
    ("fit_paper", "--loss", ["weird"]),
    ("fit_paper", "--model", ["weird", ""]),
    ("fit_paper", "--paper-table", ["weird"]),
    ("fit_paper", "--platform", ["V100", ""]),
    ("fit_paper", "--seed", ["x", "1.5"]),
    ("fit_runs", "--mode", ["sideways"]),
    ("fit_runs", "--dtype", ["float99"]),
    ("fit_runs", "--device", ["tpu"]),
    ("fit_runs", "--workload", ["galaxy"]),
    ("fit_runs", "--quantity", ["energy_J", "weird"]),
    ("fit_runs", "--threads", ["x", "0", "7"]),
    ("measure", "--in-channels", INTS),
    ("measure", "--out-channels", INTS),
    ("measure", "--kernel", ["x", "0", "-1"]),
    ("measure", "--size", ["x", "0", "-1", "1.5"]),
    ("measure", "--groups", ["x", "0", "-1", "3"]),
    ("measure", "--batch", ["x", "0", "-1"]),
    ("measure", "--method", ["weird"]),
    ("measure", "--mode", ["sideways"]),
    ("measure", "--device", ["tpu", "cuda", "cuda:x"]),
    ("measure", "--dtype", ["float99", "int8"]),
    ("measure", "--energy", ["solar"]),
    ("measure", "--trials", ["x", "0", "-1"]),
    ("measure", "--warmup", ["x", "-1", "1.5"]),
    ("measure", "--warmup-seconds", ["x", "-1", "nan", "inf"]),
    ("measure", "--min-window", ["x", "0", "-1", "nan", "inf"]),
    ("measure", "--window-factor", ["x", "0", "-1", "nan"]),
    ("measure", "--idle-seconds", ["x", "0", "-1", "nan"]),
    ("measure", "--threads", ["x", "0", "-1"]),
    ("measure", "--log-interval-ms", ["x", "0"]),
    ("measure_net", "--group", ["x", "0", "3"]),
    ("measure_net", "--variant", ["bogus"]),
    ("measure_net", "--image-size", ["x", "0", "1", "-1"]),
    ("calibrate", "--budget-s", ["x", "0", "-1", "nan", "inf", "1e999", ""]),
    ("calibrate", "--threads", ["x", "0", "-1"]),
    ("calibrate", "--dtype", ["float99", "int8", ""]),
    ("calibrate", "--device", ["tpu", "cuda", "cuda:7", ""]),
    ("calibrate", "--energy", ["solar"]),
    ("calibrate", "--seed", ["-1", "x", "1.5"]),
    ("figures", "--only", ["nosuch", ""]),
]


def _option_cases():
    out = []
    for base, option, values in OPTIONS:
        for value in values:
            argv = list(BASES[base])
            if option in argv:  # replace the base's own value
                i = argv.index(option)
                argv[i + 1] = value
            else:
                argv += [option, value]
            out.append((f"{base}{option}={value!r}", argv, None))
    return out


def _platform_cases():
    names = [f"plat_{n}.json" for n in PLATFORM_DAMAGE] + [
        "plat_empty.json", "plat_text.json", "plat_list.json", "plat_binary.json", "plat_v2.json", "plat_deep.json",
        "a_dir", "missing.json", "a_file/p.json"]
    out = []
    for name in names:
        for base in ("predict", "recommend", "design"):
            argv = [("{D}/" + name) if a == PLAT else a for a in BASES[base]]
            out.append((f"{base}--platform={name}", argv, None))
    return out


def _runs_cases():
    names = [f"runs_{n}.csv" for n in RUNS_DAMAGE] + ["runs_binary.csv", "runs_empty.csv", "runs_nul.csv",
                                                     "a_dir", "missing.csv", "plat_text.json"]
    out = []
    for name in names:
        out.append((f"fit {name}", ["fit", "{D}/" + name, "--model", "macs"], None))
        if name.startswith("runs_") and name not in ("runs_header_only.csv", "runs_threads_mixed.csv", "runs_empty.csv"):
            # a resumed measure must refuse the same file (copied: the case must not change it)
            argv = [a if a != "{T}/m.csv" else "{T}/" + name for a in BASES["measure"]]
            out.append((f"measure resume {name}", argv, ("copy", name)))
    return out


MODEL_SPECS = [
    "{D}/own_error.py:factory", "{D}/own_error.py:bad_forward", "{D}/own_error.py:exit_forward",
    "{D}/own_error.py:not_a_module", "{D}/own_error.py:exits", "{D}/own_error.py:needs_args",
    "{D}/own_error.py:recursion", "{D}/own_error.py:nosuch", "{D}/import_error.py:f", "{D}/import_exit.py:f",
    "{D}/syntax_error.py:f", "{D}/missing.py:f", "{D}/a_dir:f", "{D}/tiny.py", "nosuch_arch", "os.path:join",
    "nosuch_pkg.mod:f", ":", "{D}/data.csv:f",
]


def _model_cases():
    out = []
    for spec in MODEL_SPECS:
        for base in ("count", "predict", "design"):
            argv = [spec if a == TINY else a for a in BASES[base]]
            out.append((f"{base} model={spec.replace('{D}/', '')}", argv, None))
    return out


DATA = ["x.pt", "dict.pt", "empty.npy", "empty4.npy", "strings.npy", "text.npy", "text.pt", "arch.npz", "data.csv",
        "missing.npy", "a_dir", "img5.npy", "seq.npy", "nan.npy"]

DATA_SPECS = ["import_exit.py:f", "import_error.py:f", "syntax_error.py:f", "missing.py:f", "own_error.py:exits",
              "own_error.py:factory", "own_error.py:nosuch", "a_dir/x.py:f"]


def _data_cases():
    out = []
    for name in DATA:
        argv = [("{D}/" + name) if a == "{D}/img.npy" else a for a in BASES["design"]]
        out.append((f"design --data={name}", argv, None))
        if name not in ("seq.npy",):
            out.append((f"approx --data={name}", [*BASES["approx"][:-2], "--data", "{D}/" + name], None))
    for spec in DATA_SPECS:  # --data FILE.py:FACTORY: the user's data file, loaded like a model file
        argv = [("{D}/" + spec) if a == "{D}/img.npy" else a for a in BASES["design"]]
        out.append((f"design --data={spec}", argv, None))
    out.append(("approx --data conflicting --in-channels", [*BASES["approx"][:-2], "--data", "{D}/seq.npy",
                                                            "--in-channels", "4"], None))
    return out


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _eacces(*args, **kwargs):
    raise PermissionError(errno.EACCES, "Permission denied")


def _partial_savefig(self, fname, *args, **kwargs):
    if hasattr(fname, "write"):
        fname.write(b"partial")
    raise OSError(errno.ENOSPC, "No space left on device")


def _partial_torch_save(obj, f, *args, **kwargs):
    if hasattr(f, "write"):
        f.write(b"partial")
    raise OSError(errno.ENOSPC, "No space left on device")


WRITE_LINE = "groupconv.measure.schema.RunWriter._write_line"
SAVEFIG = "matplotlib.figure.Figure.savefig"

FS_CASES = [
    ("measure full disk", BASES["measure"], ("patch", WRITE_LINE, _enospc)),
    ("measure permission", BASES["measure"], ("patch", WRITE_LINE, _eacces)),
    ("measure_net full disk", BASES["measure_net"], ("patch", WRITE_LINE, _enospc)),
    ("calibrate full disk", BASES["calibrate"], ("patch", WRITE_LINE, _enospc)),
    ("calibrate permission", BASES["calibrate"], ("patch", WRITE_LINE, _eacces)),
    ("figures full disk", BASES["figures"], ("patch", SAVEFIG, _partial_savefig)),
    ("predict --figure full disk", [*BASES["predict"], "--figure", "{T}/roof"], ("patch", SAVEFIG, _partial_savefig)),
    ("design --figure full disk", [*BASES["design"], "--figure", "{T}/front"], ("patch", SAVEFIG, _partial_savefig)),
    ("design --export full disk", [*BASES["design"], "--max-error", "10", "--export", "{T}/exp"],
     ("patch", "torch.save", _partial_torch_save)),
    ("measure --out is a dir", [a if a != "{T}/m.csv" else "{D}/a_dir" for a in BASES["measure"]], None),
    ("measure --out under a file", [a if a != "{T}/m.csv" else "{D}/a_file/m.csv" for a in BASES["measure"]], None),
    ("calibrate --out under a file", ["calibrate", "--out", "{D}/a_file/p.json", "--budget-s", "1", "--quiet"], None),
    ("calibrate --out is a dir", ["calibrate", "--out", "{D}/a_dir", "--budget-s", "1", "--quiet"], None),
    ("calibrate beside a binary runs file", ["calibrate", "--out", "{D}/binary.json", "--budget-s", "1", "--quiet"], None),
    ("calibrate beside a foreign runs file", ["calibrate", "--out", "{D}/foreign.json", "--budget-s", "1", "--quiet"], None),
    ("calibrate beside a glued runs file", ["calibrate", "--out", "{D}/glued.json", "--budget-s", "1", "--quiet"], None),
    ("calibrate beside a runs file of threads=7", ["calibrate", "--out", "{D}/otherthreads.json", "--budget-s", "1",
                                                   "--quiet", "--threads", "1"], None),
    ("figures --out is a file", ["figures", "--out", "{D}/a_file", "--only", "e2gc_fig3"], None),
    ("predict --figure under a file", [*BASES["predict"], "--figure", "{D}/a_file/roof"], None),
    ("design --export is a file", [*BASES["design"], "--max-error", "10", "--export", "{D}/a_file"], None),
    ("design --figure is a file", [*BASES["design"], "--figure", "{D}/a_file"], None),
    ("design --export without a budget", [*BASES["design"], "--export", "{T}/exp"], None),
    ("count catalogue without variant", ["count", "mobilenet_v1"], None),
    ("count nosuch_arch", ["count", "nosuch_arch"], None),
    ("recommend nosuch", ["recommend", "nosuch", "--platform", PLAT], None),
    ("recommend energy on a time platform", [*BASES["recommend"], "--objective", "energy_J"], None),
    ("measure_net nosuch arch", [a if a != "mobilenet_v1" else "nosuch" for a in BASES["measure_net"]], None),
    ("fit nothing", ["fit"], None),
    ("fit both", ["fit", "{D}/runs.csv", "--paper-table", "e2gc-mobilenet"], None),
    ("fit paper without gpu", ["fit", "--paper-table", "e2gc-mobilenet"], None),
    ("fit runs with --platform", ["fit", "{D}/runs.csv", "--platform", "P100"], None),
    ("fit --errors", ["fit", "{D}/runs.csv", "--bogus"], None),
    ("no command", [], None),
    ("unknown command", ["nosuch"], None),
    ("approx --errors without --json", [*BASES["approx"], "--errors"], None),
    ("approx 2-D kernel with --length", [*BASES["approx"][:-2], "--kernel", "3", "3", "--length", "8"], None),
    ("approx too few samples", [*BASES["approx"][:-6], "--data-samples", "1", "--weight-samples", "1"], None),
]


def _cases():
    cases = _option_cases() + _platform_cases() + _runs_cases() + _model_cases() + _data_cases() + FS_CASES
    ids = [c[0] for c in cases]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    return cases


CASES = _cases()

PARAMS = [pytest.param(c, id=c[0]) for c in CASES]


def _fill(argv, d: Path, t: Path):
    return [a.replace("{D}", str(d)).replace("{T}", str(t)) for a in argv]


def run_case(argv, monkeypatch=None):
    """(exit code, stdout, stderr, traceback text or "") of one in-process CLI call."""
    out, err = io.StringIO(), io.StringIO()
    crash = ""
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:  # noqa: BLE001 - an escaped exception is what the sweep looks for
            import traceback

            code = 1
            crash = "Traceback (escaped main): " + "".join(traceback.format_exception_only(type(exc), exc))
    return code, out.getvalue(), err.getvalue() + crash


def problems(code, stdout, stderr) -> list[str]:
    """What is wrong with one call's outcome, by the CLI's promise for bad input."""
    found = []
    if code != 2:
        found.append(f"exit code {code}")
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    others = [line for line in lines if not ERROR_LINE.match(line) and not OTHER_OK.match(line)]
    if len(errors) != 1:
        found.append(f"{len(errors)} error lines")
    if others:
        found.append(f"stray stderr: {others[0][:100]!r}")
    if "Traceback" in stderr or "Traceback" in stdout:
        found.append("traceback")
    if BAD_NUMBER.search(stdout):
        found.append(f"bad number on stdout: {BAD_NUMBER.search(stdout).group(0)!r}")
    return found


@pytest.mark.parametrize("case", PARAMS)
def test_bad_input_is_one_line_exit_2(case, env, tmp_path, monkeypatch):
    name, argv, extra = case
    if extra is not None and extra[0] == "patch":
        monkeypatch.setattr(extra[1], extra[2])
    if extra is not None and extra[0] == "copy":
        shutil.copy(env / extra[1], tmp_path / extra[1])
    before = {p: p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()}
    code, stdout, stderr = run_case(_fill(argv, env, tmp_path))
    found = problems(code, stdout, stderr)
    assert not found, f"{name}: {found}; stderr={stderr[-600:]!r}"
    # a failed write leaves no partial, empty or temporary output behind
    for p in tmp_path.rglob("*"):
        if p.is_file() and p not in before and not p.name.endswith(".lock"):
            assert p.stat().st_size > 0, f"{name}: left an empty {p.name}"
            assert not p.name.endswith(".tmp"), f"{name}: left a temporary {p.name}"
            assert p.suffix not in (".png", ".svg", ".pdf", ".pt"), f"{name}: left a partial {p.name}"


def test_the_sweep_has_at_least_400_cases():
    assert len(CASES) >= 400, len(CASES)


def test_the_sweep_harness_sees_a_clean_run_and_a_traceback(env, tmp_path):
    """The harness itself: a good call is not flagged for its exit code alone, and an
    exception escaping main is caught and reported as a traceback."""
    code, stdout, stderr = run_case(_fill(["count", TINY, "--input-shape", "1,3,8,8", "--json"], env, tmp_path))
    assert code == 0 and problems(code, stdout, stderr) == ["exit code 0", "0 error lines"]
    assert problems(1, "", "Traceback (most recent call last):\n  boom\n")[-1] == "traceback"
    assert problems(2, "time -1.834 ms\n", "groupconv: error: x\n") == ["bad number on stdout: '-1.834 ms'"]
