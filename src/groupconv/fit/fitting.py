"""Fitting an energy model with scipy.optimize.least_squares, and the result object.

:func:`fit_model` minimises relative residuals ``predicted / measured - 1`` (default;
MAPE is their mean absolute value) or log residuals ``log(predicted / measured)``
within the model's parameter bounds, starting from the model's initial guess (for
models linear in their parameters that guess is already the exact non-negative least
squares optimum of the relative loss).

Uncertainty, two ways:

* ``stderr``: from the Jacobian at the optimum, ``cov = s^2 (J^T J)^-1`` with
  ``s^2 = sum r^2 / (n - p)``, over the parameters that are not on a bound (a
  parameter on a bound has no standard error: ``nan``, listed in ``at_bound``);
* ``intervals`` (optional, ``bootstrap=N``): 95 % percentile intervals from a residual
  bootstrap: refit to ``predicted * (1 + r*)`` (relative loss) or
  ``predicted * exp(r*)`` (log loss) with residuals ``r*`` drawn with replacement.

Leave-one-out (``loo=True``): every workload key (one network variant at all its batch
sizes, for the paper's data) is dropped in turn, the model is refitted to the rest and
predicts the dropped points; ``loo_mape`` is the MAPE of those predictions.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from .. import _validate as v
from ..errors import GroupConvError
from ..lsq import jacobian_covariance
from .data import EnergyData
from .models import EnergyModel, get_model
from .pricing import FitPricing

__all__ = ["FitResult", "fit_model", "LOSSES"]

#: Residual definitions :func:`fit_model` accepts.
LOSSES: tuple[str, ...] = ("relative", "log")


def _residuals(pred: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    if loss == "relative":
        return pred / y - 1.0
    return np.log(np.maximum(pred, 1e-300) / y)


def _solve(model: EnergyModel, data: EnergyData, loss: str, start: np.ndarray | None = None):
    """One least-squares fit; returns (params, scipy result, scale)."""
    lower, upper = model.bounds
    p0 = model.initial_guess(data) if start is None else np.asarray(start, dtype=float)
    # Work in theta = params / scale so that every unknown is O(1).
    scale = np.where(np.abs(p0) > 0, np.abs(p0), 1.0)
    if np.any(p0 == 0):
        # a parameter that starts at 0 gets the scale at which its term is ~ the data
        jac0 = model.jacobian(p0, data.layers, data.batch)
        if jac0 is not None:
            typical = np.median(np.abs(jac0 / data.target[:, None]), axis=0)
            scale = np.where((p0 == 0) & (typical > 0), 1.0 / np.maximum(typical, 1e-300), scale)
    theta0 = np.clip(p0 / scale, lower / scale, upper / scale)
    y = data.target
    predict, jacobian = model.compile(data.layers, data.batch)

    def fun(theta: np.ndarray) -> np.ndarray:
        return _residuals(predict(theta * scale), y, loss)

    def jac(theta: np.ndarray) -> np.ndarray:
        p = theta * scale
        d_pred = jacobian(p) * scale  # chain rule: d pred / d theta
        denom = y if loss == "relative" else np.maximum(predict(p), 1e-300)
        return d_pred / denom[:, None]

    has_jac = jacobian(p0) is not None
    result = least_squares(fun, theta0, jac=jac if has_jac else "2-point",
                           bounds=(lower / scale, upper / scale), method="trf", max_nfev=1000)
    # a parameter the optimiser left on (or a hair off) a bound sits exactly on it
    x = np.where(result.active_mask < 0, lower / scale, np.where(result.active_mask > 0, upper / scale, result.x))
    result.x = x
    return result.x * scale, result, scale


def _covariance(result, scale: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Covariance of the parameters from the Jacobian; bound-active ones are fixed."""
    p = len(scale)
    cov = np.full((p, p), np.nan)
    free = result.active_mask == 0
    dof = n - int(free.sum())
    if dof <= 0 or not free.any():
        return cov, ~free
    # None when rank-deficient: some combination is not identifiable
    inv = jacobian_covariance(result.jac[:, free], 2.0 * result.cost, dof, require_full_rank=True)
    if inv is None:
        return cov, ~free
    d = scale[free]
    cov[np.ix_(free, free)] = inv * np.outer(d, d)
    return cov, ~free


