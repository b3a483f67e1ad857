"""``groupconv measure``: a small real layer campaign, bad input as exit code 2, lazy torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from groupconv.cli import main
from groupconv.measure import read_runs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread, as in tests/measure (2 shared cores: more threads oversubscribe)."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


QUICK = ["--trials", "2", "--warmup-seconds", "0", "--min-window", "0.005", "--threads", "1"]


def test_measure_layer_small_call(tmp_path, capsys):
    out = tmp_path / "runs.csv"
    code = main([
        "measure", "layer", "--in-channels", "8", "--out-channels", "8", "--kernel", "3",
        "--size", "6", "--groups", "2", "4", "--method", "gc", "bgc", "dense", "--batch", "1", "2",
        "--mode", "forward", "forward_backward", "--out", str(out), *QUICK,
    ])
    assert code == 0
    frame = read_runs(out)
    assert len(frame) == 2 * (2 * 2 * 2 + 2)  # modes x ((gc, bgc) x groups x batch + dense x batch)
    assert set(frame["mode"]) == {"forward", "forward_backward"}
    printed = capsys.readouterr().out
    assert f"{out}: measured 20, already there 0 (energy: none" in printed
    assert "time_ms" in printed and "peak_MiB" in printed
    # Same call again: everything is there already.
    assert main([
        "measure", "layer", "--in-channels", "8", "--out-channels", "8", "--kernel", "3",
        "--size", "6", "--groups", "2", "4", "--method", "gc", "bgc", "dense", "--batch", "1", "2",
        "--mode", "forward", "forward_backward", "--out", str(out), *QUICK,
    ]) == 0
    assert "measured 0, already there 20" in capsys.readouterr().out
    assert len(read_runs(out)) == 20


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--groups", "3"], "in_channels=64 is not divisible by groups=3"),
        (["--groups", "2", "--energy", "nvidia-smi-log"], "needs --power-log"),
        (["--groups", "2", "--power-log", "p.csv"], "need --energy nvidia-smi-log"),
        (["--groups", "2", "--device", "tpu"], "device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, needle):
    out = tmp_path / "runs.csv"
    base = ["measure", "layer", "--in-channels", "64", "--out-channels", "64", "--size", "4", "--out", str(out)]
    assert main(base + args + ["--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("groupconv: error: ") and needle in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--min-window", "0"], "argument --min-window: must be a finite positive number, got '0'"),
        (["--window-factor", "0"], "argument --window-factor: must be a finite positive number, got '0'"),
        (["--idle-seconds", "-1"], "argument --idle-seconds: must be a finite positive number, got '-1'"),
        (["--warmup-seconds", "-1"], "argument --warmup-seconds: must be a finite non-negative number, got '-1'"),
        (["--warmup", "-1"], "argument --warmup: must be a non-negative integer, got '-1'"),
        (["--size", "0"], "argument --size: must be a positive integer, got '0'"),
    ],
)
def test_bad_flags_are_named_as_flags(tmp_path, capsys, args, needle):
    base = ["measure", "layer", "--in-channels", "8", "--out-channels", "8", "--size", "4",
            "--out", str(tmp_path / "runs.csv"), "--quiet"]
    with pytest.raises(SystemExit) as info:
        main(base + args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"groupconv measure layer: error: {needle}") and err.count("\n") == 1


def test_network_image_size_and_variant_named_as_flags(tmp_path, capsys):
    base = ["measure", "network", "mobilenet_v1", "--groups", "32", "--out", str(tmp_path / "r.csv")]
    with pytest.raises(SystemExit):
        main(base + ["--variant", "e2gc", "--size", "16"])
    assert "argument --size: must be an integer >= 32, got '16'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(base + ["--variant", "foo"])
    assert "argument --variant: invalid choice: 'foo' (choose from" in capsys.readouterr().err


def test_help_documents_every_layer_flag(capsys):
    with pytest.raises(SystemExit):
        main(["measure", "layer", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--in-channels C_IN input channels", "--out-channels C_OUT output channels",
                 "--kernel K kernel side, K x K (default 3)", "(default 1;", "(default: gc bgc)",
                 "(default float32)"):
        assert text in out, text
    with pytest.raises(SystemExit):
        main(["measure", "network", "--help"])
    assert "--variant {e2gc,fggc}" in capsys.readouterr().out


def test_warmup_zero_runs(tmp_path, capsys):
    out = tmp_path / "runs.csv"
    assert main(["measure", "layer", "--in-channels", "8", "--out-channels", "8", "--size", "4",
                 "--groups", "2", "--method", "gc", "--out", str(out), "--warmup", "0",
                 "--warmup-seconds", "0", *QUICK]) == 0
    assert len(read_runs(out)) == 1


def test_corrupt_runs_file_exits_2_naming_the_line(tmp_path, capsys):
    out = tmp_path / "runs.csv"
    assert main(["measure", "layer", "--in-channels", "8", "--out-channels", "8", "--size", "4",
                 "--groups", "2", "--method", "gc", "--out", str(out), "--quiet", *QUICK]) == 0
    lines = out.read_text().splitlines()
    out.write_text("\n".join([lines[0], lines[1].replace("gc", "gk", 1)]) + "\n")
    assert main(["measure", "layer", "--in-channels", "8", "--out-channels", "8", "--size", "4",
                 "--groups", "4", "--method", "gc", "--out", str(out), "--quiet", *QUICK]) == 2
    err = capsys.readouterr().err
    assert f"{out} line 2: method 'gk' is not one of" in err


def test_binary_runs_file_exits_2_naming_the_file(tmp_path, capsys):
    out = tmp_path / "runs.csv"
    out.write_bytes(b"\x00\x01\xff\xfe not text")
    assert main(["measure", "layer", "--in-channels", "8", "--out-channels", "8", "--size", "4",
                 "--groups", "2", "--method", "gc", "--out", str(out), "--quiet", *QUICK]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"groupconv: error: {out}: not a text CSV file") and err.count("\n") == 1


def test_argparse_rejects_unknown_method(capsys):
    with pytest.raises(SystemExit) as info:
        main(["measure", "layer", "--in-channels", "8", "--out-channels", "8", "--size", "4",
              "--method", "shuffle", "--out", "x.csv"])
    assert info.value.code == 2


def test_cli_import_does_not_import_torch():
    code = (
        "import sys; from groupconv.cli import build_parser; build_parser(); "
        "import groupconv.measure; print('torch' in sys.modules, 'zeus' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(ROOT / "src")},
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False False"


def test_paper_workloads_are_tables_iii_and_iv():
    from groupconv.measure import paper_workloads
    from groupconv.paper_tables import load_e2gc_tables

    work = paper_workloads()
    tables = load_e2gc_tables()
    expected = {(r.network, r.variant, int(r.group)) for r in tables.itertuples()}
    assert {(w.arch, w.variant, w.group) for w in work} == expected
    assert len(work) == 3 * len(tables) and len(set(work)) == len(work)
    assert {w.batch for w in work} == {1, 4, 16} and {w.mode for w in work} == {"forward_backward"}


@pytest.mark.slow
def test_measure_paper_runs_every_mobilenet_variant(tmp_path, capsys):
    out = tmp_path / "runs.csv"
    assert main(["measure", "paper", "--arch", "mobilenet_v1", "--batch", "1", "--size", "32",
                 "--mode", "forward", "--no-memory", "--quiet", "--out", str(out), *QUICK]) == 0
    frame = read_runs(out)
    assert len(frame) == 11  # Table III: E2GC G = 1..32, FgGC g = 2..32
    assert set(zip(frame["variant"], frame["group"])) == {
        ("e2gc", g) for g in (1, 2, 4, 8, 16, 32)
    } | {("fggc", g) for g in (2, 4, 8, 16, 32)}
    assert main(["measure", "paper", "--arch", "alexnet", "--out", str(out)]) == 2
    assert "unknown architecture 'alexnet'" in capsys.readouterr().err


def test_huge_layer_is_refused_up_front_with_the_bytes(tmp_path, capsys):
    out = tmp_path / "runs.csv"
    code = main(["measure", "layer", "--in-channels", "1000000000", "--out-channels", "64", "--size", "14",
                 "--groups", "1", "--method", "gc", "--out", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    # forward_backward, float32, gc N=1: weights 64*1e9*9 and input+output 14*14*(1e9+64),
    # each twice (gradients), 4 bytes each
    needed = 2 * 4 * (64 * 10**9 * 9 + 14 * 14 * (10**9 + 64))
    assert f"needs at least 5.62 TiB ({needed:,} bytes)" in err  # 6.176e12 / 2**40 = 5.617
    assert err.startswith("groupconv: error: measuring gc 1000000000->64") and err.count("\n") == 1
    assert not out.exists()


def test_smallest_network_in_training_mode_is_refused_or_runs(tmp_path, capsys):
    out = tmp_path / "runs.csv"
    base = ["measure", "network", "mobilenet_v1", "--variant", "e2gc", "--groups", "32", "--out", str(out),
            "--quiet", *QUICK]
    assert main(base + ["--size", "32", "--batch", "1"]) == 2
    err = capsys.readouterr().err
    assert "image_size=32 with batch=1 leaves a 1x1 map" in err and err.count("\n") == 1
    # each way out the message offers runs on real torch batch norm
    assert main(base + ["--size", "32", "--batch", "2"]) == 0
    assert main(base + ["--size", "33", "--batch", "1"]) == 0
    assert main(base + ["--size", "32", "--batch", "1", "--mode", "forward"]) == 0
    assert len(read_runs(out)) == 3


def test_network_summary_has_no_method_column(tmp_path, capsys):
    out = tmp_path / "runs.csv"
    assert main(["measure", "network", "mobilenet_v1", "--variant", "e2gc", "--groups", "32",
                 "--size", "32", "--batch", "2", "--mode", "forward", "--out", str(out), *QUICK]) == 0
    printed = capsys.readouterr()
    header = printed.out.splitlines()[1].split()
    assert "method" not in header and header[:3] == ["arch", "variant", "group"]
    assert "measure:" not in printed.err  # stderr is not a terminal here: no progress bar


def test_ctrl_c_says_how_many_rows_were_kept_and_a_rerun_resumes(tmp_path, capsys, monkeypatch):
    from groupconv.measure import campaign

    real = campaign._measure_one
    calls = []

    def interrupted_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a measurement
        return real(*args, **kwargs)

    monkeypatch.setattr(campaign, "_measure_one", interrupted_on_the_second)
    out = tmp_path / "runs.csv"
    argv = ["measure", "layer", "--in-channels", "8", "--out-channels", "8", "--size", "4",
            "--groups", "2", "4", "--method", "gc", "--out", str(out), "--quiet", *QUICK]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err == (f"groupconv: interrupted: kept 1 row in {out} (1 measured now, 1 not yet); "
                   "run the same command again to resume\n")
    monkeypatch.setattr(campaign, "_measure_one", real)
    assert main(argv[:-len(QUICK) - 1] + QUICK) == 0
    assert "measured 1, already there 1" in capsys.readouterr().out
    assert len(read_runs(out)) == 2


def test_resumed_truncated_file_warns_in_one_line(tmp_path, capsys):
    out = tmp_path / "runs.csv"
    argv = ["measure", "layer", "--in-channels", "8", "--out-channels", "8", "--size", "4",
            "--groups", "2", "4", "--method", "gc", "--out", str(out), *QUICK]
    assert main(argv) == 0
    text = out.read_text()
    out.write_text(text[: len(text) - 40])  # killed in the middle of writing the last row
    capsys.readouterr()
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == (f"groupconv: warning: {out} line 3 was cut short (killed while writing); "
                            "dropping it, that configuration will be measured again\n")
    assert "measured 1, already there 1" in captured.out


@pytest.mark.parametrize("size", [33, 64, 100])
def test_network_memory_bound_is_below_the_counted_activations(size):
    from groupconv.measure.workloads import NetworkWorkload
    from groupconv.networks import build_module, count_module

    torch = pytest.importorskip("torch")
    work = NetworkWorkload("mobilenet_v1", "e2gc", 4, batch=2, mode="forward", image_size=size)
    with torch.no_grad():
        counted = count_module(build_module("mobilenet_v1", "e2gc", 4, device="meta"), (1, 3, size, size))
    convs = [layer for layer in counted.layers if layer.kind == "conv"]
    exact = 4 * (sum(layer.params for layer in counted.layers) + 2 * sum(layer.activations for layer in convs))
    bound = work.min_memory_bytes("float32")
    assert 0.6 * exact < bound <= exact  # a lower bound, and not a loose one
