"""Streaming statistics: any split into batches, any data source, equals the in-memory path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from groupconv.approx.network import approximability_of_model, capture_inputs, convert_model
from groupconv.approx.sources import ShardDirectory, iter_batches, resolve_data
from groupconv.approx.stats import PatchStats, collect_stats
from groupconv.approx.torch_layers import approximability_of_conv, layer_gram
from groupconv.errors import GroupConvError

GROUPS = (2, 4)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 1, stride=2), nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2, padding=1, padding_mode="circular"),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3),
    ).double()


@pytest.fixture(scope="module")
def setup():
    model = _model()
    x = torch.randn(40, 4, 8, 8, dtype=torch.float64)
    # today's in-memory path: every activation captured whole, one Gram per layer
    acts = capture_inputs(model, x)
    reference = {}
    for name, act in acts.items():
        conv = model.get_submodule(name)
        result = approximability_of_conv(conv, GROUPS, ("gc", "bgc"), data=act)
        reference[name] = [(r.method, r.groups, r.E, r.rel_E, r.rel_output_E) for r in result.results]
    return model, x, acts, reference


def _assert_rows_equal(result, reference):
    """Equal to 1e-10 relative; an exact fit (BGC N=2 spans every channel: E is roundoff,
    ~1e-31) to 1e-13 of the output energy, the solver's stated accuracy there."""
    for name, ref in reference.items():
        rows = [r for r in result.rows if r["layer"] == name]
        assert [(r["method"], r["groups"]) for r in rows] == [(m, g) for m, g, *_ in ref]
        for row, (_, _, E, rel_E, rel_out) in zip(rows, ref):
            energy = E / rel_out if rel_out > 0 else 0.0
            assert row["E"] == pytest.approx(E, rel=1e-10, abs=1e-13 * energy)
            assert row["rel_output_E"] == pytest.approx(rel_out, rel=1e-10, abs=1e-13)
            assert row["rel_E"] == pytest.approx(rel_E, rel=1e-10, abs=1e-13 * (rel_E / rel_out if rel_out else 0))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12))
def test_any_split_into_batches_equals_the_in_memory_path(setup, cuts):
    model, x, _, reference = setup
    bounds = sorted({0, 40, *(c for c in cuts if c < 40)})
    batches = [x[a:b] for a, b in zip(bounds, bounds[1:])]
    result = approximability_of_model(model, batches, methods=("gc", "bgc"), groups=GROUPS)
    assert result.samples == 40
    _assert_rows_equal(result, reference)


def test_patch_grams_equal_layer_gram_on_the_whole_activations(setup):
    model, x, acts, _ = setup
    convs = {n: model.get_submodule(n) for n in acts}
    stats = collect_stats(model, [x[:7], x[7:30], x[30:]], convs, progress=False)
    for name, act in acts.items():
        whole = layer_gram(model.get_submodule(name), act)
        got = stats[name]
        assert (got.samples, got.positions) == (whole.samples, whole.positions)
        np.testing.assert_allclose(got.gram, whole.gram, rtol=1e-12, atol=1e-12 * np.abs(whole.gram).max())
        assert got.mean_sq_norm == pytest.approx(whole.mean_sq_norm, rel=1e-12)


def test_a_dataloader_of_labelled_batches_with_input_index(setup):
    model, x, _, reference = setup
    labels = torch.arange(40) % 3
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, labels), batch_size=9)
    _assert_rows_equal(approximability_of_model(model, loader, groups=GROUPS, input_index=0), reference)
    _assert_rows_equal(approximability_of_model(model, loader, groups=GROUPS, input_index=lambda b: b[0]),
                       reference)
    with pytest.raises(GroupConvError, match=r"input_index=0"):  # the hint for labelled batches
        approximability_of_model(model, loader, groups=GROUPS)


def test_shard_directory_and_factory(setup, tmp_path):
    model, x, _, reference = setup
    shards = tmp_path / "shards"
    shards.mkdir()
    torch.save(x[:15].clone(), shards / "a.pt")
    np.save(shards / "b.npy", x[15:].numpy())
    data = resolve_data(str(shards))
    assert isinstance(data, ShardDirectory) and data.names == ["a.pt", "b.npy"]
    _assert_rows_equal(approximability_of_model(model, data, groups=GROUPS), reference)
    torch.save(x, tmp_path / "x.pt")
    (tmp_path / "loader.py").write_text(
        "import torch\n"
        f"def make():\n    x = torch.load({str(tmp_path / 'x.pt')!r})\n"
        "    ds = torch.utils.data.TensorDataset(x, torch.zeros(len(x)))\n"
        "    return torch.utils.data.DataLoader(ds, batch_size=16)\n"
    )
    loader = resolve_data(f"{tmp_path / 'loader.py'}:make")
    _assert_rows_equal(approximability_of_model(model, loader, groups=GROUPS, input_index=0), reference)


def test_memory_of_the_statistics_does_not_grow_with_the_samples():
    conv = nn.Conv2d(8, 8, 3, padding=1).double()
    stats = PatchStats(conv, "c")
    before = stats.gram.data_ptr(), stats.gram.numel()
    for _ in range(5):
        stats.add(torch.randn(16, 8, 6, 6, dtype=torch.float64))
    assert (stats.gram.data_ptr(), stats.gram.numel()) == before  # one (nK)^2 accumulator, updated in place
    assert stats.samples == 80


