"""Predictions from a fitted model: the best number of groups, per layer and per network.

Two answers to "how many groups should this conv have?":

* **Eq. 2 of the E2GC paper**, ``g = m n d_k^2 (h w)^(1 - beta) / gamma``
  (:func:`eq2_groups`). gamma = const * alpha^-beta is a platform constant the paper
  never gives; :func:`calibrate_gamma` picks the gamma with which Eq. 2 best
  reproduces a given grouping (least squares on log g).
* **Direct minimisation** of a fitted model's per-layer energy over the admissible g
  (divisors of gcd(m, n)) at a batch size (:func:`layer_optimum`). A model's energy is a
  sum over layers plus a network constant, so minimising layer by layer minimises the
  network's energy.

:func:`recommend_grouping` does both for every varied group conv of a catalogue
network and reports the network's predicted EPF with the recommended grouping. Its
choice is made by the one exact search of :func:`groupconv.optimize.search` (the
same as :func:`groupconv.design.recommend` given this fit), so it also takes budgets on
the weights and the MACs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .. import _validate as v
from ..cost import ConvLayer, numeric
from ..cost import optimum as cost_optimum
from ..errors import GroupConvError
from ..networks import PAPER_GROUPS, build_network
from ..optimize import search
from .data import LayerArrays, Workload
from .fitting import FitResult

__all__ = [
    "admissible_groups",
    "eq2_groups",
    "calibrate_gamma",
    "nearest_admissible",
    "layer_energy_by_groups",
    "layer_optimum",
    "GroupingRecommendation",
    "recommend_grouping",
    "DEFAULT_EQ2_BETA",
]

#: beta used for Eq. 2 when the fitted model has none (the paper's Eq. 3 example).
DEFAULT_EQ2_BETA: float = 0.5


def admissible_groups(layer: ConvLayer) -> tuple[int, ...]:
    """Every g that divides both the input and the output channels, ascending."""
    return cost_optimum.admissible_groups(layer.in_channels, layer.out_channels)


def eq2_groups(layer: ConvLayer, beta: float, gamma: float) -> float:
    """The paper's optimum number of groups, g = m n d_k^2 (h w)^(1-beta) / gamma (E2GC Eq. 2).

    Returns the real-valued g (use :func:`nearest_admissible` for a usable one).
    ``h w`` is the output size, ``d_k^2`` the kernel taps. A thin layer-level wrapper of
    :func:`groupconv.cost.numeric.optimum_groups` (the sympy-derived form).
    """
    g = numeric.optimum_groups(
        layer.in_channels, layer.out_channels, math.sqrt(layer.taps),
        layer.out_height, layer.out_width, beta, gamma,
    )
    return float(g)


def calibrate_gamma(layers: list[ConvLayer], beta: float, groups: list[int] | None = None) -> float:
    """The gamma with which Eq. 2 best reproduces ``groups`` (default: the layers' own).

    Least squares on log g: ``log gamma = mean_l [log(m n d_k^2 (hw)^(1-beta)) - log g_l]``.
    """
    layers = list(layers)
    if not layers:
        raise GroupConvError("calibrate_gamma needs at least one layer")
    groups = [layer.groups for layer in layers] if groups is None else list(groups)
    if len(groups) != len(layers):
        raise GroupConvError(f"got {len(groups)} group counts for {len(layers)} layers")
    logs = [math.log(eq2_groups(layer, beta, 1.0)) - math.log(v.positive_int("groups", g))
            for layer, g in zip(layers, groups)]
    return math.exp(sum(logs) / len(logs))


def nearest_admissible(layer: ConvLayer, g: float) -> int:
    """The admissible g closest to ``g`` on a log scale (ties to the smaller g)."""
    return cost_optimum.nearest_admissible_groups(g, layer.in_channels, layer.out_channels)


def layer_energy_by_groups(fitted: FitResult, layer: ConvLayer, batch: int = 1) -> pd.DataFrame:
    """The fitted model's energy per frame of ``layer`` for every admissible g.

    Columns: ``groups, group_size, macs, energy_J`` (the layer's own share; the network
    constant of the model is left out since it does not depend on g).
    """
    batch = v.positive_int("batch", batch)
    candidates = [layer.with_groups(g).with_batch(batch) for g in admissible_groups(layer)]
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


@dataclass(frozen=True, eq=False)
class GroupingRecommendation:
    """A recommended number of groups for every varied group conv of a network.

    Attributes
    ----------
    arch : str
    batch : int
    model : str
        Name of the fitted model used.
    layers : pandas.DataFrame
        One row per varied conv: ``name, in_channels, out_channels, kernel, out_height,
        out_width, groups`` (recommended, direct minimisation), ``group_size``,
        ``energy_J`` (its predicted share per frame), ``eq2_groups`` (Eq. 2, real),
        ``eq2_admissible`` (nearest admissible g).
    network_layers : tuple of ConvLayer
        The whole network with the recommended grouping.
    epf_J : float
        Predicted energy per frame of that network.
    variants : pandas.DataFrame
        Predicted EPF of the paper's E2GC/FgGC variants at the same batch (``variant,
        group, epf_J``), for comparison.
    beta, gamma : float
        The Eq. 2 constants used (gamma calibrated so that Eq. 2 best reproduces the
        recommended grouping; see :func:`calibrate_gamma`).
    notes : tuple of str
    """

    arch: str
    batch: int
    model: str
    layers: pd.DataFrame
    network_layers: tuple[ConvLayer, ...]
    epf_J: float
    variants: pd.DataFrame
    beta: float
    gamma: float
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"<GroupingRecommendation {self.arch} B={self.batch} ({self.model}): EPF {self.epf_J * 1e3:.1f} mJ>"

    def summary(self) -> str:
        best = self.variants.loc[self.variants["epf_J"].idxmin()]
        lines = [
            f"{self.arch}, batch {self.batch}, model {self.model}: predicted EPF "
            f"{self.epf_J * 1e3:.1f} mJ with the recommended grouping",
            f"best paper variant by the same model: {best['variant']} {best['group']} "
            f"({best['epf_J'] * 1e3:.1f} mJ)",
        ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<p>{self.summary().replace(chr(10), '<br>')}</p>" + self.layers.to_html(
            index=False, float_format=lambda x: f"{x:.4g}"
        )


def recommend_grouping(
    arch: str,
    fitted: FitResult,
    batch: int = 1,
    *,
    beta: float | None = None,
    max_params: int | None = None,
    max_macs: int | None = None,
) -> GroupingRecommendation:
    """Recommended g for every varied group conv of a catalogue network on a fitted platform.

    Parameters
    ----------
    arch : {"mobilenet_v1", "resnext50"}
    fitted : FitResult
        A fitted model (its per-layer energy decides the grouping).
    batch : int
        Batch size of the deployment.
    beta : float, optional
        beta for Eq. 2; default: the fitted model's ``beta`` if it has one, else
        :data:`DEFAULT_EQ2_BETA` (0.5, the paper's own example in Eq. 3).
    max_params, max_macs : int, optional
        Budgets on the network's weights (the paper's count) and MACs per frame; the
        grouping is the exact optimum under them (:func:`groupconv.optimize.search`).

    Returns
    -------
    GroupingRecommendation
    """
    if not isinstance(fitted, FitResult):
        raise GroupConvError(f"fitted must be a FitResult, got {type(fitted).__name__}")
    batch = v.positive_int("batch", batch)
    template = build_network(arch, "e2gc", 1, batch)
    notes = []
    if beta is None:
        beta = fitted.params.get("beta", DEFAULT_EQ2_BETA)
        if "beta" not in fitted.params:
            notes.append(f"model {fitted.model.name} has no beta; Eq. 2 uses beta = {beta:g}")
        elif not 0.0 < beta < 1.0:
            notes.append(
                f"fitted beta = {beta:g} lies on the bound of (0, 1), where Eq. 2 is not defined; "
                f"Eq. 2 uses beta = {DEFAULT_EQ2_BETA:g}"
            )
            beta = DEFAULT_EQ2_BETA
    beta = v.in_interval("beta", beta, 0.0, 1.0)
    fitted_networks = set(fitted.data.info.get("network", pd.Series(dtype=str)).dropna())
    if fitted_networks and fitted_networks != {template.arch}:
        notes.append(
            f"fitted on {', '.join(sorted(fitted_networks))}, not {template.arch}: the grouping "
            "follows from per-layer terms, but the predicted EPF includes the other network's constants"
        )

    varied = set(template.varied)
    grouped = [layer for layer in template.layers if layer.name in varied]
    tables = [layer_energy_by_groups(fitted, layer, batch) for layer in grouped]
    fixed = [layer for layer in template.layers if layer.name not in varied]
    fixed_params = sum(layer.weight_params for layer in fixed)
    fixed_macs = sum(layer.macs for layer in fixed)
    result = search(
        [t["energy_J"].to_numpy() for t in tables],
        [[layer.with_groups(int(g)).weight_params for g in t["groups"]] for layer, t in zip(grouped, tables)],
        [t["macs"].to_numpy() for t in tables],
        max_params=None if max_params is None else v.positive_int("max_params", max_params) - fixed_params,
        max_macs=None if max_macs is None else v.positive_int("max_macs", max_macs) - fixed_macs,
    )
    choice = dict(zip((layer.name for layer in grouped), zip(tables, result.choice)))
    new_layers, rows = [], []
    for layer in template.layers:
        if layer.name not in varied:
            new_layers.append(layer)
            continue
        table, i = choice[layer.name]
        g = int(table["groups"].iloc[i])
        chosen = layer.with_groups(g)
        new_layers.append(chosen)
        rows.append(
            {
                "name": layer.name,
                "in_channels": layer.in_channels,
                "out_channels": layer.out_channels,
                "kernel": layer.kernel_h,
                "out_height": layer.out_height,
                "out_width": layer.out_width,
                "groups": g,
                "group_size": chosen.group_size,
                "energy_J": float(table["energy_J"].iloc[i]),
            }
        )
    chosen_layers = [layer for layer in new_layers if layer.name in varied]
    gamma = calibrate_gamma(chosen_layers, beta)
    for row, layer in zip(rows, chosen_layers):
        g_eq2 = eq2_groups(layer, beta, gamma)
        row["eq2_groups"] = g_eq2
        row["eq2_admissible"] = nearest_admissible(layer, g_eq2)
    epf = float(fitted.predict([Workload(tuple(new_layers), batch)])[0])

    variant_rows = []
    for variant, groups in PAPER_GROUPS.items():
        for group in groups:
            net = build_network(template.arch, variant, group, batch)
            variant_rows.append(
                {"variant": variant, "group": group,
                 "epf_J": float(fitted.predict([Workload(net.layers, batch)])[0])}
            )
    return GroupingRecommendation(
        arch=template.arch,
        batch=batch,
        model=fitted.model.name,
        layers=pd.DataFrame(rows),
        network_layers=tuple(replace(layer, batch=batch) for layer in new_layers),
        epf_J=epf,
        variants=pd.DataFrame(variant_rows),
        beta=beta,
        gamma=gamma,
        notes=tuple(notes),
    )
