"""Feature declarations of GC, BGC and partitioned GC."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.approx.structures import (
    BGCStructure,
    DenseStructure,
    FeatureLayout,
    GCStructure,
    PartitionedGCStructure,
    Structure,
    structure,
)
from groupconv.approx.theory import symbolic_offspan_dimension
from groupconv.errors import GroupConvError


def test_gc_layout_is_block_diagonal_eq_2_3():
    layout = GCStructure(4).layout(8, 12)
    assert len(layout.out_groups) == 4
    for k in range(4):
        np.testing.assert_array_equal(layout.out_groups[k], np.arange(3 * k, 3 * k + 3))
        feats = layout.group_features(k)
        # F_k selects input channels 2k, 2k+1
        np.testing.assert_array_equal(feats, np.eye(8)[2 * k : 2 * k + 2])
        assert layout.group_rank(k) == 2 and layout.group_basis(k)[0] is None
    assert layout.params(3) == 12 * 8 * 3 // 4  # Kmn/N (BGC paper Table 1)


def test_bgc_layout_adds_the_group_mean_eq_3_1():
    n, N = 12, 3
    layout = BGCStructure(N).layout(n, 6)
    x = np.random.default_rng(0).standard_normal(n)
    blocks = x.reshape(N, n // N)
    for k in range(N):
        feats = layout.group_features(k) @ x
        np.testing.assert_allclose(feats[: n // N], blocks[k])
        np.testing.assert_allclose(feats[n // N :], blocks.mean(axis=0))  # x_bar
        assert layout.group_rank(k) == 2 * n // N
    assert layout.params(3) == 2 * 6 * n * 3 // N  # 2Kmn/N (Table 1)


@pytest.mark.parametrize("N", [1, 2])
def test_bgc_with_one_or_two_groups_sees_everything(N):
    layout = BGCStructure(N).layout(6, 6)
    for k in range(N):
        assert layout.group_rank(k) == 6
    # N = 1: [x; x_bar] = [x; x] is rank-deficient; the basis change handles it.
    if N == 1:
        basis, rank = layout.group_basis(0)
        q = basis @ layout.group_features(0)
        np.testing.assert_allclose(q @ q.T, np.eye(rank), atol=1e-12)


@pytest.mark.parametrize("n, N", [(8, 2), (8, 4), (12, 3), (16, 8), (9, 3)])
def test_offspan_dimension_in_exact_arithmetic(n, N):
    # sympy, rational arithmetic: the channels group k cannot see are n(1-1/N) for GC and
    # n(1-2/N) for BGC - the whole population theory rests on these two numbers.
    gc, bgc = GCStructure(N).layout(n, n), BGCStructure(N).layout(n, n)
    for k in range(N):
        assert symbolic_offspan_dimension(gc, k) == n - n // N
        assert symbolic_offspan_dimension(bgc, k) == max(n - 2 * n // N, 0)


@given(st.integers(1, 6), st.integers(1, 4), st.integers(1, 4), st.integers(0, 1000))
@settings(max_examples=30, deadline=None)
def test_permuted_gc_is_a_relabelled_gc(N, a, b, seed):
    n, m = N * a, N * b
    perm = PartitionedGCStructure.permuted(N, n, m, seed=seed)
    layout = perm.layout(n, m)
    assert perm.groups == N == len(layout.out_groups)
    seen_in = np.sort(np.concatenate(layout.uses))
    np.testing.assert_array_equal(seen_in, np.arange(n))  # every input used once
    for k in range(N):
        assert layout.uses[k].size == a and layout.out_groups[k].size == b
    # identity permutation = plain GC
    ident = PartitionedGCStructure.permuted(N, n, m, np.arange(n), np.arange(m)).layout(n, m)
    plain = GCStructure(N).layout(n, m)
    for k in range(N):
        np.testing.assert_array_equal(ident.uses[k], plain.uses[k])
        np.testing.assert_array_equal(ident.out_groups[k], plain.out_groups[k])


def test_structures_satisfy_the_protocol():
    for s in (GCStructure(2), BGCStructure(2), DenseStructure(), PartitionedGCStructure((0, 1), (1, 0))):
        assert isinstance(s, Structure)
    assert structure("gc", 4) == GCStructure(4) and structure("bgc", 2) == BGCStructure(2)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: GCStructure(3).layout(8, 9), "in_channels=8 is not divisible by groups=3"),
        (lambda: BGCStructure(4).layout(8, 6), "out_channels=6 is not divisible by groups=4"),
        (lambda: GCStructure(0), "groups must be a positive integer"),
        (lambda: structure("shuffle", 2), "unknown method 'shuffle'"),
        (lambda: PartitionedGCStructure((0, 0), (1,)), r"output group labels \[1\] have no input"),
        (lambda: PartitionedGCStructure((0, 1), (0, 1)).layout(3, 2), "partition labels cover"),
        (lambda: PartitionedGCStructure.permuted(2, 4, 4, in_permutation=[0, 0, 1, 2]), "permutation"),
        (
            lambda: FeatureLayout(2, 2, np.eye(2), (np.array([0]),), (np.array([0]),), "x", 1),
            "partition the 2 output channels",
        ),
        (
            lambda: FeatureLayout(2, 1, np.eye(2), (np.array([0]),), (np.array([5]),), "x", 1),
            "outside",
        ),
    ],
)
def test_bad_structures_are_one_line_errors(make, match):
    with pytest.raises(GroupConvError, match=match) as info:
        make()
    assert "\n" not in str(info.value)
