"""Per-operator cost formulas on plain shapes: MACs and bytes of one aten op call.

This is the torch-free half of operator-level counting (the tracer that feeds it is
:mod:`groupconv.networks.trace`). An op call is described by its aten name
(``"aten.convolution.default"``), its arguments with every tensor replaced by a
:class:`TensorSpec` (shape, bytes per element), and the specs of its outputs. The
registry :data:`MAC_FORMULAS` is keyed by the op's *packet* name (``"aten.convolution"``),
like ``torch/utils/flop_counter.py``'s ``flop_registry``.

Conventions
-----------
* ``macs``: multiply-accumulates of the whole call (the whole batch), one multiply-add =
  1 MAC; FLOPs = 2 MACs. Only ops that multiply and accumulate have MACs (convolutions,
  matrix products, attention); elementwise ops, normalisation, pooling, reductions and
  softmax are *MAC-free*: they cost bytes, not MACs.
* Convolution (any rank, grouped, dilated, strided): ``N * C_out * prod(out) * (C_in / g)
  * prod(k)`` (E2GC Table II's M_c = n (m/g) d_k^2 h w times the batch); transposed:
  ``N * C_in * prod(in) * (C_out / g) * prod(k)`` (each input point scatters a kernel).
* Matrix products: ``mm`` (M, K) x (K, N) is M K N MACs; ``bmm`` b M K N; ``addmm`` and
  ``baddbmm`` the same (the added term is a byte cost).
* Attention (every backend): ``B * H * S_q * S_k * (D_qk + D_v)``, the two matmuls
  ``Q K^T`` and ``P V`` written out (causal masking is not discounted); jagged (nested
  tensor) attention sums ``S_q,i * S_k,i`` over its sequences (the offsets' values);
  backward ``B * H * S_q * S_k * (3 D_qk + 2 D_v)``.
* Bytes: a *view* (view, reshape without copy, transpose, permute, expand, slice,
  select, unsqueeze, t, as_strided, alias, detach, split ...) moves nothing. Every other
  op reads each tensor argument once and writes each output once; an in-place op
  (``add_``) reads its target and writes it. Exceptions written out in
  :func:`op_bytes`: ``copy_`` reads only its source, ``fill_``/``zero_`` only write,
  ``embedding``/``index_select``/``gather`` read only the rows they gather; batch norm in
  eval writes only its output, in training also its running statistics.

Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "OP_CLASSES",
    "MAC_FORMULAS",
    "MAC_FREE_OPS",
    "VIEW_OPS",
    "FREE_OPS",
    "VALUE_ARGS",
    "TensorSpec",
    "OpCost",
    "attention_macs",
    "conv_macs",
    "op_bytes",
    "op_class",
    "op_cost",
    "packet_name",
]

#: The op classes an :class:`OpCost` can carry.
OP_CLASSES = (
    "conv", "conv_transpose", "matmul", "attention", "norm", "elementwise", "activation",
    "pool", "reduction", "softmax", "copy", "cat", "embedding", "rnn", "other",
)


@dataclass(frozen=True)
class TensorSpec:
    """A tensor as the formulas see it: shape and bytes per element (no data).

    ``stored`` is the number of distinct elements in memory when it is smaller than the
    shape says (a broadcast view made by ``expand`` has stride 0 along the broadcast
    dimensions: ``F.linear`` on a 3-D input hands ``bmm`` its weight expanded over the
    batch, which is read once, not once per batch item).

    ``contiguous`` is False for a tensor whose elements are not laid out row-major in its
    own order (a permuted or transposed view, a strided slice, a channels-last map): a
    kernel that needs a contiguous input copies it first. The counts here do not change
    with it; the time models read it (:mod:`groupconv.platform.models`).
    """

    shape: tuple[int, ...]
    itemsize: int = 4
    stored: int | None = None
    values: tuple[int, ...] | None = None  # a small integer tensor's values (sequence offsets), when known
    contiguous: bool = True

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes in memory: distinct elements times bytes per element."""
        return (self.numel if self.stored is None else self.stored) * self.itemsize


