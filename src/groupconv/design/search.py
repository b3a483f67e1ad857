"""Exact layer-separable search: one option per layer, least total cost under budgets.

The problem (a multiple-choice knapsack with up to two budgets)::

    minimise    sum_l cost[l][c_l]
    subject to  sum_l params[l][c_l] <= max_params - fixed_params
                sum_l macs[l][c_l]   <= max_macs   - fixed_macs

over one choice ``c_l`` per layer. It is what "the number of groups of every grouped
layer" is when the predicted cost of a network is a sum over its operators (predicted
time is: a platform prices each operator on its own) and only the grouped convs change.

:func:`search` solves it exactly by dynamic programming over Pareto fronts: after layer
``l`` it keeps every partial choice that no other partial choice beats in cost and in
every budgeted quantity at once (a dominated partial choice can never complete to a
better answer than the one that dominates it), and drops the ones that cannot meet a
budget even with the cheapest remaining layers. Without a budget this is the per-layer
argmin; with one budget the front is a 2-D staircase; with two, a 3-D front. The result
is the optimum, not an approximation (it is checked against brute-force enumeration in
``tests/design/test_search.py``).

Pure Python and numpy; imports neither torch nor anything above it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import GroupConvError

__all__ = ["SearchResult", "search", "brute_force"]


@dataclass(frozen=True)
class SearchResult:
    """The best choice per layer and its totals.

    Attributes
    ----------
    choice : tuple of int
        Index of the chosen option of every layer.
    cost : float
        Sum of the chosen options' costs (without ``fixed_cost``).
    params, macs : int
        Sums of the chosen options' params and MACs (without the fixed parts).
    states : int
        Largest Pareto front kept (how hard the instance was).
    """

    choice: tuple[int, ...]
    cost: float
    params: int
    macs: int
    states: int = 1

    def as_dict(self) -> dict[str, object]:
        return {"choice": list(self.choice), "cost": self.cost, "params": self.params,
                "macs": self.macs, "states": self.states}


def _arrays(name: str, values, n_layers: int, sizes: list[int], dtype) -> list[np.ndarray]:
    if values is None:
        return [np.zeros(k, dtype=dtype) for k in sizes]
    if len(values) != n_layers:
        raise GroupConvError(f"{name} has {len(values)} layers, cost has {n_layers}")
    out = []
    for l, (row, k) in enumerate(zip(values, sizes)):
        arr = np.asarray(row, dtype=dtype).reshape(-1)
        if len(arr) != k:
            raise GroupConvError(f"{name}[{l}] has {len(arr)} options, cost[{l}] has {k}")
        out.append(arr)
    return out


def search(
    cost: Sequence[Sequence[float]],
    params: Sequence[Sequence[int]] | None = None,
    macs: Sequence[Sequence[int]] | None = None,
    *,
    max_params: float | None = None,
    max_macs: float | None = None,
) -> SearchResult:
    """The choice of one option per layer with the least total cost under the budgets.

    Parameters
    ----------
    cost : sequence of sequences of float
        ``cost[l][k]``: cost of option ``k`` of layer ``l`` (e.g. predicted time per frame).
        Must be finite.
    params, macs : sequence of sequences of int, optional
        The budgeted quantities of each option (same shape as ``cost``); needed only
        with the matching budget.
    max_params, max_macs : float, optional
        Budgets on the sums (already net of whatever the layers not searched add).

    Returns
    -------
    SearchResult
        Ties in cost go to the smaller budgeted params, then the smaller budgeted MACs
        (among exact ties the choice returned is one of them, not necessarily the
        lexicographically first).

    Raises
    ------
    GroupConvError
        If a layer has no options, a cost is not finite, or no choice meets the budgets
        (the message gives the least achievable params / MACs).
    """
    n = len(cost)
    if n == 0:
        raise GroupConvError("search needs at least one layer")
    costs = []
    for l, row in enumerate(cost):
        arr = np.asarray(row, dtype=float).reshape(-1)
        if len(arr) == 0:
            raise GroupConvError(f"layer {l} has no options")
        if not np.isfinite(arr).all():
            raise GroupConvError(f"cost[{l}] must be finite, got {arr.tolist()!r}")
        costs.append(arr)
    sizes = [len(c) for c in costs]
    if max_params is not None and params is None:
        raise GroupConvError("max_params needs the params of every option")
    if max_macs is not None and macs is None:
        raise GroupConvError("max_macs needs the MACs of every option")
    ps = _arrays("params", params, n, sizes, np.int64)
    ms = _arrays("macs", macs, n, sizes, np.int64)
    use_p, use_m = max_params is not None, max_macs is not None

    # least params / MACs the layers after l can still add (for pruning and for the error)
    tail_p = np.concatenate([np.cumsum([p.min() for p in ps][::-1])[::-1], [0]])
    tail_m = np.concatenate([np.cumsum([m.min() for m in ms][::-1])[::-1], [0]])
    if use_p and tail_p[0] > max_params:
        raise GroupConvError(f"no grouping meets max_params {max_params:,.0f}: the least possible is {int(tail_p[0]):,}")
    if use_m and tail_m[0] > max_macs:
        raise GroupConvError(f"no grouping meets max_macs {max_macs:,.0f}: the least possible is {int(tail_m[0]):,}")

    # front: arrays of cost, params, macs and a back-pointer (parent state, option) per stage
    f_cost, f_p, f_m = np.zeros(1), np.zeros(1, np.int64), np.zeros(1, np.int64)
    back: list[tuple[np.ndarray, np.ndarray]] = []
    largest = 1
    for l in range(n):
        k = sizes[l]
        c = (f_cost[:, None] + costs[l][None, :]).reshape(-1)
        p = (f_p[:, None] + ps[l][None, :]).reshape(-1)
        m = (f_m[:, None] + ms[l][None, :]).reshape(-1)
        parent = np.repeat(np.arange(len(f_cost)), k)
        option = np.tile(np.arange(k), len(f_cost))
        ok = np.ones(len(c), dtype=bool)
        if use_p:
            ok &= p + tail_p[l + 1] <= max_params
        if use_m:
            ok &= m + tail_m[l + 1] <= max_macs
        c, p, m, parent, option = c[ok], p[ok], m[ok], parent[ok], option[ok]
        if len(c) == 0:
            raise GroupConvError(
                f"no grouping meets max_params {max_params} and max_macs {max_macs} together"
            )
        keep = _pareto(c, p if use_p else None, m if use_m else None, parent, option)
        f_cost, f_p, f_m = c[keep], p[keep], m[keep]
        back.append((parent[keep], option[keep]))
        largest = max(largest, len(keep))

    best = 0  # fronts are sorted by (cost, params, macs, parent, option)
    choice = []
    state = best
    for parent, option in reversed(back):
        choice.append(int(option[state]))
        state = int(parent[state])
    choice.reverse()
    return SearchResult(
        choice=tuple(choice),
        cost=float(sum(costs[l][i] for l, i in enumerate(choice))),
        params=int(sum(ps[l][i] for l, i in enumerate(choice))),
        macs=int(sum(ms[l][i] for l, i in enumerate(choice))),
        states=largest,
    )


def _pareto(c, p, m, parent, option) -> np.ndarray:
    """Indices of the non-dominated points, sorted by (cost, p, m, parent, option).

    A point is dominated when another has cost <= and every budgeted quantity <=
    (exact duplicates keep the first in that order).
    """
    zeros = np.zeros(len(c), dtype=np.int64)
    p_ = zeros if p is None else p
    m_ = zeros if m is None else m
    order = np.lexsort((option, parent, m_, p_, c))
    if p is None and m is None:
        return order[:1]
    if p is None or m is None:
        q = (p if p is not None else m)[order]
        # keep a point when its quantity is below every quantity of a cheaper point
        prev_min = np.minimum.accumulate(np.concatenate([[np.iinfo(np.int64).max], q[:-1]]))
        return order[q < prev_min]
    # 3-D: a staircase of kept (p, m) with p ascending and m strictly descending
    stair_p: list[int] = []
    stair_m: list[int] = []
    kept = []
    for i in order:
        pi, mi = int(p[i]), int(m[i])
        j = bisect.bisect_right(stair_p, pi)  # kept points with params <= pi are stair[:j]
        if j and stair_m[j - 1] <= mi:  # the last of them has the least MACs among them
            continue
        kept.append(i)
        # drop stair points that the new point dominates in (p, m): params >= pi and macs >= mi
        lo = bisect.bisect_left(stair_p, pi)
        hi = lo
        while hi < len(stair_p) and stair_m[hi] >= mi:
            hi += 1
        stair_p[lo:hi] = [pi]
        stair_m[lo:hi] = [mi]
    return np.asarray(kept, dtype=np.intp)


def brute_force(cost, params=None, macs=None, *, max_params=None, max_macs=None) -> SearchResult:
    """The same optimum by enumerating every combination (a reference for small cases)."""
    import itertools

    n = len(cost)
    zeros = [[0] * len(row) for row in cost]
    params = zeros if params is None else params
    macs = zeros if macs is None else macs
    best = None
    for choice in itertools.product(*(range(len(row)) for row in cost)):
        c = sum(float(cost[l][i]) for l, i in enumerate(choice))
        p = sum(int(params[l][i]) for l, i in enumerate(choice))
        m = sum(int(macs[l][i]) for l, i in enumerate(choice))
        if (max_params is not None and p > max_params) or (max_macs is not None and m > max_macs):
            continue
        key = (c, p if max_params is not None else 0, m if max_macs is not None else 0)
        if best is None or key < best[0]:
            best = (key, choice, c, p, m)
    if best is None:
        raise GroupConvError(f"no choice of the {n} layers meets the budgets")
    return SearchResult(best[1], best[2], best[3], best[4])
