"""The torch-free catalogue: structure, the paper's totals, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from groupconv.networks import (
    ARCHITECTURES,
    PAPER_GROUPS,
    VARIANTS,
    build_network,
    compare_with_paper,
    paper_networks,
)
from groupconv.networks.catalogue import (
    MACS_TOLERANCE,
    PARAMS_TOLERANCE,
    PRINTED_STEP,
    grouped_channels,
    layer_groups,
)
from groupconv.errors import GroupConvError
from groupconv.paper_tables import load_e2gc_tables

COMPARISON = compare_with_paper()
ROWS = [tuple(r) for r in COMPARISON[["arch", "variant", "group"]].itertuples(index=False)]

# The one row no consistent construction reproduces within 0.1% (see docs/networks.md).
KNOWN_MACS_MISMATCH = {("resnext50", "e2gc", 32)}


def _row(arch, variant, group):
    sel = COMPARISON[
        (COMPARISON.arch == arch) & (COMPARISON.variant == variant) & (COMPARISON.group == group)
    ]
    assert len(sel) == 1
    return sel.iloc[0]


def test_comparison_covers_all_22_rows():
    assert len(COMPARISON) == 22 == len(load_e2gc_tables())
    assert len(paper_networks()) == 22


@pytest.mark.parametrize("arch,variant,group", ROWS)
def test_params_within_half_percent_of_paper(arch, variant, group):
    row = _row(arch, variant, group)
    assert abs(row.params - row.params_paper) <= PARAMS_TOLERANCE * row.params_paper


@pytest.mark.parametrize(
    "arch,variant,group",
    [
        pytest.param(
            *r,
            marks=pytest.mark.xfail(
                strict=True, reason="paper prints 4.80 G; every consistent construction gives 4.794 G"
            ),
        )
        if r in KNOWN_MACS_MISMATCH
        else r
        for r in ROWS
    ],
)
def test_macs_match_paper(arch, variant, group):
    """Within 0.1% of the printed value, or printing ours the paper's way gives the same digits."""
    row = _row(arch, variant, group)
    rel = abs(row.macs - row.macs_paper) / row.macs_paper
    rounds = abs(row.macs - row.macs_paper) <= PRINTED_STEP[row.table]["macs"] / 2
    assert rel <= MACS_TOLERANCE or rounds


def test_known_mismatch_is_small_and_documented():
    row = _row("resnext50", "e2gc", 32)
    assert row.macs == 4_794_056_704
    assert -0.00125 < row.macs_rel_err < -0.0012  # 0.124% below the printed 4.80 G


def test_mobilenet_macs_match_to_the_printed_digit():
    """Table III prints MACs to 10k; every MobileNet row rounds to the printed value."""
    mobilenet = COMPARISON[COMPARISON.arch == "mobilenet_v1"]
    assert mobilenet.macs_rounds_to_paper.all()


def test_params_rounding_summary():
    """20 of 22 printed params are reproduced to the last digit; the 2 others are Table III rows."""
    off = COMPARISON[~COMPARISON.params_rounds_to_paper]
    assert {(r.arch, r.variant, r.group) for r in off.itertuples()} == {
        ("mobilenet_v1", "e2gc", 1),
        ("mobilenet_v1", "e2gc", 16),
    }


def test_no_constant_offset_fixes_resnext_macs():
    """The claim in docs/networks.md: no constant added to every ResNeXt-50 count (BN, ReLU,
    pooling, additions ...) brings all 11 rows into their printed rounding intervals."""
    resnext = COMPARISON[COMPARISON.arch == "resnext50"]
    half = PRINTED_STEP["IV"]["macs"] / 2
    low = max(r.macs_paper - half - r.macs for r in resnext.itertuples())
    high = min(r.macs_paper + half - r.macs for r in resnext.itertuples())
    assert low > high  # the intervals for the offset do not intersect


def test_published_totals_of_the_baselines():
    """Independent published counts of the two baseline networks.

    torchvision's resnext50_32x4d has 25,028,904 parameters (BN included) and 4.23 GMACs;
    Keras' MobileNet (alpha=1, 224) has 4,231,976 trainable parameters (BN scale/shift
    included) and Howard et al. report 569 M mult-adds.
    """
    resnext = build_network("resnext50", "fggc", 32)
    assert resnext.total_params == 25_028_904
    assert round(resnext.macs / 1e9, 2) == 4.23
    mobilenet = build_network("mobilenet_v1", "e2gc", 1)
    assert mobilenet.total_params == 4_231_976
    assert round(mobilenet.macs / 1e6) == 569


def _closed_form_mobilenet_macs(variant: str, group: int) -> int:
    """MobileNet-V1 MACs written out by hand, block by block (independent of the builder)."""
    stem = 3 * 32 * 9 * 112 * 112
    # (channels in, channels out, output side) of the 13 modules
    spec = [(32, 64, 112), (64, 128, 56), (128, 128, 56), (128, 256, 28), (256, 256, 28),
            (256, 512, 14)] + [(512, 512, 14)] * 5 + [(512, 1024, 7), (1024, 1024, 7)]
    total = stem + 1024 * 1000
    for m, n, d in spec:
        g_size = group if variant == "e2gc" else m // group  # channels per group
        total += m * g_size * 9 * d * d + m * n * d * d
    return total


@pytest.mark.parametrize("variant", VARIANTS)
def test_mobilenet_closed_form(variant):
    for group in PAPER_GROUPS[variant]:
        assert build_network("mobilenet_v1", variant, group).macs == _closed_form_mobilenet_macs(variant, group)


