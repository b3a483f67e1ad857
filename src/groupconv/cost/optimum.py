"""The optimum number of groups of one layer: E2GC Eq. 2, admissible g, and the full Eq. 1.

Three readings of the E2GC optimum group size model (Sec. III-B), side by side:

1. **Eq. 2 (the paper).** Eq. 1 asks that M_c^(1-beta) (A + P)^beta equal a platform
   constant gamma. Dropping A and solving gives g = m n d_k^2 (hw)^(1-beta) / gamma
   (:func:`groupconv.cost.numeric.optimum_groups`). A real layer needs an integer g that
   divides both m and n: :func:`nearest_admissible_groups`.
2. **Eq. 1 with A kept.** The same balance without dropping A has no closed form for a
   general beta; :func:`balance_groups_full` solves it numerically (vectorised bisection
   in log g). Because A > 0, this g is always larger than Eq. 2's.
3. **Minimising the energy proxy** E(g) = M_c (alpha/AI)^beta. E(g) falls monotonically
   with g for every beta in (0, 1) (proved symbolically in
   :func:`groupconv.cost.symbolic.energy_proxy_log_derivative`), so its minimum over
   admissible g is always the largest one, gcd(m, n) (depthwise when m = n):
   :func:`min_energy_groups`. The paper's model therefore does not predict the U-shaped
   EPF of its Fig. 1 on its own; the optimum comes from the balance constant gamma.

Layer-level Eq. 2: :func:`eq2_groups` (g of one :class:`ConvLayer` for given beta and
gamma) and :func:`calibrate_gamma` (the gamma with which Eq. 2 best reproduces a grouping,
least squares on log g).

Imports neither torch nor sympy at module import.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .. import _validate as v
from ..errors import GroupConvError
from . import numeric as num
from .layer import ConvLayer

__all__ = [
    "DEFAULT_EQ2_BETA",
    "admissible_groups",
    "calibrate_gamma",
    "eq2_groups",
    "nearest_admissible_groups",
    "balance_groups_full",
    "min_energy_groups",
    "OptimumG",
    "optimum_g",
    "optimum_g_for_layer",
]


def admissible_groups(m: int, n: int) -> tuple[int, ...]:
    """Every g that divides both m and n (the divisors of gcd(m, n)), ascending."""
    m = v.positive_int("m", m)
    n = v.positive_int("n", n)
    c = math.gcd(m, n)
    small = [d for d in range(1, math.isqrt(c) + 1) if c % d == 0]
    return tuple(sorted(set(small + [c // d for d in small])))


#: beta used for Eq. 2 when a fitted model has none (the paper's Eq. 3 example).
DEFAULT_EQ2_BETA: float = 0.5


def eq2_groups(layer: ConvLayer, beta: float, gamma: float) -> float:
    """The paper's optimum number of groups, g = m n d_k^2 (h w)^(1-beta) / gamma (E2GC Eq. 2).

    Returns the real-valued g (use :func:`nearest_admissible_groups` for a usable one).
    ``h w`` is the output size, ``d_k^2`` the kernel taps. A layer-level form of
    :func:`groupconv.cost.numeric.optimum_groups` (the sympy-derived form).
    """
    g = num.optimum_groups(
        layer.in_channels, layer.out_channels, math.sqrt(layer.taps),
        layer.out_height, layer.out_width, beta, gamma,
    )
    return float(g)


def calibrate_gamma(layers, beta: float, groups=None) -> float:
    """The gamma with which Eq. 2 best reproduces ``groups`` (default: the layers' own).

    Least squares on log g: ``log gamma = mean_l [log(m n d_k^2 (hw)^(1-beta)) - log g_l]``.
    """
    layers = list(layers)
    if not layers:
        raise GroupConvError("calibrate_gamma needs at least one layer")
    groups = [layer.groups for layer in layers] if groups is None else list(groups)
    if len(groups) != len(layers):
        raise GroupConvError(f"got {len(groups)} group counts for {len(layers)} layers")
    logs = [math.log(eq2_groups(layer, beta, 1.0)) - math.log(v.positive_int("groups", g))
            for layer, g in zip(layers, groups)]
    return math.exp(sum(logs) / len(logs))


def nearest_admissible_groups(g: float, m: int, n: int) -> int:
    """The admissible g (divides m and n) closest to ``g`` on a log scale.

    Log distance treats "twice too many groups" and "half too many" alike, which suits a
    quantity that the model fixes only up to a multiplicative constant. Ties go to the
    smaller g (more data reuse). Values beyond the range clip to 1 or gcd(m, n).
    """
    target = v.finite_positive("g", g)
    candidates = admissible_groups(m, n)
    # Distances equal up to rounding (e.g. g = sqrt(8) between 2 and 4) count as ties.
    return min(candidates, key=lambda d: (round(abs(math.log(d / target)), 12), d))


def balance_groups_full(m, n, d_k, h, w, beta, gamma, batch=1, *, iterations: int = 200):
    """The g that solves Eq. 1's balance with A kept: M_c^(1-beta) (P/B + A)^beta = gamma.

    Vectorised: arguments broadcast like numpy arrays. With M_c = a/g, P = b/g and
    u = ln g, the equation reads f(u) = (1-beta)(ln a - u) + beta ln(b e^-u / B + A)
    - ln gamma = 0, with f strictly decreasing from +inf to -inf, so there is exactly one
    root. Eq. 2's g (A dropped) is a lower bracket; an upper bracket follows from
    b e^-u / B <= A. Bisection then halves the bracket ``iterations`` times.

    Returns
    -------
    float or ndarray
        The real-valued g (not rounded to an admissible value); ``inf`` where g exceeds
        the float range (beta very close to 1 with a small gamma).
    """
    lower = np.log(num.optimum_groups(m, n, d_k, h, w, beta, gamma, batch))
    a = np.log(num.macs(m, n, d_k, h, w, 1))
    b = np.log(num.params(m, n, d_k, 1))
    c = np.log(num.activations(m, n, h, w))
    bb = num._beta(beta)
    log_gamma = np.log(num._positive("gamma", gamma))
    log_batch = np.log(num._size("batch", batch))

    def f(u):
        return (1 - bb) * (a - u) + bb * np.logaddexp(b - u - log_batch, c) - log_gamma

    upper = np.maximum.reduce(
        np.broadcast_arrays(
            lower,
            b - log_batch - c,
            a + (bb * (np.log(2.0) + c) - log_gamma) / (1 - bb),
        )
    )
    lo, hi = np.broadcast_arrays(lower, upper)
    lo, hi = lo.astype(float), hi.astype(float)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        above = f(mid) > 0
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    with np.errstate(over="ignore"):  # inf where g exceeds the float range (beta near 1)
        return num._result(np.exp(0.5 * (lo + hi)), lo)


def min_energy_groups(m: int, n: int, d_k: int, h: int, w: int, beta: float, batch: int = 1) -> int:
    """The admissible g with the smallest energy proxy E(g) = M_c (alpha/AI_B)^beta.

    Evaluates the proxy at every admissible g (alpha only scales it, so it is left at 1)
    and returns the minimiser. Because E(g) falls monotonically with g, this is always
    gcd(m, n); the function exists to make that visible, not to hide it.
    """
    candidates = np.array(admissible_groups(m, n))
    energy = num.energy_proxy(m, n, d_k, h, w, candidates, 1.0, beta, batch)
    return int(candidates[int(np.argmin(energy))])


@dataclass(frozen=True)
class OptimumG:
    """The optimum number of groups of one layer under the E2GC model.

    Attributes
    ----------
    in_channels, out_channels, kernel, height, width, batch : int
        The layer (m, n, d_k, h, w, B).
    beta, gamma : float
        Model constants (gamma = const * alpha**(-beta)).
    g_eq2 : float
        Eq. 2's real-valued g (A dropped; batch-aware extension at B > 1).
    g : int
        The admissible g (divides m and n) nearest to ``g_eq2`` on a log scale.
    G : int
        Its group size m / g.
    g_full : float
        The real-valued g that balances Eq. 1 with A kept.
    g_full_admissible : int
        The admissible g nearest to ``g_full``.
    g_min_energy : int
        The admissible g minimising M_c (alpha/AI)^beta: always gcd(m, n).
    groups : int or None
        The layer's current number of groups, if given.
    """

    in_channels: int
    out_channels: int
    kernel: int
    height: int
    width: int
    batch: int
    beta: float
    gamma: float
    g_eq2: float
    g: int
    G: int
    g_full: float
    g_full_admissible: int
    g_min_energy: int
    groups: int | None = None

    @property
    def G_eq2(self) -> float:
        """The real-valued group size m / g_eq2."""
        return self.in_channels / self.g_eq2

    def as_dict(self) -> dict[str, object]:
        """Plain values (for JSON), with the derived group sizes."""
        out = asdict(self)
        out["G_eq2"] = self.G_eq2
        out["G_full_admissible"] = self.in_channels // self.g_full_admissible
        return out


def _resolve_gamma(beta: float, gamma: float | None, alpha: float | None, const: float | None) -> float:
    """gamma itself, or const * alpha**(-beta); exactly one of the two ways."""
    if gamma is not None:
        if alpha is not None or const is not None:
            raise GroupConvError("give either gamma or alpha and const, not both")
        return v.finite_positive("gamma", gamma)
    if alpha is None or const is None:
        missing = "alpha" if alpha is None else "const"
        raise GroupConvError(f"gamma is not given, so alpha and const are needed; {missing} is missing")
    return float(num.gamma_from_const(const, alpha, beta))


def optimum_g(
    m: int,
    n: int,
    d_k: int,
    h: int,
    w: int | None = None,
    *,
    beta: float,
    gamma: float | None = None,
    alpha: float | None = None,
    const: float | None = None,
    batch: int = 1,
    groups: int | None = None,
) -> OptimumG:
    """Eq. 2's optimum g for one layer, its admissible neighbour and the full-Eq.-1 readings.

    Parameters
    ----------
    m, n : int
        Input and output channels.
    d_k : int
        Kernel side.
    h, w : int
        Output feature-map size (w defaults to h).
    beta : float
        beta in (0, 1).
    gamma : float, optional
        The balance constant; or give ``alpha`` in (0, 1] and ``const`` > 0 instead
        (gamma = const * alpha**(-beta)).
    batch : int
        Batch size B (1 reproduces the paper).
    groups : int, optional
        The layer's current number of groups (checked to divide m and n).
    """
    m = v.positive_int("in_channels", m)
    n = v.positive_int("out_channels", n)
    d_k = v.positive_int("kernel", d_k)
    h = v.positive_int("height", h)
    w = h if w is None else v.positive_int("width", w)
    batch = v.positive_int("batch", batch)
    beta = v.in_interval("beta", beta, 0.0, 1.0)
    if groups is not None:
        groups = v.positive_int("groups", groups)
        v.divides("groups", groups, "in_channels", m)
        v.divides("groups", groups, "out_channels", n)
    gamma_ = _resolve_gamma(beta, gamma, alpha, const)

    g_eq2 = float(num.optimum_groups(m, n, d_k, h, w, beta, gamma_, batch))
    g_full = float(balance_groups_full(m, n, d_k, h, w, beta, gamma_, batch))
    for g in (g_eq2, g_full):
        if not (math.isfinite(g) and g > 0):
            raise GroupConvError(
                f"gamma={gamma_!r} puts the balancing g outside floating-point range (g = {g}); "
                "choose a gamma closer to the layer's M_c^(1-beta) A^beta"
            )
    g_admissible = nearest_admissible_groups(g_eq2, m, n)
    return OptimumG(
        in_channels=m,
        out_channels=n,
        kernel=d_k,
        height=h,
        width=w,
        batch=batch,
        beta=beta,
        gamma=gamma_,
        g_eq2=g_eq2,
        g=g_admissible,
        G=m // g_admissible,
        g_full=g_full,
        g_full_admissible=nearest_admissible_groups(g_full, m, n),
        g_min_energy=min_energy_groups(m, n, d_k, h, w, beta, batch),
        groups=groups,
    )


def optimum_g_for_layer(
    layer: ConvLayer,
    *,
    beta: float,
    gamma: float | None = None,
    alpha: float | None = None,
    const: float | None = None,
) -> OptimumG:
    """:func:`optimum_g` for a :class:`ConvLayer` (square kernels; h x w is the output size).

    The E2GC tables assume equal input and output sizes; the output size is used here.
    """
    if layer.kernel_h != layer.kernel_w:
        raise GroupConvError(f"the E2GC model needs a square kernel, got {layer.kernel!r}")
    return optimum_g(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_h,
        layer.out_height,
        layer.out_width,
        beta=beta,
        gamma=gamma,
        alpha=alpha,
        const=const,
        batch=layer.batch,
        groups=layer.groups,
    )
