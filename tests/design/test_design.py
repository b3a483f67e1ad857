"""design: the option table, the plans and the converted models, cross-checked.

The platform here has no fitted kernel models, so every operator is priced by the
roofline alone: ``fixed + max(macs / peak, bytes / bandwidth)``, which the tests
recompute by hand.
"""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("groupconv.platform")

from torch import nn  # noqa: E402

from groupconv.design import (  # noqa: E402
    constant_plans,
    convert_plan,
    design,
    eligible_convs,
    export_plan,
    option_table,
    plan_from_table,
)
from groupconv.approx.network import capture_inputs  # noqa: E402
from groupconv.optimize import brute_force_front  # noqa: E402
from groupconv.errors import GroupConvError  # noqa: E402
from groupconv.platform import Platform, predict  # noqa: E402
from groupconv.platform.models import Roofline  # noqa: E402

PEAK, BW, FIXED = 2e9, 4e9, 1e-6


def small_cnn(bias: bool = False) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=bias), nn.ReLU(),  # not eligible: gcd(3, 8) = 1
        nn.Conv2d(8, 16, 3, padding=1, bias=bias), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, stride=2, bias=bias), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5),
    ).eval()


@pytest.fixture(scope="module")
def platform():
    return Platform(device="cpu", metadata={"threads": 1}, roofline=Roofline(PEAK, BW, FIXED), time_models={})


@pytest.fixture(scope="module")
def data():
    torch.manual_seed(1)
    return torch.randn(48, 3, 8, 8)


@pytest.fixture(scope="module")
def model():
    return small_cnn()


@pytest.fixture(scope="module")
def table(model, platform, data):
    return option_table(model, platform, data, groups=(2, 4, 8))


def _roofline(macs, bytes_):
    return FIXED + max(macs / PEAK, bytes_ / BW)


def test_eligible_convs_skip_the_stem(model):
    assert [n for n, _ in eligible_convs(model)] == ["2", "4"]