@dataclass(frozen=True)
class OpCost:
    """What one op call costs.

    Parameters
    ----------
    op_class : str
        One of :data:`OP_CLASSES`.
    macs : int
        Multiply-accumulates of the whole call.
    bytes_read, bytes_written : int
        Bytes of tensor arguments read and of outputs written (0 for views).
    known : bool
        False when the op has no MAC formula and is not known to be MAC-free (the
        tracer lists it as unsupported; its bytes are still counted).
    """

    op_class: str
    macs: int
    bytes_read: int
    bytes_written: int
    known: bool = True


def packet_name(op: str) -> str:
    """``"aten.convolution.default"`` -> ``"aten.convolution"`` (the overload dropped)."""
    parts = op.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else op


# --- MAC formulas -------------------------------------------------------------------
def conv_macs(x_shape: Sequence[int], w_shape: Sequence[int], out_shape: Sequence[int], transposed: bool) -> int:
    """MACs of a convolution of any rank, grouped or not, transposed or not.

    ``w_shape`` is torch's weight layout: ``(C_out, C_in / g, *k)`` for a convolution,
    ``(C_in, C_out / g, *k)`` for a transposed one. Non-transposed: every output
    element is a dot product of length ``(C_in / g) * prod(k)``, so
    ``numel(out) * prod(w_shape[1:])`` (E2GC Table II, M_c = n (m/g) d_k^2 h w per frame).
    Transposed: every input element is multiplied into a ``(C_out / g) * prod(k)``
    patch, so ``numel(x) * prod(w_shape[1:])``.
    """
    per_point = math.prod(w_shape[1:])
    return (math.prod(x_shape) if transposed else math.prod(out_shape)) * per_point


def attention_macs(q_shape: Sequence[int], k_shape: Sequence[int], v_shape: Sequence[int], *, heads_dim: int = 1) -> int:
    """MACs of softmax(Q K^T) V: ``B * H * S_q * S_k * (D_qk + D_v)``.

    ``heads_dim`` is 1 for the (B, H, S, D) layout of ``scaled_dot_product_attention``
    and 2 for the (B, S, H, D) layout of ``_flash_attention_forward``. Grouped-query
    attention (fewer key/value heads) broadcasts K and V to the query's heads.
    """
    q, k, v = tuple(q_shape), tuple(k_shape), tuple(v_shape)
    if heads_dim == 2:
        q, k, v = (s[:1] + s[2:3] + s[1:2] + s[3:] for s in (q, k, v))
    *lead, s_q, d_qk = q
    s_k, d_v = k[-2], v[-1]
    return math.prod(lead) * s_q * s_k * (d_qk + d_v)


def _shape(x) -> tuple[int, ...]:
    return x.shape if isinstance(x, TensorSpec) else tuple(x)


def _conv(args, outs) -> int:
    x, w = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    return conv_macs(x.shape, w.shape, outs[0].shape, transposed)


def _conv_plain(args, outs) -> int:
    """Backend convs without a ``transposed`` flag (mkldnn, slow_conv2d, depthwise)."""
    return conv_macs(args[0].shape, args[1].shape, outs[0].shape, False)


def _conv_transpose_backend(args, outs) -> int:
    return conv_macs(args[0].shape, args[1].shape, outs[0].shape, True)


def _conv_backward(args, outs) -> int:
    # convolution_backward(grad_out, input, weight, bias_sizes, stride, padding,
    # dilation, transposed, output_padding, groups, output_mask): grad_input and
    # grad_weight each cost one forward convolution.
    grad_out, x, w = args[0], args[1], args[2]
    transposed, mask = bool(args[7]), args[10]
    forward = conv_macs(x.shape, w.shape, grad_out.shape, transposed)
    return forward * (int(bool(mask[0])) + int(bool(mask[1])))


def _mm(args, outs) -> int:
    a, b = args[0].shape, args[1].shape
    return a[0] * a[1] * b[1]


def _addmm(args, outs) -> int:
    return _mm(args[1:], outs)


def _bmm(args, outs) -> int:
    a, b = args[0].shape, args[1].shape
    return a[0] * a[1] * a[2] * b[2]


def _baddbmm(args, outs) -> int:
    return _bmm(args[1:], outs)


def _addbmm(args, outs) -> int:
    return _bmm(args[1:], outs)


def _mv(args, outs) -> int:
    return math.prod(args[0].shape)


