"""``groupconv approx``: approximability of GC and BGC (BGC paper Eq. 5.1, 5.3) over N.

Example (the BGC paper's §5.1 layer)::

    groupconv approx --in-channels 256 --out-channels 256 --kernel 3 --length 32 \\
        --data-samples 256 --weight-samples 8 --groups 4 8 16 32 64 --dist normal \\
        --method gc bgc --seed 0 --json

With ``--json`` it prints a JSON list with one object per (method, N); see
``docs/approx.md`` for every key. Without it, a table and the fitted slopes.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import GroupConvError
from ._common import positive_int_arg, print_json

__all__ = ["register", "run", "LEGEND"]


def _padding_arg(text: str):
    """``same``/``valid``/``circular`` or a non-negative int (checked by the library)."""
    try:
        return int(text)
    except ValueError:
        return text


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "approx",
        help="approximability E and Rel.E of GC/BGC vs N (BGC paper Eq. 5.1, 5.3)",
        description="Measure how well group convolution (GC) and balanced group convolution "
        "(BGC) approximate a dense conv with He-initialised weights: E (Eq. 5.1) and Rel.E "
        "(Eq. 5.3) with an exact least-squares inner minimum, next to the bounds of "
        "Theorems 3.5/3.6 and the exact expectation.",
    )
    parser.add_argument("--in-channels", type=positive_int_arg, default=None,
                        help="n (default 256; with --data, the data's channels)")
    parser.add_argument("--out-channels", type=positive_int_arg, default=256, help="m (default 256)")
    parser.add_argument(
        "--kernel", type=positive_int_arg, nargs="+", default=[3], metavar="K",
        help="kernel size: one int (1-D, or K x K with 2-D inputs) or two (2-D); default 3",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--length", type=positive_int_arg, help="1-D input length D (default 32)")
    size.add_argument("--size", type=positive_int_arg, nargs=2, metavar=("H", "W"), help="2-D input size")
    parser.add_argument("--padding", type=_padding_arg, default="same",
                        help="same (zeros, default), valid, circular, or an int")
    parser.add_argument("--data-samples", type=positive_int_arg, default=256, help="S (default 256)")
    parser.add_argument("--weight-samples", type=positive_int_arg, default=8, help="S_w (default 8)")
    parser.add_argument("--groups", type=positive_int_arg, nargs="+", default=[4, 8, 16, 32, 64],
                        metavar="N", help="numbers of groups (default 4 8 16 32 64)")
    parser.add_argument("--method", nargs="+", default=["gc", "bgc"], metavar="METHOD",
                        help="gc and/or bgc (default both)")
    parser.add_argument("--dist", default="normal", help="data distribution: normal (N(0,1)) or uniform (U(-1,1))")
    parser.add_argument("--init", default="he_normal", help="weights: he_normal (default) or he_uniform")
    parser.add_argument("--data", metavar="FILE.npy",
                        help="use these data (S, n, D) or (S, n, H, W) instead of random ones")
    parser.add_argument("--solver", default="gram", help="gram (fast, default) or reference (plain lstsq)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per (method, N)")
    parser.add_argument("--errors", action="store_true", help="with --json: include the per-weight-sample errors")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: when stderr is a terminal)")
    parser.set_defaults(func=run)


def _load(path: str):
    import numpy as np

    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise GroupConvError(f"cannot read {path!r} as a .npy array: {exc}".split("\n")[0]) from None
    if not isinstance(array, np.ndarray):  # np.load opens any zip (.npz, a torch .pt) as an archive
        array.close()
        raise GroupConvError(f"cannot read {path!r} as a .npy array: it is a zip archive (.npz or a torch .pt file)")
    if not np.issubdtype(array.dtype, np.number):
        raise GroupConvError(f"{path!r}: a numeric array expected, got dtype {array.dtype}")
    return array


def run(args: argparse.Namespace) -> int:
    from ..approx.data import as_kernel
    from ..approx.measure import ApproxConfig, approximability

    if args.errors and not args.json:
        raise GroupConvError("--errors applies to the --json output only")
    kernel = as_kernel(tuple(args.kernel))
    if len(kernel) == 2 and args.length is not None:
        raise GroupConvError(
            f"--kernel {kernel[0]} {kernel[1]} is 2-D but --length {args.length} is a 1-D input; "
            f"use --size H W"
        )
    data = _load(args.data) if args.data else None
    in_channels = 256 if args.in_channels is None else args.in_channels
    if data is not None and data.ndim >= 3:
        # the data fix n: a different --in-channels is a conflict, not something to override
        if args.in_channels is not None and args.in_channels != data.shape[1]:
            raise GroupConvError(
                f"--in-channels {args.in_channels} conflicts with --data {args.data}, whose samples have "
                f"{data.shape[1]} channels (shape {tuple(data.shape)}); leave --in-channels out"
            )
        in_channels = int(data.shape[1])
    two_d = args.size is not None or (data is not None and data.ndim == 4)
    if two_d and len(kernel) == 1:
        kernel = kernel * 2  # "--kernel 3" with 2-D inputs means 3 x 3
    if args.size is not None:
        shape = tuple(args.size)
    elif args.length is not None:
        shape = args.length
    else:
        shape = 32 if len(kernel) == 1 else (32, 32)
    config = ApproxConfig(
        in_channels=in_channels,
        out_channels=args.out_channels,
        kernel=kernel,
        input_shape=shape,
        data_samples=args.data_samples,
        weight_samples=args.weight_samples,
        dist=args.dist,
        init=args.init,
        padding=args.padding,
        seed=args.seed,
    )
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    sweep = approximability(
        config,
        groups=args.groups,
        methods=args.method,
        data=data,
        solver=args.solver,
        progress=progress,
    )
    if args.json:
        print_json(sweep.records(errors=args.errors))
    else:
        print(sweep.table())
        print(LEGEND)
    return 0


#: What the table's columns mean (docs/approx.md has the derivations).
LEGEND = """\
columns: E = Eq. 5.1's error (mean over weight samples, +- its standard error);
  rel_E = Eq. 5.3, E / (mean ||W||^2 x mean ||x||^2);
  expected = exact E[rel_E] for this configuration (padding and finite-sample bias included);
  population = exact rel_E for white data, infinite samples, no padding: (1-1/N)/n (gc), (1-2/N)/n (bgc);
  bound_iid = Theorems 3.5/3.6 under Assumptions 3.1 + 3.2: K(1-1/N)/n (gc), K(1-1/N)^2/n (bgc);
  bound_thm = the same under Assumption 3.1 only: K(1-1/N)^2 (gc), K(1-1/N)^3 (bgc), not divided
    by n, so it can exceed 1 (a valid but loose bound on rel_E);
  lost out = fraction of the dense layer's output energy the grouped layer cannot reproduce (1 - R^2)"""
