#!/usr/bin/env python3
"""Install the torch build that fits this machine, before ``pip install -e ".[test]"``.

PyPI's Linux wheel of torch is the CUDA build: on a machine without a GPU it brings the
whole CUDA stack (a ~5.9 GB environment instead of ~1.5 GB). So:

- a CUDA GPU present (``nvidia-smi -L`` lists one): ``pip install torch==VERSION``, the CUDA
  build;
- no GPU, on Linux: the CPU build from PyTorch's CPU index, if that index answers within a few
  seconds; otherwise the plain pinned wheel, with a note (on a machine whose package index
  holds a CPU build, such as a local wheel cache, that is the CPU build);
- macOS and Windows: ``pip install torch==VERSION`` (PyPI's wheels there have no CUDA stack).

The pinned version satisfies the ``torch>=...`` of every extra, so the ``pip install -e``
that follows installs no second torch. Needs nothing but the standard library.

Usage: ``python tools/install_torch.py [--dry-run]``
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

__all__ = ["TORCH_VERSION", "CPU_INDEX", "has_cuda_gpu", "index_reachable", "pip_command", "main"]

#: The torch release the project is tested with.
TORCH_VERSION = "2.13.0"
#: PyTorch's index of CPU-only wheels.
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def has_cuda_gpu() -> bool:
    """Whether an NVIDIA GPU is visible: ``nvidia-smi -L`` exits 0 and lists a ``GPU``."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        done = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and "GPU" in done.stdout


def index_reachable(url: str, timeout_s: float = 5.0) -> bool:
    """Whether ``url`` answers an HTTP request within ``timeout_s`` seconds."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/torch/", timeout=timeout_s) as response:
            return 200 <= response.status < 400
    except (OSError, urllib.error.URLError, ValueError):
        return False


def pip_command(gpu: bool, platform: str, cpu_index_ok: bool, version: str = TORCH_VERSION) -> tuple[list[str], str]:
    """The pip command (after ``python -m``) to run, and a one-line note on why."""
    base = ["pip", "install", f"torch=={version}"]
    if gpu:
        return base, "CUDA GPU found: installing the CUDA build of torch"
    if not platform.startswith("linux"):
        return base, f"no CUDA GPU on {platform}: PyPI's torch wheel here is the CPU build"
    if cpu_index_ok:
        return base + ["--index-url", CPU_INDEX], f"no CUDA GPU: installing the CPU build from {CPU_INDEX}"
    return base, (
        f"no CUDA GPU, and {CPU_INDEX} did not answer: installing the pinned wheel from the "
        "configured package index (a CPU build only if that index holds one; otherwise run "
        f"'pip install torch=={version} --index-url {CPU_INDEX}' where that index is reachable)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install the torch build that fits this machine.")
    parser.add_argument("--dry-run", action="store_true", help="print the pip command, run nothing")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the CPU index (default 5)")
    args = parser.parse_args(argv)
    gpu = has_cuda_gpu()
    ok = (not gpu) and sys.platform.startswith("linux") and index_reachable(CPU_INDEX, args.timeout)
    command, note = pip_command(gpu, sys.platform, ok)
    full = [sys.executable, "-m", *command]
    print(f"install_torch: {note}", file=sys.stderr)
    print(f"install_torch: {' '.join(full)}", file=sys.stderr)
    if args.dry_run:
        return 0
    return subprocess.call(full)


if __name__ == "__main__":
    sys.exit(main())