def _addmv(args, outs) -> int:
    return math.prod(args[1].shape)


def _dot(args, outs) -> int:
    return args[0].shape[0]


def _addr(args, outs) -> int:
    return outs[0].numel


def _sdpa(args, outs) -> int:
    return attention_macs(args[0].shape, args[1].shape, args[2].shape)


def _sdpa_backward(args, outs) -> int:
    # (grad_out, q, k, v, ...): recompute Q K^T, then dV = P^T dO, dP = dO V^T,
    # dQ = dS K, dK = dS^T Q: 5 matmuls of the forward's sizes (torch's flop counter).
    q, k, v = args[1].shape, args[2].shape, args[3].shape
    *lead, s_q, d_qk = q
    s_k, d_v = k[-2], v[-1]
    b = math.prod(lead)
    return b * s_q * s_k * (3 * d_qk + 2 * d_v)


def _attention_bshd(q, k, v, cum_q, cum_k, max_q, max_k, backward: bool) -> int:
    """Attention in the (B, S, H, D) layout of the fused CUDA kernels, dense or jagged.

    Dense: ``B * H * S_q * S_k * per``. Jagged (nested tensors: ``cum_q``/``cum_k`` are the
    cumulative sequence offsets, Q is (T, H, D) or (1, T, H, D) with T tokens in all):
    ``H * sum_i(s_q,i * s_k,i) * per``, every sequence attending to itself only. ``per`` is
    ``D_qk + D_v`` (Q K^T and P V) forward, ``3 D_qk + 2 D_v`` backward (Q K^T recomputed,
    dV, dP, dQ, dK). Offsets unknown (traced on meta): ``min(T_q * max_k, T_k * max_q)``,
    an upper bound that is exact when all sequences have the same length.
    """
    d_qk, d_v = q.shape[-1], v.shape[-1]
    per = 3 * d_qk + 2 * d_v if backward else d_qk + d_v
    if not isinstance(cum_q, TensorSpec) or not isinstance(cum_k, TensorSpec):
        b, s_q, h = q.shape[0], q.shape[1], q.shape[2]
        return b * h * s_q * k.shape[1] * per
    heads = q.shape[-2]
    if cum_q.values is not None and cum_k.values is not None:
        lq, lk = cum_q.values, cum_k.values
        pairs = sum((lq[i + 1] - lq[i]) * (lk[i + 1] - lk[i]) for i in range(min(len(lq), len(lk)) - 1))
        return heads * pairs * per
    t_q, t_k = math.prod(q.shape[:-2]), math.prod(k.shape[:-2])
    bounds = [t for t in (t_q * max_k if isinstance(max_k, int) else None,
                          t_k * max_q if isinstance(max_q, int) else None) if t is not None]
    return heads * (min(bounds) if bounds else t_q * t_k) * per


def _picked(args, positions) -> list:
    """``args`` at ``positions``, None where a call left trailing arguments out."""
    return [args[i] if i < len(args) else None for i in positions]


def _flash_forward(args, outs) -> int:
    # _flash_attention_forward(query, key, value, cum_seq_q, cum_seq_k, max_q, max_k, ...)
    return _attention_bshd(*_picked(args, (0, 1, 2, 3, 4, 5, 6)), backward=False)


def _efficient_forward(args, outs) -> int:
    # _efficient_attention_forward(query, key, value, bias, cu_seqlens_q, cu_seqlens_k,
    # max_seqlen_q, max_seqlen_k, ...)
    return _attention_bshd(*_picked(args, (0, 1, 2, 4, 5, 6, 7)), backward=False)


def _flash_backward(args, outs) -> int:
    # _flash_attention_backward(grad_out, query, key, value, out, logsumexp, cum_seq_q,
    # cum_seq_k, max_q, max_k, ...)
    return _attention_bshd(*_picked(args, (1, 2, 3, 6, 7, 8, 9)), backward=True)


def _efficient_backward(args, outs) -> int:
    # _efficient_attention_backward(grad_out, query, key, value, bias, out, cu_seqlens_q,
    # cu_seqlens_k, max_seqlen_q, max_seqlen_k, ...)
    return _attention_bshd(*_picked(args, (1, 2, 3, 6, 7, 8, 9)), backward=True)


