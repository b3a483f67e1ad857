"""Design benchmark: designed plans against the paper's constant plans, measured on this CPU.

One resumable command (every finished step is cached under ``cache/``; rerun to resume)::

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/design/run.py

Steps: train the digits CNN (``model.py``); build its option table on the platform file
``data/platforms/cpu-epyc-1t.json`` (the project's complete 1-thread calibration of this CPU)
from 256 training images; the exact front; for every constant plan (GC and BGC with one
N, E2GC with one G) a budget ``T`` = its predicted time and the designed plan for ``T``
(least total error with predicted time <= T); every plan converted (least-squares weights
for the 256 images), its test error right after conversion and after the same short
fine-tune (one epoch, Adam 5e-4, seed 0); every plan's forward time at batch 1 measured
best-of-``--rounds`` rounds in shuffled order, each the fastest of 5 windows of >= 40 ms
(1 thread, inference mode, warm).
Writes ``results/`` (plans.csv, budgets.csv, summary.json) and the figures.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from model import CACHE, build, digits  # noqa: E402

from groupconv.approx.study import error_rate, train  # noqa: E402
from groupconv.design import convert_plan, design, plan_from_table  # noqa: E402
from groupconv.design.figure import front_figure  # noqa: E402
from groupconv.platform import Platform  # noqa: E402

PLATFORM = HERE.parents[1] / "data" / "platforms" / "cpu-epyc-1t.json"  # the project's complete CPU calibration
GROUPS = (2, 4, 8, 16, 32)
DESIGN_SAMPLES = 256
EPOCHS = 20
FINETUNE = dict(epochs=1, lr=5e-4, seed=0)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def test_error(model, x, y) -> float:
    return error_rate(model, x, y)


def trained_model(xtr, ytr, xte, yte):
    CACHE.mkdir(exist_ok=True)
    path = CACHE / "model.pt"
    model = build()
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        model = build()
        t = time.perf_counter()
        train(model, xtr, ytr, epochs=EPOCHS, lr=2e-3, seed=0)
        log(f"trained {EPOCHS} epochs in {time.perf_counter() - t:.0f} s, test error {test_error(model, xte, yte):.4f}")
        torch.save(model.state_dict(), path)
    return model.eval()


def key(plan) -> str:
    return ";".join(f"{l['method']}{l['groups']}" for l in plan.layers)


def measure_time(model, x, windows: int = 5, min_window_s: float = 0.04) -> float:
    """Fastest window's time per forward pass (inference mode, warm), in seconds."""
    with torch.inference_mode():
        for _ in range(5):
            model(x)
        t = time.perf_counter()
        model(x)
        per = max(1, int(min_window_s / max(time.perf_counter() - t, 1e-6)))
        best = float("inf")
        for _ in range(windows):
            t = time.perf_counter()
            for _ in range(per):
                model(x)
            best = min(best, (time.perf_counter() - t) / per)
    return best


