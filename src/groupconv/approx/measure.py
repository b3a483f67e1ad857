"""The approximability measure of the BGC paper: E (Eq. 5.1) and Rel.E (Eq. 5.3), swept over N.

    E     = (1/S_w) sum_t  min_{W_m} (1/S) sum_s ||W_t x_s - W_m x_s||^2          (5.1)
    Rel.E = E / ( (1/S_w) sum_t ||W_t||^2  (1/S) sum_s ||x_s||^2 )                  (5.3)

``W_t`` are dense convs with He initialisation, ``x_s`` data samples (N(0, 1), U(-1, 1)
or the user's arrays), ``W_m`` ranges over the structured convs (GC, BGC, ...) and the
inner min is an exact in-sample least-squares fit.

:func:`approximability` runs a whole sweep (every method and N) from one data Gram
matrix and one weight stack and returns an :class:`ApproxSweep`: one
:class:`ApproxResult` per (method, N) with the empirical values next to the paper's
bounds and the exact expectations of :mod:`groupconv.approx.theory`.

Defaults (``ApproxConfig``): the §5.1 layer (n = m = 256, K = 3, 1-D), input length
D = 32 with zero ``"same"`` padding (the paper does not state D; D = 32 reproduces its
3.83e-3 remark), 256 data samples and 8 weight samples (the paper uses one S for both
and does not state it), He-normal weights, N(0, 1) data, seed 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from .. import _validate as v
from .._memory import check_fits
from ..errors import GroupConvError
from . import theory
from .data import (
    DATA_VARIANCE,
    DISTRIBUTIONS,
    INITS,
    as_input_shape,
    as_kernel,
    check_data,
    check_weights,
    gram_from_data,
    he_variance,
    pad_amounts,
    sample_data,
    sample_weights,
)
from .solvers import GramSolver, _blas_limits, reference_errors
from .structures import METHODS, Structure, structure

__all__ = ["ApproxConfig", "ApproxResult", "ApproxSweep", "approximability", "SOLVERS"]

#: Solver names: the fast Gram solver and the plain per-group lstsq reference.
SOLVERS = ("gram", "reference")


@dataclass(frozen=True)
class ApproxConfig:
    """Everything that defines a synthetic approximability experiment (BGC paper §5.1).

    Parameters
    ----------
    in_channels, out_channels : int
        n and m (paper: 256, 256).
    kernel : int or tuple
        Kernel size; an int is a 1-D conv (paper: K = 3).
    input_shape : int or tuple
        Input length D (1-D) or (H, W) (2-D); default 32.
    data_samples, weight_samples : int
        S (data) and S_w (weights) of Eq. 5.1; default 256 and 8.
    dist : {"normal", "uniform"}
        Data entries N(0, 1) or U(-1, 1).
    init : {"he_normal", "he_uniform"}
        Weight initialisation (variance 2 / (nK) either way).
    padding : {"same", "valid", "circular"} or int or tuple
        See :mod:`groupconv.approx.data`; default zero "same".
    seed : int
        Seeds the data and the weights (independent streams: the same seed gives the
        same weights for either ``dist``).
    """

    in_channels: int = 256
    out_channels: int = 256
    kernel: int | tuple[int, ...] = 3
    input_shape: int | tuple[int, ...] = 32
    data_samples: int = 256
    weight_samples: int = 8
    dist: str = "normal"
    init: str = "he_normal"
    padding: str | int | tuple[int, ...] = "same"
    seed: int = 0

    def __post_init__(self) -> None:
        v.positive_int("in_channels", self.in_channels)
        v.positive_int("out_channels", self.out_channels)
        kernel = as_kernel(self.kernel)
        object.__setattr__(self, "kernel", kernel)
        object.__setattr__(self, "input_shape", as_input_shape(self.input_shape, len(kernel)))
        v.positive_int("data samples", self.data_samples)
        v.positive_int("weight samples", self.weight_samples)
        v.one_of("dist", self.dist, DISTRIBUTIONS)
        v.one_of("init", self.init, INITS)
        pad_amounts(kernel, self.padding)  # validates the padding
        if isinstance(self.padding, list):
            object.__setattr__(self, "padding", tuple(self.padding))
        v.nonnegative_int("seed", self.seed)

    @property
    def taps(self) -> int:
        """K = prod(kernel)."""
        return math.prod(self.kernel)

    @property
    def weight_var(self) -> float:
        """He variance of one weight, 2 / (nK)."""
        return he_variance(self.in_channels, self.kernel)

    @property
    def data_var(self) -> float:
        """Variance of one data entry (1 for N(0, 1), 1/3 for U(-1, 1))."""
        return DATA_VARIANCE[self.dist]

    def _rngs(self) -> tuple[np.random.Generator, np.random.Generator]:
        data_seed, weight_seed = np.random.SeedSequence(self.seed).spawn(2)
        return np.random.default_rng(data_seed), np.random.default_rng(weight_seed)

    def sample_data(self) -> np.ndarray:
        """The data samples ``(S, n, *input_shape)`` drawn from this configuration's seed."""
        return sample_data(
            self.dist, self.data_samples, self.in_channels, self.input_shape, self._rngs()[0]
        )

    def sample_weights(self) -> np.ndarray:
        """The He weight samples ``(S_w, m, n, *kernel)`` drawn from this configuration's seed."""
        return sample_weights(
            self.weight_samples, self.out_channels, self.in_channels, self.kernel,
            self._rngs()[1], self.init,
        )

    def check_memory(self) -> None:
        """Refuse up front a sweep whose sampled data and dense weights alone (float64)
        exceed this machine's memory: a one-line :class:`~groupconv.errors.GroupConvError`
        naming the configuration, instead of an allocation failure part-way."""
        shape = self.input_shape if isinstance(self.input_shape, tuple) else (self.input_shape,)
        data = self.data_samples * self.in_channels * math.prod(shape)
        weights = self.weight_samples * self.out_channels * self.in_channels * math.prod(self.kernel)
        check_fits(
            f"approx with n={self.in_channels} m={self.out_channels} input={shape} "
            f"S={self.data_samples} S_w={self.weight_samples} (data and dense weights in float64)",
            8 * (data + weights),
        )


