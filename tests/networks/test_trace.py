"""Operator-level counting on models the old hook counter got wrong.

Every expected value has its arithmetic written beside it; every model built here is
also checked against torch's FlopCounterMode on the meta device
(:func:`test_flop_counter_agrees_on_every_model`).
"""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from groupconv.errors import GroupConvError  # noqa: E402
from groupconv.networks import build_module, count_module, input_shape  # noqa: E402


# --- small models ---------------------------------------------------------------------
class Functional(nn.Module):
    """F.conv2d and F.linear on parameters the module owns (no Conv2d / Linear modules)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 2, 3, 3))  # 4 -> 8 channels, groups 2
        self.fc = nn.Parameter(torch.randn(5, 8))

    def forward(self, x):
        y = F.conv2d(x, self.w, padding=1, groups=2).mean(dim=(2, 3))
        return F.linear(y, self.fc)


class EinsumAttention(nn.Module):
    """Attention written with einsum and with matmul (two ways, same MACs)."""

    def __init__(self, dim=16, heads=4, einsum=True):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.heads, self.einsum = heads, einsum

    def forward(self, x):
        b, s, e = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.heads, e // self.heads).permute(2, 0, 3, 1, 4)
        if self.einsum:
            p = torch.einsum("bhqd,bhkd->bhqk", q, k).softmax(-1)
            return torch.einsum("bhqk,bhkd->bhqd", p, v)
        return (q @ k.transpose(-2, -1)).softmax(-1) @ v


class SelfAttention(nn.Module):
    def __init__(self, dim=16, heads=4):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


class SDPA(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


class VideoFold(nn.Module):
    """(B, T, C, H, W) folded into (B*T, C, H, W) for a per-frame 2-D conv (video / TSM)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)

    def forward(self, x):
        b, t = x.shape[:2]
        y = self.conv(x.flatten(0, 1))
        return y.reshape(b, t, *y.shape[1:])


class Doubled(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1, bias=False)

    def forward(self, x):
        return self.conv(torch.cat([x, x]))


class TiedLM(nn.Module):
    """Embedding and output projection share one weight (as GPT-2 does)."""

    def __init__(self, vocab=50, dim=8):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, ids, mask=None):
        h = self.emb(ids)
        if mask is not None:
            h = h * mask[..., None]
        return self.head(h)


class DirectForward(nn.Module):
    """Calls its child through .forward (no hooks fire) and with keyword arguments."""

    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(6, 4)

    def forward(self, x, *, scale=None):
        y = self.inner.forward(x)
        return y if scale is None else y * scale


def conv_t(dims, **kw):
    cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dims]
    return cls(6, 9, 3, stride=2, padding=1, output_padding=1, groups=3, **kw)


