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

Precision and robustness: every Gram block is equilibrated by its own diagonal before it
is factorised, so the singularity test does not depend on the scale of any channel (a
live channel 1e-9 times quieter than the others is solved exactly; only a channel that
is identically zero, or an exact linear combination of others, counts as dependent and
is handled by a pseudo-inverse with a warning that says which). The Gram route squares
the condition number of the *equilibrated* regressors: with at least twice as many rows
as unknowns the two solvers agree to ~1e-12 relative. When the fit is nearly perfect
(E below 1e-6 of the output energy) the difference ``||W x||^2 - explained`` would
cancel, so E is recomputed as ``Delta^T Gamma Delta`` from the residual weights; its
relative accuracy is then about ``1e-16 / sqrt(E / ||W x||^2)`` (1e-10 at a 1e-12 fit).
Data or weights far from unit scale are rescaled by a power of two (exactly); a result
that does not fit in float64 is a one-line error.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DeadChannelsWarning, GroupConvError
from .data import DataGram, check_data, check_weights, output_shape, pad_amounts
from .structures import FeatureLayout

__all__ = ["StructuredFit", "GramSolver", "reference_errors", "underdetermined_message"]

#: Pivots of the *equilibrated* Gram block (unit diagonal, so pivots lie in (0, 1]) below
#: this count as a numerically dependent direction. Equilibration makes the test
#: invariant to the scale of each input channel.
_PIVOT_RTOL = 1e-12
#: Below this fraction of the output energy, E is recomputed from the residual weights
#: (``Delta^T Gamma Delta``) instead of the difference ``||W x||^2 - explained``.
_REFINE_RTOL = 1e-6


