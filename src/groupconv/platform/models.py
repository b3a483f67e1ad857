"""Per-kernel models of the time (and energy) of one operator call, on plain numbers.

One model per **kernel type**, as nn-Meter does (Zhang et al., MobiSys 2021): an
operator class is split by the kernel the library actually runs. On a CPU, torch sends a
float32 convolution either to oneDNN (``aten::mkldnn_convolution``) or to its native
im2col + GEMM path (``aten::_slow_conv2d_forward``); the rule is ``ConvParams::use_mkldnn``
in ``aten/src/ATen/native/Convolution.cpp``, reproduced in :func:`cpu_conv_uses_mkldnn`
and checked against ``torch.profiler`` in the tests. The two paths differ by a large
factor in MAC/s, which is what makes jumps such as MobileNet-V1 G = 2 vs G = 1 and 4.

Two model forms (per call, the whole batch), fitted on **relative** residuals so that a
10 us op counts as much as a 10 ms one:

* compute kernels (convs, matmul): additive non-negative cost terms ("linear")::

      t = c0 + c1 macs + c2 weight_bytes + c3 act_bytes + c4 groups + c5 groups*batch
             + c6 macs/cin_per_group + c7 macs/cout_per_group + c8 macs/out_pixels
             + c9 macs/min(cin, cout per group)^2

  ``c0`` is the fixed cost of a call, ``1 / c1`` a sustained MAC rate, the per-group
  terms the loop over groups (the native path runs one GEMM per group), and the last
  four the MACs spent with a short GEMM dimension (low utilisation);
* memory-bound kernels: a fixed cost plus a power law ("power")::

      t = c0 + exp(theta0 + theta1 log bytes + theta2 log(N*C))

The roofline (:class:`Roofline`) bounds every call from below and classifies it as
memory- or compute-bound, like NeuSight's roofline-bounded utilisation (Lee et al.,
ASPLOS 2025); an operator class the platform never measured is predicted from the
roofline alone.

Imports neither torch nor zeus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import GroupConvError
from ..lsq import jacobian_covariance, kfold_splits, nnls_relative
from ..vocab import DTYPE_BYTES

__all__ = [
    "KERNELS",
    "FEATURES",
    "MATMUL_TERMS",
    "Roofline",
    "KernelModel",
    "OpFeatures",
    "FUSED_KERNELS",
    "LOOP_MODULES",
    "collapse_loop_ops",
    "conv_is_transposed",
    "cpu_conv_uses_mkldnn",
    "kernel_of",
    "features_of",
    "hidden_copy_features",
    "COPYING_OPS",
    "PAD_OPS",
    "fit_kernel_model",
]

#: Kernel types a platform file may hold a model for.
KERNELS: tuple[str, ...] = (
    "conv_mkldnn",  # oneDNN dense / grouped conv (CPU), cuDNN on a GPU
    "conv_dw",  # depthwise conv (groups == in_channels > 1) on oneDNN / cuDNN
    "conv_slow",  # torch's native im2col + GEMM path (CPU), a loop over groups (1-D/2-D/3-D, dilated)
    "conv_transpose",  # transposed conv on oneDNN (CPU) / cuDNN
    "conv_transpose_slow",  # torch's native slow_conv_transpose2d/3d (CPU)
    "matmul",
    "attention",  # fused scaled-dot-product attention (flash on CPU)
    "rnn_loop",  # a recurrent layer the CPU runs as a C++ loop of small ops (GRU, RNN): priced whole
    "mha",  # the fused multi-head-attention fast path (_native_multi_head_attention)
    "encoder_layer",  # the fused transformer encoder layer fast path (_transformer_encoder_layer_fwd)
    "norm",
    "elementwise",
    "activation",
    "pool",
    "reduction",
    "softmax",
    "copy",
    "transpose",  # a copy that reorders its input (x.permute(...).contiguous(), a non-contiguous input copied)
    "cat",
    "embedding",
    "rnn",
    "view",  # an op that moves no data and computes nothing (view, transpose, empty): dispatch only
    "other",
)

#: Terms of the additive (linear) model of the compute kernels: each a cost in its own
#: right (MACs; weight and activation traffic; a per-group and per-group-per-frame loop
#: overhead; MACs spent with a short GEMM dimension: few input or output channels per
#: group, few output pixels, a small channel count squared).
_CONV_TERMS = ("macs", "weight_bytes", "act_bytes", "groups", "groups_x_batch", "macs_per_cin_group",
               "macs_per_cout_group", "macs_per_pixel", "macs_per_min_channels_sq")
#: Model form of each kernel: "linear" (additive non-negative terms) or "power".
FORMS: dict[str, str] = {k: "power" for k in KERNELS}
#: Features of each kernel's model (log-features for "power", terms for "linear").
FEATURES: dict[str, tuple[str, ...]] = {k: ("log_bytes", "log_outer") for k in KERNELS}
for _k in ("conv_mkldnn", "conv_dw", "conv_slow", "conv_transpose", "conv_transpose_slow"):
    FEATURES[_k] = _CONV_TERMS
    FORMS[_k] = "linear"
for _k in ("mha", "encoder_layer"):
    FEATURES[_k] = ("macs", "bytes")
    FORMS[_k] = "linear"
#: A GEMM (M x K) @ (K x N), ``groups`` of them for a batched one: additive terms like a
#: conv's, with M, K, N in the conv fields (``out_pixels``, ``cin_per_group``,
#: ``cout_per_group``): MACs, traffic, and the MACs spent with a short K (M N output
#: elements: each written once), a short N (M K: the left operand streamed per output
#: column block) or a short M (K N: the right operand streamed per row block).
MATMUL_TERMS: tuple[str, ...] = ("macs", "weight_bytes", "act_bytes", "groups", "macs_per_cin_group",
                                 "macs_per_cout_group", "macs_per_pixel", "macs_per_min_channels_sq")
FEATURES["matmul"] = MATMUL_TERMS
FORMS["matmul"] = "linear"
# fused attention loops over batch x heads; a fused RNN layer over its time steps
FEATURES["attention"] = ("macs", "bytes", "outer")
FORMS["attention"] = "linear"
FEATURES["rnn"] = ("macs", "bytes", "lead")
FORMS["rnn"] = "linear"
FEATURES["rnn_loop"] = ("macs", "bytes", "lead")  # lead: the number of small ops the loop dispatches
FORMS["rnn_loop"] = "linear"

#: Fused operators the CPU runs as one kernel (seen when a model is traced on the
#: device, :mod:`groupconv.platform.predict`), by aten name: their kernel type.
FUSED_KERNELS: dict[str, str] = {
    "aten._native_multi_head_attention": "mha",
    "aten._transformer_encoder_layer_fwd": "encoder_layer",
    "aten.mkldnn_rnn_layer": "rnn",
    "groupconv.rnn_loop": "rnn_loop",
}
FEATURES["other"] = ("log_macs", "log_bytes")
#: Softmax over the last dim: per element, per row, and per element of rows shorter than
#: a vector register (8 or 16 floats), which the CPU kernel runs scalar (a row of 7 or 14
#: costs 15-20x per element what a row of 16 does here).
FEATURES["softmax"] = ("bytes", "outer", "bytes_short_rows_8", "bytes_short_rows_16")
FORMS["softmax"] = "linear"

#: Operators whose CPU kernel makes a non-contiguous input contiguous before it runs
#: (``input.contiguous()`` in the kernel; invisible in a trace): priced as the op plus a
#: ``transpose`` of the strided input bytes (:func:`hidden_copy_features`).
COPYING_OPS: tuple[str, ...] = ("native_layer_norm.", "_softmax.", "_log_softmax.")

#: Recurrent modules the CPU runs as a C++ loop of small aten ops (no fused kernel):
#: their ops are priced as one ``rnn_loop`` call per module call.
LOOP_MODULES: tuple[str, ...] = ("GRU", "RNN")
FEATURES["view"] = ()  # no data moved, nothing computed: a constant (the dispatch)

#: Features a power-law model extrapolates along (beyond its calibrated range, the call
#: is larger or smaller); any other feature is held within its calibrated range at
#: prediction time, so that a secondary term cannot blow up outside it.
_EXTRAPOLATED = frozenset(("log_bytes", "log_macs"))


@dataclass(frozen=True)
class OpFeatures:
    """What one operator call does, as the models see it (per call, the whole batch).

    ``op`` is the operator name (e.g. ``"aten.gelu.default"``): memory-bound classes get
    one model per operator where the calibration measured it, like nn-Meter's kernels.
    The conv fields (per-group channels, output pixels per frame, kernel taps) are 1 for
    other ops; ``outer`` is the product of the first two dims of the first input (N * C
    for NCHW: the number of planes a norm or pooling kernel loops over).
    """

    kernel: str
    macs: float
    bytes: float
    groups: int = 1
    op: str = ""
    batch: int = 1
    cin_per_group: int = 1
    cout_per_group: int = 1
    out_pixels: int = 1
    taps: int = 1
    outer: int = 1
    weight_bytes: float = 0.0
    lead: int = 1
    phase: str = "forward"
    row: int = 1
    strided_bytes: float = 0.0

    def value(self, name: str) -> float:
        if not name.startswith("log_"):
            return self._term(name)
        values = {
            "log_macs": math.log(max(self.macs, 1.0)),
            "log_bytes": math.log(max(self.bytes, 1.0)),
            "log_cin_per_group": math.log(max(self.cin_per_group, 1)),
            "log_cout_per_group": math.log(max(self.cout_per_group, 1)),
            "log_out_pixels": math.log(max(self.out_pixels, 1)),
            "log_taps": math.log(max(self.taps, 1)),
            "log_groups": math.log(max(self.groups, 1)),
            "log_outer": math.log(max(self.outer, 1)),
            "log_lead": math.log(max(self.lead, 1)),
        }
        return values[name]

    def _term(self, name: str) -> float:
        m = self.macs
        small = min(self.cin_per_group, self.cout_per_group)
        terms = {
            "macs": m,
            "bytes": self.bytes,
            "weight_bytes": self.weight_bytes,
            "act_bytes": max(self.bytes - self.weight_bytes, 0.0),
            "groups": float(self.groups),
            "groups_x_batch": float(self.groups * self.batch),
            "macs_per_cin_group": m / max(self.cin_per_group, 1),
            "macs_per_cout_group": m / max(self.cout_per_group, 1),
            "macs_per_pixel": m / max(self.out_pixels, 1),
            "macs_per_min_channels_sq": m / max(small, 1) ** 2,
            "macs_x_taps": m * self.taps,  # backward: a large kernel's weight gradient (platform/backward.py)
            "outer": float(self.outer),
            "lead": float(self.lead),
            "bytes_short_rows_8": self.bytes if self.row < 8 else 0.0,
            "bytes_short_rows_16": self.bytes if self.row < 16 else 0.0,
        }
        return float(terms[name])

    def vector(self, names: Sequence[str]) -> np.ndarray:
        return np.array([self.value(n) for n in names])


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


def conv_is_transposed(op) -> bool:
    """Whether a conv ``OpCount`` is a transposed convolution (from its shapes).

    The counter's op for ``aten.convolution`` keeps the shapes, not the ``transposed``
    flag. A transposed conv's weight is ``(C_in, C_out / g, *k)`` (its input has
    ``w[0]`` channels, a conv's has ``w[1] * g``), and with stride > 1 its output is
    larger than its input plus the kernel reach (a conv's never is). A stride-1
    transposed conv with as many input as output channels per group looks like a conv
    and is taken as one.
    """
    if getattr(op, "op_class", "") == "conv_transpose":
        return True
    shapes = tuple(tuple(s) for s in op.input_shapes)
    if len(shapes) < 2 or not op.output_shapes:
        return False
    if "convolution_backward" in str(getattr(op, "op", "")) and len(shapes) >= 3:
        out, x, w = shapes[0], shapes[1], shapes[2]  # (grad_output, input, weight)
    else:
        x, w, out = shapes[0], shapes[1], tuple(op.output_shapes[0])
    if len(x) < 3 or len(w) != len(x) or len(out) != len(x):
        return False
    groups = int(getattr(op, "groups", 1) or 1)
    if x[1] != w[1] * groups and x[1] == w[0]:
        return True
    return any(o > i + (k - 1) for o, i, k in zip(out[2:], x[2:], w[2:]))


def _conv_geometry(op) -> tuple[tuple[int, ...], tuple[int, ...], int, int]:
    """(input shape, weight shape, stride, groups) of a conv OpCount."""
    shapes = tuple(tuple(s) for s in op.input_shapes)
    if len(shapes) < 2:
        raise GroupConvError(f"conv op {op.op!r} has no weight shape among its inputs {shapes}")
    x, w = shapes[0], shapes[1]
    if "convolution_backward" in str(getattr(op, "op", "")) and len(shapes) >= 3:
        x, w = shapes[1], shapes[2]  # (grad_output, input, weight): the forward conv's geometry
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
    ``"matmul"``; an op that neither computes nor moves data is ``"view"``; every other
    op is its ``op_class``.
    """
    op_class = getattr(op, "op_class", "other")
    name = str(getattr(op, "op", ""))
    packet = name.rsplit(".", 1)[0] if name.count(".") >= 2 else name
    if packet in FUSED_KERNELS:
        return FUSED_KERNELS[packet]
    if op_class not in ("conv", "conv_transpose"):
        if op.macs == 0 and op.bytes_read + op.bytes_written == 0:
            return "view"
        if packet.split(".")[-1] in PAD_OPS:
            return "copy"
        if op_class == "copy" and getattr(op, "strided_bytes", 0):
            return "transpose"
        return op_class if op_class in KERNELS else "other"
    x, w, stride, groups = _conv_geometry(op)
    transposed = conv_is_transposed(op)
    if len(x) == len(w) - 1:  # an unbatched input
        x = (1, *x)
    depthwise = not transposed and groups > 1 and len(x) >= 2 and groups == int(x[1])
    if device.startswith("cuda"):
        return "conv_transpose" if transposed else ("conv_dw" if depthwise else "conv_mkldnn")
    # 1-D convs run as 2-D ones over a (1, L) map, 3-D as themselves: the same rule
    if not cpu_conv_uses_mkldnn(x, w, stride=stride, groups=groups, threads=threads,
                                dtype=getattr(op, "dtype", "float32")):
        return "conv_transpose_slow" if transposed else "conv_slow"
    if transposed:
        return "conv_transpose"
    return "conv_dw" if depthwise else "conv_mkldnn"


#: Padding operators (the counter's class ``pool``): a copy into a larger buffer, priced
#: by the ``copy`` models (a per-operator one where calibrated), not the pooling ones.
PAD_OPS: frozenset[str] = frozenset(("constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d",
                                     "replication_pad1d", "replication_pad2d", "replication_pad3d", "_pad_enum"))

#: Operators that normalise over the last dim(s): their ``outer`` is the number of rows.
_ROW_OPS: tuple[str, ...] = ("native_layer_norm", "_softmax", "_log_softmax", "_safe_softmax")

def _gemm_geometry(shapes: Sequence[Sequence[int]], dtype: object) -> dict[str, float]:
    """M, K, N (as ``out_pixels``, ``cin_per_group``, ``cout_per_group``), the batch of
    GEMMs (``groups``) and the right operand's bytes (``weight_bytes``) of a matmul op
    (``addmm(bias, a, b)``, ``mm(a, b)``, ``bmm``/``baddbmm`` on 3-D operands)."""
    mats = [tuple(s) for s in shapes if len(s) >= 2]
    if len(mats) < 2:
        return {}
    a, b = mats[-2], mats[-1]
    groups = int(math.prod(a[:-2])) if len(a) > 2 else 1
    itemsize = DTYPE_BYTES.get(str(dtype), 4)
    return {
        "out_pixels": max(1, int(a[-2])),
        "cin_per_group": max(1, int(a[-1])),
        "cout_per_group": max(1, int(b[-1])),
        "matmul_groups": max(1, groups),
        "weight_bytes": float(math.prod(b) * itemsize),
    }


def features_of(op, *, device: str = "cpu", threads: int = 1) -> OpFeatures:
    """:class:`OpFeatures` of an ``OpCount``-like object (per call)."""
    kernel = kernel_of(op, device=device, threads=threads)
    shapes = tuple(tuple(int(d) for d in s) for s in op.input_shapes)
    batch = shapes[0][0] if shapes and shapes[0] else 1
    extra: dict[str, float] = {}
    if kernel.startswith("conv") and len(shapes) >= 2 and op.output_shapes:
        x, w, _, groups = _conv_geometry(op)
        out = tuple(shapes[0] if "convolution_backward" in str(op.op) else op.output_shapes[0])
        itemsize = DTYPE_BYTES.get(str(getattr(op, "dtype", "float32")), 4)
        extra = {
            "weight_bytes": float(math.prod(w) * itemsize),
            "cin_per_group": int(w[1]),
            "cout_per_group": max(1, int(w[0]) // max(groups, 1)),
            "out_pixels": math.prod(out[2:]) if len(out) > 2 else 1,
            "taps": math.prod(w[2:]) if len(w) > 2 else 1,
        }
    elif kernel == "matmul":
        extra = _gemm_geometry(shapes, getattr(op, "dtype", "float32"))
    first = shapes[0] if shapes else ()
    name = str(getattr(op, "op", ""))
    if first and any(k in name for k in _ROW_OPS):
        # a norm or softmax over the last dim(s) loops over rows, whatever the layout
        # (B*T tokens, B*H*W channels-last pixels, B*heads*T scores); a layer norm's
        # rows: its input over its weight (forward), its saved mean (backward)
        if "layer_norm_backward" in name and len(shapes) > 2:
            rows = math.prod(shapes[2])
        elif "layer_norm" in name and len(shapes) > 1 and shapes[1]:
            rows = math.prod(first) // max(math.prod(shapes[1]), 1)
        else:
            rows = math.prod(first) // max(first[-1], 1)
        extra.setdefault("outer", max(1, int(rows)))
        extra.setdefault("row", max(1, int(math.prod(first) // max(int(rows), 1))))
    extra.setdefault("outer", int(math.prod(first[:2])) if first else 1)
    extra.setdefault("lead", int(first[0]) if first else 1)
    groups = int(extra.pop("matmul_groups", 0) or getattr(op, "groups", 1) or 1)
    return OpFeatures(
        kernel=kernel,
        macs=float(op.macs),
        bytes=float(op.bytes_read + op.bytes_written),
        groups=groups,
        op=str(getattr(op, "op", "")),
        batch=int(batch),
        phase=str(getattr(op, "phase", "forward") or "forward"),
        strided_bytes=_strided_bytes(op, kernel, shapes),
        **extra,
    )


def _strided_bytes(op, kernel: str, shapes) -> float:
    """The op's non-contiguous input bytes; 0 for an elementwise op whose inputs are all
    non-contiguous alike (it runs in their memory order: nothing is reordered)."""
    strided = float(getattr(op, "strided_bytes", 0) or 0)
    if strided and kernel in ("elementwise", "activation"):
        itemsize = DTYPE_BYTES.get(str(getattr(op, "dtype", "float32")), 4)
        if strided >= sum(math.prod(s) for s in shapes) * itemsize:
            return 0.0
    return strided


def hidden_copy_features(feats: OpFeatures) -> OpFeatures | None:
    """The ``transpose`` an op runs inside its kernel before its own work, or None.

    A layer norm or a softmax on a non-contiguous input (a channels-last view of an NCHW
    map, as ConvNeXt and Swin feed their norms) copies it contiguous first; a binary
    elementwise op reading operands of different layouts (a permuted residual added to a
    contiguous one) reads the strided one out of order. Either costs about a transposing
    copy of the strided bytes, which the trace does not show as an op.
    """
    if not feats.strided_bytes or feats.kernel in ("transpose", "view", "matmul") or feats.kernel.startswith("conv"):
        return None
    copies = any(k in feats.op for k in COPYING_OPS)
    mixed = feats.kernel == "elementwise"  # some inputs strided, some not (_strided_bytes)
    if not (copies or mixed):
        return None
    return OpFeatures(kernel="transpose", macs=0.0, bytes=2.0 * feats.strided_bytes, op="aten.clone.default",
                      outer=feats.outer, phase=feats.phase)


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
    """A fitted model of one kernel type: time (s) or energy (J) of one call.

    ``t = c0 + exp(theta_0 + sum_j theta_j * x_j)``, the ``x_j`` being the log-features
    named in ``features`` (log MACs, log bytes, and for convs the log of the per-group
    channels, output pixels, taps and groups): a fixed cost per call plus a power law in
    the shape, which lets the sustained rate grow with the size of the call (the
    utilisation curve of NeuSight, here per kernel type as in nn-Meter).

    Parameters
    ----------
    kernel : str
        The kernel type, or ``"kernel:op"`` for a per-operator model.
    features : tuple of str
    c0 : float
        Fixed cost of a call (s or J).
    theta : tuple of float
        The exponent's constant, then one coefficient per feature.
    c0_stderr, theta_stderr
        Standard errors (from the Jacobian at the optimum; NaN if singular).
    n : int
        Calibration points.
    fit_mape, cv_mape : float
        Mean absolute relative error on the fitted points, and 5-fold cross-validated
        (None with fewer than 10 points).
    quantity : {"time_s", "energy_J"}
    ranges : dict
        Min and max of each feature over the calibration points (extrapolation check).
    """

    kernel: str
    features: tuple[str, ...]
    c0: float
    theta: tuple[float, ...]
    c0_stderr: float
    theta_stderr: tuple[float, ...]
    n: int
    fit_mape: float
    cv_mape: float | None
    quantity: str = "time_s"
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    form: str = "power"

    def predict(self, feats: OpFeatures) -> float:
        """Predicted time (or energy) of one call."""
        if self.form == "linear":
            return float(self.c0 + sum(c * feats.value(n) for c, n in zip(self.theta, self.features)))
        z = self.theta[0]
        for t, name in zip(self.theta[1:], self.features):
            x = feats.value(name)
            if name not in _EXTRAPOLATED and name in self.ranges:
                lo, hi = self.ranges[name]
                x = min(max(x, lo), hi)
            z += t * x
        return float(self.c0 + math.exp(min(z, 50.0)))

    def as_dict(self) -> dict[str, object]:
        return {
            "kernel": self.kernel,
            "quantity": self.quantity,
            "form": self.form,
            "formula": ("c0 + sum(theta * features)" if self.form == "linear"
                        else "c0 + exp(theta[0] + sum(theta[1:] * features))"),
            "features": list(self.features),
            "c0": self.c0,
            "theta": list(self.theta),
            "c0_stderr": self.c0_stderr,
            "theta_stderr": list(self.theta_stderr),
            "n": self.n,
            "fit_mape": self.fit_mape,
            "cv_mape": self.cv_mape,
            "ranges": {k: list(v) for k, v in self.ranges.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> KernelModel:
        def num(x) -> float:
            return float("nan") if x is None else float(x)

        return cls(
            kernel=str(d["kernel"]),
            features=tuple(d["features"]),
            c0=float(d["c0"]),
            theta=tuple(float(c) for c in d["theta"]),
            c0_stderr=num(d.get("c0_stderr")),
            theta_stderr=tuple(num(c) for c in d["theta_stderr"]),
            n=int(d["n"]),
            fit_mape=float(d["fit_mape"]),
            cv_mape=None if d.get("cv_mape") is None else float(d["cv_mape"]),
            quantity=str(d.get("quantity", "time_s")),
            ranges={k: (float(v[0]), float(v[1])) for k, v in dict(d.get("ranges", {})).items()},
            form=str(d.get("form", "power")),
        )


def _fit_params(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Least squares on log residuals of ``y ~ c0 + exp(theta . [1, X])``; (params, cov).

    ``params = [log c0, theta...]``. Robust (soft-L1) loss: a point timed while the machine
    was busy pulls less.
    """
    from scipy.optimize import least_squares

    A = np.column_stack([np.ones(len(y)), X])
    ly = np.log(y)
    c0_init = 0.5 * float(y.min())
    theta0, *_ = np.linalg.lstsq(A, np.log(np.maximum(y - c0_init, 1e-3 * y)), rcond=None)
    p0 = np.concatenate([[math.log(c0_init)], theta0])

    def resid(p):
        z = np.clip(A @ p[1:], -700, 50)
        return np.log(np.exp(p[0]) + np.exp(z)) - ly

    def jac(p):
        z = np.clip(A @ p[1:], -700, 50)
        total = np.exp(p[0]) + np.exp(z)
        d0 = np.exp(p[0]) / total
        dz = (np.exp(z) / total)[:, None] * A
        return np.column_stack([d0, dz])

    sol = least_squares(resid, p0, jac=jac, loss="soft_l1", f_scale=0.1, max_nfev=2000)
    r = resid(sol.x)
    return sol.x, jacobian_covariance(jac(sol.x), float(r @ r), len(y) - len(sol.x))


def _predict_params(p: np.ndarray, X: np.ndarray) -> np.ndarray:
    A = np.column_stack([np.ones(len(X)), X])
    return np.exp(p[0]) + np.exp(np.clip(A @ p[1:], -700, 50))


def fit_kernel_model(
    kernel: str, feats: Sequence[OpFeatures], values: Sequence[float], *, quantity: str = "time_s",
    seed: int = 0, name: str | None = None, features: Sequence[str] | None = None,
) -> KernelModel:
    """Fit one kernel's model (:class:`KernelModel`) to measured per-call times (or energies).

    Parameters
    ----------
    kernel : str
        One of :data:`KERNELS` (selects the features).
    feats : sequence of OpFeatures
        One per measured call.
    values : sequence of float
        Measured time (s) or energy (J) of each call, > 0.
    quantity : {"time_s", "energy_J"}
    seed : int
        Seed of the cross-validation folds.
    name : str, optional
        The model's name (default ``kernel``; ``"kernel:op"`` for a per-operator model).
    features : sequence of str, optional
        Terms of a linear-form model other than the kernel's (:data:`FEATURES`).

    Returns
    -------
    KernelModel
        Only the features that vary are kept; with fewer points than features + 4, only
        log bytes (or log MACs); with fewer than 5 points, the exponent is fixed at 1
        (a fixed cost plus a cost proportional to the bytes or MACs).
    """
    if kernel not in FEATURES:
        raise GroupConvError(f"unknown kernel type {kernel!r}; one of {', '.join(KERNELS)}")
    if FORMS[kernel] == "linear":
        return _fit_linear(kernel, feats, values, quantity=quantity, seed=seed, name=name, features=features)
    y = np.asarray(values, dtype=float)
    if len(feats) != len(y) or len(y) == 0:
        raise GroupConvError(f"kernel {kernel!r}: need one value per call and at least one call")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise GroupConvError(f"kernel {kernel!r}: measured values must be finite and > 0")
    names = [n for n in FEATURES[kernel]]
    X = np.array([f.vector(names) for f in feats], dtype=float).reshape(len(y), len(names))
    keep = [j for j in range(len(names)) if np.ptp(X[:, j]) > 1e-9]
    names = [names[j] for j in keep]
    X = X[:, keep]
    if len(y) < len(names) + 4:
        names_small = [n for n in ("log_bytes", "log_macs") if n in names][:1]
        X = X[:, [names.index(n) for n in names_small]]
        names = names_small
    proportional = len(y) < 5 or not names
    if names and not proportional:
        p, cov = _fit_params(X, y)
    else:
        # too few points for an exponent: a fixed cost plus a cost proportional to the size
        c0 = 0.5 * float(y.min())
        if names:
            size = np.exp(X[:, 0])
            scale = float(np.median(np.maximum(y - c0, 0.1 * y) / size))
            p, X = np.array([math.log(c0), math.log(scale), 1.0]), X[:, :1]
        else:
            p = np.array([math.log(c0), math.log(max(float(np.median(y)) - c0, 1e-12))])
        cov = None
    pred = _predict_params(p, X)
    se = np.full(len(p), np.nan) if cov is None else np.sqrt(np.clip(np.diag(cov), 0, None))
    cv = None
    if len(y) >= 10 and names and not proportional:
        errs = []
        for train, fold in kfold_splits(len(y), 5, seed=seed):
            pf, _ = _fit_params(X[train], y[train])
            errs.extend(np.abs(_predict_params(pf, X[fold]) / y[fold] - 1.0))
        cv = float(np.mean(errs))
    c0 = float(math.exp(p[0]))
    return KernelModel(
        kernel=name or kernel,
        features=tuple(names),
        c0=c0,
        theta=tuple(float(t) for t in p[1:]),
        c0_stderr=float(c0 * se[0]),
        theta_stderr=tuple(float(s) for s in se[1:]),
        n=len(y),
        fit_mape=float(np.mean(np.abs(pred / y - 1.0))),
        cv_mape=cv,
        quantity=quantity,
        ranges={n: (float(X[:, j].min()), float(X[:, j].max())) for j, n in enumerate(names)},
    )


def _nnls_relative(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    """argmin_{c >= 0} sum ((A c) / y - 1)^2 (:func:`groupconv.lsq.nnls_relative`)."""
    return nnls_relative(A, y, maxiter=50 * A.shape[1])[0]


def _fit_linear(kernel, feats, values, *, quantity, seed, name, features=None) -> KernelModel:
    """``t = c0 + sum_j c_j term_j`` with every coefficient >= 0, on relative residuals."""
    y = np.asarray(values, dtype=float)
    if len(feats) != len(y) or len(y) == 0:
        raise GroupConvError(f"kernel {kernel!r}: need one value per call and at least one call")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise GroupConvError(f"kernel {kernel!r}: measured values must be finite and > 0")
    names = list(features or FEATURES[kernel])
    T = np.array([f.vector(names) for f in feats], dtype=float).reshape(len(y), len(names))
    keep = [j for j in range(len(names)) if np.ptp(T[:, j]) > 0]
    # with few points keep the MACs and bytes terms only
    if len(y) < len(keep) + 5:
        keep = [j for j in keep if names[j] in ("macs", "bytes", "act_bytes")][: max(0, len(y) - 2)]
    names = [names[j] for j in keep]
    A = np.column_stack([np.ones(len(y)), T[:, keep]])
    c = _nnls_relative(A, y)
    rel = A @ c / y - 1.0
    se = np.full(len(c), np.nan)
    free = np.flatnonzero(c > 0)
    dof = len(y) - len(free)
    if len(free) and dof > 0:
        cov = jacobian_covariance(A[:, free] / y[:, None], float(rel @ rel), dof)
        if cov is not None:
            se[free] = np.sqrt(np.clip(np.diag(cov), 0, None))
        se[c == 0] = 0.0
    cv = None
    if len(y) >= 10:
        errs = []
        for train, fold in kfold_splits(len(y), 5, seed=seed):
            errs.extend(np.abs(A[fold] @ _nnls_relative(A[train], y[train]) / y[fold] - 1.0))
        cv = float(np.mean(errs))
    return KernelModel(
        kernel=name or kernel,
        features=tuple(names),
        c0=float(c[0]),
        theta=tuple(float(v) for v in c[1:]),
        c0_stderr=float(se[0]),
        theta_stderr=tuple(float(v) for v in se[1:]),
        n=len(y),
        fit_mape=float(np.mean(np.abs(rel))),
        cv_mape=cv,
        quantity=quantity,
        ranges={n: (float(T[:, j].min()), float(T[:, j].max())) for n, j in zip(names, keep)},
        form="linear",
    )


def collapse_loop_ops(count, model, phase: str):
    """``count`` with the ``phase`` ops of each call of a :data:`LOOP_MODULES` module merged
    into one op ``groupconv.rnn_loop``: its MACs and bytes are the sums of the counter's, and
    its leading dim is the number of ops merged (what the loop dispatches). A GRU on a CPU
    runs its forward as a few matmuls and gate ops per time step, dispatched from C++, and
    autograd runs its backward as thousands of small nodes: the calibrated ``rnn_loop`` and
    ``backward:rnn_loop`` models hold their per-op cost. Ops of the other phase, and of other
    modules, are unchanged."""
    from dataclasses import replace

    types = {name: type(m).__name__ for name, m in model.named_modules()} if hasattr(model, "named_modules") else {}
    loops = {name for name, t in types.items() if t in LOOP_MODULES}  # "" when the model is one
    if not loops:
        return count

    def owner(module: str) -> str | None:
        for name in loops:
            if name == "" or module == name or module.startswith(name + "."):
                return name
        return None

    out, run = [], []

    def flush():
        if run:
            first = run[0]
            out.append(replace(
                first, op="groupconv.rnn_loop.default", op_class="rnn", module=owner(first.module) or first.module,
                input_shapes=((len(run),), *first.input_shapes), output_shapes=run[-1].output_shapes,
                macs=sum(o.macs for o in run), bytes_read=sum(o.bytes_read for o in run),
                bytes_written=sum(o.bytes_written for o in run), layer=None, groups=1,
            ))
            run.clear()

    for o in count.ops:
        who = owner(o.module) if getattr(o, "phase", "forward") == phase else None
        if who is None or (run and owner(run[0].module) != who):
            flush()
        if who is None:
            out.append(o)
        else:
            run.append(o)
    flush()
    return replace(count, ops=tuple(out))
