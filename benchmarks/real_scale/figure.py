"""Peak memory and time against the number of images, from results/*.json (run.py's files)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    runs = [json.loads(p.read_text()) for p in sorted((HERE / "results").glob("*.json"))]
    runs = [r for r in runs if r["threads"] * r["world"] == 2]  # 2 cores: 1 x 2 threads or 2 x 1
    fig, (ax_m, ax_t) = plt.subplots(1, 2, figsize=(9, 3.6))
    for world, marker, label in ((1, "o", "one process"), (2, "s", "two gloo processes")):
        sel = sorted((r for r in runs if r["world"] == world), key=lambda r: r["images"])
        if not sel:
            continue
        n = [r["images"] for r in sel]
        ax_m.plot(n, [r["peak_rss_bytes"] / 2**30 for r in sel], marker=marker, label=f"{label} (max RSS of a rank)")
        ax_t.plot(n, [r["stats_s"] for r in sel], marker=marker, label=f"{label}: statistics")
        solved = [r for r in sel if r["solve_s"] is not None]
        if solved:
            ax_t.plot([r["images"] for r in solved], [r["stats_s"] + r["solve_s"] for r in solved], marker=marker,
                      linestyle="--", label=f"{label}: statistics + solves")
    # the old path: every activation held (0.14 GB per image, issue 16)
    xs = sorted({r["images"] for r in runs})
    ax_m.plot(xs, [0.14 * x + 1.3 for x in xs], color="grey", linestyle=":", label="activations held (0.14 GB/image)")
    ax_m.axhline(4, color="red", linewidth=0.8, label="target 4 GB")
    ax_m.set(xlabel="images (224 x 224)", ylabel="peak memory (GiB)", title="ResNet-50, every eligible conv")
    ax_m.set_ylim(0, max(6, ax_m.get_ylim()[1]))
    ax_t.axhline(900, color="red", linewidth=0.8, label="target 15 min")
    ax_t.set(xlabel="images (224 x 224)", ylabel="time (s)", title="GC + BGC, N = 2..32 (load: see README)")
    for ax in (ax_m, ax_t):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    for ext in ("png", "svg", "pdf"):
        fig.savefig(HERE / f"real_scale.{ext}", dpi=130)
    print("wrote", HERE / "real_scale.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
