"""The symbolic model: Tables I/II, the derivation Eq. 1 -> Eq. 4, and BGC's cost formulas."""

import math
import random

import pytest
import sympy as sp

from groupconv.cost import ConvLayer
from groupconv.cost import symbolic as S
from groupconv.errors import GroupConvError


def is_zero(expr: sp.Expr) -> bool:
    return sp.simplify(expr) == 0


def random_point(symbols, seed: int) -> dict:
    """Random positive values (rationals, so sympy stays exact) for the given symbols."""
    rng = random.Random(seed)
    return {s: sp.Rational(rng.randint(1, 400), rng.randint(1, 7)) for s in symbols}


# --- Tables I and II ----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["M_c", "P", "A", "AI"])
def test_table_ii_reduces_to_table_i_without_groups(key):
    assert is_zero(S.TABLE_II[key].subs(S.g, 1) - S.TABLE_I[key])


def test_table_ii_ai_as_printed_equals_its_definition():
    assert is_zero(S.GCONV_AI - S.GCONV_AI_DEFINITION)
    assert is_zero(S.GCONV_AI - S.TABLE_II["M_c"] / (S.TABLE_II["P"] + S.TABLE_II["A"]))


def test_batch_aware_ai_reduces_to_table_ii_at_batch_one():
    assert is_zero(S.GCONV_AI_BATCH.subs(S.B, 1) - S.GCONV_AI)
    assert is_zero(S.TABLE_II["AI_B"] - S.GCONV_AI_BATCH)
    # the memory-access proxy against ConvLayer's batch traffic (weights once, activations B times)
    layer = ConvLayer(96, 64, 3, 7, 9, groups=8, batch=16)
    point = {S.m: 96, S.n: 64, S.d_k: 3, S.h: 7, S.w: 9, S.g: 8, S.B: 16}
    assert S.MEMORY_ACCESS_PROXY.subs(point) == sp.Rational(layer.elements_moved, 16 * layer.macs)


def test_activations_do_not_depend_on_groups_but_macs_and_params_do():
    assert sp.diff(S.GCONV_ACTIVATIONS, S.g) == 0
    assert is_zero(S.GCONV_MACS * S.g - S.SCONV_MACS)
    assert is_zero(S.GCONV_PARAMS * S.g - S.SCONV_PARAMS)


@pytest.mark.parametrize("m, n, k, d, g", [(512, 512, 3, 14, 32), (64, 128, 1, 56, 4), (24, 36, 5, 7, 12)])
def test_table_ii_matches_conv_layer_counts(m, n, k, d, g):
    layer = ConvLayer(m, n, k, d, d, groups=g)
    point = {S.m: m, S.n: n, S.d_k: k, S.h: d, S.w: d, S.g: g}
    assert S.GCONV_MACS.subs(point) == layer.macs
    assert S.GCONV_PARAMS.subs(point) == layer.params
    assert S.GCONV_ACTIVATIONS.subs(point) == layer.activations
    assert S.GCONV_AI.subs(point) == sp.Rational(layer.macs, layer.params + layer.activations)


def test_table_lookup_and_markdown():
    assert S.TABLE_I.keys() == ["M_c", "P", "A", "AI", "G"]
    md = S.TABLE_II.to_markdown()
    assert md.count("\n| ") == len(S.TABLE_II.rows) + 2  # header, separator, one per quantity
    assert sp.latex(S.GCONV_MACS) in md
    with pytest.raises(GroupConvError, match="unknown quantity 'X'"):
        S.TABLE_II["X"]


# --- Eq. 1 -> Eq. 4 -----------------------------------------------------------------------


def test_eq1_second_line_is_derived_from_the_first():
    derived = S.derive_eq1()
    assert is_zero(derived.lhs - S.EQ1_PRINTED_LHS)
    assert is_zero(derived.rhs - S.EQ1_PRINTED_RHS)
    # Independently of sympy's simplifier: both sides of the step agree numerically.
    for seed in range(5):
        pt = random_point([S.M_c, S.A, S.P, S.alpha, S.beta], seed)
        first_line = S.EQ1_LHS.subs(S.AI, S.M_c / (S.A + S.P)).subs(pt)
        second_line = (S.EQ1_PRINTED_LHS * S.alpha**S.beta).subs(pt)
        assert float(first_line) == pytest.approx(float(second_line), rel=1e-12)


def test_eq2_derived_by_sympy_equals_the_printed_form():
    derived = S.derive_eq2()
    assert is_zero(derived - S.EQ2_PRINTED)
    # ... and it does satisfy the balance it was solved from.
    balance = S.GCONV_MACS ** (1 - S.beta) * S.GCONV_PARAMS**S.beta
    assert is_zero(sp.powsimp(sp.expand_power_base(balance.subs(S.g, derived)), force=True) - S.gamma)


