"""Benchmark: fast Gram solver vs plain lstsq reference, and the full BGC Fig. 1 + 2 sweep.

Run from the repository root::

    PYTHONPATH=src python benchmarks/approx/bench_approx.py            # §5.1 configuration
    PYTHONPATH=src python benchmarks/approx/bench_approx.py --quick    # smaller, ~seconds

What it measures, in one run:

1. Both solvers on the same data and weights of the BGC paper's §5.1 layer (m = n = 256,
   K = 3, D = 32, S = 256 data samples, S_w = 8 weight samples, N = 4..64, GC and BGC):
   wall time of each (the fast one includes building the Gram matrix; best of 3), their
   ratio, and the largest relative difference of the per-sample errors.
2. The wall time of the whole Fig. 1 + Fig. 2 sweep (both data distributions, data
   sampling included), and of rendering and saving both figures.

Timings depend on the BLAS threads: set OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) before
starting Python to pin them. The machine's load average is printed so that noisy runs
can be recognised.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np


def _fast(x, w, layouts, padding):
    from groupconv.approx.data import gram_from_data
    from groupconv.approx.solvers import GramSolver

    solver = GramSolver(gram_from_data(x, w.shape[3:], padding), w)
    return [solver.solve(layout).errors for layout in layouts]


def _reference(x, w, layouts, padding, progress):
    from groupconv.approx.solvers import reference_errors

    steps = layouts
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(layouts, desc="reference", unit="structure")
    return [reference_errors(x, w, layout, padding) for layout in steps]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = m = 64, S = 64, S_w = 4")
    parser.add_argument("--repeats", type=int, default=3, help="fast-solver repeats (best of)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    from groupconv.approx.measure import ApproxConfig
    from groupconv.approx.structures import structure

    config = ApproxConfig()
    if args.quick:
        config = ApproxConfig(in_channels=64, out_channels=64, data_samples=64, weight_samples=4)
    groups = (4, 8, 16, 32, 64)
    x, w = config.sample_data(), config.sample_weights()
    layouts = [
        structure(m, g).layout(config.in_channels, config.out_channels)
        for m in ("gc", "bgc")
        for g in groups
    ]

    fast_times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        fast = _fast(x, w, layouts, config.padding)
        fast_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    ref = _reference(x, w, layouts, config.padding, not args.no_progress)
    ref_time = time.perf_counter() - start
    rel_diff = max(float(np.max(np.abs(a - b) / b)) for a, b in zip(fast, ref))

    # The full Fig. 1 + 2 sweep: both distributions, sampling included (fresh cache).
    import matplotlib

    matplotlib.use("Agg")
    from groupconv.figures import save_figure
    from groupconv.figures.bgc_approx import make_fig1, make_fig2, paper_sweeps

    sweep_config = config
    paper_sweeps.cache_clear()
    start = time.perf_counter()
    paper_sweeps(sweep_config)
    sweep_time = time.perf_counter() - start
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        save_figure(make_fig1(sweep_config), tmp, "bgc_fig1")
        save_figure(make_fig2(sweep_config), tmp, "bgc_fig2")
    render_time = time.perf_counter() - start

    report = {
        "config": {
            "in_channels": config.in_channels,
            "out_channels": config.out_channels,
            "kernel": config.kernel,
            "length": config.input_shape,
            "data_samples": config.data_samples,
            "weight_samples": config.weight_samples,
            "groups": groups,
            "methods": ["gc", "bgc"],
        },
        "fast_s": min(fast_times),
        "fast_all_s": fast_times,
        "reference_s": ref_time,
        "speedup": ref_time / min(fast_times),
        "max_rel_diff": rel_diff,
        "fig_sweep_s": sweep_time,
        "fig_render_save_s": render_time,
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        },
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    print(
        f"fast {min(fast_times):.2f} s, reference {ref_time:.1f} s: {report['speedup']:.0f}x; "
        f"max rel diff {rel_diff:.1e}; Fig. 1+2 sweep {sweep_time:.2f} s (+{render_time:.2f} s to draw and save)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
