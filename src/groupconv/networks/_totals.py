"""Per-frame totals over a list of layers, shared by Network and ModelCount."""

from __future__ import annotations

from ..cost import ConvLayer

__all__ = ["LayerTotals"]


class LayerTotals:
    """Mixin for a value with a ``layers`` tuple of :class:`ConvLayer`: MACs, FLOPs, activations."""

    layers: tuple[ConvLayer, ...]

    @property
    def macs(self) -> int:
        """Multiply-accumulates per frame, summed over the layers (the MACs column)."""
        return sum(layer.macs for layer in self.layers)

    @property
    def flops(self) -> int:
        """FLOPs per frame, 2 * macs."""
        return 2 * self.macs

    @property
    def activations(self) -> int:
        """Sum over layers of input + output feature-map elements, per frame."""
        return sum(layer.activations for layer in self.layers)
