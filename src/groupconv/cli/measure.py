"""``groupconv measure layer|network|paper``: time, energy and memory of real torch convolutions.

Examples::

    groupconv measure layer --in-channels 64 --out-channels 64 --kernel 3 --size 14 \\
        --groups 2 4 8 16 --method gc bgc --batch 1 4 --out runs.csv
    groupconv measure network mobilenet_v1 --variant e2gc --groups 1 2 4 8 16 32 \\
        --batch 1 4 16 --device cuda --out runs.csv
    groupconv measure paper --device cuda --out runs.csv   # all of Tables III and IV

Rows are appended to ``--out`` as they are measured; running the same command again
resumes an interrupted campaign. torch is imported only when a command runs.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import GroupConvError
from ._measure_model import add_model_command
from ..vocab import ARCHITECTURES, FLOAT_DTYPES, LAYER_METHODS, VARIANTS
from ._common import (
    deprecated_alias,
    int_at_least,
    nonnegative_float_arg,
    nonnegative_int_arg,
    positive_float_arg,
    positive_int_arg,
)

_METHODS = LAYER_METHODS
_MODES = ("forward", "forward_backward")
_ENERGY = ("auto", "zeus", "nvidia-smi-log", "none")
_DTYPES = FLOAT_DTYPES
_VARIANTS = VARIANTS
_ARCHS = ARCHITECTURES
#: Smallest input side the catalogue networks accept (they downsample by 32).
_MIN_IMAGE = 32


def _add_common(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``layer`` and ``network``."""
    parser.add_argument("--batch", nargs="+", type=positive_int_arg, default=None, metavar="B",
                        help="batch sizes (default: layer 1, network 1 4 16)")
    parser.add_argument("--mode", nargs="+", choices=_MODES, default=["forward_backward"],
                        help="forward only, or one forward + one backward pass (default; E2GC's EPF)")
    parser.add_argument("--out", required=True, metavar="CSV",
                        help="runs CSV to append to (resumed if it exists)")
    parser.add_argument("--device", default="cpu", metavar="DEV", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--dtype", choices=_DTYPES, default="float32",
                        help="tensor dtype: %(choices)s (default %(default)s)")
    parser.add_argument("--energy", choices=_ENERGY, default="auto",
                        help="energy source: auto (Zeus if it can read NVML/RAPL, else none), "
                        "zeus, nvidia-smi-log (needs --power-log) or none")
    parser.add_argument("--power-log", metavar="CSV",
                        help="nvidia-smi power log to integrate (with --energy nvidia-smi-log)")
    parser.add_argument("--start-nvidia-smi", action="store_true",
                        help="with --energy nvidia-smi-log: start nvidia-smi writing --power-log")
    parser.add_argument("--log-interval-ms", type=positive_int_arg, default=100,
                        help="nvidia-smi logging interval (default 100)")
    parser.add_argument("--trials", type=positive_int_arg, default=5, help="timed windows (default 5)")
    parser.add_argument("--warmup", type=nonnegative_int_arg, default=3,
                        help="warm-up steps, 0 for none (default 3)")
    parser.add_argument("--warmup-seconds", type=nonnegative_float_arg, default=0.25,
                        help="minimum warm-up time in seconds, 0 for none (default 0.25)")
    parser.add_argument("--min-window", type=positive_float_arg, default=0.1,
                        help="shortest timed window in seconds (default 0.1)")
    parser.add_argument("--window-factor", type=positive_float_arg, default=20.0,
                        help="windows last this many energy-counter update periods (default 20)")
    parser.add_argument("--idle-seconds", type=positive_float_arg, default=None,
                        help="idle-power measurement before the campaign (default: one window, >= 1 s)")
    parser.add_argument("--no-cudnn-benchmark", action="store_true",
                        help="run with torch.backends.cudnn.benchmark = False")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory step")
    parser.add_argument("--threads", type=positive_int_arg, default=None,
                        help="torch CPU threads (default: 1 on a CPU, torch's default on a GPU)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: when stderr is a terminal)")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "measure",
        help="measure time, energy and peak memory of conv layers or networks",
        description="Measure time, energy and peak memory per frame of real torch "
        "convolutions and append one row per configuration to a runs CSV.",
    )
    sub = parser.add_subparsers(dest="what", metavar="WHAT")
    sub.required = True

    layer = sub.add_parser("layer", help="one conv layer as dense, GC, depthwise or BGC",
                           description="Measure one conv layer (stride 1, 'same' padding) "
                           "in the chosen forms and numbers of groups.")
    layer.add_argument("--in-channels", type=positive_int_arg, required=True, metavar="C_IN",
                       help="input channels (required)")
    layer.add_argument("--out-channels", type=positive_int_arg, required=True, metavar="C_OUT",
                       help="output channels (required)")
    layer.add_argument("--kernel", type=positive_int_arg, default=3, metavar="K",
                       help="kernel side, K x K (default 3)")
    layer.add_argument("--size", type=positive_int_arg, required=True, metavar="H",
                       help="input height = width (required)")
    layer.add_argument("--groups", nargs="+", type=positive_int_arg, default=[1], metavar="N",
                       help="numbers of groups N for gc and bgc; each must divide C_IN and C_OUT "
                       "(default 1; dense always uses 1, dw C_IN)")
    layer.add_argument("--method", nargs="+", choices=_METHODS, default=["gc", "bgc"],
                       help="layer forms: dense, gc (group conv), dw (depthwise), bgc (balanced "
                       "group conv) (default: gc bgc)")
    _add_common(layer)
    layer.set_defaults(func=run)

    network = sub.add_parser("network", help="a catalogue network (MobileNet-V1, ResNeXt-50)",
                             description="Measure a catalogue network in one variant for "
                             "several group settings.")
    network.add_argument("arch", metavar="ARCH", help="mobilenet_v1 or resnext50")
    network.add_argument("--variant", required=True, choices=_VARIANTS,
                         help="e2gc (constant channels per group: --groups is G) or fggc "
                         "(constant number of groups: --groups is g)")
    network.add_argument("--groups", dest="group", nargs="+", type=positive_int_arg, metavar="G",
                         help="group settings: G for e2gc, g for fggc (required)")
    deprecated_alias(network, "--group", "--groups", dest="group", nargs="+", type=positive_int_arg)
    network.add_argument("--size", dest="image_size", type=int_at_least(_MIN_IMAGE), default=224, metavar="S",
                         help="input height = width (default 224, the paper's)")
    deprecated_alias(network, "--image-size", "--size", dest="image_size", type=int_at_least(_MIN_IMAGE))
    _add_common(network)
    network.set_defaults(func=run)

    paper = sub.add_parser("paper", help="every network of E2GC Tables III and IV (the EPF campaign)",
                           description="Measure every MobileNet-V1 and ResNeXt-50 variant of the "
                           "E2GC paper's Tables III and IV at batch sizes 1, 4 and 16.")
    paper.add_argument("--arch", nargs="+", default=None, help="only these architectures")
    paper.add_argument("--size", dest="image_size", type=int_at_least(_MIN_IMAGE), default=224, metavar="S",
                       help="input height = width (default 224, the paper's)")
    deprecated_alias(paper, "--image-size", "--size", dest="image_size", type=int_at_least(_MIN_IMAGE))
    _add_common(paper)
    paper.set_defaults(func=run)

    add_model_command(sub)  # measure model MODEL: what predict takes, timed


