"""count_module on small real torch layers: vs closed-form shapes, parameters and FlopCounterMode."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from groupconv.cost import ConvLayer  # noqa: E402
from groupconv.errors import GroupConvError  # noqa: E402
from groupconv.networks import count_module  # noqa: E402


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