def test_eq2_is_not_trivially_equal_to_anything():
    # A wrong printed form must be detected: the test above can fail.
    wrong = S.m * S.n * S.d_k**2 * (S.h * S.w) ** S.beta / S.gamma
    assert not is_zero(S.derive_eq2() - wrong)


def test_batch_aware_eq2_reduces_to_eq2_and_solves_its_balance():
    derived = S.derive_eq2_batch()
    assert is_zero(derived.subs(S.B, 1) - S.EQ2_PRINTED)
    assert is_zero(derived - S.EQ2_PRINTED / S.B**S.beta)
    pt = random_point([S.m, S.n, S.d_k, S.h, S.w, S.beta, S.gamma, S.B], seed=3)
    pt[S.beta] = sp.Rational(3, 10)
    value = S.BALANCE_LHS_A_DROPPED.subs(S.g, derived).subs(pt)
    assert float(value) == pytest.approx(float(pt[S.gamma]), rel=1e-12)


def test_eq3_g_is_proportional_to_m_n_d_f():
    g3 = S.derive_eq3()
    assert is_zero(g3 - S.d_f * S.d_k**2 * S.m * S.n / S.gamma)
    ratio = sp.simplify(g3 / S.EQ3_PROPORTIONAL)
    assert not ratio.free_symbols & {S.m, S.n, S.d_f, S.h, S.w}
    assert ratio.free_symbols == {S.d_k, S.gamma}


def test_eq4_group_size_is_invariant_when_maps_halve_and_width_doubles():
    G_before, G_after = S.derive_eq4()
    assert is_zero(G_after - G_before)
    assert sp.diff(G_before, S.m) == 0  # g is proportional to m, so G = m/g is constant
    # Negative controls: doubling n alone, or halving d_f alone, changes G.
    assert not is_zero(G_before.subs(S.n, 2 * S.n) - G_before)
    assert not is_zero(G_before.subs(S.d_f, S.d_f / 2) - G_before)


def test_energy_proxy_falls_monotonically_with_groups():
    derivative = S.energy_proxy_log_derivative()
    P_, A_ = S.GCONV_PARAMS, S.GCONV_ACTIVATIONS
    expected = -(1 - S.beta) / S.g - S.beta * P_ / (S.g * (P_ + S.B * A_))
    assert is_zero(derivative - expected)
    # With beta = 1/(1+t), t > 0 (i.e. beta in (0, 1)), sympy proves it negative.
    t = sp.Symbol("t", positive=True)
    assert sp.factor(derivative.subs(S.beta, 1 / (1 + t))).is_negative is True


def test_energy_proxy_equals_alpha_power_times_balance():
    assert is_zero(
        sp.powsimp(sp.expand_power_base(S.ENERGY_PROXY / S.alpha**S.beta), force=True)
        - sp.powsimp(sp.expand_power_base(S.BALANCE_LHS), force=True)
    )


def test_full_balance_closed_form_at_half_beta_solves_the_balance():
    root = S.full_balance_half_beta()
    balance = S.BALANCE_LHS.subs({S.beta: sp.Rational(1, 2), S.B: 1})
    for seed in range(4):
        pt = random_point([S.m, S.n, S.d_k, S.h, S.w, S.gamma], seed)
        g_value = root.subs(pt)
        assert float(g_value) > 0
        lhs = balance.subs(pt).subs(S.g, g_value)
        assert float(lhs) == pytest.approx(float(pt[S.gamma]), rel=1e-10)
        # Keeping A makes the balancing g larger than Eq. 2's.
        assert float(g_value) > float(S.EQ2_PRINTED.subs(S.beta, sp.Rational(1, 2)).subs(pt))


def test_derivation_steps_end_with_eq4():
    steps = S.derivation_steps()
    assert all(isinstance(text, str) and isinstance(eq, sp.Equality) for text, eq in steps)
    assert is_zero(steps[5][1].rhs - S.EQ2_PRINTED)
    assert is_zero(steps[-1][1].rhs - steps[-2][1].rhs)


# --- BGC paper ------------------------------------------------------------------------------


def test_bgc_eq_3_14_both_sides_are_equal():
    blocks = S.BGC_EQ_3_14_BLOCKS.subs({S.m_N: S.m_out / S.N, S.n_N: S.n_in / S.N})
    assert is_zero(blocks - S.BGC_EQ_3_14)
    assert is_zero(S.BGC_CONV_MACS + S.BGC_MEAN_OPS - S.BGC_EQ_3_14)


def test_bgc_eq_3_14_counted_block_by_block():
    assert is_zero(S.bgc_cost_by_blocks() - S.BGC_EQ_3_14)