def _native_mha(args, outs) -> int:
    # _native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight,
    # qkv_bias, proj_weight, proj_bias, ...): the nn.MultiheadAttention fast path.
    # Q, K, V projections (E x E each), Q K^T and P V (S_q S_k E per batch item over all
    # heads), the output projection (E x E).
    q, k = args[0].shape, args[1].shape
    e = int(args[3])
    lead_q, s_q = (math.prod(q[:-2]) if len(q) > 2 else 1), q[-2]
    s_k = k[-2]
    proj = lead_q * (s_q * e * e + 2 * s_k * e * e + s_q * e * e)
    attn = lead_q * s_q * s_k * 2 * e
    return proj + attn


def _encoder_layer_fwd(args, outs) -> int:
    # _transformer_encoder_layer_fwd(src, embed_dim, num_heads, qkv_weight, qkv_bias,
    # proj_weight, proj_bias, use_gelu, norm_first, eps, norm_weight_1, norm_bias_1,
    # norm_weight_2, norm_bias_2, ffn_weight_1, ffn_bias_1, ffn_weight_2, ffn_bias_2, ...)
    src = args[0].shape
    e, ffn = int(args[1]), args[14].shape[0]
    lead, s = (math.prod(src[:-2]) if len(src) > 2 else 1), src[-2]
    return lead * s * (4 * e * e + 2 * s * e + 2 * e * ffn)


def _mkldnn_rnn_layer(args, outs) -> int:
    # mkldnn_rnn_layer(input, w_ih, w_hh, b_ih, b_hh, hx, cx, reverse, batch_sizes,
    # mode, hidden_size, num_layers, has_biases, bidirectional, batch_first, train):
    # one layer and direction of an LSTM/GRU/RNN on CPU. Every time step of every
    # sequence multiplies its input by w_ih (gates*H x in) and the hidden state by
    # w_hh (gates*H x H).
    x, w_ih, w_hh = args[0].shape, args[1].shape, args[2].shape
    steps = math.prod(x[:-1])
    return steps * (math.prod(w_ih) + math.prod(w_hh))


def _trilinear(args, outs) -> int:
    # _trilinear(i1, i2, i3, expand1, expand2, expand3, sumdim, unroll_dim): the three
    # inputs, unsqueezed at their expand dims, are broadcast together, multiplied and
    # summed over sumdim: one MAC per term of the broadcast product (nn.Bilinear:
    # batch * out * in1 * in2).
    shapes = []
    for spec, expand in zip(args[:3], args[3:6]):
        shape = list(spec.shape)
        for d in sorted(expand):
            shape.insert(d, 1)
        shapes.append(shape)
    rank = max(len(sh) for sh in shapes)
    return math.prod(max(sh[d] if d < len(sh) else 1 for sh in shapes) for d in range(rank))


def _pairwise_distance(args, outs) -> int:
    # _cdist_forward / _euclidean_dist (x1 (..., P, M), x2 (..., R, M)): one
    # (difference-)multiply-accumulate per pair of rows per feature
    return outs[0].numel * args[0].shape[-1]


def _conv_tbc(args, outs) -> int:
    # conv_tbc(input (T, B, C_in), weight (k, C_in, C_out), bias, pad): out (T', B, C_out)
    k, c_in = args[1].shape[0], args[1].shape[1]
    return outs[0].numel * k * c_in


def _int8pack_mm(args, outs) -> int:
    # _weight_int8pack_mm(A (M, K), B (N, K), scales)
    return outs[0].numel * args[0].shape[-1]


