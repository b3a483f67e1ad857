"""The exact Pareto front of total cost against total error over one choice per layer.

The problem: pick one option ``c_l`` of every layer ``l``; a plan's cost is
``sum_l cost[l][c_l]`` (predicted time or energy: a platform prices a network as a sum
over its operators) and its error ``sum_l error[l][c_l]`` (the aggregate of
``docs/design.md``), optionally under a budget ``sum_l params[l][c_l] <= max_params``.
Both objectives separate over layers, so the front is exact by dynamic programming over
partial fronts (a multiple-choice knapsack with two objectives): after layer ``l`` keep
every partial plan that no other partial plan beats in cost, error and (when budgeted)
params at once. A dominated partial plan can never complete to a plan that the same
completion of its dominator does not match or beat, so nothing on the final front is
lost; plans that cannot meet a budget even with the cheapest remaining layers are
dropped early. :func:`brute_force_front` enumerates every plan (the reference of the
tests).

Pure numpy; imports neither torch nor anything above it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import GroupConvError
from .knapsack import backtrack, layer_fronts

__all__ = ["FrontPoint", "pareto_front", "brute_force_front"]


@dataclass(frozen=True)
class FrontPoint:
    """One plan on the front: the option index of every layer and its totals."""

    choice: tuple[int, ...]
    cost: float
    error: float
    params: int

    def as_dict(self) -> dict[str, object]:
        return {"choice": list(self.choice), "cost": self.cost, "error": self.error, "params": self.params}


def _rows(name: str, values, sizes: list[int] | None, dtype) -> list[np.ndarray]:
    out = []
    for l, row in enumerate(values):
        arr = np.asarray(row, dtype=dtype).reshape(-1)
        if len(arr) == 0:
            raise GroupConvError(f"layer {l} has no options")
        if sizes is not None and len(arr) != sizes[l]:
            raise GroupConvError(f"{name}[{l}] has {len(arr)} options, cost[{l}] has {sizes[l]}")
        if not np.isfinite(arr).all():
            raise GroupConvError(f"{name}[{l}] must be finite, got {arr.tolist()!r}")
        out.append(arr)
    return out


def _nondominated(keys: list[np.ndarray]) -> np.ndarray:
    """Indices of the points that no other point matches or beats in all three keys
    (the first of exact duplicates is kept), sorted by the keys in order."""
    order = np.lexsort(tuple(reversed(keys)))
    kept: list[int] = []
    rest = [k[order] for k in keys[1:]]
    kept_rest = [np.empty(0) for _ in rest]
    for pos, i in enumerate(order):
        vals = [r[pos] for r in rest]
        if kept and np.any(np.logical_and.reduce([kr <= x for kr, x in zip(kept_rest, vals)])):
            continue
        kept.append(i)
        kept_rest = [np.append(kr, x) for kr, x in zip(kept_rest, vals)]
    return np.asarray(kept, dtype=np.intp)


def pareto_front(
    cost: Sequence[Sequence[float]],
    error: Sequence[Sequence[float]],
    params: Sequence[Sequence[int]] | None = None,
    *,
    max_params: float | None = None,
) -> tuple[FrontPoint, ...]:
    """Every plan on the Pareto front of (total cost, total error), exactly.

    Parameters
    ----------
    cost, error : sequence of sequences of float
        ``cost[l][k]``, ``error[l][k]``: of option ``k`` of layer ``l``; finite.
    params : sequence of sequences of int, optional
        Weights of each option (needed with ``max_params``; reported otherwise).
    max_params : float, optional
        Budget on the summed params of the searched layers.

    Returns
    -------
    tuple of FrontPoint
        Sorted by ascending cost (so descending error); between plans of equal cost and
        error the one with fewer params is kept.

    Raises
    ------
    GroupConvError
        Mismatched shapes, non-finite values, or no plan meeting ``max_params`` (the
        message gives the least achievable).
    """
    if len(cost) == 0:
        raise GroupConvError("the front needs at least one layer")
    cs = _rows("cost", cost, None, float)
    sizes = [len(c) for c in cs]
    if len(error) != len(cs):
        raise GroupConvError(f"error has {len(error)} layers, cost has {len(cs)}")
    es = _rows("error", error, sizes, float)
    if params is None:
        if max_params is not None:
            raise GroupConvError("max_params needs the params of every option")
        ps = [np.zeros(k, dtype=np.int64) for k in sizes]
    else:
        if len(params) != len(cs):
            raise GroupConvError(f"params has {len(params)} layers, cost has {len(cs)}")
        ps = _rows("params", params, sizes, np.int64)
    use_p = max_params is not None
    least_p = sum(int(p.min()) for p in ps)
    if use_p and least_p > max_params:
        raise GroupConvError(f"no plan meets max_params {max_params:,.0f}: the least possible is {least_p:,}")

    def keep(sums, parent, option):
        c, e, p = sums
        return _nondominated([c, e, p.astype(float)]) if use_p else _front_2d_params(c, e, p)

    (f_c, f_e, f_p), back, _ = layer_fronts([cs, es, ps], [None, None, max_params], keep)
    # the final front in (cost, error) only
    points = [FrontPoint(backtrack(back, int(state)), float(f_c[state]), float(f_e[state]), int(f_p[state]))
              for state in _front_2d_params(f_c, f_e, f_p)]
    points.sort(key=lambda q: (q.cost, q.error, q.params))
    return tuple(points)


def _front_2d_params(c: np.ndarray, e: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The (cost, error) front; among exact ties in both, the fewest params."""
    order = np.lexsort((p, e, c))
    second = e[order]
    prev = np.minimum.accumulate(np.concatenate([[np.inf], second[:-1]]))
    return order[second < prev]


def brute_force_front(cost, error, params=None, *, max_params=None) -> tuple[FrontPoint, ...]:
    """The same front by enumerating every plan (a reference for small cases)."""
    zeros = [[0] * len(row) for row in cost]
    params = zeros if params is None else params
    plans = []
    for choice in itertools.product(*(range(len(row)) for row in cost)):
        c = sum(float(cost[l][i]) for l, i in enumerate(choice))
        e = sum(float(error[l][i]) for l, i in enumerate(choice))
        p = sum(int(params[l][i]) for l, i in enumerate(choice))
        if max_params is not None and p > max_params:
            continue
        plans.append(FrontPoint(tuple(choice), c, e, p))
    if not plans:
        raise GroupConvError(f"no plan of the {len(cost)} layers meets max_params {max_params}")
    plans.sort(key=lambda q: (q.cost, q.error, q.params))
    front, best_error = [], np.inf
    for q in plans:
        if q.error < best_error:
            front.append(q)
            best_error = q.error
    return tuple(front)
