"""What prices one layer: the :class:`LayerPricer` protocol.

A pricer says what it can price per frame (``time_s`` and/or ``energy_J``, its default
first) and prices one :class:`~groupconv.cost.ConvLayer` at a batch size. The one
recommender, :func:`groupconv.design.recommend`, searches over any pricer;
:class:`groupconv.platform.Platform` (a platform calibrated on a machine) and
:class:`groupconv.fit.FitResult` (a law fitted to network totals) both implement it.

A protocol on plain shapes: imports neither torch nor anything above ``cost``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .layer import ConvLayer

__all__ = ["OBJECTIVES", "LayerPricer"]

#: What a pricer may price, per frame.
OBJECTIVES: tuple[str, ...] = ("time_s", "energy_J")


@runtime_checkable
class LayerPricer(Protocol):
    """Prices a conv layer per frame at a batch size.

    Attributes
    ----------
    objectives : tuple of str
        What this pricer can price (a subset of :data:`OBJECTIVES`), its default first.
    """

    @property
    def objectives(self) -> tuple[str, ...]: ...

    def layer_cost(self, layer: ConvLayer, batch: int, objective: str) -> float:
        """The predicted cost per frame of ``layer`` run on ``batch`` frames.

        ``objective`` is one of :attr:`objectives`.
        """
        ...
