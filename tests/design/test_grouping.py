"""recommend_grouping (deprecated): the E2GC-table view of the one recommender."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from groupconv.cost import ConvLayer
from groupconv.cost.optimum import admissible_groups
from groupconv.design import recommend_grouping
from groupconv.errors import GroupConvError
from groupconv.fit import Workload, fit_model, layer_energy_by_groups, paper_dataset
from groupconv.networks import PAPER_GROUPS, build_network

pytestmark = pytest.mark.filterwarnings("ignore:recommend_grouping is deprecated:DeprecationWarning")


@lru_cache(maxsize=None)
def fitted(model: str, network: str = "mobilenet_v1", platform: str = "P100"):
    return fit_model(model, paper_dataset(network, platform), loo=False)


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
        assert row.groups in admissible_groups(layer.in_channels, layer.out_channels)
        assert row.eq2_admissible in admissible_groups(layer.in_channels, layer.out_channels)
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


def test_recommend_grouping_warns_that_it_is_deprecated():
    with pytest.warns(DeprecationWarning, match="groupconv.design.recommend"):
        recommend_grouping("mobilenet_v1", fitted("gpu"), 1)
