"""Verify a platform file by measurement: predict, then time, held-out networks on this CPU.

One resumable command::

    python benchmarks/platform/run.py --platform data/platforms/cpu.json --out benchmarks/platform/results

1. Predicts (``groupconv.platform.predict``) the forward time per frame at B = 1 and
   B = 8 of every catalogue variant of the E2GC paper's Tables III/IV (MobileNet-V1 and
   ResNeXt-50, E2GC G = 1..32 and FgGC g = 2..32) and of the zoo's standard
   architectures (``groupconv.networks.zoo``), none of which a calibration measures.
2. Recommends (``groupconv.design.recommend``) a grouping of MobileNet-V1 and ResNeXt-50
   at each batch under the weights budget of E2GC G = 32.
3. Measures all of them with plain torch timing: ``torch.set_num_threads(threads)``,
   eval mode, ``torch.no_grad()``, a warm-up call, then the best of ``--calls`` timed
   calls, in ``--rounds`` rounds, the networks in a new shuffled order every round
   (and the batches in shuffled order within a network); the reported time is the best
   over all rounds. Every measurement is appended to ``measured.csv`` at once; a run
   that is stopped resumes where it was.
4. Writes ``predicted.csv``, ``summary.json`` / ``summary.md`` (MAPE, Spearman within each
   family, the recommendation against every variant within its budget, the E2GC paper's
   Observation 1 on this machine) and the figure ``predicted_vs_measured`` (PNG, SVG, PDF).

``--image-size`` (default 224) scales every network's input; say which size you used.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import math
import os
import platform as pyplatform
import random
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

#: An E2GC variant is "comparable" to an FgGC one when its MACs (or params) are within this ratio.
COMPARABLE = (0.8, 1.25)
MEASURED_COLUMNS = ("key", "batch", "round", "time_s", "thread_time_s", "calls", "timestamp", "loadavg_1min")
CLOCKS = ("wall", "thread")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--platform", required=True, help="platform JSON (groupconv calibrate)")
    p.add_argument("--out", default=str(ROOT / "benchmarks/platform/results"), help="output folder")
    p.add_argument("--image-size", type=int, default=224, help="input side of every network (default 224)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--rounds", type=int, default=5, help="rounds in shuffled order (default 5)")
    p.add_argument("--calls", type=int, default=3, help="timed calls per measurement, best kept (default 3)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as calibrate)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffles and of the inputs")
    p.add_argument("--zoo", nargs="*", default=None, help="zoo networks (default: all of ZOO)")
    p.add_argument("--clock", choices=CLOCKS, default="wall",
                   help="which time the summary compares: wall (perf_counter, plain torch timing; default) or "
                        "thread (this thread's CPU time, robust on a shared machine; both are recorded)")
    p.add_argument("--no-measure", action="store_true", help="predict and summarise only")
    p.add_argument("--note", default="", help="free text recorded in the metadata (e.g. 'preliminary')")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- workloads
def workloads(image_size: int, zoo_names):
    """(key, family, builder, info) of every held-out network."""
    from groupconv.networks import ARCHITECTURES, PAPER_GROUPS, build_module, build_network
    from groupconv.networks.zoo import ZOO, build_zoo

    out = []
    for arch in ARCHITECTURES:
        for variant, settings in PAPER_GROUPS.items():
            for group in settings:
                net = build_network(arch, variant, group)
                out.append({
                    "key": f"{arch}/{variant}/{group}", "kind": "catalogue", "family": f"{arch} {variant}",
                    "arch": arch, "variant": variant, "group": group, "params": net.params,
                    "build": (lambda device=None, a=arch, v=variant, g=group: build_module(a, v, g, device=device)),
                })
    for name in (zoo_names if zoo_names is not None else list(ZOO)):
        out.append({
            "key": f"zoo/{name}", "kind": "zoo", "family": "zoo", "arch": name, "variant": "", "group": 0,
            "params": None,
            "build": (lambda device=None, n=name: build_zoo(n, image_size, device=device)),
        })
    return out


def recommended(platform, image_size: int, batches):
    """The recommended grouping of each catalogue arch at each batch, under E2GC G=32's weights."""
    from groupconv.design import recommend
    from groupconv.networks import ARCHITECTURES, build_module, build_network

    out = []
    for arch in ARCHITECTURES:
        budget = build_network(arch, "e2gc", 32).params
        for batch in batches:
            rec = recommend(arch, platform, batch=batch, image_size=image_size, max_params=budget)
            out.append({
                "key": f"rec/{arch}/B{batch}", "kind": "recommended", "family": f"{arch} recommended",
                "arch": arch, "variant": "recommended", "group": 0, "params": rec.params,
                "groups": list(rec.groups), "budget": budget, "only_batch": batch,
                "predicted_by_search": rec.cost,
                "build": (lambda device=None, a=arch, g=tuple(rec.groups): build_module(a, "e2gc", 1, groups=list(g), device=device)),
            })
    return out


