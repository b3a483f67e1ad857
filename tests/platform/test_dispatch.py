"""The kernel each op is priced as, cross-checked against torch.profiler on the real CPU.

predict traces a model on the CPU itself, so the trace holds the kernels the CPU runs
(fused RNN layers, fused attention, the MHA and encoder-layer fast paths); convolutions
are sent to oneDNN or to a native path by the rule of ``kernel_of``. Here, on validation
networks of every family, the kernels the platform prices are compared with the aten
kernels ``torch.profiler`` reports for the same run.
"""

from __future__ import annotations

import warnings

import pytest

from groupconv.platform.models import kernel_of
from groupconv.platform.predict import trace_counts

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

#: Fused kernels: the aten name torch.profiler shows -> the kernel type the platform prices.
FUSED = {
    "aten::mkldnn_rnn_layer": "rnn",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "attention",
    "aten::_native_multi_head_attention": "mha",
    "aten::_transformer_encoder_layer_fwd": "encoder_layer",
}
#: Native conv backends (their absence under a conv call means oneDNN's transposed path).
SLOW_CONVS = ("aten::_slow_conv2d_forward", "aten::slow_conv_dilated2d", "aten::slow_conv3d_forward",
              "aten::slow_conv_dilated3d")


class _Attn(nn.Module):
    def __init__(self, d=64, h=4, causal=False):
        super().__init__()
        self.h, self.causal = h, causal
        self.qkv, self.proj, self.norm = nn.Linear(d, 3 * d), nn.Linear(d, d), nn.LayerNorm(d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, t, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return x + self.proj(y.transpose(1, 2).reshape(b, t, d))


class _Vit(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 64, 8, 8)
        self.blocks = nn.Sequential(_Attn(), _Attn(causal=True))
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.blocks(self.embed(x).flatten(2).transpose(1, 2)).mean(1))


class _Rnn(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(20, 32, 2, batch_first=True, bidirectional=cell is nn.LSTM)

    def forward(self, x):
        return self.rnn(x)[0]


class _Mha(nn.Module):
    def __init__(self):
        super().__init__()
        self.att = nn.MultiheadAttention(64, 4, batch_first=True)

    def forward(self, x):
        return self.att(x, x, x, need_weights=False)[0]


class _UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1))
        self.up = nn.ConvTranspose2d(16, 8, 2, 2)
        self.out = nn.Conv2d(16, 2, 1)

    def forward(self, x):
        a = self.down[1](self.down[0](x))
        return self.out(torch.cat([self.up(self.down[2](a)), a], 1))


def _conv1d():
    return nn.Sequential(nn.Conv1d(1, 16, 9, 4, 4), nn.ReLU(), nn.Conv1d(16, 16, 3, 1, 2, dilation=2, groups=4),
                         nn.Conv1d(16, 32, 1), nn.Conv1d(32, 32, 5, 2, 2, groups=32), nn.Conv1d(32, 32, 1))


NETWORKS = {
    "lstm": (lambda: _Rnn(nn.LSTM), lambda b: torch.randn(b, 12, 20)),
    "gru": (lambda: _Rnn(nn.GRU), lambda b: torch.randn(b, 12, 20)),
    "vit_sdpa": (_Vit, lambda b: torch.randn(b, 3, 32, 32)),
    "mha": (_Mha, lambda b: torch.randn(b, 10, 64)),
    "transformer_encoder": (lambda: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(64, 4, 128, batch_first=True), 2, enable_nested_tensor=False),
        lambda b: torch.randn(b, 10, 64)),
    "conv1d": (_conv1d, lambda b: torch.randn(b, 1, 400)),
    "unet": (_UNet, lambda b: torch.randn(b, 3, 16, 16)),
}


def _profiled(model, x, threads):
    from torch.profiler import ProfilerActivity, profile

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model.eval()
        with torch.no_grad():
            model(x)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                model(x)
    finally:
        torch.set_num_threads(previous)
    return [e for e in prof.events()]


