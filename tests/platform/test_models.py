"""Kernel selection rule against torch's profiler; model fits against known parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.errors import GroupConvError
from groupconv.platform import OpFeatures, Roofline, cpu_conv_uses_mkldnn
from groupconv.platform.models import fit_kernel_model, kernel_of

torch = pytest.importorskip("torch")


def _profiled_path(cin, cout, k, groups, batch, h, stride):
    from torch.profiler import ProfilerActivity, profile

    from groupconv.measure.protocol import _quiet_native_stderr

    conv = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False).eval()
    x = torch.randn(batch, cin, h, h)
    with torch.inference_mode(), _quiet_native_stderr():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            conv(x)
    names = {e.name for e in prof.events()}
    assert ("aten::mkldnn_convolution" in names) != ("aten::_slow_conv2d_forward" in names)
    return "aten::mkldnn_convolution" in names


SHAPES = [
    # cin, cout, k, groups, batch, h, stride
    (32, 32, 3, 1, 1, 16, 1),  # 32*16*16 = 8192 <= 20480, dense 3x3, B=1: native
    (32, 32, 3, 1, 1, 32, 1),  # 32768 > 20480: oneDNN
    (32, 32, 3, 32, 1, 16, 1),  # depthwise: groups > 1
    (32, 32, 1, 1, 1, 16, 1),  # pointwise, B < 16, 1 thread: native
    (32, 32, 1, 1, 16, 8, 1),  # pointwise at B = 16: oneDNN
    (32, 32, 1, 1, 1, 16, 2),  # strided pointwise, small: native (second clause false)
    (64, 64, 1, 4, 2, 8, 1),  # grouped pointwise, B < 16: native path, loop over groups
    (16, 16, 5, 1, 1, 8, 1),  # 5x5: kh > 3 and kw > 3
    (3, 16, 3, 1, 2, 8, 1),  # B > 1
]


@pytest.mark.parametrize("shape", SHAPES)
def test_mkldnn_rule_matches_profiler(shape):
    cin, cout, k, groups, batch, h, stride = shape
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ran = _profiled_path(*shape)
    finally:
        torch.set_num_threads(previous)
    rule = cpu_conv_uses_mkldnn((batch, cin, h, h), (cout, cin // groups, k, k), stride=stride, groups=groups,
                                threads=1)
    assert rule == ran


def count_ops(model, shape):
    from groupconv.networks import count_module

    return [count_module(model, shape).ops]


def test_kernel_of_traced_convs():
    dw = torch.nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False)
    pw = torch.nn.Conv2d(32, 64, 1, bias=False)
    strided = torch.nn.Conv2d(32, 32, 1, stride=2, bias=False)
    assert kernel_of(count_ops(dw, (1, 32, 16, 16))[0][0]) == "conv_dw"
    assert kernel_of(count_ops(pw, (1, 32, 16, 16))[0][0]) == "conv_slow"
    assert kernel_of(count_ops(pw, (16, 32, 16, 16))[0][0]) == "conv_mkldnn"
    # the stride is seen from the shapes: 1x1 stride 2 at 32*32*32 = 32768 elements -> oneDNN
    assert kernel_of(count_ops(strided, (1, 32, 32, 32))[0][0]) == "conv_mkldnn"
    assert kernel_of(count_ops(pw, (1, 32, 16, 16))[0][0], device="cuda:0") == "conv_mkldnn"


def test_roofline_hand_arithmetic():
    r = Roofline(peak_macs_per_s=1e11, bandwidth_bytes_per_s=1e10, fixed_s=2e-6)
    assert r.ridge_macs_per_byte == pytest.approx(10.0)
    # 1e6 MACs on 1e4 bytes: AI 100 > 10 -> compute, 1e6/1e11 = 10 us (+2 us)
    assert r.bound(1e6, 1e4) == "compute"
    assert r.time_s(1e6, 1e4) == pytest.approx(12e-6)
    # 1e6 MACs on 1e6 bytes: AI 1 -> memory, 1e6/1e10 = 100 us (+2 us)
    assert r.bound(1e6, 1e6) == "memory"
    assert r.time_s(1e6, 1e6) == pytest.approx(102e-6)


def test_fit_recovers_known_power_law():
    """Memory-bound kernels: t = c0 + exp(theta . [1, log bytes, log outer]) recovered exactly."""
    rng = np.random.default_rng(1)
    feats = [OpFeatures("pool", macs=0.0, bytes=float(b), outer=int(o))
             for b, o in zip(rng.uniform(1e4, 1e8, 40), rng.choice([8, 64, 512, 4096], 40))]
    # t = 2 us + exp(-21 + 0.95 log bytes + 0.1 log outer)
    truth = [2e-6 + math.exp(-21 + 0.95 * math.log(f.bytes) + 0.1 * math.log(f.outer)) for f in feats]
    model = fit_kernel_model("pool", feats, truth)
    assert model.form == "power"
    assert model.fit_mape < 1e-3
    assert model.cv_mape is not None and model.cv_mape < 1e-2
    assert model.c0 == pytest.approx(2e-6, rel=1e-2)
    coef = dict(zip(model.features, model.theta[1:]))
    assert coef["log_bytes"] == pytest.approx(0.95, abs=1e-3)
    assert coef["log_outer"] == pytest.approx(0.1, abs=1e-3)
    assert model.predict(feats[0]) == pytest.approx(truth[0], rel=1e-3)


def test_fit_recovers_known_linear_terms():
    """Compute kernels: t = c0 + sum c_j term_j, non-negative; known terms recovered."""
    rng = np.random.default_rng(2)
    feats = []
    for _ in range(80):
        ci, co, g = (int(v) for v in (rng.choice([4, 16, 64]), rng.choice([8, 32, 128]), rng.choice([1, 2, 8])))
        px, taps, batch = int(rng.choice([16, 196, 3136])), int(rng.choice([1, 9])), int(rng.choice([1, 4]))
        macs = batch * g * co * ci * taps * px
        w = 4.0 * g * co * ci * taps
        act = 4.0 * batch * g * (ci + co) * px
        feats.append(OpFeatures("conv_mkldnn", macs=float(macs), bytes=w + act, groups=g, batch=batch,
                                cin_per_group=ci, cout_per_group=co, out_pixels=px, taps=taps, weight_bytes=w))
    # t = 10 us + macs / 50 GMAC/s + weight bytes / 5 GB/s + 1 us per group and frame + 2e-11 s per (MAC / cin_g)
    truth = [1e-5 + f.macs / 5e10 + f.weight_bytes / 5e9 + 1e-6 * f.groups * f.batch + 2e-11 * f.macs / f.cin_per_group
             for f in feats]
    model = fit_kernel_model("conv_mkldnn", feats, truth)
    assert model.form == "linear"
    assert model.fit_mape < 1e-4
    coef = dict(zip(model.features, model.theta))
    assert model.c0 == pytest.approx(1e-5, rel=1e-3)
    assert coef["macs"] == pytest.approx(1 / 5e10, rel=1e-3)
    assert coef["weight_bytes"] == pytest.approx(1 / 5e9, rel=1e-3)
    assert coef["groups_x_batch"] == pytest.approx(1e-6, rel=1e-3)
    assert coef["macs_per_cin_group"] == pytest.approx(2e-11, rel=1e-3)
    assert coef["act_bytes"] == pytest.approx(0.0, abs=1e-15)


def test_fit_with_few_points_is_proportional():
    feats = [OpFeatures("pool", macs=0.0, bytes=b) for b in (1e4, 1e6)]
    model = fit_kernel_model("pool", feats, [2e-6, 1e-4])
    assert model.features == ("log_bytes",)
    assert model.theta[1] == 1.0  # exponent fixed with < 5 points
    # c0 = half the smallest time = 1 us; scale = median((t - c0)/bytes) over (1e-10, 9.9e-11)
    scale = float(np.median([(2e-6 - 1e-6) / 1e4, (1e-4 - 1e-6) / 1e6]))
    assert model.predict(OpFeatures("pool", 0.0, 1e5)) == pytest.approx(1e-6 + scale * 1e5)


def test_fit_rejects_bad_values():
    with pytest.raises(GroupConvError, match="finite and > 0"):
        fit_kernel_model("pool", [OpFeatures("pool", 0.0, 1.0)], [0.0])
    with pytest.raises(GroupConvError, match="unknown kernel"):
        fit_kernel_model("gemm9", [OpFeatures("pool", 0.0, 1.0)], [1.0])


@settings(max_examples=40, deadline=None)
@given(st.floats(1e2, 1e9), st.floats(1e2, 1e9))
def test_prediction_never_below_fixed_cost(macs, nbytes):
    feats = [OpFeatures("softmax", macs=m, bytes=b) for m, b in ((1e4, 1e4), (1e6, 1e5), (1e8, 1e7), (1e5, 1e6),
                                                                (1e7, 1e5), (3e6, 3e6), (1e3, 1e3), (5e8, 1e8))]
    times = [1e-6 + f.macs / 1e10 + f.bytes / 1e10 for f in feats]
    for kernel in ("softmax", "matmul"):  # a power-law and a linear kernel
        model = fit_kernel_model(kernel, [OpFeatures(kernel, f.macs, f.bytes) for f in feats], times)
        assert model.predict(OpFeatures(kernel, macs, nbytes)) >= model.c0 > 0


# ---------------------------------------------------------------------------- layouts and GEMM shapes
def _traced(fn, *inputs):
    """The ops of one real CPU run of ``fn`` (a module or a function) on ``inputs``."""
    import torch
    from torch import nn

    from groupconv.networks import count_module

    class Fn(nn.Module):
        def forward(self, *xs):
            return fn(*xs)

    module = fn if isinstance(fn, nn.Module) else Fn()
    with torch.no_grad():
        return count_module(module, inputs, device="cpu").ops


def test_matmul_features_are_the_gemm_shape():
    """M, K, N of a linear on a 3-D token tensor (addmm), of a bias-free one (mm) and of a bmm,
    by hand: (B*T) x fin times fin x fout; batched GEMMs as groups."""
    import torch
    from torch import nn

    from groupconv.platform.models import features_of

    (f,) = [features_of(o) for o in _traced(nn.Linear(48, 80), torch.randn(2, 5, 48)) if o.op_class == "matmul"]
    assert (f.kernel, f.out_pixels, f.cin_per_group, f.cout_per_group, f.groups) == ("matmul", 10, 48, 80, 1)
    assert f.macs == 10 * 48 * 80 and f.weight_bytes == 48 * 80 * 4
    (f,) = [features_of(o) for o in _traced(nn.Linear(48, 80, bias=False), torch.randn(7, 48)) if o.op_class == "matmul"]
    assert (f.out_pixels, f.cin_per_group, f.cout_per_group) == (7, 48, 80)
    (f,) = [features_of(o) for o in _traced(torch.bmm, torch.randn(6, 9, 16), torch.randn(6, 16, 11))]
    assert (f.kernel, f.groups, f.out_pixels, f.cin_per_group, f.cout_per_group) == ("matmul", 6, 9, 16, 11)
    assert f.macs == 6 * 9 * 16 * 11


def test_norm_and_softmax_rows_whatever_the_layout():
    """A layer norm over the channels of a channels-last map loops over B*H*W rows, a softmax
    over attention scores over B*heads*T rows (the first two dims were the wrong count)."""
    import torch
    from torch import nn

    from groupconv.platform.models import features_of

    ln = [features_of(o) for o in _traced(nn.LayerNorm(24), torch.randn(2, 7, 5, 24)) if "layer_norm" in o.op]
    assert (ln[0].outer, ln[0].row) == (2 * 7 * 5, 24)
    sm = [features_of(o) for o in _traced(lambda x: torch.softmax(x, -1), torch.randn(2, 3, 10, 12))]
    assert (sm[0].kernel, sm[0].outer, sm[0].row) == ("softmax", 2 * 3 * 10, 12)
    # rows shorter than a vector register: the short-row terms carry the bytes
    assert sm[0].value("bytes_short_rows_16") == sm[0].bytes and sm[0].value("bytes_short_rows_8") == 0.0


def test_layer_norm_backward_rows_are_its_saved_means():
    import torch
    from torch import nn

    from groupconv.networks import count_module
    from groupconv.platform.backward import backward_features

    ops = count_module(nn.LayerNorm(16), (torch.randn(3, 4, 16),), device="cpu", backward=True).ops
    (op,) = [o for o in ops if "layer_norm_backward" in o.op]
    assert backward_features(op).outer == 12


def test_a_reordering_copy_is_a_transpose_and_a_plain_one_a_copy():
    import torch

    from groupconv.platform.models import features_of

    x = torch.randn(2, 8, 6, 6)
    (t,) = [features_of(o) for o in _traced(lambda y: y.permute(0, 2, 3, 1).contiguous(), x) if o.op_class == "copy"]
    assert t.kernel == "transpose" and t.strided_bytes == x.numel() * 4
    (c,) = [features_of(o) for o in _traced(lambda y: y.clone(), x) if o.op_class == "copy"]
    assert c.kernel == "copy" and c.strided_bytes == 0


def test_hidden_copies_of_non_contiguous_inputs():
    """A layer norm on a permuted view copies it inside its kernel (priced as a transpose of
    its bytes); on a contiguous input it does not. An add of a permuted and a contiguous map
    reads one out of order; an activation of a permuted view runs in its memory order."""
    import torch
    from torch import nn

    from groupconv.platform.models import features_of, hidden_copy_features

    x = torch.randn(2, 8, 5, 5)
    ln = nn.LayerNorm(8)
    (f,) = [features_of(o) for o in _traced(lambda y: ln(y.permute(0, 2, 3, 1)), x) if "layer_norm" in o.op]
    hidden = hidden_copy_features(f)
    assert f.strided_bytes == x.numel() * 4 and hidden.kernel == "transpose" and hidden.bytes == 2 * x.numel() * 4
    (f,) = [features_of(o) for o in _traced(ln, x.permute(0, 2, 3, 1).contiguous()) if "layer_norm" in o.op]
    assert f.strided_bytes == 0 and hidden_copy_features(f) is None
    y = torch.randn(2, 5, 5, 8)
    (f,) = [features_of(o) for o in _traced(lambda a, b: a + b.permute(0, 3, 1, 2), x, y) if o.op_class == "elementwise"]
    assert f.strided_bytes == y.numel() * 4 and hidden_copy_features(f).bytes == 2 * y.numel() * 4
    (f,) = [features_of(o) for o in _traced(lambda b: torch.relu(b.permute(0, 3, 1, 2)), y) if o.op_class == "activation"]
    assert f.strided_bytes == 0 and hidden_copy_features(f) is None


def test_a_platform_prices_the_hidden_copy_and_falls_back_to_copy(hand_platform):
    """The layer norm of a permuted view costs the norm plus the copy's work (not a second
    call's fixed cost); a platform without a transpose model prices a transpose as a copy."""
    import torch
    from torch import nn

    from dataclasses import replace

    from groupconv.platform.models import features_of, hidden_copy_features

    from tests.platform.conftest import known_model

    copy_model = known_model("copy", ("log_bytes",), 3e-6, (math.log(2e-9), 1.0))  # 3 us + 2 ns per byte
    platform = replace(hand_platform, time_models={**hand_platform.time_models, "copy": copy_model})
    x = torch.randn(2, 8, 5, 5)
    ln = nn.LayerNorm(8)
    (strided,) = [o for o in _traced(lambda y: ln(y.permute(0, 2, 3, 1)), x) if "layer_norm" in o.op]
    (plain,) = [o for o in _traced(ln, x.permute(0, 2, 3, 1).contiguous()) if "layer_norm" in o.op]
    extra = copy_model.predict(hidden_copy_features(features_of(strided))) - copy_model.c0
    assert extra == pytest.approx(2e-9 * 2 * x.numel() * 4)  # hand arithmetic: read + write of 1,600 bytes
    assert platform.predict_op(strided, raw=True) == pytest.approx(platform.predict_op(plain, raw=True) + extra)
    (t,) = [o for o in _traced(lambda y: y.permute(0, 2, 3, 1).contiguous(), x) if o.op_class == "copy"]
    assert features_of(t).kernel == "transpose" and platform.model_name(t) == "copy"
    assert platform.predict_op(t, raw=True) == pytest.approx(3e-6 + 2e-9 * 2 * x.numel() * 4)


def test_a_pad_is_priced_as_a_copy_not_a_pooling():
    """The counter classes F.pad with the pooling ops (a window over the map); its kernel is
    a copy into a larger buffer, priced by the copy models."""
    import torch
    import torch.nn.functional as F

    (op,) = _traced(lambda y: F.pad(y, (4, 0)), torch.randn(2, 8, 100))
    assert op.op_class == "pool" and kernel_of(op) == "copy"
    (op,) = _traced(lambda y: F.pad(y, (1, 1, 1, 1), mode="reflect"), torch.randn(2, 8, 10, 10))
    assert kernel_of(op) == "copy"
