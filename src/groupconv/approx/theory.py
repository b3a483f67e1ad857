"""Theory of the approximability of GC and BGC: the paper's bounds and exact expectations.

Conventions. ``K`` taps, ``n`` input and ``m`` output channels, ``N`` groups. Every
relative quantity is relative to ``E||W||_par^2 E||x||^2`` (BGC paper Eq. 5.3).

**Bounds** (BGC paper Theorems 3.5 and 3.6), relative:

============  ====================  =====================
method        Assumption 3.1        Assumptions 3.1 + 3.2
============  ====================  =====================
GC            K (1 - 1/N)^2         K (1 - 1/N) / n
BGC           K (1 - 1/N)^3         K (1 - 1/N)^2 / n
============  ====================  =====================

**Exact expectations** (derived in ``docs/approx.md``). Weights i.i.d. with mean 0 and
variance ``v`` (He: ``v = 2/(nK)``), data i.i.d. with mean 0 and variance ``s2`` over
channels and positions. Output group k may use the features ``F_k x`` (rank ``r_k``).

* Infinite data: the best predictor of output channel i is the projection of its
  weights onto the row space of ``F_k``, so per output channel and per (position, tap)
  pair that lies inside the input the residual is ``v s2 (n - r_k)``:

      E_pop = v s2 I sum_k m_k (n - r_k),      I = sum over positions of inside taps.

  GC: ``n - r_k = n (1 - 1/N)``; BGC: ``n - r_k = n (1 - 2/N)`` (N >= 2). Without
  padding effects (``I = K D``) and with He weights: ``Rel.E = (1 - 1/N)/n`` (GC),
  ``(1 - 2/N)/n`` (BGC) - the K of the ``/n`` bounds is not there.
* Finite data, in-sample least squares with ``R = S x positions`` rows and
  ``p_k = r_k K`` unknowns: conditioning on the regressors and averaging the weights,
  ``E[E] = (1/S) sum_k m_k E[tr((I - H_k) Lambda_k)]`` with the hat matrix ``H_k`` and
  the diagonal ``Lambda_k = v s2 (n - r_k) diag(inside taps of each row)``. When every row
  sees all K taps (``"valid"`` or ``"circular"`` padding) ``Lambda_k`` is a multiple of I
  and ``tr H_k = p_k`` gives exactly ``E_pop (1 - p_k / R)``. With zero ``"same"`` padding
  ``0 <= H_rr`` and ``tr H = p`` bracket it between ``lambda_min`` and ``lambda_max``, and
  the first-order leverage ``E[H_rr] ~ r_k sum_tau in(r, tau) / count(tau)`` gives the
  value. This needs the residual to be independent of the regressors: true for Gaussian
  data (any structure) and for selection features such as GC (any i.i.d. data); for BGC
  with non-Gaussian data the residual is only uncorrelated and the value is a (very
  good) approximation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import _validate as v
from ..errors import GroupConvError
from .data import inside_mask
from .structures import METHODS, FeatureLayout

__all__ = [
    "bound_thm",
    "bound_iid",
    "bounds_for",
    "rel_E_population",
    "rel_E_population_layout",
    "ExpectedE",
    "expected_E",
    "fitted_slope",
    "mean_slope",
    "symbolic_bounds",
    "symbolic_rel_E_population",
    "symbolic_slope_limit",
    "symbolic_offspan_dimension",
]


def _n_groups(groups) -> np.ndarray:
    arr = np.asarray(groups, dtype=np.float64)
    if np.any(arr < 1) or np.any(arr != np.round(arr)):
        raise GroupConvError(f"groups must be positive integers, got {groups!r}")
    return arr


def _scalar(x):
    return float(x) if np.ndim(x) == 0 else x


def bound_thm(method: str, groups, taps: int):
    """Theorem 3.5 / 3.6 bound under Assumption 3.1: ``K (1-1/N)^2`` (GC), ``K (1-1/N)^3`` (BGC).

    Relative to ``E||W||_par^2 E||x||^2``; ``groups`` may be an array.
    """
    v.one_of("method", method, METHODS)
    q = 1.0 - 1.0 / _n_groups(groups)
    return _scalar(v.positive_int("taps", taps) * q ** (2 if method == "gc" else 3))


def bound_iid(method: str, groups, taps: int, in_channels: int):
    """Theorem 3.5 / 3.6 bound under Assumptions 3.1 + 3.2: ``K (1-1/N)/n``, ``K (1-1/N)^2/n``."""
    v.one_of("method", method, METHODS)
    q = 1.0 - 1.0 / _n_groups(groups)
    k, n = v.positive_int("taps", taps), v.positive_int("in_channels", in_channels)
    return _scalar(k * q ** (1 if method == "gc" else 2) / n)


def bounds_for(name: str, groups: int, taps: int, in_channels: int) -> tuple[float | None, float | None]:
    """``(bound_thm, bound_iid)`` for a structure name (permuted GC has GC's bounds), else Nones."""
    method = {"gc": "gc", "permuted-gc": "gc", "bgc": "bgc"}.get(name)
    if method is None:
        return None, None
    return bound_thm(method, groups, taps), bound_iid(method, groups, taps, in_channels)


def rel_E_population(method: str, groups, in_channels: int):
    """Exact ``Rel.E`` for He weights, white data, infinite data, no padding effects.

    ``(1 - 1/N)/n`` for GC and ``max(1 - 2/N, 0)/n`` for BGC (BGC is exact for N <= 2).
    """
    v.one_of("method", method, METHODS)
    nn = _n_groups(groups)
    n = v.positive_int("in_channels", in_channels)
    lost = 1.0 - 1.0 / nn if method == "gc" else np.maximum(1.0 - 2.0 / nn, 0.0)
    return _scalar(lost / n)


def rel_E_population_layout(layout: FeatureLayout) -> float:
    """Population ``Rel.E`` of any structure: ``sum_k m_k (n - r_k) / (m n^2)``.

    He weights (any i.i.d. zero-mean weights), white data, infinite data, no padding
    effects; ``r_k`` is the rank of group k's features. Equals :func:`rel_E_population`
    for GC and BGC.
    """
    n, m = layout.in_channels, layout.out_channels
    lost = sum(
        outs.size * (n - layout.group_rank(k)) for k, outs in enumerate(layout.out_groups)
    )
    return lost / (m * n * n)


@dataclass(frozen=True)
class ExpectedE:
    """The expected value of E (Eq. 5.1) under i.i.d. weights and data.

    Attributes
    ----------
    E : float
        Best value of ``E[E]``: exact when ``kind == "exact"``.
    low, high : float
        Bracket on ``E[E]``: rigorous for ``"exact"`` and ``"bracketed"``, heuristic for
        ``"approximate"``.
    kind : {"exact", "bracketed", "approximate"}
        ``"exact"``: every row sees all taps and the residual is independent of the
        regressors; ``"bracketed"``: zero padding, first-order leverage inside rigorous
        bounds; ``"approximate"``: the residual is only uncorrelated with the regressors
        (BGC on non-Gaussian data).
    population : float
        Infinite-data value (no in-sample bias), padding included.
    rel_E, rel_E_low, rel_E_high : float
        The same relative to ``E||W||^2 E||x||^2`` (Eq. 5.3).
    """

    E: float
    low: float
    high: float
    kind: str
    population: float
    rel_E: float
    rel_E_low: float
    rel_E_high: float


def _is_selection(features: np.ndarray) -> bool:
    return bool(np.all((features != 0).sum(axis=1) == 1))


def expected_E(
    layout: FeatureLayout,
    kernel: Sequence[int],
    input_shape: Sequence[int],
    padding="same",
    data_samples: int = 1,
    weight_var: float = 1.0,
    data_var: float = 1.0,
    gaussian: bool = True,
    dilation: int = 1,
) -> ExpectedE:
    """``E[E]`` of Eq. 5.1 for i.i.d. zero-mean weights and data (see the module docstring).

    Parameters
    ----------
    layout : FeatureLayout
        The structure (any: GC, BGC, partitioned, ...).
    kernel, input_shape, padding, dilation
        Conv geometry (stride 1).
    data_samples : int
        S, the number of data samples in the in-sample fit.
    weight_var, data_var : float
        Variance of one weight (He: ``2/(nK)``) and of one data entry.
    gaussian : bool
        Whether the data are Gaussian (makes the finite-sample value exact for any
        structure, not just for selections).
    """
    kernel = tuple(kernel)
    samples = v.positive_int("data samples", data_samples)
    wv = v.finite_positive("weight variance", weight_var)
    dv = v.finite_positive("data variance", data_var)
    mask = inside_mask(input_shape, kernel, padding, dilation).astype(np.float64)
    inside = mask.sum(axis=1)  # taps inside, per position
    taps = mask.shape[1]
    rows = samples * mask.shape[0]
    total_inside = float(inside.sum())  # I, per sample
    # First-order leverage per position per unit rank: sum_tau in(pos,tau)/count(tau).
    tap_counts = samples * mask.sum(axis=0)
    leverage_unit = (mask / np.where(tap_counts > 0, tap_counts, 1.0)).sum(axis=1)
    constant = np.all(inside == inside[0])
    n = layout.in_channels
    pop = value = low = high = 0.0
    independent = True
    for k, outs in enumerate(layout.out_groups):
        feats = layout.group_features(k)
        rank = layout.group_rank(k)
        lam = wv * dv * (n - rank)  # residual variance per output, per inside (position, tap)
        unknowns = rank * taps
        if rows <= unknowns:
            raise GroupConvError(
                f"under-determined: {unknowns} unknowns per output channel but {rows} data rows"
            )
        if not (gaussian or _is_selection(feats) or rank == n):
            independent = False
        trace_lambda = lam * samples * total_inside
        pop += outs.size * trace_lambda
        value += outs.size * (trace_lambda - lam * rank * samples * float(inside @ leverage_unit))
        low += outs.size * (trace_lambda - lam * unknowns * float(inside.max()))
        high += outs.size * (trace_lambda - lam * unknowns * float(inside.min()))
    kind = ("exact" if constant else "bracketed") if independent else "approximate"
    if constant:
        low = high = value
    scale = 1.0 / samples
    denom = (
        layout.out_channels * n * taps * wv  # E||W||^2
        * n * float(np.prod(input_shape)) * dv  # E||x||^2
    )
    e, lo, hi, po = value * scale, low * scale, high * scale, pop * scale
    return ExpectedE(
        E=e, low=lo, high=hi, kind=kind, population=po,
        rel_E=e / denom, rel_E_low=lo / denom, rel_E_high=hi / denom,
    )


def fitted_slope(groups, values) -> float:
    """Least-squares slope of ``log values`` against ``log(1 - 1/N)`` (BGC paper Fig. 1).

    Only points with N >= 2 and values > 0 enter; at least two are needed.
    """
    nn, vals = _n_groups(groups), np.asarray(values, dtype=np.float64)
    keep = (nn >= 2) & (vals > 0) & np.isfinite(vals)
    if keep.sum() < 2:
        raise GroupConvError(f"need at least two points with N >= 2 and E > 0 to fit a slope, got {keep.sum()}")
    slope, _ = np.polyfit(np.log(1 - 1 / nn[keep]), np.log(vals[keep]), 1)
    return float(slope)


def mean_slope(groups, values) -> float:
    """Mean of the slopes between successive points (another reading of Fig. 1's legend)."""
    nn, vals = _n_groups(groups), np.asarray(values, dtype=np.float64)
    keep = (nn >= 2) & (vals > 0) & np.isfinite(vals)
    order = np.argsort(nn[keep])
    x, y = np.log(1 - 1 / nn[keep][order]), np.log(vals[keep][order])
    if x.size < 2:
        raise GroupConvError("need at least two points with N >= 2 and E > 0 to fit a slope")
    return float(np.mean(np.diff(y) / np.diff(x)))


# -- sympy: the same formulas as expressions ------------------------------------------


def symbolic_bounds():
    """The four bounds as sympy expressions in ``K, N, n`` (keys ``(method, "thm"|"iid")``)."""
    import sympy as sp

    K, N, n = sp.symbols("K N n", positive=True)
    q = 1 - 1 / N
    return {
        ("gc", "thm"): K * q**2,
        ("bgc", "thm"): K * q**3,
        ("gc", "iid"): K * q / n,
        ("bgc", "iid"): K * q**2 / n,
    }, (K, N, n)


def symbolic_rel_E_population():
    """Population ``Rel.E`` as sympy expressions in ``N, n`` (BGC valid for N >= 2)."""
    import sympy as sp

    N, n = sp.symbols("N n", positive=True)
    return {"gc": (1 - 1 / N) / n, "bgc": (1 - 2 / N) / n}, (N, n)


def symbolic_slope_limit(method: str):
    """``lim_{N->oo} d log Rel.E / d log(1 - 1/N)`` of the population formula (1 for GC, 2 for BGC)."""
    import sympy as sp

    exprs, (N, n) = symbolic_rel_E_population()
    expr = exprs[v.one_of("method", method, METHODS)]
    x = sp.log(1 - 1 / N)
    slope = sp.diff(sp.log(expr), N) / sp.diff(x, N)
    return sp.limit(sp.simplify(slope), N, sp.oo)


def symbolic_offspan_dimension(layout: FeatureLayout, k: int):
    """``tr(I - Pi_k)`` in exact rational arithmetic: the channels group k cannot see.

    ``Pi_k`` projects onto the row space of ``F_k``; for white data the population
    residual of output group k is ``v s2 I tr(I - Pi_k)`` (``n - rank``). Independent of
    numpy's rank decision; used to check GC's ``n (1 - 1/N)`` and BGC's ``n (1 - 2/N)``.
    """
    import sympy as sp

    feats = sp.Matrix(layout.group_features(k).tolist()).applyfunc(sp.nsimplify)
    basis = sp.Matrix.hstack(*feats.T.columnspace()).T if feats.rank() < feats.rows else feats
    gram = basis * basis.T
    proj = basis.T * gram.inv() * basis
    return sp.nsimplify(layout.in_channels - proj.trace())