@dataclass(frozen=True)
class ApproxResult:
    """Approximability of one structure (method, N): empirical values and theory.

    Attributes
    ----------
    method : str
        ``"gc"``, ``"bgc"`` or a custom structure's name.
    groups : int
        N.
    E : float
        Eq. 5.1.
    E_stderr : float
        Standard error of E over the weight samples (0 with one weight sample).
    rel_E : float
        Eq. 5.3: E / (mean ||W_t||^2 * mean ||x_s||^2).
    rel_output_E : float
        E / mean ||W_t x_s||^2: the fraction of the output energy the structure cannot
        reproduce (1 - R^2 of the fit; the most readable number for a real layer).
    errors : tuple of float
        The per-weight-sample values averaged into E.
    unknowns, rows : int
        Largest unknowns per output channel (features x K) and data rows (S x positions).
    bound_thm, bound_iid : float or None
        Theorem 3.5/3.6 bounds on Rel.E: ``K(1-1/N)^2`` / ``K(1-1/N)^3`` and
        ``K(1-1/N)/n`` / ``K(1-1/N)^2/n`` (GC / BGC; None for other structures).
    rel_E_population : float
        ``(1-1/N)/n`` (GC) or ``(1-2/N)/n`` (BGC), in general ``sum_k m_k (n - r_k) / (m n^2)``:
        exact for He weights, white data, infinite data, no padding effects.
    expected_E, expected_E_low, expected_E_high, expected_rel_E : float or None
        ``E[E]`` for the synthetic configuration (theory.expected_E) with its bracket;
        None for user data or user weights.
    expected_kind : str or None
        ``"exact"``, ``"bracketed"`` or ``"approximate"`` (see theory.ExpectedE).
    expected_E_given_data : float or None
        ``E_W[E | these data]`` for He weights, exact: E differs from it only by the
        weight-sampling noise (None for user weights).
    """

    method: str
    groups: int
    E: float
    E_stderr: float
    rel_E: float
    rel_output_E: float
    errors: tuple[float, ...]
    unknowns: int
    rows: int
    bound_thm: float | None = None
    bound_iid: float | None = None
    rel_E_population: float | None = None
    expected_E: float | None = None
    expected_E_low: float | None = None
    expected_E_high: float | None = None
    expected_rel_E: float | None = None
    expected_kind: str | None = None
    expected_E_given_data: float | None = None

    def as_dict(self, errors: bool = False) -> dict:
        """JSON-ready dict (the per-sample ``errors`` only when asked for)."""
        out = asdict(self)
        if errors:
            out["errors"] = list(self.errors)
        else:
            del out["errors"]
        return out


