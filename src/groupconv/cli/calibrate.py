"""``groupconv calibrate``: measure this machine into a platform file.

Examples::

    groupconv calibrate --device cpu --out platform.json --budget-s 240
    groupconv calibrate --device cuda:0 --out gpu.json
"""

from __future__ import annotations

import argparse

from ._common import float_arg, positive_int_arg

__all__ = ["register", "run"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="measure this machine (roofline, operators, networks) into a platform file",
        description="Measure the roofline constants, a designed set of operator shapes and a few "
        "synthetic networks, fit one time (and energy) model per kernel type, and write the "
        "platform JSON. The measurements go to a runs CSV beside it (x.json -> x.runs.csv); "
        "a calibration stopped half-way resumes from it.",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--out", required=True, metavar="PLATFORM.json", help="platform file to write")
    parser.add_argument("--budget-s", type=float_arg, default=None, metavar="S",
                        help="measurement budget in seconds (default 540: a complete calibration, <= 10 minutes with its networks)")
    parser.add_argument("--threads", type=positive_int_arg, default=None,
                        help="torch CPU threads (default: 1 on a CPU, torch's default on a GPU)")
    parser.add_argument("--dtype", default="float32", help="tensor dtype (default float32)")
    parser.add_argument("--energy", default="auto", choices=("auto", "zeus", "none"),
                        help="energy source (default auto: Zeus where it can read a meter)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the designed operator set")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..platform import DEFAULT_BUDGET_S, calibrate, runs_path_for

    platform = calibrate(
        args.device, args.out, budget_s=DEFAULT_BUDGET_S if args.budget_s is None else args.budget_s,
        threads=args.threads, dtype=args.dtype, energy=args.energy, seed=args.seed,
        progress=None if not args.quiet else False,  # -q: no bar
    )
    print(platform.summary())
    print(_points_line(platform.metadata, args))
    print(f"wrote {args.out} (runs: {runs_path_for(args.out)})")
    return 0


def _points_line(meta: dict, args: argparse.Namespace) -> str:
    """How many points were measured, reused from the runs file, and skipped for the budget."""
    total = meta.get("points_measured", 0)
    resumed = meta.get("points_resumed", 0)
    skipped = meta.get("points_skipped_for_budget", 0)
    planned = meta.get("points_planned", total + skipped)
    text = f"points: {total} of {planned} planned"
    if resumed:
        text += f" ({resumed} resumed from the existing runs file, {total - resumed} measured now)"
    if skipped:
        text += (f"; {skipped} skipped for the {meta.get('budget_s', args.budget_s):g} s budget "
                 "(rerun with a larger --budget-s to add them: the runs file is resumed)")
    return text
