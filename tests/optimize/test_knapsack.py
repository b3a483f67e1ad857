"""The exact layer-separable search against brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.optimize import brute_force, search
from groupconv.errors import GroupConvError


@st.composite
def problems(draw):
    n = draw(st.integers(1, 5))
    sizes = [draw(st.integers(1, 5)) for _ in range(n)]
    cost = [[draw(st.integers(0, 30)) / 4 for _ in range(k)] for k in sizes]  # ties on purpose
    params = [[draw(st.integers(0, 20)) for _ in range(k)] for k in sizes]
    macs = [[draw(st.integers(0, 20)) for _ in range(k)] for k in sizes]
    max_p = draw(st.one_of(st.none(), st.integers(0, 20 * n)))
    max_m = draw(st.one_of(st.none(), st.integers(0, 20 * n)))
    return cost, params, macs, max_p, max_m


@settings(max_examples=300, deadline=None)
@given(problems())
def test_search_equals_brute_force(problem):
    cost, params, macs, max_p, max_m = problem
    try:
        ref = brute_force(cost, params, macs, max_params=max_p, max_macs=max_m)
    except GroupConvError:
        with pytest.raises(GroupConvError):
            search(cost, params, macs, max_params=max_p, max_macs=max_m)
        return
    got = search(cost, params, macs, max_params=max_p, max_macs=max_m)
    assert got.cost == pytest.approx(ref.cost, abs=1e-9)
    # the returned choice is feasible and its totals are what it claims
    assert got.cost == pytest.approx(sum(cost[l][i] for l, i in enumerate(got.choice)))
    assert got.params == sum(params[l][i] for l, i in enumerate(got.choice))
    assert got.macs == sum(macs[l][i] for l, i in enumerate(got.choice))
    assert max_p is None or got.params <= max_p
    assert max_m is None or got.macs <= max_m


def test_unbudgeted_search_is_the_per_layer_argmin():
    rng = np.random.default_rng(0)
    cost = [rng.random(k) for k in (3, 7, 1, 4, 9, 2)]
    got = search(cost)
    assert got.choice == tuple(int(np.argmin(c)) for c in cost)
    assert got.states == 1


def test_a_budget_binds_by_hand():
    """Two layers: cheap options are big. Unbudgeted: (0, 0) costs 2, params 20.
    With max_params 15 the best is (0, 1): cost 1 + 3 = 4, params 10 + 5 = 15
    ((1, 0) costs 5 + 1 = 6; (1, 1) costs 8)."""
    cost = [[1, 5], [1, 3]]
    params = [[10, 5], [10, 5]]
    assert search(cost, params).choice == (0, 0)
    got = search(cost, params, max_params=15)
    assert (got.choice, got.cost, got.params) == ((0, 1), 4.0, 15)
    with pytest.raises(GroupConvError, match="least possible is 10"):
        search(cost, params, max_params=9)


def test_realistic_size_against_brute_force():
    """Six layers of 6 divisor-like options (46,656 combinations) under both budgets."""
    rng = np.random.default_rng(1)
    groups = [1, 2, 4, 8, 16, 32]
    channels = [32, 64, 64, 128, 128, 256]
    sizes = [56, 28, 28, 14, 14, 7]
    params = [[c * c * 9 // g for g in groups] for c in channels]
    macs = [[p * s * s for p in row] for row, s in zip(params, sizes)]
    cost = [[m / 1e6 * (1 + rng.random()) + rng.random() for m in row] for row in macs]
    max_p = int(np.mean([sum(r) / len(r) for r in zip(*params)]) * 6 * 0.3)
    max_m = int(sum(min(r) for r in macs) * 3)
    ref = brute_force(cost, params, macs, max_params=max_p, max_macs=max_m)
    got = search(cost, params, macs, max_params=max_p, max_macs=max_m)
    assert got.cost == pytest.approx(ref.cost)
    assert got.params <= max_p and got.macs <= max_m
    n_all = len(list(itertools.product(*[range(6)] * 6)))
    assert got.states < n_all


def test_bad_input():
    with pytest.raises(GroupConvError, match="at least one layer"):
        search([])
    with pytest.raises(GroupConvError, match="layer 1 has no options"):
        search([[1.0], []])
    with pytest.raises(GroupConvError, match="finite"):
        search([[float("nan")]])
    with pytest.raises(GroupConvError, match="max_params needs"):
        search([[1.0]], max_params=3)
    with pytest.raises(GroupConvError, match=r"params\[0\] has 2 options"):
        search([[1.0]], [[1, 2]], max_params=3)
