"""A fitted law as a :class:`~groupconv.cost.LayerPricer`: the per-layer share of its
prediction (energy, or time for a fit of time) per frame.

:class:`FitPricing` is the part of :class:`~groupconv.fit.FitResult` that prices one
layer, so that :func:`groupconv.design.recommend` searches a fit exactly as it searches a
platform. A fitted model's prediction is a sum over the network's layers plus a network
constant that does not depend on the grouping, so the per-layer shares are what the
search compares.
"""

from __future__ import annotations

from .. import _validate as v
from ..cost import ConvLayer
from ..errors import GroupConvError
from .data import LayerArrays

__all__ = ["FitPricing"]


class FitPricing:
    """:class:`~groupconv.cost.LayerPricer` methods of a fit (mixed into ``FitResult``)."""

    __slots__ = ()

    @property
    def objectives(self) -> tuple[str, ...]:
        """What the fit fitted: ``("energy_J",)`` or ``("time_s",)``."""
        return (self.quantity,)

    def layer_cost(self, layer: ConvLayer, batch: int, objective: str | None = None) -> float:
        """The fitted model's share of ``layer`` per frame at ``batch`` (no network constant)."""
        batch = v.positive_int("batch", batch)
        if objective is not None and objective != self.quantity:
            raise GroupConvError(f"the fit is of {self.quantity}, not {objective}")
        arrays = LayerArrays.from_layers([layer], batch)
        return float(self.model.layer_energy(self.param_vector, arrays)[0])
