"""Fitting: recovery of known parameters from synthetic data, uncertainties, LOO, output."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest
from scipy.optimize import lsq_linear

from groupconv.errors import GroupConvError
from groupconv.fit import GpuModel, PaperModel, fit_model, get_model, paper_dataset, recovery, simulate

#: Realistic parameters (close to the fits of the paper's MobileNet-V1 / P100 data).
TRUE = {
    "paper": {"scale": 2e-8, "beta": 0.6},
    "macs": {"e_mac_J": 5e-11, "e_frame_J": 0.2, "e_batch_J": 0.1},
    "gpu": {"e_mac_J": 5e-11, "e_weight_J": 2e-9, "e_tile_J": 5e-6, "e_tile_batch_J": 3e-6,
            "e_frame_J": 0.2, "e_batch_J": 0.09, "kappa": 0.75},
}


@lru_cache(maxsize=None)
def template(network: str = "mobilenet_v1"):
    """The paper's 33 workloads (catalogue layer lists x B = 1, 4, 16) as a template."""
    return paper_dataset(network, "P100")


@pytest.mark.parametrize("name", list(TRUE))
def test_noise_free_data_give_back_the_parameters_exactly(name):
    data = simulate(name, TRUE[name], template(), noise=0.0)
    fitted = fit_model(name, data, loo=False)
    for key, true in TRUE[name].items():
        assert fitted.params[key] == pytest.approx(true, rel=1e-6)
    assert fitted.mape < 1e-9


@pytest.mark.parametrize("name", list(TRUE))
@pytest.mark.parametrize("network", ["mobilenet_v1", "resnext50"])
def test_noisy_data_recover_the_parameters_within_their_standard_errors(name, network):
    noise = 0.01
    table, fitted = recovery(name, TRUE[name], template(network), noise=noise, seed=3)
    # every estimate lies within 4 standard errors of the truth
    assert np.all(np.abs(table["z"]) < 4), table
    # residuals are as large as the noise put in: MAPE ~ noise * sqrt(2/pi) (fewer dof: smaller)
    assert 0.4 * noise < fitted.mape < 1.2 * noise


def test_jacobian_standard_errors_match_the_scatter_of_repeated_fits():
    """Monte Carlo: std of estimates over 40 noisy data sets ~ the reported stderr."""
    data = template()
    estimates, stderrs = [], []
    for seed in range(40):
        fitted = fit_model("gpu", simulate("gpu", TRUE["gpu"], data, noise=0.02, seed=seed), loo=False)
        estimates.append(list(fitted.params.values()))
        stderrs.append(list(fitted.stderr.values()))
    ratio = np.std(estimates, axis=0, ddof=1) / np.mean(stderrs, axis=0)
    assert np.all((ratio > 0.6) & (ratio < 1.6)), ratio


def test_bootstrap_intervals_agree_with_jacobian_errors():
    data = simulate("gpu", TRUE["gpu"], template(), noise=0.02, seed=1)
    fitted = fit_model("gpu", data, loo=False, bootstrap=150, seed=0)
    for name, (low, high) in fitted.intervals.items():
        assert low < fitted.params[name] < high
        width = high - low
        assert 0.4 < width / (2 * 1.96 * fitted.stderr[name]) < 2.0
        assert abs(TRUE["gpu"][name] - fitted.params[name]) < width  # truth not far off
    assert fitted.bootstrap_samples.shape == (150, 7)


def test_paper_law_alpha_is_not_identifiable_but_pins_c():
    data = simulate("paper", TRUE["paper"], template(), noise=0.01, seed=2)
    free = fit_model(PaperModel(), data, loo=False)
    pinned = [fit_model(PaperModel(alpha=a), data, loo=False) for a in (0.2, 0.9)]
    for fitted in pinned:  # alpha changes nothing in the fit ...
        assert fitted.params == pytest.approx(free.params)
    # ... it only converts scale into c = scale / alpha**beta
    beta = free.params["beta"]
    assert pinned[0].derived["c"] == pytest.approx(free.params["scale"] / 0.2**beta)
    assert pinned[1].derived["c"] == pytest.approx(free.params["scale"] / 0.9**beta)
    assert free.derived["c"] is None
    assert any("not identifiable" in n for n in free.notes)
    assert 0 < beta < 1 and "beta" not in free.at_bound


def test_leave_one_out_equals_an_independent_bounded_linear_solve():
    data = simulate("gpu", TRUE["gpu"], template(), noise=0.03, seed=5)
    model = GpuModel(kappa=0.75)  # at a fixed exponent the model is linear
    fitted = fit_model(model, data, loo=True)
    keys = data.keys
    for key in dict.fromkeys(keys):
        held = keys == key
        train = data.subset(~held)
        x = model.design(train.layers, train.batch) / train.energy_J[:, None]
        norms = np.linalg.norm(x, axis=0)
        sol = lsq_linear(x / norms, np.ones(len(train)), bounds=(0, np.inf), tol=1e-14).x / norms
        expected = model.design(data.subset(held).layers, data.batch[held]) @ sol
        assert np.allclose(fitted.loo_predicted[held], expected, rtol=1e-5)
    assert fitted.loo_mape == pytest.approx(np.mean(np.abs(fitted.loo_predicted / data.energy_J - 1)))
    assert fitted.loo_mape > fitted.mape