@pytest.mark.parametrize("n_in, m_out, k, d, groups", [(64, 64, 3, 8, 4), (32, 96, 1, 5, 8), (12, 18, 5, 3, 6)])
def test_bgc_convolutions_are_two_group_convolutions(n_in, m_out, k, d, groups):
    # (3.1): the N diagonal blocks form a group conv n_in -> m_out; the N balancing blocks
    # map the n_in/N-channel mean to m_out channels (a dense conv n_in/N -> m_out).
    diagonal = ConvLayer(n_in, m_out, k, d, d, groups=groups)
    balancing = ConvLayer(n_in // groups, m_out, k, d, d)
    pt = {S.n_in: n_in, S.m_out: m_out, S.K: k * k, S.N: groups, S.D: d * d}
    assert S.BGC_CONV_MACS.subs(pt) == diagonal.macs + balancing.macs
    assert S.bgc_variant("BGC").params.subs(pt) == diagonal.params + balancing.params
    assert S.bgc_variant("GC").params.subs(pt) == diagonal.params
    assert S.bgc_variant("GC").cost.subs(pt) == diagonal.macs


def test_bgc_params_match_real_torch_modules():
    torch = pytest.importorskip("torch")
    n_in, m_out, k, groups = 48, 32, 3, 4
    diagonal = torch.nn.Conv2d(n_in, m_out, k, groups=groups, bias=False)
    balancing = torch.nn.Conv2d(n_in // groups, m_out, k, bias=False)
    dense = torch.nn.Conv2d(n_in, m_out, k, bias=False)
    pt = {S.n_in: n_in, S.m_out: m_out, S.K: k * k, S.N: groups}
    count = lambda *mods: sum(p.numel() for mod in mods for p in mod.parameters())  # noqa: E731
    assert S.bgc_variant("BGC").params.subs(pt) == count(diagonal, balancing)
    assert S.bgc_variant("GC").params.subs(pt) == count(diagonal)
    assert S.bgc_variant("Shuffle").params.subs(pt) == count(diagonal)
    assert S.bgc_variant("SC").params.subs(pt) == count(dense)


def test_bgc_cost_relative_to_standard_convolution():
    sc = S.bgc_variant("SC").cost
    # Sec. 3.3: GC costs 1/N of SC; BGC "approximately 2/N": the mean term is a fixed
    # fraction 1/(K m) of SC, so the ratio tends to 2/N for many output channels.
    assert is_zero(S.bgc_variant("GC").cost / sc - 1 / S.N)
    ratio = sp.simplify(S.bgc_variant("BGC").cost / sc)
    assert is_zero(ratio - (2 / S.N + 1 / (S.K * S.m_out)))
    assert sp.limit(ratio, S.m_out, sp.oo) == 2 / S.N


@pytest.mark.parametrize("key", ["LGC", "FLGC", "TLGC"])
def test_costs_marked_greater_exceed_group_convolution(key):
    extra = S.bgc_variant(key).cost - S.bgc_variant("GC").cost
    for seed in range(5):
        rng = random.Random(seed)
        groups = rng.choice([2, 4, 8])
        pt = {S.n_in: groups * rng.randint(1, 64), S.m_out: groups * rng.randint(1, 64),
              S.K: rng.choice([1, 9]), S.N: groups, S.D: rng.randint(1, 3136)}
        assert extra.subs(pt) > 0


def test_bgc_table_rows_and_rendering():
    keys = [row.key for row in S.BGC_TABLE]
    assert keys == ["SC", "GC", "Shuffle", "LGC", "FLGC", "TLGC", "BGC"]
    with pytest.raises(GroupConvError, match="unknown group convolution variant 'XGC'"):
        S.bgc_variant("XGC")
    paper = S.bgc_table_markdown(paper_letters=True)
    ours = S.bgc_table_markdown(paper_letters=False)
    assert "n_{in}" not in paper and "m_{out}" not in paper
    assert "n_{in}" in ours and "m_{out}" in ours
    assert paper.count("\n") == len(S.BGC_TABLE) + 1


def test_bgc_letters_are_swapped_relative_to_e2gc():
    # TLGC's "K n" term counts input channels: with E2GC's m = inputs it is K m.
    tlgc = S.bgc_variant("TLGC").params
    e2gc = tlgc.subs({S.n_in: S.m, S.m_out: S.n, S.K: S.d_k**2, S.N: S.g}, simultaneous=True)
    assert is_zero(e2gc - (S.d_k**2 * S.m * S.n / S.g + S.d_k**2 * S.m + S.g * S.n))
    assert math.isclose(float(e2gc.subs({S.m: 64, S.n: 32, S.d_k: 3, S.g: 4})), 9 * 64 * 32 / 4 + 9 * 64 + 4 * 32)
