"""The fast Gram solver against the plain lstsq reference, torch, and exact special cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from groupconv.approx.data import gram_from_data, he_variance, sample_data, sample_weights
from groupconv.approx.solvers import GramSolver, reference_errors
from groupconv.approx.structures import BGCStructure, DenseStructure, GCStructure, PartitionedGCStructure
from groupconv.errors import GroupConvError


@st.composite
def problems(draw):
    N = draw(st.sampled_from([1, 2, 3, 4]))
    n = N * draw(st.integers(1, 3))
    m = N * draw(st.integers(1, 3))
    dims = draw(st.sampled_from([1, 2]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    spatial = tuple(draw(st.integers(max(kernel), 7)) for _ in range(dims))
    padding = draw(st.sampled_from(["same", "valid", "circular", 1]))
    method = draw(st.sampled_from(["gc", "bgc", "permuted"]))
    seed = draw(st.integers(0, 2**16))
    return N, n, m, kernel, spatial, padding, method, seed


def _layout(method, N, n, m, seed):
    if method == "gc":
        return GCStructure(N).layout(n, m)
    if method == "bgc":
        return BGCStructure(N).layout(n, m)
    return PartitionedGCStructure.permuted(N, n, m, seed=seed).layout(n, m)


@given(problems())
@settings(max_examples=60, deadline=None)
def test_fast_and_reference_solvers_agree(problem):
    N, n, m, kernel, spatial, padding, method, seed = problem
    rng = np.random.default_rng(seed)
    layout = _layout(method, N, n, m, seed)
    K = math.prod(kernel)
    positions = math.prod(
        (s if padding in ("same", "circular") else s - k + 1 if padding == "valid" else s + 2 - k + 1)
        for s, k in zip(spatial, kernel)
    )
    unknowns = max(layout.group_rank(k) for k in range(len(layout.uses))) * K
    samples = max(2, math.ceil(2 * unknowns / positions))  # at least twice as many rows
    x = sample_data("normal", samples, n, spatial, rng)
    w = sample_weights(3, m, n, kernel, rng)
    fast = GramSolver(gram_from_data(x, kernel, padding), w).solve(layout)
    ref = reference_errors(x, w, layout, padding)
    scale = fast.totals  # output energy per weight sample
    degenerate = ref < 1e-9 * scale  # e.g. BGC with N <= 2, GC with N = 1: exact fit
    np.testing.assert_array_less(fast.errors[degenerate], 1e-9 * scale[degenerate] + 1e-300)
    rel = np.abs(fast.errors - ref)[~degenerate] / ref[~degenerate]
    assert np.all(rel < 1e-8), (rel, problem)


def test_fast_solver_reuses_one_gram_for_every_structure():
    rng = np.random.default_rng(5)
    x, w = sample_data("uniform", 20, 8, (9,), rng), sample_weights(4, 8, 8, (3,), rng)
    solver = GramSolver(gram_from_data(x, 3), w)
    for s in (GCStructure(2), GCStructure(4), BGCStructure(4), BGCStructure(8), DenseStructure()):
        layout = s.layout(8, 8)
        np.testing.assert_allclose(
            solver.solve(layout).errors, reference_errors(x, w, layout), rtol=1e-9, atol=1e-9
        )


def test_exactly_grouped_weight_has_zero_gc_error():
    rng = np.random.default_rng(6)
    x = sample_data("normal", 10, 8, (12,), rng)
    w = sample_weights(2, 8, 8, (3,), rng)
    mask = np.kron(np.eye(4), np.ones((2, 2)))[None, :, :, None]  # block diagonal, N = 4
    fit = GramSolver(gram_from_data(x, 3), w * mask).solve(GCStructure(4).layout(8, 8))
    assert np.all(fit.errors <= 1e-12 * fit.totals)
    assert np.all(fit.totals > 1)
    # ... but not for a coarser grouping's complement: N = 8 must lose something
    fit8 = GramSolver(gram_from_data(x, 3), w * mask).solve(GCStructure(8).layout(8, 8))
    assert np.all(fit8.errors > 1e-3 * fit8.totals)


@pytest.mark.parametrize("method", ["gc", "bgc"])
@pytest.mark.parametrize("padding", [1, "valid"])
def test_best_weights_reproduce_the_error_in_torch(method, padding):
    # The solver's minimiser, split into the structure's own weights and run as real torch
    # convs (a grouped conv, plus a conv of the group mean for BGC), gives the same error.
    from groupconv.approx.torch_layers import grouped_weights

    rng = np.random.default_rng(7)
    S = 12
    n, m, N = (8, 6, 2) if method == "gc" else (12, 6, 3)
    x = sample_data("normal", S, n, (10,), rng)
    w = sample_weights(2, m, n, (3,), rng)
    layout = GCStructure(N).layout(n, m) if method == "gc" else BGCStructure(N).layout(n, m)
    fit = GramSolver(gram_from_data(x, 3, padding), w).solve(layout, return_weights=True)
    tx = torch.tensor(x)
    for t in range(2):
        target = F.conv1d(tx, torch.tensor(w[t]), padding=padding)
        if method == "gc":
            approx = F.conv1d(tx, torch.tensor(grouped_weights(fit.weights[t], "gc", N)),
                              groups=N, padding=padding)
        else:
            w_gc, w_bar = grouped_weights(fit.weights[t], "bgc", N)
            x_bar = tx.reshape(S, N, n // N, -1).mean(dim=1)
            approx = F.conv1d(tx, torch.tensor(w_gc), groups=N, padding=padding) + F.conv1d(
                x_bar, torch.tensor(w_bar), padding=padding
            )
        err = float(((target - approx) ** 2).sum()) / S
        assert err == pytest.approx(fit.errors[t], rel=1e-9)


def test_conditional_expectation_matches_many_weight_samples():
    # E_W[E | data] is exact; 400 He weight samples must land within a few standard errors.
    rng = np.random.default_rng(8)
    x = sample_data("uniform", 6, 6, (8,), rng)
    w = sample_weights(400, 3, 6, (3,), rng)
    solver = GramSolver(gram_from_data(x, 3, "same"), w)
    for s in (GCStructure(3), BGCStructure(3), PartitionedGCStructure.permuted(3, 6, 3, seed=1)):
        layout = s.layout(6, 3)
        errors = solver.solve(layout).errors
        expected = solver.expected_error(layout, he_variance(6, (3,)))
        stderr = errors.std(ddof=1) / math.sqrt(errors.size)
        assert abs(errors.mean() - expected) < 4 * stderr, (s, errors.mean(), expected, stderr)


def test_underdetermined_is_an_error_in_both_solvers():
    rng = np.random.default_rng(9)
    x = sample_data("normal", 2, 16, (5,), rng)  # 10 rows
    w = sample_weights(1, 16, 16, (3,), rng)
    layout = GCStructure(2).layout(16, 16)  # 8 features x 3 taps = 24 unknowns
    message = r"under-determined.*24 unknowns per output channel \(8 features x 3 taps\).*only 10 data rows"
    with pytest.raises(GroupConvError, match=message) as info:
        GramSolver(gram_from_data(x, 3), w).solve(layout)
    assert "\n" not in str(info.value)
    with pytest.raises(GroupConvError, match=message):
        reference_errors(x, w, layout)
    with pytest.raises(GroupConvError, match="under-determined"):
        GramSolver(gram_from_data(x, 3), w).expected_error(layout, 1.0)
    # exactly as many rows as unknowns: an interpolating fit with a meaningless zero error
    x24 = sample_data("normal", 8, 16, (3,), rng)  # 8 x 3 = 24 rows
    with pytest.raises(GroupConvError, match="24 unknowns.*only 24 data rows"):
        GramSolver(gram_from_data(x24, 3), w).solve(layout)
    with pytest.raises(GroupConvError, match="only 24 data rows"):
        reference_errors(x24, w, layout)


def test_dead_channel_falls_back_to_pseudo_inverse_and_still_agrees():
    rng = np.random.default_rng(10)
    x = sample_data("normal", 8, 4, (10,), rng)
    x[:, 1] = 0.0  # a dead (all-zero) input channel, as after a ReLU
    w = sample_weights(2, 4, 4, (3,), rng)
    layout = GCStructure(2).layout(4, 4)
    with pytest.warns(RuntimeWarning, match="linearly dependent.*input channel 1 identically zero"):
        fast = GramSolver(gram_from_data(x, 3), w).solve(layout)
    np.testing.assert_allclose(fast.errors, reference_errors(x, w, layout), rtol=1e-8)


def test_layout_weight_mismatch_is_an_error():
    rng = np.random.default_rng(11)
    x, w = sample_data("normal", 4, 4, (6,), rng), sample_weights(1, 4, 4, (3,), rng)
    with pytest.raises(GroupConvError, match="layout is for 8->8"):
        GramSolver(gram_from_data(x, 3), w).solve(GCStructure(2).layout(8, 8))
    with pytest.raises(GroupConvError, match="do not match"):
        GramSolver(gram_from_data(x, 3), sample_weights(1, 4, 4, (5,), rng))
    bad = w.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(GroupConvError, match="non-finite"):
        GramSolver(gram_from_data(x, 3), bad)