@dataclass(frozen=True, eq=False)
class FitResult(FitPricing):
    """A fitted energy model: estimates, uncertainties, residuals, validation.

    Attributes
    ----------
    model : EnergyModel
    params : dict
        Name -> estimate.
    stderr : dict
        Name -> standard error from the Jacobian (``nan`` for a parameter on a bound).
    covariance : numpy.ndarray
        Parameter covariance (``nan`` rows/columns for parameters on a bound).
    at_bound : tuple of str
        Parameters that ended on a bound.
    data : EnergyData
        The data fitted (not modified).
    predicted, residuals : numpy.ndarray
        Predictions (J per frame) and relative residuals ``predicted / measured - 1``.
    mape : float
        Mean absolute relative residual (fraction: 0.05 is 5 %).
    loo_predicted : numpy.ndarray or None
        Leave-one-key-out predictions; ``loo_mape`` their MAPE.
    intervals : dict or None
        Name -> (low, high) 95 % bootstrap interval, when a bootstrap was run.
    derived : dict
        Model-specific derived quantities (the paper model: ``c`` for a given alpha).
    notes : tuple of str
        Identifiability and data notes, shown in the report.
    """

    model: EnergyModel
    params: dict[str, float]
    stderr: dict[str, float]
    covariance: np.ndarray
    at_bound: tuple[str, ...]
    data: EnergyData
    predicted: np.ndarray
    residuals: np.ndarray
    mape: float
    loss: str
    success: bool
    message: str
    nfev: int
    loo_predicted: np.ndarray | None = None
    intervals: dict[str, tuple[float, float]] | None = None
    bootstrap_samples: np.ndarray | None = None
    derived: dict[str, float | None] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    # --- numbers ---------------------------------------------------------------------
    @property
    def param_vector(self) -> np.ndarray:
        return np.array([self.params[n] for n in self.model.param_names])

    @property
    def loo_mape(self) -> float | None:
        if self.loo_predicted is None:
            return None
        return float(np.mean(np.abs(self.loo_predicted / self.data.target - 1.0)))

    @property
    def loo_residuals(self) -> np.ndarray | None:
        if self.loo_predicted is None:
            return None
        return self.loo_predicted / self.data.target - 1.0

    @property
    def quantity(self) -> str:
        """What was fitted: ``"energy_J"`` or ``"time_s"`` (per frame)."""
        return getattr(self.data, "quantity", "energy_J")

    @property
    def n_points(self) -> int:
        return len(self.data)

    def predict(self, data) -> np.ndarray:
        """Energy per frame (J) predicted with the fitted parameters."""
        return self.model.predict(data, self.params)

    def table(self) -> pd.DataFrame:
        """One row per point: labels, measured and predicted energy, residuals."""
        out = self.data.info.copy()
        out["energy_J"] = self.data.target
        out["predicted_J"] = self.predicted
        out["residual"] = self.residuals
        if self.loo_predicted is not None:
            out["loo_predicted_J"] = self.loo_predicted
            out["loo_residual"] = self.loo_residuals
        return out

    def with_bootstrap(self, n: int = 200, seed: int = 0, progress: bool = False) -> FitResult:
        """A copy with 95 % residual-bootstrap intervals from ``n`` refits."""
        n = v.positive_int("bootstrap samples", n)
        rng = np.random.default_rng(seed)
        r = self.residuals if self.loss == "relative" else np.log1p(self.residuals)
        samples = np.empty((n, len(self.params)))
        iterator = range(n)
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, desc=f"bootstrap {self.model.name}", unit="fit")
        for i in iterator:
            draw = rng.choice(r, size=len(r), replace=True)
            y = self.predicted * (1.0 + draw) if self.loss == "relative" else self.predicted * np.exp(draw)
            y = np.maximum(y, 1e-12 * self.predicted.max())
            resampled = self.data.with_energy(y)
            samples[i], _, _ = _solve(self.model, resampled, self.loss, start=self.param_vector)
        low, high = np.percentile(samples, [2.5, 97.5], axis=0)
        intervals = {name: (float(a), float(b)) for name, a, b in zip(self.model.param_names, low, high)}
        return replace(self, intervals=intervals, bootstrap_samples=samples)

    # --- output --------------------------------------------------------------------------
    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary: model, params, stderr, intervals (if any), mape, loo_mape, ..."""

        def num(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        out: dict[str, object] = {
            "model": self.model.name,
            "params": {k: num(x) for k, x in self.params.items()},
            "stderr": {k: num(x) for k, x in self.stderr.items()},
        }
        if self.intervals is not None:
            out["intervals"] = {k: [num(a), num(b)] for k, (a, b) in self.intervals.items()}
        out["mape"] = num(self.mape)
        out["loo_mape"] = num(self.loo_mape)
        out["n_points"] = self.n_points
        out["at_bound"] = list(self.at_bound)
        out["loss"] = self.loss
        if self.derived:
            out["derived"] = {k: (x if isinstance(x, str) else num(x)) for k, x in self.derived.items()}
        out["quantity"] = self.quantity
        out["source"] = self.data.source
        out["notes"] = [*self.data.notes, *self.notes]
        return out

    def _param_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        rows = []
        for p in self.model.params:
            value, se = self.params[p.name], self.stderr[p.name]
            se_text = "at bound" if p.name in self.at_bound else (f"{se:.3g}" if math.isfinite(se) else "n/a")
            rel = f"{abs(se / value) * 100:.1f}%" if math.isfinite(se) and value != 0 else ""
            interval = ""
            if self.intervals is not None:
                a, b = self.intervals[p.name]
                interval = f"[{a:.4g}, {b:.4g}]"
            rows.append((p.name, f"{value:.6g}", se_text, rel, interval, p.unit))
        return rows

    def fit_report(self) -> str:
        """A plain-text report (lmfit style)."""
        lines = [
            f"[[Model]] {self.model.name}: {self.model.title}",
            f"    {self.model.formula}",
            f"[[Data]] {self.data.source}",
            f"    fitted quantity = {self.quantity}"
            + ("  (time per frame, s: no energy was measured; coefficients are in s, not J)"
               if self.quantity == "time_s" else "  (energy per frame, J)"),
            f"    points = {self.n_points}, parameters = {len(self.params)}, loss = {self.loss} residuals",
            f"    converged = {self.success} ({self.message}), function evaluations = {self.nfev}",
            "[[Fit statistics]]",
            f"    MAPE (in-sample)       = {self.mape * 100:.2f} %",
        ]
        if self.loo_mape is not None:
            lines.append(f"    MAPE (leave-one-out)   = {self.loo_mape * 100:.2f} %")
        lines.append(f"    max |residual|         = {np.max(np.abs(self.residuals)) * 100:.2f} %")
        lines.append("[[Parameters]]" + ("  (95% bootstrap intervals)" if self.intervals else ""))
        for name, value, se, rel, interval, unit in self._param_rows():
            extra = f" ({rel})" if rel else ""
            lines.append(f"    {name:<16} = {value:>12} +/- {se}{extra} {interval} [{unit}]")
        if self.derived:
            lines.append("[[Derived]]")
            for k, x in self.derived.items():
                lines.append(f"    {k:<16} = {'not identifiable' if x is None else f'{x:.6g}'}")
        if self.data.notes or self.notes:
            lines.append("[[Notes]]")
            lines.extend(f"    - {n}" for n in (*self.data.notes, *self.notes))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.fit_report()

    def __repr__(self) -> str:
        loo = "n/a" if self.loo_mape is None else f"{self.loo_mape:.4f}"
        params = ", ".join(f"{k}={x:.4g}" for k, x in self.params.items())
        return f"<FitResult {self.model.name}: {params}; mape={self.mape:.4f}, loo_mape={loo}, n={self.n_points}>"

    def _repr_html_(self) -> str:
        esc = html.escape
        head = (
            f"<p><b>{esc(self.model.name)}</b>: {esc(self.model.title)}<br>"
            f"<code>{esc(self.model.formula)}</code><br>{esc(self.data.source)}<br>"
            f"{self.n_points} points, {len(self.params)} parameters; "
            f"MAPE {self.mape * 100:.2f}%"
            + (f", leave-one-out MAPE {self.loo_mape * 100:.2f}%" if self.loo_mape is not None else "")
            + "</p>"
        )
        cols = ["parameter", "estimate", "stderr", "rel.", "95% interval", "unit"]
        body = "".join(
            "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in self._param_rows()
        )
        table = (
            "<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )
        derived = ""
        if self.derived:
            derived = "<p>" + "; ".join(
                f"{esc(k)} = {'not identifiable' if x is None else f'{x:.6g}'}" for k, x in self.derived.items()
            ) + "</p>"
        notes = ""
        if self.data.notes or self.notes:
            notes = "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in (*self.data.notes, *self.notes)) + "</ul>"
        return f"<div>{head}{table}{derived}{notes}</div>"


def _leave_one_out(model: EnergyModel, data: EnergyData, loss: str, start: np.ndarray) -> np.ndarray | None:
    keys = data.keys
    unique = list(dict.fromkeys(keys))
    if len(unique) < 2:
        return None
    out = np.empty(len(data))
    for key in unique:
        held = keys == key
        train = data.subset(~held)
        if len(train) <= len(model.params):
            return None
        params, _, _ = _solve(model, train, loss, start=start)
        out[held] = model._predict_arrays(params, data.subset(held).layers, data.batch[held])
    return out


def fit_model(
    model: EnergyModel | str,
    data: EnergyData,
    *,
    loss: str = "relative",
    loo: bool = True,
    bootstrap: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> FitResult:
    """Fit ``model`` to ``data``.

    Parameters
    ----------
    model : EnergyModel or str
        A model object or a registry name (``"paper"``, ``"macs"``, ``"gpu"``).
    data : EnergyData
        Measured energy per frame; left unchanged.
    loss : {"relative", "log"}
        Residuals ``pred / y - 1`` or ``log(pred / y)``.
    loo : bool
        Also compute leave-one-key-out predictions and ``loo_mape``.
    bootstrap : int
        Residual-bootstrap refits for 95 % intervals (0: none).
    seed : int
        Seed of the bootstrap.
    progress : bool
        Show a tqdm bar during the bootstrap.

    Returns
    -------
    FitResult
    """
    if isinstance(model, str):
        model = get_model(model)
    if not isinstance(model, EnergyModel):
        raise GroupConvError(f"model must be an EnergyModel or a model name, got {type(model).__name__}")
    if not isinstance(data, EnergyData):
        raise GroupConvError(f"data must be EnergyData, got {type(data).__name__}")
    v.one_of("loss", loss, LOSSES)
    v.nonnegative_int("bootstrap samples", bootstrap)
    if len(data) <= len(model.params):
        raise GroupConvError(
            f"model {model.name!r} has {len(model.params)} parameters but the data have only "
            f"{len(data)} points; need more points than parameters"
        )
    params, result, scale = _solve(model, data, loss)
    cov, bound = _covariance(result, scale, len(data))
    predicted = model._predict_arrays(params, data.layers, data.batch)
    residuals = predicted / data.target - 1.0
    names = model.param_names
    stderr = {n: float(np.sqrt(cov[i, i])) if np.isfinite(cov[i, i]) else float("nan") for i, n in enumerate(names)}
    at_bound = tuple(n for n, b in zip(names, bound) if b)
    loo_pred = _leave_one_out(model, data, loss, params) if loo else None
    notes = list(model.notes(params))
    free_diag = np.diag(cov)[[n not in at_bound for n in names]]
    if free_diag.size and not np.all(np.isfinite(free_diag)):
        notes.append("the Jacobian is rank-deficient: some parameter combination is not identifiable "
                     "from these data, so no standard errors")
    spare = len(data) - len(names)
    if len(at_bound) > spare:
        notes.append(
            f"{len(at_bound)} parameters ended on a bound ({', '.join(at_bound)}) but the data have only "
            f"{spare} point(s) more than parameters: the bounds, not the data, decide this fit; "
            "add points before trusting it"
        )
    batches = np.unique(data.batch)
    if len(batches) == 1 and any(n.endswith("_batch_J") for n in names):
        notes.append(f"every point has B = {batches[0]:g}: per-frame and per-batch terms cannot be told "
                     "apart (only their sum at this B is identifiable)")
    if loo and loo_pred is None:
        notes.append("leave-one-out skipped: fewer than two workload keys or too few points per fold")
    fitted = FitResult(
        model=model,
        params={n: float(x) for n, x in zip(names, params)},
        stderr=stderr,
        covariance=cov,
        at_bound=at_bound,
        data=data,
        predicted=predicted,
        residuals=residuals,
        mape=float(np.mean(np.abs(residuals))),
        loss=loss,
        success=bool(result.success),
        message=str(result.message),
        nfev=int(result.nfev),
        loo_predicted=loo_pred,
        derived=model.derived(params, cov),
        notes=tuple(notes),
    )
    if bootstrap:
        fitted = fitted.with_bootstrap(bootstrap, seed=seed, progress=progress)
    return fitted
