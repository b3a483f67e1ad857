"""One shot on a machine with a CUDA GPU: calibrate, predict and measure, BGC Table 4.

Everything goes under one folder (``--out``), within a wall-clock budget (default 8
minutes, the calibration's share included):

1. ``environment.json`` - device, driver, torch/CUDA/cuDNN versions, energy source.
2. ``platform.json`` + ``platform.runs.csv`` - ``groupconv.platform.calibrate`` with Zeus
   energy (NVML) where Zeus is installed (``--energy zeus`` makes it compulsory).
3. ``networks.csv`` - every catalogue variant of E2GC Tables III/IV and every zoo
   architecture (when the zoo is installed), at each ``--batch``: the platform's
   prediction, then the measurement (``groupconv.measure.measure``, forward, eval mode,
   no gradients, with the same energy source), one row flushed per network.
4. ``table4_runs.csv`` / ``table4_runs.md`` - ``benchmarks/table4/run.py`` (BGC Table 4).
5. ``summary.json`` and ``predicted_vs_measured.png/.svg``.

    PYTHONPATH=src python benchmarks/gpu/run_all.py --device cuda --out gpu_run
    PYTHONPATH=src python benchmarks/gpu/run_all.py --device cpu --out /tmp/x --budget-s 60 \
        --calibrate-s 8 --image-size 64 --networks 2 --table4-channels 32        # the CPU check

A step that would not fit the remaining budget is skipped and named in summary.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _networks(image_size: int, limit: int | None):
    """(label, factory) of every Table III/IV variant, then the zoo's architectures."""
    from groupconv.networks import ARCHITECTURES, VARIANTS, build_module
    from groupconv.networks.catalogue import PAPER_GROUPS

    out = [(f"{a}:{v}:{g}", (lambda a=a, v=v, g=g: build_module(a, v, g)))
           for a in ARCHITECTURES for v in VARIANTS for g in PAPER_GROUPS[v]]
    try:
        from groupconv.networks.zoo import ZOO
    except ImportError:
        ZOO = {}
    for name, factory in dict(ZOO).items():
        out.append((name, (lambda f=factory: _call_zoo(f, image_size))))
    return out[:limit] if limit else out


