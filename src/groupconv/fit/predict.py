"""Predictions from a fitted model layer by layer: the energy of every admissible grouping.

* :func:`layer_energy_by_groups` - a fitted model's per-layer energy (or time, for a fit
  of time) per frame for every admissible g (divisors of gcd(m, n)) at a batch size.
* :func:`layer_optimum` - the admissible g with the lowest of those. A model's energy is a
  sum over layers plus a network constant, so minimising layer by layer minimises the
  network's energy.

The grouping of a whole network is chosen by the one recommender,
:func:`groupconv.design.recommend` (given the fit); the E2GC Eq. 2 helpers are in
:mod:`groupconv.cost.optimum`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import _validate as v
from ..cost import ConvLayer
from ..cost.optimum import admissible_groups
from .data import LayerArrays
from .fitting import FitResult

__all__ = ["layer_energy_by_groups", "layer_optimum"]


def layer_energy_by_groups(fitted: FitResult, layer: ConvLayer, batch: int = 1) -> pd.DataFrame:
    """The fitted model's energy per frame of ``layer`` for every admissible g.

    Columns: ``groups, group_size, macs, energy_J`` (the layer's own share; the network
    constant of the model is left out since it does not depend on g).
    """
    batch = v.positive_int("batch", batch)
    options = admissible_groups(layer.in_channels, layer.out_channels)
    candidates = [layer.with_groups(g).with_batch(batch) for g in options]
    arrays = LayerArrays.from_layers(candidates, batch)
    energy = fitted.model.layer_energy(fitted.param_vector, arrays)
    return pd.DataFrame(
        {
            "groups": [c.groups for c in candidates],
            "group_size": [c.group_size for c in candidates],
            "macs": [c.macs for c in candidates],
            "energy_J": energy,
        }
    )


def layer_optimum(fitted: FitResult, layer: ConvLayer, batch: int = 1) -> int:
    """The admissible g with the lowest fitted energy for ``layer`` at ``batch``."""
    table = layer_energy_by_groups(fitted, layer, batch)
    return int(table["groups"].iloc[int(np.argmin(table["energy_J"].to_numpy()))])
