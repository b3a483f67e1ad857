"""The Platform value: JSON round trip, schema version, per-op pricing."""

from __future__ import annotations

import json
import math
import warnings

import pytest

from groupconv.cost import ConvLayer
from groupconv.errors import GroupConvError
from groupconv.platform import Platform, UnmeasuredKernelWarning

torch = pytest.importorskip("torch")


def test_round_trip(tmp_path, hand_platform):
    path = hand_platform.save(tmp_path / "p.json")
    loaded = Platform.load(path)
    assert loaded == hand_platform
    assert not loaded.has_energy
    assert json.loads(path.read_text())["schema_version"] == 1


def test_other_schema_version_is_one_line_error(tmp_path, hand_platform):
    d = hand_platform.as_dict()
    d["schema_version"] = 2
    path = tmp_path / "p.json"
    path.write_text(json.dumps(d))
    with pytest.raises(GroupConvError, match="schema version 2") as info:
        Platform.load(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"schema_version": 1}'])
def test_malformed_files(tmp_path, text):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(GroupConvError):
        Platform.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(GroupConvError, match="does not exist"):
        Platform.load(tmp_path / "none.json")


def test_predict_op_conv_layer_equals_traced_conv(hand_platform):
    """A ConvLayer priced directly and the same conv traced from torch give the same time."""
    from groupconv.networks import count_module

    conv = torch.nn.Conv2d(64, 128, 3, stride=2, padding=1, groups=4, bias=False)
    (op,) = count_module(conv, (8, 64, 28, 28)).ops
    layer = ConvLayer(64, 128, kernel=3, out_height=14, out_width=14, groups=4, stride=2, in_height=28, in_width=28)
    # hand: t = 2e-6 + 1e-10 * macs, macs = 8 * 128 * 16 * 9 * 14 * 14 per call
    macs = 8 * 128 * 16 * 9 * 14 * 14
    assert op.macs == macs
    assert hand_platform.predict_op(op) == pytest.approx(2e-6 + 1e-10 * macs)
    assert hand_platform.predict_op(layer, batch=8) == pytest.approx(hand_platform.predict_op(op))
    assert hand_platform.features(layer, 8) == hand_platform.features(op)


def test_unmeasured_kernel_uses_roofline_and_warns(hand_platform):
    from groupconv.networks import count_module

    (op,) = count_module(torch.nn.MaxPool2d(2), (1, 8, 16, 16)).ops
    feats = hand_platform.features(op)
    assert feats.kernel == "pool"
    # bytes = read 8*16*16*4 + write 8*8*8*4 (values) + 8*8*8*8 (int64 indices) = 14336
    assert feats.bytes == 8 * 16 * 16 * 4 + 8 * 8 * 8 * 4 + 8 * 8 * 8 * 8
    with pytest.warns(UnmeasuredKernelWarning, match="pool"):
        t = hand_platform.predict_op(op)
    assert t == pytest.approx(1e-7 + 14336 / 1e12)  # roofline: fixed + bytes / bandwidth


def test_network_correction_scales_every_op(hand_platform):
    from dataclasses import replace

    from groupconv.networks import count_module

    (op,) = count_module(torch.nn.ReLU(), (1, 8, 16, 16)).ops
    scaled = replace(hand_platform, network_correction={"time_factor": 1.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        base = hand_platform.predict_op(op)
    # relu: bytes = 2 * 2048 * 4 = 16384 -> 1e-6 + 1e-9 * 16384
    assert base == pytest.approx(1e-6 + 1e-9 * 16384)
    assert scaled.predict_op(op) == pytest.approx(1.5 * base)
    assert math.isclose(scaled.roofline.fixed_s, 1e-7)