#: packet name -> (op class, formula(args, outs) -> MACs of the call).
MAC_FORMULAS: dict[str, tuple[str, Callable]] = {
    "aten.convolution": ("conv", _conv),
    "aten._convolution": ("conv", _conv),
    "aten.convolution_overrideable": ("conv", _conv),
    "aten.cudnn_convolution": ("conv", _conv_plain),
    "aten.mkldnn_convolution": ("conv", _conv_plain),
    "aten._slow_conv2d_forward": ("conv", _conv_plain),
    "aten.slow_conv3d_forward": ("conv", _conv_plain),
    "aten.slow_conv_dilated2d": ("conv", _conv_plain),
    "aten.slow_conv_dilated3d": ("conv", _conv_plain),
    "aten._conv_depthwise2d": ("conv", _conv_plain),
    "aten.conv_depthwise3d": ("conv", _conv_plain),
    "aten._nnpack_spatial_convolution": ("conv", _conv_plain),
    "aten.slow_conv_transpose2d": ("conv_transpose", _conv_transpose_backend),
    "aten.slow_conv_transpose3d": ("conv_transpose", _conv_transpose_backend),
    "aten.cudnn_convolution_transpose": ("conv_transpose", _conv_transpose_backend),
    "aten.convolution_backward": ("conv", _conv_backward),
    "aten.mm": ("matmul", _mm),
    "aten.addmm": ("matmul", _addmm),
    "aten._addmm_activation": ("matmul", _addmm),
    "aten.bmm": ("matmul", _bmm),
    "aten.baddbmm": ("matmul", _baddbmm),
    "aten.addbmm": ("matmul", _addbmm),
    "aten.mv": ("matmul", _mv),
    "aten.addmv": ("matmul", _addmv),
    "aten.dot": ("matmul", _dot),
    "aten.vdot": ("matmul", _dot),
    "aten.addr": ("matmul", _addr),
    "aten._int_mm": ("matmul", _mm),
    "aten._scaled_mm": ("matmul", _mm),
    "aten._scaled_dot_product_flash_attention_for_cpu": ("attention", _sdpa),
    "aten._scaled_dot_product_flash_attention": ("attention", _sdpa),
    "aten._scaled_dot_product_efficient_attention": ("attention", _sdpa),
    "aten._scaled_dot_product_cudnn_attention": ("attention", _sdpa),
    "aten._scaled_dot_product_fused_attention_overrideable": ("attention", _sdpa),
    "aten._flash_attention_forward": ("attention", _flash_forward),
    "aten._efficient_attention_forward": ("attention", _efficient_forward),
    "aten._flash_attention_backward": ("attention", _flash_backward),
    "aten._efficient_attention_backward": ("attention", _efficient_backward),
    "aten._scaled_dot_product_flash_attention_for_cpu_backward": ("attention", _sdpa_backward),
    "aten._scaled_dot_product_flash_attention_backward": ("attention", _sdpa_backward),
    "aten._scaled_dot_product_efficient_attention_backward": ("attention", _sdpa_backward),
    "aten._scaled_dot_product_cudnn_attention_backward": ("attention", _sdpa_backward),
    "aten._native_multi_head_attention": ("attention", _native_mha),
    "aten._transformer_encoder_layer_fwd": ("attention", _encoder_layer_fwd),
    "aten.mkldnn_rnn_layer": ("rnn", _mkldnn_rnn_layer),
    "aten._trilinear": ("matmul", _trilinear),
    "aten._cdist_forward": ("matmul", _pairwise_distance),
    "aten._euclidean_dist": ("matmul", _pairwise_distance),
    "aten.conv_tbc": ("conv", _conv_tbc),
    "aten._weight_int8pack_mm": ("matmul", _int8pack_mm),
}

#: Ops whose 1-D integer tensor arguments the tracer reads for their values (offsets).
VALUE_ARGS = frozenset((
    "aten._flash_attention_forward", "aten._efficient_attention_forward",
    "aten._flash_attention_backward", "aten._efficient_attention_backward",
))

#: Ops that move nothing: they return a view of their input's storage.
VIEW_OPS = frozenset(
    "aten." + name
    for name in (
        "view", "_unsafe_view", "reshape", "_reshape_alias", "transpose", "t", "permute",
        "expand", "slice", "select", "unsqueeze", "squeeze", "as_strided", "alias",
        "detach", "split", "split_with_sizes", "unbind", "chunk", "narrow", "unfold",
        "diagonal", "view_as_real", "view_as_complex", "lift_fresh", "_unsafe_split",
        "unsafe_split", "movedim", "swapaxes", "expand_as", "view_as", "flatten",
        "unflatten", "_neg_view", "_conj", "_indices", "_values", "real", "imag",
        "numpy_T", "mT", "mH", "adjoint", "squeeze_", "unsqueeze_", "transpose_", "t_",
        "as_strided_", "detach_", "set_", "resize_",
    )
)