def _inside_fused(event) -> bool:
    """Whether a profiled event runs inside another fused kernel (MHA inside an encoder layer)."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name in FUSED:
            return True
        parent = parent.cpu_parent
    return False


def _conv_path(event) -> str:
    """"slow", "transpose_slow" or "onednn" for one profiled aten::_convolution."""
    names = set()
    stack = list(event.cpu_children)
    while stack:
        e = stack.pop()
        names.add(e.name)
        stack.extend(e.cpu_children)
    if names & {"aten::slow_conv_transpose2d", "aten::slow_conv_transpose3d"}:
        return "transpose_slow"
    if names & set(SLOW_CONVS):
        return "slow"
    return "onednn"


_PRICED_PATH = {"conv_mkldnn": "onednn", "conv_dw": "onednn", "conv_transpose": "onednn", "conv_slow": "slow",
                "conv_transpose_slow": "transpose_slow"}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_priced_kernels_are_the_kernels_the_cpu_runs(name, batch, threads, hand_platform):
    from dataclasses import replace

    build, make_input = NETWORKS[name]
    torch.manual_seed(0)
    model, x = build(), make_input(batch)
    platform = replace(hand_platform, metadata={**hand_platform.metadata, "threads": threads})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ops = trace_counts(platform, model, (x,)).ops
    priced = [kernel_of(o, device="cpu", threads=threads) for o in ops]
    events = _profiled(model, x, threads)
    # fused kernels: as many priced as the CPU ran, of the matching kernel type
    for aten, kernel in FUSED.items():
        ran = sum(e.name == aten and not _inside_fused(e) for e in events)
        assert ran == sum(o.op.startswith(aten.replace("::", ".")) for o in ops), (name, aten)
        assert ran == sum(1 for o, k in zip(ops, priced) if k == kernel and o.op.startswith(aten.replace("::", ".")))
    # convolutions: the same oneDNN / native path, call by call, in order
    ran = [_conv_path(e) for e in events if e.name == "aten::_convolution" and not _inside_fused(e)]
    assert [_PRICED_PATH[k] for k in priced if k.startswith("conv")] == ran, name
    # a GRU runs as a loop of small ops, priced whole: one rnn_loop per aten::gru call
    assert sum(e.name == "aten::gru" for e in events) == priced.count("rnn_loop")
    if name in ("lstm", "vit_sdpa", "mha", "transformer_encoder"):
        assert any(k in ("rnn", "attention", "mha", "encoder_layer") for k in priced), f"{name}: no fused kernel"


def test_meta_trace_shows_decompositions_not_the_fused_kernels(hand_platform):
    """Why predict traces on the device: on meta an LSTM is thousands of small ops."""
    from groupconv.networks import count_module

    model, x = NETWORKS["lstm"][0](), NETWORKS["lstm"][1](1)
    meta = count_module(model, (x,))
    device = trace_counts(hand_platform, model, (x,))
    assert len(meta.ops) > 20 * len(device.ops)
    assert not any("mkldnn_rnn_layer" in o.op for o in meta.ops)
    assert sum("mkldnn_rnn_layer" in o.op for o in device.ops) == 4  # 2 layers x 2 directions
    # MACs stay what the counter reports
    assert device.macs == meta.macs


def test_hidden_copies_are_the_copies_the_profiler_sees(hand_platform):
    """A ConvNeXt-style block (a depthwise conv, a layer norm and linears on the channels-last
    view, a permuted residual): the ops priced with a hidden copy (``hidden_copy_features``)
    are exactly those under which torch.profiler shows an ``aten::copy_``, and every
    reordering copy the trace shows is priced as a transpose."""
    from groupconv.platform.models import features_of, hidden_copy_features

    class Block(nn.Module):
        def __init__(self, d=16):
            super().__init__()
            self.dw, self.ln = nn.Conv2d(d, d, 7, padding=3, groups=d), nn.LayerNorm(d)
            self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            y = self.ln(self.dw(x).permute(0, 2, 3, 1))
            y = self.fc2(F.gelu(self.fc1(y)))
            return x + y.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1).permute(0, 3, 1, 2)

    model, x = Block(), torch.randn(2, 16, 9, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ops = trace_counts(hand_platform, model, (x,)).ops
    feats = [features_of(o) for o in ops]
    priced_hidden = sorted(f.op.split(".")[1] for f in feats if hidden_copy_features(f) is not None)
    events = _profiled(model, x, 1)

    def copies_inside(e):
        stack, n = list(e.cpu_children), 0
        while stack:
            c = stack.pop()
            n += c.name == "aten::copy_"
            stack.extend(c.cpu_children)
        return n

    seen_hidden = sorted(e.name.split("::")[1] for e in events
                         if e.name in ("aten::native_layer_norm", "aten::add") and copies_inside(e))
    assert priced_hidden == seen_hidden == ["native_layer_norm"]  # the add's operands share one layout here
    assert [f.kernel for f in feats if f.op.startswith("aten.clone")] == ["transpose"]
    def under_norm(e):
        while e.cpu_parent is not None:
            e = e.cpu_parent
            if e.name == "aten::native_layer_norm":
                return True
        return False

    # the profiler's clones: the one the trace shows, and the one inside the norm it hides
    assert sorted(under_norm(e) for e in events if e.name == "aten::clone") == [False, True]