# (model, inputs, expected MACs per frame with the arithmetic, extra count_module kwargs)
CASES = {
    # ConvTranspose 6 -> 9, groups 3, k 3, stride 2: each input point scatters
    # (9 / 3) * 3^d weights per input channel; input 6 channels of 5^d points
    "conv_transpose1d": (conv_t(1), (2, 6, 5), 6 * 5 * 3 * 3, {}),
    "conv_transpose2d": (conv_t(2), (2, 6, 5, 5), 6 * 25 * 3 * 9, {}),
    "conv_transpose3d": (conv_t(3, bias=False), (1, 6, 5, 5, 5), 6 * 125 * 3 * 27, {}),
    # Conv3d 6 -> 12, groups 3, k 3, padding 1 on 4x4x4: 12 * 64 outputs * (6/3) * 27
    "conv3d_grouped": (nn.Conv3d(6, 12, 3, padding=1, groups=3), (2, 6, 4, 4, 4), 12 * 64 * 2 * 27, {}),
    # dilation 2, stride 2, k 3, padding 2 on 9x9: out (9 + 4 - 4 - 1) // 2 + 1 = 5
    "conv_dilated_strided": (nn.Conv2d(4, 8, 3, stride=2, padding=2, dilation=2, groups=4), (1, 4, 9, 9), 8 * 25 * 1 * 9, {}),
    # padding="same" keeps 7x6; (3, 5) kernel, 6 -> 6 groups 3: 6 * 42 * 2 * 15
    "conv3d_same": (nn.Conv3d(6, 6, (1, 3, 5), padding="same", groups=3), (1, 6, 2, 7, 6), 6 * 84 * 2 * 15, {}),
    # F.conv2d 4 -> 8 groups 2 on 6x6 (padding 1): 8 * 36 * 2 * 9; F.linear 8 -> 5
    "functional": (Functional(), (3, 4, 6, 6), 8 * 36 * 2 * 9 + 8 * 5, {}),
    # qkv projection 16 -> 48 on 5 tokens; Q K^T and P V: 4 heads * 5 * 5 * 4 each
    "einsum_attention": (EinsumAttention(), (2, 5, 16), 5 * 16 * 48 + 2 * 4 * 5 * 5 * 4, {}),
    "matmul_attention": (EinsumAttention(einsum=False), (2, 5, 16), 5 * 16 * 48 + 2 * 4 * 5 * 5 * 4, {}),
    # MHA E=16, 4 heads, 5 tokens: q, k, v and out projections 4 * 5 * 16 * 16;
    # Q K^T and P V: 2 * 5 * 5 * 16 (all heads)
    "mha_train": (SelfAttention(), (2, 5, 16), 4 * 5 * 256 + 2 * 5 * 5 * 16, {"training": True}),
    "mha_eval": (SelfAttention(), (2, 5, 16), 4 * 5 * 256 + 2 * 5 * 5 * 16, {}),
    # Q (2, 4, 7, 8), K and V (2, 4, 9, 8): per item 4 heads * 7 * 9 * (8 + 8)
    "sdpa": (SDPA(), [(2, 4, 7, 8), (2, 4, 9, 8), (2, 4, 9, 8)], 4 * 7 * 9 * 16, {}),
    # LSTM 8 -> 16: 5 steps, 4 gates: w_ih 64 x 8, w_hh 64 x 16
    "lstm": (nn.LSTM(8, 16, batch_first=True), (2, 5, 8), 5 * (64 * 8 + 64 * 16), {}),
    # GRU 8 -> 16, 2 layers: 3 gates; layer 2 reads 16 features
    "gru_2_layers": (nn.GRU(8, 16, num_layers=2, batch_first=True), (2, 5, 8), 5 * (48 * 8 + 48 * 16) + 5 * (48 * 16 + 48 * 16), {}),
    # (B=2, T=3) folded: 3 frames of 3 -> 4 3x3 conv on 5x5 per declared item
    "video_fold": (VideoFold(), (2, 3, 3, 5, 5), 3 * 4 * 27 * 25, {}),
    # cat([x, x]) runs the conv on two images per declared item: 2 * 4 * 3 * 16
    "cat": (Doubled(), (1, 3, 4, 4), 2 * 4 * 3 * 16, {}),
}


def _inputs(inputs):
    if isinstance(inputs, list):
        return [torch.randn(s) for s in inputs]
    return [torch.randn(inputs)]


@pytest.mark.parametrize("case", list(CASES))
def test_macs_by_hand(case):
    model, inputs, expected, kw = CASES[case]
    count = count_module(model, inputs, **kw)
    assert count.macs == expected
    assert count.unsupported == {}


@pytest.mark.parametrize("case", ["mha_eval", "mha_train", "sdpa", "lstm", "gru_2_layers", "conv_transpose2d", "functional"])
def test_real_cpu_kernels_count_the_same(case):
    """On CPU the fused kernels run (the MHA fast path, _scaled_dot_product_flash_attention_for_cpu,
    mkldnn_rnn_layer); the count is the same as on meta."""
    model, inputs, expected, kw = CASES[case]
    count = count_module(model, _inputs(inputs), device=None, **kw)
    assert count.macs == expected and count.unsupported == {}


