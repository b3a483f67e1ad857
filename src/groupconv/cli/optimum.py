"""``groupconv optimum-g``: the E2GC optimum number of groups (Eq. 2) for one layer."""

from __future__ import annotations

import argparse

import math

from ._common import float_arg, positive_int_arg, print_json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "optimum-g",
        help="optimum number of groups of a layer (E2GC Eq. 2)",
        description="E2GC Eq. 2, g = m n d_k^2 (h w)^(1-beta) / gamma, for one layer; the "
        "nearest g that divides both channel counts; the g that balances Eq. 1 with the "
        "activations kept; and the g that minimises the energy proxy M_c (alpha/AI)^beta "
        "(always the largest admissible g: the proxy falls monotonically with g).",
    )
    parser.add_argument("--in-channels", type=positive_int_arg, required=True, metavar="C_IN",
                        help="input channels (the paper's m)")
    parser.add_argument("--out-channels", type=positive_int_arg, required=True, metavar="C_OUT",
                        help="output channels (the paper's n)")
    parser.add_argument("--kernel", type=positive_int_arg, required=True, metavar="K", help="kernel side d_k")
    parser.add_argument("--size", type=positive_int_arg, required=True, metavar="H", help="feature-map height h")
    parser.add_argument("--width", type=positive_int_arg, metavar="W", help="feature-map width w (default: H)")
    parser.add_argument("--beta", type=float_arg, required=True, help="beta in (0, 1)")
    parser.add_argument("--gamma", type=float_arg, help="balance constant gamma > 0")
    parser.add_argument("--alpha", type=float_arg, help="alpha in (0, 1] (with --const, instead of --gamma)")
    parser.add_argument("--const", type=float_arg, help="Eq. 1's const > 0: gamma = const * alpha^-beta")
    parser.add_argument("--batch", type=positive_int_arg, default=1, metavar="B", help="batch size (default: 1)")
    parser.add_argument("--groups", type=positive_int_arg, metavar="G",
                        help="the layer's current number of groups")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cost.optimum import optimum_g

    result = optimum_g(
        args.in_channels,
        args.out_channels,
        args.kernel,
        args.size,
        args.width,
        beta=args.beta,
        gamma=args.gamma,
        alpha=args.alpha,
        const=args.const,
        batch=args.batch,
        groups=args.groups,
    )
    if args.json:
        print_json(result.as_dict())
        return 0
    r = result
    m = r.in_channels
    print(
        f"layer: m={m} n={r.out_channels} kernel={r.kernel}x{r.kernel} "
        f"map={r.height}x{r.width} batch={r.batch}"
    )
    print(f"model: beta={r.beta:g} gamma={r.gamma:g}")
    print(f"Eq. 2 (A dropped), real-valued g:        {r.g_eq2:.6g} (G = m/g = {r.G_eq2:.6g})")
    print(f"nearest admissible g (divides m and n):  {r.g} (G = {r.G})")
    cap = math.gcd(m, r.out_channels)
    if r.g_eq2 > cap:
        print(
            f"note: Eq. 2's g = {r.g_eq2:.6g} exceeds the largest admissible g = gcd(m, n) = {cap} "
            f"(G = {r.G_eq2:.3g} < 1 channel per group): at this gamma the balance lies beyond "
            "the finest grouping, so the admissible g stops there"
        )
    print(
        f"Eq. 1 with A kept, real-valued g:        {r.g_full:.6g} "
        f"(nearest admissible {r.g_full_admissible}, G = {m // r.g_full_admissible})"
    )
    print(
        f"g minimising M_c*(alpha/AI)^beta:        {r.g_min_energy} "
        "(always gcd(m, n): the proxy falls monotonically with g)"
    )
    if r.groups is not None:
        print(f"current g: {r.groups} (G = {m // r.groups}); Eq. 2 g / current g = {r.g_eq2 / r.groups:.3g}")
    return 0
