"""Deprecated: :func:`recommend_grouping`, the E2GC-table view of :func:`recommend`.

It used to be a second recommender in ``groupconv.fit``; the grouping is now chosen by the
one recommender, :func:`groupconv.design.recommend` (given the fit as its pricer), and
this wrapper only adds the E2GC Eq. 2 columns (:func:`groupconv.cost.optimum.eq2_groups`
with gamma calibrated to the recommended grouping) and the predicted EPF of the paper's
variants. Use :func:`recommend` in new code.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import pandas as pd

from .. import _validate as v
from ..cost import ConvLayer
from ..cost.optimum import DEFAULT_EQ2_BETA, calibrate_gamma, eq2_groups, nearest_admissible_groups
from ..errors import GroupConvError
from ..fit import FitResult, Workload
from ..networks import PAPER_GROUPS, build_network
from .recommend import recommend

__all__ = ["GroupingRecommendation", "recommend_grouping"]


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
        out_width, groups`` (recommended), ``group_size``, ``energy_J`` (its predicted
        share per frame), ``eq2_groups`` (Eq. 2, real), ``eq2_admissible`` (nearest
        admissible g).
    network_layers : tuple of ConvLayer
        The whole network with the recommended grouping.
    epf_J : float
        Predicted energy per frame of that network.
    variants : pandas.DataFrame
        Predicted EPF of the paper's E2GC/FgGC variants at the same batch (``variant,
        group, epf_J``), for comparison.
    beta, gamma : float
        The Eq. 2 constants used (gamma calibrated so that Eq. 2 best reproduces the
        recommended grouping; see :func:`groupconv.cost.optimum.calibrate_gamma`).
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
    """Deprecated: ``recommend(arch, fitted, batch=batch, ...)`` with the Eq. 2 columns.

    Parameters
    ----------
    arch : {"mobilenet_v1", "resnext50"}
    fitted : FitResult
        A fitted model (its per-layer energy decides the grouping).
    batch : int
        Batch size of the deployment.
    beta : float, optional
        beta for Eq. 2; default: the fitted model's ``beta`` if it has one, else
        :data:`~groupconv.cost.optimum.DEFAULT_EQ2_BETA` (0.5, the paper's own example in Eq. 3).
    max_params, max_macs : int, optional
        Budgets on the network's weights (the paper's count) and MACs per frame.

    Returns
    -------
    GroupingRecommendation
    """
    warnings.warn(
        "recommend_grouping is deprecated: use groupconv.design.recommend(arch, fitted, batch=...), "
        "the one recommender",
        DeprecationWarning,
        stacklevel=2,
    )
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

    rec = recommend(template.arch, fitted, batch=batch, max_params=max_params, max_macs=max_macs)
    chosen = dict(zip(rec.layers["name"], zip(rec.groups, rec.layers["cost"])))
    new_layers, rows = [], []
    for layer in template.layers:
        if layer.name not in chosen:
            new_layers.append(layer)
            continue
        g, energy = chosen[layer.name]
        grouped = layer.with_groups(int(g))
        new_layers.append(grouped)
        rows.append(
            {
                "name": layer.name,
                "in_channels": layer.in_channels,
                "out_channels": layer.out_channels,
                "kernel": layer.kernel_h,
                "out_height": layer.out_height,
                "out_width": layer.out_width,
                "groups": int(g),
                "group_size": grouped.group_size,
                "energy_J": float(energy),
            }
        )
    chosen_layers = [layer for layer in new_layers if layer.name in chosen]
    gamma = calibrate_gamma(chosen_layers, beta)
    for row, layer in zip(rows, chosen_layers):
        g_eq2 = eq2_groups(layer, beta, gamma)
        row["eq2_groups"] = g_eq2
        row["eq2_admissible"] = nearest_admissible_groups(g_eq2, layer.in_channels, layer.out_channels)
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
