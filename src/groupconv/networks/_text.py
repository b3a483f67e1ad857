"""Plain-text tables of the network values (their ``summary()``): number formatting and
column alignment, shared by :class:`~groupconv.networks.Network` and
:class:`~groupconv.networks.ModelCount`."""

from __future__ import annotations

__all__ = ["human", "render"]


def human(x: float, unit: str = "") -> str:
    for scale, suffix in ((1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{suffix}{unit}"
    return f"{x:g}{' ' + unit if unit else ''}"


def render(header, rows, right) -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row) -> str:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    rule = "-" * len(line(header))
    return [line(header), rule, *(line(r) for r in rows)]