def test_options_priced_by_hand(table):
    """Layer "2": 8 -> 16 channels, 3x3, 8x8 map, batch 1, float32, no bias."""
    row = {(o.method, o.groups): o for o in table.options[0]}
    assert set(row) == {("dense", 1)} | {(m, n) for m in ("gc", "bgc") for n in (2, 4, 8)}
    hw = 8 * 8
    for n in (1, 2, 4, 8):
        o = row[("dense", 1)] if n == 1 else row[("gc", n)]
        weights = 16 * (8 // n) * 9
        macs = weights * hw
        bytes_ = 4 * (8 * hw + weights) + 4 * 16 * hw  # input + weight read, output written
        assert o.params == weights and o.macs == macs
        assert o.time_s == pytest.approx(_roofline(macs, bytes_), rel=1e-12)
    # BGC (Eq. 3.1): grouped conv + the n/N -> m conv of the group mean: 2 K m n / N weights
    b = row[("bgc", 4)]
    assert b.params == 2 * 9 * 16 * 8 // 4
    assert b.time_s > row[("gc", 4)].time_s  # its grouped conv alone is the GC option


def test_layer_error_is_what_the_converted_layer_loses(model, table, data):
    """rel_output_E of an option = ||y' - y||^2 / ||y||^2 of the converted layer on its input."""
    acts = capture_inputs(model, data, ["4"])["4"].float()
    for o in table.options[1][1:]:
        plan = plan_from_table(table, [0, table.options[1].index(o)], aggregate="rel_output_E")
        new, report = convert_plan(model, plan, data)
        with torch.no_grad():
            y = model[4](acts)
            y2 = new[4](acts)
        measured = float(((y2 - y) ** 2).sum() / (y**2).sum())
        assert measured == pytest.approx(o.rel_output_E, rel=1e-3, abs=1e-6), (o.method, o.groups)
        assert report[0]["rel_output_E"] == pytest.approx(o.rel_output_E, rel=1e-9)
    # more groups lose more (GC: each output sees fewer channels, nested partitions)
    gc = [o.rel_output_E for o in table.options[1] if o.method == "gc"]
    assert gc == sorted(gc) and gc[0] > 0


def test_network_error_is_the_converted_networks_output_error(model, table, data):
    with torch.no_grad():
        ref = model(data)
    for l in range(2):
        o = table.options[l][2]
        choice = [0, 0]
        choice[l] = 2
        new, _ = convert_plan(model, plan_from_table(table, choice), data)
        with torch.no_grad():
            out = new(data)
        measured = float(((out - ref) ** 2).sum() / (ref**2).sum())
        assert measured == pytest.approx(o.network_E, rel=1e-3, abs=1e-7)


@pytest.mark.filterwarnings("ignore::groupconv.platform.UnmeasuredKernelWarning")
def test_plan_totals_are_the_converted_models_prediction(model, table, data, platform):
    """base + sum(option - dense) == the platform's prediction of the converted model."""
    choice = [3, 6]  # layer 2 gc 8 / bgc N, layer 4 whatever sits there
    plan = plan_from_table(table, choice)
    new, _ = convert_plan(model, plan, data)
    pred = predict(platform, new, (1, 3, 8, 8))
    assert plan.time_s == pytest.approx(pred.time_s, rel=1e-9)
    assert plan.params == sum(p.numel() for p in new.parameters())
    convs = [m for n, m in new.named_modules() if isinstance(m, nn.Conv2d) and n.split(".")[0] in ("2", "4")]
    assert plan.macs == sum(c.weight.numel() * (8 * 8 if c.stride == (1, 1) else 4 * 4) for c in convs)


def test_front_is_exact_and_budgets_choose_from_it(model, platform, data, table):
    d = design(model, platform, data, table=table)
    cost = table.column("time_s")
    error = table.column("network_E")
    reference = brute_force_front(cost, error, table.column("params"))
    dense_sum = sum(r[0].time_s for r in table.options)
    assert len(d.front) == len(reference)
    assert [p.time_s - table.base_time_s + dense_sum for p in d.front] == pytest.approx([q.cost for q in reference])
    assert [p.error for p in d.front] == pytest.approx([q.error for q in reference])
    # a time budget: the least error of every plan within it (enumerated)
    t = d.front[len(d.front) // 2].time_s
    chosen = design(model, platform, data, table=table, max_time_s=t, rescore=False).chosen
    all_plans = [plan_from_table(table, c) for c in _every_choice(table)]
    within = [p for p in all_plans if p.time_s <= t]
    assert chosen.time_s <= t
    assert chosen.error == pytest.approx(min(p.error for p in within))
    # an error budget: the fastest plan within it
    x = d.front[len(d.front) // 2].error
    chosen = design(model, platform, data, table=table, max_error=x, rescore=False).chosen
    assert chosen.error <= x
    assert chosen.time_s == pytest.approx(min(p.time_s for p in all_plans if p.error <= x))
    # a params budget: the least error within it
    pb = sorted(p.params for p in all_plans)[len(all_plans) // 3]
    chosen = design(model, platform, data, table=table, max_params=pb, rescore=False).chosen
    assert chosen.params <= pb
    assert chosen.error == pytest.approx(min(p.error for p in all_plans if p.params <= pb))


def test_rescored_choice_is_the_least_measured_error_within_the_budget(model, platform, data, table):
    """With rescoring, the chosen plan is, among the front's and the constant plans within
    the budget, the one whose converted network loses the least output on the data
    (recomputed here by converting each candidate with a fresh least-squares fit)."""
    free = design(model, platform, data, table=table)
    t = free.front[len(free.front) // 3].time_s
    chosen = design(model, platform, data, table=table, max_time_s=t).chosen
    with torch.no_grad():
        ref = model(data)

    def measured(plan):
        new, _ = convert_plan(model, plan, data)  # no table: refitted
        with torch.no_grad():
            return float(((new(data) - ref) ** 2).sum() / (ref**2).sum())

    pool = {p.key(): p for p in (*free.front, *free.constant) if p.time_s <= t}
    scores = {k: measured(p) for k, p in pool.items()}
    assert chosen.time_s <= t
    assert chosen.measured_error == pytest.approx(scores[chosen.key()], rel=1e-3, abs=1e-9)
    assert chosen.measured_error == pytest.approx(min(scores.values()), rel=1e-3, abs=1e-9)
    # an error budget on the measured error: the cheapest candidate that meets it
    ordered = sorted(set(scores.values()))
    x = 0.5 * (ordered[len(ordered) // 2] + ordered[len(ordered) // 2 + 1])  # off any boundary
    cheapest = design(model, platform, data, table=table, max_error=x).chosen
    assert cheapest.measured_error <= x * (1 + 1e-9)
    # every candidate within t that meets x is a candidate of this search too
    assert cheapest.time_s <= min(p.time_s for k, p in pool.items() if scores[k] <= x) * (1 + 1e-12)


def _every_choice(table):
    import itertools

    return itertools.product(*(range(len(r)) for r in table.options))


def test_constant_plans(table):
    plans = {p.label: p for p in constant_plans(table)}
    assert {"gc N=2", "gc N=8", "bgc N=4"} <= set(plans)
    assert [l["groups"] for l in plans["gc N=4"].layers] == [4, 4]
    # E2GC: constant group size G = channels per group; both layers have 8 and 16 inputs
    assert [(l["method"], l["groups"]) for l in plans["e2gc G=2"].layers] == [("gc", 4), ("gc", 8)]
    assert [(l["method"], l["groups"]) for l in plans["e2gc G=4"].layers] == [("gc", 2), ("gc", 4)]
    assert [(l["method"], l["groups"]) for l in plans["e2gc G=8"].layers] == [("dense", 1), ("gc", 2)]


def test_unmeetable_time_budget_names_the_nearest_plan(model, platform, data, table):
    fastest = min(plan_from_table(table, c).time_s for c in _every_choice(table))
    with pytest.raises(GroupConvError, match=r"max_time_s .* the nearest is .* s, error") as info:
        design(model, platform, data, table=table, max_time_s=fastest * 0.5)
    assert "\n" not in str(info.value)
    with pytest.raises(GroupConvError, match="max_params 10 .* the nearest has"):
        design(model, platform, data, table=table, max_params=10)


def test_data_that_does_not_fit_is_named(model, platform):
    with pytest.raises(GroupConvError, match=r"data of shape \(4, 5, 8, 8\) do not fit the model"):
        design(model, platform, torch.randn(4, 5, 8, 8))


def test_export_writes_a_loadable_model(model, platform, data, table, tmp_path):
    d = design(model, platform, data, table=table, max_error=0.05)
    paths = export_plan(model, d.chosen, data, tmp_path / "out")
    plan = json.loads(paths["plan"].read_text())
    assert [l["method"] for l in plan["layers"]] == [l["method"] for l in d.chosen.layers]
    loaded = torch.load(paths["model"], weights_only=False)
    new, _ = convert_plan(model, d.chosen, data)
    with torch.no_grad():
        assert torch.allclose(loaded(data), new(data))
    assert math.isclose(plan["error"], d.chosen.error)


@pytest.mark.filterwarnings("ignore::groupconv.platform.UnmeasuredKernelWarning")
def test_energy_objective_on_a_platform_with_a_meter(model, data):
    """Energy of every call = 1 uJ + 1 nJ per MAC: the front is of energy, and a plan's
    energy is the converted model's predicted energy (hand: the sum over its calls)."""
    from groupconv.platform.models import KERNELS, KernelModel

    energy = {k: KernelModel(kernel=k, features=("macs",), c0=1e-6, theta=(1e-9,), c0_stderr=0.0,
                             theta_stderr=(0.0,), n=10, fit_mape=0.0, cv_mape=None, quantity="energy_J",
                             form="linear") for k in KERNELS}
    metered = Platform(device="cpu", metadata={"threads": 1}, roofline=Roofline(PEAK, BW, FIXED), time_models={},
                       energy_models=energy)
    d = design(model, metered, data, groups=(2, 4))
    assert d.objective == "energy_J"
    energies = [p.energy_J for p in d.front]
    assert energies == sorted(energies) and all(e is not None for e in energies)
    plan = d.front[0]
    new, _ = convert_plan(model, plan, data, d.table)
    pred = predict(metered, new, (1, 3, 8, 8))
    assert plan.energy_J == pytest.approx(pred.energy_J, rel=1e-9)
    assert pred.energy_J == pytest.approx(sum(1e-6 + 1e-9 * o.macs for o in pred.ops), rel=1e-9)
    with pytest.raises(GroupConvError, match="max_time_s is a time budget"):
        design(model, metered, data, table=d.table, objective="energy_J", max_time_s=1.0)
