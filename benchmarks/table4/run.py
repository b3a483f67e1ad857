"""BGC paper Table 4: memory and time of GC vs BGC, 3x3 conv 1024 -> 1024 on 7x7 maps.

The paper's setting: input 128 x 1024 x 7 x 7, N = 1 (standard convolution), 2, 4, 8, 16,
one forward and one backward pass, on one GPU. This script measures the same layers
with groupconv's protocol (``groupconv.measure``) into a resumable runs CSV and prints
the table next to the paper's numbers. On a CPU the default batch is 8, not 128 (say so
when you quote the numbers).

    PYTHONPATH=src python benchmarks/table4/run.py                 # CPU, batch 8
    PYTHONPATH=src python benchmarks/table4/run.py --device cuda   # GPU, batch 128

Columns of the printed table (per forward+backward of one batch):

* ``mem_MiB``: peak bytes held by torch's allocator for the layer during one step
  (weights, input, output gradient, activations, gradients, temporaries).
* ``w+x_MiB``: weights + input (+ the group mean x-bar for BGC), the quantity the paper's
  "total memory usage" matches (see README.md).
* ``time_ms``: mean time of one step; ``/dense``: ratio to N = 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: BGC paper Table 4: N -> (GC memory MB, BGC memory MB, GC time ms, BGC time ms).
PAPER = {
    1: (60.50, None, 7.979, None),
    2: (42.50, 75.75, 9.056, 10.467),
    4: (33.50, 48.62, 4.449, 4.790),
    8: (29.00, 37.06, 2.120, 2.648),
    16: (26.75, 31.53, 2.265, 2.557),
}
MIB = 2**20


def analytic_MiB(method: str, channels: int, kernel: int, size: int, groups: int, batch: int) -> float:
    """Weights + input (+ x-bar for BGC) in MiB, float32."""
    weights = channels * channels * kernel * kernel // groups
    x = batch * channels * size * size
    if method == "bgc":
        weights *= 2
        x += batch * (channels // groups) * size * size
    return 4 * (weights + x) / MIB


def main(argv: list[str] | None = None) -> int:
    import torch

    from groupconv.measure import Protocol, layer_workloads, run_campaign

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=None, help="default: 128 on GPU, 8 on CPU")
    parser.add_argument("--groups", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("--size", type=int, default=7)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--energy", default="auto", choices=["auto", "zeus", "none"])
    parser.add_argument("--out", type=Path, default=None, help="runs CSV (default: runs_<device>_B<batch>.csv here)")
    args = parser.parse_args(argv)
    device_kind = "cpu" if args.device == "cpu" else "gpu"
    batch = args.batch or (128 if device_kind == "gpu" else 8)
    out = args.out or HERE / f"runs_{device_kind}_B{batch}.csv"

    work = layer_workloads(
        args.channels, args.channels, 3, args.size, groups=args.groups,
        methods=["dense", "gc", "bgc"], batches=[batch], modes=["forward_backward"],
    )
    run_campaign(
        work, out, protocol=Protocol(trials=args.trials), device=args.device,
        energy=args.energy, threads=args.threads,
    )
    report = table(out, batch, args.channels, args.size)
    print(report)
    (out.with_suffix(".md")).write_text(report + "\n")
    return 0


def table(path: Path, batch: int, channels: int, size: int) -> str:
    """The Table-4 comparison as a markdown table, from a runs CSV."""
    from groupconv.measure import read_runs

    frame = read_runs(path)
    frame = frame[(frame["batch"] == batch) & (frame["in_channels"] == channels) & (frame["height"] == size)]
    dense = frame[frame["method"] == "dense"].iloc[0]
    dense_ms = dense["time_s"] * batch * 1e3
    dense_mem = dense["peak_memory_batch_bytes"] / MIB
    first = frame.iloc[0]
    lines = [
        f"Device: {first['device']} (torch {first['torch_version']}, {first['threads']} thread(s)); "
        f"batch {batch}, {channels} -> {channels} channels, 3x3, {size}x{size}, forward+backward, "
        f"{first['dtype']}; energy source: {first['energy_source']}.",
        "",
        "| N | method | mem_MiB | w+x_MiB | paper MB | time_ms (± sd) | time /dense | mem /dense | paper ms | paper /dense |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in sorted(set(frame["groups"])):
        for method in ("dense", "gc", "bgc"):
            rows = frame[(frame["groups"] == n) & (frame["method"] == method)]
            if rows.empty:
                continue
            row = rows.iloc[0]
            ms = row["time_s"] * batch * 1e3
            sd = row["time_std_s"] * batch * 1e3
            mem = row["peak_memory_batch_bytes"] / MIB
            paper = PAPER.get(int(n), (None,) * 4)
            column = 0 if method in ("dense", "gc") else 1
            paper_mb, paper_ms = paper[column], paper[column + 2]
            paper_ratio = "" if paper_ms is None else f"{paper_ms / PAPER[1][2]:.3f}"
            lines.append(
                f"| {n} | {method} | {mem:.2f} | {analytic_MiB(method, channels, 3, size, int(n), batch):.2f} | "
                f"{'' if paper_mb is None else paper_mb} | {ms:.2f} ± {sd:.2f} | {ms / dense_ms:.3f} | "
                f"{mem / dense_mem:.3f} | {'' if paper_ms is None else paper_ms} | {paper_ratio} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
