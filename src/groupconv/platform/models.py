"""Per-kernel models of the time (and energy) of one operator call, on plain numbers.

One model per **kernel type**, as nn-Meter does (Zhang et al., MobiSys 2021): an
operator class is split by the kernel the library actually runs. On a CPU, torch sends a
float32 convolution either to oneDNN (``aten::mkldnn_convolution``) or to its native
im2col + GEMM path (``aten::_slow_conv2d_forward``); the rule is ``ConvParams::use_mkldnn``
in ``aten/src/ATen/native/Convolution.cpp``, reproduced in :func:`cpu_conv_uses_mkldnn`
and checked against ``torch.profiler`` in the tests. The two paths differ by a large
factor in MAC/s, which is what makes jumps such as MobileNet-V1 G = 2 vs G = 1 and 4.

Each kernel model is linear in what the call does (per call, the whole batch)::

    t = c0 + c_macs * macs + c_bytes * bytes [+ c_groups * groups  (native conv path)]

with non-negative coefficients, fitted by least squares on **relative** residuals
(``t_pred / t - 1``), so a 10 us op counts as much as a 10 ms one. ``c0`` is the fixed cost
of a call (dispatch, thread wake-up), ``1 / c_macs`` a sustained MAC rate and ``1 / c_bytes``
a sustained bandwidth; the native path loops over groups, hence the per-group term. The
roofline (:class:`Roofline`) bounds every call from below and classifies it as memory- or
compute-bound, like NeuSight's roofline-bounded utilisation (Lee et al., ASPLOS 2025);
an operator class the platform never measured is predicted from the roofline alone.

Imports neither torch nor zeus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import GroupConvError

__all__ = [
    "KERNELS",
    "FEATURES",
    "Roofline",
    "KernelModel",
    "OpFeatures",
    "cpu_conv_uses_mkldnn",
    "kernel_of",
    "features_of",
    "fit_kernel_model",
]

#: Kernel types a platform file may hold a model for.
KERNELS: tuple[str, ...] = (
    "conv_mkldnn",  # oneDNN dense / grouped conv (CPU), cuDNN on a GPU
    "conv_dw",  # depthwise conv (groups == in_channels > 1) on oneDNN / cuDNN
    "conv_slow",  # torch's native im2col + GEMM path (CPU), a loop over groups
    "conv_transpose",
    "matmul",
    "attention",
    "norm",
    "elementwise",
    "activation",
    "pool",
    "reduction",
    "softmax",
    "copy",
    "cat",
    "embedding",
    "rnn",
    "other",
)

#: Feature names of each kernel's linear model (the column order of its coefficients).
FEATURES: dict[str, tuple[str, ...]] = {k: ("calls", "macs", "bytes") for k in KERNELS}
FEATURES["conv_slow"] = ("calls", "macs", "bytes", "groups")


@dataclass(frozen=True)
class OpFeatures:
    """What one operator call does, as the models see it (per call, the whole batch)."""

    kernel: str
    macs: float
    bytes: float
    groups: int = 1

    def vector(self) -> np.ndarray:
        values = {"calls": 1.0, "macs": float(self.macs), "bytes": float(self.bytes), "groups": float(self.groups)}
        return np.array([values[name] for name in FEATURES[self.kernel]])


def cpu_conv_uses_mkldnn(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    threads: int = 1,
    dtype: str = "float32",
) -> bool:
    """Whether torch runs this CPU convolution on oneDNN (else: the native im2col path).

    ``ConvParams::use_mkldnn`` of ``aten/src/ATen/native/Convolution.cpp`` for a
    float32 CPU tensor::

        (is_strided || is_dilated || N >= 16 || kernel != 1x1 || threads > 1) &&
        (groups > 1 || (kh > 3 && kw > 3) || N > 1 || N * C * H * W > 20480)

    bfloat16/half inputs go to oneDNN whenever the CPU supports them (taken as always).
    """
    if dtype in ("bfloat16", "float16"):
        return True
    if dtype != "float32":
        return False
    n = int(input_shape[0])
    numel = math.prod(int(s) for s in input_shape)
    if len(weight_shape) >= 4:
        kh, kw = int(weight_shape[-2]), int(weight_shape[-1])
    else:
        kh, kw = 1, int(weight_shape[-1])
    strides = (stride,) if isinstance(stride, int) else tuple(stride)
    dilations = (dilation,) if isinstance(dilation, int) else tuple(dilation)
    first = (
        any(s != 1 for s in strides)
        or any(d != 1 for d in dilations)
        or n >= 16
        or kh != 1
        or kw != 1
        or threads > 1
    )
    second = groups > 1 or (kh > 3 and kw > 3) or n > 1 or numel > 20480
    return bool(first and second)


def _conv_geometry(op) -> tuple[tuple[int, ...], tuple[int, ...], int, int]:
    """(input shape, weight shape, stride, groups) of a conv OpCount."""
    shapes = tuple(tuple(s) for s in op.input_shapes)
    if len(shapes) < 2:
        raise GroupConvError(f"conv op {op.op!r} has no weight shape among its inputs {shapes}")
    x, w = shapes[0], shapes[1]
    groups = int(getattr(op, "groups", 1) or 1)
    layer = getattr(op, "layer", None)
    stride = int(getattr(layer, "stride", 1) or 1) if layer is not None else 1
    if stride == 1 and op.output_shapes and len(x) >= 3 and len(op.output_shapes[0]) == len(x):
        out = op.output_shapes[0]
        # with stride 1 the output is at least input - (k - 1) (no padding); anything smaller
        # is a strided conv (ConvLayer says stride 1 when the strides differ along the axes)
        if any(o < i - (k - 1) for o, i, k in zip(out[2:], x[2:], w[2:])):
            stride = 2
    return x, w, stride, groups


def kernel_of(op, *, device: str = "cpu", threads: int = 1) -> str:
    """The kernel type of one operator call (an ``OpCount``-like object).

    Convolutions are split by the path the library takes (:func:`cpu_conv_uses_mkldnn`
    on a CPU; depthwise vs the rest on a GPU); ``linear``/``addmm``/``mm``/``bmm`` are
    ``"matmul"``; every other op is its ``op_class``.
    """
    op_class = getattr(op, "op_class", "other")
    if op_class != "conv":
        return op_class if op_class in KERNELS else "other"
    x, w, stride, groups = _conv_geometry(op)
    depthwise = groups > 1 and len(x) >= 2 and groups == int(x[1])
    if device.startswith("cuda"):
        return "conv_dw" if depthwise else "conv_mkldnn"
    if len(x) != 4 or not cpu_conv_uses_mkldnn(
        x, w, stride=stride, groups=groups, threads=threads, dtype=getattr(op, "dtype", "float32")
    ):
        return "conv_slow"
    return "conv_dw" if depthwise else "conv_mkldnn"


def features_of(op, *, device: str = "cpu", threads: int = 1) -> OpFeatures:
    """:class:`OpFeatures` of an ``OpCount``-like object (per call)."""
    return OpFeatures(
        kernel=kernel_of(op, device=device, threads=threads),
        macs=float(op.macs),
        bytes=float(op.bytes_read + op.bytes_written),
        groups=int(getattr(op, "groups", 1) or 1),
    )


@dataclass(frozen=True)
class Roofline:
    """Roofline constants of a platform (measured by microbenchmarks).

    Parameters
    ----------
    peak_macs_per_s : float
        Best sustained MAC rate (large GEMMs and convs).
    bandwidth_bytes_per_s : float
        Best sustained memory bandwidth (large copies and elementwise ops).
    fixed_s : float
        Time of the smallest op call (dispatch overhead).
    """

    peak_macs_per_s: float
    bandwidth_bytes_per_s: float
    fixed_s: float

    @property
    def ridge_macs_per_byte(self) -> float:
        """Arithmetic intensity (MAC/byte) above which a call is compute-bound."""
        return self.peak_macs_per_s / self.bandwidth_bytes_per_s

    def bound(self, macs: float, bytes_: float) -> str:
        """``"compute"`` or ``"memory"``: which roof limits this call."""
        return "compute" if macs / self.peak_macs_per_s >= bytes_ / self.bandwidth_bytes_per_s else "memory"

    def time_s(self, macs: float, bytes_: float) -> float:
        """Lower bound ``fixed_s + max(macs / peak, bytes / bandwidth)`` of one call."""
        return self.fixed_s + max(macs / self.peak_macs_per_s, bytes_ / self.bandwidth_bytes_per_s)

    def as_dict(self) -> dict[str, float]:
        return {
            "peak_macs_per_s": self.peak_macs_per_s,
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
            "fixed_s": self.fixed_s,
        }


@dataclass(frozen=True)
class KernelModel:
    """A fitted linear model of one kernel type (time in s, or energy in J, per call).

    Parameters
    ----------
    kernel : str
    features : tuple of str
        Names of the coefficients (see :data:`FEATURES`).
    coef, stderr : tuple of float
        Non-negative least-squares estimates on relative residuals, and their standard
        errors (from the covariance of the free coefficients; 0 for one held at 0).
    n : int
        Number of calibration points.
    fit_mape : float
        Mean absolute relative error on the points it was fitted to.
    cv_mape : float or None
        5-fold cross-validated mean absolute relative error (None with < 10 points).
    quantity : {"time_s", "energy_J"}
    """

    kernel: str
    features: tuple[str, ...]
    coef: tuple[float, ...]
    stderr: tuple[float, ...]
    n: int
    fit_mape: float
    cv_mape: float | None
    quantity: str = "time_s"
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def predict(self, feats: OpFeatures) -> float:
        """Predicted time (or energy) of one call."""
        values = {"calls": 1.0, "macs": feats.macs, "bytes": feats.bytes, "groups": float(feats.groups)}
        return float(sum(c * values[name] for c, name in zip(self.coef, self.features)))

    def as_dict(self) -> dict[str, object]:
        return {
            "kernel": self.kernel,
            "quantity": self.quantity,
            "features": list(self.features),
            "coef": list(self.coef),
            "stderr": list(self.stderr),
            "n": self.n,
            "fit_mape": self.fit_mape,
            "cv_mape": self.cv_mape,
            "ranges": {k: list(v) for k, v in self.ranges.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> KernelModel:
        return cls(
            kernel=str(d["kernel"]),
            features=tuple(d["features"]),
            coef=tuple(float(c) for c in d["coef"]),
            stderr=tuple(float(c) for c in d["stderr"]),
            n=int(d["n"]),
            fit_mape=float(d["fit_mape"]),
            cv_mape=None if d.get("cv_mape") is None else float(d["cv_mape"]),
            quantity=str(d.get("quantity", "time_s")),
            ranges={k: (float(v[0]), float(v[1])) for k, v in dict(d.get("ranges", {})).items()},
        )


def _nnls_relative(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """argmin_{c >= 0} sum ((X c) / y - 1)^2, with columns scaled for conditioning."""
    from scipy.optimize import nnls

    A = X / y[:, None]
    scale = np.linalg.norm(A, axis=0)
    scale[scale == 0] = 1.0
    c, _ = nnls(A / scale, np.ones_like(y))
    return c / scale


def fit_kernel_model(
    kernel: str, feats: Sequence[OpFeatures], values: Sequence[float], *, quantity: str = "time_s", seed: int = 0
) -> KernelModel:
    """Fit one kernel's linear model to measured per-call times (or energies).

    Parameters
    ----------
    kernel : str
        One of :data:`KERNELS`.
    feats : sequence of OpFeatures
        One per measured call (all of this kernel).
    values : sequence of float
        Measured time (s) or energy (J) of each call, > 0.
    quantity : {"time_s", "energy_J"}
    seed : int
        Seed of the cross-validation folds.

    Returns
    -------
    KernelModel
    """
    if kernel not in FEATURES:
        raise GroupConvError(f"unknown kernel type {kernel!r}; one of {', '.join(KERNELS)}")
    y = np.asarray(values, dtype=float)
    if len(feats) != len(y) or len(y) == 0:
        raise GroupConvError(f"kernel {kernel!r}: need one value per call and at least one call")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise GroupConvError(f"kernel {kernel!r}: measured values must be finite and > 0")
    names = FEATURES[kernel]
    X = np.array([f.vector() for f in feats], dtype=float)
    # a feature that never varies (e.g. groups always 1) cannot be told from the constant
    keep = [j == 0 or np.ptp(X[:, j]) > 0 for j in range(X.shape[1])]
    if len(y) < 3:
        keep = [j == 0 for j in range(X.shape[1])] if len(y) < 2 else keep[:2] + [False] * (len(keep) - 2)
    cols = [j for j, k in enumerate(keep) if k]
    c_sub = _nnls_relative(X[:, cols], y)
    coef = np.zeros(X.shape[1])
    coef[cols] = c_sub
    pred = X @ coef
    rel = pred / y - 1.0
    # standard errors of the free (non-zero) coefficients, from the weighted design
    stderr = np.zeros(X.shape[1])
    free = [j for j in cols if coef[j] > 0]
    dof = len(y) - len(free)
    if free and dof > 0:
        A = X[:, free] / y[:, None]
        sigma2 = float(rel @ rel) / dof
        try:
            cov = sigma2 * np.linalg.inv(A.T @ A)
            stderr[free] = np.sqrt(np.clip(np.diag(cov), 0, None))
        except np.linalg.LinAlgError:
            stderr[free] = np.nan
    cv = None
    if len(y) >= 10:
        rng = np.random.default_rng(seed)
        folds = np.array_split(rng.permutation(len(y)), 5)
        errs = []
        for fold in folds:
            train = np.setdiff1d(np.arange(len(y)), fold)
            c_f = np.zeros(X.shape[1])
            c_f[cols] = _nnls_relative(X[np.ix_(train, cols)], y[train])
            errs.extend(np.abs(X[fold] @ c_f / y[fold] - 1.0))
        cv = float(np.mean(errs))
    ranges = {name: (float(X[:, j].min()), float(X[:, j].max())) for j, name in enumerate(names) if name != "calls"}
    return KernelModel(
        kernel=kernel,
        features=names,
        coef=tuple(float(c) for c in coef),
        stderr=tuple(float(s) for s in stderr),
        n=len(y),
        fit_mape=float(np.mean(np.abs(rel))),
        cv_mape=cv,
        quantity=quantity,
        ranges=ranges,
    )
