"""``groupconv predict``: time (and energy) per frame of a model on a calibrated platform.

Examples::

    groupconv predict mobilenet_v1 --variant e2gc --group 32 --input-shape 1,3,160,160 --platform p.json
    groupconv predict models.py:build --input-shape 8,3,64,64 --platform p.json --json
    groupconv predict torchvision.models:resnet18 --input-shape 1,3,224,224 --platform p.json \\
        --figure out/roofline
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..errors import GroupConvError
from ._common import positive_int_arg, print_json
from .count import parse_shape

__all__ = ["register", "run"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predicted time (and energy) per frame of a model on a calibrated platform",
        description="Trace MODEL on the input shape into per-operator counts and price every "
        "operator with the platform's model of its kernel type (see docs/platform.md). MODEL is "
        "FILE.py:FACTORY, package.module:factory, a zoo name, or a catalogue network with "
        "--variant and --group.",
    )
    parser.add_argument("model", metavar="MODEL")
    parser.add_argument("--variant", metavar="{e2gc,fggc}", help="catalogue networks: e2gc or fggc")
    parser.add_argument("--group", type=positive_int_arg, metavar="N", help="catalogue networks: G (e2gc) or g (fggc)")
    parser.add_argument("--input-shape", action="append", required=True, metavar="D0,D1,...", type=parse_shape,
                        help="input shape, batch first, e.g. 1,3,224,224 (repeat for several inputs)")
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
    from ..networks import ARCHITECTURES, resolve_model
    from ..platform import Platform, UnmeasuredKernelWarning, predict

    platform = Platform.load(args.platform)
    if args.model in ARCHITECTURES:
        model = resolve_model(args.model, variant=args.variant, group=args.group)
    else:
        if args.variant is not None or args.group is not None:
            raise GroupConvError(f"--variant/--group are for catalogue networks ({', '.join(ARCHITECTURES)}), "
                                 f"not {args.model!r}")
        model = resolve_model(args.model)
    shapes = args.input_shape
    inputs = shapes[0] if len(shapes) == 1 else shapes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnmeasuredKernelWarning)
        result = predict(platform, model, inputs, mode=args.mode, threads=args.threads)
    for w in caught:
        if issubclass(w.category, UnmeasuredKernelWarning):
            print(f"groupconv: warning: {w.message}", file=sys.stderr)
    if args.figure:
        from ..figures._save import save_figure
        from ..figures.roofline import roofline_figure

        prefix = Path(args.figure)
        save_figure(roofline_figure(platform, result), prefix.parent, prefix.name)
    if args.json:
        print_json(result.as_dict())
        return 0
    energy = "n/a (no energy meter)" if result.energy_J is None else f"{result.energy_J * 1e3:.4g} mJ"
    name = platform.metadata.get("device_name", platform.device)
    print(f"{args.model} on {name}, batch {result.batch}, {result.mode}, {result.threads} thread(s), "
          f"traced on {result.traced_on}")
    print(f"predicted time per frame: {result.time_s * 1e3:.4g} ms   energy per frame: {energy}")
    print(f"MACs per frame: {result.macs:,.0f}   bytes per frame: {result.bytes:,.0f}")
    print("time per kernel model:")
    for kernel, t in sorted(result.by_model().items(), key=lambda kv: -kv[1]):
        print(f"  {kernel:<36} {t * 1e3:9.4f} ms  {100 * t / result.time_s:5.1f} %")
    if result.roofline_ops:
        print("priced from the roofline (no kernel model): "
              + ", ".join(f"{op} x{n}" for op, n in result.roofline_ops.items()))
    table = result.op_table()
    top = table.sort_values("time_s", ascending=False).head(args.top)
    print(f"slowest {len(top)} of {len(table)} operators:")
    for _, r in top.iterrows():
        print(f"  {r['module'] or '(top)':<28} {r['model']:<28} {r['bound']:<7} {r['time_s'] * 1e6:10.1f} us  "
              f"{r['macs']:>14,.0f} MACs")
    return 0
