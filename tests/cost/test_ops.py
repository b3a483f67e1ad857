"""cost/ops.py: per-op formulas on plain shapes, checked against hand arithmetic."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.cost import ops
from groupconv.cost.ops import TensorSpec as T


def test_conv_formula_by_hand():
    # 8 -> 16 channels, groups 2, 3x3 kernel, 10x10 output, batch 1:
    # 16 * 100 output elements, each a dot product of (8 / 2) * 9 = 36 terms
    args = (T((1, 8, 10, 10)), T((16, 4, 3, 3)), None, [1, 1], [1, 1], [1, 1], False, [0, 0], 2)
    cost = ops.op_cost("aten.convolution.default", args, [T((1, 16, 10, 10))])
    assert cost.op_class == "conv" and cost.known
    assert cost.macs == 16 * 100 * 36
    assert cost.bytes_read == 4 * (8 * 100 + 16 * 4 * 9) and cost.bytes_written == 4 * 1600


def test_transposed_conv_formula_by_hand():
    # ConvTranspose1d 6 -> 9, groups 3, k 4, on length 5: every input element (6 * 5 per
    # item, batch 2) scatters a (9 / 3) * 4 = 12 patch
    args = (T((2, 6, 5)), T((6, 3, 4)), None, [2], [1], [1], True, [1], 3)
    cost = ops.op_cost("aten.convolution.default", args, [T((2, 9, 11))])
    assert cost.macs == 2 * 6 * 5 * 12


def test_matmul_formulas_by_hand():
    assert ops.op_cost("aten.mm.default", (T((3, 5)), T((5, 7))), [T((3, 7))]).macs == 3 * 5 * 7
    assert ops.op_cost("aten.addmm.default", (T((7,)), T((3, 5)), T((5, 7))), [T((3, 7))]).macs == 105
    assert ops.op_cost("aten.bmm.default", (T((4, 3, 5)), T((4, 5, 2))), [T((4, 3, 2))]).macs == 4 * 3 * 5 * 2
    cost = ops.op_cost("aten.baddbmm.default", (T((4, 3, 2)), T((4, 3, 5)), T((4, 5, 2))), [T((4, 3, 2))])
    assert cost.macs == 120 and cost.bytes_read == 4 * (24 + 60 + 40)


def test_attention_is_the_two_matmuls_written_out():
    # Q (2, 4, 7, 8), K (2, 4, 9, 8), V (2, 4, 9, 6): Q K^T is 2*4 * 7*8*9, P V is 2*4 * 7*9*6
    q, k, v = T((2, 4, 7, 8)), T((2, 4, 9, 8)), T((2, 4, 9, 6))
    expected = 2 * 4 * 7 * 8 * 9 + 2 * 4 * 7 * 9 * 6
    for name in (
        "aten._scaled_dot_product_flash_attention_for_cpu.default",
        "aten._scaled_dot_product_efficient_attention.default",
        "aten._scaled_dot_product_flash_attention.default",
    ):
        assert ops.op_cost(name, (q, k, v), [T((2, 4, 7, 6))]).macs == expected
    # (B, S, H, D) layout of _flash_attention_forward
    qs, ks, vs = T((2, 7, 4, 8)), T((2, 9, 4, 8)), T((2, 9, 4, 6))
    assert ops.op_cost("aten._flash_attention_forward.default", (qs, ks, vs), [T((2, 7, 4, 6))]).macs == expected


def test_views_move_nothing_and_inplace_reads_and_writes_its_target():
    x = T((2, 3, 4))
    for name in ("aten.view.default", "aten.transpose.int", "aten.expand.default", "aten.permute.default",
                 "aten.slice.Tensor", "aten.select.int", "aten.unsqueeze.default", "aten.t.default",
                 "aten.as_strided.default", "aten.alias.default", "aten.detach.default"):
        cost = ops.op_cost(name, (x,), [x])
        assert (cost.macs, cost.bytes_read, cost.bytes_written, cost.known) == (0, 0, 0, True), name
    add_ = ops.op_cost("aten.add_.Tensor", (x, x), [x])  # reads self and other, writes self
    assert (add_.op_class, add_.bytes_read, add_.bytes_written) == ("elementwise", 2 * 96, 96)
    copy_ = ops.op_cost("aten.copy_.default", (x, T((2, 3, 4), 2)), [x])  # reads the fp16 source only
    assert (copy_.bytes_read, copy_.bytes_written) == (48, 96)


def test_embedding_reads_only_the_gathered_rows():
    # a 50000 x 64 table, 2 x 10 int64 ids: reads 20 rows (20 * 64 * 4) and the ids
    cost = ops.op_cost("aten.embedding.default", (T((50000, 64)), T((2, 10), 8)), [T((2, 10, 64))])
    assert (cost.op_class, cost.macs) == ("embedding", 0)
    assert cost.bytes_read == 20 * 64 * 4 + 20 * 8 and cost.bytes_written == 20 * 64 * 4


def test_unknown_op_is_not_known_but_its_bytes_count():
    cost = ops.op_cost("aten._fft_r2c.default", (T((2, 8)),), [T((2, 5), 8)])
    assert not cost.known and cost.macs == 0 and cost.op_class == "other"
    assert (cost.bytes_read, cost.bytes_written) == (64, 80)


def test_every_class_is_declared():
    classes = {c for c, _ in ops.MAC_FORMULAS.values()} | set(ops.MAC_FREE_OPS.values())
    assert classes <= set(ops.OP_CLASSES)
    assert not set(ops.MAC_FORMULAS) & set(ops.MAC_FREE_OPS)


@settings(max_examples=50, deadline=None)
@given(
    groups=st.integers(1, 4), cin=st.integers(1, 3), cout=st.integers(1, 3), k=st.integers(1, 4),
    size=st.integers(1, 9), batch=st.integers(1, 3), dims=st.integers(1, 3),
)
def test_conv_macs_is_weights_times_output_positions(groups, cin, cout, k, size, batch, dims):
    """Non-transposed: MACs = batch * weights * output positions (E2GC Table II: M_c = P h w)."""
    m, n = groups * cin, groups * cout
    w = (n, cin, *([k] * dims))
    out = (batch, n, *([size] * dims))
    weights = n * cin * k**dims
    assert ops.conv_macs((batch, m, *([size] * dims)), w, out, False) == batch * weights * size**dims


def test_ops_imports_no_torch():
    code = "import sys, groupconv.cost.ops; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_docstring_examples():
    import doctest

    assert doctest.testmod(ops).failed == 0


def _offsets(lengths):
    cum = [0]
    for n in lengths:
        cum.append(cum[-1] + n)
    return T((len(cum),), 4, values=tuple(cum))


def test_jagged_attention_by_hand():
    # 4 sequences of 30, 30, 30, 33 tokens (123 packed), 4 heads of 16: every sequence
    # attends to itself: 4 * (3 * 30^2 + 33^2) * (16 + 16) = 4 * 3,789 * 32
    q = T((123, 4, 16))
    cum = _offsets((30, 30, 30, 33))
    flash = ops.op_cost("aten._flash_attention_forward.default", (q, q, q, cum, cum, 33, 33, 0.0, False, False), [q])
    assert flash.macs == 4 * 3789 * 32 == 484_992 and flash.op_class == "attention"
    q4 = T((1, 123, 4, 16))  # the efficient kernel's layout
    eff = ops.op_cost("aten._efficient_attention_forward.default", (q4, q4, q4, None, cum, cum, 33, 33, 0.0, 0), [q4])
    assert eff.macs == 484_992
    # backward: 3 * 16 + 2 * 16 per pair and head
    grad = ops.op_cost(
        "aten._flash_attention_backward.default", (q, q, q, q, q, T((4, 123)), cum, cum, 33, 33, 0.0, False, None, None), [q] * 3
    )
    assert grad.macs == 4 * 3789 * (3 * 16 + 2 * 16) == 1_212_480
    # offsets unknown (meta): 123 queries each attending to at most 33 keys, an upper bound
    blind = T((5,), 4)
    bound = ops.op_cost("aten._flash_attention_forward.default", (q, q, q, blind, blind, 33, 33, 0.0, False, False), [q])
    assert bound.macs == 4 * 123 * 33 * 32 >= 484_992
    # dense (B, S, H, D), no offsets: B * H * S_q * S_k * (D_qk + D_v), backward 3 D_qk + 2 D_v
    d = T((2, 64, 4, 32))
    assert ops.op_cost("aten._flash_attention_forward.default", (d, d, d, None, None, 64, 64, 0.0, False, False), [d]).macs == 2 * 4 * 64 * 64 * 64
    dense_grad = ops.op_cost(
        "aten._efficient_attention_backward.default", (d, d, d, d, None, d, None, None, 64, 64, T((2, 4, 64)), 0.0), [d] * 3
    )
    assert dense_grad.macs == 2 * 4 * 64 * 64 * (3 * 32 + 2 * 32)


def test_embedding_renorm_is_mac_free_and_touches_only_the_indexed_rows():
    table, ids = T((1000, 64)), T((2, 8), 8)
    cost = ops.op_cost("aten.embedding_renorm_.default", (table, ids, 1.0, 2.0), [table])
    assert cost.known and cost.macs == 0 and cost.op_class == "embedding"
    assert (cost.bytes_read, cost.bytes_written) == (16 * 64 * 4 + 16 * 8, 16 * 64 * 4)
