"""tools/install_torch.py: which torch build it picks, with fakes only at the hardware
boundary (a fake ``nvidia-smi`` on PATH) and a real local HTTP server for the index check."""

from __future__ import annotations

import http.server
import importlib.util
import socket
import stat
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("install_torch", ROOT / "tools" / "install_torch.py")
it = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(it)


def _fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stdout: str, rc: int) -> None:
    exe = tmp_path / "nvidia-smi"
    exe.write_text(f"#!/bin/sh\nprintf '%s' '{stdout}'\nexit {rc}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_gpu_seen_through_nvidia_smi(tmp_path, monkeypatch):
    _fake_nvidia_smi(tmp_path, monkeypatch, "GPU 0: NVIDIA H200 (UUID: GPU-1)\n", 0)
    assert it.has_cuda_gpu()


def test_no_gpu_when_nvidia_smi_fails_or_is_missing(tmp_path, monkeypatch):
    _fake_nvidia_smi(tmp_path, monkeypatch, "NVIDIA-SMI has failed: no driver\n", 9)
    assert not it.has_cuda_gpu()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert not it.has_cuda_gpu()


def test_pip_command_per_case():
    version = it.TORCH_VERSION
    gpu, _ = it.pip_command(True, "linux", cpu_index_ok=True)
    assert gpu == ["pip", "install", f"torch=={version}"]  # PyPI's Linux wheel: the CUDA build
    cpu, note = it.pip_command(False, "linux", cpu_index_ok=True)
    assert cpu == ["pip", "install", f"torch=={version}", "--index-url", it.CPU_INDEX]
    assert "CPU build" in note
    fallback, note = it.pip_command(False, "linux", cpu_index_ok=False)
    assert fallback == ["pip", "install", f"torch=={version}"]
    assert it.CPU_INDEX in note  # tells the user how to get the CPU build elsewhere
    mac, _ = it.pip_command(False, "darwin", cpu_index_ok=False)
    assert mac == ["pip", "install", f"torch=={version}"]


def test_pinned_version_satisfies_the_extras():
    text = (ROOT / "pyproject.toml").read_text()
    low = text.split('"torch>=')[1].split('"')[0]
    assert tuple(map(int, low.split("."))) <= tuple(map(int, it.TORCH_VERSION.split(".")))


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path == "/whl/cpu/torch/" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_index_reachable_against_a_local_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert it.index_reachable(f"http://127.0.0.1:{port}/whl/cpu", timeout_s=5)
        assert not it.index_reachable(f"http://127.0.0.1:{port}/other", timeout_s=5)
    finally:
        server.shutdown()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert not it.index_reachable(f"http://127.0.0.1:{closed}/whl/cpu", timeout_s=2)


def test_dry_run_prints_the_command_and_installs_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    monkeypatch.setattr(it, "index_reachable", lambda url, timeout_s=5.0: False)
    assert it.main(["--dry-run"]) == 0
    err = capsys.readouterr().err
    assert f"-m pip install torch=={it.TORCH_VERSION}" in err
    assert "did not answer" in err