#: Bookkeeping ops that are neither compute nor traffic (metadata queries).
FREE_OPS = frozenset(
    "aten." + name
    for name in (
        "sym_size", "sym_stride", "sym_numel", "sym_storage_offset", "size", "stride",
        "numel", "dim", "is_contiguous", "sym_is_contiguous", "is_strides_like_format",
        "is_non_overlapping_and_dense", "storage_offset", "is_same_size", "_local_scalar_dense",
        "_has_compatible_shallow_copy_type", "empty", "empty_like", "empty_strided",
        "new_empty", "new_empty_strided", "_assert_async", "_assert_tensor_metadata",
        "record_stream", "_version", "_nested_tensor_size", "_linalg_check_errors",
        "_functional_assert_async", "_print", "set_grad_enabled",
    )
)

_ELEMENTWISE = (
    "add", "sub", "mul", "div", "neg", "abs", "pow", "sqrt", "rsqrt", "exp", "exp2", "log",
    "log2", "log10", "log1p", "expm1", "reciprocal", "sign", "sgn", "floor", "ceil", "round",
    "trunc", "frac", "fmod", "remainder", "clamp", "clamp_min", "clamp_max", "clip",
    "maximum", "minimum", "max_other", "where", "masked_fill", "addcmul", "addcdiv", "lerp",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not",
    "logical_xor", "bitwise_and", "bitwise_or", "bitwise_not", "bitwise_xor", "isnan",
    "isinf", "isfinite", "sin", "cos", "tan", "atan", "atan2", "asin", "acos", "sinh",
    "cosh", "erf", "erfc", "erfinv", "rsub", "square", "nan_to_num", "xlogy", "hypot",
    "floor_divide", "true_divide", "sigmoid_backward", "tanh_backward", "threshold",
    "threshold_backward", "gelu_backward", "silu_backward", "hardswish_backward",
    "hardsigmoid_backward", "leaky_relu_backward", "elu_backward", "softplus_backward",
    "mish_backward", "_foreach_add", "_foreach_mul", "polar", "complex", "heaviside",
    "copysign", "signbit", "bernoulli", "native_dropout_backward", "masked_scale",
)
_ACTIVATION = (
    "relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardtanh", "hardswish",
    "hardsigmoid", "leaky_relu", "elu", "selu", "celu", "softplus", "softsign", "mish",
    "prelu", "_prelu_kernel", "glu", "logsigmoid", "log_sigmoid_forward", "rrelu",
    "hardshrink", "softshrink", "tanhshrink", "native_dropout", "dropout",
    "_fused_dropout", "rrelu_with_noise",
)
_NORM = (
    "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit_functional", "batch_norm", "native_layer_norm",
    "native_group_norm", "_fused_rms_norm", "rms_norm", "instance_norm", "cudnn_batch_norm",
    "miopen_batch_norm", "_batch_norm_with_update", "_batch_norm_no_update",
    "native_batch_norm_backward", "native_layer_norm_backward", "native_group_norm_backward",
    "_fused_rms_norm_backward", "batch_norm_backward", "cudnn_batch_norm_backward",
    "_weight_norm_interface", "renorm", "linalg_vector_norm", "norm", "_batch_norm_impl_index",
    "batch_norm_stats", "batch_norm_elemt",
)
_POOL = (
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices",
    "max_pool3d_with_indices", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "adaptive_max_pool3d", "max_pool2d_with_indices_backward",
    "max_pool3d_with_indices_backward", "avg_pool2d_backward", "avg_pool3d_backward",
    "_adaptive_avg_pool2d_backward", "_adaptive_avg_pool3d_backward",
    "adaptive_max_pool2d_backward", "upsample_nearest1d", "upsample_nearest2d",
    "upsample_nearest3d", "upsample_bilinear2d", "upsample_bicubic2d", "upsample_linear1d",
    "upsample_trilinear3d", "_upsample_nearest_exact2d", "_upsample_bilinear2d_aa",
    "grid_sampler_2d", "grid_sampler_3d", "pixel_shuffle", "pixel_unshuffle",
    "channel_shuffle", "native_channel_shuffle", "mkldnn_max_pool2d", "im2col", "col2im",
    "reflection_pad1d", "reflection_pad2d", "reflection_pad3d", "replication_pad1d",
    "replication_pad2d", "replication_pad3d", "constant_pad_nd", "_pad_enum",
)
_REDUCTION = (
    "sum", "mean", "prod", "amax", "amin", "max", "min", "argmax", "argmin", "var",
    "var_mean", "std", "std_mean", "cumsum", "cumprod", "logsumexp", "any", "all",
    "count_nonzero", "nansum", "aminmax", "sort", "topk", "kthvalue", "median", "mode",
    "cummax", "cummin", "sum_to_size", "nll_loss_forward", "nll_loss_backward",
    "nll_loss2d_forward", "mse_loss", "mse_loss_backward", "l1_loss", "smooth_l1_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "argsort", "unique_dim",
    "_unique2", "bincount", "histc",
)
_SOFTMAX = (
    "_softmax", "softmax", "_log_softmax", "log_softmax", "_softmax_backward_data",
    "_log_softmax_backward_data", "_safe_softmax",
)
_COPY = (
    "clone", "_to_copy", "copy", "copy_", "contiguous", "fill", "fill_", "zero", "zero_",
    "zeros", "zeros_like", "ones", "ones_like", "full", "full_like", "new_zeros",
    "new_ones", "new_full", "arange", "linspace", "scalar_tensor", "lift_fresh_copy",
    "_unsafe_view_copy", "view_copy", "expand_copy", "permute_copy", "transpose_copy",
    "index_select", "gather", "scatter", "scatter_add", "scatter_reduce", "index", "index_put",
    "_index_put_impl", "index_add", "index_copy", "index_fill", "masked_scatter",
    "masked_select", "take", "flip", "roll", "rot90", "repeat", "repeat_interleave",
    "tile", "tril", "triu", "diag_embed", "rand", "randn", "rand_like", "randn_like",
    "randint", "randperm", "normal", "uniform", "uniform_", "normal_", "bernoulli_",
    "nonzero", "_pin_memory", "select_backward", "slice_backward", "as_strided_scatter",
    "slice_scatter", "select_scatter", "diagonal_scatter", "new_empty_strided", "one_hot",
    "_unique", "lift", "clamp_", "detach_copy", "alias_copy", "embedding_dense_backward",
    "_embedding_bag", "embedding_bag", "resize_as_",
    "exponential_", "random_", "geometric_", "cauchy_", "log_normal_",
)
_ACTIVATION += ("_thnn_fused_lstm_cell", "_thnn_fused_gru_cell")  # gates from precomputed matmuls
_CAT = ("cat", "_cat", "stack", "hstack", "vstack", "concat", "concatenate", "split_copy", "_foreach_copy")
_EMBEDDING = ("embedding", "_embedding_bag_forward_only", "embedding_renorm")
# whole-sequence RNN ops with no formula here: they decompose into addmm + gates when
# they can, else they are unsupported
_RNN = ("lstm", "gru", "rnn_tanh", "rnn_relu", "_cudnn_rnn", "miopen_rnn")

