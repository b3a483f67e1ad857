"""correction: the NetworkCorrection value, its groups and its JSON (unchanged by a round trip)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from groupconv.errors import GroupConvError
from groupconv.platform import Platform
from groupconv.platform.correction import CORRECTION_GROUPS, NetworkCorrection, correction_group

PLATFORMS = Path(__file__).resolve().parents[2] / "data" / "platforms"


def test_every_kernel_falls_in_one_group():
    from groupconv.platform import KERNELS

    assert {correction_group(k) for k in KERNELS} <= set(CORRECTION_GROUPS)
    assert correction_group("conv_dw") == "conv" and correction_group("attention") == "attention"
    assert correction_group("encoder_layer") == "attention" and correction_group("rnn") == "rnn"
    assert correction_group("backward:conv_slow") == "conv"
    assert correction_group("norm:aten.layer_norm.default") == "norm"
    assert correction_group("softmax") == "memory"


def test_factor_per_group_with_the_overall_factor_as_fallback():
    nc = NetworkCorrection(time_factor=1.2, factors={"conv": 1.5, "matmul": 0.8})
    assert nc.time_factor_of("conv_slow") == 1.5
    assert nc.time_factor_of("matmul") == 0.8
    assert nc.time_factor_of("norm") == 1.2  # no factor for the group: the overall one
    assert NetworkCorrection().time_factor_of("conv_slow") == 1.0  # no correction at all
    assert NetworkCorrection().energy_factor_or_one == 1.0 and not NetworkCorrection()
    assert NetworkCorrection(energy_factor=0.9).energy_factor_or_one == 0.9


@pytest.mark.parametrize("name", sorted(p.name for p in PLATFORMS.glob("*.json")))
def test_committed_platform_json_is_byte_identical_after_a_round_trip(name, tmp_path):
    """The correction is typed in memory, but the file does not change."""
    path = PLATFORMS / name
    d = json.loads(path.read_text())
    nc = NetworkCorrection.from_dict(d["network_correction"])
    assert nc.as_dict() == d["network_correction"]
    assert list(nc.as_dict()) == list(d["network_correction"])  # the key order too
    platform = Platform.load(path)
    assert isinstance(platform.network_correction, NetworkCorrection)
    assert platform.save(tmp_path / name).read_bytes() == path.read_bytes()


def test_a_mapping_is_converted_and_an_unknown_key_is_a_one_line_error(tmp_path):
    from groupconv.platform import Roofline

    p = Platform(device="cpu", metadata={}, roofline=Roofline(1e9, 1e9, 1e-6), time_models={},
                 network_correction={"time_factor": 1.5})
    assert p.network_correction == NetworkCorrection(time_factor=1.5)
    assert math.isclose(p.network_correction.time_factor_of("conv_dw"), 1.5)
    d = p.as_dict()
    d["network_correction"]["bogus"] = 1
    with pytest.raises(GroupConvError, match="malformed platform file.*bogus"):
        Platform.from_dict(d, "p.json")


def test_the_fit_keeps_factors_in_the_range_the_schema_accepts():
    """The JSON Schema's factor bounds are FACTOR_RANGE, and a fit whose networks run 60x
    faster than the summed per-op predictions (a few-second calibration) is clipped into it,
    saying so in its note, so calibrate never writes a file that its own loader refuses."""
    import json
    from importlib import resources


    from groupconv.platform import fitting
    from groupconv.platform.correction import CORRECTION_GROUPS, FACTOR_RANGE

    schema = json.loads(resources.files("groupconv").joinpath("data/platform.schema.json").read_text())
    assert (schema["$defs"]["factor"]["minimum"], schema["$defs"]["factor"]["maximum"]) == FACTOR_RANGE

    parts = {g: 0.0 for g in CORRECTION_GROUPS}

    def fake_raw(platform, row):
        return {**parts, "conv": 60.0 * float(row["time_s"])}, None

    rows = [{"key": f"n{i}", "time_s": 1e-3 * (i + 1), "batch": 1} for i in range(6)]
    orig = fitting.predict_network_raw
    fitting.predict_network_raw = fake_raw
    try:
        corr = fitting.fit_network_correction(type("P", (), {"has_energy": False})(), rows)
    finally:
        fitting.predict_network_raw = orig
    assert corr.time_factor == FACTOR_RANGE[0]
    assert all(FACTOR_RANGE[0] <= f <= FACTOR_RANGE[1] for f in corr.factors.values())
    assert "clipped" in corr.note and "0.0167" in corr.note  # 1/60, the fitted ratio
