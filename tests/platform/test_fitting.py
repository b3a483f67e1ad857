"""fitting: a platform fitted from calibration rows (kernel models, correction, E2GC)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from groupconv.errors import GroupConvError
from groupconv.platform import fit_platform
from groupconv.platform.fitting import group_factors


def _row(key, phase, kind, kernel, time_s, macs=0, nbytes=0, groups=1, spec=None, batch=1, op=""):
    return {"key": key, "phase": phase, "kind": kind, "spec": json.dumps(spec or {}), "kernel": kernel, "op": op,
            "batch": batch, "copies": 1, "calls": 1, "macs": macs, "bytes": nbytes, "groups": groups,
            "cin_per_group": 1, "cout_per_group": 1, "out_pixels": 1, "taps": 1, "outer": 1,
            "time_s": time_s, "time_std_s": 0.0, "energy_J": None}


def test_fit_platform_recovers_synthetic_laws():
    """Rows generated from t = 3 us + bytes / 20 GB/s: the fitted model predicts them back."""
    rows = [_row("tiny", "roofline", "tiny", "activation", 2e-6, nbytes=8)]
    rows.append(_row("gemm", "roofline", "linear", "matmul", 1e-2, macs=5e8, nbytes=1e7))
    rng = np.random.default_rng(0)
    for i, b in enumerate(rng.uniform(1e4, 1e8, 30)):
        rows.append(_row(f"bn{i}", "op", "bn", "norm", 3e-6 + b / 2e10, nbytes=b))
    platform = fit_platform(rows, device="cpu", metadata={"threads": 1, "dtype": "float32"})
    assert platform.roofline.peak_macs_per_s == pytest.approx(5e10)  # 5e8 MACs in 10 ms
    assert platform.roofline.bandwidth_bytes_per_s == pytest.approx(max(b / (3e-6 + b / 2e10) for b in
                                                                        [float(r["bytes"]) for r in rows[2:]]))
    assert platform.roofline.fixed_s == 2e-6
    norm = platform.time_models["norm"]
    assert norm.fit_mape < 0.02
    assert norm.c0 == pytest.approx(3e-6, rel=0.1)
    assert math.isclose(platform.network_correction.time_factor, 1.0)
    assert "not fitted" in platform.e2gc["note"]  # no conv points: the E2GC law is not fitted, and says so


def test_fit_platform_needs_microbenchmarks():
    with pytest.raises(GroupConvError, match="budget"):
        fit_platform([_row("bn", "op", "bn", "norm", 1e-5, nbytes=1e5)], device="cpu", metadata={})


def testgroup_factors_recover_known_corrections():
    """y = 1.3 * conv + 0.7 * matmul + 1.0 * norm + 0.8 * memory: recovered (weak ridge), and
    bounded to [prior / 2, 2 prior]."""
    rng = np.random.default_rng(3)
    T = rng.uniform(0.1, 1.0, (24, 4)) * np.array([1.0, 0.5, 0.2, 0.3])
    truth = np.array([1.3, 0.7, 1.0, 0.8])
    a = group_factors(T, T @ truth, prior=1.0, strength=1e-4)
    assert a == pytest.approx(truth, rel=1e-3)
    # a group no network uses stays at the prior
    T[:, 2] = 0.0
    a = group_factors(T, T @ truth, prior=1.1, strength=1e-4)
    assert a[2] == 1.1 and a[0] == pytest.approx(1.3, rel=1e-3)
    # a factor the data push below prior / 2 stops there
    a = group_factors(T, T @ np.array([1.0, 0.1, 1.0, 1.0]), prior=1.0, strength=1e-4)
    assert a[1] == pytest.approx(0.5)


def test_a_fused_spec_the_cpu_ran_unfused_is_not_fitted_as_its_largest_op():
    """An MHA spec with an odd head count runs as a dozen small ops (no fast path): its row,
    named after its largest op (an mm), times them all and would inflate the matmul model.
    The rule is checked on the real dispatch: 3 heads give the decomposition, 4 the fused op."""
    import torch
    from torch import nn

    from groupconv.networks import count_module
    from groupconv.platform.fitting import dispatched_as_specified
    from groupconv.platform.models import features_of

    def recorded_kernel(heads):
        att = nn.MultiheadAttention(48, heads, batch_first=True).eval()

        class M(nn.Module):
            def forward(self, x):
                return att(x, x, x, need_weights=False)[0]

        with torch.no_grad():
            feats = [features_of(o) for o in count_module(M(), (torch.randn(2, 10, 48),), device="cpu").ops]
        return max(feats, key=lambda f: (f.kernel != "view", f.macs, f.bytes)).kernel

    assert recorded_kernel(4) == "mha" and recorded_kernel(3) == "matmul"
    assert dispatched_as_specified({"kind": "mha", "kernel": "mha"})
    assert not dispatched_as_specified({"kind": "mha", "kernel": recorded_kernel(3)})
    assert not dispatched_as_specified({"kind": "enclayer", "kernel": "matmul"})
    assert dispatched_as_specified({"kind": "tlinear", "kernel": "matmul"})


def test_the_fit_keeps_each_networks_fastest_round():
    """A network timed twice, minutes apart (``network_specs(round=1)``), enters the
    correction once, with its faster time; networks that differ in batch stay apart."""
    import json

    from groupconv.platform.fitting import fastest_round
    from groupconv.platform.specs import network_specs

    first, second = network_specs(), network_specs(round=1)
    assert len(first) == len(second) and not {s.key for s in first} & {s.key for s in second}
    assert all("round" not in s.p for s in first) and all(s.p["round"] == 1 for s in second)

    def row(spec, t):
        return {"kind": spec.kind, "spec": json.dumps(spec.p, sort_keys=True), "time_s": t, "key": spec.key}

    rows = [row(first[0], 2e-3), row(first[1], 1e-3), row(second[0], 1.5e-3), row(second[1], 1.2e-3)]
    kept = fastest_round(rows)
    assert [(r["key"], r["time_s"]) for r in kept] == [(second[0].key, 1.5e-3), (first[1].key, 1e-3)]
