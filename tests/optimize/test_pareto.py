"""pareto_front: the exact (cost, error) front over one option per layer, against enumeration."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.optimize import brute_force_front, pareto_front
from groupconv.errors import GroupConvError


def _same(front, reference):
    assert [(p.cost, p.error) for p in front] == [(p.cost, p.error) for p in reference]  # exact: binary fractions
    assert [p.params for p in front] == [p.params for p in reference]


def test_two_layers_by_hand():
    # layer 0: (cost, error) = (4, 0), (2, 1), (1, 3); layer 1: (2, 0), (1, 2)
    cost = [[4, 2, 1], [2, 1]]
    error = [[0, 1, 3], [0, 2]]
    front = pareto_front(cost, error)
    # all 6 plans: (6,0) (5,2) (4,1) (3,3) (3,3) (2,5); (5,2) is beaten by (4,1),
    # the two (3,3) tie (the first kept)
    assert [(p.cost, p.error) for p in front] == [(2, 5), (3, 3), (4, 1), (6, 0)]
    assert front[-1].choice == (0, 0) and front[0].choice == (2, 1)


def test_params_budget_is_searched_not_filtered():
    # the cheapest plan at error 0 has many params; under the budget the front changes
    cost = [[1, 2], [1, 2]]
    error = [[0, 0.5], [0, 0.5]]
    params = [[10, 1], [10, 1]]
    free = pareto_front(cost, error, params)
    assert [(p.cost, p.error) for p in free] == [(2, 0)]
    budget = pareto_front(cost, error, params, max_params=11)
    assert [(p.cost, p.error, p.params) for p in budget] == [(3, 0.5, 11)]
    _same(budget, brute_force_front(cost, error, params, max_params=11))


def test_unmeetable_params_budget_names_the_least():
    with pytest.raises(GroupConvError, match="least possible is 2"):
        pareto_front([[1, 2], [1]], [[0, 1], [0]], [[3, 1], [1]], max_params=1)


@pytest.mark.parametrize("bad", [[[1.0, float("nan")]], [[]]])
def test_bad_tables_are_one_line_errors(bad):
    with pytest.raises(GroupConvError):
        pareto_front(bad, [[0.0] * len(bad[0])])


def test_shape_mismatch_named():
    with pytest.raises(GroupConvError, match=r"error\[0\] has 1 options"):
        pareto_front([[1, 2]], [[0]])


layer = st.lists(
    st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(1, 9)), min_size=1, max_size=4
)


@settings(max_examples=60, deadline=None)
@given(st.lists(layer, min_size=1, max_size=4), st.booleans(), st.integers(3, 30))
def test_front_equals_brute_force(layers, budgeted, budget):
    cost = [[c / 4 for c, _, _ in row] for row in layers]  # quarters: exact in binary
    error = [[e / 8 for _, e, _ in row] for row in layers]
    params = [[p for _, _, p in row] for row in layers]
    max_params = budget if budgeted else None
    try:
        reference = brute_force_front(cost, error, params, max_params=max_params)
    except GroupConvError:
        with pytest.raises(GroupConvError):
            pareto_front(cost, error, params, max_params=max_params)
        return
    front = pareto_front(cost, error, params, max_params=max_params)
    _same(front, reference)
    for p in front:  # the totals are the chosen options' sums
        assert p.cost == sum(cost[l][i] for l, i in enumerate(p.choice))
        assert p.error == sum(error[l][i] for l, i in enumerate(p.choice))
        assert p.params == sum(params[l][i] for l, i in enumerate(p.choice))
        assert max_params is None or p.params <= max_params
    # a front: cost strictly up, error strictly down
    assert all(a.cost < b.cost and a.error > b.error for a, b in zip(front, front[1:]))
