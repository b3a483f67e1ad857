"""What a measurement ran on: device, driver, library versions, clocks.

Everything here is best effort: a value that cannot be read is None (an empty CSV cell),
never a guess. torch is imported inside the functions.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass

from ..errors import GroupConvError

__all__ = ["Environment", "describe_environment", "read_clocks", "resolve_device"]


@dataclass(frozen=True)
class Environment:
    """The metadata columns of a runs CSV (see :mod:`groupconv.measure.schema`)."""

    device: str
    driver: str | None
    torch_version: str
    cuda_version: str | None
    cudnn_version: str | None
    cudnn_benchmark: bool | None
    threads: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def resolve_device(device: str) -> str:
    """Check a device string ("cpu", "cuda", "cuda:N") against this machine; canonical form.

    Raises
    ------
    GroupConvError
        For an unknown device string, or CUDA requested where torch sees no GPU.
    """
    import torch

    if not isinstance(device, str):
        raise GroupConvError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if device == "cpu":
        return "cpu"
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise GroupConvError(f"device {device!r} requested but torch sees no CUDA GPU")
        index = int(device[5:]) if ":" in device else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise GroupConvError(
                f"device {device!r}: torch sees {torch.cuda.device_count()} GPU(s)"
            )
        return f"cuda:{index}"
    raise GroupConvError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _cpu_clock_MHz() -> float | None:
    """Mean current core clock from /proc/cpuinfo ("cpu MHz"), if the kernel shows it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            values = [
                float(line.split(":", 1)[1])
                for line in handle
                if line.lower().startswith("cpu mhz")
            ]
    except (OSError, ValueError):
        return None
    return sum(values) / len(values) if values else None


def _nvml_query(index: int) -> dict[str, object] | None:
    """Driver version and current SM/memory clocks via NVML (nvidia-ml-py), if importable."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        driver = pynvml.nvmlSystemGetDriverVersion()
        return {
            "driver": driver.decode() if isinstance(driver, bytes) else str(driver),
            "sm": float(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)),
            "mem": float(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM)),
        }
    except Exception:  # NVML missing or refusing: fall back to nvidia-smi
        return None


def _smi_query(index: int) -> dict[str, object] | None:
    """The same through ``nvidia-smi --query-gpu`` when NVML's Python binding is absent."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    try:
        done = subprocess.run(
            [
                executable,
                "--query-gpu=driver_version,clocks.sm,clocks.mem",
                "--format=csv,noheader,nounits",
                "--id",
                str(index),
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        driver, sm, mem = (field.strip() for field in done.stdout.strip().split(","))
        return {"driver": driver, "sm": float(sm), "mem": float(mem)}
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _gpu_query(index: int) -> dict[str, object] | None:
    return _nvml_query(index) or _smi_query(index)


def _physical_gpu_index(device: str) -> int:
    """NVML index of a torch device, honouring a plain CUDA_VISIBLE_DEVICES list."""
    import os

    index = int(device.split(":")[1])
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if entries and all(e.isdigit() for e in entries) and index < len(entries):
        return int(entries[index])
    return index


def read_clocks(device: str) -> tuple[float | None, float | None]:
    """(SM or core clock, memory clock) in MHz now; None where unreadable."""
    if device == "cpu":
        return _cpu_clock_MHz(), None
    info = _gpu_query(_physical_gpu_index(device))
    if info is None:
        return None, None
    return info["sm"], info["mem"]  # type: ignore[return-value]


def describe_environment(device: str) -> Environment:
    """Device name, driver, torch/CUDA/cuDNN versions and settings for ``device``."""
    import torch

    device = resolve_device(device)
    if device == "cpu":
        return Environment(
            device=_cpu_name(),
            driver=None,
            torch_version=torch.__version__,
            cuda_version=torch.version.cuda,
            cudnn_version=None,
            cudnn_benchmark=None,
            threads=torch.get_num_threads(),
        )
    info = _gpu_query(_physical_gpu_index(device))
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return Environment(
        device=torch.cuda.get_device_name(torch.device(device)),
        driver=None if info is None else str(info["driver"]),
        torch_version=torch.__version__,
        cuda_version=torch.version.cuda,
        cudnn_version=None if cudnn is None else str(cudnn),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
        threads=torch.get_num_threads(),
    )
