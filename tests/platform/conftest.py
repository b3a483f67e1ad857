"""Shared helpers: a hand-built platform with known coefficients."""

from __future__ import annotations

import math

import pytest

from groupconv.platform import KernelModel, Platform, Roofline


def known_model(kernel: str, features: tuple[str, ...], c0: float, theta: tuple[float, ...]) -> KernelModel:
    return KernelModel(kernel=kernel, features=features, c0=c0, theta=theta, c0_stderr=0.0,
                       theta_stderr=tuple(0.0 for _ in theta), n=10, fit_mape=0.0, cv_mape=None)


@pytest.fixture
def hand_platform() -> Platform:
    """t = 1e-6 + 1e-9 * bytes for norm/activation, t = 2e-6 + 1e-10 * macs for every conv path."""
    conv = ("log_macs", "log_bytes", "log_cin_per_group", "log_cout_per_group", "log_out_pixels", "log_taps",
            "log_groups")
    lin = (math.log(1e-10), 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    models = {k: known_model(k, conv, 2e-6, lin) for k in ("conv_mkldnn", "conv_slow", "conv_dw")}
    for k in ("norm", "activation"):
        models[k] = known_model(k, ("log_bytes",), 1e-6, (math.log(1e-9), 1.0))
    return Platform(
        device="cpu",
        metadata={"device_name": "hand", "threads": 1, "dtype": "float32"},
        roofline=Roofline(peak_macs_per_s=1e12, bandwidth_bytes_per_s=1e12, fixed_s=1e-7),
        time_models=models,
    )
