"""``groupconv predict``: time (and energy) per frame of a model on a calibrated platform.

Examples::

    groupconv predict mobilenet_v1:e2gc:32 --input-shape 1 3 160 160 --platform platform.json
    groupconv predict models.py:build --input-shape 8 3 64 64 --platform platform.json --json
    groupconv predict torchvision.models:resnet18 --input-shape 1 3 224 224 --platform p.json \\
        --figure out/roofline
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import warnings
from pathlib import Path

from ..errors import GroupConvError
from ._common import positive_int_arg, print_json

__all__ = ["register", "run", "load_model"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predicted time (and energy) per frame of a model on a calibrated platform",
        description="Trace MODEL on the input shape into per-operator counts and price every "
        "operator with the platform's model of its kernel type. MODEL is FILE.py:FACTORY, "
        "package.module:factory, or a catalogue network ARCH:VARIANT:GROUP "
        "(e.g. mobilenet_v1:e2gc:32).",
    )
    parser.add_argument("model", metavar="MODEL")
    parser.add_argument("--input-shape", type=positive_int_arg, nargs="+", required=True, metavar="N",
                        help="input shape, batch first, e.g. 1 3 224 224")
    parser.add_argument("--platform", required=True, metavar="PLATFORM.json")
    parser.add_argument("--mode", default="forward", choices=("forward", "forward_backward"),
                        help="forward (default: eval mode, no gradients) or forward_backward")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--figure", metavar="PREFIX", default=None,
                        help="also write a roofline figure PREFIX.png and PREFIX.svg")
    parser.add_argument("--top", type=positive_int_arg, default=15, help="rows of the op table (default 15)")
    parser.set_defaults(func=run)


def load_model(spec: str):
    """A torch module from FILE.py:FACTORY, package.module:factory or ARCH:VARIANT:GROUP."""
    from ..networks import ARCHITECTURES, build_module

    parts = spec.split(":")
    if parts[0] in ARCHITECTURES:
        if len(parts) != 3:
            raise GroupConvError(f"catalogue model {spec!r} must be ARCH:VARIANT:GROUP, e.g. mobilenet_v1:e2gc:32")
        try:
            group = int(parts[2])
        except ValueError:
            raise GroupConvError(f"model {spec!r}: group {parts[2]!r} is not an integer") from None
        return build_module(parts[0], parts[1], group)
    if len(parts) < 2 or not parts[-1]:
        raise GroupConvError(f"model {spec!r} must be FILE.py:FACTORY, package.module:factory or ARCH:VARIANT:GROUP")
    target, factory = ":".join(parts[:-1]), parts[-1]
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise GroupConvError(f"model file {target!r} does not exist")
        module_spec = importlib.util.spec_from_file_location(f"_groupconv_user_{path.stem}", path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise GroupConvError(f"model file {target!r} failed to import: {type(exc).__name__}: {exc}") from None
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise GroupConvError(f"model module {target!r} cannot be imported: {exc}") from None
    make = getattr(module, factory, None)
    if not callable(make):
        raise GroupConvError(f"model {spec!r}: {target} has no callable {factory!r}")
    try:
        model = make()
    except Exception as exc:
        raise GroupConvError(f"model {spec!r}: {factory}() raised {type(exc).__name__}: {exc}") from None
    from torch import nn

    if not isinstance(model, nn.Module):
        raise GroupConvError(f"model {spec!r}: {factory}() returned {type(model).__name__}, not a torch.nn.Module")
    return model


def run(args: argparse.Namespace) -> int:
    from ..platform import Platform, UnmeasuredKernelWarning, predict

    platform = Platform.load(args.platform)
    model = load_model(args.model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnmeasuredKernelWarning)
        result = predict(platform, model, tuple(args.input_shape), mode=args.mode)
    for w in caught:
        if issubclass(w.category, UnmeasuredKernelWarning):
            print(f"groupconv: warning: {w.message}", file=sys.stderr)
    if args.figure:
        from ..figures.roofline import roofline_figure
        from ..figures._save import save_figure

        fig = roofline_figure(platform, result)
        prefix = Path(args.figure)
        save_figure(fig, prefix.parent if str(prefix.parent) else ".", prefix.name)
    if args.json:
        print_json(result.as_dict())
        return 0
    energy = "n/a (no energy meter)" if result.energy_J is None else f"{result.energy_J * 1e3:.4g} mJ"
    print(f"{args.model} on {platform.metadata.get('device_name', platform.device)}, batch {result.batch}, {result.mode}")
    print(f"predicted time per frame: {result.time_s * 1e3:.4g} ms   energy per frame: {energy}")
    print(f"MACs per frame: {result.macs:,.0f}   bytes per frame: {result.bytes:,.0f}")
    print("time per kernel type:")
    for kernel, t in sorted(result.by_class().items(), key=lambda kv: -kv[1]):
        print(f"  {kernel:<14} {t * 1e3:9.4f} ms  {100 * t / result.time_s:5.1f} %")
    table = result.op_table()
    top = table.sort_values("time_s", ascending=False).head(args.top)
    print(f"slowest {len(top)} of {len(table)} operators:")
    for _, r in top.iterrows():
        print(f"  {r['module'] or '(top)':<28} {r['kernel']:<12} {r['bound']:<7} {r['time_s'] * 1e6:10.1f} us  "
              f"{r['macs']:>14,.0f} MACs")
    return 0