#: packet name -> op class, for ops known to multiply-accumulate nothing.
MAC_FREE_OPS: dict[str, str] = {}
for _cls, _names in (
    ("elementwise", _ELEMENTWISE), ("activation", _ACTIVATION), ("norm", _NORM),
    ("pool", _POOL), ("reduction", _REDUCTION), ("softmax", _SOFTMAX), ("copy", _COPY),
    ("cat", _CAT), ("embedding", _EMBEDDING),
):
    for _name in _names:
        MAC_FREE_OPS["aten." + _name] = _cls
        MAC_FREE_OPS["aten." + _name + "_"] = _cls  # in-place variants (add_, relu_ ...)
del _cls, _names, _name

_RNN_OPS = frozenset("aten." + name for name in _RNN)
# Ops that read only part of their first tensor argument (the rows they gather).
_GATHER_FIRST = frozenset(("aten.embedding", "aten.index_select", "aten.gather", "aten.take", "aten.index"))
_WRITE_ONLY = frozenset(("aten.fill_", "aten.zero_", "aten.uniform_", "aten.normal_", "aten.bernoulli_",
                         "aten.random_", "aten.exponential_"))


def op_class(packet: str) -> str:
    """The op class of a packet name (``"other"`` when it is not in any table)."""
    if packet in MAC_FORMULAS:
        return MAC_FORMULAS[packet][0]
    if packet in MAC_FREE_OPS:
        return MAC_FREE_OPS[packet]
    if packet in _RNN_OPS:
        return "rnn"
    return "other"


