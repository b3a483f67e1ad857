"""Patches, padding and sampling: checked against real torch convolutions and brute-force counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from groupconv.approx import data as d
from groupconv.errors import GroupConvError


def _torch_conv(x: np.ndarray, w: np.ndarray, padding, stride: int, dilation: int) -> np.ndarray:
    """The reference: torch's own conv (circular padding applied by F.pad)."""
    tx, tw = torch.tensor(x), torch.tensor(w)
    conv = F.conv1d if x.ndim == 3 else F.conv2d
    if padding == "circular":
        pads = [a for pair in reversed(d.pad_amounts(w.shape[2:], padding, dilation)) for a in pair]
        return conv(F.pad(tx, pads, mode="circular"), tw, stride=stride, dilation=dilation).numpy()
    return conv(tx, tw, padding=padding, stride=stride, dilation=dilation).numpy()


@pytest.mark.parametrize("kernel, spatial", [((3,), (11,)), ((4,), (9,)), ((3, 2), (6, 7)), ((1,), (5,))])
@pytest.mark.parametrize(
    "padding, stride, dilation",
    [(p, 1, 1) for p in ("same", "valid", "circular", 2)]
    + [(p, 1, 2) for p in ("same", "valid", "circular", 2)]
    + [(p, 2, 1) for p in ("valid", "circular", 2)],  # torch forbids "same" with stride 2
)
def test_patches_times_weight_is_torch_conv(kernel, spatial, padding, stride, dilation):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, *spatial))
    w = rng.standard_normal((5, 4, *kernel))
    expected = _torch_conv(x, w, padding, stride, dilation)
    p = d.patches(x, kernel, padding, stride, dilation)
    ours = (p @ w.reshape(5, -1).T).reshape(3, *expected.shape[2:], 5)
    np.testing.assert_allclose(np.moveaxis(ours, -1, 1), expected, rtol=1e-12, atol=1e-12)
    assert d.output_shape(spatial, kernel, padding, stride, dilation) == expected.shape[2:]


@pytest.mark.parametrize("kernel, spatial", [((3,), (7,)), ((5,), (6,)), ((4,), (8,)), ((3, 2), (4, 5))])
@pytest.mark.parametrize("padding", ["same", "valid", "circular", 1])
def test_inside_taps_counts_by_brute_force(kernel, spatial, padding):
    # Count with torch: a one-channel input of ones, convolved tap by tap with unit kernels.
    ones = np.ones((1, 1, *spatial))
    counts = 0
    taps = np.eye(int(np.prod(kernel))).reshape(-1, 1, 1, *kernel)
    mask_cols = []
    for unit in taps:
        out = _torch_conv(ones, unit, padding, 1, 1)[0, 0]
        counts = counts + out
        mask_cols.append(out.ravel())
    np.testing.assert_array_equal(d.inside_taps(spatial, kernel, padding), counts)
    np.testing.assert_array_equal(d.inside_mask(spatial, kernel, padding), np.stack(mask_cols, 1) > 0)


def test_same_padding_matches_torch_for_even_kernels():
    # torch's padding="same" puts the extra zero on the right.
    assert d.pad_amounts((4,), "same") == ((1, 2),)
    assert d.pad_amounts((4,), "same", dilation=2) == ((3, 3),)
    assert d.pad_amounts((3, 3), "valid") == ((0, 0), (0, 0))


def test_gram_is_patch_gram_in_chunks():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 3, 10))
    p = d.patches(x, (3,), "same")
    g = d.gram_from_data(x, 3, "same", chunk_elements=50)  # forces one sample per chunk
    np.testing.assert_allclose(g.gram, p.T @ p, rtol=1e-12)
    assert g.rows == p.shape[0] == 70 and g.samples == 7 and g.positions == 10
    assert g.mean_sq_norm == pytest.approx(np.sum(x**2) / 7)


def test_sampled_moments():
    rng = np.random.default_rng(3)
    normal = d.sample_data("normal", 400, 8, (50,), rng)
    uniform = d.sample_data("uniform", 400, 8, (50,), rng)
    # 160000 entries: standard error of the variance ~ 0.0035 (normal), 0.0007 (uniform)
    assert normal.var() == pytest.approx(d.DATA_VARIANCE["normal"], abs=0.02)
    assert uniform.var() == pytest.approx(d.DATA_VARIANCE["uniform"], abs=0.005)
    assert uniform.min() >= -1 and uniform.max() <= 1
    for init in d.INITS:
        w = d.sample_weights(50, 64, 32, (3,), rng, init)
        assert w.shape == (50, 64, 32, 3)
        assert w.var() == pytest.approx(d.he_variance(32, (3,)), rel=0.03)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.full((2, 3, 5), np.nan), "non-finite"),
        (np.array([[[1.0, np.inf]] * 3]), "non-finite"),
        (np.zeros((2, 3, 5)), "all zero"),
        (np.ones((3, 5)), "dimensions"),
        (np.ones((2, 4, 5)), "4 channels"),
    ],
)
def test_bad_data_is_one_line_error(bad, match):
    with pytest.raises(GroupConvError, match=match) as info:
        d.check_data(bad, in_channels=3)
    assert "\n" not in str(info.value)


def test_bad_geometry_errors():
    with pytest.raises(GroupConvError, match="does not fit"):
        d.output_shape((2,), (5,), "valid")
    with pytest.raises(GroupConvError, match="unknown padding 'full'"):
        d.pad_amounts((3,), "full")
    with pytest.raises(GroupConvError, match="unknown dist 'cauchy'"):
        d.sample_data("cauchy", 1, 1, (3,), np.random.default_rng())
    with pytest.raises(GroupConvError, match="kernel"):
        d.as_kernel((3, 3, 3))
