"""``groupconv recommend``: the number of groups of every grouped layer that costs least.

Examples::

    groupconv recommend mobilenet_v1 --platform platform.json --batch 8 --max-params e2gc:32
    groupconv recommend resnext50 --platform platform.json --batch 1 --size 160 --json
    groupconv recommend mobilenet_v1 --paper-fit P4000 --batch 16      # the paper's Table III, fitted
"""

from __future__ import annotations

import argparse

from ..errors import GroupConvError
from ._common import deprecated_alias, positive_int_arg, print_json

__all__ = ["register", "run"]

_PAPER_PLATFORMS = ("P100", "P4000")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "recommend",
        help="per-layer number of groups of MobileNet-V1 / ResNeXt-50 minimising predicted time or energy",
        description="Search every admissible number of groups of every grouped 3x3 conv of a catalogue "
        "architecture (13 layers of MobileNet-V1, 16 of ResNeXt-50) for the least predicted cost per frame "
        "on a platform (time; energy where the platform has a meter), exactly, under budgets on the weights "
        "(counted as the E2GC paper does: conv and classifier weights) and the MACs per frame.",
    )
    parser.add_argument("arch", metavar="ARCH", help="mobilenet_v1 or resnext50")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--platform", metavar="PLATFORM.json", help="a platform file (groupconv calibrate)")
    source.add_argument("--paper-fit", choices=_PAPER_PLATFORMS,
                        help="instead of a platform: the GPU model fitted to the paper's table of ARCH on this GPU")
    parser.add_argument("--batch", type=positive_int_arg, default=1, metavar="B", help="frames per batch (default 1)")
    parser.add_argument("--size", dest="image_size", type=positive_int_arg, default=224, metavar="S",
                        help="input height = width (default 224; others need torch)")
    deprecated_alias(parser, "--image-size", "--size", dest="image_size", type=positive_int_arg)
    parser.add_argument("--max-params", metavar="P",
                        help="weights budget: a number, or VARIANT:GROUP (e.g. e2gc:32) for that variant's weights")
    parser.add_argument("--max-macs", metavar="M",
                        help="MACs-per-frame budget: a number, or VARIANT:GROUP for that variant's MACs")
    parser.add_argument("--objective", choices=("time_s", "energy_J"),
                        help="what to minimise (default: energy where measured, else time)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..design import parse_budget, recommend
    from ..networks import ARCHITECTURES
    from ..platform import Platform

    if args.arch not in ARCHITECTURES:
        raise GroupConvError(f"unknown architecture {args.arch!r}: recommend takes a catalogue network ({', '.join(ARCHITECTURES)}); "
                             "for your own model use: groupconv design MODEL --platform P.json --data DATA")
    if args.platform is not None:
        price = Platform.load(args.platform)
    else:
        from ..fit import fit_model, paper_dataset

        price = fit_model("gpu", paper_dataset(args.arch, args.paper_fit))
    rec = recommend(
        args.arch, price, batch=args.batch, image_size=args.image_size,
        max_params=parse_budget(args.max_params, args.arch, "params", image_size=args.image_size, name="--max-params"),
        max_macs=parse_budget(args.max_macs, args.arch, "macs", image_size=args.image_size, name="--max-macs"),
        objective=args.objective,
    )
    if args.json:
        print_json(rec.as_dict())
        return 0
    print(rec.summary(layers=True))
    return 0