def op_bytes(packet: str, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]) -> tuple[int, int]:
    """Bytes read and written by one call (see the module docstring for the rules).

    Parameters
    ----------
    packet : str
        Packet name, e.g. ``"aten.add_"``.
    inputs : sequence of TensorSpec
        Every tensor argument, in order (positional, then keyword).
    outputs : sequence of TensorSpec
        Every tensor returned.
    """
    if packet in VIEW_OPS or packet in FREE_OPS:
        return 0, 0
    written = sum(t.nbytes for t in outputs)
    if packet in _WRITE_ONLY:
        return 0, written
    if packet == "aten.copy_":  # copy_(dst, src): reads src, writes dst
        return sum(t.nbytes for t in inputs[1:]), written
    if packet == "aten.embedding_renorm_" and len(inputs) > 1:
        # embedding_renorm_(weight, indices, max_norm, norm_type): rescales, in place, the
        # rows the indices name (at most every row once): reads them and the indices,
        # writes them back
        table = inputs[0]
        row_bytes = table.nbytes // table.shape[0] if table.shape and table.shape[0] else 0
        rows = min(inputs[1].numel, table.shape[0]) * row_bytes if table.shape else 0
        return rows + inputs[1].nbytes, rows
    if packet in _GATHER_FIRST and inputs:  # reads the gathered rows, not the table
        return written + sum(t.nbytes for t in inputs[1:]), written
    return sum(t.nbytes for t in inputs), written


def op_cost(op: str, args: Sequence, outputs: Sequence[TensorSpec], inputs: Sequence[TensorSpec] | None = None) -> OpCost:
    """MACs and bytes of one call of ``op``.

    Parameters
    ----------
    op : str
        Overload name (``"aten.convolution.default"``) or packet name.
    args : sequence
        The op's positional arguments with every tensor replaced by a
        :class:`TensorSpec` (lists of tensors become lists of specs).
    outputs : sequence of TensorSpec
        The tensors returned.
    inputs : sequence of TensorSpec, optional
        Every tensor argument (for bytes); defaults to the specs found in ``args``.

    Returns
    -------
    OpCost
        ``known`` is False for an op with no formula that is not known to be MAC-free.

    Examples
    --------
    >>> x, w = TensorSpec((1, 8, 10, 10)), TensorSpec((16, 4, 3, 3))  # groups = 2
    >>> out = TensorSpec((1, 16, 10, 10))
    >>> args = (x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 2)
    >>> op_cost("aten.convolution.default", args, [out]).macs  # 16*100 outputs * 4*9
    57600
    """
    packet = packet_name(op)
    if inputs is None:
        inputs = _specs_in(args)
    read, written = op_bytes(packet, inputs, outputs)
    if packet == "aten.native_batch_norm" and len(args) > 5 and outputs:
        if not args[5]:  # eval: the saved mean/invstd are empty on CPU (meta sizes them C): not written
            written = outputs[0].nbytes
        else:  # training: the running mean and variance are updated in place
            written += sum(a.nbytes for a in args[3:5] if isinstance(a, TensorSpec))
    entry = MAC_FORMULAS.get(packet)
    if entry is not None:
        return OpCost(entry[0], int(entry[1](args, outputs)), read, written)
    cls = MAC_FREE_OPS.get(packet)
    if cls is not None:
        return OpCost(cls, 0, read, written)
    if packet in VIEW_OPS or packet in FREE_OPS:
        return OpCost("other", 0, 0, 0)
    return OpCost("rnn" if packet in _RNN_OPS else "other", 0, read, written, known=False)


def _specs_in(args) -> list[TensorSpec]:
    found: list[TensorSpec] = []
    for a in args:
        if isinstance(a, TensorSpec):
            found.append(a)
        elif isinstance(a, (list, tuple)):
            found.extend(x for x in a if isinstance(x, TensorSpec))
    return found
