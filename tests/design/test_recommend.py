"""recommend: the exact search over every grouped layer of the catalogue networks."""

from __future__ import annotations

import pytest

from groupconv.cost import LayerPricer
from groupconv.design import as_pricer, recommend, recommend_grouping
from groupconv.errors import GroupConvError
from groupconv.fit import Workload, fit_model, paper_dataset
from groupconv.platform import Platform, Roofline
from groupconv.networks import build_network
from groupconv.networks.catalogue import grouped_channels


@pytest.fixture(scope="module")
def fitted():
    return fit_model("gpu", paper_dataset("mobilenet_v1", "P4000"))


def test_fit_of_the_paper_tables_same_grouping_as_recommend_grouping(fitted):
    """One recommender: the deprecated recommend_grouping wraps design.recommend, and the
    reported EPF is the fitted model's prediction of the network built with those groups."""
    for batch in (1, 16):
        rec = recommend("mobilenet_v1", fitted, batch=batch)
        with pytest.warns(DeprecationWarning, match="recommend_grouping is deprecated"):
            old = recommend_grouping("mobilenet_v1", fitted, batch)
        assert list(rec.groups) == list(old.layers["groups"])
        net = build_network("mobilenet_v1", "e2gc", 1, groups=rec.groups)
        assert rec.cost == pytest.approx(float(fitted.predict([Workload(net.layers, batch)])[0]))
        assert rec.cost == pytest.approx(old.epf_J)
        assert (rec.params, rec.macs) == (net.params, net.macs)
        assert rec.objective == "energy_J"
        # unbudgeted, the choice is the per-layer argmin of the fitted layer energy
        assert rec.cost <= rec.variants["cost"].min() + 1e-12


def _dense_is_cheap(layer, batch):
    """A synthetic price that falls with the weights: dense (g = 1) is best everywhere."""
    return 1.0 / layer.weight_params + 1e-6 * layer.groups


@pytest.mark.parametrize("arch", ["mobilenet_v1", "resnext50"])
def test_budget_of_e2gc_32_binds_and_beats_every_variant_within_it(arch):
    free = recommend(arch, _dense_is_cheap)
    assert set(free.groups) == {1}
    budget = build_network(arch, "e2gc", 32).params
    rec = recommend(arch, _dense_is_cheap, max_params=budget)
    assert rec.params <= budget
    assert rec.params == build_network(arch, "e2gc", 1, groups=rec.groups).params
    within = rec.variants[rec.variants["within_budget"]]
    assert "e2gc" in set(within["variant"])
    assert rec.cost <= within["cost"].min() + 1e-15
    # the variants' costs are the same pricer summed over their layers (hand recomputation)
    row = within.iloc[0]
    net = build_network(arch, row["variant"], int(row["group"]))
    assert row["cost"] == pytest.approx(sum(_dense_is_cheap(layer, 1) for layer in net.layers))


def test_macs_budget_alone():
    budget = build_network("mobilenet_v1", "e2gc", 4).macs
    rec = recommend("mobilenet_v1", _dense_is_cheap, max_macs=budget)
    assert rec.macs <= budget < recommend("mobilenet_v1", _dense_is_cheap).macs


def test_mac_proportional_price_picks_depthwise():
    rec = recommend("mobilenet_v1", lambda layer, batch: layer.macs * 1e-9)
    assert rec.groups == grouped_channels("mobilenet_v1")


class _FakePlatform:
    """A pricer at the protocol boundary: a roofline with a fixed cost per call, time only."""

    objectives = ("time_s",)

    def layer_cost(self, layer, batch, objective="time_s"):
        macs, traffic = layer.macs * batch, 4 * (layer.weight_params + batch * layer.activations)
        return (max(macs / 20e9, traffic / 10e9) + 5e-6) / batch


def _roofline_platform():
    return Platform(device="cpu", metadata={"threads": 1, "dtype": "float32"},
                    roofline=Roofline(50e9, 20e9, 5e-6), time_models={})


def test_platform_fit_and_callable_are_one_kind_of_pricer(fitted):
    """Platform and FitResult implement LayerPricer; a callable is wrapped; the platform's
    layer cost is its per-op prediction per frame, the fit's its per-layer share."""
    platform = _roofline_platform()
    assert isinstance(platform, LayerPricer) and isinstance(fitted, LayerPricer)
    assert platform.objectives == ("time_s",) and fitted.objectives == ("energy_J",)
    assert as_pricer(platform) is platform and as_pricer(fitted) is fitted
    net = build_network("mobilenet_v1", "e2gc", 8)
    layer = next(l for l in net.layers if l.name == net.varied[2])
    assert platform.layer_cost(layer, 4, "time_s") == pytest.approx(platform.predict_op(layer, 4, warn=False) / 4)
    swapped = [l if l is not layer else layer.with_groups(1) for l in net.layers]
    before, after = fitted.predict([Workload(net.layers, 4), Workload(tuple(swapped), 4)])
    assert after - before == pytest.approx(fitted.layer_cost(layer.with_groups(1), 4) - fitted.layer_cost(layer, 4))
    wrapped = as_pricer(_dense_is_cheap)
    assert isinstance(wrapped, LayerPricer) and wrapped.layer_cost(layer, 2, "time_s") == _dense_is_cheap(layer, 2)
    with pytest.raises(GroupConvError, match="the fit is of energy_J, not time_s"):
        fitted.layer_cost(layer, 1, "time_s")


def test_platform_like_pricer_and_json_keys():
    budget = build_network("resnext50", "e2gc", 32).params
    rec = recommend("resnext50", _FakePlatform(), batch=8, max_params=budget, network_cost=lambda g: 1.0)
    out = rec.as_dict()
    assert len(out["groups"]) == 16 and out["energy_J"] is None and out["time_s"] == 1.0
    assert out["params"] <= budget and out["objective"] == "time_s"


def test_other_image_size_counts_from_the_module():
    pytest.importorskip("torch")
    from groupconv.networks import build_module, count_module

    rec = recommend("mobilenet_v1", _dense_is_cheap, image_size=112, max_params=build_network("mobilenet_v1", "e2gc", 8).params)
    module = build_module("mobilenet_v1", "e2gc", 1, groups=rec.groups, device="meta")
    assert rec.macs == count_module(module, (1, 3, 112, 112)).macs
    assert rec.params == build_network("mobilenet_v1", "e2gc", 1, groups=rec.groups).params


def test_infeasible_budget_and_bad_pricer():
    with pytest.raises(GroupConvError, match="least possible is"):
        recommend("mobilenet_v1", _dense_is_cheap, max_params=1000)
    with pytest.raises(GroupConvError, match="price must be"):
        recommend("mobilenet_v1", 3)
    with pytest.raises(GroupConvError, match="unknown architecture"):
        recommend("vgg", _dense_is_cheap)
    with pytest.raises(GroupConvError, match="energy meter"):
        recommend("mobilenet_v1", _roofline_platform(), objective="energy_J")
    with pytest.raises(GroupConvError, match="objective"):
        recommend("mobilenet_v1", _dense_is_cheap, objective="flops")
