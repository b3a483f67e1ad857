"""lsq: the least-squares core shared by fit/ and platform/, against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import lsq_linear

from groupconv.lsq import jacobian_covariance, kfold_splits, nnls_relative


def test_nnls_relative_matches_a_bounded_solver_on_the_weighted_problem():
    rng = np.random.default_rng(0)
    A = rng.uniform(0.1, 10.0, (40, 3)) * np.array([1e-6, 1.0, 1e3])  # badly scaled columns
    c_true = np.array([2e5, 0.0, 3e-4])
    y = A @ c_true * rng.uniform(0.95, 1.05, 40)
    c, res = nnls_relative(A, y)
    ref = lsq_linear(A / y[:, None], np.ones(40), bounds=(0, np.inf), tol=1e-12).x
    assert c == pytest.approx(ref, rel=1e-4, abs=1e-12)
    assert res == pytest.approx(np.linalg.norm(A @ c / y - 1), rel=1e-9)
    assert np.all(c >= 0)


def test_jacobian_covariance_is_the_ols_covariance_for_a_linear_model():
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(50), rng.normal(size=50)])
    y = X @ np.array([1.0, 2.0]) + rng.normal(scale=0.1, size=50)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ beta
    cov = jacobian_covariance(X, float(r @ r), 48)
    s2 = float(r @ r) / 48
    assert cov == pytest.approx(s2 * np.linalg.inv(X.T @ X))
    assert jacobian_covariance(X, 1.0, 0) is None  # no degrees of freedom
    rank1 = np.column_stack([X[:, 1], 2 * X[:, 1]])
    assert jacobian_covariance(rank1, 1.0, 48, require_full_rank=True) is None


def test_kfold_splits_cover_each_point_once_as_test():
    folds = list(kfold_splits(23, 5, seed=3))
    assert len(folds) == 5
    tests = np.concatenate([t for _, t in folds])
    assert sorted(tests.tolist()) == list(range(23))
    for train, test in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 23
    again = list(kfold_splits(23, 5, seed=3))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
