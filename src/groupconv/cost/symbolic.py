"""The papers' cost formulas as sympy expressions, and the optimum group size model derived from them.

Everything here is exact and symbolic; :mod:`groupconv.cost.numeric` turns these very
expressions into numpy functions (one source of truth).

E2GC notation (Jha et al., VLSID 2020), used for Tables I/II and Eq. 1-4:

=========  ====================================================================
``m``      input feature maps (ifmaps, input channels)
``n``      output feature maps (ofmaps, output channels)
``d_k``    kernel side (d_k x d_k filters)
``h, w``   feature-map height and width (the paper assumes input = output size)
``g``      number of groups (treated as a positive real in the optimum model)
``G``      group size, G = m / g
``B``      batch size (weights read once per batch, activations once per frame)
``alpha``  alpha in (0, 1]: on-chip data reuse of the platform (Eq. 1)
``beta``   beta in (0, 1): energy disparity between a MAC and a memory access (Eq. 1)
``C``      the paper's ``const`` in Eq. 1
``gamma``  gamma = const * alpha**(-beta) (below Eq. 1)
``d_f``    feature-map side when h = w (Eq. 3)
=========  ====================================================================

BGC notation (Lee, Park, Lee, Neural Networks; Table 1, Sec. 3.3 and 4). **The BGC paper
swaps the letters**: its ``n`` is the number of *input* channels and its ``m`` the number
of *output* channels. To keep the two papers apart, the BGC expressions here use
``n_in`` (the BGC paper's n = E2GC's m) and ``m_out`` (the BGC paper's m = E2GC's n),
plus ``K`` (taps of a single-channel convolution, K = d_k**2), ``N`` (groups, = E2GC's g)
and ``D`` (size of one input channel; for a 2-D map with "same" padding D = h*w).
:func:`bgc_table_markdown` can print them with the paper's own letters.

BGC counting convention (read from Sec. 3.3): the paper counts one operation per
multiply-accumulate of a convolution block (a standard convolution "requires KDmn" and a
group convolution "KDmn/N"), so the factor 2 in Eq. 3.14 comes from the **2N blocks** of
(3.1) (N diagonal blocks and N balancing blocks), not from counting 2 FLOPs per MAC. The
extra ``nD`` term counts the scalar operations of the intergroup mean. The convolution
terms are therefore MACs (multiply by 2 for FLOPs).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .. import _validate as v
from ..errors import GroupConvError

__all__ = [
    # E2GC symbols
    "m",
    "n",
    "d_k",
    "h",
    "w",
    "g",
    "G",
    "B",
    "alpha",
    "beta",
    "gamma",
    "const",
    "d_f",
    "M_c",
    "P",
    "A",
    "AI",
    # E2GC Table I (standard convolution)
    "SCONV_MACS",
    "SCONV_PARAMS",
    "SCONV_ACTIVATIONS",
    "SCONV_AI",
    # E2GC Table II (group convolution)
    "GCONV_MACS",
    "GCONV_PARAMS",
    "GCONV_ACTIVATIONS",
    "GCONV_AI",
    "GCONV_AI_DEFINITION",
    "GCONV_AI_BATCH",
    "GROUP_SIZE",
    "MEMORY_ACCESS_PROXY",
    # E2GC Eq. 1-4
    "EQ1_LHS",
    "EQ1_PRINTED_LHS",
    "EQ1_PRINTED_RHS",
    "GAMMA_DEFINITION",
    "EQ2_PRINTED",
    "EQ3_PROPORTIONAL",
    "BALANCE_LHS",
    "BALANCE_LHS_A_DROPPED",
    "ENERGY_PROXY",
    "derive_eq1",
    "derive_eq2",
    "derive_eq2_batch",
    "derive_eq3",
    "derive_eq4",
    "energy_proxy_log_derivative",
    "full_balance_half_beta",
    "derivation_steps",
    # tables
    "Row",
    "FormulaTable",
    "TABLE_I",
    "TABLE_II",
    # BGC
    "K",
    "N",
    "D",
    "n_in",
    "m_out",
    "m_N",
    "n_N",
    "BGC_EQ_3_14_BLOCKS",
    "BGC_EQ_3_14",
    "BGC_CONV_MACS",
    "BGC_MEAN_OPS",
    "GCVariant",
    "BGC_TABLE",
    "bgc_variant",
    "bgc_cost_by_blocks",
    "bgc_table_markdown",
]

# --------------------------------------------------------------------------------------
# E2GC symbols
# --------------------------------------------------------------------------------------
m = sp.Symbol("m", positive=True, integer=True)
n = sp.Symbol("n", positive=True, integer=True)
d_k = sp.Symbol("d_k", positive=True, integer=True)
h = sp.Symbol("h", positive=True, integer=True)
w = sp.Symbol("w", positive=True, integer=True)
g = sp.Symbol("g", positive=True)
G = sp.Symbol("G", positive=True)
B = sp.Symbol("B", positive=True, integer=True)
alpha = sp.Symbol("alpha", positive=True)
beta = sp.Symbol("beta", positive=True)
gamma = sp.Symbol("gamma", positive=True)
const = sp.Symbol("C", positive=True)
d_f = sp.Symbol("d_f", positive=True, integer=True)

# Abstract quantities of Eq. 1 (before Table II is substituted).
M_c = sp.Symbol("M_c", positive=True)
P = sp.Symbol("P", positive=True)
A = sp.Symbol("A", positive=True)
AI = sp.Symbol("AI", positive=True)

# --------------------------------------------------------------------------------------
# E2GC Table I: standard convolution (SConv)
# --------------------------------------------------------------------------------------
SCONV_MACS = n * m * d_k**2 * h * w
SCONV_PARAMS = n * m * d_k**2
SCONV_ACTIVATIONS = (n + m) * h * w
SCONV_AI = SCONV_MACS / (SCONV_PARAMS + SCONV_ACTIVATIONS)
GROUP_SIZE = m / g

# --------------------------------------------------------------------------------------
# E2GC Table II: group convolution (GConv) with g groups
# --------------------------------------------------------------------------------------
GCONV_MACS = n * m * h * w * d_k**2 / g
GCONV_PARAMS = n * m * d_k**2 / g
GCONV_ACTIVATIONS = (n + m) * h * w
#: AI exactly as printed in Table II.
GCONV_AI = (n * m * h * w * d_k**2) / (n * m * d_k**2 + g * (n + m) * h * w)
#: AI from its definition M_c / (P + A) (Table I); equal to GCONV_AI (tested).
GCONV_AI_DEFINITION = GCONV_MACS / (GCONV_PARAMS + GCONV_ACTIVATIONS)
#: Batch-aware AI: weights once per batch, activations once per frame (our extension;
#: equals GCONV_AI at B = 1).
GCONV_AI_BATCH = B * GCONV_MACS / (GCONV_PARAMS + B * GCONV_ACTIVATIONS)
#: The paper's "number of memory accesses", estimated as 1/AI (Sec. III-A, Fig. 3).
MEMORY_ACCESS_PROXY = 1 / GCONV_AI_BATCH

# --------------------------------------------------------------------------------------
# E2GC Eq. 1-4: the optimum group size model
# --------------------------------------------------------------------------------------
#: Eq. 1, left-hand side as written: M_c * (alpha / AI)**beta (= const).
EQ1_LHS = M_c * (alpha / AI) ** beta
#: Eq. 1, second line, as printed: M_c**(1-beta) * (A + P)**beta = const * alpha**(-beta).
EQ1_PRINTED_LHS = M_c ** (1 - beta) * (A + P) ** beta
EQ1_PRINTED_RHS = const * alpha ** (-beta)
#: gamma = const * alpha**(-beta) (text below Eq. 1).
GAMMA_DEFINITION = const * alpha ** (-beta)
#: Eq. 2 as printed: g = m n d_k^2 (h w)^(1-beta) / gamma.
EQ2_PRINTED = m * n * d_k**2 * (h * w) ** (1 - beta) / gamma
#: Eq. 3 as printed: g proportional to m n d_f (h = w = d_f, beta = 1/2).
EQ3_PROPORTIONAL = m * n * d_f

#: Eq. 1's balance quantity with Table II substituted and A *kept*, batch-aware:
#: M_c**(1-beta) * (P/B + A)**beta (= gamma). At B = 1 this is M_c^(1-beta) (P + A)^beta.
BALANCE_LHS = GCONV_MACS ** (1 - beta) * (GCONV_PARAMS / B + GCONV_ACTIVATIONS) ** beta
#: The same with A dropped (the paper's step before Eq. 2), batch-aware.
BALANCE_LHS_A_DROPPED = GCONV_MACS ** (1 - beta) * (GCONV_PARAMS / B) ** beta
#: Eq. 1's energy proxy per frame, M_c * (alpha / AI_B)**beta (Table II substituted).
ENERGY_PROXY = GCONV_MACS * (alpha / GCONV_AI_BATCH) ** beta


def _collect_powers(expr: sp.Expr) -> sp.Expr:
    """Split products inside powers and merge equal bases (valid: every symbol is positive)."""
    return sp.powsimp(sp.expand_power_base(sp.powsimp(expr)))


@lru_cache(maxsize=None)
def derive_eq1() -> sp.Equality:
    """Eq. 1, second line, derived from the first.

    Substitutes AI = M_c / (A + P) into ``M_c (alpha/AI)**beta = const`` and divides by
    alpha**beta.

    Returns
    -------
    sympy.Equality
        ``M_c**(1-beta) * (A + P)**beta == const * alpha**(-beta)``.
    """
    lhs = EQ1_LHS.subs(AI, M_c / (A + P))
    lhs = _collect_powers(lhs / alpha**beta)
    return sp.Eq(lhs, const * alpha ** (-beta), evaluate=False)


@lru_cache(maxsize=None)
def derive_eq2() -> sp.Expr:
    """Eq. 2: the g that satisfies the balance M_c**(1-beta) * P**beta = gamma.

    A is dropped (it does not depend on g, Table II), M_c and P are taken from Table II
    and the equation is solved for g with :func:`sympy.solve`.

    Returns
    -------
    sympy.Expr
        g as a function of m, n, d_k, h, w, beta and gamma; equal to :data:`EQ2_PRINTED`.
    """
    lhs = _collect_powers(GCONV_MACS ** (1 - beta) * GCONV_PARAMS**beta)
    (solution,) = sp.solve(sp.Eq(lhs, gamma), g)
    return solution


@lru_cache(maxsize=None)
def derive_eq2_batch() -> sp.Expr:
    """Eq. 2 with the batch-aware AI (our extension; equal to Eq. 2 at B = 1).

    With AI_B = B M_c / (P + B A), Eq. 1 reads M_c**(1-beta) (P/B + A)**beta = gamma;
    dropping A as the paper does and solving for g gives
    g = m n d_k^2 (h w)^(1-beta) / (gamma B^beta).
    """
    lhs = _collect_powers(BALANCE_LHS_A_DROPPED)
    (solution,) = sp.solve(sp.Eq(lhs, gamma), g)
    return solution


@lru_cache(maxsize=None)
def derive_eq3() -> sp.Expr:
    """Eq. 3: Eq. 2 with h = w = d_f and beta = 1/2, i.e. g = m n d_k^2 d_f / gamma."""
    return sp.simplify(derive_eq2().subs({h: d_f, w: d_f, beta: sp.Rational(1, 2)}))


@lru_cache(maxsize=None)
def derive_eq4() -> tuple[sp.Expr, sp.Expr]:
    """Eq. 4: the group size G = m / g before and after d_f -> d_f/2, n -> 2n.

    Returns
    -------
    (G_before, G_after) : tuple of sympy.Expr
        G from Eq. 3, and G after the spatial side halves and the width doubles. Their
        difference simplifies to 0 (tested): G is a constant of such a network.
    """
    G_before = sp.simplify(m / derive_eq3())
    G_after = sp.simplify(G_before.subs({d_f: d_f / 2, n: 2 * n}, simultaneous=True))
    return G_before, G_after


@lru_cache(maxsize=None)
def energy_proxy_log_derivative() -> sp.Expr:
    """d ln E / d g for the energy proxy E(g) = M_c (alpha/AI_B)**beta (Table II).

    It equals ``-(1-beta)/g - beta P/(g (P + B A))``: negative for every g > 0 and
    beta in (0, 1). E(g) therefore falls monotonically with g, and so does the
    A-dropped balance quantity M_c**(1-beta) P**beta = m n d_k^2 (hw)^(1-beta) / g.
    """
    log_e = sp.expand_log(sp.log(ENERGY_PROXY), force=True)
    return sp.simplify(sp.diff(log_e, g))


@lru_cache(maxsize=None)
def full_balance_half_beta() -> sp.Expr:
    """The g that solves Eq. 1 with A kept, at beta = 1/2 and B = 1 (closed form).

    For general beta sympy finds no closed form (``sympy.solve`` raises
    NotImplementedError), which is why :func:`groupconv.cost.optimum.balance_groups_full`
    solves it numerically. At beta = 1/2 the balance is a quadratic in g; its positive
    root is returned and serves as an independent check of the numeric solver.
    """
    lhs = BALANCE_LHS.subs({beta: sp.Rational(1, 2), B: 1})
    # Squaring both sides gives M_c (P + A) = gamma**2: a quadratic in g whose roots have
    # the product -(m n d_k^2)^2 h w / gamma**2 < 0, so exactly one of them is positive.
    roots = sp.solve(sp.Eq(lhs**2, gamma**2), g)
    sample = {m: 8, n: 8, d_k: 3, h: 4, w: 4, gamma: 5}
    (root,) = [r for r in roots if r.subs(sample) > 0]
    return root


def derivation_steps() -> list[tuple[str, sp.Basic]]:
    """The derivation Eq. 1 -> Eq. 4 as (explanation, sympy object) pairs, for display."""
    eq1 = derive_eq1()
    g2 = derive_eq2()
    g3 = derive_eq3()
    G_before, G_after = derive_eq4()
    return [
        ("Eq. 1 (as written): balance of MACs and memory accesses", sp.Eq(EQ1_LHS, const)),
        ("substitute AI = M_c/(A+P) and divide by alpha^beta", eq1),
        ("let gamma = const * alpha^(-beta)", sp.Eq(gamma, GAMMA_DEFINITION)),
        ("drop A (it does not depend on g)", sp.Eq(M_c ** (1 - beta) * P**beta, gamma)),
        (
            "substitute M_c and P from Table II",
            sp.Eq(GCONV_MACS ** (1 - beta) * GCONV_PARAMS**beta, gamma),
        ),
        ("solve for g: Eq. 2", sp.Eq(g, g2)),
        ("h = w = d_f, beta = 1/2: Eq. 3 (g proportional to m n d_f)", sp.Eq(g, g3)),
        ("group size G = m/g from Eq. 3", sp.Eq(G, G_before)),
        ("after d_f -> d_f/2 and n -> 2n: Eq. 4 (G unchanged)", sp.Eq(G, G_after)),
    ]


# --------------------------------------------------------------------------------------
# Tables for display
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One quantity of a formula table.

    Parameters
    ----------
    key : str
        Short name to look it up with (``"M_c"``).
    label : str
        What it is (``"# MACs"``).
    expr : sympy.Expr
        The formula.
    """

    key: str
    label: str
    expr: sp.Expr


