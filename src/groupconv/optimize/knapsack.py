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
``tests/optimize/test_knapsack.py``).

Pure Python and numpy; imports neither torch nor anything above it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import GroupConvError

__all__ = ["SearchResult", "backtrack", "brute_force", "layer_fronts", "search"]


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

    # least params / MACs the layers can add (the least achievable, for the error)
    least_p, least_m = sum(int(p.min()) for p in ps), sum(int(m.min()) for m in ms)
    if use_p and least_p > max_params:
        raise GroupConvError(f"no grouping meets max_params {max_params:,.0f}: the least possible is {least_p:,}")
    if use_m and least_m > max_macs:
        raise GroupConvError(f"no grouping meets max_macs {max_macs:,.0f}: the least possible is {least_m:,}")

    def keep(sums, parent, option):
        c, p, m = sums
        return _pareto(c, p if use_p else None, m if use_m else None, parent, option)

    front, back, largest = layer_fronts([costs, ps, ms], [None, max_params, max_macs], keep)
    if len(front[0]) == 0:
        raise GroupConvError(
            f"no grouping meets max_params {max_params} and max_macs {max_macs} together"
        )
    choice = backtrack(back, 0)  # fronts are sorted by (cost, params, macs, parent, option)
    return SearchResult(
        choice=choice,
        cost=float(sum(costs[l][i] for l, i in enumerate(choice))),
        params=int(sum(ps[l][i] for l, i in enumerate(choice))),
        macs=int(sum(ms[l][i] for l, i in enumerate(choice))),
        states=largest,
    )


def layer_fronts(quantities, limits, keep):
    """The dynamic programme over layers that :func:`search` and
    :func:`~groupconv.optimize.pareto_front` share.

    Parameters
    ----------
    quantities : list of lists of numpy arrays
        One list per summed quantity (cost first, then e.g. error, params, MACs), each with
        one array of option values per layer.
    limits : list of float or None
        Per quantity, a budget on its sum, or None. A partial choice is dropped as soon as
        it cannot meet a budget even with the least value of every later layer.
    keep : callable
        ``keep(sums, parent, option)`` -> indices of the partial choices to keep (the
        non-dominated ones, in the caller's order), given the summed quantities.

    Returns
    -------
    front : list of numpy arrays
        The summed quantities of the last stage's kept choices (empty when none meets the
        budgets).
    back : list of (parent, option) arrays
        Back-pointers of every stage, for :func:`backtrack`.
    largest : int
        The largest front kept.
    """
    sizes = [len(a) for a in quantities[0]]
    tails = [None if limit is None else
             np.concatenate([np.cumsum([a.min() for a in q][::-1])[::-1], [0]])
             for q, limit in zip(quantities, limits)]
    front = [np.zeros(1, dtype=q[0].dtype) for q in quantities]
    back: list[tuple[np.ndarray, np.ndarray]] = []
    largest = 1
    for l, k in enumerate(sizes):
        sums = [(f[:, None] + q[l][None, :]).reshape(-1) for f, q in zip(front, quantities)]
        parent = np.repeat(np.arange(len(front[0])), k)
        option = np.tile(np.arange(k), len(front[0]))
        ok = np.ones(len(parent), dtype=bool)
        for total, tail, limit in zip(sums, tails, limits):
            if limit is not None:
                ok &= total + tail[l + 1] <= limit
        sums, parent, option = [total[ok] for total in sums], parent[ok], option[ok]
        kept = keep(sums, parent, option)
        front = [total[kept] for total in sums]
        back.append((parent[kept], option[kept]))
        largest = max(largest, len(kept))
        if len(kept) == 0:
            break
    return front, back, largest


def backtrack(back, state: int) -> tuple[int, ...]:
    """The option of every layer that leads to ``state`` of the last front."""
    choice = []
    for parent, option in reversed(back):
        choice.append(int(option[state]))
        state = int(parent[state])
    return tuple(reversed(choice))


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
