"""Predictions: Eq. 2, direct minimisation, recommended groupings."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.cost import ConvLayer
from groupconv.errors import GroupConvError
from groupconv.fit import (
    Workload,
    admissible_groups,
    calibrate_gamma,
    eq2_groups,
    fit_model,
    layer_energy_by_groups,
    layer_optimum,
    nearest_admissible,
    paper_dataset,
    recommend_grouping,
)
from groupconv.networks import PAPER_GROUPS, build_network


@lru_cache(maxsize=None)
def fitted(model: str, network: str = "mobilenet_v1", platform: str = "P100"):
    return fit_model(model, paper_dataset(network, platform), loo=False)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 600), st.integers(1, 600))
def test_admissible_groups_are_the_common_divisors(m, n):
    layer = ConvLayer(m, n)
    brute = tuple(g for g in range(1, min(m, n) + 1) if m % g == 0 and n % g == 0)
    assert admissible_groups(layer) == brute


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 64), st.integers(1, 64), st.sampled_from([1, 3, 5]), st.integers(1, 56),
       st.floats(0.0, 1.0, exclude_min=True, exclude_max=True), st.floats(1e-3, 1e6))
def test_eq2_solves_the_papers_balance_equation(m, n, k, hw, beta, gamma):
    """At Eq. 2's g, M_c^(1-beta) P^beta = gamma with M_c, P of a g-group conv (Eq. 1 -> Eq. 2)."""
    layer = ConvLayer(m, n, k, hw, hw)
    g = eq2_groups(layer, beta, gamma)
    dense = layer.with_groups(1)
    macs, params = dense.macs / g, dense.weight_params / g  # Table II: both scale as 1/g
    assert macs ** (1 - beta) * params**beta == pytest.approx(gamma, rel=1e-9)


def test_eq2_by_hand_and_its_scaling():
    layer = ConvLayer(512, 512, 3, 14, 14)
    assert eq2_groups(layer, 0.5, 1e6) == pytest.approx(512 * 512 * 9 * 14 / 1e6)
    # Eq. 3: with beta = 1/2 and h = w = d_f, g is proportional to m n d_f
    half = ConvLayer(256, 256, 3, 28, 28)
    assert eq2_groups(layer, 0.5, 1.0) / eq2_groups(half, 0.5, 1.0) == pytest.approx(4 * 14 / 28)
    with pytest.raises(GroupConvError, match="gamma"):
        eq2_groups(layer, 0.5, 0.0)
    with pytest.raises(GroupConvError, match="beta"):
        eq2_groups(layer, 1.5, 1.0)


def test_calibrated_gamma_reproduces_groups_from_eq2():
    layers = [ConvLayer(c, c, 3, s, s) for c, s in ((64, 56), (128, 28), (256, 14), (512, 7))]
    gamma0 = 3.0e4
    exact = [eq2_groups(layer, 0.3, gamma0) for layer in layers]
    groups = [max(1, round(g)) for g in exact]
    gamma = calibrate_gamma(layers, 0.3, groups)
    # least squares on log g: the log residuals sum to zero
    assert sum(math.log(eq2_groups(l, 0.3, gamma) / g) for l, g in zip(layers, groups)) == pytest.approx(0, abs=1e-9)
    assert gamma == pytest.approx(gamma0, rel=0.05)
    assert nearest_admissible(ConvLayer(96, 96), 5.0) in (4, 6)
    assert nearest_admissible(ConvLayer(96, 96), 7.9) == 8