@dataclass(frozen=True)
class FormulaTable:
    """A paper's table of formulas: look rows up by key, render as Markdown with LaTeX."""

    title: str
    rows: tuple[Row, ...]

    def __getitem__(self, key: str) -> sp.Expr:
        for row in self.rows:
            if row.key == key:
                return row.expr
        raise GroupConvError(
            f"unknown quantity {key!r}; choose one of {', '.join(self.keys())}"
        )

    def keys(self) -> list[str]:
        return [row.key for row in self.rows]

    def as_dict(self) -> dict[str, sp.Expr]:
        return {row.key: row.expr for row in self.rows}

    def to_markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| quantity | symbol | expression |", "| --- | --- | --- |"]
        for row in self.rows:
            lines.append(f"| {row.label} | ${sp.latex(sp.Symbol(row.key))}$ | ${sp.latex(row.expr)}$ |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


TABLE_I = FormulaTable(
    "E2GC Table I: standard convolution (SConv)",
    (
        Row("M_c", "# MACs", SCONV_MACS),
        Row("P", "# parameters", SCONV_PARAMS),
        Row("A", "# activations", SCONV_ACTIVATIONS),
        Row("AI", "arithmetic intensity M_c/(P+A)", SCONV_AI),
        Row("G", "# channels in a group", GROUP_SIZE),
    ),
)

TABLE_II = FormulaTable(
    "E2GC Table II: group convolution (GConv) with g groups",
    (
        Row("M_c", "# MACs", GCONV_MACS),
        Row("P", "# parameters", GCONV_PARAMS),
        Row("A", "# activations (ifmaps + ofmaps)", GCONV_ACTIVATIONS),
        Row("AI", "arithmetic intensity", GCONV_AI),
        Row("AI_B", "batch-aware AI (weights once per batch; ours)", sp.cancel(GCONV_AI_BATCH)),
    ),
)

# --------------------------------------------------------------------------------------
# BGC paper: Table 1, Sec. 3.3 (Eq. 3.14) and Sec. 4
# --------------------------------------------------------------------------------------
K = sp.Symbol("K", positive=True, integer=True)
N = sp.Symbol("N", positive=True, integer=True)
D = sp.Symbol("D", positive=True, integer=True)
#: The BGC paper's n: number of *input* channels (E2GC's m).
n_in = sp.Symbol("n_in", positive=True, integer=True)
#: The BGC paper's m: number of *output* channels (E2GC's n).
m_out = sp.Symbol("m_out", positive=True, integer=True)
#: Channels per group, m_N = m/N and n_N = n/N (BGC Sec. 2).
m_N = sp.Symbol("m_N", positive=True, integer=True)
n_N = sp.Symbol("n_N", positive=True, integer=True)

#: Eq. 3.14, left side as printed: 2 N m_N n_N K D + n D.
BGC_EQ_3_14_BLOCKS = 2 * N * m_N * n_N * K * D + n_in * D
#: Eq. 3.14, right side as printed: 2 K D m n / N + D n.
BGC_EQ_3_14 = 2 * K * D * m_out * n_in / N + D * n_in
#: The two convolutions of (3.1), in MACs: 2 K D m n / N.
BGC_CONV_MACS = 2 * K * D * m_out * n_in / N
#: The intergroup mean x_bar of (3.1): n D scalar operations.
BGC_MEAN_OPS = D * n_in


def bgc_cost_by_blocks() -> sp.Expr:
    """Eq. 3.14 counted block by block from the definition (3.1), for checking.

    Each of the N diagonal blocks W^kk and each of the N balancing blocks W_bar^k maps
    n_N channels to m_N channels with K taps over D positions: m_N n_N K D MACs. The mean
    x_bar = (1/N) sum_k x^k costs (N-1) n_N D additions and n_N D scalings.
    """
    k = sp.Symbol("k", positive=True, integer=True)
    block = m_out / N * (n_in / N) * K * D
    diagonal = sp.Sum(block, (k, 1, N)).doit()
    balancing = sp.Sum(block, (k, 1, N)).doit()
    mean = (N - 1) * (n_in / N) * D + (n_in / N) * D
    return diagonal + balancing + mean


@dataclass(frozen=True)
class GCVariant:
    """One row of BGC Table 1 with its exact computational cost.

    Parameters
    ----------
    key : str
        Short name: ``"SC"``, ``"GC"``, ``"Shuffle"``, ``"LGC"``, ``"FLGC"``, ``"TLGC"``, ``"BGC"``.
    name : str
        Full name and reference as in the paper.
    communication : bool
        Whether groups exchange information within the layer or network.
    channels_per_group, grouping, cost_order : str
        The table's text columns.
    params : sympy.Expr
        Number of parameters (Table 1), in n_in, m_out, K, N.
    cost : sympy.Expr
        Scalar operations of one forward pass (Sec. 3.3 and 4), in n_in, m_out, K, N, D.
    cost_source : str
        Where in the paper the cost formula is printed, or how we read it.
    """

    key: str
    name: str
    communication: bool
    channels_per_group: str
    grouping: str
    params: sp.Expr
    cost: sp.Expr
    cost_order: str
    cost_source: str


BGC_TABLE: tuple[GCVariant, ...] = (
    GCVariant(
        "SC", "standard convolution", True, "n", "-", K * m_out * n_in, K * D * m_out * n_in,
        "O(1)", "Sec. 3.3: 'the standard convolution ... require[s] KDmn'",
    ),
    GCVariant(
        "GC", "GC (Krizhevsky et al., 2017)", False, "n/N", "deterministic",
        K * m_out * n_in / N, K * D * m_out * n_in / N, "O(1/N)",
        "Sec. 3.3: 'the group convolution require[s] KDmn/N'",
    ),
    GCVariant(
        "Shuffle", "Shuffle (Zhang et al., 2018)", True, "n/N", "deterministic",
        K * m_out * n_in / N, K * D * m_out * n_in / N, "O(1/N)",
        "our reading: GC plus a channel permutation, which costs no arithmetic",
    ),
    GCVariant(
        "LGC", "Learnable GC (Huang et al., 2018)", True, "n/N", "adaptive",
        2 * K * m_out * n_in,
        D * K * m_out * n_in / N + (N - 1) * (K * m_out * n_in / N + m_out * n_in / N + 1),
        "greater", "Sec. 4",
    ),
    GCVariant(
        "FLGC", "Fully learnable GC (Wang et al., 2019)", True, "varies", "adaptive",
        K * m_out * n_in + N * n_in + N * m_out,
        D * K * m_out * n_in / N + (n_in + m_out) * N**2 + K * m_out * n_in / N,
        "greater", "Sec. 4",
    ),
    GCVariant(
        "TLGC", "Two-level GC (Lee et al., 2022)", True, "n/N", "deterministic",
        K * m_out * n_in / N + K * n_in + N * m_out,
        D * K * m_out * n_in / N + D * K * n_in + D * N * m_out,
        "greater", "Sec. 4",
    ),
    GCVariant(
        "BGC", "BGC (Lee, Park, Lee)", True, "n/N", "deterministic",
        2 * K * m_out * n_in / N, BGC_EQ_3_14, "O(1/N)", "Eq. 3.14",
    ),
)


def bgc_variant(key: str) -> GCVariant:
    """The row of :data:`BGC_TABLE` named ``key`` (``"GC"``, ``"BGC"``, ...)."""
    v.one_of("group convolution variant", key, [row.key for row in BGC_TABLE])
    return next(row for row in BGC_TABLE if row.key == key)


def bgc_table_markdown(paper_letters: bool = True) -> str:
    """BGC Table 1 (parameters) with the exact costs, as Markdown with LaTeX.

    Parameters
    ----------
    paper_letters : bool
        Print n_in as ``n`` and m_out as ``m``, as the BGC paper does (its n is the number
        of input channels). With ``False`` the unambiguous names are kept.
    """
    names = {n_in: "n", m_out: "m"} if paper_letters else {}
    lines = [
        "| method | intergroup commun. | channels per group | grouping | # parameters | cost | order |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in BGC_TABLE:
        params = sp.latex(row.params, symbol_names=names)
        cost = sp.latex(row.cost, symbol_names=names)
        lines.append(
            f"| {row.name} | {'yes' if row.communication else 'no'} | {row.channels_per_group} "
            f"| {row.grouping} | ${params}$ | ${cost}$ | {row.cost_order} |"
        )
    return "\n".join(lines)
