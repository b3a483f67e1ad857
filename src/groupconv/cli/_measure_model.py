"""``groupconv measure model MODEL``: time any model spec that ``predict`` takes.

The same MODEL specs (``FILE.py:FACTORY``, ``package.module:factory``, a zoo or a
catalogue name with ``--variant``/``--groups``), ``--input-shape`` and ``--input-dtype``
as ``predict``, so a prediction and a measurement sit side by side::

    groupconv predict my_model.py:build --input-shape 1,3,64,64 --platform platform.json
    groupconv measure model my_model.py:build --input-shape 1,3,64,64

It runs the measurement protocol of ``measure layer/network`` (warm-up, windows of at
least ``--min-window`` s, ``--trials`` windows; see docs/measure.md) on real tensors and
prints time and peak memory per frame; it writes no runs file.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import GroupConvError
from ._common import cli_model, deprecated_alias, model_inputs, nonnegative_int_arg, positive_float_arg, positive_int_arg, shape_arg

__all__ = ["add_model_command"]


def add_model_command(sub) -> None:
    """Register ``measure model`` on the ``measure`` subparsers ``sub``."""
    p = sub.add_parser("model", help="any MODEL that predict takes (FILE.py:FACTORY, module:factory, zoo, catalogue)",
                       description="Time MODEL on real tensors of --input-shape with the measurement "
                       "protocol of measure layer/network; prints time and peak memory per frame "
                       "(writes no runs file). The counterpart of groupconv predict.")
    p.add_argument("model", metavar="MODEL", help="FILE.py:FACTORY, package.module:factory, a zoo or catalogue name")
    p.add_argument("--variant", metavar="{e2gc,fggc}", help="catalogue networks: e2gc or fggc")
    p.add_argument("--groups", dest="group", type=positive_int_arg, metavar="N",
                   help="catalogue networks: G (e2gc) or g (fggc)")
    deprecated_alias(p, "--group", "--groups", dest="group", type=positive_int_arg)
    p.add_argument("--input-shape", required=True, metavar="D0,D1,...", type=shape_arg,
                   help="input shape, batch first, e.g. 1,3,224,224 (frames = the batch)")
    p.add_argument("--input-dtype", default="float32", metavar="DTYPE",
                   help="dtype of the input: float32 (default), int64 (token ids) ...")
    p.add_argument("--mode", choices=("forward", "forward_backward"), default="forward",
                   help="forward (default, as predict: eval mode, no gradients) or forward_backward")
    p.add_argument("--device", default="cpu", metavar="DEV", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--threads", type=positive_int_arg, default=None,
                   help="torch CPU threads (default: 1 on a CPU, as calibrate; torch's default on a GPU)")
    p.add_argument("--trials", type=positive_int_arg, default=5, help="timed windows (default 5)")
    p.add_argument("--warmup", type=nonnegative_int_arg, default=3, help="warm-up steps (default 3)")
    p.add_argument("--min-window", type=positive_float_arg, default=0.1,
                   help="shortest timed window in seconds (default 0.1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_model)


def run_model(args: argparse.Namespace) -> int:
    import torch

    from ..measure.protocol import Protocol, measure

    model = cli_model(args)
    x = model_inputs([args.input_shape], args.input_dtype)
    if not torch.is_tensor(x):
        x = torch.randn(x)
    else:
        x = x[0]
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise GroupConvError(f"--device {args.device!r} is not a torch device (cpu, cuda, cuda:N)") from None
    previous = torch.get_num_threads()
    threads = args.threads if args.threads is not None else (1 if device.type == "cpu" else None)
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        model = model.to(device)
        x = x.to(device)
        model.train(args.mode == "forward_backward")
        protocol = Protocol(mode=args.mode, warmup=args.warmup, trials=args.trials, min_window_s=args.min_window)
        try:
            result = measure(model, x, protocol)
        except (RuntimeError, TypeError, ValueError) as exc:
            text = str(exc).strip().splitlines()
            raise GroupConvError(f"model {args.model!r} on input {tuple(args.input_shape)} raised "
                                 f"{type(exc).__name__}: {text[0] if text else ''}") from None
    finally:
        torch.set_num_threads(previous)
    out = {"model": args.model, "input_shape": list(args.input_shape), "input_dtype": args.input_dtype,
           "mode": args.mode, "device": str(device), "threads": threads or previous, **result.as_dict()}
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    peak = ("not measured" if result.peak_memory_bytes is None
            else f"{result.peak_memory_bytes / 2**20:.4g} MiB/frame")
    print(f"{args.model} on {'x'.join(map(str, args.input_shape))} {args.input_dtype}, {args.mode}, "
          f"{device} ({out['threads']} thread(s)):")
    print(f"  time   {result.time_s * 1e3:.4g} ms/frame +- {result.time_std_s * 1e3:.2g} ms "
          f"(mean of {result.trials} windows of {result.repeats} step(s) of batch {result.batch})")
    print(f"  memory {peak} (peak above the weights and inputs)")
    return 0
