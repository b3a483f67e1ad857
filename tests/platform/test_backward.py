"""Backward kernels: the kernel each backward op is priced as (against torch.profiler), the
features of a conv backward, the backward of one op timed on its own, the specs and the fit."""

from __future__ import annotations

import collections
import json
import math
import warnings

import numpy as np
import pytest

from groupconv.platform import Platform, Roofline
from groupconv.platform.backward import (
    BACKWARD_KINDS,
    backward_features,
    backward_kernel,
    backward_specs,
    fit_backward_models,
    WEIGHT_ONLY,
    forward_spec,
)
from groupconv.platform.models import KernelModel, OpFeatures, features_of

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class _Attn(nn.Module):
    def __init__(self, d=64, h=4, causal=False):
        super().__init__()
        self.h, self.causal = h, causal
        self.qkv, self.proj, self.norm = nn.Linear(d, 3 * d), nn.Linear(d, d), nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, t, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(x)


class _Vit(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 64, 8, 8)
        self.blocks = nn.Sequential(_Attn(), _Attn(causal=True))
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.blocks(self.embed(x).flatten(2).transpose(1, 2)).mean(1))


def _resnetish():
    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                      nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))

        def forward(self, x):
            return torch.relu(x + self.body(x))

    return nn.Sequential(nn.Conv2d(3, 16, 7, 2, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                         Block(16), nn.Conv2d(16, 32, 1, 2, bias=False), Block(32), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(32, 10))


def _mobilenetish():
    def cbr(cin, cout, k=3, s=1, g=1):
        return [nn.Conv2d(cin, cout, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(cout), nn.ReLU6()]

    return nn.Sequential(*cbr(3, 16, s=2), *cbr(16, 16, g=16), *cbr(16, 32, k=1), *cbr(32, 32, s=2, g=32),
                         *cbr(32, 48, k=1), *cbr(48, 48, g=4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(48, 5))


class _Lstm(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(20, 32, 2, batch_first=True, bidirectional=True)

    def forward(self, x):
        return self.rnn(x)[0]


def _unetish():
    class U(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1))
            self.up = nn.ConvTranspose2d(16, 8, 2, 2)
            self.out = nn.Conv2d(16, 4, 1)

        def forward(self, x):
            a = self.down[:2](x)
            return self.out(torch.cat([self.up(self.down[2](a)), a], 1))

    return U()


NETWORKS = {
    "resnet": (_resnetish, lambda b: torch.randn(b, 3, 32, 32)),
    "mobilenet": (_mobilenetish, lambda b: torch.randn(b, 3, 32, 32)),
    "vit": (_Vit, lambda b: torch.randn(b, 3, 32, 32)),
    "lstm": (_Lstm, lambda b: torch.randn(b, 7, 20)),
    "unet": (_unetish, lambda b: torch.randn(b, 3, 16, 16)),
}

#: A backward kernel the profiler names -> the kernel type the platform prices it as.
PROFILED = {
    "aten::mkldnn_rnn_layer_backward": "rnn",
    "aten::_scaled_dot_product_flash_attention_for_cpu_backward": "attention",
    "aten::native_batch_norm_backward": "norm",
    "aten::native_layer_norm_backward": "norm",
    "aten::max_pool2d_with_indices_backward": "pool",
    "aten::threshold_backward": "elementwise",
    "aten::hardtanh_backward": "elementwise",
    "aten::gelu_backward": "elementwise",
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("batch", [1, 4])
def test_backward_kernels_match_profiler(name, batch):
    """Every backward op of a real training step is priced as the kernel torch.profiler shows."""
    from torch.profiler import ProfilerActivity, profile

    from groupconv.networks import count_module

    build, make = NETWORKS[name]
    torch.manual_seed(0)
    model, x = build(), make(batch)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        count = count_module(model, (x,), device=None, backward=True)
        model.train()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            y = model(x)
            y.backward(torch.ones_like(y))
    finally:
        torch.set_num_threads(previous)
    seen = collections.Counter(e.name for e in prof.events())
    back = [o for o in count.ops if o.phase == "backward"]
    kernels = collections.Counter(backward_kernel(o) for o in back)
    ops = collections.Counter(o.op.rsplit(".", 1)[0].replace("aten.", "aten::") for o in back)
    assert back, "the training step recorded no backward op"
    # the fused and single backward kernels: the same calls, the same kernel type
    for profiled, kernel in PROFILED.items():
        assert ops[profiled] == seen[profiled], (profiled, ops[profiled], seen[profiled])
        for o in back:
            if o.op.startswith(profiled.replace("::", ".") + "."):
                assert backward_kernel(o) == kernel
    # conv backward: as many as the profiler's, the native ones exactly those it ran natively
    convs = [o for o in back if o.op.startswith("aten.convolution_backward")]
    assert len(convs) == seen["aten::convolution_backward"]
    assert kernels["conv_slow"] == seen["aten::_slow_conv2d_backward"]
    # a transposed conv's backward takes its forward's path (torch's select_conv_backend)
    assert kernels["conv_transpose_slow"] == seen["aten::slow_conv_transpose2d"]
    assert sum(kernels[k] for k in ("conv_mkldnn", "conv_dw", "conv_transpose")) == (
        len(convs) - seen["aten::_slow_conv2d_backward"] - seen["aten::slow_conv_transpose2d"])
    # no backward op of these networks falls to the catch-all "other"
    assert kernels["other"] == 0, [o.op for o in back if backward_kernel(o) == "other"]


def test_conv_backward_features_come_from_input_and_weight():
    from groupconv.networks import count_module

    conv = nn.Conv2d(16, 32, 3, 2, 1, groups=4, bias=False)
    x = torch.randn(2, 16, 20, 20, requires_grad=True)
    count = count_module(conv, (x,), device=None, backward=True)
    fwd = next(o for o in count.ops if o.phase == "forward" and o.op.startswith("aten.convolution"))
    bwd = next(o for o in count.ops if o.op.startswith("aten.convolution_backward"))
    fb, ff = backward_features(bwd), features_of(fwd)
    assert fb.kernel == ff.kernel and fb.phase == "backward"
    assert fb.weight_bytes == 32 * 4 * 3 * 3 * 4  # the weight, not the input
    assert (fb.cin_per_group, fb.cout_per_group, fb.out_pixels, fb.taps, fb.groups) == (4, 8, 100, 9, 4)
    assert fb.macs == 2 * ff.macs  # input and weight gradients: two forward convs' MACs
    # without an input gradient (a network's first conv) only the weight gradient's
    assert fb.op == "aten.convolution_backward.default"
    count = count_module(conv, (x.detach(),), device=None, backward=True)
    bwd = next(o for o in count.ops if o.op.startswith("aten.convolution_backward"))
    assert backward_features(bwd).macs == ff.macs
    assert backward_features(bwd).op == WEIGHT_ONLY  # priced by a model of its own


def test_rnn_backward_features():
    from groupconv.networks import count_module

    count = count_module(nn.LSTM(12, 16), ((5, 3, 12),), device=None, backward=True)
    bwd = [o for o in count.ops if o.op.startswith("aten.mkldnn_rnn_layer_backward")]
    assert len(bwd) == 1
    f = backward_features(bwd[0])
    assert f.kernel == "rnn" and f.lead == 5
    assert f.macs == 2 * 5 * 3 * 4 * 16 * (12 + 16)


def test_backward_specs_prefix_covers_every_kind():
    specs = backward_specs()
    assert specs == backward_specs()  # deterministic
    assert len({s.key for s in specs}) == len(specs)
    assert all(s.phase == "backward" and s.kind in BACKWARD_KINDS for s in specs)
    first = {s.kind for s in specs[:60]}
    assert first == set(BACKWARD_KINDS), set(BACKWARD_KINDS) - first
    assert any(s.kind == "conv" and s.p["dx"] == 0 for s in specs)
    fs = forward_spec(specs[0])
    assert fs.phase == "op" and "dx" not in fs.p and fs.kind == specs[0].kind


def test_calibration_interleaves_backward_specs():
    from groupconv.platform.calibrate import _interleave
    from groupconv.platform.specs import operator_specs

    fwd, bwd = operator_specs(n_conv=60, n_memory=30, n_sequence=30), backward_specs()
    plan = _interleave(fwd, bwd)
    assert len(plan) == len(fwd) + len(bwd)
    head = plan[:40]
    assert sum(s.phase == "backward" for s in head) == 10
    assert [s for s in plan if s.phase == "backward"] == bwd


@pytest.mark.parametrize("kind", ["conv", "linear", "bn", "act", "maxpool", "sdpa", "lstm", "gru", "embedding"])
def test_measure_backward_times_the_ops_backward(kind):
    """One backward spec per kind: timed, described by the kernel that does the work."""
    from groupconv.measure import Protocol
    from groupconv.platform.backward_modules import build_backward, measure_backward

    spec = next(s for s in backward_specs() if s.kind == kind)
    protocol = Protocol(mode="forward", warmup=1, warmup_s=0.0, trials=2, min_window_s=0.001, measure_memory=False)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (row,) = measure_backward(spec, "cpu", "float32", 1, protocol)
        module, x, op, copies = build_backward(spec, "cpu", torch.float32)
        grads = module(x)
    finally:
        torch.set_num_threads(previous)
    assert row["phase"] == "backward" and row["key"] == spec.key
    assert math.isfinite(row["time_s"]) and row["time_s"] > 0
    expected = {"conv": "conv", "linear": "matmul", "bn": "norm", "act": "elementwise", "maxpool": "pool",
                "sdpa": "attention", "lstm": "rnn", "gru": "rnn_loop", "embedding": "copy"}[kind]
    assert row["kernel"].startswith(expected)
    # the module's call is the backward: the gradients of the op's input and parameters
    leaves = [t for t in (x, *op.parameters()) if t.requires_grad]
    assert row["copies"] == copies >= 1 and len(grads) == copies * len(leaves)
    for g, t in zip(grads, leaves):
        assert g is None or g.shape == t.shape
    assert json.loads(row["spec"]) == spec.p


def test_measure_backward_linear_reference():
    """The module's gradients are the analytic ones: dX = G W, dW = G^T X, db = sum G."""
    from groupconv.platform.specs import make_spec
    from groupconv.platform.backward_modules import build_backward

    spec = make_spec("backward", "linear", batch=3, fin=5, fout=4, dx=1)
    module, x, op, copies = build_backward(spec, "cpu", torch.float64, copies=1)
    gx, gw, gb = module(x)
    g = torch.ones(3, 4, dtype=torch.float64)
    assert torch.allclose(gx, g @ op.weight)
    assert torch.allclose(gw, g.T @ x)
    assert torch.allclose(gb, g.sum(0))


def _row(kernel, op, time_s, macs, nbytes, calls=1, **extra):
    base = {"phase": "backward", "kernel": kernel, "op": op, "time_s": time_s, "macs": macs, "bytes": nbytes,
            "calls": calls, "batch": 1, "groups": 1, "cin_per_group": 1, "cout_per_group": 1, "out_pixels": 1,
            "taps": 1, "outer": 1, "lead": 1, "weight_bytes": 0}
    return base | extra


def test_fit_backward_models_recovers_a_known_law():
    """matmul rows made with t = 5 us + 2 ns/MAC + 0.1 ns/byte (per call) are fitted back to it."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(30):
        macs, nbytes, calls = float(rng.uniform(1e4, 1e8)), float(rng.uniform(1e4, 1e7)), int(rng.integers(1, 3))
        t = 5e-6 + 2e-9 * macs + 1e-10 * nbytes
        rows.append(_row("matmul", "aten.mm.default", calls * t, calls * macs, calls * nbytes, calls))
    for i in range(6):
        rows.append(_row("norm", "aten.native_batch_norm_backward.default", 1e-5 * (i + 1), 0, 1e5 * (i + 1)))
    rows.append({"phase": "op", "kernel": "matmul", "op": "aten.mm.default", "time_s": 1.0, "macs": 1, "bytes": 1,
                 "calls": 1})  # a forward row: not a backward model's
    models = fit_backward_models(rows)
    assert set(models) == {"backward:matmul", "backward:norm"}  # one op per kernel: no per-op model
    m = models["backward:matmul"]
    assert m.n == 30 and m.fit_mape < 1e-6
    f = OpFeatures(kernel="matmul", macs=3e7, bytes=2e6)
    assert m.predict(f) == pytest.approx(5e-6 + 2e-9 * 3e7 + 1e-10 * 2e6, rel=1e-6)


def test_platform_prices_backward_ops_with_backward_models():
    from groupconv.networks import count_module

    def linear(kernel, c0, c1):
        return KernelModel(kernel=kernel, features=("macs",), c0=c0, theta=(c1,), c0_stderr=0.0, theta_stderr=(0.0,),
                           n=10, fit_mape=0.0, cv_mape=None, form="linear")

    models = {"conv_mkldnn": linear("conv_mkldnn", 1e-6, 1e-10), "conv_slow": linear("conv_slow", 1e-6, 1e-10),
              "backward:conv_mkldnn": linear("backward:conv_mkldnn", 2e-6, 3e-10)}
    platform = Platform(device="cpu", metadata={"threads": 1, "dtype": "float32"},
                        roofline=Roofline(1e13, 1e13, 1e-8), time_models=models)
    conv = nn.Conv2d(16, 32, 3, padding=1, bias=False)
    x = torch.randn(2, 16, 12, 12, requires_grad=True)
    count = count_module(conv, (x,), device=None, backward=True)
    bwd = next(o for o in count.ops if o.op.startswith("aten.convolution_backward"))
    assert platform.features(bwd).kernel == "conv_mkldnn"
    assert platform.model_name(bwd) == "backward:conv_mkldnn"
    assert platform.predict_op(bwd, raw=True) == pytest.approx(2e-6 + 3e-10 * bwd.macs)
    # a backward kernel without a backward model: its forward model
    small = count_module(nn.Conv2d(16, 32, 1, bias=False), (torch.randn(1, 16, 4, 4, requires_grad=True),),
                         device=None, backward=True)
    bwd_slow = next(o for o in small.ops if o.op.startswith("aten.convolution_backward"))
    assert platform.features(bwd_slow).kernel == "conv_slow"
    assert platform.model_name(bwd_slow) == "conv_slow"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert platform.predict_op(bwd_slow, raw=True) == pytest.approx(1e-6 + 1e-10 * bwd_slow.macs)


def test_gru_backward_is_one_loop_per_call():
    """A GRU's backward (thousands of small autograd nodes on a CPU) is priced as one loop."""
    from groupconv.networks import count_module
    from groupconv.platform.backward import collapse_backward_loops
    from groupconv.platform.predict import collapse_loops

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(10, 16, 2, batch_first=True)
            self.head = nn.Linear(16, 3)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    model = Net()
    raw = count_module(model, ((2, 6, 10),), device=None, backward=True)
    count = collapse_backward_loops(collapse_loops(raw, model), model)
    loops = [o for o in count.ops if o.op == "groupconv.rnn_loop.default"]
    assert [o.phase for o in loops] == ["forward", "backward"]
    back = loops[1]
    merged = [o for o in raw.ops if o.phase == "backward" and o.module == "rnn"]
    assert back.input_shapes[0] == (len(merged),) and len(merged) > 100
    assert back.macs == sum(o.macs for o in merged) > 0
    assert backward_kernel(back) == "rnn_loop" and backward_features(back).lead == len(merged)
    # the head's backward is left as it is
    assert any(o.phase == "backward" and o.op.startswith("aten.mm") and o.module != "rnn" for o in count.ops)


def test_fit_backward_models_splits_weight_only_convs_and_adds_taps_for_depthwise():
    rng = np.random.default_rng(1)
    rows = []
    for i in range(24):
        macs, taps = float(rng.uniform(1e5, 1e8)), int(rng.choice((9, 25, 49)))
        dx = int(i % 3 != 0)
        t = 1e-5 + (2e-10 if dx else 5e-10) * macs
        rows.append(_row("conv_mkldnn", "aten.convolution_backward.default", t, macs, 1e6,
                         spec=json.dumps({"dx": dx}), cin_per_group=8, cout_per_group=8, taps=taps))
        rows.append(_row("conv_dw", "aten.convolution_backward.default", 1e-5 + 1e-11 * macs * taps, macs, 1e6,
                         spec=json.dumps({"dx": 1}), taps=taps, out_pixels=int(rng.integers(16, 4096))))
    models = fit_backward_models(rows)
    assert models[f"backward:conv_mkldnn:{WEIGHT_ONLY}"].n == 8
    assert models["backward:conv_mkldnn"].n == 16
    assert models["backward:conv_mkldnn"].fit_mape < 0.02 and models[f"backward:conv_mkldnn:{WEIGHT_ONLY}"].fit_mape < 0.02
    dw = models["backward:conv_dw"]
    assert "macs_x_taps" in dw.features and dw.fit_mape < 0.02
