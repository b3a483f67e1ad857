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
    from groupconv.approx.solvers import GramSolver, _blas_limits

    with _blas_limits():  # as approximability() runs it
        solver = GramSolver(gram_from_data(x, w.shape[3:], padding), w)
        return [solver.solve(layout).errors for layout in layouts]


def _reference(x, w, layouts, padding, progress):
    from groupconv.approx.solvers import reference_errors

    steps = layouts
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(layouts, desc="reference", unit="structure")
    return [reference_errors(x, w, layout, padding) for layout in steps]


README_CALL = (
    "approx --in-channels 256 --out-channels 256 --kernel 3 --length 32 --data-samples 256 "
    "--weight-samples 8 --groups 4 8 16 32 64 --dist normal --method gc bgc --seed 0 --json"
).split()


def _process_time(args, repeats, env=None) -> list[float]:
    """Wall times of ``python -m groupconv ARGS`` as a whole process (imports included)."""
    import subprocess

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "groupconv", *args], check=True,
                       stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - start)
    return times


def _busy():
    """Another process keeping one core busy (the 'machine busy with another process' case)."""
    import subprocess

    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _process_report(repeats: int, figures: bool) -> dict:
    """The README's CLI call (and `groupconv figures`) idle and next to a busy process."""
    out = {}
    tmp = tempfile.mkdtemp()
    calls = {"cli": README_CALL}
    if figures:
        calls["figures"] = ["figures", "--out", tmp]
    for name, call in calls.items():
        idle = _process_time(call, repeats)
        busy_proc = _busy()
        try:
            time.sleep(0.5)
            busy = _process_time(call, repeats)
        finally:
            busy_proc.kill()
            busy_proc.wait()
        out[name] = {"idle_s": idle, "busy_s": busy, "idle_best_s": min(idle),
                     "busy_best_s": min(busy), "busy_over_idle": min(busy) / min(idle)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = m = 64, S = 64, S_w = 4")
    parser.add_argument("--repeats", type=int, default=3, help="fast-solver repeats (best of)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--process-repeats", type=int, default=5,
                        help="whole-process runs of the README call (best of), idle and busy")
    parser.add_argument("--no-figures", action="store_true", help="skip timing `groupconv figures`")
    parser.add_argument("--only-process", action="store_true",
                        help="only the whole-process timings (no reference solver)")
    args = parser.parse_args(argv)

    if args.only_process:
        report = {"process": _process_report(args.process_repeats, not args.no_figures),
                  "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()}}
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0

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
        "process": _process_report(args.process_repeats, not args.no_figures),
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