def _call_zoo(factory, image_size):
    try:
        return factory(image_size=image_size)
    except TypeError:
        return factory()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget-s", type=float, default=480.0, help="wall-clock budget of everything (s)")
    parser.add_argument("--calibrate-s", type=float, default=150.0, help="calibration budget (s)")
    parser.add_argument("--energy", default="auto", choices=["auto", "zeus", "none"])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--networks", type=int, default=None, help="only the first N networks (a quick check)")
    parser.add_argument("--table4-channels", type=int, default=1024)
    parser.add_argument("--table4-groups", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--table4-trials", type=int, default=5)
    args = parser.parse_args(argv)

    import torch

    from groupconv.measure import Protocol, measure
    from groupconv.measure.campaign import resolve_source
    from groupconv.measure.environment import describe_environment, resolve_device
    from groupconv.platform import calibrate, predict

    begin = time.perf_counter()
    left = lambda: args.budget_s - (time.perf_counter() - begin)  # noqa: E731
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    source = resolve_source(args.energy, device)
    env = describe_environment(device).as_dict()
    env["energy_source"] = source.name if source.available else "none"
    env["energy_detail"] = source.describe()
    (out / "environment.json").write_text(json.dumps(env, indent=2) + "\n")
    summary: dict[str, object] = {"environment": env, "skipped": [], "steps": {}}

    t0 = time.perf_counter()
    platform = calibrate(device, out / "platform.json", budget_s=min(args.calibrate_s, max(left() * 0.5, 5.0)),
                         energy=args.energy, progress=False)
    summary["steps"]["calibrate_s"] = round(time.perf_counter() - t0, 1)
    summary["platform"] = {"has_energy": platform.has_energy, "network_correction": {
        k: v for k, v in platform.network_correction.as_dict().items() if k != "networks"}}

    # networks: predict, then measure
    t0 = time.perf_counter()
    protocol = Protocol(mode="forward", warmup=3, warmup_s=0.2, trials=3, min_window_s=0.1, measure_memory=False)
    fields = ["network", "batch", "image_size", "predicted_time_s", "measured_time_s", "measured_time_std_s",
              "predicted_energy_J", "measured_energy_J", "macs", "device", "energy_source"]
    rows = []
    with open(out / "networks.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for label, factory in _networks(args.image_size, args.networks):
            for batch in args.batch:
                if left() < 60:
                    summary["skipped"].append(f"network {label} B={batch}: budget")
                    continue
                shape = (batch, 3, args.image_size, args.image_size)
                model = factory().to(device)
                pred = predict(platform, model, shape)
                x = torch.randn(*shape, device=device)
                res = measure(model, x, protocol, source)
                row = {"network": label, "batch": batch, "image_size": args.image_size,
                       "predicted_time_s": pred.time_s, "measured_time_s": res.time_s,
                       "measured_time_std_s": res.time_std_s, "predicted_energy_J": pred.energy_J,
                       "measured_energy_J": res.energy_J, "macs": pred.macs, "device": env["device"],
                       "energy_source": res.energy_source}
                writer.writerow(row)
                handle.flush()
                rows.append(row)
                del model, x
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
    summary["steps"]["networks_s"] = round(time.perf_counter() - t0, 1)
    if rows:
        errs = [abs(r["predicted_time_s"] / r["measured_time_s"] - 1) for r in rows]
        summary["networks"] = {"n": len(rows), "time_mape": sum(errs) / len(errs), "time_max_error": max(errs)}
        e = [abs(r["predicted_energy_J"] / r["measured_energy_J"] - 1) for r in rows
             if r["predicted_energy_J"] and r["measured_energy_J"]]
        if e:
            summary["networks"]["energy_mape"] = sum(e) / len(e)
        _figure(rows, out)

    # BGC Table 4
    if left() > 60:
        t0 = time.perf_counter()
        cmd = [sys.executable, str(ROOT / "benchmarks" / "table4" / "run.py"), "--device", device,
               "--channels", str(args.table4_channels), "--energy", args.energy, "--out", str(out / "table4_runs.csv"),
               "--trials", str(args.table4_trials), "--groups", *map(str, args.table4_groups)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=max(30, left() - 10))
        (out / "table4_log.txt").write_text(done.stdout + done.stderr)
        summary["steps"]["table4_s"] = round(time.perf_counter() - t0, 1)
        summary["table4_rc"] = done.returncode
    else:
        summary["skipped"].append("table4: budget")
    summary["total_s"] = round(time.perf_counter() - begin, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(json.dumps({k: summary[k] for k in ("steps", "skipped", "total_s")} | {"networks": summary.get("networks")},
                     default=str))
    return 0


def _figure(rows, out: Path) -> None:
    from matplotlib.figure import Figure

    from groupconv.figures import save_figure

    fig = Figure(figsize=(3.4, 3.0))
    ax = fig.add_subplot()
    for batch in sorted({r["batch"] for r in rows}):
        pts = [(r["measured_time_s"] * 1e3, r["predicted_time_s"] * 1e3) for r in rows if r["batch"] == batch]
        ax.scatter(*zip(*pts), s=10, label=f"B = {batch}")
    lo = min(min(p) for r in rows for p in [(r["measured_time_s"] * 1e3, r["predicted_time_s"] * 1e3)])
    hi = max(max(p) for r in rows for p in [(r["measured_time_s"] * 1e3, r["predicted_time_s"] * 1e3)])
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel("measured ms / frame", fontsize=7)
    ax.set_ylabel("predicted ms / frame", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    save_figure(fig, out, "predicted_vs_measured")


if __name__ == "__main__":
    sys.exit(main())
