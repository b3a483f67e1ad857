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
from model import CACHE, build, digits, weights_path  # noqa: E402

from groupconv.approx.study import error_rate, train  # noqa: E402
from groupconv.design import convert_plan, design, plan_from_table  # noqa: E402
from groupconv.figures.design_front import front_figure  # noqa: E402
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


def trained_model(seed, xtr, ytr, xte, yte):
    CACHE.mkdir(exist_ok=True)
    path = weights_path(seed)
    model = build(seed)
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        t = time.perf_counter()
        train(model, xtr, ytr, epochs=EPOCHS, lr=2e-3, seed=seed)
        log(f"seed {seed}: trained {EPOCHS} epochs in {time.perf_counter() - t:.0f} s, "
            f"test error {test_error(model, xte, yte):.4f}")
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


RULES = {"rescored": dict(aggregate="network_E", rescore=True),
         "network_E": dict(aggregate="network_E", rescore=False),
         "rel_output_E": dict(aggregate="rel_output_E", rescore=False)}


def run_seed(seed: int, platform) -> dict:
    """Train (or load) one network, design it, convert and evaluate every plan of interest."""
    xtr, ytr, xte, yte = digits(seed)
    model = trained_model(seed, xtr, ytr, xte, yte)
    data = xtr[:DESIGN_SAMPLES].clone()
    torch.save(data, CACHE / f"design_data_seed{seed}.pt")
    t = time.perf_counter()
    result = design(model, platform, data, groups=GROUPS)
    table = result.table
    measured: dict = {}
    log(f"seed {seed}: option table + front {time.perf_counter() - t:.1f} s, {sum(len(r) for r in table.options)} "
        f"options, {len(result.front)} plans on the front, {len(result.constant)} constant plans")
    # budgets: every constant plan's predicted time; the designed plan of each selection rule:
    # "rescored" (the default: front of the network_E sum, chosen by measured error on the data),
    # and the two additive aggregates alone (chosen on the front by the sum)
    budgets = {rule: [(c, design(model, platform, data, table=table, max_time_s=c.time_s, measured_cache=measured,
                                 **kw).chosen) for c in result.constant] for rule, kw in RULES.items()}
    dense_plan = plan_from_table(table, [0] * len(table.layers), "dense")
    plans = {key(dense_plan): dense_plan}
    for rule in RULES:
        for c, d in budgets[rule]:
            plans.setdefault(key(c), c)
            plans.setdefault(key(d), d)
    cache_path = CACHE / f"plans_seed{seed}.json"
    done = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    with torch.no_grad():
        ref_logits = model(xte)
    for k, plan in plans.items():
        if k in done:
            continue
        new, _ = convert_plan(model, plan, data, table)
        with torch.no_grad():
            logits = new(xte)
        out_err = float(((logits - ref_logits) ** 2).sum() / (ref_logits**2).sum())
        err0 = test_error(new, xte, yte)
        tuned = copy.deepcopy(new)
        train(tuned, xtr, ytr, **FINETUNE)
        done[k] = {"test_error_converted": err0, "test_error_finetuned": test_error(tuned, xte, yte),
                   "logit_rel_error": out_err}
        cache_path.write_text(json.dumps(done, indent=1))
    log(f"seed {seed}: {len(plans)} plans converted and evaluated")
    return dict(seed=seed, model=model, data=data, result=result, table=table, budgets=budgets, plans=plans,
                done=done, measured=measured, dense=dense_plan, dense_err=test_error(model, xte, yte), x1=xte[:1].clone())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="timing rounds (best of; shuffled order each)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="networks (training and split seeds)")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--platform", type=Path, default=PLATFORM, help=f"platform file (default {PLATFORM.name})")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    platform = Platform.load(args.platform)
    runs = [run_seed(seed, platform) for seed in args.seeds]

    # timings of every plan structure (time does not depend on the weights): seed order first found
    where = {}
    for run in runs:
        for k in run["plans"]:
            where.setdefault(k, run)
    tpath = CACHE / "timings.json"
    timings = json.loads(tpath.read_text()) if tpath.exists() else {}
    models = {}
    for r in range(args.rounds):
        if str(r) in timings and set(timings[str(r)]) >= set(where):
            continue
        order = list(where)
        random.Random(r).shuffle(order)
        row = {}
        for k in order:
            run = where[k]
            if k not in models:
                models[k] = convert_plan(run["model"], run["plans"][k], run["data"], run["table"])[0].eval()
            row[k] = measure_time(models[k], run["x1"])
        timings[str(r)] = row
        tpath.write_text(json.dumps(timings, indent=1))
        log(f"timing round {r + 1}/{args.rounds} done ({len(order)} plans)")
    best = {k: min(timings[str(r)][k] for r in range(args.rounds)) for k in where}

    rows, brow = [], []
    for run in runs:
        table, done = run["table"], run["done"]
        for k, plan in run["plans"].items():
            choice = [next(i for i, o in enumerate(row) if o.method == l["method"] and o.groups == l["groups"])
                      for row, l in zip(table.options, plan.layers)]
            rows.append({"seed": run["seed"], "plan": plan.label, "key": k, "layers": plan.short(),
                         "predicted_time_s": plan.time_s, "measured_time_s": best[k],
                         "network_E_sum": plan_from_table(table, choice, aggregate="network_E").error,
                         "rel_output_E_sum": plan_from_table(table, choice, aggregate="rel_output_E").error,
                         "measured_error": run["measured"].get(plan.key()), "params": plan.params, **done[k]})
        for rule in RULES:
            for c, d in run["budgets"][rule]:
                within = [p for p in run["result"].constant if p.time_s <= c.time_s]
                brow.append({
                    "seed": run["seed"], "rule": rule, "budget": c.label, "max_time_s": c.time_s,
                    "designed": d.short(), "designed_predicted_s": d.time_s,
                    "designed_measured_s": best[key(d)], "constant_measured_s": best[key(c)],
                    "designed_test_error_converted": done[key(d)]["test_error_converted"],
                    "best_constant_test_error_converted": min(done[key(p)]["test_error_converted"] for p in within),
                    "designed_test_error_finetuned": done[key(d)]["test_error_finetuned"],
                    "best_constant_test_error_finetuned": min(done[key(p)]["test_error_finetuned"] for p in within),
                })
    for name, table_rows in (("plans.csv", rows), ("budgets.csv", brow)):
        with open(out / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(table_rows[0]))
            w.writeheader()
            w.writerows(table_rows)

    # per budget label, the mean over seeds
    import pandas as pd

    frame = pd.DataFrame(brow)
    mean = frame.groupby(["rule", "budget"], sort=False).mean(numeric_only=True).reset_index()
    mean.to_csv(out / "budgets_mean.csv", index=False)
    pred = np.array([r["predicted_time_s"] for r in rows])
    meas = np.array([r["measured_time_s"] for r in rows])
    summary = {
        "seeds": list(args.seeds),
        "dense_test_error": [run["dense_err"] for run in runs],
        "dense_measured_time_s": best[key(runs[0]["dense"])],
        "dense_predicted_time_s": runs[0]["dense"].time_s,
        "plans": len(rows),
        "plan_structures_timed": len(where),
        "options": sum(len(r) for r in runs[0]["table"].options),
        "front_plans": [len(run["result"].front) for run in runs],
        "time_prediction_mape": float(np.mean(np.abs(pred / meas - 1))),
        "time_rank_correlation": spearman(pred, meas),
    }
    for agg in ("network_E_sum", "rel_output_E_sum", "logit_rel_error"):
        for col in ("test_error_converted", "test_error_finetuned") + (("logit_rel_error",) if agg != "logit_rel_error" else ()):
            # within each seed, then averaged (the networks differ)
            per = [spearman([r[agg] for r in rows if r["seed"] == s], [r[col] for r in rows if r["seed"] == s])
                   for s in args.seeds]
            summary[f"rank_correlation_{agg}_vs_{col}"] = float(np.mean(per))
    for rule in RULES:
        for scope, table_rows in (("per_seed", frame[frame["rule"] == rule]), ("mean", mean[mean["rule"] == rule])):
            for stage in ("converted", "finetuned"):
                d = table_rows[f"designed_test_error_{stage}"].to_numpy()
                c = table_rows[f"best_constant_test_error_{stage}"].to_numpy()
                summary[f"{rule}_{scope}_no_worse_{stage}"] = f"{int((d <= c + 1e-6).sum())}/{len(d)}"
                summary[f"{rule}_{scope}_better_{stage}"] = f"{int((d < c - 1e-6).sum())}/{len(d)}"
            dm = table_rows["designed_measured_s"].to_numpy()
            cm = table_rows["constant_measured_s"].to_numpy()
            summary[f"{rule}_{scope}_measured_not_slower_5pct"] = f"{int((dm <= 1.05 * cm).sum())}/{len(dm)}"
    summary.update({
        "conditions": {"threads": torch.get_num_threads(), "torch": torch.__version__, "rounds": args.rounds,
                       "design_samples": DESIGN_SAMPLES, "groups": list(GROUPS), "platform": str(args.platform.name),
                       "machine": "shared 2-core CPU, other jobs running"},
        "wall_s": time.perf_counter() - t_start,
    })
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    first = runs[0]
    (out / "design.json").write_text(json.dumps({k: v for k, v in first["result"].as_dict().items() if k != "options"},
                                                indent=1) + "\n")
    first["table"].to_frame().to_csv(out / "options.csv", index=False)
    front_figure(first["result"], out_dir=out, name="design_front")
    measured_figure(mean.to_dict("records"), rows, out)
    log(json.dumps({k: v for k, v in summary.items() if k != "conditions"}, indent=1))
    return 0


def measured_figure(brow, rows, out: Path) -> None:
    """Per budget: test error of the designed plan and of the best constant plan within it
    (after conversion, after the fine-tune); and measured against predicted time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from groupconv.figures import save_figure

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