@dataclass(frozen=True)
class ApproxSweep:
    """All results of one sweep plus what they were computed from.

    Attributes
    ----------
    config : ApproxConfig
        The configuration (for user data/weights: the geometry only).
    results : tuple of ApproxResult
        One per (method, N), in the order asked for.
    mean_sq_norm_W, mean_sq_norm_x : float
        ``mean ||W_t||^2`` and ``mean ||x_s||^2`` (Eq. 5.3's denominator).
    data_source, weight_source : str
        ``"normal"``/``"uniform"``/``"user"`` and ``"he_normal"``/``"he_uniform"``/``"user"``.
    solver : str
        ``"gram"`` or ``"reference"``.
    """

    config: ApproxConfig
    results: tuple[ApproxResult, ...]
    mean_sq_norm_W: float
    mean_sq_norm_x: float
    data_source: str
    weight_source: str
    solver: str = "gram"

    def records(self, errors: bool = False) -> list[dict]:
        """One dict per (method, N) (the CLI's ``--json`` output)."""
        return [r.as_dict(errors) for r in self.results]

    def to_frame(self):
        """A pandas DataFrame of :meth:`records`."""
        import pandas as pd

        return pd.DataFrame(self.records())

    def _repr_html_(self) -> str:
        """Notebook display: the main columns of :meth:`to_frame`, one row per (method, N)."""
        columns = ["method", "groups", "E", "E_stderr", "rel_E", "expected_rel_E", "bound_iid", "bound_thm"]
        return self.to_frame()[columns]._repr_html_()

    def methods(self) -> list[str]:
        """The method names, in order of first appearance."""
        return list(dict.fromkeys(r.method for r in self.results))

    def select(self, method: str) -> list[ApproxResult]:
        """Results of one method, sorted by N."""
        chosen = sorted((r for r in self.results if r.method == method), key=lambda r: r.groups)
        if not chosen:
            raise GroupConvError(f"no results for method {method!r}; have {', '.join(self.methods())}")
        return chosen

    def result(self, method: str, groups: int) -> ApproxResult:
        """The result for one (method, N)."""
        for r in self.select(method):
            if r.groups == groups:
                return r
        raise GroupConvError(f"no result for method {method!r} with N={groups}")

    def slope(self, method: str, expected: bool = False) -> float:
        """Fitted slope of log E against log(1 - 1/N) (Fig. 1); of the expectation if asked.

        BGC at N = 2 is left out: its leading error term (1 - 2/N)/n vanishes there, so what
        remains is finite-sample and padding residue, not a point on the power law (with it
        the slope of N = 2, 4, 8 comes out near 90 instead of about 2.5).
        """
        chosen = [r for r in self.select(method) if not (method == "bgc" and r.groups <= 2)]
        values = [r.expected_E if expected else r.E for r in chosen]
        if expected and any(x is None for x in values):
            raise GroupConvError("no expected values for user data or weights")
        return theory.fitted_slope([r.groups for r in chosen], values)

    def table(self) -> str:
        """A readable fixed-width table of the main columns."""
        header = (
            f"{'method':<8}{'N':>4}{'E':>12}{'+-':>9}{'rel_E':>11}{'expected':>11}"
            f"{'population':>11}{'bound_iid':>11}{'bound_thm':>11}{'lost out':>9}"
        )
        lines = [header, "-" * len(header)]

        def fmt(x, width, spec):
            return f"{'-':>{width}}" if x is None else f"{x:>{width}{spec}}"

        for r in self.results:
            lines.append(
                f"{r.method:<8}{r.groups:>4}{r.E:>12.5g}{r.E_stderr:>9.2g}{r.rel_E:>11.4e}"
                + fmt(r.expected_rel_E, 11, ".4e")
                + fmt(r.rel_E_population, 11, ".4e")
                + fmt(r.bound_iid, 11, ".4e")
                + fmt(r.bound_thm, 11, ".4f")
                + f"{r.rel_output_E:>9.1%}"
            )
        cfg = self.config
        lines.append(
            f"n={cfg.in_channels} m={cfg.out_channels} kernel={cfg.kernel} input={cfg.input_shape} "
            f"padding={cfg.padding!r} data={self.data_source} x {cfg.data_samples} "
            f"weights={self.weight_source} x {cfg.weight_samples} solver={self.solver}"
        )
        for method in self.methods():
            left_out = " (N = 2 left out: (1 - 2/N) = 0)" if method == "bgc" and any(
                r.groups <= 2 for r in self.select(method)) else ""
            try:
                lines.append(f"slope of log E vs log(1-1/N), {method}: {self.slope(method):.3f}{left_out}")
            except GroupConvError:
                if left_out:  # say why the slope is missing rather than dropping the line
                    lines.append(f"slope of log E vs log(1-1/N), {method}: needs two N > 2{left_out}")
        return "\n".join(lines)


