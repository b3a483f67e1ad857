"""How fast are the numeric twins? Vectorised numpy vs a ConvLayer loop vs sympy subs.

Run: PYTHONPATH=src python benchmarks/cost/bench_cost_numeric.py
Timings depend on the machine and its load; they are indicative only.
"""

from __future__ import annotations

import time

import numpy as np

from groupconv.cost import ConvLayer, arithmetic_intensity, macs
from groupconv.cost import symbolic as S
from groupconv.cost.optimum import balance_groups_full


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    rng = np.random.default_rng(0)
    size = 1_000_000
    g = 2 ** rng.integers(0, 6, size)
    m = g * rng.integers(1, 32, size)
    n = g * rng.integers(1, 32, size)
    d = rng.integers(1, 112, size)
    macs(8, 8, 3, 4, 4)  # lambdify once

    t_np = timed(lambda: (macs(m, n, 3, d, d, g), arithmetic_intensity(m, n, 3, d, d, g, 8)))
    k = 20_000
    t_loop = timed(
        lambda: [
            (lay.macs, lay.arithmetic_intensity)
            for lay in (ConvLayer(int(m[i]), int(n[i]), 3, int(d[i]), int(d[i]), groups=int(g[i]), batch=8) for i in range(k))
        ],
        repeat=1,
    )
    k_sym = 200
    t_sym = timed(
        lambda: [
            float(S.GCONV_AI_BATCH.subs({S.m: int(m[i]), S.n: int(n[i]), S.d_k: 3, S.h: int(d[i]), S.w: int(d[i]), S.g: int(g[i]), S.B: 8}))
            for i in range(k_sym)
        ],
        repeat=1,
    )
    t_solve = timed(lambda: balance_groups_full(m[:100_000], n[:100_000], 3, d[:100_000], d[:100_000], 0.5, 1e6))
    print(f"numeric (MACs + AI), {size:,} layers: {t_np * 1e3:8.1f} ms  ({t_np / size * 1e9:.1f} ns/layer)")
    print(f"ConvLayer loop, {k:,} layers:        {t_loop * 1e3:8.1f} ms  ({t_loop / k * 1e9:.1f} ns/layer)")
    print(f"sympy subs (AI), {k_sym} layers:          {t_sym * 1e3:8.1f} ms  ({t_sym / k_sym * 1e9:.1f} ns/layer)")
    print(f"full-balance solver, 100,000 layers: {t_solve * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
