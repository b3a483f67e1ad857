"""Energy models: predictions against independent per-layer computations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.cost import ConvLayer
from groupconv.errors import GroupConvError
from groupconv.fit import (
    BEST_MODEL,
    MODELS,
    GpuModel,
    LayerArrays,
    MacsModel,
    PaperModel,
    Workload,
    alpha_from_traffic,
    get_model,
)

layers_st = st.lists(
    st.builds(
        lambda m, n, k, h, g: ConvLayer(m * g, n * g, k, h, h + 1, groups=g),
        st.integers(1, 24), st.integers(1, 24), st.sampled_from([1, 3]), st.integers(1, 40), st.sampled_from([1, 2, 8]),
    ),
    min_size=1, max_size=6,
)


@settings(max_examples=50, deadline=None)
@given(layers_st, st.integers(1, 64), st.floats(0.01, 0.99), st.floats(0.05, 1.0), st.floats(1e-12, 1e-9))
def test_paper_law_matches_the_papers_form_with_convlayer_intensity(layers, batch, beta, alpha, c):
    """E = c sum_l M_l (alpha / AI_l(B))**beta, AI from ConvLayer.arithmetic_intensity (Eq. 1)."""
    expected = sum(
        c * layer.macs * (alpha / layer.with_batch(batch).arithmetic_intensity) ** beta for layer in layers
    )
    got = PaperModel().predict([Workload(tuple(layers), batch)], {"scale": c * alpha**beta, "beta": beta})
    assert got[0] == pytest.approx(expected, rel=1e-10)


@settings(max_examples=50, deadline=None)
@given(layers_st, st.integers(1, 64), st.lists(st.floats(0.0, 10.0), min_size=6, max_size=6), st.floats(0.0, 1.5))
def test_gpu_model_matches_a_plain_loop(layers, batch, coef, kappa):
    e_mac, e_w, e_t, e_tb, e_f, e_b = (x * s for x, s in zip(coef, (1e-11, 1e-9, 1e-6, 1e-6, 0.1, 0.1)))
    expected = e_f + e_b / batch
    for layer in layers:
        tiles = layer.groups * layer.out_height
        expected += e_mac * layer.macs + e_w * layer.params / batch + (e_t + e_tb / batch) * tiles**kappa
    params = dict(zip(GpuModel().param_names, (e_mac, e_w, e_t, e_tb, e_f, e_b, kappa)))
    assert GpuModel().predict([Workload(tuple(layers), batch)], params)[0] == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("name", list(MODELS))
def test_prediction_is_layer_energies_plus_overhead(name):
    model = get_model(name)
    layers = [ConvLayer(32, 64, 3, 14, 14, groups=4), ConvLayer(64, 64, 1, 14, 14), ConvLayer.linear(64, 10)]
    params = {"paper": [1e-8, 0.4], "macs": [1e-11, 0.1, 0.2], "gpu": [1e-11, 1e-9, 1e-6, 2e-6, 0.1, 0.2, 0.7]}[name]
    vec = model.param_vector(params)
    arrays = LayerArrays.from_layers(layers, 4)
    by_layer = model.layer_energy(vec, arrays)
    total = model.predict([Workload(tuple(layers), 4)], vec)[0]
    assert total == pytest.approx(by_layer.sum() + model.overhead(vec, np.array([4.0]))[0], rel=1e-12)
    # a bare list of layers is one workload at their batch size
    assert model.predict([layer.with_batch(4) for layer in layers], vec)[0] == pytest.approx(total)


@pytest.mark.parametrize("name", list(MODELS))
def test_analytic_jacobian_matches_finite_differences(name):
    model = get_model(name)
    layers = [ConvLayer(32, 64, 3, 14, 14, groups=4), ConvLayer(64, 64, 1, 7, 7)]
    arrays = LayerArrays.from_workloads([Workload(tuple(layers), b) for b in (1, 4, 16)])
    batch = np.array([1.0, 4.0, 16.0])
    vec = model.param_vector({"paper": [1e-8, 0.4], "macs": [1e-11, 0.1, 0.2],
                              "gpu": [1e-11, 1e-9, 1e-6, 2e-6, 0.1, 0.2, 0.7]}[name])
    jac = model.jacobian(vec, arrays, batch)
    for j in range(len(vec)):
        h = 1e-6 * max(abs(vec[j]), 1e-12)
        up, down = vec.copy(), vec.copy()
        up[j] += h
        down[j] -= h
        numeric = (model._predict_arrays(up, arrays, batch) - model._predict_arrays(down, arrays, batch)) / (2 * h)
        assert np.allclose(jac[:, j], numeric, rtol=1e-5, atol=1e-12 * abs(numeric).max())


def test_group_tiles_make_small_groups_expensive():
    """With only the tile term, energy falls as G grows (g = m / G shrinks), unlike MACs."""
    params = dict(zip(GpuModel().param_names, (0, 0, 1e-6, 0, 0, 0, 0.8)))
    energies = [GpuModel().predict([ConvLayer(256, 256, 3, 14, 14, groups=256 // G)], params)[0] for G in (1, 4, 32)]
    assert energies[0] > energies[1] > energies[2]
    macs = [ConvLayer(256, 256, 3, 14, 14, groups=256 // G).macs for G in (1, 4, 32)]
    assert macs[0] < macs[1] < macs[2]


def test_registry_and_best_model():
    assert set(MODELS) == {"paper", "macs", "gpu"}
    assert BEST_MODEL in MODELS
    assert get_model("paper", alpha=0.5).alpha == 0.5
    assert isinstance(get_model("macs"), MacsModel)
    with pytest.raises(GroupConvError, match="unknown model 'roofline'"):
        get_model("roofline")
    with pytest.raises(GroupConvError, match="alpha applies to the paper model"):
        get_model("gpu", alpha=0.5)
    with pytest.raises(GroupConvError, match="kappa applies to the gpu model"):
        get_model("paper", kappa=0.5)
    assert get_model("gpu", kappa=1.0).kappa == 1.0
    with pytest.raises(GroupConvError, match=r"alpha must lie in \(0, 1\]"):
        PaperModel(alpha=1.5)


def test_parameters_are_checked_by_name_and_bounds():
    model = PaperModel()
    with pytest.raises(GroupConvError, match="missing beta"):
        model.param_vector({"scale": 1.0})
    with pytest.raises(GroupConvError, match="unknown gamma"):
        model.param_vector({"scale": 1.0, "beta": 0.5, "gamma": 2.0})
    with pytest.raises(GroupConvError, match=r"beta must lie in \[0, 1\], got 1.5"):
        model.param_vector({"scale": 1.0, "beta": 1.5})
    with pytest.raises(GroupConvError, match="takes 7 parameters, got 2"):
        GpuModel().param_vector([1.0, 2.0])
    with pytest.raises(GroupConvError, match="e_mac_J must lie"):
        GpuModel().param_vector([-1.0, 0, 0, 0, 0, 0, 1])
    with pytest.raises(GroupConvError, match="kappa must lie"):
        GpuModel().param_vector([0, 0, 0, 0, 0, 0, 2.0])
    assert len(GpuModel(kappa=1.0).params) == 6  # a fixed exponent is no parameter


def test_alpha_from_traffic_is_measured_over_compulsory_traffic():
    layers = [ConvLayer(64, 64, 3, 14, 14, groups=4, batch=8), ConvLayer(64, 128, 1, 14, 14, batch=8)]
    # compulsory: weights once per batch + activations once per frame, 4 bytes each
    compulsory = 4 * sum(layer.params + 8 * layer.activations for layer in layers)
    assert alpha_from_traffic(0.25 * compulsory, layers) == pytest.approx(0.25)
    assert alpha_from_traffic(compulsory, layers, dtype="float32") == pytest.approx(1.0)
    assert alpha_from_traffic(0.5 * compulsory / 2, layers, dtype="float16") == pytest.approx(0.5)
    with pytest.raises(GroupConvError, match=r"alpha .* must lie in \(0, 1\]"):
        alpha_from_traffic(2 * compulsory, layers)
    with pytest.raises(GroupConvError, match="measured_bytes"):
        alpha_from_traffic(-1, layers)


def test_paper_model_reports_c_only_for_a_pinned_alpha():
    cov = np.diag([1e-20, 1e-4])
    assert PaperModel().derived(np.array([1e-8, 0.5]), cov)["c"] is None
    derived = PaperModel(alpha=0.25).derived(np.array([1e-8, 0.5]), cov)
    assert derived["c"] == pytest.approx(1e-8 / 0.25**0.5)
    # delta method by hand: var c = (dc/ds)^2 var s + (dc/dbeta)^2 var beta
    c = derived["c"]
    expected = math.sqrt((0.25**-0.5) ** 2 * 1e-20 + (c * math.log(0.25)) ** 2 * 1e-4)
    assert derived["c_stderr"] == pytest.approx(expected)
    json.dumps(derived)
