"""``groupconv predict``: time (and energy) per frame of a model on a calibrated platform.

Examples::

    groupconv predict mobilenet_v1 --variant e2gc --groups 32 --input-shape 1,3,160,160 --platform p.json
    groupconv predict models.py:build --input-shape 8,3,64,64 --platform p.json --json
    groupconv predict torchvision.models:resnet18 --input-shape 1,3,224,224 --platform p.json \\
        --figure out/roofline
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ._common import cli_model, deprecated_alias, model_inputs, positive_int_arg, print_json
from .count import parse_shape

__all__ = ["register", "run"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predicted time (and energy) per frame of a model on a calibrated platform",
        description="Trace MODEL on the input shape into per-operator counts and price every "
        "operator with the platform's model of its kernel type (see docs/platform.md). MODEL is "
        "FILE.py:FACTORY, package.module:factory, a zoo name, or a catalogue network with "
        "--variant and --groups.",
    )
    parser.add_argument("model", metavar="MODEL")
    parser.add_argument("--variant", metavar="{e2gc,fggc}", help="catalogue networks: e2gc or fggc")
    parser.add_argument("--groups", dest="group", type=positive_int_arg, metavar="N",
                        help="catalogue networks: G (e2gc) or g (fggc)")
    deprecated_alias(parser, "--group", "--groups", dest="group", type=positive_int_arg)
    parser.add_argument("--input-shape", action="append", required=True, metavar="D0,D1,...", type=parse_shape,
                        help="input shape, batch first, e.g. 1,3,224,224 (repeat for several inputs)")
    parser.add_argument("--input-dtype", default="float32", metavar="DTYPE",
                        help="dtype of the inputs made from --input-shape: float32 (default), int64 (token ids) ...")
    parser.add_argument("--platform", required=True, metavar="PLATFORM.json")
    parser.add_argument("--mode", default="forward", choices=("forward", "forward_backward"),
                        help="forward (default: eval mode, no gradients) or forward_backward")
    parser.add_argument("--threads", type=positive_int_arg, default=None,
                        help="torch threads the prediction is for; must be the platform's (calibrate --threads T)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--figure", metavar="PREFIX", default=None,
                        help="also write the roofline figure PREFIX.png and PREFIX.svg")
    parser.add_argument("--top", type=positive_int_arg, default=15, help="rows of the op table (default 15)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..platform import Platform, UnmeasuredKernelWarning, predict

    platform = Platform.load(args.platform)
    model = cli_model(args)
    inputs = model_inputs(args.input_shape, args.input_dtype)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnmeasuredKernelWarning)
        result = predict(platform, model, inputs, mode=args.mode, threads=args.threads)
    for w in caught:
        if issubclass(w.category, UnmeasuredKernelWarning):
            print(f"groupconv: warning: {w.message}", file=sys.stderr)
    if args.figure:
        from ..figures import save_figure
        from ..figures.roofline import roofline_figure

        prefix = Path(args.figure)
        save_figure(roofline_figure(platform, result), prefix.parent, prefix.name)
    if args.json:
        print_json(result.as_dict())
        return 0
    print(result.summary(args.model, device=platform.metadata.get("device_name", platform.device), top=args.top))
    return 0
