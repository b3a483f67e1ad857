"""Predictions of a fit layer by layer: energy by groups, the per-layer optimum."""

from __future__ import annotations

from functools import lru_cache

import pytest

from groupconv.cost import ConvLayer
from groupconv.cost.optimum import admissible_groups
from groupconv.fit import Workload, fit_model, layer_energy_by_groups, layer_optimum, paper_dataset
from groupconv.networks import build_network


@lru_cache(maxsize=None)
def fitted(model: str, network: str = "mobilenet_v1", platform: str = "P100"):
    return fit_model(model, paper_dataset(network, platform), loo=False)


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
            options = admissible_groups(layer.in_channels, layer.out_channels)
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