def underdetermined_message(layout: FeatureLayout, k: int, unknowns: int, rank: int, taps: int,
                            rows: int, samples: int) -> str:
    """The one-line error for a group with at least as many unknowns as data rows."""
    return (
        f"under-determined least squares: {layout.name} with N={layout.groups}, output group {k} "
        f"has {unknowns} unknowns per output channel ({rank} features x {taps} taps) but only "
        f"{rows} data rows ({samples} samples x {rows // max(samples, 1)} positions), and a fit "
        f"needs more rows than unknowns: at least {unknowns // max(rows // max(samples, 1), 1) + 1} samples "
        f"of this size are needed (or a larger input)"
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

    @property
    def rel_output(self) -> np.ndarray:
        """Per weight sample, ``errors / totals`` (0 where the output energy is 0: exact fit)."""
        return np.divide(self.errors, self.totals, out=np.zeros_like(self.errors),
                         where=self.totals > 0)


def _blas_limits():
    """Context manager pinning BLAS/OpenMP to one thread (threadpoolctl), or a no-op."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a core dependency
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def _take(array: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
    """``array`` indexed along ``axis`` by ``index``: a slice (a view) when it is a contiguous run."""
    if index.size and index[-1] - index[0] == index.size - 1 and np.all(np.diff(index) == 1):
        sl = [slice(None)] * array.ndim
        sl[axis] = slice(int(index[0]), int(index[-1]) + 1)
        return array[tuple(sl)]
    return np.take(array, index, axis=axis)


def _power_of_two_scale(array: np.ndarray) -> float:
    """1.0, or a power of two that brings ``max |array|`` near 1 when it is far from it (exact)."""
    top = max(float(array.max()), -float(array.min())) if array.size else 0.0
    if top == 0.0 or 2.0**-100 <= top <= 2.0**100:
        return 1.0
    return 2.0 ** int(np.clip(np.round(np.log2(top)), -500, 500))  # its square stays a float64


def _to_true_units(name: str, value: np.ndarray, scale: float) -> np.ndarray:
    """``value * scale``; a one-line error when that leaves float64's range."""
    if scale == 1.0:
        return value
    out = value * scale
    lost = (~np.isfinite(out)) | ((out == 0) & (value != 0)) | ((np.abs(out) < np.finfo(float).tiny) & (out != 0))
    if np.any(lost):
        raise GroupConvError(
            f"{name} = {float(value.flat[np.argmax(lost.ravel())]):.6g} x {scale:.6g} is outside float64's "
            f"range (data or weights too large or too small); rescale them - rel_E and "
            f"rel_output_E do not depend on the scale"
        )
    return out


class _Factor:
    """One batch of equal-size groups, factorised once: ``G = D^1/2 Ghat D^1/2``, ``Ghat^-1``.

    ``Ghat`` (unit diagonal) is the Gram block equilibrated by its own diagonal, so the
    singularity test (Cholesky pivots of ``Ghat``) and the pseudo-inverse cut-off do not
    depend on the scale of any input channel.
    """

    def __init__(self, g: np.ndarray, labels: list[str], names: list[list[str]]) -> None:
        diag = np.diagonal(g, axis1=1, axis2=2)
        # features that are zero (to roundoff) everywhere in these data
        zero = diag < np.finfo(float).tiny
        self.scale = np.where(zero, 0.0, 1.0 / np.sqrt(np.where(zero, 1.0, diag)))
        ghat = g * self.scale[:, :, None] * self.scale[:, None, :]
        idx = np.arange(g.shape[1])
        ghat[:, idx, idx] = np.where(zero, 0.0, 1.0)
        healthy = np.zeros(len(g), dtype=bool)
        try:
            chol = np.linalg.cholesky(ghat)
            pivots = np.diagonal(chol, axis1=1, axis2=2) ** 2
            healthy = pivots.min(axis=1) > _PIVOT_RTOL
        except np.linalg.LinAlgError:
            for i in range(len(g)):
                try:
                    piv = np.diagonal(np.linalg.cholesky(ghat[i])) ** 2
                    healthy[i] = piv.min() > _PIVOT_RTOL
                except np.linalg.LinAlgError:
                    healthy[i] = False
        self.inv = np.empty_like(ghat)
        if healthy.any():
            self.inv[healthy] = np.linalg.inv(ghat[healthy])
        for i in np.flatnonzero(~healthy):
            evals, evecs = np.linalg.eigh(ghat[i])
            keep = evals > _PIVOT_RTOL * max(evals.max(), 1.0)
            self.inv[i] = (evecs[:, keep] / evals[keep]) @ evecs[:, keep].T
            dead = sorted({names[i][j] for j in np.flatnonzero(zero[i])})
            what = (f"; {', '.join(dead)} identically zero in these data (dead channels)"
                    if dead else "; no feature is zero: some are (near-)exact linear combinations "
                    "of others (duplicated or constant channels, or fewer informative data rows "
                    "than unknowns)")
            warnings.warn(
                f"{labels[i]}: {g.shape[1] - int(keep.sum())} of {g.shape[1]} least-squares "
                f"directions are linearly dependent in these data{what}; solved on the "
                f"remaining {int(keep.sum())} by a pseudo-inverse (E stays exact)",
                DeadChannelsWarning,
                stacklevel=4,
            )

    def explained(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``b`` (B, p, c) -> (colwise ``b^T G^+ b`` (B, c), coefficients ``G^+ b`` (B, p, c))."""
        bs = b * self.scale[:, :, None]
        x = self.inv @ bs
        return np.einsum("bij,bij->bj", bs, x), x * self.scale[:, :, None]

    def trace(self, s: np.ndarray) -> np.ndarray:
        """``tr(G^+ S)`` per block for symmetric ``s`` (B, p, p)."""
        ss = s * self.scale[:, :, None] * self.scale[:, None, :]
        return np.einsum("bij,bij->b", self.inv, ss)


def _is_bgc(layout: FeatureLayout) -> bool:
    """Whether ``layout`` is BGC's (N >= 2): own channel blocks plus the n/N intergroup means."""
    n, N = layout.in_channels, layout.groups
    return (layout.name == "bgc" and N >= 2 and n % N == 0
            and layout.features.shape == (n + n // N, n) and len(layout.uses) == N)


def _excluding(blocks: np.ndarray, k: int) -> np.ndarray:
    """``sum_{l != k} blocks[l]`` as the sum of the blocks before and after k (no cancellation)."""
    before, after = blocks[:k], blocks[k + 1 :]
    if not before.shape[0]:
        return after.sum(axis=0)
    if not after.shape[0]:
        return before.sum(axis=0)
    return before.sum(axis=0) + after.sum(axis=0)


def _running_sum(blocks: np.ndarray) -> np.ndarray:
    """``out[l] = sum_{j <= l} blocks[j]`` (np.cumsum along axis 0 is slow for big blocks)."""
    out = np.empty_like(blocks)
    out[0] = blocks[0]
    for l in range(1, len(blocks)):
        np.add(out[l - 1], blocks[l], out=out[l])
    return out


class _Blocks:
    """``(F (x) I) A (F (x) I)^T`` blocks of an (n, K, n, K) matrix ``A`` for one layout.

    Channel-copy features are slices of ``A``. For BGC the mean feature of output group k
    is replaced by the mean of the *other* groups, ``(1/N) sum_{l != k} x^l`` (the same
    span, since ``x^k`` is already a feature): built from prefix and suffix sums, never by
    subtracting, so a loud channel cannot hide a quiet one inside the mean. Other mixed
    features are applied once per structure as a small matrix product.
    """

    def __init__(self, layout: FeatureLayout, a4: np.ndarray) -> None:
        unit = layout.unit_rows
        self.mixed = np.flatnonzero(unit < 0)
        self.a4 = a4
        self.bgc = _is_bgc(layout)
        n, taps = a4.shape[:2]
        if self.bgc:
            N = layout.groups
            g6 = a4.reshape(N, n // N, taps, n, taps)
            self.N = N
            self.prefix = _running_sum(g6)
            self.suffix = _running_sum(g6[::-1])[::-1]
        elif self.mixed.size:
            fm = layout.features[self.mixed]
            self.left = (fm @ a4.reshape(n, -1)).reshape(len(fm), taps, n, taps)
            both = (fm @ self.left.transpose(2, 0, 1, 3).reshape(n, -1))
            self.both = both.reshape(len(fm), len(fm), taps, taps).transpose(1, 2, 0, 3)

    def _bgc_left(self, k: int) -> np.ndarray:
        """``(1/N) sum_{l != k}`` of the channel blocks of A: (n/N, K, n, K)."""
        N = self.N
        if k == 0:
            total = self.suffix[1]
        elif k == N - 1:
            total = self.prefix[N - 2]
        else:
            total = self.prefix[k - 1] + self.suffix[k + 1]
        return total / N

    def block(self, k: int, ch: np.ndarray, mi: np.ndarray) -> np.ndarray:
        """The (r, K, r, K) block of group k's features ``ch`` (channel copies) then ``mi``."""
        taps = self.a4.shape[1]
        ru, rx = ch.size, mi.size
        uu = _take(_take(self.a4, ch, 0), ch, 2)
        if rx == 0:
            return uu
        if self.bgc:
            left = self._bgc_left(k)  # (n/N, K, n, K)
            size = left.shape[0]
            xu = left[:, :, k * size : (k + 1) * size]
            xx = _excluding(np.moveaxis(left.reshape(size, taps, self.N, size, taps), 2, 0), k) / self.N
        else:
            xu = _take(_take(self.left, mi, 0), ch, 2)
            xx = _take(_take(self.both, mi, 0), mi, 2)
        out = np.empty((ru + rx, taps, ru + rx, taps))
        out[:ru, :, :ru] = uu
        out[ru:, :, :ru] = xu
        out[:ru, :, ru:] = xu.transpose(2, 3, 0, 1)
        out[ru:, :, ru:] = xx
        return out

    def mixed_rows(self, layout: FeatureLayout, k: int, source: np.ndarray, mixed_source, mi, cols):
        """Group k's mixed-feature rows of ``source`` (n, K, ...), columns ``cols`` of the last axis."""
        if self.bgc:
            n, N = layout.in_channels, self.N
            sel = _take(source, cols, source.ndim - 1)
            return _excluding(sel.reshape(N, n // N, *sel.shape[1:]), k) / N
        return _take(_take(mixed_source, mi, 0), cols, source.ndim - 1)

    def mixed_features(self, layout: FeatureLayout, k: int, mi) -> np.ndarray:
        """The mixed features (rows over the n channels) that group k's blocks use."""
        if self.bgc:
            n, N = layout.in_channels, self.N
            f = np.kron(np.ones((1, N)), np.eye(n // N)) / N
            f[:, k * (n // N) : (k + 1) * (n // N)] = 0.0
            return f
        return layout.features[self.mixed[mi]]


class GramSolver:
    """Fast solver: every structure and N from one data Gram matrix and one weight stack.

    Parameters
    ----------
    data : DataGram
        The data's patch Gram matrix (:func:`~groupconv.approx.data.gram_from_data`).
    weights : array, shape (S_w, m, n, *kernel) or (m, n, *kernel)
        Dense conv weights to approximate.
    cross, target_gram : array (nK, nK), optional
        Sequential fit (channel-pruning style reconstruction): the regressors are the
        patches ``P'`` that ``data`` describes (``data.gram = P'^T P'``), the target is
        ``P w`` on *other* patches ``P`` (the original network's), with
        ``cross = P'^T P`` and ``target_gram = P^T P``. Both unit scale.

    Notes
    -----
    Cost: ``Gamma W^T`` once (``2 (nK)^2 m S_w`` flops); per structure the Gram blocks
    ``G_k`` (slices of ``Gamma``; BGC's mean rows by one small product), each
    equilibrated by its diagonal, checked by a Cholesky factorisation and inverted once
    (groups of equal size as one batch, BLAS pinned to one thread). :meth:`solve` and
    :meth:`expected_error` share that factorisation. A group whose equilibrated block
    is numerically singular (a dead, constant or duplicated channel) is solved by a
    pseudo-inverse, with a warning naming what was found.

    Examples
    --------
    >>> solver = GramSolver(gram_from_data(x, 3), w)           # doctest: +SKIP
    >>> fit = solver.solve(GCStructure(4).layout(n, m))           # doctest: +SKIP
    >>> fit.errors.mean()                                       # E of Eq. 5.1  # doctest: +SKIP
    """

    def __init__(self, data: DataGram, weights, *, cross=None, target_gram=None) -> None:
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
        w_scale = _power_of_two_scale(w)
        flat = (w / w_scale if w_scale != 1.0 else w).reshape(self.samples_w * self.m, self.n * self.K)
        self._flat = flat
        #: true value = computed value * _scale (powers of two: exact)
        self._scale = data.scale * w_scale**2
        # Gamma W^T for all weight samples at once: (nK, S_w * m); the only O(m n^2 K^2) step.
        self._cross_gram, self._target_gram = None, None
        if cross is not None:
            # Sequential fit: regressors P' (data.gram = P'^T P'), target P w with P != P'.
            if data.scale != 1.0 or target_gram is None:
                raise GroupConvError("a cross Gram needs the target Gram too, and data at unit scale")
            self._cross_gram = np.asarray(cross, dtype=np.float64)
            self._target_gram = np.asarray(target_gram, dtype=np.float64)
            cross = self._cross_gram @ flat.T
            target = self._target_gram @ flat.T
        else:
            cross = data.gram @ flat.T
            target = cross
        self._cross = cross.reshape(self.n, self.K, self.samples_w, self.m)
        self._totals = (
            np.einsum("tij,jti->t", flat.reshape(self.samples_w, self.m, -1),
                      target.reshape(-1, self.samples_w, self.m))
            / data.samples
        )
        self.totals = _to_true_units("the output energy", self._totals, self._scale)
        self._gram4 = data.gram.reshape(self.n, self.K, self.n, self.K)
        self._gram2 = None
        self._cached: tuple | None = None

    def _check_layout(self, layout: FeatureLayout) -> None:
        if layout.in_channels != self.n or layout.out_channels != self.m:
            raise GroupConvError(
                f"layout is for {layout.in_channels}->{layout.out_channels} channels but the "
                f"weights are {self.n}->{self.m}"
            )

    @staticmethod
    def _split(layout: FeatureLayout, k: int):
        """Group k's features as (channel copies, mixed-row indices, basis, rank)."""
        u = layout.uses[k]
        unit = layout.unit_rows[u]
        order = np.concatenate([np.flatnonzero(unit >= 0), np.flatnonzero(unit < 0)])
        mixed_pos = np.searchsorted(np.flatnonzero(layout.unit_rows < 0), u[unit < 0])
        basis, rank = layout.group_basis(k)
        if basis is not None:
            basis = basis[:, order]
        return unit[unit >= 0], mixed_pos, basis, rank

    def _prepare(self, layout: FeatureLayout):
        """Per layout (cached for the last one): groups, batches and their factorisations."""
        if self._cached is not None and self._cached[0] is layout:
            return self._cached[1]
        self._check_layout(layout)
        blocks = _Blocks(layout, self._gram4)
        groups = []
        for k in range(len(layout.uses)):
            ch, mi, basis, rank = self._split(layout, k)
            unknowns = rank * self.K
            if self.data.rows <= unknowns:
                raise GroupConvError(
                    underdetermined_message(layout, k, unknowns, rank, self.K, self.data.rows,
                                            self.data.samples)
                )
            g4 = blocks.block(k, ch, mi)
            if basis is not None:
                g4 = np.einsum("pf,fagb,qg->paqb", basis, g4, basis)
            groups.append((ch, mi, basis, rank, g4.reshape(unknowns, unknowns)))
        batches: dict[tuple[int, int], list[int]] = {}
        for k, group in enumerate(groups):
            batches.setdefault((group[4].shape[0], layout.out_groups[k].size), []).append(k)
        factors = {}
        with _blas_limits():
            for key, ks in batches.items():
                labels = [f"{layout.name} N={layout.groups} output group {k}" for k in ks]
                names = [self._feature_names(layout, k, groups[k]) for k in ks]
                factors[key] = _Factor(np.stack([groups[k][4] for k in ks]), labels, names)
        prepared = (blocks, groups, batches, factors)
        self._cached = (layout, prepared)
        return prepared

    def _feature_names(self, layout, k, group) -> list[str]:
        ch, mi, basis, rank = group[:4]
        if basis is not None:
            return [f"combination {j // self.K}" for j in range(rank * self.K)]
        names = [f"input channel {c}" for c in ch] + [f"mixed feature {j}" for j in mi]
        return [names[j // self.K] for j in range(len(names) * self.K)]

    def _rhs(self, layout, blocks, k, source: np.ndarray, mixed_source, group, cols) -> np.ndarray:
        """Rows of ``source`` (n, K, ...) for group k's features, columns ``cols`` of the last axis."""
        ch, mi, basis, rank = group[:4]
        parts = [_take(_take(source, ch, 0), cols, source.ndim - 1)]
        if mi.size:
            parts.append(blocks.mixed_rows(layout, k, source, mixed_source, mi, cols))
        b4 = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        if basis is not None:
            b4 = np.einsum("pf,f...->p...", basis, b4)
        return b4

    def solve(self, layout: FeatureLayout, return_weights: bool = False) -> StructuredFit:
        """Best structured fit of every weight sample: per-sample errors (Eq. 5.1 bracket)."""
        blocks, groups, batches, factors = self._prepare(layout)
        mixed_cross = None
        if blocks.mixed.size and not blocks.bgc:
            fm = layout.features[blocks.mixed]
            mixed_cross = (fm @ self._cross.reshape(self.n, -1)).reshape(
                len(fm), self.K, self.samples_w, self.m)
        explained = np.zeros(self.samples_w)
        coefs = {}
        with _blas_limits():
            for key, ks in batches.items():
                unknowns, size = key
                rhs = np.stack([
                    self._rhs(layout, blocks, k, self._cross, mixed_cross, groups[k],
                              layout.out_groups[k]).reshape(
                        unknowns, self.samples_w * size)
                    for k in ks
                ])
                fit, coef = factors[key].explained(rhs)
                explained += fit.reshape(len(ks), self.samples_w, size).sum(axis=(0, 2))
                coefs[key] = coef
        errors = np.maximum(self._totals - explained / self.data.samples, 0.0)
        refine = bool(np.any(errors < _REFINE_RTOL * self._totals))
        dense = None
        if return_weights or refine:
            dense = np.zeros((self.samples_w, self.m, self.n, self.K))
            for key, ks in batches.items():
                unknowns, size = key
                for i, k in enumerate(ks):
                    ch, mi, basis, rank = groups[k][:4]
                    mixed = blocks.mixed_features(layout, k, mi)
                    feats = np.concatenate([np.eye(self.n)[ch], mixed])
                    feats = feats if basis is None else basis @ feats
                    c4 = coefs[key][i].reshape(rank, self.K, self.samples_w, size)
                    dense[:, layout.out_groups[k]] = np.einsum("fati,fc->tica", c4, feats)
        if refine:
            # Near-perfect fit: ||Wx||^2 - explained cancels; use the residual weights instead.
            fitted = dense.reshape(self.samples_w * self.m, -1)
            if self._cross_gram is None:
                delta = self._flat - fitted
                direct = np.einsum("ij,ij->i", delta @ self.data.gram, delta)
            else:  # ||P w - P' v||^2 = w'Gw - 2 v'Xw + v'G'v
                direct = (np.einsum("ij,ij->i", self._flat @ self._target_gram, self._flat)
                          - 2.0 * np.einsum("ij,ij->i", fitted @ self._cross_gram, self._flat)
                          + np.einsum("ij,ij->i", fitted @ self.data.gram, fitted))
            direct = direct.reshape(self.samples_w, self.m).sum(axis=1) / self.data.samples
            errors = np.maximum(direct, 0.0)
        errors = _to_true_units("E", errors, self._scale)
        weights = None
        if return_weights:
            w_scale = math.sqrt(self._scale / self.data.scale)
            weights = (dense * w_scale).reshape(self.weight_shape)
        unknowns = max(g[3] * self.K for g in groups)
        return StructuredFit(errors=errors, totals=self.totals.copy(), unknowns=unknowns,
                             weights=weights)

    def expected_error(self, layout: FeatureLayout, weight_var: float) -> float:
        """Exact ``E_W[E | data]`` for i.i.d. zero-mean weights of variance ``weight_var``.

        For one output channel with weights ``w`` (Cov = v I) the residual is
        ``w^T (Gamma - B^T G^{-1} B) w`` with ``B = T_k Gamma``, so its mean over w is
        ``v (tr Gamma - tr(G_k^{-1} T_k Gamma^2 T_k^T))``. ``Gamma^2`` is formed once per
        solver and the factorisation of ``G_k`` is the one :meth:`solve` uses. Summed over
        the m outputs and divided by S this is the data-conditional expectation of
        Eq. 5.1: the empirical E differs from it only by the weight-sampling noise.
        """
        blocks, groups, batches, factors = self._prepare(layout)
        if self._gram2 is None:
            with _blas_limits():
                self._gram2 = (self.data.gram @ self.data.gram).reshape(self._gram4.shape)
        squares = _Blocks(layout, self._gram2)
        trace = float(np.trace(self.data.gram))
        total = 0.0
        with _blas_limits():
            for key, ks in batches.items():
                unknowns, size = key
                s = []
                for k in ks:
                    ch, mi, basis, rank = groups[k][:4]
                    s4 = squares.block(k, ch, mi)
                    if basis is not None:
                        s4 = np.einsum("pf,fagb,qg->paqb", basis, s4, basis)
                    s.append(s4.reshape(unknowns, unknowns))
                total += size * (len(ks) * trace - float(factors[key].trace(np.stack(s)).sum()))
        value = max(weight_var * total / self.data.samples, 0.0)  # roundoff can dip below 0
        return float(_to_true_units("E_W[E | data]", np.array(value), self.data.scale))


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
            # unit-norm columns (zero ones dropped): lstsq's rank cut-off is then
            # independent of the channels' scales, as the fast solver's test is
            norms = np.sqrt(np.einsum("ij,ij->j", regressors, regressors))
            regressors = regressors[:, norms > 0] / norms[norms > 0]
            coef, *_ = np.linalg.lstsq(regressors, target[:, outs], rcond=None)
            residual = target[:, outs] - regressors @ coef
            errors[t] += np.sum(residual**2) / samples
    return errors
