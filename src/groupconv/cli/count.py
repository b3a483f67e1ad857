"""``groupconv count``: the layers, parameters and MACs of a catalogue network.

Examples::

    groupconv count mobilenet_v1 --variant e2gc --group 1
    groupconv count resnext50 --variant fggc --group 32 --batch 16 --json
"""

from __future__ import annotations

import argparse

from ..errors import GroupConvError
from ._common import print_json

__all__ = ["register", "run", "format_table"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "count",
        help="layers, parameters and MACs of MobileNet-V1 / ResNeXt-50 in E2GC or FgGC form",
        description="List the conv and linear layers of a catalogue network with their "
        "parameters and MACs per 224x224 frame (the E2GC paper's Tables III/IV conventions: "
        "params = conv and classifier weights, MACs = conv and classifier multiply-adds).",
    )
    parser.add_argument("arch", metavar="ARCH", help="mobilenet_v1 or resnext50")
    parser.add_argument(
        "--variant", required=True, metavar="{e2gc,fggc}",
        help="e2gc: --group is G, channels per group; fggc: --group is g, number of groups",
    )
    parser.add_argument("--group", required=True, metavar="N", help="G (e2gc) or g (fggc)")
    parser.add_argument("--batch", default="1", metavar="B", help="frames per batch (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.set_defaults(func=run)


def _int(option: str, text: str) -> int:
    """Parse an integer option, reporting a bad value as a one-line GroupConvError."""
    try:
        return int(text)
    except ValueError:
        raise GroupConvError(f"{option} must be an integer, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from ..networks import build_network

    net = build_network(args.arch, args.variant, _int("--group", args.group), _int("--batch", args.batch))
    if args.json:
        print_json(net.as_dict())
    else:
        print(format_table(net))
    return 0


def format_table(net) -> str:
    """A readable per-layer table of a :class:`~groupconv.networks.Network` with totals."""
    header = ("name", "kind", "in -> out", "kernel", "stride", "output", "groups", "weights", "MACs")
    rows = []
    for layer in net.layers:
        kh, kw = layer.kernel
        rows.append((
            layer.name,
            layer.kind,
            f"{layer.in_channels} -> {layer.out_channels}",
            f"{kh}x{kw}",
            str(layer.stride),
            f"{layer.out_height}x{layer.out_width}",
            str(layer.groups),
            f"{layer.weight_params:,}",
            f"{layer.macs:,}",
        ))
    total = ("total", "", "", "", "", "", "", f"{net.params:,}", f"{net.macs:,}")
    widths = [max(len(row[i]) for row in [header, total, *rows]) for i in range(len(header))]
    right = {4, 6, 7, 8}

    def line(row) -> str:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    rule = "-" * len(line(header))
    lines = [
        f"{net.label}, batch {net.batch}, input 3x224x224 (MACs per frame)",
        line(header),
        rule,
        *(line(row) for row in rows),
        rule,
        line(total),
        f"params {net.params / 1e6:.2f} M (weights, as in the paper), MACs {net.macs / 1e6:.2f} M per frame",
        f"with the classifier bias ({net.bias_params:,}) and batch norm ({net.other_params:,}) "
        f"the torch module has {net.total_params:,} parameters",
    ]
    return "\n".join(lines)
