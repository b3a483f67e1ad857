"""Predicted against measured forward time per frame of every Table III/IV catalogue variant.

A first check of a platform file on networks it was not calibrated on (the calibration
uses its own synthetic networks only). Measured with plain torch timing: eval mode,
``torch.inference_mode()``, one torch thread, the fastest of ``--runs`` forwards on this
thread's CPU time (what other processes on a shared machine cannot stretch).

    PYTHONPATH=src python benchmarks/platform/check_catalogue.py data/platforms/cpu-epyc-1t.json \
        --image-size 96 --batch 1 8 --out benchmarks/platform/catalogue_96.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import warnings
from pathlib import Path


def measure_s(model, x, runs: int) -> float:
    import torch

    model.eval()
    with torch.inference_mode():
        for _ in range(2):
            model(x)
        best = float("inf")
        for _ in range(runs):
            start = time.thread_time()
            model(x)
            best = min(best, time.thread_time() - start)
    return best / x.shape[0]


def main(argv: list[str] | None = None) -> int:
    import torch
    from scipy.stats import spearmanr

    from groupconv.networks import ARCHITECTURES, VARIANTS, build_module
    from groupconv.networks.catalogue import PAPER_GROUPS
    from groupconv.platform import Platform, predict

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("platform", type=Path)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    platform = Platform.load(args.platform)
    rows = []
    for arch in ARCHITECTURES:
        for variant in VARIANTS:
            for group in PAPER_GROUPS[variant]:
                model = build_module(arch, variant, group)
                for batch in args.batch:
                    shape = (batch, 3, args.image_size, args.image_size)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        pred = predict(platform, model, shape)
                    meas = measure_s(model, torch.randn(shape), args.runs)
                    rows.append({"arch": arch, "variant": variant, "group": group, "batch": batch,
                                 "image_size": args.image_size, "predicted_time_s": pred.time_s,
                                 "measured_time_s": meas, "error": pred.time_s / meas - 1})
                    print(f"{arch:13s} {variant} {group:3d} B={batch:<2d} predicted {pred.time_s * 1e3:8.3f} ms "
                          f"measured {meas * 1e3:8.3f} ms  {100 * rows[-1]['error']:+6.1f} %", flush=True)
    if args.out:
        with open(args.out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    mape = sum(abs(r["error"]) for r in rows) / len(rows)
    print(f"MAPE {100 * mape:.1f} % over {len(rows)} (network, batch) pairs")
    for arch in ARCHITECTURES:
        for variant in VARIANTS:
            for batch in args.batch:
                sel = [r for r in rows if (r["arch"], r["variant"], r["batch"]) == (arch, variant, batch)]
                rho = spearmanr([r["predicted_time_s"] for r in sel], [r["measured_time_s"] for r in sel])[0]
                print(f"Spearman {arch} {variant} B={batch}: {rho:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
