"""``groupconv count``: parameters, MACs and bytes of a catalogue network or any torch model.

Examples::

    groupconv count mobilenet_v1 --variant e2gc --group 1
    groupconv count resnext50 --variant fggc --group 32 --batch 16 --json
    groupconv count resnext50 --variant fggc --group 32 --trace --depth 1
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
from ._common import int_arg, nonnegative_int_arg, print_json

__all__ = ["register", "run", "format_table", "format_trace", "parse_shape"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "count",
        help="parameters, MACs and bytes of a catalogue network or of any torch model, per op",
        description="Count a model. MODEL is a catalogue network (mobilenet_v1, resnext50: "
        "needs --variant and --group), FILE.py:FACTORY or package.module:factory (a function "
        "returning a torch.nn.Module, called without arguments). A catalogue network alone "
        "prints the E2GC paper's per-layer table (params = conv and classifier weights, MACs "
        "per 224x224 frame); with --trace, and for every other model, every aten op is traced "
        "on the meta device (nothing computed): MACs and bytes per frame, per module and per "
        "op type.",
    )
    parser.add_argument("arch", metavar="MODEL", help="catalogue name, FILE.py:FACTORY or package.module:factory")
    parser.add_argument(
        "--variant", metavar="{e2gc,fggc}",
        help="catalogue networks: e2gc (--group is G, channels per group) or fggc (--group is g, groups)",
    )
    parser.add_argument("--group", metavar="N", help="catalogue networks: G (e2gc) or g (fggc)")
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


def parse_shape(text: str) -> tuple[int, ...]:
    """argparse type: ``"2,3,224,224"`` -> ``(2, 3, 224, 224)``."""
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a shape of comma-separated integers: {text!r}") from None
    if not shape or any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"not a shape of positive integers: {text!r}")
    return shape


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
        raise GroupConvError(f"{args.arch} is a catalogue network: give --variant and --group")
    if args.json and args.csv:
        raise GroupConvError("--json and --csv each print the whole output: choose one")
    if catalogue and not (args.trace or args.input_shape or args.depth is not None or args.csv):
        from ..networks import build_network

        batch = _int("--batch", args.batch) if args.batch is not None else 1
        net = build_network(args.arch, args.variant, _int("--group", args.group), batch)
        if args.json:
            print_json(net.as_dict())
        else:
            print(format_table(net))
        return 0
    return _run_trace(args, catalogue)


def _run_trace(args, catalogue: bool) -> int:
    try:
        import torch
    except ImportError:
        raise GroupConvError("tracing a model needs torch: pip install 'groupconv[torch]'") from None
    from ..networks import count_module, resolve_model
    from ..networks.catalogue import IMAGE_SIZE

    batch = _int("--batch", args.batch) if args.batch is not None else None
    if catalogue:
        model = resolve_model(args.arch, variant=args.variant, group=_int("--group", args.group), device="meta")
        shapes = args.input_shape or [(batch or 1, 3, IMAGE_SIZE, IMAGE_SIZE)]
    else:
        if not args.input_shape:
            raise GroupConvError(f"model {args.arch!r} needs --input-shape (e.g. --input-shape 1,3,224,224)")
        model = resolve_model(args.arch)
        shapes = args.input_shape
    dtype = getattr(torch, args.input_dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise GroupConvError(f"--input-dtype must be a torch dtype name such as float32 or int64, got {args.input_dtype!r}")
    if dtype.is_floating_point and dtype == torch.float32:
        inputs = list(shapes) if len(shapes) > 1 else shapes[0]
    else:
        inputs = tuple(torch.zeros(s, dtype=dtype) for s in shapes)
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
        print(format_trace(count, args.arch, 2 if args.depth is None else args.depth))
    return 0


def _human(x: float, unit: str = "") -> str:
    for scale, suffix in ((1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{suffix}{unit}"
    return f"{x:g}{' ' + unit if unit else ''}"


def _render(header, rows, right) -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row) -> str:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    rule = "-" * len(line(header))
    return [line(header), rule, *(line(r) for r in rows)]


def format_trace(count, label: str, depth: int) -> str:
    """Totals, the module tree to ``depth`` and the per-op-class table of a :class:`ModelCount`."""
    shapes = " ".join("x".join(map(str, s)) for s in count.input_shapes)
    lines = [
        f"{label}: input {shapes}, batch {count.batch} (per frame below)",
        f"MACs {_human(count.macs)} ({count.macs:,}), FLOPs {_human(count.flops)}, "
        f"bytes {_human(count.bytes, 'B')} unfused (read {_human(count.bytes_read, 'B')}, "
        f"written {_human(count.bytes_written, 'B')}), arithmetic intensity {count.arithmetic_intensity:.2f} MAC/B",
        f"params {count.params:,} (weights of convs and matmuls), biases {count.bias_params:,}, "
        f"other {count.other_params:,}, total {count.total_params:,}",
        f"peak memory {_human(count.peak_bytes, 'B')} estimated, whole batch (parameters, buffers and inputs "
        f"{_human(count.resident_bytes, 'B')} + op outputs alive at once)",
        "",
    ]
    table = count.module_table(depth)
    rows = [
        ("  " * int(r.depth) + r.module, _human(r.params) if r.params else "", _human(r.macs) if r.macs else "",
         _human(r.bytes, "B"), f"{r.arithmetic_intensity:.2f}", r.output_shape,
         _human(r.peak_bytes, "B") if r.peak_bytes else "")
        for r in table.itertuples()
    ]
    lines += _render(("module", "params", "MACs", "bytes", "MAC/B", "output shape", "peak mem"), rows, {1, 2, 3, 4, 6})
    lines.append("")
    ops = count.op_table(by="op_class")
    rows = [
        (r.op_class, str(r.calls), _human(r.macs) if r.macs else "", _human(r.bytes, "B"),
         f"{100 * r.share_bytes:.1f} %", f"{r.arithmetic_intensity:.2f}")
        for r in ops.itertuples()
    ]
    lines += _render(("op class", "calls", "MACs", "bytes", "bytes %", "MAC/B"), rows, {1, 2, 3, 4, 5})
    if count.uncalled_modules:
        shown = ", ".join(count.uncalled_modules[:8]) + (" ..." if len(count.uncalled_modules) > 8 else "")
        lines.append(f"\nmodules never called through __call__ ({len(count.uncalled_modules)}): {shown}")
    return "\n".join(lines)


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
