"""Numpy twins of the symbolic cost formulas: fast, vectorised, one source of truth.

Every function here evaluates an expression of :mod:`groupconv.cost.symbolic`, turned
into a numpy function by :func:`sympy.lambdify` the first time it is needed (sympy itself
is imported lazily, so importing this module is cheap). Arguments broadcast like numpy
arrays; a scalar call returns a Python float, an array call a float64 array.

Conventions (E2GC notation: m input channels, n output channels, d_k kernel side,
h x w feature map, g groups, B batch):

* ``macs`` is per frame; ``flops = 2 * macs``; ``params`` counts weights only.
* Sizes (m, n, d_k, h, w, batch) must be positive integers (integer-valued floats are
  accepted). The number of groups ``g`` may be any positive real, because the optimum
  group size model treats it as continuous; pass ``integer_groups=True`` to require an
  integer g that divides both m and n.
* Results are float64: exact for counts below 2**53 (use
  :class:`groupconv.cost.ConvLayer` for exact Python integers).

Bad input raises :class:`~groupconv.errors.GroupConvError` naming the first bad value.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from .. import _validate as v
from ..errors import GroupConvError

__all__ = [
    "macs",
    "flops",
    "params",
    "activations",
    "arithmetic_intensity",
    "memory_access_proxy",
    "group_size",
    "gamma_from_const",
    "optimum_groups",
    "energy_proxy",
    "balance_lhs",
    "GC_VARIANTS",
    "gc_variant_params",
    "gc_variant_cost",
    "bgc_cost",
]

#: Keys of the rows of BGC Table 1 (see :data:`groupconv.cost.symbolic.BGC_TABLE`).
GC_VARIANTS: tuple[str, ...] = ("SC", "GC", "Shuffle", "LGC", "FLGC", "TLGC", "BGC")


# --------------------------------------------------------------------------------------
# The single source of truth: symbolic expressions, lambdified once
# --------------------------------------------------------------------------------------
def _expression(name: str):
    """(sympy expression, argument symbols) for a named formula."""
    from . import symbolic as S

    e2gc_shape = (S.m, S.n, S.d_k, S.h, S.w)
    table = {
        "macs": (S.GCONV_MACS, (*e2gc_shape, S.g)),
        "params": (S.GCONV_PARAMS, (S.m, S.n, S.d_k, S.g)),
        "activations": (S.GCONV_ACTIVATIONS, (S.m, S.n, S.h, S.w)),
        "ai": (S.GCONV_AI_BATCH, (*e2gc_shape, S.g, S.B)),
        "memory": (S.MEMORY_ACCESS_PROXY, (*e2gc_shape, S.g, S.B)),
        "gamma": (S.GAMMA_DEFINITION, (S.const, S.alpha, S.beta)),
        "eq2": (S.derive_eq2_batch(), (*e2gc_shape, S.beta, S.gamma, S.B)),
        "energy": (S.ENERGY_PROXY, (*e2gc_shape, S.g, S.alpha, S.beta, S.B)),
        "balance": (S.BALANCE_LHS, (*e2gc_shape, S.g, S.beta, S.B)),
        "balance_a_dropped": (S.BALANCE_LHS_A_DROPPED, (*e2gc_shape, S.g, S.beta, S.B)),
    }
    bgc_params = (S.n_in, S.m_out, S.K, S.N)
    for row in S.BGC_TABLE:
        table[f"params:{row.key}"] = (row.params, bgc_params)
        table[f"cost:{row.key}"] = (row.cost, (*bgc_params, S.D))
    return table[name]


@lru_cache(maxsize=None)
def _compiled(name: str) -> Callable[..., np.ndarray]:
    """The numpy function of the named symbolic formula (lambdified on first use)."""
    import sympy as sp

    expr, args = _expression(name)
    return sp.lambdify(args, expr, modules="numpy")


# --------------------------------------------------------------------------------------
# Input checks on arrays (each names the first bad value, via groupconv._validate)
# --------------------------------------------------------------------------------------
def _numbers(name: str, value: object) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise GroupConvError(f"{name} must be a number or an array of numbers, got {value!r}")
    return arr


def _first_bad(arr: np.ndarray, bad: np.ndarray) -> object:
    return np.broadcast_to(arr, bad.shape)[bad].flat[0].item()


def _size(name: str, value: object) -> np.ndarray:
    """A positive integer (or array of them) as float64; integer-valued floats are fine."""
    arr = _numbers(name, value)
    x = arr.astype(np.float64)
    bad = ~np.isfinite(x) | (x < 1) | (x != np.floor(x))
    if bad.any():
        v.positive_int(name, _first_bad(arr, bad))
    return x


def _positive(name: str, value: object) -> np.ndarray:
    """A finite positive number (or array of them) as float64."""
    arr = _numbers(name, value)
    x = arr.astype(np.float64)
    bad = ~np.isfinite(x) | (x <= 0)
    if bad.any():
        v.finite_positive(name, _first_bad(arr, bad))
    return x


def _interval(name: str, value: object, low: float, high: float, *, high_open: bool) -> np.ndarray:
    """A number in (low, high) or (low, high] (or an array of them) as float64."""
    arr = _numbers(name, value)
    x = arr.astype(np.float64)
    inside = (x > low) & ((x < high) if high_open else (x <= high))
    bad = ~(np.isfinite(x) & inside)
    if bad.any():
        v.in_interval(name, _first_bad(arr, bad), low, high, high_open=high_open)
    return x


def _beta(value: object) -> np.ndarray:
    return _interval("beta", value, 0.0, 1.0, high_open=True)


def _alpha(value: object) -> np.ndarray:
    return _interval("alpha", value, 0.0, 1.0, high_open=False)


def _groups(
    value: object,
    m: np.ndarray,
    n: np.ndarray,
    integer_groups: bool,
    names: tuple[str, str, str] = ("g", "m", "n"),
) -> np.ndarray:
    """Groups: any positive real, or with ``integer_groups`` an integer dividing m and n."""
    g_name, m_name, n_name = names
    if not integer_groups:
        return _positive(g_name, value)
    g = _size(g_name, value)
    for channels, channels_name in ((m, m_name), (n, n_name)):
        gb, cb = np.broadcast_arrays(g, channels)
        bad = np.mod(cb, gb) != 0
        if bad.any():
            i = np.argmax(bad)
            v.divides(g_name, int(gb.flat[i]), channels_name, int(cb.flat[i]))
    return g


def _result(values: object, *inputs: np.ndarray) -> float | np.ndarray:
    """Broadcast to the inputs' common shape; a float for scalar inputs."""
    shape = np.broadcast_shapes(*(np.shape(x) for x in inputs))
    out = np.broadcast_to(np.asarray(values, dtype=np.float64), shape)
    return float(out) if out.ndim == 0 else np.array(out)


