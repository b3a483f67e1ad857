"""Per-layer group counts (``groups=[...]``) of the catalogue's networks and torch modules."""

from __future__ import annotations

import pytest

from groupconv.errors import GroupConvError
from groupconv.networks import ARCHITECTURES, PAPER_GROUPS, VARIANTS, build_network
from groupconv.networks.catalogue import grouped_channels, layer_groups


def test_grouped_channels_by_hand():
    assert grouped_channels("mobilenet_v1") == (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024)
    assert grouped_channels("resnext50") == (128,) * 3 + (256,) * 4 + (512,) * 6 + (1024,) * 3


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_groups_rebuild_the_variant(arch, variant):
    for group in PAPER_GROUPS[variant]:
        net = build_network(arch, variant, group)
        g = [net.layer(name).groups for name in net.varied]
        assert layer_groups(arch, variant, group) == tuple(g)
        assert build_network(arch, "e2gc", 1, groups=g).layers == net.layers


def test_mixed_grouping_counts_by_hand():
    """MobileNet-V1 with g = 1 (dense) in layer 0 and depthwise elsewhere: only layer 0's
    weights change, from 32 * 1 * 9 (depthwise) to 32 * 32 * 9 (dense)."""
    dw = build_network("mobilenet_v1", "e2gc", 1)
    groups = [1] + [c for c in grouped_channels("mobilenet_v1")[1:]]
    mixed = build_network("mobilenet_v1", "e2gc", 1, groups=groups)
    assert mixed.params - dw.params == 32 * 32 * 9 - 32 * 9
    # layer 0 runs at 112x112 output: MACs grow by the weight difference times 112 * 112
    assert mixed.macs - dw.macs == (32 * 32 * 9 - 32 * 9) * 112 * 112


def test_bad_groups_name_the_layer():
    with pytest.raises(GroupConvError, match="13 grouped layers, got 2"):
        build_network("mobilenet_v1", "e2gc", 1, groups=[1, 2])
    with pytest.raises(GroupConvError, match=r"groups\[0\] = 3 does not divide the 32 channels"):
        build_network("mobilenet_v1", "e2gc", 1, groups=[3] + [1] * 12)
    with pytest.raises(GroupConvError, match=r"groups\[1\]"):
        build_network("resnext50", "e2gc", 1, groups=[1, 0] + [1] * 14)


def test_torch_module_with_groups_matches_layers():
    torch = pytest.importorskip("torch")
    from groupconv.networks import build_module, count_module, input_shape

    groups = [4, 8, 2, 128, 1, 16, 32, 64, 1, 2, 4, 8, 3]  # layer 12 has 512 channels: 3 does not divide them
    with pytest.raises(GroupConvError, match=r"groups\[12\] = 3"):
        build_module("resnext50", "fggc", 32, groups=groups + [1, 1, 1], device="meta")
    groups = [4, 8, 2, 128, 1, 16, 32, 64, 1, 2, 4, 8, 16, 1, 2, 1024]
    module = build_module("resnext50", "fggc", 32, groups=groups, device="meta")
    net = build_network("resnext50", "fggc", 32, groups=groups)
    assert count_module(module, input_shape(1)).layers == net.layers
    convs = [m for name, m in module.named_modules() if name.endswith("conv2")]
    assert [c.groups for c in convs] == groups
    assert isinstance(module, torch.nn.Module)