def _source(args: argparse.Namespace):
    from ..errors import GroupConvError
    from ..measure.energy import NvidiaSmiLogSource

    if args.energy != "nvidia-smi-log":
        if args.power_log or args.start_nvidia_smi:
            raise GroupConvError("--power-log and --start-nvidia-smi need --energy nvidia-smi-log")
        return args.energy
    if not args.power_log:
        raise GroupConvError("--energy nvidia-smi-log needs --power-log CSV")
    index = int(args.device.split(":")[1]) if args.device.startswith("cuda:") else 0
    if args.start_nvidia_smi:
        return NvidiaSmiLogSource.start(args.power_log, interval_ms=args.log_interval_ms, gpu_index=index)
    return NvidiaSmiLogSource(args.power_log, interval_ms=args.log_interval_ms, gpu_index=index)


def run(args: argparse.Namespace) -> int:
    from ..measure.campaign import run_campaign
    from ..measure.energy import EnergySource
    from ..measure.protocol import Protocol
    from ..measure.workloads import layer_workloads, network_workloads, paper_workloads

    protocol = Protocol(
        warmup=args.warmup,
        warmup_s=args.warmup_seconds,
        trials=args.trials,
        min_window_s=args.min_window,
        window_factor=args.window_factor,
        cudnn_benchmark=not args.no_cudnn_benchmark,
        measure_memory=not args.no_memory,
    )
    if args.what == "layer":
        workloads = layer_workloads(
            args.in_channels, args.out_channels, args.kernel, args.size,
            groups=args.groups, methods=args.method, batches=args.batch or [1], modes=args.mode,
        )
    elif args.what == "network":
        if args.group is None:
            raise GroupConvError("measure network needs --groups (G for e2gc, g for fggc)")
        workloads = network_workloads(
            args.arch, args.variant, args.group, batches=args.batch or [1, 4, 16],
            modes=args.mode, image_size=args.image_size,
        )
    else:
        workloads = paper_workloads(
            batches=args.batch or [1, 4, 16], modes=args.mode, archs=args.arch,
            image_size=args.image_size,
        )
    source = _source(args)
    try:
        report = run_campaign(
            workloads, args.out, protocol=protocol, device=args.device, dtype=args.dtype,
            energy=source, idle_s=args.idle_seconds, threads=args.threads, progress=_progress(args),
        )
    finally:
        if isinstance(source, EnergySource):
            source.close()
    if not args.quiet:
        _summary(report)
    return 0


def _progress(args: argparse.Namespace) -> bool:
    """The progress bar: off with --quiet, else --progress, else only on a terminal."""
    if args.quiet:
        return False
    return sys.stderr.isatty() if args.progress is None else args.progress


def _summary(report) -> None:
    """Print what was done and the rows of this campaign's configurations."""
    import pandas as pd

    mine = report.frame()
    energy = report.energy_note or report.energy_source
    idle = "" if report.idle_power_W is None else f", idle {report.idle_power_W:.1f} W"
    print(
        f"{report.path}: measured {report.measured}, already there {report.skipped} "
        f"(energy: {energy}{idle})"
    )
    columns = ["method", "arch", "variant", "group", "groups", "batch", "mode", "time_s",
               "energy_J", "peak_memory_bytes"]
    table = mine[columns].copy()
    table["time_ms"] = table.pop("time_s") * 1e3
    table["energy_mJ"] = table.pop("energy_J") * 1e3
    table["peak_MiB"] = table.pop("peak_memory_bytes") / 2**20
    empty = [c for c in table.columns if table[c].isna().all() or (table[c].astype(str) == "").all()]
    if (table["method"] == "network").all():
        empty.append("method")  # network rows say "network" there: no information
    table = table.drop(columns=empty)
    with pd.option_context("display.width", 120, "display.max_rows", 200, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False), file=sys.stdout)