def test_the_fused_paths_really_ran():
    model, inputs, _, _ = CASES["mha_eval"]
    ops = {o.op for o in count_module(model, inputs, device=None).ops}
    assert "aten._native_multi_head_attention.default" in ops  # eval, no grad: fast path
    ops = {o.op for o in count_module(CASES["sdpa"][0], _inputs(CASES["sdpa"][1]), device=None).ops}
    assert "aten._scaled_dot_product_flash_attention_for_cpu.default" in ops
    ops = {o.op for o in count_module(CASES["lstm"][0], (2, 5, 8), device=None).ops}
    assert "aten.mkldnn_rnn_layer.default" in ops


def test_sdpa_equals_the_matmul_form_written_out():
    q, k, v = torch.randn(2, 4, 7, 8), torch.randn(2, 4, 9, 8), torch.randn(2, 4, 9, 8)

    class Manual(nn.Module):
        def forward(self, q, k, v):
            return (q @ k.transpose(-2, -1) / 8**0.5).softmax(-1) @ v

    fused = count_module(SDPA(), (q, k, v), device=None)
    manual = count_module(Manual(), (q, k, v), device=None)
    assert fused.macs == manual.macs == 4 * 7 * 9 * 16


def _flop_counter_macs(model, inputs, kw) -> int:
    """FlopCounterMode on meta copies of the model and inputs (FLOPs / 2), per batch."""
    import copy

    meta = copy.deepcopy(model).to("meta")
    meta.train(kw.get("training", False))
    args = [torch.zeros(s, device="meta") for s in (inputs if isinstance(inputs, list) else [inputs])]
    grad = torch.enable_grad() if kw.get("training") else torch.no_grad()
    with FlopCounterMode(display=False) as counter, grad:
        meta(*args)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("case", list(CASES))
def test_flop_counter_agrees_on_every_model(case):
    model, inputs, _, kw = CASES[case]
    count = count_module(model, inputs, **kw)
    assert count.macs * count.batch == _flop_counter_macs(model, inputs, kw)


@pytest.mark.parametrize("arch,variant,group", [("mobilenet_v1", "e2gc", 2), ("resnext50", "fggc", 32)])
def test_flop_counter_agrees_on_the_catalogue(arch, variant, group):
    module = build_module(arch, variant, group, device="meta")
    assert count_module(module, input_shape(2)).macs * 2 == _flop_counter_macs(module, input_shape(2), {})


@settings(max_examples=30, deadline=None)
@given(
    dims=st.integers(1, 3), groups=st.integers(1, 3), cin=st.integers(1, 2), cout=st.integers(1, 2),
    k=st.integers(1, 3), stride=st.integers(1, 3), size=st.integers(1, 5), batch=st.integers(1, 2),
    transposed=st.booleans(), data=st.data(),
)
def test_random_convs_of_any_rank(dims, groups, cin, cout, k, stride, size, batch, transposed, data):
    """Conv1/2/3d and ConvTranspose1/2/3d, grouped and strided: hand formula == FlopCounterMode / 2."""
    m, n = groups * cin, groups * cout
    if transposed:
        output_padding = data.draw(st.integers(0, stride - 1))
        cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[dims - 1]
        conv = cls(m, n, k, stride=stride, groups=groups, output_padding=output_padding, device="meta")
        expected = m * size**dims * cout * k**dims  # each input point scatters (n / g) k^d weights
    else:
        if size < k:
            return
        cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1]
        conv = cls(m, n, k, stride=stride, groups=groups, device="meta")
        out = (size - k) // stride + 1
        expected = n * out**dims * cin * k**dims  # each output point: (m / g) k^d terms
    shape = (batch, m, *([size] * dims))
    count = count_module(conv, shape)
    assert count.macs == expected
    assert count.macs * batch == _flop_counter_macs(conv, shape, {})
    assert count.layers[0].macs * count.layers[0].batch == count.macs * batch
    assert count.params == conv.weight.numel()


