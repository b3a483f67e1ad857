"""The inner least-squares problem of BGC Eq. 5.1, solved two independent ways.

For one dense weight sample ``W`` (m x n x K) and data samples ``x_1..x_S``, Eq. 5.1 needs

    min over structured W_m of  (1/S) sum_s ||W x_s - W_m x_s||^2 .

Write the conv in patch form, ``W x = P w`` (``P``: one row per (sample, position), one
column per (channel, tap); ``w``: a row of ``W`` flattened). Output channel i of group k
may use the features ``F_k x``, whose patch matrix is ``P T_k^T`` with
``T_k = F_k (x) I_K`` (Kronecker product), so its best fit is an ordinary least-squares
problem with regressors ``A_k = P T_k^T`` and target ``P w_i``. Its residual is

    ||P w_i||^2 - b_i^T G_k^{-1} b_i,   G_k = T_k Gamma T_k^T,   b_i = T_k Gamma w_i,

with ``Gamma = P^T P``. The data enter only through ``Gamma`` (nK x nK), which is shared
by every weight sample, group, structure and N.

* :class:`GramSolver` (the fast default) does exactly that: ``Gamma W^T`` once per weight
  stack, then per structure one small Cholesky factorisation per output group, vectorised
  over all weight samples and output channels of the group. float64 throughout.
* :func:`reference_errors` is the plain, independent check: it builds the regressors and
  targets explicitly (its own shifted copies of the padded data, the target by a direct
  convolution) and calls :func:`numpy.linalg.lstsq` per output group per weight sample.

Both raise a one-line :class:`~groupconv.errors.GroupConvError` when a group has at least
as many unknowns (independent features x K) as data rows (samples x positions): the fit
would interpolate and report a meaningless zero error.

Precision: the Gram route squares the condition number of the regressors. With at least
twice as many rows as unknowns (the usual case) the two solvers agree to ~1e-12
relative; close to the under-determined limit the Gram route loses digits, and when a
group's Gram block is numerically singular (e.g. a constant or dead input channel) it
falls back to an eigenvalue pseudo-inverse and warns.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..errors import GroupConvError
from .data import DataGram, check_data, check_weights, output_shape, pad_amounts
from .structures import FeatureLayout

__all__ = ["StructuredFit", "GramSolver", "reference_errors", "underdetermined_message"]

#: Cholesky pivots below this fraction of the largest count as a singular Gram block.
_PIVOT_RTOL = 1e-12


def underdetermined_message(layout: FeatureLayout, k: int, unknowns: int, rank: int, taps: int,
                            rows: int, samples: int) -> str:
    """The one-line error for a group with at least as many unknowns as data rows."""
    return (
        f"under-determined least squares: {layout.name} with N={layout.groups}, output group {k} "
        f"has {unknowns} unknowns per output channel ({rank} features x {taps} taps) but only "
        f"{rows} data rows ({samples} samples x {rows // max(samples, 1)} positions), and a fit "
        f"needs more rows than unknowns; use more data samples or a larger input"
    )


@dataclass(frozen=True, eq=False)
class StructuredFit:
    """Result of fitting one structure to a stack of dense weights.

    Attributes
    ----------
    errors : ndarray, shape (S_w,)
        Per weight sample t: ``min (1/S) sum_s ||W_t x_s - W_m x_s||^2`` (the bracket of
        BGC Eq. 5.1).
    totals : ndarray, shape (S_w,)
        Per weight sample: ``(1/S) sum_s ||W_t x_s||^2`` (the output energy).
    unknowns : int
        Largest number of unknowns per output channel over the groups (rank x K).
    weights : ndarray or None
        Dense-equivalent weights ``(S_w, m, n, *kernel)`` of the best structured conv
        (only when asked for).
    """

    errors: np.ndarray
    totals: np.ndarray
    unknowns: int
    weights: np.ndarray | None = None


def _solve_spd(g: np.ndarray, b: np.ndarray, want_coef: bool, label: str):
    """One group: ``(colwise b^T G^{-1} b, G^{-1} b or None)``; pseudo-inverse if G is singular."""
    try:
        chol = np.linalg.cholesky(g)
        pivots = np.diag(chol) ** 2
        if pivots.min() > _PIVOT_RTOL * pivots.max():
            z = scipy.linalg.solve_triangular(chol, b, lower=True, check_finite=False)
            coef = (
                scipy.linalg.solve_triangular(chol.T, z, lower=False, check_finite=False)
                if want_coef
                else None
            )
            return np.einsum("ij,ij->j", z, z), coef
    except np.linalg.LinAlgError:
        pass
    warnings.warn(
        f"{label}: the regressors are numerically rank-deficient (constant or dead input "
        f"channels?); using a pseudo-inverse",
        RuntimeWarning,
        stacklevel=5,
    )
    evals, evecs = np.linalg.eigh(g)
    keep = evals > _PIVOT_RTOL * evals.max()
    proj = evecs[:, keep].T @ b
    scaled = proj / evals[keep, None]
    coef = evecs[:, keep] @ scaled if want_coef else None
    return np.einsum("ij,ij->j", proj, scaled), coef


def _solve_spd_batch(g: np.ndarray, b: np.ndarray, want_coef: bool, labels: list[str]):
    """Groups of equal size at once: ``g`` (B, p, p), ``b`` (B, p, c) -> explained (B, c), coef.

    One batched Cholesky; if any block is singular, that batch is redone group by group
    (with the pseudo-inverse fallback and its warning).
    """
    try:
        chol = np.linalg.cholesky(g)
        pivots = np.diagonal(chol, axis1=1, axis2=2) ** 2
        healthy = bool(np.all(pivots.min(axis=1) > _PIVOT_RTOL * pivots.max(axis=1)))
    except np.linalg.LinAlgError:
        healthy = False
    if not healthy:
        parts = [_solve_spd(g[i], b[i], want_coef, labels[i]) for i in range(len(g))]
        explained = np.stack([p[0] for p in parts])
        coef = np.stack([p[1] for p in parts]) if want_coef else None
        return explained, coef
    z = np.linalg.solve(chol, b)
    coef = np.linalg.solve(np.swapaxes(chol, 1, 2), z) if want_coef else None
    return np.einsum("bij,bij->bj", z, z), coef


def _apply_features(source: np.ndarray, features: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """``sum_c features[f, c] source[c, ...]`` for every feature row f (axis 0 of the result).

    Rows that merely copy a channel (``unit[f] >= 0``) are gathered instead of multiplied,
    so GC costs nothing and BGC pays only for its n/N mean rows.
    """
    n = source.shape[0]
    if unit.size == n and np.array_equal(unit, np.arange(n)):
        return source
    out = np.empty((features.shape[0], *source.shape[1:]))
    copy = unit >= 0
    out[copy] = source[unit[copy]]
    if not np.all(copy):
        mixed = features[~copy] @ source.reshape(n, -1)
        out[~copy] = mixed.reshape(-1, *source.shape[1:])
    return out


class GramSolver:
    """Fast solver: every structure and N from one data Gram matrix and one weight stack.

    Parameters
    ----------
    data : DataGram
        The data's patch Gram matrix (:func:`~groupconv.approx.data.gram_from_data`).
    weights : array, shape (S_w, m, n, *kernel) or (m, n, *kernel)
        Dense conv weights to approximate.

    Notes
    -----
    Cost: ``Gamma W^T`` once (``2 (nK)^2 m S_w`` flops); per structure, the feature rows
    of ``Gamma`` that are not plain channel copies (BGC's mean rows), then per output
    group a Cholesky factorisation of ``G_k`` (``(r_k K)^3 / 3``) and a triangular solve
    with the group's ``m_k S_w`` right-hand sides. Output groups of equal size are
    solved as one batch.

    Examples
    --------
    >>> solver = GramSolver(gram_from_data(x, 3), w)           # doctest: +SKIP
    >>> fit = solver.solve(GCStructure(4).layout(n, m))           # doctest: +SKIP
    >>> fit.errors.mean()                                       # E of Eq. 5.1  # doctest: +SKIP
    """

    def __init__(self, data: DataGram, weights) -> None:
        w = check_weights(weights, len(data.kernel))
        if w.shape[2] != data.in_channels or tuple(w.shape[3:]) != data.kernel:
            raise GroupConvError(
                f"weights of shape {w.shape[1:]} (out, in, *kernel) do not match data with "
                f"{data.in_channels} channels and kernel {data.kernel}"
            )
        self.data = data
        self.weight_shape = w.shape
        self.n, self.K = data.in_channels, data.taps
        self.samples_w, self.m = w.shape[0], w.shape[1]
        flat = w.reshape(self.samples_w * self.m, self.n * self.K)
        # Gamma W^T for all weight samples at once: (nK, S_w * m); the only O(m n^2 K^2) step.
        cross = data.gram @ flat.T
        self._cross = cross.reshape(self.n, self.K, self.samples_w, self.m)
        self.totals = (
            np.einsum("tij,jti->t", flat.reshape(self.samples_w, self.m, -1),
                      cross.reshape(-1, self.samples_w, self.m))
            / data.samples
        )
        self._gram4 = data.gram.reshape(self.n, self.K, self.n, self.K)

    def _check_layout(self, layout: FeatureLayout) -> None:
        if layout.in_channels != self.n or layout.out_channels != self.m:
            raise GroupConvError(
                f"layout is for {layout.in_channels}->{layout.out_channels} channels but the "
                f"weights are {self.n}->{self.m}"
            )

    def _feature_grams(self, layout: FeatureLayout):
        """``(F (x) I) Gamma`` as (R, K, n, K) and ``(F (x) I) Gamma (F (x) I)^T`` as (R, K, R, K)."""
        unit = layout.unit_rows
        left = _apply_features(self._gram4, layout.features, unit)
        both = _apply_features(left.transpose(2, 0, 1, 3), layout.features, unit)
        return left, both.transpose(1, 2, 0, 3)

    def _systems(self, layout: FeatureLayout, both: np.ndarray):
        """Per group: basis change (or None), rank and Gram block ``G_k``; checks the row count."""
        systems = []
        for k, u in enumerate(layout.uses):
            basis, rank = layout.group_basis(k)
            unknowns = rank * self.K
            if self.data.rows <= unknowns:
                raise GroupConvError(
                    underdetermined_message(layout, k, unknowns, rank, self.K, self.data.rows,
                                            self.data.samples)
                )
            g4 = both[np.ix_(u, range(self.K), u, range(self.K))]
            if basis is not None:
                g4 = np.einsum("pf,fagb,qg->paqb", basis, g4, basis)
            systems.append((basis, rank, g4.reshape(unknowns, unknowns)))
        return systems

    @staticmethod
    def _batches(layout: FeatureLayout, systems) -> dict:
        """Group indices by (unknowns, outputs) so that equal-size groups are solved together."""
        batches: dict[tuple[int, int], list[int]] = {}
        for k, (_, _, g) in enumerate(systems):
            batches.setdefault((g.shape[0], layout.out_groups[k].size), []).append(k)
        return batches

    def solve(self, layout: FeatureLayout, return_weights: bool = False) -> StructuredFit:
        """Best structured fit of every weight sample: per-sample errors (Eq. 5.1 bracket)."""
        self._check_layout(layout)
        _, both = self._feature_grams(layout)
        cross = _apply_features(self._cross, layout.features, layout.unit_rows)
        systems = self._systems(layout, both)
        explained = np.zeros(self.samples_w)
        dense = np.zeros((self.samples_w, self.m, self.n, self.K)) if return_weights else None
        for (unknowns, size), ks in self._batches(layout, systems).items():
            rhs = []
            for k in ks:
                basis, rank, _ = systems[k]
                b4 = cross[layout.uses[k]][:, :, :, layout.out_groups[k]]  # (r, K, S_w, m_k)
                if basis is not None:
                    b4 = np.einsum("pf,fati->pati", basis, b4)
                rhs.append(b4.reshape(unknowns, self.samples_w * size))
            labels = [f"{layout.name} N={layout.groups} group {k}" for k in ks]
            fit, coef = _solve_spd_batch(
                np.stack([systems[k][2] for k in ks]), np.stack(rhs), return_weights, labels
            )
            explained += fit.reshape(len(ks), self.samples_w, size).sum(axis=(0, 2))
            if return_weights:
                for i, k in enumerate(ks):
                    basis, rank, _ = systems[k]
                    feats = layout.group_features(k)
                    feats = feats if basis is None else basis @ feats
                    c4 = coef[i].reshape(rank, self.K, self.samples_w, size)
                    dense[:, layout.out_groups[k]] = np.einsum("fati,fc->tica", c4, feats)
        errors = np.maximum(self.totals - explained / self.data.samples, 0.0)
        weights = dense.reshape(self.weight_shape) if return_weights else None
        unknowns = max(rank * self.K for _, rank, _ in systems)
        return StructuredFit(errors=errors, totals=self.totals.copy(), unknowns=unknowns,
                             weights=weights)

    def expected_error(self, layout: FeatureLayout, weight_var: float) -> float:
        """Exact ``E_W[E | data]`` for i.i.d. zero-mean weights of variance ``weight_var``.

        For one output channel with weights ``w`` (Cov = v I) the residual is
        ``w^T (Gamma - B^T G^{-1} B) w`` with ``B = T_k Gamma``, so its mean over w is
        ``v (tr Gamma - ||L^{-1} B||_F^2)`` (``G = L L^T``). Summed over the m outputs and
        divided by S this is the data-conditional expectation of Eq. 5.1: the empirical E
        differs from it only by the weight-sampling noise.
        """
        self._check_layout(layout)
        left, both = self._feature_grams(layout)
        systems = self._systems(layout, both)
        trace = float(np.trace(self.data.gram))
        total = 0.0
        for (unknowns, size), ks in self._batches(layout, systems).items():
            rhs = []
            for k in ks:
                basis, rank, _ = systems[k]
                b4 = left[layout.uses[k]]
                if basis is not None:
                    b4 = np.einsum("pf,facb->pacb", basis, b4)
                rhs.append(b4.reshape(unknowns, -1))
            labels = [f"{layout.name} N={layout.groups} group {k}" for k in ks]
            fit, _ = _solve_spd_batch(np.stack([systems[k][2] for k in ks]), np.stack(rhs), False, labels)
            total += size * (len(ks) * trace - float(fit.sum()))
        return max(weight_var * total / self.data.samples, 0.0)  # roundoff can dip below 0


def reference_errors(
    data,
    weights,
    layout: FeatureLayout,
    padding="same",
    stride: int = 1,
    dilation: int = 1,
) -> np.ndarray:
    """Plain reference for Eq. 5.1's bracket: explicit regressors and ``numpy.linalg.lstsq``.

    Independent of :class:`GramSolver` and of :func:`~groupconv.approx.data.patches`: the
    target ``W_t x`` is a direct convolution (a sum over taps of shifted, padded inputs)
    and the regressors of output group k are the shifted copies of its features
    ``F_k x``; one least-squares solve per output group per weight sample.

    Parameters
    ----------
    data : array, shape (S, n, *spatial)
    weights : array, shape (S_w, m, n, *kernel) or (m, n, *kernel)
    layout : FeatureLayout
    padding, stride, dilation
        Conv geometry (see :mod:`groupconv.approx.data`).

    Returns
    -------
    ndarray, shape (S_w,)
        Per weight sample, the minimal mean (over data samples) squared error.
    """
    x = check_data(data)
    dims = x.ndim - 2
    w = check_weights(weights, dims)
    samples, n = x.shape[:2]
    kernel = tuple(w.shape[3:])
    taps = math.prod(kernel)
    out = output_shape(x.shape[2:], kernel, padding, stride, dilation)
    widths = ((0, 0), (0, 0), *pad_amounts(kernel, padding, dilation))
    mode = "wrap" if padding == "circular" else "constant"
    xpad = np.pad(x, widths, mode=mode)
    offsets = list(itertools.product(*(range(k) for k in kernel)))

    def shifted(z: np.ndarray, offset: Sequence[int]) -> np.ndarray:
        """``z`` (S, c, *padded) seen through one kernel tap: (S, c, *out)."""
        index = tuple(
            slice(dilation * o, dilation * o + stride * (size - 1) + 1, stride)
            for o, size in zip(offset, out)
        )
        return z[(slice(None), slice(None), *index)]

    rows = samples * math.prod(out)
    errors = np.zeros(w.shape[0])
    for t in range(w.shape[0]):
        target = sum(
            np.einsum("sc...,mc->sm...", shifted(xpad, off), w[t][(slice(None), slice(None), *off)])
            for off in offsets
        )
        target = np.moveaxis(target, 1, -1).reshape(rows, -1)  # (rows, m)
        for k, (outs, u) in enumerate(zip(layout.out_groups, layout.uses)):
            feats = np.einsum("fc,sc...->sf...", layout.features[u], xpad)
            rank = int(np.linalg.matrix_rank(layout.features[u]))
            if rows <= rank * taps:
                raise GroupConvError(
                    underdetermined_message(layout, k, rank * taps, rank, taps, rows, samples)
                )
            columns = [shifted(feats, off)[:, f].reshape(-1) for f in range(len(u)) for off in offsets]
            regressors = np.stack(columns, axis=1)
            coef, *_ = np.linalg.lstsq(regressors, target[:, outs], rcond=None)
            residual = target[:, outs] - regressors @ coef
            errors[t] += np.sum(residual**2) / samples
    return errors
