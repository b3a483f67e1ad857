"""The fast Gram solver against the plain lstsq reference, torch, and exact special cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.approx.data import gram_from_data, he_variance, patches, sample_data, sample_weights
from groupconv.approx.measure import approximability
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


def _layout(method, N, n, m, seed=0):
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


# --- the solver on awkward data (was test_approx_robust.py) ----------------------------------
# The fast solver on awkward real-world data: channel scales over many decades, near-perfect
# fits, zero weights, extreme scales, complex and grad-requiring inputs; against the reference.


@given(
    method=st.sampled_from(["gc", "bgc", "permuted"]),
    N=st.sampled_from([2, 3, 4]),
    per_group=st.integers(1, 3),
    kernel=st.sampled_from([(1,), (3,), (2, 2)]),
    padding=st.sampled_from(["same", "valid", "circular"]),
    log_scales=st.lists(st.floats(-9, 9), min_size=12, max_size=12),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=50, deadline=None)
def test_channel_scales_over_eighteen_decades_agree_with_the_reference(
    method, N, per_group, kernel, padding, log_scales, seed
):
    n = m = N * per_group
    rng = np.random.default_rng(seed)
    spatial = (7,) * len(kernel)
    layout = _layout(method, N, n, m, seed)
    K = math.prod(kernel)
    unknowns = max(layout.group_rank(k) for k in range(len(layout.uses))) * K
    positions = math.prod(s - (k - 1 if padding == "valid" else 0) for s, k in zip(spatial, kernel))
    samples = max(3, math.ceil(3 * unknowns / positions))
    scales = 10.0 ** np.array(log_scales[:n])
    x = sample_data("normal", samples, n, spatial, rng) * scales[None, :, *([None] * len(kernel))]
    w = sample_weights(2, m, n, kernel, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a live channel, however quiet, is never called singular
        fast = GramSolver(gram_from_data(x, kernel, padding), w).solve(layout)
    ref = reference_errors(x, w, layout, padding)
    # relative to E itself where E is a visible part of the output, else to the output
    tol = 1e-7 * np.maximum(ref, 1e-6 * fast.totals)
    assert np.all(np.abs(fast.errors - ref) <= tol), (fast.errors, ref)


def test_one_quiet_live_channel_is_solved_exactly_without_a_warning():
    # The case the pivot-ratio test got 7 % wrong: one channel at scale 1e-7 among scale-1 ones.
    rng = np.random.default_rng(1)
    x = sample_data("normal", 16, 4, (12,), rng)
    x[:, 2] *= 1e-7
    w = sample_weights(3, 4, 4, (3,), rng)
    w[:, :, 2] *= 1e7  # make the quiet channel matter for the output
    layout = GCStructure(2).layout(4, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast = GramSolver(gram_from_data(x, 3), w).solve(layout)
    np.testing.assert_allclose(fast.errors, reference_errors(x, w, layout), rtol=1e-9)


def test_near_perfect_fit_is_accurate_relative_to_E():
    # Weights that are GC-structured up to a 1e-7 perturbation: E ~ 1e-14 of the output.
    rng = np.random.default_rng(2)
    n = m = 8
    x = sample_data("normal", 40, n, (16,), rng)
    w = sample_weights(2, m, n, (3,), rng)
    mask = np.kron(np.eye(2), np.ones((4, 4)))[None, :, :, None]
    w = w * mask + 1e-7 * w * (1 - mask)
    layout = GCStructure(2).layout(n, m)
    fast = GramSolver(gram_from_data(x, 3), w).solve(layout)
    ref = reference_errors(x, w, layout)
    assert np.all(fast.errors / fast.totals < 1e-12)
    # the direct residual form: E to ~1e-6 relative, where ||Wx||^2 - explained has none
    np.testing.assert_allclose(fast.errors, ref, rtol=1e-6)


def test_zero_weights_give_zero_error_and_zero_relative_error():
    rng = np.random.default_rng(3)
    x = sample_data("normal", 8, 4, (8,), rng)
    sweep = approximability(data=x, weights=np.zeros((1, 4, 4, 3)), groups=(2, 4))
    for r in sweep.results:
        assert r.E == 0.0 and r.rel_E == 0.0 and r.rel_output_E == 0.0


def test_zero_data_is_a_one_line_error():
    with pytest.raises(GroupConvError, match="all zero"):
        approximability(data=np.zeros((4, 4, 8)), groups=2)


@pytest.mark.parametrize("factor", [1e-200, 1e-40, 1e40, 1e120, 1e150, 1e153, 1e154])
def test_data_scale_changes_E_by_its_square_and_nothing_else(factor):
    rng = np.random.default_rng(4)
    x = sample_data("normal", 12, 8, (8,), rng)
    w = sample_weights(2, 8, 8, (3,), rng)
    base = approximability(data=x, weights=w, groups=(4,), methods=("gc", "bgc"))  # no exact fits
    try:
        scaled = approximability(data=x * factor, weights=w, groups=(4,), methods=("gc", "bgc"))
    except GroupConvError as exc:  # only when E itself is not a float64
        assert "outside float64's range" in str(exc) and (factor**2 * base.results[0].E > 1e308
                                                          or factor**2 * base.results[0].E < 1e-307)
        return
    for a, b in zip(base.results, scaled.results):
        assert b.E == pytest.approx(a.E * factor**2, rel=1e-10, abs=0.0)
        assert b.rel_E == pytest.approx(a.rel_E, rel=1e-10)
        assert b.rel_output_E == pytest.approx(a.rel_output_E, rel=1e-10, abs=1e-15)


def test_overflowing_scales_are_a_one_line_error_not_inf():
    rng = np.random.default_rng(5)
    x = sample_data("normal", 12, 4, (8,), rng) * 1e200  # E ~ 1e400: not a float64
    with pytest.raises(GroupConvError, match="outside float64's range"):
        approximability(data=x, weights=sample_weights(1, 4, 4, (3,), rng), groups=2)


def test_complex_inputs_are_one_line_errors():
    rng = np.random.default_rng(6)
    x = sample_data("normal", 4, 4, (8,), rng)
    with pytest.raises(GroupConvError, match="data are complex"):
        approximability(data=x * (1 + 1j), groups=2)
    with pytest.raises(GroupConvError, match="weights are complex"):
        approximability(data=x, weights=np.ones((1, 4, 4, 3)) * 1j, groups=2)
    with pytest.raises(GroupConvError, match="data are complex"):
        approximability(data=torch.ones(4, 4, 8, dtype=torch.complex64), groups=2)


def test_tensors_that_require_grad_are_accepted():
    rng = np.random.default_rng(7)
    x = sample_data("normal", 6, 4, (8,), rng)
    w = sample_weights(1, 4, 4, (3,), rng)
    plain = approximability(data=x, weights=w, groups=2)
    tx = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    tw = torch.tensor(w, dtype=torch.float32, requires_grad=True)
    graded = approximability(data=tx, weights=tw, groups=2)
    assert graded.results[0].E == pytest.approx(plain.results[0].E, rel=1e-5)


@given(
    k=st.integers(2, 5),
    dilation=st.integers(1, 2),
    padding=st.sampled_from(["same", "valid", "circular", 0, 2]),
    length=st.integers(6, 12),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=40, deadline=None)
def test_lag_structured_gram_equals_the_patch_gram(k, dilation, padding, length, seed):
    x = np.random.default_rng(seed).standard_normal((4, 3, length))
    try:
        p = patches(x, (k,), padding, 1, dilation)
    except GroupConvError:
        return  # kernel does not fit
    lag = gram_from_data(x, k, padding, dilation=dilation, method="lag").gram
    np.testing.assert_allclose(lag, p.T @ p, rtol=1e-12, atol=1e-12 * np.abs(p.T @ p).max())
