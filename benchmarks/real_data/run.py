"""GC vs BGC on a real trained CNN (scikit-learn digits): approximability and test error.

Run from the repository root (about 5 minutes on 2 CPU cores, no download)::

    PYTHONPATH=src python benchmarks/real_data/run.py            # the committed results
    PYTHONPATH=src python benchmarks/real_data/run.py --quick    # the notebook's small variant

Writes into this folder: ``models.csv`` (test errors per seed and conversion), ``layers.csv``
(per-layer approximability on the real activations), ``comparison.csv`` (BGC at N against
GC at N and at N/2, averaged over seeds), ``study.json`` (all of it plus the config) and
the figure ``real_data.{png,svg,pdf}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_figure(result):
    """Two panels at column width: per-layer loss of output energy, and test error vs parameters."""
    from matplotlib.figure import Figure

    layers = result.layers_frame()
    models = result.models_frame()
    fig = Figure(figsize=(3.4, 4.4), layout="constrained")
    ax1, ax2 = fig.subplots(2, 1)
    style = {"gc": dict(color="tab:blue", marker="o", label="GC"),
             "bgc": dict(color="tab:red", marker="s", label="BGC")}
    # (a) mean over layers and seeds of rel_output_E against the conv parameters kept
    dense = layers.groupby(["method", "groups"]).params.sum() / len(result.config.seeds)
    total_dense = float(models[models.method == "dense"].params.iloc[0])
    for method in ("gc", "bgc"):
        sub = layers[layers.method == method].groupby("groups")
        mean, std = sub.rel_output_E.mean(), sub.rel_output_E.std()
        frac = dense.loc[method].reindex(mean.index) / total_dense
        ax1.errorbar(frac, mean, yerr=std, capsize=2, markersize=4, linewidth=1, **style[method])
        white = [1 - 1 / g if method == "gc" else 1 - 2 / g for g in mean.index]
        ax1.plot(frac, white, linestyle=":", color=style[method]["color"], linewidth=0.8)
        for f, m, g in zip(frac, mean, mean.index):
            ax1.annotate(f"N={g}", (f, m), textcoords="offset points", xytext=(3, 3), fontsize=6,
                         color=style[method]["color"])
    ax1.set_xscale("log", base=2)
    ax1.set_xlabel("conv parameters kept (fraction of dense)", fontsize=7)
    ax1.set_ylabel("output energy lost\n(rel_output_E, real activations)", fontsize=7)
    ax1.set_title("(a) per-layer least-squares fit; dotted: white data", fontsize=7)
    ax1.legend(fontsize=7)
    # (b) test error after conversion + short fine-tune against parameters kept
    for method in ("gc", "bgc"):
        sub = models[models.method == method].groupby("groups")
        mean, std = sub.test_error_finetuned.mean() * 100, sub.test_error_finetuned.std() * 100
        frac = sub.params.mean() / total_dense
        ax2.errorbar(frac, mean, yerr=std, capsize=2, markersize=4, linewidth=1, **style[method])
        conv = sub.test_error.mean() * 100
        ax2.plot(frac, conv, linestyle="none", marker=style[method]["marker"], markersize=3,
                 fillstyle="none", color=style[method]["color"])
    base = models[models.method == "dense"].test_error_finetuned.mean() * 100
    ax2.axhline(base, color="black", linewidth=0.8, label="dense")
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_xlabel("conv parameters kept (fraction of dense)", fontsize=7)
    ax2.set_ylabel("test error (%)", fontsize=7)
    ax2.set_title("(b) filled: after fine-tune; open: right after conversion", fontsize=7)
    ax2.legend(fontsize=7)
    for ax in (ax1, ax2):
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the notebook's small variant")
    parser.add_argument("--out", default=str(HERE), help="output folder (default: this folder)")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    from groupconv.approx.study import QUICK, StudyConfig, run_study
    from groupconv.figures import save_figure

    config = QUICK if args.quick else StudyConfig()
    result = run_study(config, progress=sys.stderr.isatty())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result.models_frame().to_csv(out / "models.csv", index=False, float_format="%.6g")
    result.layers_frame().to_csv(out / "layers.csv", index=False, float_format="%.6g")
    comparison = result.comparison()
    comparison.to_csv(out / "comparison.csv", index=False, float_format="%.6g")
    import torch
    import sklearn

    report = result.as_dict()
    report["machine"] = {"python": platform.python_version(), "torch": torch.__version__,
                         "sklearn": sklearn.__version__, "numpy": np.__version__,
                         "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    (out / "study.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    fig = make_figure(result)
    written = save_figure(fig, out, "real_data")
    if not any(p.suffix == ".pdf" for p in written):
        fig.savefig(out / "real_data.pdf", bbox_inches="tight", metadata={"CreationDate": None})
    print(comparison.T.to_string())
    print(f"study took {result.time_s:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