# ----------------------------------------------------------------------------- predicting
def predict_all(platform, items, image_size: int, batches):
    from groupconv.networks import count_module
    from groupconv.platform import UnmeasuredKernelWarning, predict

    rows = []
    for item in items:
        module = item["build"](device="meta")
        for batch in batches:
            if item.get("only_batch") not in (None, batch):
                continue
            shape = (batch, 3, image_size, image_size)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UnmeasuredKernelWarning)
                pred = predict(platform, module, shape)
            count = count_module(module, shape)
            rows.append({
                "key": item["key"], "kind": item["kind"], "family": item["family"], "arch": item["arch"],
                "variant": item["variant"], "group": item["group"], "batch": batch,
                "predicted_s": pred.time_s, "macs": count.macs, "params": count.params,
                "paper_params": item["params"] if item["params"] is not None else count.params,
                "groups": " ".join(str(g) for g in item.get("groups", [])),
                "unmeasured": " ".join(pred.unmeasured),
                "warnings": len(caught),
            })
    return rows


# ----------------------------------------------------------------------------- measuring
def _done(path: Path, clock: str = "wall"):
    done = {}
    if path.exists():
        with path.open() as f:
            for row in csv.DictReader(f):
                done[(row["key"], int(row["batch"]), int(row["round"]))] = float(
                    row["time_s"] if clock == "wall" else row["thread_time_s"])
    return done


def measure_all(items, image_size: int, batches, rounds: int, calls: int, seed: int, path: Path, progress=True):
    import torch

    done = _done(path)
    new = not path.exists()
    f = path.open("a", newline="")
    writer = csv.writer(f)
    if new:
        writer.writerow(MEASURED_COLUMNS)
        f.flush()
    todo_total = sum(
        1 for r in range(rounds) for it in items for b in batches
        if it.get("only_batch") in (None, b) and (it["key"], b, r) not in done
    )
    bar = None
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=todo_total, unit="run", desc="measure")
    try:
        for r in range(rounds):
            rng = random.Random(seed * 1000 + r)
            order = list(items)
            rng.shuffle(order)
            for item in order:
                wanted = [b for b in batches if item.get("only_batch") in (None, b) and (item["key"], b, r) not in done]
                if not wanted:
                    continue
                rng.shuffle(wanted)
                torch.manual_seed(seed)
                module = item["build"]().eval()
                for batch in wanted:
                    x = torch.randn(batch, 3, image_size, image_size)
                    with torch.no_grad():
                        module(x)  # warm-up: allocations, kernel choice, caches
                        best, best_cpu = math.inf, math.inf
                        for _ in range(calls):
                            t0, c0 = time.perf_counter(), time.thread_time()
                            module(x)
                            best = min(best, time.perf_counter() - t0)
                            best_cpu = min(best_cpu, time.thread_time() - c0)
                    per_frame = best / batch
                    done[(item["key"], batch, r)] = per_frame
                    writer.writerow([item["key"], batch, r, f"{per_frame:.9g}", f"{best_cpu / batch:.9g}", calls,
                                     dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                     f"{os.getloadavg()[0]:.2f}"])
                    f.flush()
                    if bar is not None:
                        bar.update(1)
                del module
    finally:
        f.close()
        if bar is not None:
            bar.close()
    return done


