"""The catalogue's torch modules against the layer lists, parameter counts and FlopCounterMode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from groupconv.errors import GroupConvError  # noqa: E402
from groupconv.networks import (  # noqa: E402
    ARCHITECTURES,
    PAPER_GROUPS,
    VARIANTS,
    build_module,
    build_network,
    count_module,
    input_shape,
)

PAPER_VARIANTS = [(a, v, g) for a in ARCHITECTURES for v in VARIANTS for g in PAPER_GROUPS[v]]


def _flops(module, x) -> int:
    module.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x)
    return counter.get_total_flops()


@pytest.mark.parametrize("arch,variant,group", PAPER_VARIANTS)
def test_module_layers_equal_catalogue_layers(arch, variant, group):
    """Hooks on the real module see exactly the catalogue's layers (names, shapes, groups),
    and its parameter count is the catalogue's weights + biases + batch norm."""
    net = build_network(arch, variant, group, batch=2)
    module = build_module(arch, variant, group, device="meta")  # shapes only, no compute
    count = count_module(module, input_shape(2))
    assert count.layers == net.layers
    assert count.params == net.params  # the paper's Params column: weights, both counters
    assert count.bias_params == net.bias_params == 1000
    assert sum(p.numel() for p in module.parameters()) == net.total_params == count.total_params
    bn = sum(p.numel() for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters())
    assert bn == net.other_params == count.other_params
    assert count.macs == net.macs


@pytest.mark.parametrize(
    "arch,variant,group",
    [("mobilenet_v1", "e2gc", 1), ("mobilenet_v1", "fggc", 8), ("resnext50", "e2gc", 4), ("resnext50", "fggc", 16)],
)
def test_flop_counter_sees_two_flops_per_mac(arch, variant, group):
    """FlopCounterMode (conv + matmul FLOPs) on the module = 2 * B * our MACs."""
    module = build_module(arch, variant, group, device="meta")
    x = torch.zeros(input_shape(3), device="meta")
    assert _flops(module, x) == 2 * 3 * build_network(arch, variant, group).macs


def test_real_cpu_forward_and_flop_count():
    """A real forward on CPU: logits of the right shape, and the same FLOP count."""
    torch.manual_seed(0)
    module = build_module("mobilenet_v1", "e2gc", 2)
    x = torch.randn(input_shape(1))
    assert _flops(module, x) == 2 * build_network("mobilenet_v1", "e2gc", 2).macs
    with torch.no_grad():
        out = module(x)
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


def test_real_resnext_count_on_cpu():
    torch.manual_seed(0)
    module = build_module("resnext50", "fggc", 32)
    count = count_module(module, input_shape(1))
    assert count.layers == build_network("resnext50", "fggc", 32).layers
    assert count.total_params == 25_028_904  # torchvision's resnext50_32x4d


def test_trains_on_small_inputs():
    """One training step runs (the modules pool adaptively, so small inputs work).
    MobileNet only: a ResNeXt-50 backward costs ~10 s on a loaded 2-core CI machine."""
    torch.manual_seed(0)
    module = build_module("mobilenet_v1", "e2gc", 4)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([3, 7])
    loss = torch.nn.functional.cross_entropy(module(x), y)
    loss.backward()
    grads = [p.grad for p in module.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_resnext_uses_torchvision_names_and_shapes():
    state = build_module("resnext50", "fggc", 32, device="meta").state_dict()
    assert state["layer1.0.conv2.weight"].shape == (128, 4, 3, 3)
    assert state["layer4.2.conv2.weight"].shape == (1024, 32, 3, 3)
    assert state["layer2.0.downsample.0.weight"].shape == (512, 256, 1, 1)
    assert state["layer2.0.downsample.1.running_mean"].shape == (512,)
    assert state["fc.weight"].shape == (1000, 2048) and state["fc.bias"].shape == (1000,)


def test_initialisation_is_not_degenerate():
    torch.manual_seed(0)
    module = build_module("mobilenet_v1", "fggc", 4)
    conv = module.blocks[0].gconv.conv
    assert conv.groups == 4 and conv.bias is None
    std = conv.weight.std().item()
    fan_out = conv.out_channels * 9  # Kaiming normal, fan_out mode: std = sqrt(2 / fan_out)
    assert std == pytest.approx((2 / fan_out) ** 0.5, rel=0.15)


@pytest.mark.parametrize(
    "args,fragment",
    [(("resnet50", "e2gc", 1), "'resnet50'"), (("resnext50", "e2gc", 3), "G=3"), (("mobilenet_v1", "fggc", 0), "0")],
)
def test_bad_input(args, fragment):
    with pytest.raises(GroupConvError) as info:
        build_module(*args, device="meta")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_importing_torch_models_does_not_import_torch():
    code = "import sys, groupconv.networks.torch_models, groupconv.networks.count; print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"


def test_resnext101_32x8d_is_torchvisions():
    """The generalised ResNeXt builder at depth 101, width 8: torchvision's published figures
    (88,791,336 parameters; 16.41 G "FLOPS", which torchvision counts as MACs)."""
    from groupconv.networks import count_module
    from groupconv.networks.torch_models import resnext101_32x8d

    module = resnext101_32x8d(device="meta")
    assert sum(p.numel() for p in module.parameters()) == 88_791_336
    count = count_module(module, input_shape(1))
    assert round(count.macs / 1e9, 2) == 16.41
    assert len([layer for layer in count.layers if layer.groups == 32]) == 33  # one 3x3 per bottleneck