def spearman(a, b) -> float:
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="timing rounds (best of; shuffled order each)")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    xtr, ytr, xte, yte = digits()
    model = trained_model(xtr, ytr, xte, yte)
    data = xtr[:DESIGN_SAMPLES].clone()
    torch.save(data, CACHE / "design_data.pt")
    dense_err = test_error(model, xte, yte)
    platform = Platform.load(PLATFORM)

    t = time.perf_counter()
    results = {"network_E": design(model, platform, data, groups=GROUPS)}
    table = results["network_E"].table
    results["rel_output_E"] = design(model, platform, data, table=table, aggregate="rel_output_E")
    measured: dict = {}
    log(f"option table + fronts: {time.perf_counter() - t:.1f} s, "
        f"{sum(len(r) for r in table.options)} options, {len(results['network_E'].front)} plans on the front, "
        f"{len(results['network_E'].constant)} constant plans")
    result = results["network_E"]

    # budgets: every constant plan's predicted time; the designed plan of each selection rule:
    # "rescored" (the default: front of the network_E sum, chosen by measured error on the data),
    # and the two additive aggregates alone (chosen on the front by the sum)
    rules = {"rescored": dict(aggregate="network_E", rescore=True),
             "network_E": dict(aggregate="network_E", rescore=False),
             "rel_output_E": dict(aggregate="rel_output_E", rescore=False)}
    t = time.perf_counter()
    budgets = {rule: [(c, design(model, platform, data, table=table, max_time_s=c.time_s, measured_cache=measured,
                                 **kw).chosen) for c in result.constant] for rule, kw in rules.items()}
    log(f"designed plans for {len(result.constant)} budgets x {len(rules)} rules: {time.perf_counter() - t:.1f} s")
    dense_plan = plan_from_table(table, [0] * len(table.layers), "dense")
    plans = {key(dense_plan): dense_plan}
    for rule in rules:
        for c, d in budgets[rule]:
            plans.setdefault(key(c), c)
            plans.setdefault(key(d), d)

    cache_path = CACHE / "plans.json"
    done = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    with torch.no_grad():
        ref_logits = model(xte)
    for i, (k, plan) in enumerate(plans.items()):
        if k in done:
            continue
        t = time.perf_counter()
        new, _ = convert_plan(model, plan, data, table)
        with torch.no_grad():
            logits = new(xte)
        out_err = float(((logits - ref_logits) ** 2).sum() / (ref_logits**2).sum())
        err0 = test_error(new, xte, yte)
        tuned = copy.deepcopy(new)
        train(tuned, xtr, ytr, **FINETUNE)
        err1 = test_error(tuned, xte, yte)
        done[k] = {"test_error_converted": err0, "test_error_finetuned": err1, "logit_rel_error": out_err}
        cache_path.write_text(json.dumps(done, indent=1))
        log(f"plan {i + 1}/{len(plans)} {plan.label}: error {plan.error:.3f}, test error {err0:.4f} -> {err1:.4f} "
            f"({time.perf_counter() - t:.1f} s)")

    # timings: best of rounds, shuffled order each round
    tpath = CACHE / "timings.json"
    timings = json.loads(tpath.read_text()) if tpath.exists() else {}
    x1 = xte[:1].clone()
    models = {}
    for r in range(args.rounds):
        if str(r) in timings and set(timings[str(r)]) >= set(plans):
            continue
        order = list(plans)
        random.Random(r).shuffle(order)
        row = {}
        for k in order:
            if k not in models:
                models[k] = convert_plan(model, plans[k], data, table)[0].eval()
            row[k] = measure_time(models[k], x1)
        timings[str(r)] = row
        tpath.write_text(json.dumps(timings, indent=1))
        log(f"timing round {r + 1}/{args.rounds} done")
    best = {k: min(timings[str(r)][k] for r in range(args.rounds)) for k in plans}

    rows = []
    for k, plan in plans.items():
        choice = [next(i for i, o in enumerate(row) if o.method == l["method"] and o.groups == l["groups"])
                  for row, l in zip(table.options, plan.layers)]
        rows.append({"plan": plan.label, "key": k, "layers": plan.short(), "predicted_time_s": plan.time_s,
                     "measured_time_s": best[k],
                     "network_E_sum": plan_from_table(table, choice, aggregate="network_E").error,
                     "rel_output_E_sum": plan_from_table(table, choice, aggregate="rel_output_E").error,
                     "measured_error": measured.get(plan.key()),
                     "params": plan.params, **done[k]})
    with open(out / "plans.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    brow = []
    for rule in rules:
        for c, d in budgets[rule]:
            kc, kd = key(c), key(d)
            # constant plans within this budget (predicted time <= T)
            within = [p for p in result.constant if p.time_s <= c.time_s]
            best_c0 = min(done[key(p)]["test_error_converted"] for p in within)
            best_c1 = min(done[key(p)]["test_error_finetuned"] for p in within)
            brow.append({
                "rule": rule, "budget": c.label, "max_time_s": c.time_s, "designed": d.short(),
                "designed_predicted_s": d.time_s,
                "designed_measured_s": best[kd], "constant_measured_s": best[kc],
                "designed_test_error_converted": done[kd]["test_error_converted"],
                "best_constant_test_error_converted": best_c0,
                "designed_test_error_finetuned": done[kd]["test_error_finetuned"],
                "best_constant_test_error_finetuned": best_c1,
            })
    with open(out / "budgets.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(brow[0]))
        w.writeheader()
        w.writerows(brow)

    pred = np.array([r["predicted_time_s"] for r in rows])
    meas = np.array([r["measured_time_s"] for r in rows])
    summary = {
        "dense_test_error": dense_err,
        "dense_measured_time_s": best[key(dense_plan)],
        "dense_predicted_time_s": dense_plan.time_s,
        "plans": len(rows),
        "front_plans": len(result.front),
        "time_prediction_mape": float(np.mean(np.abs(pred / meas - 1))),
        "time_rank_correlation": spearman(pred, meas),
    }
    for agg in ("network_E_sum", "rel_output_E_sum", "logit_rel_error"):
        a = [r[agg] for r in rows]
        for col in ("test_error_converted", "test_error_finetuned") + (("logit_rel_error",) if agg != "logit_rel_error" else ()):
            summary[f"rank_correlation_{agg}_vs_{col}"] = spearman(a, [r[col] for r in rows])
    for rule in rules:
        bs = [b for b in brow if b["rule"] == rule]
        for stage in ("converted", "finetuned"):
            d = [b[f"designed_test_error_{stage}"] for b in bs]
            c = [b[f"best_constant_test_error_{stage}"] for b in bs]
            summary[f"{rule}_budgets_no_worse_{stage}"] = f"{sum(x <= y for x, y in zip(d, c))}/{len(bs)}"
            summary[f"{rule}_budgets_better_{stage}"] = f"{sum(x < y for x, y in zip(d, c))}/{len(bs)}"
        summary[f"{rule}_budgets_measured_not_slower_5pct"] = (
            f"{sum(b['designed_measured_s'] <= 1.05 * b['constant_measured_s'] for b in bs)}/{len(bs)}")
    summary.update({
        "conditions": {"threads": torch.get_num_threads(), "torch": torch.__version__, "rounds": args.rounds,
                       "design_samples": DESIGN_SAMPLES, "groups": list(GROUPS),
                       "machine": "shared 2-core CPU, other jobs running"},
        "wall_s": time.perf_counter() - t_start,
    })
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "design.json").write_text(json.dumps({k: v for k, v in result.as_dict().items() if k != "options"},
                                                indent=1) + "\n")
    table.to_frame().to_csv(out / "options.csv", index=False)
    front_figure(result, out_dir=out, name="design_front")
    measured_figure(brow, rows, out)
    log(json.dumps(summary, indent=2))
    return 0


def measured_figure(brow, rows, out: Path) -> None:
    """Per budget: test error of the designed plan and of the best constant plan within it
    (after conversion, after the fine-tune); and measured against predicted time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from groupconv.figures._save import save_figure

    bs = sorted((b for b in brow if b["rule"] == "rescored"), key=lambda b: b["max_time_s"])
    x = [b["max_time_s"] * 1e3 for b in bs]
    with plt.rc_context({"font.size": 7, "legend.fontsize": 6.5}):
        fig, axes = plt.subplots(1, 2, figsize=(3.4, 2.0), sharey=True, layout="constrained")
        for ax, stage, title in ((axes[0], "converted", "after conversion"), (axes[1], "finetuned", "after fine-tune")):
            ax.plot(x, [100 * b[f"best_constant_test_error_{stage}"] for b in bs], "o", mfc="none", ms=4,
                    color="tab:blue", label="best constant plan")
            ax.plot(x, [100 * b[f"designed_test_error_{stage}"] for b in bs], "*", ms=4, color="tab:red",
                    label="designed")
            ax.set_yscale("log")
            ax.set_title(title, fontsize=7)
            ax.set_xlabel("budget: predicted time (ms)")
            ax.grid(alpha=0.3, lw=0.4)
        axes[0].set_ylabel("test error (%)")
        axes[1].legend(frameon=False, fontsize=6)
        save_figure(fig, out, "design_budgets")
        fig.savefig(out / "design_budgets.pdf", bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(3.4, 2.4), layout="constrained")
        styles = {"gc": ("o", "tab:blue"), "bgc": ("s", "tab:orange"), "e2gc": ("^", "tab:green"),
                  "designed": ("*", "tab:red"), "dense": ("D", "k")}
        seen = set()
        for r in rows:
            kind = r["plan"].split()[0]
            m, c = styles.get(kind, ("x", "0.5"))
            ax.plot(r["predicted_time_s"] * 1e3, r["measured_time_s"] * 1e3, m, mfc="none", color=c, ms=4,
                    label=None if kind in seen else kind)
            seen.add(kind)
        lo = min(min(r["predicted_time_s"], r["measured_time_s"]) for r in rows) * 1e3 * 0.9
        hi = max(max(r["predicted_time_s"], r["measured_time_s"]) for r in rows) * 1e3 * 1.1
        ax.plot([lo, hi], [lo, hi], "-", color="0.6", lw=0.6, label="measured = predicted")
        ax.set_xlabel("predicted time per frame (ms)")
        ax.set_ylabel("measured time per frame (ms)")
        ax.legend(frameon=False, fontsize=6)
        ax.grid(alpha=0.3, lw=0.4)
        save_figure(fig, out, "design_time")
        fig.savefig(out / "design_time.pdf", bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
        plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