# --- bytes ----------------------------------------------------------------------------
def test_bytes_of_conv_bn_relu_by_hand():
    """Sum of input and output tensor sizes, op by op, float32 (4 bytes)."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
    count = count_module(model, (1, 3, 8, 8))
    x, w, y = 3 * 64, 8 * 27, 8 * 64  # input, weights, each activation map
    conv = (x + w) + y
    bn = (y + 4 * 8) + y  # reads y, weight, bias, running mean and var; writes its output
    relu = y + y
    assert count.bytes == 4 * (conv + bn + relu)
    assert count.bytes_read == 4 * (x + w + y + 32 + y)
    assert count_module(model, torch.randn(1, 3, 8, 8), device=None).bytes == count.bytes  # real CPU kernels
    # training: batch norm also writes its batch mean and invstd (8 each) and the running
    # mean and variance it updates in place (8 each); num_batches_tracked += 1 reads and
    # writes one int64 (8 bytes each)
    assert count_module(model, (1, 3, 8, 8), training=True).bytes == 4 * (conv + bn + 4 * 8 + relu) + 16


def test_bytes_of_linear_and_views_by_hand():
    # Linear(4, 3) on (2, 4): W.t() is a view (0 bytes); addmm reads bias 3, x 8, W 12, writes 6
    count = count_module(nn.Linear(4, 3), (2, 4))
    assert [o.op for o in count.ops] == ["aten.t.default", "aten.addmm.default"]
    assert count.ops[0].bytes_read == count.ops[0].bytes_written == 0
    assert count.ops[1].bytes_read == 4 * (3 + 8 + 12) and count.ops[1].bytes_written == 4 * 6
    assert count.bytes * 2 == 4 * (3 + 8 + 12 + 6)  # per frame: batch 2
    assert count.arithmetic_intensity == pytest.approx(2 * 4 * 3 / (4 * 29))


def test_inplace_residual_reads_and_writes_its_target():
    class Residual(nn.Module):
        def forward(self, x):
            y = x * 2
            y += x
            return y

    count = count_module(Residual(), (1, 10))
    add = [o for o in count.ops if o.op == "aten.add_.Tensor"][0]
    assert (add.bytes_read, add.bytes_written) == (4 * 20, 4 * 10)


def test_resnet_bytes_are_mostly_outside_the_convs():
    """The issue's observation: batch norm, ReLU, adds and pooling move most of a ResNeXt's traffic."""
    count = count_module(build_module("resnext50", "fggc", 32, device="meta"), input_shape(1))
    by_class = count.op_table(by="op_class").set_index("op_class")["bytes"]
    assert by_class.sum() == count.bytes
    assert 0.5 < 1 - by_class["conv"] / count.bytes < 0.8


# --- totals that cannot mislead -------------------------------------------------------
def test_declared_batch_divides_everything():
    model, inputs, expected, _ = CASES["video_fold"]
    assert count_module(model, inputs, batch=6).macs == expected // 3  # 6 frames = B*T
    with pytest.raises(GroupConvError, match="batch"):
        count_module(model, inputs, batch=0)


def test_tied_weights_are_counted_once():
    model = TiedLM()
    ids = torch.randint(0, 50, (2, 7))
    count = count_module(model, ids)
    assert count.total_params == 50 * 8 == sum(p.numel() for p in model.parameters())
    assert count.params == 50 * 8 and count.other_params == 0  # the one weight is the head's
    assert count.macs == 7 * 8 * 50  # the head on 7 tokens; the embedding is a gather
    assert count.batch == 2


def test_parameters_sharing_one_storage_are_counted_once():
    first = nn.Linear(4, 4, bias=False)
    second = nn.Linear(4, 4, bias=False)
    second.weight = nn.Parameter(first.weight.data)  # another Parameter object, the same memory
    model = nn.Sequential(first, second)
    assert sum(p.numel() for p in model.parameters()) == 32  # torch counts it twice
    count = count_module(model, (1, 4))
    assert count.total_params == count.params == 16 and count.macs == 2 * 16


def test_token_ids_and_keyword_mask():
    model = TiedLM()
    ids, mask = torch.randint(0, 50, (2, 7)), torch.ones(2, 7)
    count = count_module(model, ids, kwargs={"mask": mask})
    assert any(o.op.startswith("aten.mul") for o in count.ops)
    emb = [o for o in count.ops if o.op_class == "embedding"][0]
    assert emb.input_shapes == ((50, 8), (2, 7)) and emb.dtype == "float32"


def test_forward_called_directly_and_keywords_are_counted():
    model = DirectForward()
    count = count_module(model, (3, 6), kwargs={"scale": torch.tensor(2.0)})
    assert count.macs == 6 * 4 and count.params == 24 and count.bias_params == 4
    assert count.uncalled_modules == ("inner",)  # its hooks never fired; its ops are under the caller
    assert {o.module for o in count.ops} == {""}


class Distances(nn.Module):
    def forward(self, a, b):
        return torch.cdist(a, b) + torch.cdist(a, b, p=1)


class TBC(nn.Module):
    def __init__(self):
        super().__init__()
        self.w, self.b = nn.Parameter(torch.randn(3, 4, 6)), nn.Parameter(torch.randn(6))

    def forward(self, x):
        return torch.conv_tbc(x, self.w, self.b)


@pytest.mark.parametrize(
    "model,inputs,batch,expected",
    [
        # nn.Bilinear(4, 5, 6) on 3 rows: out_o = sum_ij x1_i W_oij x2_j, 6 * 4 * 5 terms per row
        (nn.Bilinear(4, 5, 6), [(3, 4), (3, 5)], None, 6 * 4 * 5),
        # two cdists of 30 x 40 rows with 8 features, per item: 2 * 30 * 40 * 8
        (Distances(), [(2, 30, 8), (2, 40, 8)], None, 2 * 30 * 40 * 8),
        # conv_tbc on (T=10, B=2, C=4), batch declared (it is dim 1): k 3, no padding ->
        # 8 steps, 4 -> 6 channels: 8 * 6 * 4 * 3 per item
        (TBC(), (10, 2, 4), 2, 8 * 6 * 4 * 3),
    ],
)
def test_other_multiply_accumulate_ops(model, inputs, batch, expected):
    """Ops FlopCounterMode counts as 0 (bilinear, cdist, conv_tbc) have formulas here."""
    count = count_module(model, inputs, batch=batch)
    assert count.unsupported == {}
    assert count.macs == expected


def test_unsupported_ops_are_listed_with_their_counts():
    class FFT(nn.Module):
        def forward(self, x):
            return torch.fft.rfft(x).abs() + torch.fft.rfft(x).abs()

    count = count_module(FFT(), (2, 8))
    assert count.unsupported == {"aten._fft_r2c.default": 2}


def test_module_attribution_and_tables():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.BatchNorm2d(4), nn.ReLU()), nn.Flatten(), nn.Linear(4 * 36, 5))
    count = count_module(model, (2, 3, 8, 8))
    modules = {o.module for o in count.ops if o.op_class in ("conv", "norm", "activation", "matmul")}
    assert modules == {"0", "1.0", "1.1", "3"}
    table = count.module_table(depth=1).set_index("module")
    assert table.loc["model", "macs"] == count.macs == 4 * 27 * 36 + 144 * 5
    assert table.loc["1", "bytes"] == sum(o.bytes for o in count.ops if o.module.startswith("1.")) / 2
    assert table.loc["model", "params"] == count.total_params
    assert "1.0" not in table.index and "1.0" in count.module_table(None)["module"].tolist()
    ops = count.op_table()
    assert ops["calls"].sum() == len(count.ops) and ops["macs"].sum() == count.macs
    d = json.loads(count.to_json())
    assert {"macs", "flops", "params", "total_params", "bytes", "unsupported", "ops", "layers"} <= set(d)
    assert d["flops"] == 2 * d["macs"] and len(d["ops"]) == len(count.ops)
    assert count.to_csv().splitlines()[0].startswith("op,op_class,module,phase")
    assert len(count.to_csv(table="layers").splitlines()) == 1 + len(count.layers) == 3
    assert "<table" in count._repr_html_()


def test_backward_is_tagged():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    count = count_module(model, (3, 4), backward=True)
    forward = sum(o.macs for o in count.ops if o.phase == "forward")
    backward = sum(o.macs for o in count.ops if o.phase == "backward")
    assert forward == 3 * (4 * 8 + 8 * 2)
    # grad of weights for both layers, grad of the input of the second only (x needs none)
    assert backward == 3 * (4 * 8 + 8 * 2) + 3 * 8 * 2
    assert all(o.layer is None for o in count.ops if o.phase == "backward")


def test_grouped_conv_backward_keeps_its_groups():
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=4)
    count = count_module(conv, (1, 8, 5, 5), backward=True)
    (bw,) = [o for o in count.ops if o.op == "aten.convolution_backward.default"]
    # grad of the weight only (the input needs none): one forward conv, 8 * 25 * 2 * 9
    assert bw.groups == 4 and bw.macs == 8 * 25 * 2 * 9


def test_the_model_is_not_modified():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_module(model, (2, 3, 8, 8), training=True)
    assert model.training and all(p.device.type == "cpu" for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_real_run_leaves_no_gradients_or_running_stats_behind():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 36, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count = count_module(model, torch.randn(2, 3, 8, 8), device=None, backward=True)
    assert any(o.phase == "backward" for o in count.ops)
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_data_dependent_models_are_pointed_to_a_real_device():
    class DataDependent(nn.Module):
        def forward(self, x):
            return x[: int(x.sum().item()) % 2 + 1]

    with pytest.raises(GroupConvError, match="device=None") as info:
        count_module(DataDependent(), (3, 4))
    assert "\n" not in str(info.value)
    assert count_module(DataDependent(), torch.ones(3, 4), device=None).macs == 0


def test_a_shape_that_does_not_fit_is_one_line():
    with pytest.raises(GroupConvError) as info:
        count_module(nn.Conv2d(3, 4, 3), (1, 5, 8, 8))
    assert "(1, 5, 8, 8)" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(GroupConvError, match="inputs must be"):
        count_module(nn.Conv2d(3, 4, 3), None)
    with pytest.raises(GroupConvError, match="kwargs"):
        count_module(nn.Conv2d(3, 4, 3), (1, 3, 8, 8), kwargs=[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", ["FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH"])
def test_sdpa_cuda_backends_count_the_matmul_form(backend):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = (torch.randn(2, 4, 64, 32, device="cuda", dtype=torch.float16) for _ in range(3))
    with sdpa_kernel(getattr(SDPBackend, backend)):
        count = count_module(SDPA(), (q, k, v), device=None)
    assert count.macs == 4 * 64 * 64 * (32 + 32) and count.unsupported == {}


def test_a_broadcast_weight_is_read_once():
    """F.linear on a non-contiguous 3-D input runs bmm on the weight expanded over the batch
    (stride 0): the weight is read once, not once per batch row."""

    class Transposed(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 5, bias=False)

        def forward(self, x):
            return self.fc(x.transpose(0, 1))  # (3, 2, 6): not contiguous

    count = count_module(Transposed(), (2, 3, 6))
    mms = [o for o in count.ops if o.macs]
    assert count.macs * 2 == 3 * 2 * 6 * 5
    assert sum(o.bytes_read for o in mms) == 4 * (2 * 3 * 6 + 6 * 5)  # x once and W once
    assert count.params == 30


# --- small versions of real architectures (was test_trace_models.py) ------------------------
# Small versions of the architectures the old hook counter got wrong, traced per op.
# 
# EfficientNet-style MBConv with squeeze-excitation, a Swin block (shifted windows, relative
# position bias), a 3-D video ResNet stem, a temporal shift module, a GPT with tied
# embeddings and causal SDPA, an LSTM language model. Each is checked against torch's
# FlopCounterMode on the meta device, and on the real CPU kernels (fused attention,
# mkldnn RNN) it counts the same.


class SE(nn.Module):
    """Squeeze-excitation: global pool, two 1x1 convs, a sigmoid gate."""

    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // 4, 1)
        self.fc2 = nn.Conv2d(c // 4, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.silu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


class MBConv(nn.Module):
    """EfficientNet's inverted residual: expand 4x, depthwise 3x3, SE, project."""

    def __init__(self, c):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(c, 4 * c, 1, bias=False), nn.BatchNorm2d(4 * c), nn.SiLU())
        self.dw = nn.Sequential(
            nn.Conv2d(4 * c, 4 * c, 3, padding=1, groups=4 * c, bias=False), nn.BatchNorm2d(4 * c), nn.SiLU()
        )
        self.se = SE(4 * c)
        self.proj = nn.Sequential(nn.Conv2d(4 * c, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.proj(self.se(self.dw(self.expand(x))))


class Eff(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1)
        self.blocks = nn.Sequential(MBConv(16), MBConv(16))
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.drop(self.blocks(self.stem(x)).mean((2, 3))))


class Swin(nn.Module):
    """One shifted-window block: roll, window partition, attention with a relative position
    bias gathered by index, window merge, MLP."""

    def __init__(self, dim=32, heads=4, win=4):
        super().__init__()
        self.win, self.heads = win, heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.rel = nn.Parameter(torch.zeros((2 * win - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(win), torch.arange(win), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + win - 1
        self.register_buffer("idx", rel[..., 0] * (2 * win - 1) + rel[..., 1])
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):  # (B, H, W, C)
        b, h, w_, c = x.shape
        w = self.win
        x = torch.roll(x, (-2, -2), (1, 2))
        t = self.norm(x).view(b, h // w, w, w_ // w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, c)
        q, k, v = self.qkv(t).reshape(t.shape[0], w * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)
        a = a + self.rel[self.idx.view(-1)].view(w * w, w * w, -1).permute(2, 0, 1)[None]
        o = (a.softmax(-1) @ v).transpose(1, 2).reshape(t.shape[0], w * w, c)
        o = self.proj(o).view(b, h // w, w_ // w, w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w_, c)
        x = x + o
        return x + self.mlp(x)


class R3D(nn.Module):
    """A 3-D video ResNet stem and one residual Conv3d."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(3, 16, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False), nn.BatchNorm3d(16),
            nn.ReLU(inplace=True), nn.MaxPool3d(3, 2, 1),
        )
        self.c = nn.Conv3d(16, 16, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.pool(F.relu(self.c(self.stem(x)) + self.stem(x))).flatten(1))


class TSM(nn.Module):
    """Temporal shift on (B*T, C, H, W): a quarter of the channels shifted in time, then a conv."""

    def __init__(self, frames=4):
        super().__init__()
        self.frames = frames
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        nt, c, h, w = x.shape
        x5 = x.view(nt // self.frames, self.frames, c, h, w)
        out = torch.zeros_like(x5)
        out[:, :-1, :2] = x5[:, 1:, :2]
        out[:, 1:, 2:4] = x5[:, :-1, 2:4]
        out[:, :, 4:] = x5[:, :, 4:]
        return self.conv(out.view(nt, c, h, w))


class GPT(nn.Module):
    """A 2-layer GPT: token + position embeddings, causal SDPA, tied output head."""

    def __init__(self, vocab=100, dim=32, heads=4, layers=2, seq=16):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, dim), nn.Embedding(seq, dim)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({
                "ln1": nn.LayerNorm(dim), "attn": nn.Linear(dim, 3 * dim), "proj": nn.Linear(dim, dim),
                "ln2": nn.LayerNorm(dim), "fc": nn.Linear(dim, 4 * dim), "out": nn.Linear(4 * dim, dim),
            })
            for _ in range(layers)
        )
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.wte.weight
        self.heads = heads

    def forward(self, ids):
        b, t = ids.shape
        x = self.wte(ids) + self.wpe(torch.arange(t, device=ids.device))
        for blk in self.blocks:
            q, k, v = blk["attn"](blk["ln1"](x)).split(x.shape[-1], -1)
            q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, -1)
            x = x + blk["proj"](y)
            x = x + blk["out"](F.gelu(blk["fc"](blk["ln2"](x)), approximate="tanh"))
        return self.head(self.ln(x))


class LSTMLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.rnn = nn.LSTM(16, 32, 2, batch_first=True, bidirectional=True)
        self.out = nn.Linear(64, 50)

    def forward(self, ids):
        return self.out(self.rnn(self.emb(ids))[0])


def flop_counter_macs(model, args) -> int:
    meta = copy.deepcopy(model).to("meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(*[a.to("meta") for a in args])
    return counter.get_total_flops() // 2


MODELS = {
    "efficientnet_like": (Eff, lambda: [torch.randn(2, 3, 32, 32)]),
    "swin_block": (Swin, lambda: [torch.randn(2, 8, 8, 32)]),
    "r3d": (R3D, lambda: [torch.randn(2, 3, 4, 32, 32)]),
    "tsm": (TSM, lambda: [torch.randn(8, 8, 6, 6)]),
    "gpt_tied": (GPT, lambda: [torch.randint(0, 100, (2, 16))]),
    "lstm_lm": (LSTMLM, lambda: [torch.randint(0, 50, (2, 7))]),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_against_flop_counter_and_real_kernels(name):
    torch.manual_seed(0)
    build, make_args = MODELS[name]
    model, args = build(), make_args()
    meta = count_module(model, tuple(args))
    assert meta.unsupported == {}
    assert meta.macs * meta.batch == flop_counter_macs(model, args)
    cpu = count_module(model, tuple(args), device=None)
    assert (cpu.macs, cpu.params, cpu.total_params) == (meta.macs, meta.params, meta.total_params)
    # every unique parameter once (the tied GPT embedding is one tensor, as in parameters())
    assert meta.total_params == sum(p.numel() for p in model.parameters())


def test_tsm_declared_clips():
    """TSM folds (B, T) into the batch: declare B to get MACs per clip (T = 4 frames)."""
    model = TSM()
    per_frame = count_module(model, (8, 8, 6, 6)).macs
    assert count_module(model, (8, 8, 6, 6), batch=2).macs == 4 * per_frame == 4 * 8 * 8 * 9 * 36


class ViT(nn.Module):
    """ViT-B/16 from torch's own encoder layer (pre-norm, GELU), as torchvision's vit_b_16."""

    def __init__(self, dim=768, depth=12, heads=12, mlp=3072, patch=16, size=224, classes=1000):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, (size // patch) ** 2 + 1, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, mlp, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.enc = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.norm(self.enc(x))[:, 0])


def test_vit_b16_by_hand():
    """The issue's ViT-B/16: 17.56 G MACs (the hook counter saw 11.27 G), 86,567,656 parameters."""
    with torch.device("meta"):
        model = ViT()
    count = count_module(model, (2, 3, 224, 224))
    tokens, dim, heads, mlp = 197, 768, 12, 3072
    patch = dim * 3 * 16 * 16 * 196
    per_layer = (
        tokens * dim * 3 * dim  # q, k, v projections
        + 2 * heads * tokens * tokens * (dim // heads)  # Q K^T and P V
        + tokens * dim * dim  # output projection
        + 2 * tokens * dim * mlp  # MLP
    )
    assert count.macs == patch + 12 * per_layer + dim * 1000 == 17_563_828_224
    assert count.total_params == 86_567_656  # torchvision's vit_b_16
    assert count.unsupported == {}
    # weights of the patch conv, 12 x (in-proj, out-proj, 2 MLP) and the head
    assert count.params == dim * 3 * 16 * 16 + 12 * (3 * dim * dim + dim * dim + 2 * dim * mlp) + dim * 1000
