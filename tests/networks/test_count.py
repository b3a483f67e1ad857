"""count_module on small real torch layers: vs closed-form shapes, parameters and FlopCounterMode."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from groupconv.cost import ConvLayer  # noqa: E402
from groupconv.errors import GroupConvError  # noqa: E402
from groupconv.networks import count_module  # noqa: E402
from groupconv.networks.zoo import build_zoo  # noqa: E402


def conv_out(size: int, k: int, stride: int, padding: int, dilation: int) -> int:
    """PyTorch's documented output size of a convolution along one axis."""
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def torch_flops(module, shape) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(torch.randn(shape))
    return counter.get_total_flops()


CASES = {
    # name: (module, input shape)
    "dense": (nn.Conv2d(8, 16, 3, padding=1), (2, 8, 10, 10)),
    "depthwise": (nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), (2, 16, 9, 9)),
    "depthwise_multiplier": (nn.Conv2d(8, 24, 5, padding=2, groups=8), (1, 8, 7, 7)),
    "grouped": (nn.Conv2d(12, 18, 3, padding=1, groups=3, bias=False), (3, 12, 8, 8)),
    "strided": (nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=4), (2, 8, 11, 11)),
    "dilated": (nn.Conv2d(4, 8, 3, dilation=2, padding=2, groups=2), (1, 4, 12, 12)),
    "unpadded": (nn.Conv2d(4, 6, 3), (1, 4, 9, 7)),
    "same": (nn.Conv2d(6, 6, (3, 5), padding="same", groups=3), (2, 6, 8, 9)),
    "rectangular_stride": (nn.Conv2d(4, 4, (1, 3), stride=(2, 1), padding=(0, 1)), (1, 4, 8, 8)),
    "conv1d": (nn.Conv1d(8, 16, 5, stride=2, padding=2, groups=4), (2, 8, 33)),
    "linear": (nn.Linear(20, 7), (4, 20)),
    "linear_sequence": (nn.Linear(6, 5, bias=False), (2, 3, 6)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_small_layers_against_flop_counter_and_parameters(case):
    module, shape = CASES[case]
    count = count_module(module, shape)
    assert len(count.layers) == 1
    assert count.batch == shape[0]
    assert count.flops * shape[0] == torch_flops(module, shape)  # FLOPs = 2 MACs, per batch
    # params = weights only (the E2GC convention, as Network.params); biases apart
    assert count.params == module.weight.numel()
    assert count.params + count.bias_params == count.total_params == sum(p.numel() for p in module.parameters())
    assert count.layers[0].params == count.params  # ConvLayer.params: weights, as the model's
    assert count.layers[0].total_params == count.total_params


def test_depthwise_counts_by_hand():
    count = count_module(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), (2, 16, 9, 9))
    layer = count.layers[0]
    assert layer.is_depthwise and layer.group_size == 1
    assert count.macs == 16 * 1 * 9 * 9 * 9 and count.params == 16 * 9
    assert (layer.input_height, layer.out_height, layer.batch) == (9, 9, 2)


def test_strided_and_conv1d_geometry():
    layer = count_module(*CASES["strided"]).layers[0]
    assert (layer.input_height, layer.out_height, layer.stride) == (11, 6, 2)
    layer = count_module(*CASES["conv1d"]).layers[0]
    assert (layer.kernel, layer.in_height, layer.in_width, layer.out_width) == ((1, 5), 1, 33, 17)
    assert layer.macs == 16 * 2 * 5 * 17
    layer = count_module(*CASES["rectangular_stride"]).layers[0]
    assert (layer.in_height, layer.out_height, layer.in_width, layer.out_width) == (8, 4, 8, 8)


def test_linear_on_a_sequence_counts_every_position():
    layer = count_module(*CASES["linear_sequence"]).layers[0]
    assert layer.kind == "linear" and layer.macs == 3 * 6 * 5 and layer.batch == 2


