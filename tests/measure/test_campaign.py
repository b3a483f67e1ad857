"""Campaigns on real CPU convolutions: rows, resume after an interruption, energy via fake Zeus."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from groupconv.errors import GroupConvError  # noqa: E402
from groupconv.measure import (  # noqa: E402
    LayerWorkload,
    Protocol,
    layer_workloads,
    read_runs,
    run_campaign,
)
from groupconv.measure import energy  # noqa: E402
from groupconv.measure.schema import KEY_COLUMNS  # noqa: E402
from measure_fakes import FakeZeusState, hide_zeus, install_fake_zeus  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FAST = Protocol(warmup=1, warmup_s=0, trials=2, min_window_s=0.003)


def small_workloads():
    return layer_workloads(8, 8, 3, 6, groups=[2, 4], methods=["dense", "gc", "bgc"], batches=[1, 2])


def test_layer_workloads_are_unique_and_dense_ignores_groups():
    work = small_workloads()
    assert len(work) == 10  # dense x 2 batches + (gc, bgc) x 2 groups x 2 batches
    assert len(set(work)) == len(work)
    assert {w.groups for w in work if w.method == "dense"} == {1}
    dw = layer_workloads(8, 16, 3, 6, groups=[2, 4], methods=["dw"], batches=[1])
    assert [w.groups for w in dw] == [8]


def test_workload_counts_follow_the_papers():
    gc = LayerWorkload("gc", 64, 128, 3, 14, 14, 4, 1)
    bgc = LayerWorkload("bgc", 64, 128, 3, 14, 14, 4, 1)
    assert gc.macs == 9 * 64 * 128 * 14 * 14 // 4
    assert bgc.macs == 2 * 9 * 128 * 64 * 14 * 14 // 4  # Eq. 3.14: 2 K D m n / N
    assert bgc.params == 2 * 9 * 128 * 64 // 4  # Table 1: 2 K m n / N
    module, _ = bgc.build()
    assert sum(p.numel() for p in module.parameters()) == bgc.params


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda: LayerWorkload("gc", 8, 8, 3, 6, 6, 3, 1), "in_channels=8 is not divisible by groups=3"),
        (lambda: LayerWorkload("dense", 8, 8, 3, 6, 6, 2, 1), "groups=1"),
        (lambda: LayerWorkload("gc", 8, 8, 3, 6, 6, 2, 0), "batch must be a positive integer, got 0"),
        (lambda: LayerWorkload("gc", 8, 8, 3, 6, 6, 2, 1, "train"), "unknown mode 'train'"),
        (lambda: layer_workloads(8, 8, 3, 6, groups=[], methods=["gc"]), "groups is empty"),
    ],
)
def test_bad_workloads_fail_before_anything_runs(call, needle):
    with pytest.raises(GroupConvError, match=needle):
        call()


def test_campaign_writes_one_row_per_configuration(tmp_path):
    out = tmp_path / "runs.csv"
    work = small_workloads()
    report = run_campaign(work, out, protocol=FAST, energy="none", progress=False, threads=1)
    assert (report.measured, report.skipped, report.energy_source) == (10, 0, "none")
    frame = read_runs(out)
    assert len(frame) == 10
    assert set(frame["method"]) == {"dense", "gc", "bgc"}
    assert (frame["time_s"] > 0).all() and frame["energy_J"].isna().all()
    assert (frame["energy_source"] == "none").all() and frame["idle_power_W"].isna().all()
    assert (frame["threads"] == 1).all() and (frame["mode"] == "forward_backward").all()
    assert (frame["torch_version"] == torch.__version__).all()
    for row in frame.itertuples():
        w = LayerWorkload(row.method, 8, 8, 3, 6, 6, row.groups, row.batch)
        assert row.macs == w.macs and row.params == w.params
    assert (frame["peak_memory_batch_bytes"] > 0).all()
    assert report.frame().shape == frame.shape


def test_interrupted_campaign_resumes_each_configuration_once(tmp_path):
    out = tmp_path / "runs.csv"
    work = small_workloads()
    written = []

    def interrupt_after_two(row):
        written.append(row)
        if len(written) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_campaign(work, out, protocol=FAST, energy="none", progress=False, on_row=interrupt_after_two)
    first = read_runs(out)
    assert len(first) == 2
    report = run_campaign(work, out, protocol=FAST, energy="none", progress=False)
    assert (report.measured, report.skipped) == (8, 2)
    frame = read_runs(out)
    assert len(frame) == 10
    assert not frame.duplicated(subset=list(KEY_COLUMNS)).any()
    # The first two rows were kept as they were, not measured again.
    assert frame.iloc[:2].equals(first)
    again = run_campaign(work, out, protocol=FAST, energy="none", progress=False)
    assert (again.measured, again.skipped) == (0, 10) and len(read_runs(out)) == 10


@pytest.mark.slow
def test_killed_cli_campaign_resumes(tmp_path):
    """SIGKILL a real ``groupconv measure layer`` run mid-way, run it again: each row once."""
    out = tmp_path / "runs.csv"
    command = [
        sys.executable, "-m", "groupconv", "measure", "layer", "--in-channels", "8",
        "--out-channels", "8", "--kernel", "3", "--size", "6", "--groups", "1", "2", "4", "8",
        "--method", "gc", "bgc", "--batch", "1", "2", "--trials", "2", "--warmup-seconds", "0",
        "--min-window", "0.03", "--threads", "1", "--energy", "none", "--no-memory", "--quiet",
        "--out", str(out),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if out.exists() and len(out.read_text().splitlines()) >= 3:  # header + 2 rows
                break
            if process.poll() is not None:
                pytest.fail("the campaign ended before it could be killed")
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    done_before = len(read_runs(out))
    assert 2 <= done_before < 16
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    frame = read_runs(out)
    assert len(frame) == 16
    assert not frame.duplicated(subset=list(KEY_COLUMNS)).any()


def test_campaign_energy_and_idle_power_from_zeus(tmp_path, monkeypatch):
    monkeypatch.setattr(energy, "_AVAILABLE", {})
    install_fake_zeus(monkeypatch, FakeZeusState(cpu_power_W=30.0, dram_power_W=5.0))
    out = tmp_path / "runs.csv"
    work = layer_workloads(8, 8, 3, 6, groups=[2], methods=["gc", "bgc"], batches=[2])
    report = run_campaign(work, out, protocol=FAST, energy="auto", idle_s=0.05, progress=False)
    assert report.energy_source == "zeus-rapl"
    assert report.idle_power_W == pytest.approx(35.0, rel=0.1)
    frame = read_runs(out)
    assert (frame["energy_source"] == "zeus-rapl").all()
    assert (frame["idle_power_W"] == report.idle_power_W).all()
    # Window defaults: max(min window, 20 x 1 ms RAPL period) = 20 ms.
    assert (frame["window_s"] >= 0.8 * 0.02).all()
    for row in frame.itertuples():
        assert math.isfinite(row.energy_J) and row.energy_J == pytest.approx(35.0 * row.time_s, rel=0.2)


def test_zeus_requested_but_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(energy, "_AVAILABLE", {})
    hide_zeus(monkeypatch)
    with pytest.raises(GroupConvError, match="zeus is not installed"):
        run_campaign(small_workloads(), tmp_path / "runs.csv", protocol=FAST, energy="zeus", progress=False)
    assert not (tmp_path / "runs.csv").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    with pytest.raises(GroupConvError, match="torch sees no CUDA GPU"):
        run_campaign(small_workloads(), tmp_path / "runs.csv", device="cuda", progress=False)


def test_bad_campaign_arguments(tmp_path):
    with pytest.raises(GroupConvError, match="unknown dtype 'float8'"):
        run_campaign(small_workloads(), tmp_path / "r.csv", dtype="float8", progress=False)
    with pytest.raises(GroupConvError, match="device must be"):
        run_campaign(small_workloads(), tmp_path / "r.csv", device="gpu0", progress=False)
    with pytest.raises(GroupConvError, match="unknown energy source 'rapl'"):
        run_campaign(small_workloads(), tmp_path / "r.csv", energy="rapl", progress=False)


def test_network_campaign_on_small_images(tmp_path):
    from groupconv.measure import network_workloads
    from groupconv.networks import build_network

    out = tmp_path / "runs.csv"
    work = network_workloads("mobilenet_v1", "e2gc", [16, 32], batches=[2], modes=["forward_backward"], image_size=32)
    report = run_campaign(work, out, protocol=FAST, energy="none", progress=False)
    assert report.measured == 2
    frame = read_runs(out)
    assert list(frame["group"]) == [16, 32] and (frame["method"] == "network").all()
    assert (frame["workload"] == "network").all() and (frame["height"] == 32).all()
    assert frame["in_channels"].isna().all() and frame["groups"].isna().all()
    for row in frame.itertuples():
        network = build_network("mobilenet_v1", "e2gc", row.group)
        assert row.params == network.total_params  # the torch module matches the catalogue
        assert 0 < row.macs < network.macs  # 32 x 32 images cost less than 224 x 224
    assert (frame["time_s"] > 0).all() and (frame["peak_memory_batch_bytes"] > 0).all()


def test_network_workload_macs_at_224_are_the_catalogue_s():
    from groupconv.measure import NetworkWorkload
    from groupconv.networks import build_network

    workload = NetworkWorkload("resnext50", "fggc", 32, 1)
    assert workload.macs == build_network("resnext50", "fggc", 32).macs
    # The count of the real module (meta device) agrees with the catalogue.
    assert workload._count().macs == workload.macs


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"arch": "vgg16"}, "unknown architecture 'vgg16'"),
        ({"variant": "gc"}, "unknown variant 'gc'"),
        ({"image_size": 16}, "image_size must be at least 32"),
        ({"group": 3}, "3"),
    ],
)
def test_bad_network_workloads(kwargs, needle):
    from groupconv.measure import NetworkWorkload

    args = {"arch": "mobilenet_v1", "variant": "e2gc", "group": 8, "batch": 1, **kwargs}
    with pytest.raises(GroupConvError, match=needle):
        NetworkWorkload(**args)
