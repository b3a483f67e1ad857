"""E2GC Fig. 3: its data against ConvLayer counts, and the figure itself."""

import numpy as np
import pytest

from groupconv.cost import ConvLayer
from groupconv.errors import GroupConvError
from groupconv.figures import make_all, registry
from groupconv.figures.e2gc_theory import fig3_data, make_fig3


def test_fig3_data_matches_conv_layer_counts():
    data = fig3_data()
    assert data["g"].tolist() == [2**i for i in range(10)]
    assert data["G"].tolist() == [512 / 2**i for i in range(10)]
    dw = ConvLayer(512, 512, 3, 14, 14, groups=512)
    for i, g in enumerate(data["g"]):
        layer = ConvLayer(512, 512, 3, 14, 14, groups=int(g))
        assert data["macs"][i] == pytest.approx(layer.macs / dw.macs, rel=1e-14)
        assert data["ai"][i] == pytest.approx(layer.arithmetic_intensity / dw.arithmetic_intensity, rel=1e-14)
        assert data["memory_accesses"][i] == pytest.approx(
            (1 / layer.arithmetic_intensity) / (1 / dw.arithmetic_intensity), rel=1e-14
        )


def test_fig3_shape_of_the_curves():
    data = fig3_data()
    assert data["macs"][0] == 512 and data["macs"][-1] == 1  # SConv has 512x the MACs of DWConv
    assert np.all(np.diff(data["macs"]) < 0) and np.all(np.diff(data["ai"]) < 0)
    assert np.all(np.diff(data["memory_accesses"]) > 0)
    # Sec. III-A: AI grows more slowly than M_c towards large G (SConv's AI is ~41x DWConv's).
    assert data["ai"][0] == pytest.approx((512 * 512 * 9 * 196 / (512 * 512 * 9 + 1024 * 196)) / (512 * 9 * 196 / (512 * 9 + 1024 * 196)))
    assert np.all(data["ai"] <= data["macs"])


def test_fig3_figure_has_three_curves_on_log_axes(tmp_path):
    fig = make_fig3()
    left, right = fig.axes
    assert len(left.get_lines()) == 2 and len(right.get_lines()) == 1
    assert left.get_yscale() == "log" and right.get_yscale() == "log"
    assert np.allclose(right.get_lines()[0].get_ydata(), fig3_data()["memory_accesses"])
    # what the right axis plots is elements moved per MAC, and it says so
    assert "per MAC" in right.get_ylabel() and "1/AI" in right.get_ylabel()
    layer = ConvLayer(512, 512, 3, 14, 14, groups=1)
    dw = ConvLayer(512, 512, 3, 14, 14, groups=512)
    per_mac = (layer.params + layer.activations) / layer.macs / ((dw.params + dw.activations) / dw.macs)
    assert right.get_lines()[0].get_ydata()[0] == pytest.approx(per_mac, rel=1e-12)
    # bottom axis: g = 1 ... 512; top axis: G = 512 ... 1
    assert [t.get_text() for t in left.get_xticklabels()] == [str(2**i) for i in range(10)]
    (top,) = left.child_axes
    assert [t.get_text() for t in top.get_xticklabels()] == [str(512 // 2**i) for i in range(10)]
    assert "e2gc_fig3" in registry()
    written = make_all(tmp_path, ["e2gc_fig3"])
    assert sorted(p.name for p in written) == ["e2gc_fig3.pdf", "e2gc_fig3.png", "e2gc_fig3.svg"]
    assert all(p.stat().st_size > 1000 for p in written)


def test_fig3_bad_input():
    with pytest.raises(GroupConvError, match="m must be a power of two for Fig. 3's axis, got 96"):
        fig3_data(m=96)
    with pytest.raises(GroupConvError, match="n=96 is not divisible by m=64"):
        fig3_data(m=64, n=96)
