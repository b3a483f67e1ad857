"""Data: the paper's tables joined with per-layer counts, and runs CSVs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from groupconv.cost import ConvLayer
from groupconv.errors import GroupConvError
from groupconv.fit import EnergyData, LayerArrays, Workload, load_runs, paper_dataset, paper_table_join
from groupconv.networks import build_network
from groupconv.paper_tables import load_e2gc_tables, load_epf


def test_paper_dataset_joins_every_measurement_with_its_network():
    data = paper_dataset("e2gc-mobilenet", "P4000")
    assert len(data) == 33
    assert len(set(data.keys)) == 11
    epf = load_epf()
    sub = epf[(epf.network == "mobilenet_v1") & (epf.platform == "P4000")]
    assert np.allclose(np.sort(data.energy_J), np.sort(sub.epf_J.to_numpy()))
    # each point's layers reproduce the printed MACs of its variant (Table III prints 5-6 digits)
    table = load_e2gc_tables().set_index(["network", "variant", "group"])
    frame = data.as_frame()
    for row in frame.itertuples():
        printed = table.loc[("mobilenet_v1", row.variant, row.group), "macs_millions"] * 1e6
        assert abs(row.macs - printed) <= 5e3
    # the 1/B structure: the same variant at B=1 and B=16 has the same layers
    one = frame[(frame.variant == "fggc") & (frame.group == 8)]
    assert sorted(one.batch) == [1, 4, 16] and one.macs.nunique() == 1


def test_paper_table_join_has_our_counts_next_to_the_printed_ones():
    joined = paper_table_join()
    assert len(joined) == 22 * 2 * 3
    assert joined.macs_rel_err.abs().max() < 2e-3  # Table IV prints 3 significant digits
    row = joined[(joined.network == "mobilenet_v1") & (joined.variant == "e2gc") & (joined.group == 1)].iloc[0]
    # depthwise everywhere: groups = channels of the 13 3x3 convs, summed by hand
    assert row.groups_total == 32 + 64 + 128 + 128 + 256 + 256 + 5 * 512 + 512 + 1024
    assert row.grouped_layers == 13


@pytest.mark.parametrize(
    "network, platform",
    [("alexnet", "P100"), ("e2gc-resnext", "V100"), ("resnext50", "p100")],
)
def test_paper_dataset_rejects_unknown_names(network, platform):
    with pytest.raises(GroupConvError, match="alexnet|V100|p100"):
        paper_dataset(network, platform)


layer_shapes = st.builds(
    lambda m, n, k, h, g, b: ConvLayer(m * g, n * g, k, h, h, groups=g, batch=b),
    st.integers(1, 16), st.integers(1, 16), st.sampled_from([1, 3, 5]), st.integers(1, 30),
    st.sampled_from([1, 2, 4]), st.integers(1, 8),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(layer_shapes, min_size=1, max_size=5), min_size=1, max_size=4))
def test_layer_arrays_sum_to_the_layer_totals(groups_of_layers):
    workloads = [Workload(tuple(layers), batch=i + 1) for i, layers in enumerate(groups_of_layers)]
    arrays = LayerArrays.from_workloads(workloads)
    for quantity in ("macs", "params", "activations"):
        summed = arrays.per_workload(getattr(arrays, quantity))
        expected = [sum(getattr(layer, quantity) for layer in w.layers) for w in workloads]
        assert np.array_equal(summed, np.array(expected, dtype=float))
    assert np.array_equal(arrays.per_workload(np.ones_like(arrays.macs)), [len(w.layers) for w in workloads])


def test_energy_data_rejects_bad_energies():
    w = Workload((ConvLayer(8, 8, 3, 4, 4),), 1)
    with pytest.raises(GroupConvError, match="finite and > 0"):
        EnergyData.from_workloads([w, w], [1.0, -2.0])
    with pytest.raises(GroupConvError, match="2 workloads"):
        EnergyData.from_workloads([w, w], [1.0])
    with pytest.raises(GroupConvError, match="batch"):
        Workload((ConvLayer(8, 8),), 0)


# --- runs CSV ---------------------------------------------------------------------------

HEADER = ("workload,arch,variant,group,in_channels,out_channels,kernel,height,width,groups,batch,"
          "method,mode,dtype,time_s,time_std_s,energy_J,energy_std_J,energy_source,device")


def _write(tmp_path, lines, name="runs.csv"):
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def test_load_runs_reads_layer_and_network_rows_and_skips_what_it_cannot_use(tmp_path):
    path = _write(tmp_path, [
        "layer,,,,64,64,3,14,14,4,8,gc,forward,float32,0.001,0,0.002,0,nvml,cpu",
        "layer,,,,64,64,3,14,14,64,8,dw,forward,float32,0.001,0,0.003,0,nvml,cpu",
        "layer,,,,64,64,3,14,14,4,8,bgc,forward,float32,0.001,0,0.004,0,nvml,cpu",
        "layer,,,,64,64,3,14,14,4,1,gc,forward,float32,0.001,0,,,none,cpu",
        "network,mobilenet_v1,e2gc,4,,,,,,,2,network,forward,float32,0.01,0,0.5,0,nvml,cpu",
    ])
    with pytest.raises(GroupConvError, match="mix layer and network.*--workload"):
        load_runs(path)
    data = load_runs(path, workload="layer")
    assert len(data) == 3 and data.quantity == "energy_J"
    assert data.energy_J.tolist() == [0.002, 0.003, 0.004]
    assert data.workloads[0].layers[0] == ConvLayer(64, 64, 3, 14, 14, groups=4, batch=8)
    assert data.workloads[1].layers[0].is_depthwise
    assert any("skipped 1 row with no energy_J" in n for n in data.notes)
    # the bgc row is its grouped conv (64 -> 64, 4 groups) plus the mean conv 16 -> 64 (dense):
    # weights 64 * 16 * 9 = 9,216 each, MACs 9,216 * 14 * 14 = 1,806,336 each
    gc, mean = data.workloads[2].layers
    assert gc == ConvLayer(64, 64, 3, 14, 14, groups=4, batch=8)
    assert (mean.in_channels, mean.out_channels, mean.groups) == (16, 64, 1)
    assert gc.weight_params == mean.weight_params == 64 * 16 * 9
    assert gc.macs + mean.macs == 2 * 1_806_336
    assert any("1 row of bgc layers modelled" in n for n in data.notes)
    # the same layer at another batch size shares the key (leave-one-out unit)
    assert data.keys[0] != data.keys[1]
    net = load_runs(path, workload="network")
    assert len(net) == 1 and len(net.workloads[0].layers) == 28 and net.workloads[0].batch == 2


def test_load_runs_fits_time_when_no_energy_was_measured(tmp_path):
    path = _write(tmp_path, [
        "layer,,,,64,64,3,14,14,4,8,gc,forward,float32,0.001,0,,,none,cpu",
        "layer,,,,64,64,3,14,14,64,8,dw,forward,float32,0.0005,0,,,none,cpu",
    ])
    data = load_runs(path)
    assert data.quantity == "time_s"
    assert data.energy_J.tolist() == [0.001, 0.0005]
    assert any("no energy_J was measured: fitted time_s" in n for n in data.notes)
    assert "fitted time_s" in data.source
    with pytest.raises(GroupConvError, match="no usable rows with energy_J"):
        load_runs(path, quantity="energy_J")


def test_load_runs_errors_name_the_file_column_or_line(tmp_path):
    with pytest.raises(GroupConvError, match="not found"):
        load_runs(tmp_path / "missing.csv")
    bad = tmp_path / "nocol.csv"
    bad.write_text("workload,in_channels,out_channels,kernel,height,width,batch,energy_J\nlayer,8,8,3,4,4,1,0.1\n")
    with pytest.raises(GroupConvError, match="column.*groups"):
        load_runs(bad)
    path = _write(tmp_path, ["layer,,,,64,64,3,14,14,3,8,gc,forward,float32,0,0,0.002,0,nvml,cpu"])
    with pytest.raises(GroupConvError, match="line 2.*divisible"):
        load_runs(path)
    path = _write(tmp_path, ["layer,,,,64,64,3,14,x,4,8,gc,forward,float32,0,0,0.002,0,nvml,cpu"])
    with pytest.raises(GroupConvError, match="line 2: column width"):
        load_runs(path)
    path = _write(tmp_path, ["layer,,,,64,64,3,14,14,4,8,gc,forward,float32,0,0,abc,0,nvml,cpu"])
    with pytest.raises(GroupConvError, match="line 2: energy_J"):
        load_runs(path)
    path = _write(tmp_path, ["layer,,,,64,64,3,14,14,4,8,gc,forward,float32,0,0,,0,none,cpu"])
    with pytest.raises(GroupConvError, match="line 2: time_s must be finite and > 0"):
        load_runs(path)  # no energy: time is fitted, and a zero time is refused
    path = _write(tmp_path, ["layer,,,,64,64,3,14,14,4,8,gc,forward,float32,,0,,0,none,cpu"])
    with pytest.raises(GroupConvError, match="no usable rows with time_s"):
        load_runs(path)


def test_load_runs_refuses_to_mix_modes_unless_told(tmp_path):
    path = _write(tmp_path, [
        "layer,,,,64,64,3,14,14,4,8,gc,forward,float32,0,0,0.002,0,nvml,cpu",
        "layer,,,,64,64,3,14,14,4,8,gc,forward_backward,float32,0,0,0.006,0,nvml,cpu",
    ])
    with pytest.raises(GroupConvError, match="mix mode.*--mode"):
        load_runs(path)
    assert load_runs(path, mode="forward_backward").energy_J.tolist() == [0.006]
    with pytest.raises(GroupConvError, match="no rows with mode 'inference'"):
        load_runs(path, mode="inference")


def test_load_runs_leaves_the_file_alone(tmp_path):
    path = _write(tmp_path, ["layer,,,,64,64,3,14,14,4,8,gc,forward,float32,0,0,0.002,0,nvml,cpu"])
    before = path.read_bytes()
    load_runs(path)
    assert path.read_bytes() == before
    assert isinstance(pd.read_csv(path), pd.DataFrame)


def test_network_rows_at_another_image_size_are_counted_with_torch(tmp_path):
    pytest.importorskip("torch")
    path = _write(tmp_path, [
        "network,mobilenet_v1,fggc,8,,,,96,96,,4,network,forward,float32,0.01,0,0.05,0,nvml,cpu",
        "network,mobilenet_v1,fggc,8,,,,224,224,,4,network,forward,float32,0.01,0,0.5,0,nvml,cpu",
    ])
    small, full = load_runs(path).workloads
    assert full.layers == build_network("mobilenet_v1", "fggc", 8).layers
    assert [l.name for l in small.layers] == [l.name for l in full.layers]
    assert small.layers[0].out_height == 48 and full.layers[0].out_height == 112
    # same weights, MACs of the convs scale with the feature-map area
    assert sum(l.params for l in small.layers) == sum(l.params for l in full.layers)
    assert sum(l.macs for l in small.layers[:-1]) < 0.2 * sum(l.macs for l in full.layers[:-1])
    bad = _write(tmp_path, ["network,mobilenet_v1,fggc,8,,,,96,64,,4,network,forward,float32,0,0,0.05,0,nvml,cpu"],
                 name="bad.csv")
    with pytest.raises(GroupConvError, match="line 2: network rows need square images"):
        load_runs(bad)