def _shape(m: object, n: object, d_k: object, h: object, w: object) -> tuple[np.ndarray, ...]:
    return _size("m", m), _size("n", n), _size("d_k", d_k), _size("h", h), _size("w", w)


# --------------------------------------------------------------------------------------
# E2GC Tables I/II
# --------------------------------------------------------------------------------------
def macs(m, n, d_k, h, w, g=1, *, integer_groups: bool = False):
    """MACs per frame, M_c = n m h w d_k^2 / g (E2GC Table II; Table I at g = 1).

    Parameters
    ----------
    m, n : int or array_like
        Input and output channels.
    d_k : int or array_like
        Kernel side (d_k x d_k filters).
    h, w : int or array_like
        Feature-map height and width.
    g : float or array_like
        Number of groups.
    integer_groups : bool
        Require g to be an integer dividing m and n.
    """
    shape = _shape(m, n, d_k, h, w)
    gg = _groups(g, shape[0], shape[1], integer_groups)
    return _result(_compiled("macs")(*shape, gg), *shape, gg)


def flops(m, n, d_k, h, w, g=1, *, integer_groups: bool = False):
    """FLOPs per frame, 2 * M_c (one multiply-add = 2 FLOPs)."""
    return 2 * macs(m, n, d_k, h, w, g, integer_groups=integer_groups)


def params(m, n, d_k, g=1, *, integer_groups: bool = False):
    """Weights, P = n m d_k^2 / g (E2GC Table II; no bias)."""
    mm, nn, kk = _size("m", m), _size("n", n), _size("d_k", d_k)
    gg = _groups(g, mm, nn, integer_groups)
    return _result(_compiled("params")(mm, nn, kk, gg), mm, nn, kk, gg)


def activations(m, n, h, w):
    """Input plus output feature-map elements per frame, A = (n + m) h w (E2GC Table II)."""
    mm, nn, hh, ww = _size("m", m), _size("n", n), _size("h", h), _size("w", w)
    return _result(_compiled("activations")(mm, nn, hh, ww), mm, nn, hh, ww)


def arithmetic_intensity(m, n, d_k, h, w, g=1, batch=1, *, integer_groups: bool = False):
    """MACs per element moved, AI_B = B M_c / (P + B A) (E2GC Table II at B = 1).

    Weights are read once per batch and activations once per frame.
    """
    shape = _shape(m, n, d_k, h, w)
    gg = _groups(g, shape[0], shape[1], integer_groups)
    bb = _size("batch", batch)
    return _result(_compiled("ai")(*shape, gg, bb), *shape, gg, bb)


def memory_access_proxy(m, n, d_k, h, w, g=1, batch=1, *, integer_groups: bool = False):
    """The E2GC paper's estimate of memory accesses, 1 / AI (Sec. III-A, Fig. 3).

    This is elements moved per MAC; multiply by the MACs to get elements moved.
    """
    shape = _shape(m, n, d_k, h, w)
    gg = _groups(g, shape[0], shape[1], integer_groups)
    bb = _size("batch", batch)
    return _result(_compiled("memory")(*shape, gg, bb), *shape, gg, bb)


def group_size(m, g, *, integer_groups: bool = False):
    """Input channels per group, G = m / g (E2GC Table I)."""
    mm = _size("m", m)
    gg = _groups(g, mm, mm, integer_groups, names=("g", "m", "m"))
    return _result(mm / gg, mm, gg)


