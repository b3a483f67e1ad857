"""Sequential against independent conversion on the digits study's trained networks.

For every seed and (method, N) of ``StudyConfig()`` (the networks of ``run.py``, trained the
same way), convert the three convs two ways with ``convert_model``:

* independent (the default): each layer fitted on the inputs the *original* network feeds it;
* sequential (``sequential=True``): layer by layer, each fitted on the inputs the *already
  converted* network feeds it, against the original layer's output on the original network;

then measure the network's relative output error on the test images (logits), the test error
right after conversion, and the test error after the same 3-epoch fine-tune (same seed).

    PYTHONPATH=src python benchmarks/real_data/sequential.py      # writes sequential.csv
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    import torch

    from groupconv.approx.network import convert_model
    from groupconv.approx.study import StudyConfig, digits_cnn, error_rate, load_digits, train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "sequential.csv"))
    args = parser.parse_args(argv)
    config = StudyConfig()
    torch.set_num_threads(1)
    rows = []
    start = time.perf_counter()
    for seed in config.seeds:
        torch.manual_seed(seed)
        x_tr, y_tr, x_te, y_te = load_digits(seed, config.test_fraction)
        base = digits_cnn(config.widths)
        train(base, x_tr, y_tr, config.epochs, config.lr, seed)
        base.eval()
        with torch.no_grad():
            ref = base(x_te).double()
        for method, g in config.variants():
            for sequential in (False, True):
                model, report = convert_model(base, x_tr, method=method, groups=g, layers=["3", "7", "10"],
                                              sequential=sequential, progress=False)
                model.eval()
                with torch.no_grad():
                    out = model(x_te).double()
                rel = float(((out - ref) ** 2).sum() / (ref**2).sum())
                err = error_rate(model, x_te, y_te)
                train(model, x_tr, y_tr, config.finetune_epochs, config.finetune_lr, seed + 1000)
                rows.append(dict(seed=seed, method=method, groups=g, sequential=sequential,
                                 layer_rel_output_E=";".join(f"{v:.5f}" for v in report.rel_output_E),
                                 network_rel_output_error=rel, test_error=err,
                                 test_error_finetuned=error_rate(model, x_te, y_te)))
                print(rows[-1], flush=True)
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
