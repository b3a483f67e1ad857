"""The recommended grouping of a catalogue network: the exact search over every grouped layer.

:func:`recommend` picks the number of groups g of every grouped 3x3 conv of MobileNet-V1
(13 layers) or ResNeXt-50 (16 layers) that minimises a predicted cost per frame, over
every admissible g of every layer (the divisors of its channels), under optional budgets
on the weights (counted as the E2GC paper counts them: conv and classifier weights, no
biases or batch norm) and on the MACs per frame.

The cost separates over layers: a platform predicts a network's time as a sum over its
operators, and only the grouped convs change with the grouping (the batch norms and
activations around them keep their channels), so the network's cost is a constant plus
one term per grouped layer; :func:`groupconv.optimize.search` minimises that sum
exactly.

What prices a layer (the ``price`` argument) is a :class:`groupconv.cost.LayerPricer`:

* a :class:`groupconv.platform.Platform`: predicted time per frame, or energy where the
  platform has an energy meter (``objective="energy_J"``, the default there);
* a :class:`groupconv.fit.FitResult`: the fitted model's per-layer energy (or time, for
  a fit of time) per frame - this is how the paper's tables are served;
* or any callable ``price(layer: ConvLayer, batch: int) -> float`` (cost per frame),
  which :func:`as_pricer` wraps.

torch is needed only for an ``image_size`` other than 224 (the layers are then counted
from a shape-only module) and for a whole-network prediction with a platform.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from .. import _validate as v
from ..cost import OBJECTIVES, ConvLayer, LayerPricer
from ..cost.optimum import admissible_groups
from ..errors import GroupConvError
from ..fit import FitResult, Workload
from ..networks import ARCHITECTURES, IMAGE_SIZE, PAPER_GROUPS, build_module, build_network, count_module
from ..networks.catalogue import layer_groups
from ..optimize import search
from ..platform import Platform, predict

__all__ = ["Recommendation", "recommend", "as_pricer", "catalogue_layers"]


def catalogue_layers(arch: str, image_size: int = 224, groups=None, variant: str = "e2gc", group: int = 1):
    """The conv and linear layers of a catalogue network at ``image_size`` and the names
    of its grouped layers (224: torch-free; another size: counted from a meta module)."""
    net = build_network(arch, variant, group, groups=groups)
    image_size = v.positive_int("image_size", image_size)
    if image_size == IMAGE_SIZE:
        return net.layers, net.varied
    module = build_module(arch, variant, group, groups=groups, device="meta")
    return count_module(module, (1, 3, image_size, image_size)).layers, net.varied


@dataclass(frozen=True)
class _CallablePricer:
    """A plain function ``f(layer, batch) -> cost per frame`` as a :class:`LayerPricer`."""

    price: Callable[[ConvLayer, int], float]
    objectives: tuple[str, ...] = OBJECTIVES

    def layer_cost(self, layer: ConvLayer, batch: int, objective: str = "time_s") -> float:
        return float(self.price(layer, batch))


def as_pricer(price) -> LayerPricer:
    """``price`` as a :class:`~groupconv.cost.LayerPricer`: a pricer as it is (a
    ``Platform``, a ``FitResult``), a callable ``f(layer, batch)`` wrapped (it prices
    whatever is asked, time by default)."""
    if isinstance(price, LayerPricer):
        return price
    if callable(price):
        return _CallablePricer(price)
    raise GroupConvError(f"price must be a Platform, a FitResult or a callable, got {type(price).__name__}")


@dataclass(frozen=True, eq=False)
class Recommendation:
    """The grouping that minimises the predicted cost, with the paper's variants beside it.

    Attributes
    ----------
    arch : str
    batch, image_size : int
    objective : str
        ``"time_s"`` or ``"energy_J"``: what was minimised (per frame).
    groups : tuple of int
        g of every grouped layer, in network order.
    cost : float
        Predicted cost per frame of the whole network with that grouping: a whole-network
        prediction where the pricer can make one (a platform), else the sum over the
        network's conv and linear layers.
    params, macs : int
        Weights (the paper's count) and MACs per frame of the recommended network.
    max_params, max_macs : int or None
        The budgets.
    layers : pandas.DataFrame
        One row per grouped layer: ``name, channels, out_height, groups, group_size,
        cost`` (its predicted share), ``options`` (admissible g).
    variants : pandas.DataFrame
        Every E2GC and FgGC variant of Tables III/IV priced the same way: ``variant,
        group, cost, params, macs, within_budget``.
    notes : tuple of str
    """

    arch: str
    batch: int
    image_size: int
    objective: str
    groups: tuple[int, ...]
    cost: float
    params: int
    macs: int
    max_params: int | None
    max_macs: int | None
    layers: pd.DataFrame
    variants: pd.DataFrame
    states: int = 1
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: ``groups``, ``time_s``/``energy_J`` (the other is None), ``params``, ``macs`` ..."""
        return {
            "arch": self.arch,
            "batch": self.batch,
            "image_size": self.image_size,
            "objective": self.objective,
            "groups": list(self.groups),
            "time_s": self.cost if self.objective == "time_s" else None,
            "energy_J": self.cost if self.objective == "energy_J" else None,
            "params": self.params,
            "macs": self.macs,
            "max_params": self.max_params,
            "max_macs": self.max_macs,
            "search_states": self.states,
            "layers": self.layers.to_dict("records"),
            "variants": self.variants.to_dict("records"),
            "notes": list(self.notes),
        }

    def summary(self, layers: bool = False) -> str:
        """Totals, the groups and the best paper variant as text; with ``layers``, the
        per-layer table below them (what ``groupconv recommend`` prints)."""
        unit = "ms" if self.objective == "time_s" else "mJ"
        quantity = "time" if self.objective == "time_s" else "energy"
        lines = [
            f"{self.arch}, batch {self.batch}, {self.image_size}x{self.image_size}: predicted "
            f"{quantity} {self.cost * 1e3:.3f} {unit} per frame, {self.params:,} weights, {self.macs:,} MACs",
            f"groups: {' '.join(str(g) for g in self.groups)}",
        ]
        within = self.variants[self.variants["within_budget"]]
        if len(within):
            best = within.loc[within["cost"].idxmin()]
            lines.append(f"best paper variant within the budgets: {best['variant']} {best['group']} "
                         f"({best['cost'] * 1e3:.3f} {unit})")
        lines += [f"note: {n}" for n in self.notes]
        if layers:
            table = self.layers.drop(columns=["options"])
            if "cost" in table:  # the price of each layer's chosen grouping, per frame, with its unit
                table[f"{quantity}_{unit}/frame"] = table.pop("cost") * 1e3
            lines.append(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Recommendation {self.arch} B={self.batch}: groups {list(self.groups)}, {self.objective} {self.cost:.4g}>"

    def _repr_html_(self) -> str:
        return f"<p>{self.summary().replace(chr(10), '<br>')}</p>" + self.layers.to_html(index=False)


def recommend(
    arch: str,
    price,
    *,
    batch: int = 1,
    image_size: int = 224,
    max_params: int | None = None,
    max_macs: int | None = None,
    objective: str | None = None,
    network_cost: Callable[[tuple[int, ...]], float] | None = None,
) -> Recommendation:
    """The g of every grouped layer of ``arch`` that minimises the predicted cost.

    Parameters
    ----------
    arch : {"mobilenet_v1", "resnext50"}
    price : Platform, FitResult or callable
        What prices one layer per frame (see the module docstring).
    batch : int
        Frames per batch of the deployment.
    image_size : int
        Input side (224: the paper's).
    max_params : int, optional
        Budget on the weights, counted as the paper does (conv + classifier weights).
    max_macs : int, optional
        Budget on the MACs per frame at ``image_size``.
    objective : {"time_s", "energy_J"}, optional
    network_cost : callable, optional
        ``f(groups) -> cost per frame`` of the whole network, used for the reported costs
        (default: a platform's whole-network prediction, else the sum over layers).

    Returns
    -------
    Recommendation
    """
    v.one_of("architecture", arch, ARCHITECTURES)
    batch = v.positive_int("batch", batch)
    image_size = v.positive_int("image_size", image_size)
    if max_params is not None:
        max_params = v.positive_int("max_params", max_params)
    if max_macs is not None:
        max_macs = v.positive_int("max_macs", max_macs)
    pricer = as_pricer(price)
    if objective is not None:
        v.one_of("objective", objective, OBJECTIVES)
    objective = objective or pricer.objectives[0]

    def f(layer: ConvLayer, batch: int) -> float:
        return pricer.layer_cost(layer, batch, objective)

    layers, varied = catalogue_layers(arch, image_size)
    grouped = [layer for layer in layers if layer.name in varied]
    fixed = [layer for layer in layers if layer.name not in varied]

    options = [admissible_groups(layer.in_channels, layer.out_channels) for layer in grouped]
    costs, params, macs = [], [], []
    for layer, opts in zip(grouped, options):
        costs.append([f(layer.with_groups(g), batch) for g in opts])
        params.append([layer.with_groups(g).weight_params for g in opts])
        macs.append([layer.with_groups(g).macs for g in opts])
    fixed_params = sum(layer.weight_params for layer in fixed)
    fixed_macs = sum(layer.macs for layer in fixed)
    least_params = fixed_params + sum(min(row) for row in params)
    least_macs = fixed_macs + sum(min(row) for row in macs)
    if max_params is not None and max_params < least_params:
        raise GroupConvError(f"no grouping of {arch} has at most max_params {max_params:,} weights: "
                             f"the least possible is {least_params:,}")
    if max_macs is not None and max_macs < least_macs:
        raise GroupConvError(f"no grouping of {arch} has at most max_macs {max_macs:,} MACs: "
                             f"the least possible is {least_macs:,}")
    try:
        result = search(
            costs, params, macs,
            max_params=None if max_params is None else max_params - fixed_params,
            max_macs=None if max_macs is None else max_macs - fixed_macs,
        )
    except GroupConvError:
        raise GroupConvError(f"no grouping of {arch} meets max_params {max_params} and max_macs {max_macs} "
                             "together") from None
    groups = tuple(opts[i] for opts, i in zip(options, result.choice))

    notes = []
    if network_cost is None and isinstance(pricer, Platform):
        network_cost = _platform_network_cost(pricer, arch, batch, image_size, objective)
    if network_cost is None and isinstance(pricer, FitResult):

        def network_cost(g):  # the fitted model's whole-network prediction (with its constants)
            ls, _ = catalogue_layers(arch, image_size, groups=g)
            return float(pricer.predict([Workload(tuple(ls), batch)])[0])
    if network_cost is None:
        notes.append("cost is the sum over the conv and linear layers (no whole-network prediction)")

        def network_cost(g):  # noqa: F811 - the layer sum, same pricer
            ls, _ = catalogue_layers(arch, image_size, groups=g)
            return float(sum(f(layer, batch) for layer in ls))

    rows = []
    for layer, opts, i, row in zip(grouped, options, result.choice, costs):
        rows.append({"name": layer.name, "channels": layer.in_channels, "out_height": layer.out_height,
                     "groups": opts[i], "group_size": layer.in_channels // opts[i], "cost": float(row[i]),
                     "options": list(opts)})
    variant_rows = []
    for variant, settings in PAPER_GROUPS.items():
        for group in settings:
            g = layer_groups(arch, variant, group)
            p = fixed_params + sum(layer.with_groups(x).weight_params for layer, x in zip(grouped, g))
            m = fixed_macs + sum(layer.with_groups(x).macs for layer, x in zip(grouped, g))
            variant_rows.append({
                "variant": variant, "group": group, "groups": list(g), "cost": float(network_cost(g)),
                "params": p, "macs": m,
                "within_budget": (max_params is None or p <= max_params) and (max_macs is None or m <= max_macs),
            })
    total = float(network_cost(groups))
    unmeasured = sorted(getattr(network_cost, "unmeasured", ()))
    if unmeasured:
        notes.append(f"operator class(es) {', '.join(unmeasured)} never measured on this platform: "
                     "predicted from the roofline constants")
    return Recommendation(
        arch=arch, batch=batch, image_size=image_size, objective=objective, groups=groups,
        cost=total, params=fixed_params + result.params, macs=fixed_macs + result.macs,
        max_params=max_params, max_macs=max_macs, layers=pd.DataFrame(rows),
        variants=pd.DataFrame(variant_rows), states=result.states, notes=tuple(notes),
    )


def _platform_network_cost(platform, arch: str, batch: int, image_size: int, objective: str):
    """Whole-network prediction by the platform, a function of the groups."""

    def cost(groups) -> float:
        module = build_module(arch, "e2gc", 1, groups=list(groups), device="meta")
        with warnings.catch_warnings():  # the unmeasured classes are the same for every grouping;
            warnings.simplefilter("ignore")  # predict names them once when the user predicts the network
            pred = predict(platform, module, (batch, 3, image_size, image_size))
        cost.unmeasured.update(getattr(pred, "unmeasured", ()))
        value = pred.time_s if objective == "time_s" else pred.energy_J
        return float(value)

    cost.unmeasured = set()
    return cost
