"""``groupconv figures``: regenerate every figure the package knows."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "figures",
        help="regenerate the papers' figures as PNG, SVG and PDF",
        description="Regenerate every figure the package knows (or the named ones) from "
        "the embedded defaults, as PNG, SVG and PDF, one paper column wide.",
    )
    parser.add_argument("--out", default="figures", help="output folder (default: figures)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="just these figures")
    parser.add_argument("--list", action="store_true", help="list the figure names and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from ..figures import make_all, registry

    if args.list:
        for name in registry():
            print(name)
        return 0
    from threadpoolctl import threadpool_limits

    # The figures' numerics are many small BLAS/LAPACK calls, for which extra BLAS threads
    # only contend with each other (and with any other process): one thread is faster on an
    # idle machine and keeps a busy one from slowing the command down several times.
    with threadpool_limits(limits=1):
        for path in make_all(args.out, args.only, progress=sys.stderr.isatty()):
            print(path)
    return 0