# ----------------------------------------------------------------------------- summarising
def summarise(pred_rows, done, batches):
    import numpy as np
    from scipy.stats import spearmanr

    measured, slowest = {}, {}
    for (key, batch, _), t in done.items():
        measured[(key, batch)] = min(t, measured.get((key, batch), math.inf))
        slowest[(key, batch)] = max(t, slowest.get((key, batch), 0.0))
    spread = [slowest[k] / measured[k] - 1.0 for k in measured]
    rows = []
    for p in pred_rows:
        m = measured.get((p["key"], p["batch"]))
        rows.append({**p, "measured_s": m, "error": None if m is None else p["predicted_s"] / m - 1.0})
    held = [r for r in rows if r["kind"] in ("catalogue", "zoo") and r["measured_s"] is not None]

    def mape(sel):
        return None if not sel else float(np.mean([abs(r["error"]) for r in sel]))

    out = {"mape": {"all_held_out": mape(held)},
           "round_spread": None if not spread else {  # slowest over fastest round of one network, - 1
               "median": float(np.median(spread)), "p90": float(np.percentile(spread, 90)), "max": float(max(spread))}}
    for kind in ("catalogue", "zoo"):
        out["mape"][kind] = mape([r for r in held if r["kind"] == kind])
    for b in batches:
        out["mape"][f"B{b}"] = mape([r for r in held if r["batch"] == b])
    out["max_abs_error"] = None if not held else float(max(abs(r["error"]) for r in held))
    out["worst"] = sorted(({"key": r["key"], "batch": r["batch"], "error": r["error"]} for r in held),
                          key=lambda d: -abs(d["error"]))[:5]

    # Spearman within each family of the paper (arch, variant) at each batch
    spearman = []
    for fam in sorted({r["family"] for r in held if r["kind"] == "catalogue"}):
        for b in batches:
            sel = [r for r in held if r["family"] == fam and r["batch"] == b]
            if len(sel) >= 3:
                rho = spearmanr([r["predicted_s"] for r in sel], [r["measured_s"] for r in sel]).statistic
                spearman.append({"family": fam, "batch": b, "n": len(sel), "spearman": float(rho),
                                 "measured_order": [r["group"] for r in sorted(sel, key=lambda r: r["measured_s"])],
                                 "predicted_order": [r["group"] for r in sorted(sel, key=lambda r: r["predicted_s"])]})
    out["spearman"] = spearman

    # the recommendation against every E2GC/FgGC variant within the same weights budget
    checks = []
    for r in rows:
        if r["kind"] != "recommended" or r["measured_s"] is None:
            continue
        budget = r["paper_params"]  # the recommendation's own weights are <= its budget
        from groupconv.networks import build_network

        limit = build_network(r["arch"], "e2gc", 32).params
        rivals = [c for c in held if c["kind"] == "catalogue" and c["arch"] == r["arch"]
                  and c["batch"] == r["batch"] and c["paper_params"] <= limit]
        best = min(rivals, key=lambda c: c["measured_s"]) if rivals else None
        same = [c for c in rows if c["kind"] == "catalogue" and c["arch"] == r["arch"] and c["batch"] == r["batch"]
                and _groups_of(c) == r["groups"]]
        checks.append({
            "identical_to": f"{same[0]['variant']} {same[0]['group']}" if same else None,
            "arch": r["arch"], "batch": r["batch"], "groups": r["groups"], "params": budget,
            "budget_params": limit, "measured_s": r["measured_s"], "predicted_s": r["predicted_s"],
            "best_variant": None if best is None else f"{best['variant']} {best['group']}",
            "best_variant_measured_s": None if best is None else best["measured_s"],
            "ratio_to_best": None if best is None else r["measured_s"] / best["measured_s"],
            "variants_within_budget": len(rivals),
            "at_least_as_fast": None if best is None else r["measured_s"] <= best["measured_s"],
        })
    out["recommendation"] = checks

    # E2GC Observation 1: at comparable MACs or params, E2GC beats FgGC
    obs = []
    for arch in sorted({r["arch"] for r in held if r["kind"] == "catalogue"}):
        for b in batches:
            e2 = [r for r in held if r["arch"] == arch and r["variant"] == "e2gc" and r["batch"] == b]
            fg = [r for r in held if r["arch"] == arch and r["variant"] == "fggc" and r["batch"] == b]
            for f_ in fg:
                for what in ("macs", "paper_params"):
                    near = min(e2, key=lambda e: abs(math.log(e[what] / f_[what])))
                    obs.append({
                        "arch": arch, "batch": b, "compare": "MACs" if what == "macs" else "params",
                        "fggc": f_["group"], "e2gc": near["group"],
                        "ratio": near[what] / f_[what],
                        "fggc_s": f_["measured_s"], "e2gc_s": near["measured_s"],
                        "comparable": COMPARABLE[0] <= near[what] / f_[what] <= COMPARABLE[1],
                        "e2gc_faster": near["measured_s"] < f_["measured_s"],
                        "e2gc_vs_fggc": near["measured_s"] / f_["measured_s"] - 1.0,
                    })
    out["observation1"] = obs
    tally = {}
    for arch in sorted({o["arch"] for o in obs}):
        for what in ("MACs", "params"):
            sel = [o for o in obs if o["arch"] == arch and o["compare"] == what and o["comparable"]]
            tally[f"{arch} by {what}"] = {
                "e2gc_faster": sum(o["e2gc_faster"] for o in sel), "pairs": len(sel),
                "pairs_list": [f"FgGC g={o['fggc']} vs E2GC G={o['e2gc']} B={o['batch']}: "
                               f"{o['e2gc_vs_fggc'] * 100:+.1f} %" for o in sel],
            }
    out["observation1_tally"] = tally
    return rows, out