def _structures(methods, groups, structures) -> list[Structure]:
    """The structures to measure, each (method, N) once, in the order first asked for."""
    chosen: list[Structure] = []
    seen: set = set()
    for method in methods:
        v.one_of("method", method, METHODS)
        for n_groups in groups:
            key = (method, v.positive_int("groups", n_groups))
            if key not in seen:
                seen.add(key)
                chosen.append(structure(*key))
    for s in structures:
        if not isinstance(s, Structure):
            raise GroupConvError(f"not a structure (needs name, groups, layout): {s!r}")
        if not any(s is c for c in chosen):
            chosen.append(s)
    if not chosen:
        raise GroupConvError("nothing to measure: give at least one method and N, or a structure")
    return chosen


def _ratio(num: float, den: float) -> float:
    """``num / den``, and 0 when both are 0 (zero weights or zero output: the fit is exact)."""
    if den == 0:
        return 0.0 if num == 0 else float("inf")
    return num / den


def approximability(
    config: ApproxConfig | None = None,
    *,
    groups: int | Iterable[int] = (4, 8, 16, 32, 64),
    methods: Sequence[str] = ("gc", "bgc"),
    structures: Sequence[Structure] = (),
    data=None,
    weights=None,
    solver: str = "gram",
    given_data: bool = True,
    progress: bool = False,
    **overrides,
) -> ApproxSweep:
    """E and Rel.E (BGC paper Eq. 5.1, 5.3) of GC/BGC for every N, with the theory alongside.

    Parameters
    ----------
    config : ApproxConfig, optional
        The experiment; keyword ``overrides`` replace its fields
        (``approximability(in_channels=64, out_channels=64, dist="uniform")``).
    groups : iterable of int
        The N values (each must divide n and m); a repeated N is computed once.
    methods : sequence of {"gc", "bgc"}
        Structures measured at every N.
    structures : sequence of Structure
        Extra structures (e.g. :class:`~groupconv.approx.structures.PartitionedGCStructure`).
    data : array (S, n, *spatial), optional
        User data instead of sampled ones (the config's ``dist`` and sizes are ignored).
    weights : array (S_w, m, n, *kernel), optional
        User dense weights instead of He samples.
    solver : {"gram", "reference"}
        Fast Gram solver (default) or the plain lstsq reference (slow; for checking).
    given_data : bool
        Also compute ``E_W[E | data]`` (exact, He weights only; costs about as much as E).
    progress : bool
        tqdm bar (stderr) over the structures.

    Raises
    ------
    GroupConvError
        For bad input, and before any work when sampled data and dense weights would not
        fit in memory (:meth:`ApproxConfig.check_memory`).
    """
    cfg = replace(config or ApproxConfig(), **overrides) if overrides else (config or ApproxConfig())
    v.one_of("solver", solver, SOLVERS)
    group_list = [groups] if isinstance(groups, (int, np.integer)) else list(groups)
    chosen = _structures(methods, group_list, structures)
    if data is None:
        cfg.check_memory()
        x, data_source = cfg.sample_data(), cfg.dist
    else:
        x = check_data(data)
        data_source = "user"
    dims = x.ndim - 2
    if weights is None:
        if len(cfg.kernel) != dims:
            raise GroupConvError(f"data have {dims} spatial dimensions but kernel is {cfg.kernel}")
        cfg = replace(cfg, in_channels=x.shape[1], input_shape=tuple(x.shape[2:]))
        w, weight_source = cfg.sample_weights(), cfg.init
    else:
        w = check_weights(weights, dims)
        weight_source = "user"
    if w.shape[2] != x.shape[1]:
        raise GroupConvError(f"weights expect {w.shape[2]} input channels but the data have {x.shape[1]}")
    cfg = replace(
        cfg,
        in_channels=x.shape[1],
        out_channels=w.shape[1],
        kernel=tuple(w.shape[3:]),
        input_shape=tuple(x.shape[2:]),
        data_samples=x.shape[0],
        weight_samples=w.shape[0],
    )
    # One BLAS thread for the whole sweep: its products are small enough that a second
    # thread gains little on an idle machine and loses 3x on a busy one (benchmarks/approx).
    with _blas_limits():
        return _sweep(cfg, chosen, x, w, data_source, weight_source, solver, given_data, progress)