# --------------------------------------------------------------------------------------
# E2GC Eq. 1-2: the optimum group size model
# --------------------------------------------------------------------------------------
def gamma_from_const(const, alpha, beta):
    """gamma = const * alpha**(-beta) (E2GC, text below Eq. 1)."""
    cc, aa, bb = _positive("const", const), _alpha(alpha), _beta(beta)
    return _result(_compiled("gamma")(cc, aa, bb), cc, aa, bb)


def optimum_groups(m, n, d_k, h, w, beta, gamma, batch=1):
    """E2GC Eq. 2: the real-valued g that balances MACs and memory accesses.

    g = m n d_k^2 (h w)^(1-beta) / (gamma B^beta), derived by sympy from Eq. 1 with A
    dropped (:func:`groupconv.cost.symbolic.derive_eq2_batch`). At B = 1 this is exactly
    the paper's Eq. 2; the B^beta factor is our batch-aware extension.

    This is a balance condition, not a minimiser: it is the g at which
    M_c**(1-beta) * (P/B)**beta equals gamma, and that quantity falls monotonically with
    g. The result scales with 1/gamma, a platform constant the paper does not give, so
    its absolute value is only as good as gamma; ratios between layers do not depend on
    gamma.
    """
    shape = _shape(m, n, d_k, h, w)
    bb, gm, batch_ = _beta(beta), _positive("gamma", gamma), _size("batch", batch)
    return _result(_compiled("eq2")(*shape, bb, gm, batch_), *shape, bb, gm, batch_)


def energy_proxy(m, n, d_k, h, w, g, alpha, beta, batch=1, *, integer_groups: bool = False):
    """Eq. 1's energy proxy per frame, E = M_c (alpha / AI_B)**beta, with A kept.

    Equal to alpha**beta * M_c**(1-beta) * (P/B + A)**beta. It falls monotonically with
    g (see :func:`groupconv.cost.symbolic.energy_proxy_log_derivative`).
    """
    shape = _shape(m, n, d_k, h, w)
    gg = _groups(g, shape[0], shape[1], integer_groups)
    aa, bb, batch_ = _alpha(alpha), _beta(beta), _size("batch", batch)
    return _result(_compiled("energy")(*shape, gg, aa, bb, batch_), *shape, gg, aa, bb, batch_)


def balance_lhs(m, n, d_k, h, w, g, beta, batch=1, *, keep_activations: bool = True):
    """The left side of Eq. 1's balance, M_c**(1-beta) * (P/B + A)**beta (= gamma).

    With ``keep_activations=False`` A is dropped as in the paper's step to Eq. 2:
    M_c**(1-beta) * (P/B)**beta.
    """
    shape = _shape(m, n, d_k, h, w)
    gg, bb, batch_ = _positive("g", g), _beta(beta), _size("batch", batch)
    name = "balance" if keep_activations else "balance_a_dropped"
    return _result(_compiled(name)(*shape, gg, bb, batch_), *shape, gg, bb, batch_)


# --------------------------------------------------------------------------------------
# BGC paper: Table 1, Sec. 3.3 (Eq. 3.14) and Sec. 4
# --------------------------------------------------------------------------------------
def _variant_args(method, in_channels, out_channels, taps, groups):
    v.one_of("group convolution variant", method, GC_VARIANTS)
    n_in, m_out = _size("in_channels", in_channels), _size("out_channels", out_channels)
    taps_ = _size("taps", taps)
    groups_ = _groups(groups, n_in, m_out, True, names=("groups", "in_channels", "out_channels"))
    return n_in, m_out, taps_, groups_


def gc_variant_params(method, in_channels, out_channels, taps, groups):
    """Parameters of a group convolution variant (BGC Table 1).

    Parameters
    ----------
    method : {"SC", "GC", "Shuffle", "LGC", "FLGC", "TLGC", "BGC"}
        The variant ("SC" is the standard convolution).
    in_channels, out_channels : int or array_like
        Input and output channels (the BGC paper's n and m, in that order).
    taps : int or array_like
        K, the parameters of a single-channel convolution (d_k**2 for a 2-D kernel).
    groups : int or array_like
        N, a common divisor of in_channels and out_channels (BGC Sec. 2).
    """
    args = _variant_args(method, in_channels, out_channels, taps, groups)
    return _result(_compiled(f"params:{method}")(*args), *args)


def gc_variant_cost(method, in_channels, out_channels, taps, groups, size):
    """Scalar operations of one forward pass of a variant (BGC Sec. 3.3 and 4).

    ``size`` is D, the number of elements of one input channel (h * w for a 2-D map with
    "same" padding). Convolution terms count one operation per MAC (see
    :mod:`groupconv.cost.symbolic` for the convention).
    """
    args = _variant_args(method, in_channels, out_channels, taps, groups)
    dd = _size("size", size)
    return _result(_compiled(f"cost:{method}")(*args, dd), *args, dd)


def bgc_cost(in_channels, out_channels, taps, groups, size):
    """BGC Eq. 3.14: 2 K D m n / N + D n (m outputs, n inputs in the BGC paper's letters)."""
    return gc_variant_cost("BGC", in_channels, out_channels, taps, groups, size)
