"""Energy-per-frame models of a network (or a single layer) on one platform.

Every model is a small object with named parameters (:class:`Param`: unit, bounds), a
:meth:`~EnergyModel.predict` and a :meth:`~EnergyModel.fit`. A model's energy per frame
is a sum over the layers plus a network-level overhead::

    E(workload, B) = sum_l layer_energy(layer_l, B) + overhead(B)

so that a per-layer choice (the number of groups of one conv) can be optimised layer by
layer (:mod:`groupconv.fit.predict`).

Models
------
``paper``
    The E2GC paper's law (Eq. 1 read as an energy model):
    ``E = c * sum_l M_l * (alpha / AI_l(B))**beta`` with the batch-aware arithmetic
    intensity ``AI_l(B) = B M_l / (P_l + B A_l)`` (weights read once per batch,
    activations once per frame). alpha and c enter only as ``s = c * alpha**beta``:
    the fitted parameters are ``scale`` (= s) and ``beta``.
``macs``
    Baseline: energy affine in the MAC count,
    ``E = e_mac * M + e_frame + e_batch / B``.
``gpu`` (:data:`BEST_MODEL`)
    Physically grounded model of a GPU running grouped convolutions:
    ``E = sum_l [e_mac M_l + e_weight P_l / B + (e_tile + e_tile_batch / B) (g_l h_l)^kappa]
    + e_frame + e_batch / B``. Besides energy per MAC and per weight read (once per
    batch), every layer pays an overhead that grows with its number of "tiles" (one
    output row of one group, ``g_l h_l``), part of it per frame and part per batch
    (launch/scheduling work that a larger batch amortises). This is the term that makes
    depthwise and low-G group convs expensive although they have few MACs: g = m / G
    grows as the group size shrinks.

Conventions: energies in joules per frame, counts per frame (MACs ``M_l``, parameters
``P_l``, activations ``A_l`` of :class:`~groupconv.cost.ConvLayer`), ``B`` the batch
size. The paper's measurements are forward + backward passes while the counts are
forward counts: the constant factor (~3x MACs) is absorbed in the energy coefficients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.optimize import minimize_scalar

from .. import _validate as v
from ..cost import ConvLayer
from ..errors import GroupConvError
from ..lsq import nnls_relative
from .data import EnergyData, LayerArrays, Workload

__all__ = [
    "Param",
    "EnergyModel",
    "PaperModel",
    "MacsModel",
    "GpuModel",
    "MODELS",
    "BEST_MODEL",
    "get_model",
    "alpha_from_traffic",
]


@dataclass(frozen=True)
class Param:
    """One named model parameter with its unit and bounds (inclusive)."""

    name: str
    unit: str
    lower: float = 0.0
    upper: float = np.inf
    doc: str = ""


def _as_data(data: EnergyData | Workload | Sequence[Workload] | Sequence[ConvLayer]) -> LayerArrays:
    """Per-layer arrays of whatever describes the workloads to predict."""
    if isinstance(data, EnergyData):
        return data.layers
    if isinstance(data, Workload):
        return LayerArrays.from_workloads([data])
    items = list(data)
    if items and all(isinstance(x, Workload) for x in items):
        return LayerArrays.from_workloads(items)
    if items and all(isinstance(x, ConvLayer) for x in items):
        # a bare list of layers is one workload at the layers' batch size
        batches = {layer.batch for layer in items}
        if len(batches) != 1:
            raise GroupConvError(f"layers of one workload must share a batch size, got {sorted(batches)}")
        return LayerArrays.from_workloads([Workload(tuple(items), batches.pop())])
    raise GroupConvError("predict needs EnergyData, a Workload, a list of Workloads or a list of ConvLayers")


class EnergyModel:
    """Base class: named parameters, ``predict``, per-layer energy and ``fit``.

    Subclasses set :attr:`name`, :attr:`title`, :attr:`params` and implement
    :meth:`layer_energy` and :meth:`overhead` (and :meth:`initial_guess`).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    # --- parameters ------------------------------------------------------------------
    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) arrays in parameter order."""
        return (
            np.array([p.lower for p in self.params], dtype=float),
            np.array([p.upper for p in self.params], dtype=float),
        )

    def param_vector(self, params: Mapping[str, float] | Sequence[float] | np.ndarray) -> np.ndarray:
        """Parameters as an array in :attr:`param_names` order, checked against the bounds."""
        if isinstance(params, Mapping):
            missing = [n for n in self.param_names if n not in params]
            extra = [n for n in params if n not in self.param_names]
            if missing or extra:
                raise GroupConvError(
                    f"model {self.name!r} takes parameters {', '.join(self.param_names)}; "
                    + (f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(extra)}")
                )
            vec = np.array([params[n] for n in self.param_names], dtype=float)
        else:
            vec = np.asarray(params, dtype=float).reshape(-1)
            if len(vec) != len(self.params):
                raise GroupConvError(
                    f"model {self.name!r} takes {len(self.params)} parameters, got {len(vec)}"
                )
        lower, upper = self.bounds
        for p, x, lo, hi in zip(self.params, vec, lower, upper):
            if not np.isfinite(x) or x < lo or x > hi:
                raise GroupConvError(f"parameter {p.name} must lie in [{lo:g}, {hi:g}], got {float(x)!r}")
        return vec

    # --- the model ---------------------------------------------------------------------
    def layer_energy(self, params: np.ndarray, layers: LayerArrays) -> np.ndarray:
        """Energy per frame of each layer (J) at its workload's batch size."""
        raise NotImplementedError

    def overhead(self, params: np.ndarray, batch: np.ndarray) -> np.ndarray:
        """Network-level energy per frame that does not depend on the layers (J)."""
        return np.zeros_like(np.asarray(batch, dtype=float))

    def _predict_arrays(self, params: np.ndarray, layers: LayerArrays, batch: np.ndarray) -> np.ndarray:
        return layers.per_workload(self.layer_energy(params, layers)) + self.overhead(params, batch)

    def jacobian(self, params: np.ndarray, layers: LayerArrays, batch: np.ndarray) -> np.ndarray | None:
        """d(prediction)/d(params), one row per workload; ``None``: use finite differences."""
        return None

    def compile(self, layers: LayerArrays, batch: np.ndarray):
        """(predict(params), jacobian(params)) closures for repeated evaluation on fixed data."""
        return (
            lambda p: self._predict_arrays(p, layers, batch),
            lambda p: self.jacobian(p, layers, batch),
        )

    def predict(
        self,
        data: EnergyData | Workload | Sequence[Workload] | Sequence[ConvLayer],
        params: Mapping[str, float] | Sequence[float] | np.ndarray,
    ) -> np.ndarray:
        """Energy per frame (J) of each workload.

        ``data`` is an :class:`EnergyData`, a :class:`Workload`, a list of workloads, or a
        list of layers (one workload at the layers' batch size).
        """
        vec = self.param_vector(params)
        layers = _as_data(data)
        batch = np.zeros(layers.n_workloads)
        batch[layers.owner] = layers.batch
        return self._predict_arrays(vec, layers, batch)

    def initial_guess(self, data: EnergyData) -> np.ndarray:
        """A starting point for the optimiser (inside the bounds)."""
        raise NotImplementedError

    def notes(self, params: np.ndarray) -> list[str]:
        """What the fit can and cannot say about these parameters (identifiability)."""
        return []

    def derived(self, params: np.ndarray, cov: np.ndarray) -> dict[str, float | None]:
        """Quantities derived from the fitted parameters (e.g. c for a given alpha)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _LinearModel(EnergyModel):
    """A model linear in its (non-negative) parameters: E = X(workload) @ params."""

    def design(self, layers: LayerArrays, batch: np.ndarray) -> np.ndarray:
        """Design matrix, one row per workload, one column per parameter."""
        raise NotImplementedError

    def layer_design(self, layers: LayerArrays) -> np.ndarray:
        """Per-layer part of the design matrix (zeros in the overhead columns)."""
        raise NotImplementedError

    def layer_energy(self, params: np.ndarray, layers: LayerArrays) -> np.ndarray:
        return self.layer_design(layers) @ params

    def _predict_arrays(self, params: np.ndarray, layers: LayerArrays, batch: np.ndarray) -> np.ndarray:
        return self.design(layers, batch) @ params

    def jacobian(self, params: np.ndarray, layers: LayerArrays, batch: np.ndarray) -> np.ndarray:
        return self.design(layers, batch)

    def compile(self, layers: LayerArrays, batch: np.ndarray):
        design = self.design(layers, batch)  # computed once: the model is linear
        return (lambda p: design @ p, lambda p: design)

    def initial_guess(self, data: EnergyData) -> np.ndarray:
        # Non-negative least squares on relative residuals (X p / y - 1) is the exact
        # optimum of the relative loss; the optimiser then only polishes it.
        return nnls_relative(self.design(data.layers, data.batch), data.target)[0]


class PaperModel(EnergyModel):
    """The E2GC paper's law: E = c * sum_l M_l (alpha / AI_l(B))**beta (E2GC Eq. 1).

    Parameters
    ----------
    alpha : float, optional
        The on-chip data-reuse constant alpha in (0, 1], if known (given, or from a
        measured memory-traffic ratio with :func:`alpha_from_traffic`). It does not
        change the fit (alpha is not identifiable from energies); it lets the result
        report the energy scale c = scale / alpha**beta.

    Notes
    -----
    With ``AI_l(B) = B M_l / (P_l + B A_l)`` the law is
    ``E = s * sum_l M_l**(1 - beta) * (P_l / B + A_l)**beta`` with ``s = c alpha**beta``:
    only s (``scale``, in J per MAC**(1-beta) element**beta) and beta are identifiable.
    beta is bounded to [0, 1] (the paper states beta in (0, 1)); a fit that ends on a
    bound says so.
    """

    name = "paper"
    title = "E2GC paper's law (Eq. 1, batch-aware AI)"
    formula = "E = s * sum_l M_l^(1-beta) * (P_l/B + A_l)^beta,  s = c * alpha^beta"
    params = (
        Param("scale", "J/(MAC^(1-beta) element^beta)", 0.0, np.inf, "s = c * alpha**beta"),
        Param("beta", "1", 0.0, 1.0, "memory vs compute energy exponent"),
    )

    def __init__(self, alpha: float | None = None) -> None:
        self.alpha = None if alpha is None else v.in_interval("alpha", alpha, 0.0, 1.0, high_open=False)

    def __repr__(self) -> str:
        return f"PaperModel(alpha={self.alpha!r})"

    def layer_energy(self, params: np.ndarray, layers: LayerArrays) -> np.ndarray:
        scale, beta = params
        traffic = layers.params / layers.batch + layers.activations  # elements per frame
        return scale * layers.macs ** (1.0 - beta) * traffic**beta

    def jacobian(self, params: np.ndarray, layers: LayerArrays, batch: np.ndarray) -> np.ndarray:
        scale, beta = params
        traffic = layers.params / layers.batch + layers.activations
        unit = layers.macs ** (1.0 - beta) * traffic**beta  # per-layer energy at scale 1
        d_scale = layers.per_workload(unit)
        d_beta = scale * layers.per_workload(unit * np.log(traffic / layers.macs))
        return np.column_stack([d_scale, d_beta])

    def initial_guess(self, data: EnergyData) -> np.ndarray:
        # For each beta on a grid the best scale is closed-form (relative residuals).
        layers, y = data.layers, data.target
        best = None
        for beta in np.linspace(0.0, 1.0, 21):
            f = self._predict_arrays(np.array([1.0, beta]), layers, data.batch) / y
            scale = f.sum() / (f * f).sum()
            cost = np.sum((scale * f - 1.0) ** 2)
            if best is None or cost < best[0]:
                best = (cost, scale, beta)
        _, scale, beta = best
        return np.array([scale, min(max(beta, 0.02), 0.98)])

    def notes(self, params: np.ndarray) -> list[str]:
        scale, beta = params
        out = [
            "alpha and the energy scale c enter the law only as scale = c * alpha**beta: "
            "alpha is not identifiable from energies"
            + (f"; with the given alpha = {self.alpha:g}, c = scale / alpha**beta" if self.alpha else
               "; pin alpha (PaperModel(alpha=...), alpha_from_traffic) to report c"),
            "EPF of a forward + backward pass vs forward MACs: the ~3x factor is absorbed in scale",
        ]
        if beta <= 1e-6 or beta >= 1 - 1e-6:
            out.append(
                f"beta ended on its bound ({beta:g}): the data push the law outside the paper's "
                "beta in (0, 1)"
                + (" (beta = 1: energy proportional to data movement alone, MACs play no part)" if beta > 0.5 else
                   " (beta = 0: energy proportional to MACs alone)")
            )
        return out

    def derived(self, params: np.ndarray, cov: np.ndarray) -> dict[str, float | None]:
        scale, beta = params
        if self.alpha is None:
            return {"alpha": None, "c": None, "c_stderr": None}
        c = scale / self.alpha**beta
        # delta method: dc/dscale = alpha**-beta, dc/dbeta = -c ln(alpha)
        grad = np.array([self.alpha**-beta, -c * np.log(self.alpha)])
        free = np.isfinite(np.diag(cov))  # a parameter on a bound is held fixed
        var = float(grad[free] @ cov[np.ix_(free, free)] @ grad[free]) if free.any() else float("nan")
        return {"alpha": self.alpha, "c": float(c), "c_stderr": float(np.sqrt(var)) if var >= 0 else float("nan")}


class MacsModel(_LinearModel):
    """Baseline: energy affine in MACs, E = e_mac M + e_frame + e_batch / B."""

    name = "macs"
    title = "affine in MACs (baseline)"
    formula = "E = e_mac * M + e_frame + e_batch/B"
    params = (
        Param("e_mac_J", "J/MAC", doc="energy per multiply-accumulate"),
        Param("e_frame_J", "J", doc="fixed energy per frame"),
        Param("e_batch_J", "J", doc="fixed energy per batch (shared by its B frames)"),
    )

    def layer_design(self, layers: LayerArrays) -> np.ndarray:
        zeros = np.zeros_like(layers.macs)
        return np.column_stack([layers.macs, zeros, zeros])

    def design(self, layers: LayerArrays, batch: np.ndarray) -> np.ndarray:
        return np.column_stack([layers.per_workload(layers.macs), np.ones_like(batch), 1.0 / batch])

    def overhead(self, params: np.ndarray, batch: np.ndarray) -> np.ndarray:
        return params[1] + params[2] / np.asarray(batch, dtype=float)

    def notes(self, params: np.ndarray) -> list[str]:
        return ["e_frame and e_batch are network-level constants: they do not transfer to another network"]


class GpuModel(EnergyModel):
    """Energy per MAC, per weight read, per group-row tile, per frame and per batch.

    ``E = sum_l [e_mac M_l + e_weight P_l / B + (e_tile + e_tile_batch / B) (g_l h_l)^kappa]
    + e_frame + e_batch / B`` (all coefficients >= 0).

    * ``e_mac``: energy per MAC at the throughput the layers reach, static power x
      compute time included.
    * ``e_weight``: energy per weight per batch (weights are read, and updated in
      training, once per batch).
    * ``e_tile`` / ``e_tile_batch`` and ``kappa``: an overhead that grows with the
      number of *tiles*, one output row of one group (``g_l h_l`` per layer), per frame
      and per batch. A grouped conv runs a separate small GEMM per group: the smaller the
      group, the more tiles carry the same activations and the further the layer runs
      below peak. The per-batch part is what a larger batch amortises (launch and
      scheduling of per-group work). ``kappa`` in [0, 1.5] says how the overhead
      scales: 1 = every tile costs the same, < 1 = tiles increasingly overlap as their
      number grows, 0 = a fixed cost per layer.
    * ``e_frame`` / ``e_batch``: per-frame and per-batch constants (activation traffic,
      which does not depend on the grouping, batch norm, ReLU, the optimiser's fixed
      work, kernel launches of the layers that do not change).

    Parameters
    ----------
    kappa : float, optional
        Fix the tile exponent (e.g. 1.0: a model linear in its 6 parameters). By default
        kappa is fitted (7 parameters).

    Notes
    -----
    For a fixed kappa the model is linear: its relative-loss optimum is a non-negative
    least-squares problem. The fit profiles kappa (exact inner solve, bounded 1-D search)
    and then polishes all parameters together. The tile form (per group, per group-row,
    per group-pixel) was chosen by leave-one-variant-out error on the paper's data
    (docs/fit.md), so the LOO figures of the chosen form are slightly optimistic.
    """

    name = "gpu"
    title = "GPU model: MACs, weights, group-row tiles, fixed costs"
    formula = ("E = sum_l [e_mac*M_l + e_weight*P_l/B + (e_tile + e_tile_batch/B)*(g_l*h_l)^kappa]"
               " + e_frame + e_batch/B")
    _linear_params = (
        Param("e_mac_J", "J/MAC", doc="energy per multiply-accumulate"),
        Param("e_weight_J", "J/weight", doc="energy per weight per batch"),
        Param("e_tile_J", "J/tile^kappa", doc="tile overhead per frame"),
        Param("e_tile_batch_J", "J/tile^kappa", doc="tile overhead per batch"),
        Param("e_frame_J", "J", doc="fixed energy per frame"),
        Param("e_batch_J", "J", doc="fixed energy per batch"),
    )
    _kappa_param = Param("kappa", "1", 0.0, 1.5, "tile overhead exponent")

    def __init__(self, kappa: float | None = None) -> None:
        self.kappa = None if kappa is None else v.in_interval("kappa", kappa, 0.0, 1.5, low_open=False, high_open=False)

    def __repr__(self) -> str:
        return f"GpuModel(kappa={self.kappa!r})"

    @property
    def params(self) -> tuple[Param, ...]:  # type: ignore[override]
        return self._linear_params + (() if self.kappa is not None else (self._kappa_param,))

    def _kappa(self, params: np.ndarray) -> float:
        return float(params[6]) if self.kappa is None else self.kappa

    @staticmethod
    def tiles(layers: LayerArrays) -> np.ndarray:
        """Group-row tiles per layer, g * h_out."""
        return layers.groups * layers.out_height

    def layer_design(self, layers: LayerArrays, kappa: float) -> np.ndarray:
        """Per-layer columns for e_mac, e_weight, e_tile, e_tile_batch."""
        t = self.tiles(layers) ** kappa
        return np.column_stack([layers.macs, layers.params / layers.batch, t, t / layers.batch])

    def design(self, layers: LayerArrays, batch: np.ndarray, kappa: float | None = None) -> np.ndarray:
        """Design matrix of the 6 linear coefficients at ``kappa`` (one row per workload)."""
        kappa = self.kappa if kappa is None else kappa
        if kappa is None:
            raise GroupConvError("design needs a kappa when the model fits kappa")
        per_layer = self.layer_design(layers, kappa)
        summed = np.column_stack([layers.per_workload(per_layer[:, j]) for j in range(4)])
        return np.column_stack([summed, np.ones_like(batch), 1.0 / batch])

    def layer_energy(self, params: np.ndarray, layers: LayerArrays) -> np.ndarray:
        return self.layer_design(layers, self._kappa(params)) @ params[:4]

    def overhead(self, params: np.ndarray, batch: np.ndarray) -> np.ndarray:
        return params[4] + params[5] / np.asarray(batch, dtype=float)

    def jacobian(self, params: np.ndarray, layers: LayerArrays, batch: np.ndarray) -> np.ndarray:
        kappa = self._kappa(params)
        jac = self.design(layers, batch, kappa)
        if self.kappa is None:
            tiles = self.tiles(layers)
            d_kappa = (params[2] + params[3] / layers.batch) * tiles**kappa * np.log(tiles)
            jac = np.column_stack([jac, layers.per_workload(d_kappa)])
        return jac

    def _nnls(self, data: EnergyData, kappa: float) -> tuple[np.ndarray, float]:
        """Exact relative-loss optimum of the linear coefficients at ``kappa`` (and its cost)."""
        coef, residual = nnls_relative(self.design(data.layers, data.batch, kappa), data.target)
        return coef, residual**2

    def initial_guess(self, data: EnergyData) -> np.ndarray:
        if self.kappa is not None:
            return self._nnls(data, self.kappa)[0]
        # profile kappa: grid, then a bounded 1-D search around the best grid point
        lo, hi = self._kappa_param.lower, self._kappa_param.upper
        grid = np.linspace(lo, hi, 31)
        costs = [self._nnls(data, k)[1] for k in grid]
        i = int(np.argmin(costs))
        bracket = (grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)])
        found = minimize_scalar(lambda k: self._nnls(data, k)[1], bounds=bracket, method="bounded",
                                options={"xatol": 1e-6})
        kappa = float(found.x) if found.fun <= costs[i] else float(grid[i])
        return np.append(self._nnls(data, kappa)[0], kappa)

    def notes(self, params: np.ndarray) -> list[str]:
        return [
            "e_frame and e_batch are network-level constants (activation traffic, which does "
            "not depend on the grouping, is inside e_frame): they do not transfer to another network",
            "energies include static power x time; forward + backward work is absorbed in the coefficients",
        ] + ([f"kappa fixed at {self.kappa:g}"] if self.kappa is not None else [])


#: Registry of the models by name.
MODELS: dict[str, type[EnergyModel]] = {
    PaperModel.name: PaperModel,
    MacsModel.name: MacsModel,
    GpuModel.name: GpuModel,
}
#: The model with the lowest leave-one-variant-out error on the paper's data.
BEST_MODEL: str = GpuModel.name


def get_model(name: str, **kwargs) -> EnergyModel:
    """A model by name (``paper``, ``macs``, ``gpu``); ``alpha=`` goes to the paper model,
    ``kappa=`` (fix the tile exponent) to the gpu model."""
    v.one_of("model", name, MODELS)
    if kwargs.get("alpha") is not None and name != PaperModel.name:
        raise GroupConvError(f"alpha applies to the paper model only, not to model {name!r}")
    if kwargs.get("kappa") is not None and name != GpuModel.name:
        raise GroupConvError(f"kappa applies to the gpu model only, not to model {name!r}")
    if name == PaperModel.name:
        return PaperModel(alpha=kwargs.get("alpha"))
    if name == GpuModel.name:
        return GpuModel(kappa=kwargs.get("kappa"))
    return MODELS[name]()


def alpha_from_traffic(
    measured_bytes: float,
    layers: Sequence[ConvLayer],
    dtype: str | int = "float32",
) -> float:
    """alpha as measured off-chip traffic over the model's compulsory traffic.

    The paper's ``alpha / AI`` is the number of memory accesses per MAC actually made;
    ``1 / AI`` counts every weight once per batch and every activation once per frame
    (:meth:`ConvLayer.bytes_moved`). So alpha = measured DRAM bytes of one batch (from a
    profiler, e.g. ``dram__bytes`` in Nsight Compute) / ``sum_l bytes_moved(dtype)``.

    Parameters
    ----------
    measured_bytes : float
        Off-chip bytes read + written for one batch through ``layers``.
    layers : sequence of ConvLayer
        The layers, at the batch size of the measurement.
    dtype : str or int
        Element type (name or bytes per element).

    Returns
    -------
    float
        alpha in (0, 1]; a ratio above 1 (more traffic than the compulsory one, e.g.
        spills) is outside the paper's range and raises.
    """
    measured = v.finite_positive("measured_bytes", measured_bytes)
    layers = list(layers)
    if not layers:
        raise GroupConvError("alpha_from_traffic needs at least one layer")
    compulsory = sum(layer.bytes_moved(dtype) for layer in layers)
    ratio = measured / compulsory
    return v.in_interval("alpha (measured / compulsory traffic)", ratio, 0.0, 1.0, high_open=False)