def _sweep(cfg, chosen, x, w, data_source, weight_source, solver, given_data, progress) -> ApproxSweep:
    layouts = [s.layout(cfg.in_channels, cfg.out_channels) for s in chosen]
    gram = gram_from_data(x, cfg.kernel, cfg.padding, progress=progress)
    fast = GramSolver(gram, w)
    mean_sq_w = float(np.mean(np.sum(w.reshape(w.shape[0], -1) ** 2, axis=1)))
    mean_sq_x = gram.mean_sq_norm * gram.scale
    synthetic = data_source != "user" and weight_source != "user"

    steps = layouts
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(layouts, desc="approx", unit="structure")
    results = []
    for layout in steps:
        if solver == "gram":
            fit = fast.solve(layout)
            errors, unknowns = fit.errors, fit.unknowns
        else:
            errors = reference_errors(x, w, layout, cfg.padding)
            unknowns = max(layout.group_rank(k) for k in range(len(layout.uses))) * cfg.taps
        E = float(np.sum(errors / errors.size))  # a mean that cannot overflow near 1e308
        top = float(np.max(errors)) or 1.0
        stderr = (float((errors / top).std(ddof=1) / math.sqrt(errors.size)) * top
                  if errors.size > 1 else 0.0)
        b_thm, b_iid = theory.bounds_for(layout.name, layout.groups, cfg.taps, cfg.in_channels)
        pop = theory.rel_E_population_layout(layout)
        extra: dict = {}
        if synthetic:
            exp = theory.expected_E(
                layout, cfg.kernel, cfg.input_shape, cfg.padding, cfg.data_samples,
                cfg.weight_var, cfg.data_var, gaussian=cfg.dist == "normal",
            )
            extra = dict(
                expected_E=exp.E, expected_E_low=exp.low, expected_E_high=exp.high,
                expected_rel_E=exp.rel_E, expected_kind=exp.kind,
            )
        if given_data and weight_source != "user":
            extra["expected_E_given_data"] = fast.expected_error(layout, cfg.weight_var)
        results.append(
            ApproxResult(
                method=layout.name,
                groups=layout.groups,
                E=E,
                E_stderr=stderr,
                rel_E=_ratio(E / gram.scale, mean_sq_w * gram.mean_sq_norm),
                rel_output_E=_ratio(E, float(np.sum(fast.totals / fast.totals.size))),
                errors=tuple(float(e) for e in errors),
                unknowns=int(unknowns),
                rows=gram.rows,
                bound_thm=b_thm,
                bound_iid=b_iid,
                rel_E_population=pop,
                **extra,
            )
        )
    return ApproxSweep(
        config=cfg,
        results=tuple(results),
        mean_sq_norm_W=mean_sq_w,
        mean_sq_norm_x=mean_sq_x,
        data_source=data_source,
        weight_source=weight_source,
        solver=solver,
    )