@settings(max_examples=40, deadline=None)
@given(
    groups=st.sampled_from([1, 2, 3, 4]),
    in_mult=st.integers(1, 3),
    out_mult=st.integers(1, 3),
    k=st.sampled_from([1, 2, 3, 5]),
    stride=st.integers(1, 3),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
    size=st.integers(5, 12),
    batch=st.integers(1, 3),
    bias=st.booleans(),
)
def test_random_grouped_convs(groups, in_mult, out_mult, k, stride, padding, dilation, size, batch, bias):
    """count_module == ConvLayer from the closed-form output size == FlopCounterMode / 2."""
    m, n = groups * in_mult, groups * out_mult
    out = conv_out(size, k, stride, padding, dilation)
    if out < 1:
        return
    conv = nn.Conv2d(m, n, k, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
    count = count_module(conv, (batch, m, size, size))
    expected = ConvLayer(
        m, n, k, out, out, groups=groups, stride=stride, batch=batch, bias=bias,
        in_height=size, in_width=size, name="conv2d",
    )
    assert count.layers == (expected,)
    assert count.macs == n * (m // groups) * k * k * out * out
    assert 2 * batch * count.macs == torch_flops(conv, (batch, m, size, size))
    assert count.params + count.bias_params == sum(p.numel() for p in conv.parameters())
    assert count.params == n * (m // groups) * k * k


class Tiny(nn.Module):
    """Conv -> BN -> shared linear used twice -> a Conv3d (counted since the tracer)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 4)
        self.volume = nn.Conv3d(1, 1, 1)
        self.unused = nn.Linear(2, 2)

    def forward(self, x):
        x = self.bn(self.conv(x)).mean(dim=(2, 3))
        x = self.head(self.head(x))
        return self.volume(x[:, None, :, None, None])


def test_shared_modules_bn_and_uncounted():
    model = Tiny()
    count = count_module(model, (2, 3, 6, 6))
    assert [layer.name for layer in count.layers] == ["conv", "head", "head#2", "volume"]
    assert count.unsupported == {} and count.uncalled_modules == ("unused",)
    assert count.params == 4 * 27 + 16 + 1  # weights; the shared head counted once
    assert count.bias_params == 4 + 4 + 1
    assert count.total_params == sum(p.numel() for p in model.parameters())
    assert count.other_params == 8 + 6  # BN, unused linear
    # conv 4*27 MACs at 36 positions, head (4x4) twice on 1 position, Conv3d 1x1x1 on 4 voxels
    assert count.macs == 4 * 27 * 36 + 2 * 16 + 4


def test_mode_and_running_stats_are_untouched():
    model = Tiny().train()
    model.head.eval()
    before = model.bn.running_mean.clone()
    count_module(model, (2, 3, 6, 6))
    assert model.training and model.bn.training and not model.head.training
    assert torch.equal(model.bn.running_mean, before)


def test_root_conv_is_named_by_type_and_dict_is_json_ready():
    import json

    count = count_module(nn.Conv2d(2, 2, 1), (1, 2, 3, 3))
    d = json.loads(json.dumps(count.as_dict()))
    assert d["layers"][0]["name"] == "conv2d" and d["macs"] == count.macs == 2 * 2 * 9
    assert list(count.layer_table().columns)[:2] == ["name", "kind"]


@pytest.mark.parametrize(
    "shape,fragment",
    [((), "()"), ((1, 0, 4, 4), "0"), ((1, 3.5, 4), "3.5"), ("abc", "'abc'"), (5, "5"), ((1, 5, 8, 8), "(1, 5, 8, 8)")],
)
def test_bad_input_shape(shape, fragment):
    with pytest.raises(GroupConvError) as info:
        count_module(nn.Conv2d(3, 4, 3), shape)
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_not_a_module():
    with pytest.raises(GroupConvError, match="torch.nn.Module"):
        count_module(lambda x: x, (1, 3))


def test_count_is_exact_for_big_numbers():
    """Integer counts, no float rounding: a 2048 -> 2048 3x3 conv on 56x56."""
    count = count_module(nn.Conv2d(2048, 2048, 3, padding=1, bias=False, device="meta"), (1, 2048, 56, 56))
    assert count.macs == 2048 * 2048 * 9 * 56 * 56 and isinstance(count.macs, int)
    assert math.log10(count.macs) > 10


def test_docstring_examples():
    import doctest

    from groupconv.networks import count

    assert doctest.testmod(count).failed == 0


def test_summary_is_the_count_cli_text(capsys):
    """ModelCount.summary() renders the totals, the module tree and the op classes; the
    CLI prints exactly that."""
    from groupconv.cli import main
    from groupconv.networks import resolve_model

    count = count_module(resolve_model("mobilenet_v1", variant="e2gc", group=8, device="meta"), (1, 3, 224, 224))
    text = count.summary("mobilenet_v1", depth=1)
    assert text.splitlines()[0] == "mobilenet_v1: input 1x3x224x224, batch 1 (per frame below)"
    assert f"({count.macs:,})" in text and f"total {count.total_params:,}" in text
    assert "op class" in text and "conv" in text
    assert main(["count", "mobilenet_v1", "--variant", "e2gc", "--groups", "8", "--trace", "--depth", "1"]) == 0
    assert capsys.readouterr().out == text + "\n"


# === the cases issue 17 (item 7) and issue 19 (item 10) found wrong ===
# count_module on the cases issue 17 (item 7) and issue 19 (item 10) found wrong.
# 
# Each test reproduces one report: a module registered twice, per-layer lists that
# over-counted a batched matmul, weights computed in ``forward``, ``embedding_renorm_``,
# backward ops credited to the wrong module, jagged attention, dict and keyword-only
# inputs, ``nn.DataParallel``, model errors blamed on the input shape, output shapes and
# the peak-memory estimate. Expected values carry their arithmetic; the attributions and
# the memory estimate are checked against torch's own FlopCounterMode and profiler.

aten = torch.ops.aten


# --- 1. a module or buffer registered under two names ----------------------------------
def _registered_twice():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    model.add_module("again", model[1])  # the same batch norm, a second name
    return model


@pytest.mark.parametrize("device", ["meta", None])
def test_a_module_registered_twice_counts_on_meta_and_is_left_as_it_was(device):
    model = _registered_twice()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count = count_module(model, (1, 3, 8, 8), device=device)
    assert count.macs == 4 * 27 * 6 * 6  # the conv only: 4 outputs x (3 * 3 * 3) x 6 x 6
    after = model.state_dict()
    assert all(t.device.type == "cpu" for t in after.values())  # no meta tensor left behind
    assert all(torch.equal(before[k], after[k]) for k in before)
    # and a second count on the real device still runs
    assert count_module(model, (1, 3, 8, 8), device=None).macs == count.macs


def test_a_buffer_and_a_parameter_registered_twice_in_one_module():
    class TwoNames(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4, bias=False)
            self.register_parameter("same_weight", self.fc.weight)
            self.register_buffer("offset", torch.ones(4))
            self.register_buffer("offset_again", self.offset)

        def forward(self, x):
            return self.fc(x) + self.offset_again

    model = TwoNames()
    count = count_module(model, (2, 4))
    assert (count.macs, count.params, count.total_params) == (16, 16, 16)
    assert all(t.device.type == "cpu" for t in (*model.parameters(), *model.buffers()))
    assert model.offset is model.offset_again and model.same_weight is model.fc.weight


def test_a_model_error_names_the_model_and_its_message_without_blaming_the_shape():
    class Broken(nn.Module):
        def forward(self, x):
            raise KeyError("no such feature 'depth'")

    class OwnError(Exception):
        pass

    class Custom(nn.Module):
        def forward(self, x):
            raise OwnError("checkpoint not loaded")

    for model, words in ((Broken(), "KeyError"), (Custom(), "OwnError: checkpoint not loaded")):
        with pytest.raises(GroupConvError) as info:
            count_module(model, (1, 3))
        text = str(info.value)
        assert "\n" not in text and type(model).__name__ in text and words in text
        assert "does not fit" not in text


# --- 2. per-layer lists agree with totals ---------------------------------------------
class EinsumProjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 5))

    def forward(self, x):
        return torch.einsum("bld,de->ble", x, self.w)


class BatchFirstAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


@pytest.mark.parametrize(
    "model,shape,expected",
    [
        # 3 x 7 rows of 8 features times an 8 x 5 matrix, per frame 7 * 8 * 5
        (EinsumProjection(), (3, 7, 8), 7 * 8 * 5),
        # per frame (5 tokens, E = 8, 2 heads of 4): Q, K, V and output projections
        # 4 * 5 * 8 * 8 = 1280, Q K^T and P V 2 * (2 heads * 5 * 5 * 4) = 400
        (BatchFirstAttention(), (3, 5, 8), 4 * 5 * 8 * 8 + 2 * 2 * 5 * 5 * 4),
    ],
)
@pytest.mark.parametrize("backward", [False, True])
def test_per_layer_macs_sum_to_the_total(model, shape, expected, backward):
    count = count_module(model, shape, backward=backward)
    forward = sum(o.macs for o in count.ops if o.phase == "forward") / count.batch
    assert forward == expected
    assert sum(layer.macs for layer in count.layers) == expected
    table = count.layer_table()
    assert table["macs"].sum() == expected
    csv_rows = count.to_csv(table="layers").splitlines()[1:]
    assert len(csv_rows) == len(count.layers)


# --- 3. weights computed in forward ---------------------------------------------------
class ComputedWeight(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 3, 3, 3))
        self.scale = nn.Parameter(torch.ones(4, 1, 1, 1))

    def forward(self, x):
        return F.conv2d(x, self.w * self.scale)


def test_weights_computed_in_forward_are_params():
    wn = nn.utils.parametrizations.weight_norm(nn.Linear(4, 3))
    count = count_module(wn, (2, 4))
    # weight = g * v / |v|: v (3 x 4) and g (3 x 1) both feed the multiplied operand
    assert (count.params, count.bias_params, count.other_params) == (12 + 3, 3, 0)
    sn = nn.utils.parametrizations.spectral_norm(nn.Linear(4, 3))
    count = count_module(sn, (2, 4))
    assert (count.params, count.bias_params) == (12, 3)  # weight_orig / sigma (u, v are buffers)
    count = count_module(ComputedWeight(), (2, 3, 8, 8))
    assert count.params == 4 * 3 * 3 * 3 + 4 and count.other_params == 0
    assert count_module(ComputedWeight(), torch.randn(2, 3, 8, 8), device=None).params == count.params


def test_a_parameter_that_only_touches_activations_is_not_a_weight():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4, bias=False)
            self.gain = nn.Parameter(torch.ones(4))
            self.norm = nn.LayerNorm(4)

        def forward(self, x):
            return self.fc(self.norm(x) * self.gain)  # gain scales data, not the weight

    count = count_module(Scaled(), (2, 4))
    assert count.params == 16 and count.other_params == 4 + 8


# --- 4. embedding_renorm_ --------------------------------------------------------------
def test_embedding_renorm_is_bytes_only():
    emb = nn.Embedding(10, 4, max_norm=1.0)
    ids = torch.tensor([[1, 2, 3], [1, 5, 6]])
    count = count_module(emb, ids, device=None)
    assert count.unsupported == {} and count.macs == 0
    renorm = [o for o in count.ops if o.op.startswith("aten.embedding_renorm_")]
    assert len(renorm) == 1 and renorm[0].op_class == "embedding"
    # 6 indices (int64) read; at most 6 of the 10 rows (4 floats) read and written back
    assert (renorm[0].bytes_read, renorm[0].bytes_written) == (6 * 16 + 6 * 8, 6 * 16)


# --- 5. backward ops on the right module ----------------------------------------------
def _flop_counter_modules(model, x):
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    root = type(model).__name__
    out = {}
    for name, flops in counter.get_flop_counts().items():
        if name != "Global":
            out["model" if name == root else name[len(root) + 1:]] = sum(flops.values()) // 2
    return out


def test_backward_of_the_output_layer_is_its_own():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    count = count_module(model, (2, 4), backward=True)
    table = {r.module: r.macs * count.batch for r in count.module_table(None).itertuples()}
    # output layer: forward 2 x 4 x 3 = 24, grad input 24 and grad weight 24: 72
    assert table["2"] == 72
    # first layer: forward 2 x 4 x 4 = 32, grad weight 32 (its input needs no grad): 64
    assert table["0"] == 64 and table["model"] == 72 + 64
    own_root = sum(o.macs for o in count.ops if o.module == "")
    assert own_root == 0
    assert {k: v for k, v in table.items() if k in ("0", "2", "model")} == {
        k: v for k, v in _flop_counter_modules(model, torch.randn(2, 4)).items() if k in ("0", "2", "model")
    }


def test_resnet18_backward_per_module_agrees_with_flop_counter():
    net = build_zoo("resnet18", image_size=32, num_classes=10)
    count = count_module(net, (2, 3, 32, 32), backward=True)
    ours = {r.module: r.macs * count.batch for r in count.module_table(None).itertuples()}
    net.train()
    theirs = _flop_counter_modules(net, torch.randn(2, 3, 32, 32))
    # fc 512 -> 10 on 2 frames: forward 10,240, grad input and grad weight 10,240 each
    assert ours["fc"] == 3 * 2 * 512 * 10 == theirs["fc"]
    # FlopCounterMode's ModuleTracker keeps a module "active" (a set, not a stack) until
    # its input gradients exist, so it also credits a downsample shortcut with the main
    # branch's backward that runs meanwhile; ours: 3 x its forward conv
    for name in ("layer2.0.downsample", "layer3.0.downsample", "layer4.0.downsample"):
        conv = next(o for o in count.ops if o.module == name + ".0" and o.phase == "forward" and o.macs)
        assert ours[name] == 3 * conv.macs
        assert theirs[name] > ours[name]
    same = {k for k in theirs if "downsample" not in k}
    assert len(same) >= 30
    assert {k: ours[k] for k in same} == {k: theirs[k] for k in same}


# --- 6. jagged (nested) fused attention ------------------------------------------------
class Jagged(nn.Module):
    """Calls the fused kernels as nested-tensor SDPA does: tokens of all sequences
    packed, (T, H, D), with the cumulative offsets (a CPU tensor, also on meta)."""

    def __init__(self, lengths, op="flash", backward=False):
        super().__init__()
        self.cum = torch.tensor([0, *itertools.accumulate(lengths)], dtype=torch.int32)
        self.max, self.op, self.backward = max(lengths), op, backward

    def forward(self, q, k, v):
        c, m = self.cum, self.max
        if self.op == "flash":
            out, lse, rng, unused, _ = aten._flash_attention_forward(q, k, v, c, c, m, m, 0.0, False, False)
            if not self.backward:
                return out
            return aten._flash_attention_backward(torch.ones_like(out), q, k, v, out, lse, c, c, m, m, 0.0, False, rng, unused)[0]
        q, k, v = q[None], k[None], v[None]  # the efficient kernel's (1, T, H, D)
        out, lse, seed, offset, *_ = aten._efficient_attention_forward(q, k, v, None, c, c, m, m, 0.0, 0, True)
        if not self.backward:
            return out
        return aten._efficient_attention_backward(
            torch.ones_like(out), q, k, v, None, out, c, c, m, m, lse, 0.0, seed, offset, 0, False
        )[0]


@pytest.mark.parametrize("op", ["flash", "efficient"])
def test_jagged_attention_follows_the_offsets(op):
    lengths = (30, 30, 30, 33)
    tokens = sum(lengths)  # 123
    # 4 heads x (30^2 + 30^2 + 30^2 + 33^2 = 3,789 query-key pairs) x (16 + 16) = 484,992
    forward = 4 * (3 * 30 * 30 + 33 * 33) * (16 + 16)
    assert forward == 484_992
    count = count_module(Jagged(lengths, op), [(tokens, 4, 16)] * 3, batch=4)
    assert count.macs * 4 == forward and count.unsupported == {}
    # backward: Q K^T recomputed, dV, dP, dQ, dK: 4 x 3,789 x (3 * 16 + 2 * 16) = 1,212,480
    count = count_module(Jagged(lengths, op, backward=True), [(tokens, 4, 16)] * 3, batch=4)
    backward_op = next(o for o in count.ops if "backward" in o.op)
    assert backward_op.macs == 4 * 3789 * (3 * 16 + 2 * 16) == 1_212_480
    # torch's FlopCounterMode reads the same offsets and agrees
    q = torch.empty(tokens, 4, 16, device="meta")
    with FlopCounterMode(display=False) as counter:
        Jagged(lengths, op, backward=True)(q, q, q)
    assert counter.get_total_flops() == 2 * (forward + 1_212_480)


# --- 7. dict inputs, keyword-only calls, DataParallel ----------------------------------
class KeywordOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, *, features, mask=None):
        out = self.fc(features)
        return out if mask is None else out * mask


def test_dict_inputs_and_keyword_only_calls():
    x = torch.zeros(2, 4)
    by_dict = count_module(KeywordOnly(), {"features": x, "mask": torch.ones(2, 3)})
    by_kwargs = count_module(KeywordOnly(), None, kwargs={"features": x})
    assert by_dict.macs == by_kwargs.macs == 4 * 3  # per frame; batch 2 from the first tensor
    assert by_dict.batch == 2 and by_dict.input_shapes == ((2, 4), (2, 3))
    with pytest.raises(GroupConvError, match="given twice"):
        count_module(KeywordOnly(), {"features": x}, kwargs={"features": x})


def test_data_parallel_is_unwrapped():
    inner = nn.Sequential(nn.Linear(4, 3))
    for wrapped in (nn.DataParallel(inner),):
        count = count_module(wrapped, (2, 4))
        assert count.macs == 12 and count.total_params == 15
        assert set(count.module_table(None)["module"]) == {"model", "0"}


# --- issue 19 item 10: output shapes and peak memory -----------------------------------
def _small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    ).eval()


def test_output_shapes_per_module():
    count = count_module(_small_cnn(), (4, 3, 32, 32))
    shapes = dict(zip(count.module_table(None)["module"], count.module_table(None)["output_shape"]))
    assert shapes == {
        "model": "4x10", "0": "4x16x32x32", "1": "4x16x32x32", "2": "4x16x32x32", "3": "4x32x32x32",
        "4": "4x32x32x32", "5": "4x32x1x1", "6": "4x32", "7": "4x10",
    }


def _profiled_peak(run) -> int:
    """Peak of CPU bytes allocated and not yet freed, from torch.profiler's memory events."""
    from torch.profiler import ProfilerActivity, profile

    run()  # warm-up: first-call allocations (oneDNN primitives) out of the way
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    current = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak


@pytest.mark.parametrize("backward", [False, True])
def test_peak_memory_estimate_matches_the_profiler(backward):
    net, x = _small_cnn(), torch.randn(4, 3, 32, 32)
    resident = sum(t.numel() * 4 for t in (*net.parameters(), *net.buffers(), x) if t.is_floating_point())
    resident += 8  # num_batches_tracked (int64)
    count = count_module(net, x, backward=backward)
    assert count.resident_bytes == resident
    assert count_module(net, x, device=None, backward=backward).peak_bytes == count.peak_bytes

    def run():
        if backward:
            net.train()
            out = net(x)
            torch.autograd.grad(out, list(net.parameters()), torch.ones_like(out))
            net.eval()
        else:
            with torch.no_grad():
                net(x)

    measured = _profiled_peak(run)
    estimated = count.peak_bytes - count.resident_bytes
    # forward, eval: the largest moment is the second conv's output (4x32x32x32 floats,
    # 524,288 B) alive with its ReLU's output (not in place, 524,288 B)
    if not backward:
        assert estimated == 2 * 4 * 32 * 32 * 32 * 4 == measured
    else:
        assert abs(estimated - measured) <= 0.01 * measured
    peaks = count.module_table(None).set_index("module")["peak_bytes"]
    assert peaks["model"] == count.peak_bytes and (peaks <= count.peak_bytes).all()


def test_a_model_or_factory_that_exits_is_one_line(tmp_path):
    import sys

    from groupconv.networks import resolve_model

    class Exits(nn.Module):
        def forward(self, x):
            sys.exit(3)

    with pytest.raises(GroupConvError, match=r"model Exits called sys\.exit\(3\)"):
        count_module(Exits(), (1, 3))
    path = tmp_path / "exits.py"
    path.write_text("import sys\n\ndef build():\n    sys.exit(3)\n")
    with pytest.raises(GroupConvError, match=r"the factory called sys\.exit\(3\)"):
        resolve_model(f"{path}:build")
