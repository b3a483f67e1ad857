"""Fitting a platform from calibration rows: kernel models, network correction, E2GC.

:func:`fit_platform` turns the rows of a calibration runs CSV (dicts with
:data:`~groupconv.platform.runs.RUN_COLUMNS`) into a :class:`~groupconv.platform.Platform`:

1. **Roofline** constants: the best measured MAC/s and bytes/s, the one-element op's time.
2. **Kernel models** (:func:`~groupconv.platform.models.fit_kernel_model`), one per kernel
   type, and one per operator of a memory-bound class where it has enough points. The
   features of each row come from the same per-operator counter that prediction uses, so
   what is learned on operators transfers to networks.
3. **Network correction** (:func:`fit_network_correction`): whole synthetic networks
   against their summed per-op predictions, one factor per correction group
   (:func:`group_factors`), with leave-one-out errors: a
   :class:`~groupconv.platform.correction.NetworkCorrection`.
4. **E2GC** (:func:`fit_e2gc`): the E2GC paper's law (Eq. 1) fitted to the conv points.

torch is imported only to rebuild and trace the synthetic networks of step 3.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence

import numpy as np

from ..errors import GroupConvError
from .backward import fit_backward_models
from .correction import CORRECTION_GROUPS, FACTOR_RANGE, NetworkCorrection, correction_group
from .models import KERNELS, KernelModel, Roofline, fit_kernel_model
from .modules import network_input, synthetic_network
from .platform import Platform
from .runs import row_features, row_value
from .specs import FUSED_SPEC_KERNELS
from .predict import trace_counts

__all__ = ["dispatched_as_specified", "fastest_round", "fit_platform", "fit_network_correction", "fit_e2gc", "group_factors", "predict_network_raw"]


def fit_platform(rows: Sequence[dict[str, object]], *, device: str, metadata: dict[str, object]) -> Platform:
    """Fit a :class:`Platform` from calibration rows (dicts with
    :data:`~groupconv.platform.runs.RUN_COLUMNS`; see the module docstring)."""
    if not rows:
        raise GroupConvError("no calibration rows to fit a platform from")
    ops = [r for r in rows if r["phase"] in ("op", "roofline") and r["kernel"] != "network"]
    nets = fastest_round([r for r in rows if r["phase"] == "network"])
    # roofline constants
    peak = max((row_value(r, "macs") / row_value(r, "time_s") for r in ops if row_value(r, "macs")), default=float("nan"))
    bw = max((row_value(r, "bytes") / row_value(r, "time_s") for r in ops if row_value(r, "bytes") and not row_value(r, "macs")), default=float("nan"))
    tiny = [row_value(r, "time_s") for r in rows if r["kind"] == "tiny"]
    fixed = min(tiny) if tiny else min(row_value(r, "time_s") for r in ops)
    if not math.isfinite(peak) or not math.isfinite(bw):
        raise GroupConvError("the calibration has no compute or no memory microbenchmark: raise --budget-s")
    roof = Roofline(peak, bw, fixed)
    # per-kernel models (time; energy where measured), per call
    by_kernel: dict[str, list[dict[str, object]]] = {}
    for r in ops:
        if r["kind"] == "tiny" or not dispatched_as_specified(r):
            continue
        by_kernel.setdefault(str(r["kernel"]), []).append(r)
    time_models: dict[str, KernelModel] = {}
    energy_models: dict[str, KernelModel] = {}
    has_energy = all(row_value(r, "energy_J") for r in ops) and bool(ops)
    def fit_group(kernel: str, name: str, krows: list[dict[str, object]]) -> None:
        calls = [max(1, int(float(r["calls"]))) for r in krows]
        feats = [row_features(r, c) for r, c in zip(krows, calls)]
        time_models[name] = fit_kernel_model(kernel, feats, [row_value(r, "time_s") / c for r, c in zip(krows, calls)],
                                             name=name)
        if has_energy:
            energy_models[name] = fit_kernel_model(
                kernel, feats, [row_value(r, "energy_J") / c for r, c in zip(krows, calls)], quantity="energy_J", name=name
            )

    for kernel, krows in sorted(by_kernel.items()):
        if kernel not in KERNELS:
            continue
        fit_group(kernel, kernel, krows)
        if kernel.startswith("conv") or kernel == "matmul":
            continue  # compute kernels: one model over their operators (mm and addmm are one GEMM)
        # one model per operator of a memory-bound class (relu and gelu differ), where measured enough
        by_op: dict[str, list[dict[str, object]]] = {}
        for r in krows:
            by_op.setdefault(str(r["op"]), []).append(r)
        if len(by_op) > 1:
            for op, orows in sorted(by_op.items()):
                if len(orows) >= 5:
                    fit_group(kernel, f"{kernel}:{op}", orows)
    # the backward kernels, measured on their own (platform/backward.py): "backward:<kernel>[:<op>]"
    time_models.update(fit_backward_models(rows))
    platform = Platform(device=device, metadata=metadata, roofline=roof, time_models=time_models,
                        energy_models=energy_models)
    correction = fit_network_correction(platform, nets)
    e2gc = fit_e2gc(ops, has_energy)
    metadata = dict(metadata)
    metadata["points_per_model"] = {k: m.n for k, m in time_models.items()}
    validation = {
        "kernels": {k: {"n": m.n, "fit_mape": m.fit_mape, "cv_mape": m.cv_mape} for k, m in time_models.items()},
        "networks": [dict(n) for n in correction.networks or ()],
    }
    return Platform(device=device, metadata=metadata, roofline=roof, time_models=time_models,
                    energy_models=energy_models, network_correction=correction, e2gc=e2gc, validation=validation)


def fastest_round(nets: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """One row per synthetic network: the fastest of its rounds (rows whose spec differs
    only in ``round``), in the order the networks first appear."""
    best: dict[str, dict[str, object]] = {}
    for r in nets:
        p = json.loads(str(r["spec"]))
        p.pop("round", None)
        name = f"{r['kind']}:{json.dumps(p, sort_keys=True)}"
        if name not in best or row_value(r, "time_s") < row_value(best[name], "time_s"):
            best[name] = r
    return list(best.values())


def dispatched_as_specified(row: dict[str, object]) -> bool:
    """Whether a runs row timed the fused kernel its spec asks for.

    A multi-head-attention or encoder-layer spec the CPU does not send to its fused fast
    path (an odd head count, for one) runs as a dozen small ops; its row is named after
    the largest of them but times them all, so fitting it as that op would inflate the
    op's model. Such rows are kept in the runs file (their time is spent) but not fitted:
    their ops are calibrated on their own.
    """
    wanted = FUSED_SPEC_KERNELS.get(str(row.get("kind", "")))
    return wanted is None or str(row.get("kernel", "")) == wanted


def predict_network_raw(platform: Platform, row: dict[str, object]) -> tuple[dict[str, float], float | None]:
    """Per-frame per-op predictions (no correction) of a synthetic network row, summed per
    correction group (:data:`CORRECTION_GROUPS`), and the energy (or None)."""
    p = json.loads(str(row["spec"]))
    kind = str(row["kind"])
    model = synthetic_network(kind)
    count = trace_counts(platform, model, (network_input(kind, int(p["batch"]), int(p["h"])),))
    ops, batch = count.ops, count.batch
    groups: dict[str, float] = dict.fromkeys(CORRECTION_GROUPS, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for o in ops:
            groups[correction_group(platform.features(o).kernel)] += platform.predict_op(o, warn=False, raw=True) / batch
        e = None
        if platform.has_energy:
            e = sum(platform.predict_op_energy(o, warn=False) or 0.0 for o in ops) / batch
    return groups, e


def group_factors(T: np.ndarray, y: np.ndarray, prior: float, strength: float = 0.5) -> np.ndarray:
    """Factors a (one per group) with y ~ T a on relative residuals, each pulled towards
    ``prior`` (ridge of weight ``strength``) and kept within [prior / 2, 2 prior]: groups a
    network set barely exercises, or exercises only in proportion to another group, stay
    near the overall factor instead of trading off against each other."""
    from scipy.optimize import lsq_linear

    used = T.sum(axis=0) > 0
    A = np.vstack([T / y[:, None], strength * np.eye(T.shape[1])])
    b = np.concatenate([np.ones(len(y)), strength * np.full(T.shape[1], prior)])
    a = lsq_linear(A, b, bounds=(0.5 * prior, 2.0 * prior)).x
    a[~used] = prior
    return a


def fit_network_correction(platform: Platform, nets: Sequence[dict[str, object]]) -> NetworkCorrection:
    """Measured / predicted time of whole synthetic networks, per correction group, with LOO errors."""
    if not nets:
        return NetworkCorrection(time_factor=1.0, n_networks=0, note="no network measured: no correction")
    keys, measured, parts, energies = [], [], [], []
    for r in nets:
        groups, e = predict_network_raw(platform, r)
        keys.append(str(r["key"]))
        measured.append(row_value(r, "time_s") / int(float(r["batch"])))
        parts.append([groups[g] for g in CORRECTION_GROUPS])
        energies.append((row_value(r, "energy_J"), e, int(float(r["batch"]))))
    y, T = np.array(measured), np.array(parts)
    raw = T.sum(axis=1)
    lo, hi = FACTOR_RANGE
    unclipped = float(np.exp(np.mean(np.log(y / raw))))
    factor = float(np.clip(unclipped, lo, hi))
    n = len(y)
    a = group_factors(T, y, factor) if n >= 4 else np.full(len(CORRECTION_GROUPS), factor)
    clipped = unclipped != factor or bool(np.any((a < lo) | (a > hi)))
    a = np.clip(a, lo, hi)
    pred = T @ a
    loo = []
    for i in range(n):
        keep = np.arange(n) != i
        if n >= 5:
            f_i = float(np.exp(np.mean(np.log(y[keep] / raw[keep]))))
            a_i = group_factors(T[keep], y[keep], f_i)
        else:
            a_i = a
        loo.append(abs(float(T[i] @ a_i) / y[i] - 1))
    energy_factor = None
    if platform.has_energy and all(em is not None and ep for em, ep, _ in energies):
        energy_factor = float(np.exp(np.mean(np.log([em / b / ep for em, ep, b in energies]))))
    return NetworkCorrection(
        time_factor=factor,
        factors={g: float(v) for g, v in zip(CORRECTION_GROUPS, a)},
        n_networks=n,
        mape_uncorrected=float(np.mean(np.abs(raw / y - 1))),
        mape_single_factor=float(np.mean(np.abs(raw * factor / y - 1))),
        mape_corrected=float(np.mean(np.abs(pred / y - 1))),
        loo_mape_corrected=float(np.mean(loo)),
        networks=tuple(
            {"key": k, "measured_time_s": float(m), "predicted_time_s": float(p), "uncorrected_time_s": float(r)}
            for k, m, p, r in zip(keys, y, pred, raw)
        ),
        note="whole synthetic networks, measured / predicted: time ~ sum over groups of factor x "
             "summed per-op predictions (non-negative least squares on relative errors, each factor "
             "pulled towards the geometric-mean ratio time_factor); absorbs ops the per-op counts "
             "miss and the difference between an op timed alone and inside a network"
             + (f"; factors clipped to [{lo:g}, {hi:g}] (the fitted geometric-mean ratio was {unclipped:.3g}: "
                "the per-op models are far off, calibrate longer)" if clipped else ""),
        energy_factor=energy_factor,
    )


def fit_e2gc(ops: Sequence[dict[str, object]], has_energy: bool) -> dict[str, object]:
    """The E2GC paper's law (Eq. 1) fitted to the conv calibration points of this platform."""
    import pandas as pd

    from ..cost import ConvLayer
    from ..fit import EnergyData, Workload, fit_model

    convs = [r for r in ops if r["kind"] == "conv"]
    if len(convs) < 3:
        return {"note": "fewer than 3 conv points: the E2GC law was not fitted"}
    quantity = "energy_J" if has_energy else "time_s"
    workloads, y = [], []
    for r in convs:
        p = json.loads(str(r["spec"]))
        ho = (p["h"] + 2 * (p["k"] // 2) - p["k"]) // p["stride"] + 1
        layer = ConvLayer(p["cin"], p["cout"], kernel=p["k"], out_height=ho, out_width=ho, groups=p["groups"],
                          stride=p["stride"], in_height=p["h"], in_width=p["h"])
        workloads.append(Workload((layer,), batch=int(p["batch"]), label=str(r["key"])))
        y.append(row_value(r, quantity) / int(p["batch"]))  # per frame, as the paper's law
    info = pd.DataFrame({"key": [w.label for w in workloads], "batch": [w.batch for w in workloads]})
    data = EnergyData(tuple(workloads), np.array(y), info, source="platform calibration")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_model("paper", data, loo=False)
    notes = list(fit.notes)
    if not has_energy:
        notes.insert(0, "no energy meter: the law was fitted to time per frame (s), not energy; "
                        "'scale' is then in s, and beta is the time exponent of data movement")
    return {
        "fitted_to": quantity,
        "beta": fit.params["beta"],
        "beta_stderr": fit.stderr["beta"],
        "scale": fit.params["scale"],
        "scale_stderr": fit.stderr["scale"],
        "alpha": None,
        "mape": fit.mape,
        "n": len(y),
        "notes": notes,
    }