def test_gpu_optimum_agrees_with_its_closed_form():
    """Per layer E(g) = a / g + b (g h)^kappa (+ const), unimodal in g with its minimum at
    g* = (a / (kappa b h^kappa))^(1 / (1 + kappa)): the best admissible g brackets g*."""
    fit = fitted("gpu")
    p = fit.params
    kappa = p["kappa"]
    assert 0 < kappa < 1.5
    for layer in (ConvLayer(256, 256, 3, 28, 28), ConvLayer(1024, 1024, 3, 7, 7), ConvLayer(64, 64, 3, 112, 112)):
        for batch in (1, 16):
            dense = layer.with_groups(1)
            a = p["e_mac_J"] * dense.macs + p["e_weight_J"] * dense.params / batch
            b = p["e_tile_J"] + p["e_tile_batch_J"] / batch
            g_star = (a / (kappa * b * layer.out_height**kappa)) ** (1 / (1 + kappa))
            options = admissible_groups(layer)
            below = max([g for g in options if g <= g_star], default=options[0])
            above = min([g for g in options if g >= g_star], default=options[-1])
            assert layer_optimum(fit, layer, batch) in (below, above)


def test_layer_energies_add_up_to_network_predictions():
    """Swapping one layer's groups changes the network EPF by that layer's energy change."""
    fit = fitted("gpu")
    net = build_network("mobilenet_v1", "e2gc", 1, 4)
    i = next(k for k, layer in enumerate(net.layers) if layer.name == net.varied[5])
    table = layer_energy_by_groups(fit, net.layers[i], 4).set_index("groups")
    changed = list(net.layers)
    changed[i] = net.layers[i].with_groups(8)
    before, after = fit.predict([Workload(net.layers, 4), Workload(tuple(changed), 4)])
    assert after - before == pytest.approx(table.loc[8, "energy_J"] - table.loc[net.layers[i].groups, "energy_J"])


@pytest.mark.parametrize("network", ["mobilenet_v1", "resnext50"])
@pytest.mark.parametrize("batch", [1, 16])
def test_recommended_grouping_is_no_worse_than_any_paper_variant(network, batch):
    fit = fitted("gpu", network, "P4000")
    rec = recommend_grouping(network, fit, batch)
    assert len(rec.layers) == len(build_network(network, "e2gc", 1).varied)
    assert rec.epf_J == pytest.approx(fit.predict([Workload(rec.network_layers, batch)])[0])
    # every paper variant's grouping is admissible, so the per-layer optimum can only be better
    assert len(rec.variants) == sum(len(g) for g in PAPER_GROUPS.values())
    assert rec.epf_J <= rec.variants.epf_J.min() * (1 + 1e-12)
    for row in rec.layers.itertuples():
        layer = ConvLayer(row.in_channels, row.out_channels, row.kernel, row.out_height, row.out_width)
        assert row.groups in admissible_groups(layer)
        assert row.eq2_admissible in admissible_groups(layer)
    assert "predicted EPF" in rec.summary() and "<table" in rec._repr_html_()


def test_papers_law_always_recommends_depthwise():
    """The law's per-layer energy falls monotonically with g: it has no interior optimum."""
    fit = fitted("paper")
    rec = recommend_grouping("mobilenet_v1", fit, 4)
    assert (rec.layers.groups == rec.layers.in_channels).all()
    # the fitted beta lands on its bound 1, where Eq. 2 is undefined: Eq. 2 falls back to 0.5
    assert fit.params["beta"] == 1.0 and rec.beta == 0.5
    assert any("lies on the bound" in note for note in rec.notes)
    energies = layer_energy_by_groups(fit, ConvLayer(256, 256, 3, 14, 14), 4).energy_J.to_numpy()
    assert np.all(np.diff(energies) < 0)


def test_recommendation_notes_a_foreign_network():
    rec = recommend_grouping("resnext50", fitted("gpu", "mobilenet_v1"), 1)
    assert any("fitted on mobilenet_v1" in n for n in rec.notes)
    assert any("Eq. 2 uses beta = 0.5" in n for n in rec.notes)
    with pytest.raises(GroupConvError, match="FitResult"):
        recommend_grouping("resnext50", "gpu", 1)
    with pytest.raises(GroupConvError, match="batch"):
        recommend_grouping("resnext50", fitted("gpu"), 0)
