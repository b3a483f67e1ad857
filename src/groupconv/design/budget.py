"""A budget on a catalogue network written as text: a count or a paper variant's count.

``"4.2e6"`` and ``"4200000"`` are 4,200,000; ``"e2gc:32"`` is what the E2GC variant with
G = 32 of the same architecture has (its weights, counted as the paper counts them, or its
MACs per frame at the image size). :func:`parse_budget` serves ``groupconv recommend
--max-params/--max-macs`` and any caller that takes budgets from text.
"""

from __future__ import annotations

from .. import _validate as v
from ..errors import GroupConvError
from ..networks import build_network
from .recommend import catalogue_layers

__all__ = ["BUDGET_QUANTITIES", "parse_budget"]

#: What a budget may bound.
BUDGET_QUANTITIES: tuple[str, ...] = ("params", "macs")


def parse_budget(text: str | None, arch: str, quantity: str, *, image_size: int = 224,
                 name: str = "budget") -> int | None:
    """The budget ``text`` means for ``arch``: None for None, else a positive count.

    Parameters
    ----------
    text : str or None
        A number (``4.2e6``) or ``VARIANT:GROUP`` (``e2gc:32``, ``fggc:8``).
    arch : {"mobilenet_v1", "resnext50"}
    quantity : {"params", "macs"}
        Weights (the paper's count) or MACs per frame at ``image_size``.
    image_size : int
        Input side for a MACs budget written as a variant.
    name : str
        How error messages name the budget (the CLI passes its option, ``--max-params``).
    """
    v.one_of("quantity", quantity, BUDGET_QUANTITIES)
    if text is None:
        return None
    if ":" in text:
        variant, _, group = text.partition(":")
        try:
            group_int = int(group)
        except ValueError:
            raise GroupConvError(f"{name} {text!r}: the group after ':' must be an integer") from None
        if quantity == "params":
            return build_network(arch, variant, group_int).params
        layers, _ = catalogue_layers(arch, image_size, variant=variant, group=group_int)
        return sum(layer.macs for layer in layers)
    try:
        value = float(text)
    except ValueError:
        raise GroupConvError(f"{name} must be a number or VARIANT:GROUP, got {text!r}") from None
    if not value >= 1 or value == float("inf") or value != int(value):
        raise GroupConvError(f"{name} must be a positive integer count, got {text!r}")
    return int(value)
