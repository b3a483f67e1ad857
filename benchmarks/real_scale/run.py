"""ResNet-50 at 224 px: streamed approximability of every eligible conv, GC and BGC, N in {2..32}.

Measures wall time, peak memory (max RSS of each process) and the Gram-forming throughput
against the number of synthetic images, in one process or in several gloo processes
(torch.multiprocessing, localhost), and writes one JSON file per run. A random-weight model:
this measures scale, not accuracy.

    python benchmarks/real_scale/run.py --images 32 --procs 1 --out results/one_32.json
    python benchmarks/real_scale/run.py --images 32 --procs 2 --out results/two_32.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

GROUPS = (2, 4, 8, 16, 32)


class SyntheticImages:
    """``images`` N(0,1) images of 3 x 224 x 224 in batches; batch b is the same wherever it is drawn.

    With ``world`` > 1, rank r takes batches r, r + world, ... (a DistributedSampler-like shard).
    """

    def __init__(self, images: int, batch: int, rank: int = 0, world: int = 1, size: int = 224):
        self.images, self.batch, self.rank, self.world, self.size = images, batch, rank, world, size
        self.indices = list(range((images + batch - 1) // batch))[rank::world]

    def __len__(self):
        return len(self.indices)

    def __iter__(self):
        for b in self.indices:
            g = torch.Generator().manual_seed(1000 + b)
            n = min(self.batch, self.images - b * self.batch)
            yield torch.randn(n, 3, self.size, self.size, generator=g)


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def work(images: int, batch: int, rank: int, world: int, threads: int) -> dict:
    from groupconv.approx.network import approximability_of_model, eligible_convs
    from groupconv.approx.stats import collect_stats
    from groupconv.networks.zoo import resnet50

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = resnet50(224).eval()
    convs = eligible_convs(model)
    data = SyntheticImages(images, batch, rank, world)
    load_before = _load()
    t0 = time.perf_counter()
    stats = collect_stats(model, data, convs, progress=False)
    t1 = time.perf_counter()
    import math

    from groupconv.errors import GroupConvError

    # layers the images determine: more rows (images x positions) than the largest fit's
    # unknowns (BGC with N = 2 sees every input channel: n K unknowns per output channel)
    determined = [name for name, conv in convs.items()
                  if stats[name].rows > conv.in_channels * math.prod(conv.kernel_size)]
    with warnings.catch_warnings(record=True) as caught:  # dead channels of a random-weight net
        warnings.simplefilter("always", RuntimeWarning)
        try:
            table = approximability_of_model(model, None, methods=("gc", "bgc"), groups=GROUPS, stats=stats,
                                             layers=determined)
            error = None
        except GroupConvError as exc:
            table, error = None, str(exc)
    t2 = time.perf_counter()
    return {
        "images": images, "batch": batch, "rank": rank, "world": world, "threads": threads,
        "layers": len(convs), "layers_solved": len(determined),
        "layers_undetermined": [n for n in convs if n not in determined],
        "rows": table.records() if table is not None else [], "error": error,
        "rank_deficient_warnings": len(caught),
        "stats_s": t1 - t0, "solve_s": t2 - t1, "total_s": t2 - t0,
        "gram_flops": stats[None]["flops"], "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "load_before": load_before, "load_after": _load(),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, required=True)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--threads", type=int, help="torch threads per process (default 2 // procs, at least 1)")
    parser.add_argument("--rank", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    threads = args.threads or max(1, 2 // args.procs)
    if args.procs > 1 and args.rank is None:  # launcher: one subprocess per rank, as torchrun would
        port = _free_port()
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, __file__, "--images", str(args.images), "--batch", str(args.batch),
                                   "--procs", str(args.procs), "--threads", str(threads), "--rank", str(r),
                                   "--port", str(port), "--out", f"{args.out}.rank{r}"]) for r in range(args.procs)]
        codes = [p.wait() for p in procs]
        wall = time.perf_counter() - t0
        if any(codes):
            print(f"ranks exited with {codes}", file=sys.stderr)
            return 1
        ranks = [json.loads(Path(f"{args.out}.rank{r}").read_text()) for r in range(args.procs)]
        for r in range(args.procs):
            Path(f"{args.out}.rank{r}").unlink()
        result = {**ranks[0], "wall_s": wall, "peak_rss_bytes_per_rank": [r["peak_rss_bytes"] for r in ranks],
                  "peak_rss_bytes": max(r["peak_rss_bytes"] for r in ranks),
                  "ranks_identical": all(r["rows"] == ranks[0]["rows"] for r in ranks)}
    elif args.procs > 1:
        import torch.distributed as dist

        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(args.port))
        dist.init_process_group("gloo", rank=args.rank, world_size=args.procs)
        try:
            result = work(args.images, args.batch, args.rank, args.procs, threads)
        finally:
            dist.destroy_process_group()
    else:
        t0 = time.perf_counter()
        result = work(args.images, args.batch, 0, 1, threads)
        result["wall_s"] = time.perf_counter() - t0
    result["torch"] = torch.__version__
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    if args.rank is None:
        solve = result["solve_s"]
        print(f"{args.procs} proc x {threads} thr, {args.images} images: stats {result['stats_s']:.1f} s "
              f"({result['gram_flops'] / result['stats_s'] / 1e9:.1f} GFLOP/s), "
              f"solve {solve:.1f} s ({result['layers_solved']}/{result['layers']} layers), wall {result['wall_s']:.1f} s, "
              f"peak RSS {result['peak_rss_bytes'] / 2**30:.2f} GiB, load {result['load_after']}"
              + ("" if result["error"] is None else f"; {result['error']}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
