"""``groupconv count``: parameters, MACs and bytes of a catalogue network or any torch model.

Examples::

    groupconv count mobilenet_v1 --variant e2gc --groups 1
    groupconv count resnext50 --variant fggc --groups 32 --batch 16 --json
    groupconv count resnext50 --variant fggc --groups 32 --trace --depth 1
    groupconv count my_model.py:build --input-shape 2,3,224,224 --depth 2
    groupconv count torchvision.models:resnet18 --input-shape 1,3,224,224 --json
    groupconv count lm.py:make --input-shape 1,128 --input-dtype int64
    groupconv count my_model.py:build --input-shape 1,3,224,224 --csv ops > ops.csv

A catalogue name without ``--trace``/``--input-shape``/``--depth`` prints the paper's
per-layer table (torch-free). Everything else is traced at the operator level
(:func:`groupconv.networks.count_module`, on the meta device unless ``--device``).
"""

from __future__ import annotations

import argparse
import sys

from ..errors import GroupConvError
from ._common import deprecated_alias, model_inputs, nonnegative_int_arg, print_json, shape_arg

__all__ = ["register", "run", "parse_shape"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "count",
        help="parameters, MACs and bytes of a catalogue network or of any torch model, per op",
        description="Count a model. MODEL is a catalogue network (mobilenet_v1, resnext50: "
        "needs --variant and --groups), FILE.py:FACTORY or package.module:factory (a function "
        "returning a torch.nn.Module, called without arguments). A catalogue network alone "
        "prints the E2GC paper's per-layer table (params = conv and classifier weights, MACs "
        "per 224x224 frame); with --trace, and for every other model, every aten op is traced "
        "on the meta device (nothing computed): MACs and bytes per frame, per module and per "
        "op type.",
    )
    parser.add_argument("arch", metavar="MODEL", help="catalogue name, FILE.py:FACTORY or package.module:factory")
    parser.add_argument(
        "--variant", metavar="{e2gc,fggc}",
        help="catalogue networks: e2gc (--groups is G, channels per group) or fggc (--groups is g, groups)",
    )
    parser.add_argument("--groups", dest="group", metavar="N", help="catalogue networks: G (e2gc) or g (fggc)")
    deprecated_alias(parser, "--group", "--groups", dest="group")
    parser.add_argument(
        "--batch", default=None, metavar="B",
        help="frames per batch: per-frame totals are divided by it (default 1 for the catalogue, "
        "else the leading dimension of the first input)",
    )
    parser.add_argument(
        "--input-shape", action="append", default=None, metavar="D0,D1,...", type=parse_shape,
        help="input shape, batch first (repeat for several inputs); required for FILE:FACTORY models",
    )
    parser.add_argument(
        "--input-dtype", default="float32", metavar="DTYPE",
        help="dtype of the inputs made from --input-shape: float32 (default), int64 (token ids) ...",
    )
    parser.add_argument("--depth", type=nonnegative_int_arg, default=None, metavar="D", help="module tree depth (default 2)")
    parser.add_argument("--trace", action="store_true", help="trace a catalogue network at the operator level")
    parser.add_argument(
        "--device", default="meta", metavar="DEV",
        help="where to trace: meta (default, nothing computed) or e.g. cpu (real kernels)",
    )
    parser.add_argument(
        "--mode", choices=("forward", "forward_backward"), default="forward",
        help="forward (default: inference, eval mode, no grad) or forward_backward (one training "
        "step: the forward in train mode and the backward to every parameter, as FlopCounterMode "
        "users count it; backward ops are tagged phase=backward)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument(
        "--csv", choices=("ops", "op_types", "layers", "modules"), default=None,
        help="print one table of a traced model as CSV: every op call, per op type, per layer or per module",
    )
    parser.set_defaults(func=run)


#: argparse type of --input-shape: the one shape grammar (see ``_common.shape_arg``)
parse_shape = shape_arg


def _int(option: str, text: str) -> int:
    """Parse an integer option, reporting a bad value as a one-line GroupConvError."""
    try:
        return int(text)
    except ValueError:
        raise GroupConvError(f"{option} must be an integer, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from ..networks.catalogue import ARCHITECTURES

    catalogue = args.arch in ARCHITECTURES
    if catalogue and (args.variant is None or args.group is None):
        raise GroupConvError(f"{args.arch} is a catalogue network: give --variant and --groups")
    if args.json and args.csv:
        raise GroupConvError("--json and --csv each print the whole output: choose one")
    if catalogue and not (args.trace or args.input_shape or args.depth is not None or args.csv):
        from ..networks import build_network

        batch = _int("--batch", args.batch) if args.batch is not None else 1
        net = build_network(args.arch, args.variant, _int("--groups", args.group), batch)
        if args.json:
            print_json(net.as_dict())
        else:
            print(net.summary())
        return 0
    return _run_trace(args, catalogue)


def _run_trace(args, catalogue: bool) -> int:
    import torch  # noqa: F401 - a missing torch is reported here by the CLI's one install hint
    from ..networks import count_module, resolve_model
    from ..networks.catalogue import IMAGE_SIZE

    batch = _int("--batch", args.batch) if args.batch is not None else None
    if catalogue:
        model = resolve_model(args.arch, variant=args.variant, group=_int("--groups", args.group), device="meta")
        shapes = args.input_shape or [(batch or 1, 3, IMAGE_SIZE, IMAGE_SIZE)]
    else:
        model = resolve_model(args.arch)  # an unknown model is named before a missing shape
        if not args.input_shape:
            raise GroupConvError(f"model {args.arch!r} needs --input-shape (e.g. --input-shape 1,3,224,224)")
        shapes = args.input_shape
    inputs = model_inputs(shapes, args.input_dtype)
    count = count_module(model, inputs, batch=batch, device=args.device, backward=args.mode == "forward_backward")
    if count.unsupported:
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(count.unsupported.items()))
        print(
            f"groupconv: warning: {len(count.unsupported)} op type(s) have no MAC formula and are not "
            f"known to be MAC-free, their MACs are not counted: {listed}",
            file=sys.stderr,
        )
    if args.json:
        print_json({"model": args.arch, **count.as_dict()})
    elif args.csv:
        sys.stdout.write(count.to_csv(table=args.csv))
    else:
        print(count.summary(args.arch, 2 if args.depth is None else args.depth))
    return 0