def test_log_loss_also_recovers_parameters():
    data = simulate("paper", TRUE["paper"], template(), noise=0.0)
    fitted = fit_model("paper", data, loss="log", loo=False)
    assert fitted.params["beta"] == pytest.approx(0.6, rel=1e-6)


def test_fit_leaves_the_data_alone_and_reports():
    data = simulate("gpu", TRUE["gpu"], template(), noise=0.02, seed=0)
    before = data.target.copy()
    fitted = fit_model(get_model("gpu"), data)
    assert np.array_equal(data.target, before) and data.energy_J is data.target  # the old name reads the same
    report = fitted.fit_report()
    for text in ("[[Model]] gpu", "e_tile_batch_J", "MAPE (leave-one-out)", "[[Notes]]"):
        assert text in report
    html = fitted._repr_html_()
    assert "<table>" in html and "e_mac_J" in html
    out = fitted.as_dict()
    assert list(out)[:5] == ["model", "params", "stderr", "mape", "loo_mape"]
    assert set(out["params"]) == set(TRUE["gpu"])
    json.dumps(out)
    table = fitted.table()
    assert np.allclose(table["predicted_J"], fitted.predict(data))
    assert np.allclose(table["residual"], fitted.predicted / data.energy_J - 1)


def test_fit_rejects_bad_requests():
    data = template()
    with pytest.raises(GroupConvError, match="loss"):
        fit_model("gpu", data, loss="huber")
    with pytest.raises(GroupConvError, match="only 3 points"):
        fit_model("gpu", data.subset(np.arange(len(data)) < 3))
    with pytest.raises(GroupConvError, match="EnergyData"):
        fit_model("gpu", [1, 2, 3])


def test_a_single_batch_size_is_flagged_as_unidentifiable():
    data = template()
    only_b4 = data.subset(data.batch == 4)
    fitted = fit_model("macs", simulate("macs", TRUE["macs"], only_b4, noise=0.01), loo=False)
    assert any("every point has B = 4" in n for n in fitted.notes)
    # the sum e_frame + e_batch / 4 is still pinned down
    total = fitted.params["e_frame_J"] + fitted.params["e_batch_J"] / 4
    assert total == pytest.approx(TRUE["macs"]["e_frame_J"] + TRUE["macs"]["e_batch_J"] / 4, rel=0.05)


def test_more_parameters_on_bounds_than_points_to_spare_is_flagged():
    # 4 points for the 3-parameter affine model (1 to spare). The energies are e_mac * M minus
    # a constant, so the best non-negative fit puts e_frame and e_batch on their bound 0: two
    # parameters on a bound > 1 point to spare.
    data = template().subset(np.arange(len(template())) < 4)
    macs = np.array([sum(layer.macs for layer in w.layers) for w in data.workloads], dtype=float)
    energy = 5e-11 * macs * (1 - 0.05)
    fitted = fit_model("macs", data.with_energy(energy), loo=False)
    assert set(fitted.at_bound) == {"e_frame_J", "e_batch_J"}
    assert any("2 parameters ended on a bound (e_frame_J, e_batch_J) but the data have only 1 point(s)"
               in n for n in fitted.notes)
    # with many points to spare the same bound-active fit gets no such note
    many = template()
    macs = np.array([sum(layer.macs for layer in w.layers) for w in many.workloads], dtype=float)
    fitted = fit_model("macs", many.with_energy(5e-11 * macs), loo=False)
    assert not any("decide this fit" in n for n in fitted.notes)


def test_covariance_of_a_rank_deficient_jacobian_is_not_made_up():
    from types import SimpleNamespace

    from groupconv.fit.fitting import _covariance

    jac = np.column_stack([np.ones(5), 2 * np.ones(5), np.arange(5.0)])  # columns 0 and 1 collinear
    result = SimpleNamespace(active_mask=np.zeros(3, dtype=int), cost=0.5, jac=jac)
    cov, bound = _covariance(result, np.ones(3), 5)
    assert np.isnan(cov).all() and not bound.any()
    result = SimpleNamespace(active_mask=np.array([0, -1, 0]), cost=0.5, jac=jac)  # one held on a bound
    cov, bound = _covariance(result, np.array([1.0, 1.0, 2.0]), 5)
    free = np.ix_([0, 2], [0, 2])
    expected = np.linalg.inv(jac[:, [0, 2]].T @ jac[:, [0, 2]]) * (2 * 0.5 / 3) * np.outer([1, 2], [1, 2])
    assert np.allclose(cov[free], expected) and np.isnan(cov[1]).all() and bound.tolist() == [False, True, False]