def _groups_of(row) -> str:
    from groupconv.networks.catalogue import layer_groups

    return " ".join(str(g) for g in layer_groups(row["arch"], row["variant"], int(row["group"])))


def write_markdown(path: Path, summary, meta):
    def pct(x):
        return "n/a" if x is None else f"{x * 100:.1f} %"

    lines = [f"# Platform verification: {meta['platform_file']} ({meta['note'] or 'run'})", "",
             f"- image size {meta['image_size']}, batches {meta['batches']}, threads {meta['threads']}, "
             f"{meta['rounds']} rounds x best of {meta['calls']} calls, shuffled; clock: {meta.get('clock')} "
             "(wall = perf_counter; thread = this thread's CPU time)",
             f"- machine: {meta['cpu']}, torch {meta['torch']}, load average at start {meta['loadavg_start']}, "
             f"at end {meta.get('loadavg_end')}",
             "", "## Prediction error (held-out: catalogue + zoo)", "", "| set | MAPE |", "| --- | --- |"]
    lines += [f"| {k} | {pct(v)} |" for k, v in summary["mape"].items()]
    rs = summary.get("round_spread")
    if rs:
        lines += ["", f"noise: slowest over fastest round of the same network, median {pct(rs['median'])}, "
                      f"90th percentile {pct(rs['p90'])}, max {pct(rs['max'])}"]
    lines += ["", f"max |error|: {pct(summary['max_abs_error'])}; worst: " +
              ", ".join(f"{w['key']} B={w['batch']} {w['error'] * 100:+.0f} %" for w in summary["worst"]), "",
              "## Spearman within each family", "", "| family | B | rho | measured order (fastest first) | predicted order |",
              "| --- | --- | --- | --- | --- |"]
    lines += [f"| {s['family']} | {s['batch']} | {s['spearman']:.2f} | {s['measured_order']} | {s['predicted_order']} |"
              for s in summary["spearman"]]
    lines += ["", "## Recommendation under the weights of E2GC G=32", "",
              "| arch | B | groups | same as | measured ms/frame | best variant within budget | its ms/frame | ratio | at least as fast |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in summary["recommendation"]:
        lines.append(f"| {c['arch']} | {c['batch']} | {c['groups']} | {c['identical_to'] or '-'} | {c['measured_s'] * 1e3:.2f} | "
                     f"{c['best_variant']} | {(c['best_variant_measured_s'] or float('nan')) * 1e3:.2f} | "
                     f"{c['ratio_to_best']:.3f} | {c['at_least_as_fast']} |")
    lines += ["", "## E2GC Observation 1: the E2GC variant nearest in MACs / params to each FgGC variant "
              f"(within {COMPARABLE[0]}-{COMPARABLE[1]}x), time of E2GC relative to FgGC", "",
              "| comparison | E2GC faster | pairs (negative: E2GC faster) |", "| --- | --- | --- |"]
    lines += [f"| {k} | {v['e2gc_faster']}/{v['pairs']} | {'; '.join(v['pairs_list'])} |"
              for k, v in summary["observation1_tally"].items()]
    path.write_text("\n".join(lines) + "\n")


def figure(rows, out_dir: Path, meta):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from groupconv.figures import save_figure

    plt.rcParams.update({"font.size": 7, "axes.labelsize": 7, "legend.fontsize": 6,
                         "xtick.labelsize": 7, "ytick.labelsize": 7})
    fig, ax = plt.subplots(figsize=(3.4, 3.0))
    markers = {"catalogue": "o", "zoo": "s", "recommended": "*"}
    colors = {1: "tab:blue", 8: "tab:orange"}
    sel = [r for r in rows if r["measured_s"] is not None]
    for kind, marker in markers.items():
        for b, color in colors.items():
            pts = [r for r in sel if r["kind"] == kind and r["batch"] == b]
            if pts:
                ax.scatter([r["measured_s"] * 1e3 for r in pts], [r["predicted_s"] * 1e3 for r in pts],
                           marker=marker, s=14 if marker != "*" else 40, facecolor="none" if kind == "zoo" else color,
                           edgecolor=color, linewidths=0.8, label=f"{kind}, B={b}")
    if sel:
        lo = min(min(r["measured_s"], r["predicted_s"]) for r in sel) * 1e3 / 1.3
        hi = max(max(r["measured_s"], r["predicted_s"]) for r in sel) * 1e3 * 1.3
        xs = [lo, hi]
        ax.plot(xs, xs, color="black", lw=0.7)
        ax.fill_between(xs, [x * 0.9 for x in xs], [x * 1.1 for x in xs], color="grey", alpha=0.2, lw=0,
                        label="+/-10 %")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    clock = "thread CPU time" if meta.get("clock") == "thread" else "wall clock"
    ax.set_xlabel(f"measured forward time per frame (ms, {clock})")
    ax.set_ylabel("predicted (ms)")
    ax.set_title(f"{meta['cpu_short']}, {meta['image_size']}px, {meta['threads']} thread", fontsize=7)
    ax.legend(loc="lower right", frameon=False)
    paths = save_figure(fig, out_dir, "predicted_vs_measured")
    fig.savefig(out_dir / "predicted_vs_measured.pdf", bbox_inches="tight", metadata={"CreationDate": None})
    plt.close(fig)
    return paths


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from groupconv.platform import Platform

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    platform = Platform.load(args.platform)
    digest = hashlib.sha256(Path(args.platform).read_bytes()).hexdigest()[:16]
    cpu = pyplatform.processor() or pyplatform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    meta_path = out / "metadata.json"
    meta = {
        "platform_file": str(args.platform), "platform_sha256_16": digest,
        "platform_budget_s": dict(getattr(platform, "metadata", {}) or {}).get("budget_s"),
        "image_size": args.image_size, "batches": args.batches, "rounds": args.rounds, "calls": args.calls,
        "threads": args.threads, "seed": args.seed, "note": args.note, "cpu": cpu, "cpu_short": cpu.split("@")[0].strip()[:40],
        "torch": torch.__version__, "python": pyplatform.python_version(),
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    if meta_path.exists():  # resuming: the conditions of the measurements must not change
        old = json.loads(meta_path.read_text())
        for k in ("platform_sha256_16", "image_size", "batches", "threads", "calls"):
            if old.get(k) != meta[k]:
                print(f"run.py: error: {out} was measured with {k}={old.get(k)!r}, now {meta[k]!r}; "
                      "use another --out", file=sys.stderr)
                return 2
        for k in ("started", "loadavg_start") + (("finished", "loadavg_end") if args.no_measure else ()):
            if k in old:
                meta[k] = old[k]

    items = workloads(args.image_size, args.zoo)
    items += recommended(platform, args.image_size, args.batches)
    pred_rows = predict_all(platform, items, args.image_size, args.batches)
    with (out / "predicted.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(pred_rows[0]))
        w.writeheader()
        w.writerows(pred_rows)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    if not args.no_measure:
        measure_all(items, args.image_size, args.batches, args.rounds, args.calls, args.seed, out / "measured.csv")
    meta["clock"] = args.clock
    if not args.no_measure or "finished" not in meta:
        meta["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    for clock in CLOCKS:  # both clocks summarised; --clock picks the one of summary.md and the figure
        rows, summary = summarise(pred_rows, _done(out / "measured.csv", clock), args.batches)
        (out / f"summary_{clock}.json").write_text(json.dumps(summary, indent=2) + "\n")
        write_markdown(out / f"summary_{clock}.md", summary, {**meta, "clock": clock})
        if clock == args.clock:
            with (out / "results.csv").open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
            write_markdown(out / "summary.md", summary, meta)
            (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            figure(rows, out, meta)
    print((out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