@pytest.mark.parametrize("scale", [2.0**-300, 2.0**300])
def test_data_far_from_unit_scale_streams_exactly(scale):
    conv = nn.Conv2d(4, 4, 3, padding=1).double()
    x = torch.randn(12, 4, 5, 5, dtype=torch.float64)
    x[6:] *= 1e3  # a louder second batch forces a rescale of what was accumulated
    stats = PatchStats(conv, "c")
    stats.add(x[:6] * scale)
    stats.add(x[6:] * scale)
    whole = layer_gram(conv, x * scale)
    got = stats.data_gram()
    np.testing.assert_allclose(got.gram * got.scale / whole.scale, whole.gram, rtol=1e-12,
                               atol=1e-12 * np.abs(whole.gram).max())


def _bad(model, data, **kw):
    with pytest.raises(GroupConvError) as info:
        approximability_of_model(model, data, groups=GROUPS, **kw)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_bad_data_are_one_line_errors(setup, tmp_path):
    model, x, _, _ = setup
    assert "do not fit the model" in _bad(model, torch.randn(4, 3, 8, 8, dtype=torch.float64))
    assert "no samples" in _bad(model, [])
    empty = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:0]), batch_size=4)
    assert "no samples" in _bad(model, empty, input_index=0)
    msg = _bad(model, [x[:4], x[4:8].float()])
    assert "batch 1 has dtype float32" in msg
    msg = _bad(model, [x[:4], torch.randn(4, 4, 6, 6, dtype=torch.float64)])
    assert "batch 1 has shape" in msg
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    torch.save(x[:4].clone(), mixed / "0.pt")
    torch.save(torch.randn(4, 4, 9, 9, dtype=torch.float64), mixed / "1.pt")
    assert "shard 1.pt has shape" in _bad(model, resolve_data(str(mixed)))
    # too few samples: one 8 x 8 image gives 64 rows per output channel; BGC with N = 2 on
    # layer "2" (8 channels, 3 x 3) has 8 x 9 = 72 unknowns: at least 2 samples are needed
    msg = _bad(model, x[:1])
    assert msg.startswith("layer '2': under-determined") and "at least 2 samples" in msg
    assert "must be a .pt tensor" in _bad(model, "inputs.txt")


def test_iter_batches_chunks_a_tensor():
    x = torch.randn(10, 3)
    sizes = [b[0].shape[0] for b in iter_batches(x, batch_size=4)]
    assert sizes == [4, 4, 2]


def test_sequential_conversion_reports_the_error_it_leaves():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 16, 3, padding=1)).double()
    x = torch.randn(48, 4, 8, 8, dtype=torch.float64)
    independent, rep_i = convert_model(model, x, "gc", 2)
    new, rep = convert_model(model, [x[:20], x[20:]], "gc", 2, sequential=True)
    model.eval()
    with torch.no_grad():
        for k, i in enumerate((0, 2, 4)):
            # the converted layer on the converted network's input vs the original layer on the original's
            direct = float(((new[i](new[:i](x)) - model[i](model[:i](x))) ** 2).sum()) / len(x)
            assert rep.E[k] == pytest.approx(direct, rel=1e-9)
        # the first layer sees the same inputs either way
        assert rep.E[0] == pytest.approx(rep_i.E[0], rel=1e-10)
        ref = model(x)
        err_seq = float(((new(x) - ref) ** 2).sum() / (ref**2).sum())
        err_ind = float(((independent(x) - ref) ** 2).sum() / (ref**2).sum())
    assert err_seq < err_ind  # fitting to what the converted network feeds reduces the compounding


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=3, padding=1, stride=2),
    dict(kernel_size=(3, 2), padding="same", dilation=2),
    dict(kernel_size=3, padding=1, padding_mode="circular"),
    dict(kernel_size=3, padding=0, stride=(2, 1)),
    dict(kernel_size=1, stride=2),
])
@pytest.mark.parametrize("tap_blocks", [True, False])
def test_every_patch_route_equals_layer_gram(monkeypatch, kw, tap_blocks):
    import groupconv.approx.stats as stats_module

    monkeypatch.setattr(stats_module, "TAP_BLOCK_MIN_CHANNELS", 1 if tap_blocks else 10**9)
    torch.manual_seed(3)
    conv = nn.Conv2d(5, 6, **kw).double()
    x = torch.randn(9, 5, 9, 8, dtype=torch.float64)
    stats = PatchStats(conv, "c", chunk_elements=700)  # several chunks per batch
    assert stats._tap_major == (tap_blocks and math.prod(conv.kernel_size) > 1)
    stats.add(x[:4])
    stats.add(x[4:])
    got, whole = stats.data_gram(), layer_gram(conv, x)
    assert (got.samples, got.positions) == (whole.samples, whole.positions)
    np.testing.assert_allclose(got.gram, whole.gram, rtol=1e-12, atol=1e-12 * np.abs(whole.gram).max())
