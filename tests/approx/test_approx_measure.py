"""The E / Rel.E sweep (BGC paper Eq. 5.1, 5.3)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from groupconv.approx import theory
from groupconv.approx.measure import ApproxConfig, approximability
from groupconv.approx.solvers import reference_errors
from groupconv.approx.structures import GCStructure, PartitionedGCStructure, structure
from groupconv.errors import GroupConvError

SMALL = ApproxConfig(in_channels=16, out_channels=16, kernel=3, input_shape=12,
                     data_samples=24, weight_samples=6, seed=3)


def test_sweep_values_follow_their_definitions():
    sweep = approximability(SMALL, groups=(2, 4, 8), methods=("gc", "bgc"))
    x, w = SMALL.sample_data(), SMALL.sample_weights()
    norm_w = np.mean(np.sum(w.reshape(6, -1) ** 2, axis=1))
    norm_x = np.mean(np.sum(x.reshape(24, -1) ** 2, axis=1))
    assert sweep.mean_sq_norm_W == pytest.approx(norm_w) and sweep.mean_sq_norm_x == pytest.approx(norm_x)
    assert [(r.method, r.groups) for r in sweep.results] == [
        ("gc", 2), ("gc", 4), ("gc", 8), ("bgc", 2), ("bgc", 4), ("bgc", 8)
    ]
    for r in sweep.results:
        layout = structure(r.method, r.groups).layout(16, 16)
        errors = reference_errors(x, w, layout)  # Eq. 5.1 bracket, independently
        assert r.E == pytest.approx(errors.mean(), rel=1e-9, abs=1e-9)  # Eq. 5.1
        if r.E > 0:
            assert r.rel_E == pytest.approx(r.E / (norm_w * norm_x), rel=1e-12)  # Eq. 5.3
            assert r.E_stderr == pytest.approx(errors.std(ddof=1) / math.sqrt(6), rel=1e-6)
        assert r.bound_thm == theory.bound_thm(r.method, r.groups, 3)
        assert r.bound_iid == theory.bound_iid(r.method, r.groups, 3, 16)
        assert r.rows == 24 * 12 and r.expected_kind == "bracketed"
    assert sweep.result("bgc", 2).E < 1e-9 * sweep.result("gc", 2).E  # BGC with N=2 is exact


def test_E_agrees_with_its_conditional_expectation_and_theory():
    # E - E_W[E|data] is pure weight-sampling noise: within 4 standard errors. The data
    # noise of E_W[E|data] around E[E] is checked in test_approx_theory over many seeds.
    sweep = approximability(SMALL, groups=(2, 4), methods=("gc", "bgc"), weight_samples=40)
    for r in sweep.results:
        if r.expected_E == 0:  # BGC with N = 2 reproduces the dense conv exactly
            assert r.rel_output_E < 1e-12 and r.expected_E_given_data < 1e-9
            continue
        assert abs(r.E - r.expected_E_given_data) < 4 * r.E_stderr
        assert r.expected_E_low <= r.expected_E <= r.expected_E_high


def test_reference_solver_gives_the_same_sweep():
    kwargs = dict(groups=(2, 4), methods=("gc", "bgc"), given_data=False)
    fast = approximability(SMALL, **kwargs)
    ref = approximability(SMALL, solver="reference", **kwargs)
    for a, b in zip(fast.results, ref.results):
        assert a.E == pytest.approx(b.E, rel=1e-8, abs=1e-10)
        assert a.unknowns == b.unknowns


def test_user_data_and_weights_and_extra_structures():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 8, 6, 5))  # 2-D data
    w = rng.standard_normal((2, 4, 8, 3, 3))
    perm = PartitionedGCStructure.permuted(2, 8, 4, seed=0)
    sweep = approximability(groups=(2,), methods=("gc",), structures=(perm,), data=x, weights=w)
    assert sweep.data_source == sweep.weight_source == "user"
    assert sweep.config.kernel == (3, 3) and sweep.config.input_shape == (6, 5)
    assert [r.method for r in sweep.results] == ["gc", "permuted-gc"]
    for r in sweep.results:
        assert r.expected_E is None and r.expected_E_given_data is None
        layout = (GCStructure(2) if r.method == "gc" else perm).layout(8, 4)
        assert r.E == pytest.approx(reference_errors(x, w, layout).mean(), rel=1e-9)
    # user data with He weights: the conditional expectation is still defined
    with_he = approximability(groups=(2,), methods=("gc",), data=x, kernel=(3, 3), out_channels=4)
    assert with_he.weight_source == "he_normal" and with_he.result("gc", 2).expected_E_given_data > 0
    assert with_he.result("gc", 2).expected_E is None


def test_records_table_and_slopes():
    sweep = approximability(SMALL, groups=(2, 4, 8), methods=("gc",))
    records = sweep.records()
    assert set(records[0]) >= {"method", "groups", "E", "rel_E", "bound_thm", "bound_iid", "expected_E"}
    assert "errors" not in records[0] and len(sweep.records(errors=True)[0]["errors"]) == 6
    frame = sweep.to_frame()
    assert list(frame["groups"]) == [2, 4, 8]
    table = sweep.table()
    assert "slope of log E vs log(1-1/N), gc" in table and len(table.splitlines()) == 2 + 3 + 2
    assert sweep.slope("gc") == pytest.approx(
        theory.fitted_slope([2, 4, 8], [r.E for r in sweep.results]))


def test_same_seed_same_weights_for_either_distribution():
    a = ApproxConfig(seed=4, in_channels=4, out_channels=4, dist="normal").sample_weights()
    b = ApproxConfig(seed=4, in_channels=4, out_channels=4, dist="uniform").sample_weights()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(groups=(3,)), "in_channels=16 is not divisible by groups=3"),
        (dict(methods=("shuffle",)), "unknown method 'shuffle'"),
        (dict(dist="cauchy"), "unknown dist 'cauchy'"),
        (dict(solver="fast"), "unknown solver 'fast'"),
        (dict(data_samples=1, groups=(2,)), "under-determined"),
        (dict(data=np.full((4, 16, 12), np.nan)), "non-finite"),
        (dict(data=np.ones((4, 16, 6, 6))), "2 spatial dimensions but kernel is \\(3,\\)"),
        (dict(weights=np.ones((1, 4, 7, 3))), "weights expect 7 input channels"),
        (dict(groups=(), methods=()), "nothing to measure"),
        (dict(structures=("gc",)), "not a structure"),
    ],
)
def test_bad_input_is_a_one_line_error(kwargs, match):
    with pytest.raises(GroupConvError, match=match) as info:
        approximability(SMALL, **kwargs)
    assert "\n" not in str(info.value)


def test_sweep_shows_as_a_table_in_notebooks():
    from groupconv.approx import approximability

    sweep = approximability(
        in_channels=16, out_channels=16, input_shape=(8,), data_samples=32, weight_samples=2, groups=(2, 4)
    )
    html = sweep._repr_html_()
    assert html.count("<tr") == 1 + 4  # header + (gc, bgc) x (2, 4)
    assert "rel_E" in html and "bound_iid" in html


def test_a_sweep_too_big_for_memory_is_refused_by_the_library():
    """The memory check is the library's: the Python API refuses what the CLI refuses,
    before sampling, with the bytes named; user data skip it (already in memory)."""
    from groupconv.approx.measure import ApproxConfig, approximability
    from groupconv.errors import GroupConvError

    huge = ApproxConfig(in_channels=10**9, out_channels=64)
    with pytest.raises(GroupConvError, match=r"approx with n=1000000000 m=64 .* needs at least .* bytes"):
        huge.check_memory()
    with pytest.raises(GroupConvError, match="needs at least"):
        approximability(huge, groups=(4,))
    ApproxConfig(in_channels=8, out_channels=8).check_memory()  # small: fits
