"""``groupconv fit``: fit an energy model to recorded runs or to the E2GC paper's tables."""

from __future__ import annotations

import argparse

from ._common import deprecated_alias, float_arg, positive_int_arg, print_json

# Kept in sync with groupconv.fit (not imported here so that building the parser stays cheap).
_MODELS = ("paper", "macs", "gpu")
_BEST = "gpu"
_TABLES = ("e2gc-mobilenet", "e2gc-resnext")
_PLATFORMS = ("P100", "P4000")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="fit an energy model (platform constants) to runs or to the paper's tables",
        description="Fit an energy-per-frame model to a runs CSV (measurement schema: layer rows "
        "with in_channels, out_channels, kernel, height, width, groups, batch, energy_J per frame; "
        "network rows with arch, variant, group, batch, energy_J) or to the E2GC paper's Table III/IV "
        "measurements on one GPU. Without energy (a CPU run) it fits time_s and says so; bgc rows are "
        "the grouped conv plus the mean conv; layer and network rows are fitted one kind at a time "
        "(--workload). Prints the fit report, or JSON with --json.",
    )
    parser.add_argument("runs", nargs="?", metavar="RUNS.csv", help="runs file to fit")
    parser.add_argument("--paper-table", choices=_TABLES, help="fit the paper's table instead of a runs file")
    parser.add_argument("--gpu", choices=_PLATFORMS, help="GPU of the paper's table (with --paper-table)")
    deprecated_alias(parser, "--platform", "--gpu", dest="gpu", choices=_PLATFORMS)
    parser.add_argument("--model", default=_BEST, choices=_MODELS,
                        help=f"energy model (default: {_BEST}, the best on the paper's data; paper = the paper's law)")
    parser.add_argument("--alpha", type=float_arg, help="pin alpha in (0, 1] to report c (paper model only)")
    parser.add_argument("--loss", default="relative", choices=("relative", "log"), help="residuals (default: relative)")
    parser.add_argument("--bootstrap", type=positive_int_arg, metavar="N",
                        help="add 95%% residual-bootstrap intervals from N refits")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument("--mode", help="runs file: keep rows of this mode (forward, forward_backward)")
    parser.add_argument("--dtype", help="runs file: keep rows of this dtype")
    parser.add_argument("--device", help="runs file: keep rows of this device")
    parser.add_argument("--threads", type=positive_int_arg, help="runs file: keep rows measured at this thread count")
    parser.add_argument("--workload", choices=("layer", "network"),
                        help="runs file: fit only layer rows or only network rows (a file with both needs it)")
    parser.add_argument("--quantity", choices=("energy_J", "time_s"),
                        help="runs file: what to fit (default: energy_J if measured, else time_s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import GroupConvError
    from ..fit import fit_model, get_model, load_runs, optimum_table, paper_dataset

    if args.runs is not None and args.paper_table is not None:
        raise GroupConvError("give either RUNS.csv or --paper-table, not both")
    if args.runs is None and args.paper_table is None:
        raise GroupConvError("nothing to fit: give RUNS.csv or --paper-table with --gpu")
    if args.paper_table is not None:
        if args.gpu is None:
            raise GroupConvError(f"--paper-table {args.paper_table} needs --gpu ({', '.join(_PLATFORMS)})")
        for option in ("mode", "dtype", "device", "workload", "quantity", "threads"):
            if getattr(args, option) is not None:
                raise GroupConvError(f"--{option} applies to a runs file, not to --paper-table")
        data = paper_dataset(args.paper_table, args.gpu)
    else:
        if args.gpu is not None:
            raise GroupConvError("--gpu applies to --paper-table; filter a runs file with --device")
        data = load_runs(args.runs, mode=args.mode, dtype=args.dtype, device=args.device,
                         workload=args.workload, quantity=args.quantity, threads=args.threads)

    model = get_model(args.model, alpha=args.alpha)
    result = fit_model(model, data, loss=args.loss, bootstrap=args.bootstrap or 0, seed=args.seed,
                       progress=bool(args.bootstrap) and not args.json)
    has_optima = {"variant", "group"} <= set(data.info.columns) and data.info["variant"].notna().any()
    optima = optimum_table(result) if has_optima else None
    if args.json:
        out = result.as_dict()
        if optima is not None:
            out["optima"] = optima.to_dict("records")
        print_json(out)
        return 0
    print(result.fit_report())
    if optima is not None and len(optima):
        print("[[Optima]] lowest EPF per batch and family: observed vs model (in-sample, leave-one-out)")
        print(optima.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0
