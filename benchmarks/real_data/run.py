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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the notebook's small variant")
    parser.add_argument("--out", default=str(HERE), help="output folder (default: this folder)")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    from groupconv.approx.study import QUICK, StudyConfig, run_study, study_figure
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
    fig = study_figure(result)
    written = save_figure(fig, out, "real_data")
    if not any(p.suffix == ".pdf" for p in written):
        fig.savefig(out / "real_data.pdf", bbox_inches="tight", metadata={"CreationDate": None})
    print(comparison.T.to_string())
    print(f"study took {result.time_s:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
