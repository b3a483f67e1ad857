"""``groupconv design``: per-layer dense, GC or BGC and N of any trained network.

Examples::

    groupconv design model.py:build --platform platform.json --data inputs.pt --max-error 0.5
    groupconv design model.py:build --platform platform.json --data inputs.npy --max-time-s 2e-3 --json
    groupconv design model.py:build --platform platform.json --data inputs.pt --max-error 0.5 --export out/
"""

from __future__ import annotations

import argparse
import sys

from ..errors import GroupConvError
from ._common import deprecated_alias, float_arg, positive_int_arg, print_json, shape_arg

__all__ = ["register", "run"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "design",
        help="per-layer grouping (dense, GC or BGC and N) of a trained model: the front of predicted cost vs error",
        description="For every eligible conv of MODEL and every (method, N): its predicted time (and energy) "
        "on the platform and its approximation error on the layer's own input activations from DATA; then "
        "the exact Pareto front of total predicted cost against total error, the paper's constant plans, "
        "and, under a budget, the chosen plan.",
    )
    parser.add_argument("model", metavar="MODEL", help="FILE.py:FACTORY, package.module:factory or a network name")
    parser.add_argument("--platform", required=True, metavar="PLATFORM.json", help="a platform file (groupconv calibrate)")
    parser.add_argument("--data", required=True, metavar="DATA",
                        help="model inputs: a .pt tensor, a .npy array, a directory of .pt/.npy shards (one batch "
                        "each) or FILE.py:FACTORY returning a DataLoader; streamed batch by batch")
    parser.add_argument("--input-index", type=int, metavar="I",
                        help="with labelled batches (x, y): which part is the model input (e.g. 0)")
    parser.add_argument("--sequential", action="store_true",
                        help="convert plans layer by layer, each fitted on the converted network's inputs")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar over the batches on stderr (default: when stderr is a terminal; -q: never)")
    parser.add_argument("--input-shape", nargs="+", metavar="D0,D1,...",
                        help="input shape the platform prices, batch first, e.g. 1,3,32,32 "
                        "(default 1 x one data sample)")
    parser.add_argument("--method", nargs="+", choices=("gc", "bgc"), default=["gc", "bgc"],
                        help="grouped forms besides dense (default gc bgc)")
    deprecated_alias(parser, "--methods", "--method", dest="method", nargs="+", choices=("gc", "bgc"))
    parser.add_argument("--groups", type=positive_int_arg, nargs="+", metavar="N",
                        help="the N to consider (default every divisor > 1 of each layer's channels)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--max-error", type=float_arg, metavar="X", help="cheapest plan whose converted network loses at most X of its output on DATA")
    budget.add_argument("--max-time-s", type=float_arg, metavar="T", help="plan losing the least output on DATA with predicted time <= T s/frame")
    budget.add_argument("--max-params", type=positive_int_arg, metavar="P", help="plan losing the least output on DATA with <= P weights")
    parser.add_argument("--objective", choices=("time_s", "energy_J"),
                        help="cost of the front (default: energy where the platform has it, else time)")
    parser.add_argument("--aggregate", choices=("network_E", "rel_output_E"), default="network_E",
                        help="a plan's total error: sum over layers of the network's output error with that "
                        "layer alone replaced (default), or of the layer's own lost output fraction")
    parser.add_argument("--export", metavar="DIR", help="write the chosen plan (plan.json) and the converted model (model.pt)")
    parser.add_argument("--figure", metavar="DIR", help="write the front figure (design_front.png/svg/pdf) into DIR")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..approx.sources import resolve_data
    from ..design import design, export_plan
    from ..networks import resolve_model
    from ..platform import Platform

    if args.export is not None and args.max_error is None and args.max_time_s is None and args.max_params is None:
        raise GroupConvError("--export needs a budget (--max-error, --max-time-s or --max-params) to choose a plan")
    input_shape = _input_shape(args.input_shape)
    platform = Platform.load(args.platform)
    model = resolve_model(args.model)
    data = resolve_data(args.data)
    progress = True if args.progress is None else args.progress  # a bar on a terminal only; -q hides it
    result = design(model, platform, data, methods=tuple(args.method), groups=args.groups,
                    input_shape=input_shape, max_error=args.max_error, max_time_s=args.max_time_s,
                    max_params=args.max_params, objective=args.objective, aggregate=args.aggregate,
                    progress=progress, sequential=args.sequential, input_index=args.input_index)
    written = {}
    if args.export is not None:
        written = {k: str(p) for k, p in export_plan(model, result.chosen, data, args.export,
                                                                         sequential=args.sequential,
                                                                         input_index=args.input_index).items()}
    if args.figure is not None:
        from ..figures.design_front import front_figure

        for p in front_figure(result, out_dir=args.figure)[1]:
            written[f"figure ({p.suffix[1:].upper()})"] = str(p)
    if args.json:
        print_json({**result.as_dict(), "written": written})
    else:
        print(result.summary(rows=None if args.verbose else 10))
        for k, p in written.items():
            print(f"wrote {k}: {p}")
    return 0


def _input_shape(tokens):
    """``--input-shape 1,3,24,24`` (the one shape grammar) or the old ``1 3 24 24`` (with a note)."""
    if tokens is None:
        return None
    if len(tokens) == 1:
        try:
            return shape_arg(tokens[0])
        except argparse.ArgumentTypeError as exc:
            raise GroupConvError(f"--input-shape: {exc}") from None
    try:
        shape = tuple(positive_int_arg(t) for t in tokens)
    except argparse.ArgumentTypeError as exc:
        raise GroupConvError(f"--input-shape {' '.join(tokens)!r}: {exc}") from None
    print(f"groupconv: note: --input-shape {' '.join(tokens)} is deprecated: use --input-shape "
          f"{','.join(map(str, shape))}", file=sys.stderr)
    return shape
