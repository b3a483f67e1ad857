"""Speed of operator-level counting against torch's FlopCounterMode, in one run.

ResNeXt-101 (32x8d) at 1x3x224x224 on the meta device (nothing computed). Three timings,
each the best of ``--repeats`` runs, in interleaved order:

* ``flop_counter``: ``torch.utils.flop_counter.FlopCounterMode`` around a forward of the
  meta model under ``no_grad`` (the baseline);
* ``count_module``: ``groupconv.networks.count_module(meta_model, shape)``: tracing,
  module attribution and building the ``ModelCount`` (ops, layers, params);
* ``count_module_cpu_model``: the same from a model held on the CPU (its parameters
  swapped for meta tensors with ``torch.func.functional_call``).

The target is ``count_module / flop_counter <= 2``. Both counters are checked to agree
(FLOPs / 2 == MACs) before anything is timed.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/count/bench_count.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import time


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-cpu-model", action="store_true", help="skip the CPU-held model (355 MB)")
    args = parser.parse_args(argv)

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from groupconv.networks import count_module
    from groupconv.networks.torch_models import resnext101_32x8d

    shape = (1, 3, 224, 224)
    meta = resnext101_32x8d(device="meta")
    x = torch.zeros(shape, device="meta")

    def flop_counter() -> int:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            meta(x)
        return counter.get_total_flops()

    count = count_module(meta, shape)
    assert flop_counter() == 2 * count.macs, "the two counters disagree"
    rows = {}
    cases = {"flop_counter": flop_counter, "count_module": lambda: count_module(meta, shape)}
    if not args.no_cpu_model:
        cpu = resnext101_32x8d()
        cases["count_module_cpu_model"] = lambda: count_module(cpu, shape)
    for fn in cases.values():  # warm-up (first-call costs of both)
        fn()
    results = {name: [] for name in cases}
    for _ in range(args.repeats):  # interleaved: each round times every case once
        for name, fn in cases.items():
            results[name].append(best_of(fn, 1))
    for name, times in results.items():
        rows[name] = min(times)
    base = rows["flop_counter"]
    print(f"ResNeXt-101 32x8d, input {shape}, meta device, {len(count.ops)} aten ops, "
          f"{count.macs:,} MACs, best of {args.repeats}, torch {torch.__version__}")
    print(f"{'case':<24} {'time_s':>8} {'/flop_counter':>14}")
    for name, t in rows.items():
        print(f"{name:<24} {t:8.3f} {t / base:14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
