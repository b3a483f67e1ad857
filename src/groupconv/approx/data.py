"""Inputs and weights for the approximability measure, and the patch (im2col) form of a conv.

Everything here works on plain numpy arrays:

* data ``x`` of shape ``(S, n, D)`` (1-D) or ``(S, n, H, W)`` (2-D): S samples, n channels;
* weights ``W`` of shape ``(S_w, m, n, k)`` or ``(S_w, m, n, kh, kw)``: S_w dense convs;
* the patch matrix ``P`` of ``x``: one row per (sample, output position), one column per
  (input channel, tap), in the same order as ``W[t].reshape(m, -1)``; the conv is then
  ``y = P @ W[t].reshape(m, -1).T`` (a cross-correlation, as in torch).

Padding conventions (``padding=``):

* ``"same"`` (default): zeros, ``dilation * (k - 1)`` in total per axis, ``total // 2`` on
  the left and the rest on the right (torch's ``padding="same"``); the output has the
  input's size.
* ``"valid"``: no padding; the output is ``D - dilation * (k - 1)`` long.
* ``"circular"``: like ``"same"`` but wrapping around (periodic signals, no boundary).
* an int or a tuple of ints: that many zeros on both sides of each axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import _validate as v
from ..errors import GroupConvError

__all__ = [
    "DISTRIBUTIONS",
    "DATA_VARIANCE",
    "INITS",
    "PADDINGS",
    "as_kernel",
    "as_input_shape",
    "pad_amounts",
    "output_shape",
    "inside_mask",
    "inside_taps",
    "sample_data",
    "sample_weights",
    "he_variance",
    "check_data",
    "check_weights",
    "as_real_array",
    "pad",
    "patches",
    "DataGram",
    "gram_from_data",
]

#: Data distributions of the BGC paper's §5.1 (per entry, i.i.d.).
DISTRIBUTIONS = ("normal", "uniform")
#: Variance of one data entry: N(0, 1) and U(-1, 1).
DATA_VARIANCE = {"normal": 1.0, "uniform": 1.0 / 3.0}
#: Weight initialisations: He (Kaiming) normal, as in §5.1, and He uniform (same variance).
INITS = ("he_normal", "he_uniform")
#: Named paddings (an int or a tuple of ints is also accepted).
PADDINGS = ("same", "valid", "circular")


def as_kernel(kernel: int | Sequence[int]) -> tuple[int, ...]:
    """Kernel size as a tuple of positive ints (``3`` -> ``(3,)``, ``(3, 3)`` stays)."""
    if isinstance(kernel, (int, np.integer)) and not isinstance(kernel, bool):
        return (v.positive_int("kernel", kernel),)
    if isinstance(kernel, Sequence) and 1 <= len(kernel) <= 2:
        return tuple(v.positive_int("kernel", k) for k in kernel)
    raise GroupConvError(f"kernel must be an int or a 1- or 2-tuple of ints, got {kernel!r}")


def as_input_shape(shape: int | Sequence[int], dims: int) -> tuple[int, ...]:
    """Spatial input size as a tuple with ``dims`` entries (an int or a 1-tuple is repeated)."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        return (v.positive_int("input size", shape),) * dims
    if isinstance(shape, Sequence) and len(shape) in (1, dims):
        return tuple(v.positive_int("input size", s) for s in shape) * (dims // len(shape))
    raise GroupConvError(f"input size must be an int or a {dims}-tuple of ints, got {shape!r}")


def _padding_per_axis(padding, dims: int) -> tuple | str:
    if isinstance(padding, str):
        return v.one_of("padding", padding, PADDINGS)
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        return (v.nonnegative_int("padding", padding),) * dims
    if isinstance(padding, Sequence) and len(padding) == dims:
        return tuple(v.nonnegative_int("padding", p) for p in padding)
    raise GroupConvError(
        f"padding must be one of {', '.join(PADDINGS)}, an int or a {dims}-tuple, got {padding!r}"
    )


def pad_amounts(
    kernel: Sequence[int], padding="same", dilation: int = 1
) -> tuple[tuple[int, int], ...]:
    """``(left, right)`` padding per spatial axis for a kernel and a padding rule."""
    rule = _padding_per_axis(padding, len(kernel))
    if rule == "valid":
        return tuple((0, 0) for _ in kernel)
    if rule in ("same", "circular"):
        amounts = []
        for k in kernel:
            total = dilation * (k - 1)
            amounts.append((total // 2, total - total // 2))
        return tuple(amounts)
    return tuple((p, p) for p in rule)


def output_shape(
    input_shape: Sequence[int],
    kernel: Sequence[int],
    padding="same",
    stride: int = 1,
    dilation: int = 1,
) -> tuple[int, ...]:
    """Spatial output size of the conv; raises if the kernel does not fit."""
    out = []
    for size, k, (left, right) in zip(input_shape, kernel, pad_amounts(kernel, padding, dilation)):
        span = dilation * (k - 1) + 1
        length = (size + left + right - span) // stride + 1
        if size + left + right < span:
            raise GroupConvError(
                f"kernel {tuple(kernel)} (dilation {dilation}) does not fit an input of size "
                f"{tuple(input_shape)} with padding {padding!r}"
            )
        out.append(length)
    return tuple(out)


def inside_mask(
    input_shape: Sequence[int], kernel: Sequence[int], padding="same", dilation: int = 1
) -> np.ndarray:
    """Which kernel taps fall inside the input, per output position (stride 1).

    Returns a bool array ``(positions, K)`` (positions in C order, taps in the order of
    the patch columns). With zero padding the taps that land on the padding see zeros;
    with ``"valid"`` or ``"circular"`` padding every entry is True.
    """
    kernel = tuple(kernel)
    out = output_shape(input_shape, kernel, padding, 1, dilation)
    circular = isinstance(padding, str) and padding == "circular"
    per_axis = []
    for size, k, n_out, (left, _right) in zip(
        input_shape, kernel, out, pad_amounts(kernel, padding, dilation)
    ):
        if circular:
            per_axis.append(np.ones((n_out, k), dtype=bool))
            continue
        pos = np.arange(n_out)[:, None] - left + dilation * np.arange(k)[None, :]
        per_axis.append((pos >= 0) & (pos < size))
    mask = per_axis[0]
    for axis_mask in per_axis[1:]:
        # (p1, k1) x (p2, k2) -> (p1, p2, k1, k2) -> (p1*p2, k1*k2)
        mask = (mask[:, None, :, None] & axis_mask[None, :, None, :]).reshape(
            mask.shape[0] * axis_mask.shape[0], mask.shape[1] * axis_mask.shape[1]
        )
    return mask


def inside_taps(
    input_shape: Sequence[int], kernel: Sequence[int], padding="same", dilation: int = 1
) -> np.ndarray:
    """For every output position (stride 1), how many kernel taps fall inside the input.

    The theory (:mod:`groupconv.approx.theory`) needs these counts: the output energy of
    a random conv at a position is proportional to them. Returns an int array of the
    output shape.
    """
    out = output_shape(input_shape, tuple(kernel), padding, 1, dilation)
    return inside_mask(input_shape, kernel, padding, dilation).sum(axis=1).reshape(out)


def sample_data(
    dist: str,
    samples: int,
    channels: int,
    input_shape: Sequence[int],
    rng: np.random.Generator,
) -> np.ndarray:
    """``samples`` inputs with i.i.d. entries: ``"normal"`` N(0, 1) or ``"uniform"`` U(-1, 1)."""
    v.one_of("dist", dist, DISTRIBUTIONS)
    shape = (v.positive_int("data samples", samples), v.positive_int("channels", channels), *input_shape)
    if dist == "normal":
        return rng.standard_normal(shape)
    return rng.uniform(-1.0, 1.0, shape)


def he_variance(in_channels: int, kernel: Sequence[int]) -> float:
    """He (Kaiming) weight variance ``2 / fan_in`` with ``fan_in = n * K`` (He et al. 2015)."""
    return 2.0 / (in_channels * math.prod(kernel))


def sample_weights(
    samples: int,
    out_channels: int,
    in_channels: int,
    kernel: Sequence[int],
    rng: np.random.Generator,
    init: str = "he_normal",
) -> np.ndarray:
    """``samples`` dense conv weights ``(S_w, m, n, *kernel)`` with He initialisation.

    ``"he_normal"``: N(0, 2/fan_in) as in the BGC paper §5.1 (torch's
    ``kaiming_normal_(nonlinearity="relu")``); ``"he_uniform"``: U(-b, b) with the same
    variance, b = sqrt(6/fan_in).
    """
    v.one_of("init", init, INITS)
    var = he_variance(in_channels, kernel)
    shape = (
        v.positive_int("weight samples", samples),
        v.positive_int("out_channels", out_channels),
        in_channels,
        *kernel,
    )
    if init == "he_normal":
        return rng.standard_normal(shape) * math.sqrt(var)
    bound = math.sqrt(3.0 * var)
    return rng.uniform(-bound, bound, shape)


def _check_finite(name: str, array: np.ndarray) -> None:
    if not np.all(np.isfinite(array)):
        bad = np.size(array) - int(np.isfinite(array).sum())
        raise GroupConvError(f"{name} contain {bad} non-finite values (NaN or inf)")


def as_real_array(name: str, value) -> np.ndarray:
    """``value`` (array, list, or torch tensor, even one that requires grad) as a float64 array.

    Complex values are a one-line error instead of silently losing their imaginary part;
    torch tensors are detached and moved to the CPU (torch is not imported here).
    """
    if hasattr(value, "detach") and hasattr(value, "is_complex"):  # a torch tensor
        if value.is_complex():
            raise GroupConvError(
                f"{name} are complex ({value.dtype}); approximability is defined for real "
                f"data and weights: split the real and imaginary parts into channels"
            )
        value = value.detach().to("cpu").double().numpy()
    array = np.asarray(value)
    if np.iscomplexobj(array):
        raise GroupConvError(
            f"{name} are complex ({array.dtype}); approximability is defined for real data "
            f"and weights: split the real and imaginary parts into channels"
        )
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise GroupConvError(f"{name} must be numbers, got an array of {array.dtype}")
    return np.asarray(array, dtype=np.float64)


def check_data(data, in_channels: int | None = None, dims: int | None = None) -> np.ndarray:
    """Validate user data ``(S, n, *spatial)`` and return it as a float64 array.

    Raises a one-line :class:`GroupConvError` for a wrong number of dimensions, a channel
    count other than ``in_channels``, non-finite entries or all-zero data.
    """
    array = as_real_array("data", data)
    if array.ndim not in (3, 4) or (dims is not None and array.ndim != dims + 2):
        want = f"{dims + 2}" if dims is not None else "3 or 4"
        raise GroupConvError(
            f"data must have {want} dimensions (samples, channels, *spatial), got shape {array.shape}"
        )
    if in_channels is not None and array.shape[1] != in_channels:
        raise GroupConvError(
            f"data have {array.shape[1]} channels but the conv has in_channels={in_channels}"
        )
    if array.size == 0:
        raise GroupConvError(f"data are empty, shape {array.shape}")
    _check_finite("data", array)
    if not np.any(array):
        raise GroupConvError("data are all zero; the approximation error would be a meaningless 0")
    return array


def check_weights(weights, kernel_dims: int | None = None) -> np.ndarray:
    """Validate dense conv weights ``(S_w, m, n, *kernel)`` (or one ``(m, n, *kernel)``)."""
    array = as_real_array("weights", weights)
    if kernel_dims is not None and array.ndim == kernel_dims + 2:
        array = array[None]
    if array.ndim not in (4, 5) or (kernel_dims is not None and array.ndim != kernel_dims + 3):
        raise GroupConvError(
            f"weights must have shape (samples, out, in, *kernel), got shape {array.shape}"
        )
    if array.size == 0:
        raise GroupConvError(f"weights are empty, shape {array.shape}")
    _check_finite("weights", array)
    return array


def pad(data: np.ndarray, kernel: Sequence[int], padding="same", dilation: int = 1) -> np.ndarray:
    """Pad the spatial axes of ``(S, n, *spatial)`` data by the padding rule."""
    amounts = pad_amounts(kernel, padding, dilation)
    widths = ((0, 0), (0, 0), *amounts)
    mode = "wrap" if isinstance(padding, str) and padding == "circular" else "constant"
    if mode == "wrap":
        for size, (left, right) in zip(data.shape[2:], amounts):
            if max(left, right) > size:
                raise GroupConvError(
                    f"circular padding of {max(left, right)} needs an input of at least that size, got {size}"
                )
    return np.pad(data, widths, mode=mode)


def patches(
    data: np.ndarray,
    kernel: Sequence[int],
    padding="same",
    stride: int = 1,
    dilation: int = 1,
) -> np.ndarray:
    """The im2col matrix ``P``: ``(S * positions, n * K)``, columns ordered (channel, tap).

    ``P @ W.reshape(m, -1).T`` is the conv of every sample with the dense weight ``W``
    (``(m, n, *kernel)``), one row per (sample, output position) in C order.
    """
    kernel = tuple(kernel)
    dims = len(kernel)
    padded = pad(data, kernel, padding, dilation)
    samples, channels = data.shape[:2]
    out = output_shape(data.shape[2:], kernel, padding, stride, dilation)
    span = tuple(dilation * (k - 1) + 1 for k in kernel)
    windows = np.lib.stride_tricks.sliding_window_view(padded, span, axis=tuple(range(2, 2 + dims)))
    # windows: (S, n, *positions_full, *span); keep stride and dilation.
    index = (slice(None), slice(None))
    index += tuple(slice(None, o * stride, stride) for o in out)
    index += tuple(slice(None, None, dilation) for _ in kernel)
    windows = windows[index]
    # -> (S, *positions, n, *kernel)
    order = (0, *range(2, 2 + dims), 1, *range(2 + dims, 2 + 2 * dims))
    windows = windows.transpose(order)
    return windows.reshape(samples * math.prod(out), channels * math.prod(kernel))


@dataclass(frozen=True, eq=False)
class DataGram:
    """The data as the least-squares solvers need them: the Gram matrix of the patches.

    Attributes
    ----------
    gram : ndarray, shape (n*K, n*K)
        ``P.T @ P`` summed over all samples and output positions (float64).
    in_channels : int
        n.
    kernel : tuple of int
        Kernel size; ``K = prod(kernel)``.
    samples : int
        Number of data samples S (the 1/S of BGC Eq. 5.1).
    positions : int
        Output positions per sample; ``rows = samples * positions``.
    mean_sq_norm : float
        Mean over samples of ``||x_s||^2`` (the input, unpadded): Eq. 5.3's data term.
    scale : float
        ``gram`` and ``mean_sq_norm`` are in units of ``scale`` (true value = stored value
        x scale). 1.0 unless the data lie far outside unit scale (max |x| outside
        2^-100..2^100): then the data were divided by a power of two (exactly) first, so
        that nothing overflows or underflows.
    """

    gram: np.ndarray
    in_channels: int
    kernel: tuple[int, ...]
    samples: int
    positions: int
    mean_sq_norm: float
    scale: float = 1.0

    @property
    def taps(self) -> int:
        """K, the number of kernel taps."""
        return math.prod(self.kernel)

    @property
    def rows(self) -> int:
        """Equations per output channel in the least-squares fit: samples x positions."""
        return self.samples * self.positions


def gram_from_data(
    data,
    kernel: int | Sequence[int],
    padding="same",
    stride: int = 1,
    dilation: int = 1,
    chunk_elements: int = 1 << 22,
    progress: bool = False,
    method: str = "auto",
) -> DataGram:
    """Accumulate the patch Gram matrix ``P.T @ P`` over the samples, a chunk at a time.

    For 1-D data at stride 1 (``method="auto"`` or ``"lag"``) the Gram matrix is built
    from its lag structure instead: block ``(a, b)`` is the channel cross-product at lag
    ``dilation * (b - a)``, the same for every tap pair with that lag up to a few boundary
    columns, so K lag products (``n^2`` x rows each) plus small boundary corrections
    replace the ``(nK)^2`` x rows / 2 of ``P^T P``. ``method="patches"`` forces ``P^T P``.

    Parameters
    ----------
    data : array, shape (S, n, D) or (S, n, H, W)
        Input samples (validated: finite, not all zero).
    kernel, padding, stride, dilation
        The conv's geometry (see the module docstring for ``padding``).
    chunk_elements : int
        Patch-matrix entries built at once (bounds the memory: 8 bytes each).
    progress : bool
        Show a tqdm bar over the chunks.
    """
    kernel = as_kernel(kernel)
    x = check_data(data, dims=len(kernel))
    scale = _data_scale(x)
    if scale != 1.0:
        x = x / math.sqrt(scale)
    samples, channels = x.shape[:2]
    positions = math.prod(output_shape(x.shape[2:], kernel, padding, stride, dilation))
    v.one_of("gram method", method, ("auto", "lag", "patches"))
    if method != "patches" and len(kernel) == 1 and stride == 1 and kernel[0] > 1:
        gram = _lag_gram(x, kernel[0], padding, dilation)
    else:
        cols = channels * math.prod(kernel)
        per_chunk = max(1, chunk_elements // max(1, positions * cols))
        gram = np.zeros((cols, cols))
        starts = range(0, samples, per_chunk)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="gram", unit="chunk", leave=False)
        for start in starts:
            p = patches(x[start : start + per_chunk], kernel, padding, stride, dilation)
            gram += p.T @ p  # numpy sees A^T A and calls BLAS syrk (half the flops)
    return DataGram(
        gram=gram,
        in_channels=channels,
        kernel=kernel,
        samples=samples,
        positions=positions,
        mean_sq_norm=float(np.vdot(x, x) / samples),
        scale=scale,
    )


def _lag_gram(x: np.ndarray, k: int, padding, dilation: int) -> np.ndarray:
    """``P^T P`` of 1-D data at stride 1 from K lag products (see :func:`gram_from_data`)."""
    samples, n, length = x.shape
    (left, right), = pad_amounts((k,), padding, dilation)
    xp = pad(x, (k,), padding, dilation)
    lp = xp.shape[2]
    out = lp - dilation * (k - 1)
    flat = np.ascontiguousarray(xp.transpose(1, 0, 2)).reshape(n, samples * lp)
    total = flat.shape[1]
    circular = isinstance(padding, str) and padding == "circular"
    zero_pos = np.zeros(lp, dtype=bool)
    if not circular:
        zero_pos[:left] = True
        zero_pos[left + length:] = True
    starts = np.arange(samples)[:, None] * lp
    lags = {}
    gram = np.empty((n, k, n, k))
    for a in range(k):
        for b in range(a, k):
            lag = dilation * (b - a)
            if lag not in lags:
                lags[lag] = flat[:, : total - lag] @ flat[:, lag:].T  # syrk for lag 0
            block = lags[lag]
            # columns q of each sample outside this tap pair's window [o_a, o_a + out)
            q = np.concatenate([np.arange(0, dilation * a), np.arange(dilation * a + out, lp)])
            partner = (q + lag) % lp
            keep = ~(zero_pos[q] | zero_pos[partner])
            if keep.any():
                idx = (starts + q[keep][None, :]).ravel()
                idx = idx[idx + lag < total]
                if idx.size:
                    block = block - flat[:, idx] @ flat[:, idx + lag].T
            gram[:, a, :, b] = block
            gram[:, b, :, a] = block.T
    return gram.reshape(n * k, n * k)


def _data_scale(x: np.ndarray) -> float:
    """1.0, or the square of a power of two that brings max |x| near 1 when it is extreme."""
    top = max(float(x.max()), -float(x.min()))  # max |x| without a temporary copy
    if 2.0**-100 <= top <= 2.0**100:
        return 1.0
    return 4.0 ** int(np.clip(np.round(np.log2(top)), -500, 500))  # the scale stays a float64