@given(st.sampled_from(ARCHITECTURES), st.sampled_from([1, 2, 4, 8, 16, 32]))
def test_e2gc_cost_grows_linearly_in_G(arch, G):
    """E2GC: group conv MACs and weights are m * G * 9 * h * w, linear in G."""
    base, one, net = (build_network(arch, "e2gc", G_) for G_ in (1, 2, G))
    assert net.macs - base.macs == (G - 1) * (one.macs - base.macs)
    assert net.params - base.params == (G - 1) * (one.params - base.params)


@given(st.sampled_from(ARCHITECTURES), st.sampled_from([1, 2, 4, 8, 16, 32]))
def test_fggc_cost_falls_as_one_over_g(arch, g):
    """FgGC: group conv MACs are m^2 * 9 * h * w / g, so g * (macs - dense part) is constant."""
    dense = build_network(arch, "fggc", 1)
    net = build_network(arch, "fggc", g)
    varied = {name for name in net.varied}
    fixed_macs = sum(layer.macs for layer in net.layers if layer.name not in varied)
    grouped_dense = dense.macs - fixed_macs
    assert g * (net.macs - fixed_macs) == grouped_dense


@pytest.mark.parametrize("net", paper_networks(), ids=lambda n: n.label)
def test_structure_chains(net):
    """Channels and sizes chain from the 3x224x224 input to the 1000-way classifier."""
    convs = [layer for layer in net.layers if layer.kind == "conv"]
    assert convs[0].in_channels == 3 and convs[0].input_height == 224
    fc = net.layers[-1]
    assert fc.kind == "linear" and fc.out_channels == 1000 and fc.bias
    assert fc.in_channels == convs[-1].out_channels
    assert convs[-1].out_height == 7  # global pooling of a 7x7 map before the classifier
    for layer in net.layers:
        assert layer.batch == 1
        if layer.name in net.varied:
            assert layer.kernel == (3, 3)
            expected = layer.in_channels // net.group if net.variant == "e2gc" else net.group
            assert layer.groups == expected
        else:
            assert layer.groups == 1
    main_path = [layer for layer in convs if "downsample" not in layer.name]
    for prev, layer in zip(main_path, main_path[1:]):
        assert layer.in_channels == prev.out_channels
        pooled = prev.name == "conv1"  # ResNeXt's stem is followed by a stride-2 max pool
        assert layer.input_height == (prev.out_height // 2 if pooled else prev.out_height)
    assert len({layer.name for layer in net.layers}) == len(net.layers)


def test_layer_counts():
    assert len(build_network("mobilenet_v1", "e2gc", 1).layers) == 1 + 2 * 13 + 1
    # stem + 16 bottlenecks x 3 convs + 4 shortcuts + classifier
    assert len(build_network("resnext50", "fggc", 32).layers) == 1 + 16 * 3 + 4 + 1


def test_batch_is_carried_and_per_frame_counts_do_not_change():
    one = build_network("resnext50", "e2gc", 8)
    four = build_network("resnext50", "e2gc", 8, batch=4)
    assert all(layer.batch == 4 for layer in four.layers)
    assert (four.macs, four.params, four.activations) == (one.macs, one.params, one.activations)
    assert one.with_batch(4) == four


def test_as_dict_is_json_and_table_has_one_row_per_layer():
    net = build_network("mobilenet_v1", "fggc", 4)
    d = json.loads(json.dumps(net.as_dict()))
    assert d["params"] == net.params and d["macs"] == net.macs and len(d["layers"]) == len(net.layers)
    assert d["total_params"] == d["params"] + d["bias_params"] + d["other_params"]
    table = net.layer_table()
    assert len(table) == len(net.layers) and table.macs.sum() == net.macs
    assert table.varied.sum() == 13


@pytest.mark.parametrize(
    "args,fragment",
    [
        (("resnet50", "e2gc", 1), "'resnet50'"),
        (("mobilenet_v1", "bgc", 1), "'bgc'"),
        (("mobilenet_v1", "e2gc", 3), "G=3"),
        (("mobilenet_v1", "fggc", 3), "g=3"),
        (("mobilenet_v1", "e2gc", 64), "G=64"),
        (("resnext50", "fggc", 0), "0"),
        (("resnext50", "fggc", -2), "-2"),
        (("resnext50", "fggc", 2.0), "2.0"),
    ],
)
def test_bad_input_is_one_line_naming_the_value(args, fragment):
    with pytest.raises(GroupConvError) as info:
        build_network(*args)
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_bad_batch():
    with pytest.raises(GroupConvError, match="batch"):
        build_network("resnext50", "fggc", 32, batch=0)


def test_importing_the_catalogue_does_not_import_torch():
    code = "import sys, groupconv.networks, groupconv.networks.catalogue; print('torch' in sys.modules)"
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"


def test_docstring_examples():
    import doctest

    from groupconv.networks import catalogue

    assert doctest.testmod(catalogue).failed == 0


def test_network_summary_lists_every_layer_and_the_totals():
    from groupconv.networks import build_network

    net = build_network("mobilenet_v1", "e2gc", 8, 2)
    lines = net.summary().splitlines()
    assert lines[0] == f"{net.label}, batch 2, input 3x224x224 (MACs per frame)"
    body = lines[3:3 + len(net.layers)]
    assert [line.split()[0] for line in body] == [layer.name for layer in net.layers]
    total = lines[4 + len(net.layers)].split()
    assert total[0] == "total" and total[-2:] == [f"{net.params:,}", f"{net.macs:,}"]


# --- per-layer group counts (was test_per_layer_groups.py) --------------------------------------
# Per-layer group counts (``groups=[...]``) of the catalogue's networks and torch modules.


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
