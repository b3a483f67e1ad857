"""The small least-squares core shared by :mod:`groupconv.fit` and :mod:`groupconv.platform`.

Both packages fit models to measured times or energies with errors that are relative
(a 1 ms op and a 100 ms network count alike), and report standard errors and
cross-validated errors. The numerics live here once:

* :func:`nnls_relative` - ``argmin_{c >= 0} sum ((A c) / y - 1)^2``, the exact optimum of
  a linear model under the relative loss (columns scaled for conditioning).
* :func:`jacobian_covariance` - ``s^2 (J^T J)^-1`` with ``s^2`` the residual sum of
  squares over the degrees of freedom (the Gauss-Newton approximation of the
  parameter covariance at a least-squares optimum).
* :func:`kfold_splits` - shuffled k-fold (train, test) index pairs.

Plain numpy/scipy on arrays: it sits below every package that fits (the house's import
order: errors and validation, this core, cost, ...). Imports neither torch nor zeus.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["jacobian_covariance", "kfold_splits", "nnls_relative"]


def nnls_relative(A: np.ndarray, y: np.ndarray, *, maxiter: int | None = None) -> tuple[np.ndarray, float]:
    """Non-negative least squares on relative residuals.

    Parameters
    ----------
    A : numpy.ndarray, shape (n, p)
        Design matrix (model ``y ~ A c``).
    y : numpy.ndarray, shape (n,)
        Measured values, > 0.
    maxiter : int, optional
        Iteration limit of :func:`scipy.optimize.nnls` (its default when None).

    Returns
    -------
    coef : numpy.ndarray, shape (p,)
        ``argmin_{c >= 0} sum ((A c) / y - 1)^2``.
    residual_norm : float
        The Euclidean norm of the relative residuals at ``coef``.
    """
    from scipy.optimize import nnls

    W = A / y[:, None]
    scale = np.linalg.norm(W, axis=0)
    scale[scale == 0] = 1.0
    if maxiter is None:
        c, residual = nnls(W / scale, np.ones_like(y, dtype=float))
    else:
        c, residual = nnls(W / scale, np.ones_like(y, dtype=float), maxiter=maxiter)
    return c / scale, float(residual)


def jacobian_covariance(J: np.ndarray, sum_sq: float, dof: int, *, require_full_rank: bool = False) -> np.ndarray | None:
    """Parameter covariance ``sum_sq / dof * (J^T J)^-1`` at a least-squares optimum.

    Parameters
    ----------
    J : numpy.ndarray, shape (n, p)
        Jacobian of the residuals with respect to the (free) parameters.
    sum_sq : float
        Sum of squared residuals at the optimum.
    dof : int
        Degrees of freedom, ``n`` minus the free parameters.
    require_full_rank : bool
        Return None when ``J`` is rank-deficient (some combination of parameters is not
        identifiable) instead of inverting a near-singular matrix.

    Returns
    -------
    numpy.ndarray or None
        None without degrees of freedom, for a singular ``J^T J`` or, with
        ``require_full_rank``, a rank-deficient ``J``.
    """
    if dof <= 0:
        return None
    if require_full_rank and np.linalg.matrix_rank(J) < J.shape[1]:
        return None
    try:
        return float(sum_sq) / dof * np.linalg.inv(J.T @ J)
    except np.linalg.LinAlgError:
        return None


def kfold_splits(n: int, k: int = 5, *, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Shuffled k-fold cross-validation: ``(train, test)`` index arrays, ``k`` of them.

    The points are permuted with ``numpy.random.default_rng(seed)`` and split into ``k``
    folds of (nearly) equal size; each fold is the test set once.
    """
    rng = np.random.default_rng(seed)
    for fold in np.array_split(rng.permutation(n), k):
        yield np.setdiff1d(np.arange(n), fold), fold
