"""The digits study at a tiny size: its bookkeeping, equal-cost pairs and round trip."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("sklearn")

from groupconv.approx.study import (  # noqa: E402
    StudyConfig,
    StudyResult,
    digits_cnn,
    error_rate,
    load_digits,
    run_study,
    study_figure,
)

TINY = StudyConfig(widths=(8, 16, 16, 16), groups=(2, 4), seeds=(0,), epochs=2, finetune_epochs=1)


def test_digits_split_is_seeded_and_disjoint():
    x_tr, y_tr, x_te, y_te = load_digits(0)
    assert x_tr.shape[1:] == (1, 8, 8) and len(x_tr) + len(x_te) == 1797
    assert 0.0 <= float(x_tr.min()) and float(x_tr.max()) <= 1.0
    again = load_digits(0)
    assert torch.equal(again[0], x_tr) and torch.equal(again[3], y_te)
    assert not torch.equal(load_digits(1)[0][:50], x_tr[:50])


def test_tiny_study_rows_costs_and_round_trip():
    result = run_study(TINY)
    models = result.models_frame()
    assert list(zip(models.method, models.groups)) == [("dense", 1), ("gc", 2), ("gc", 4), ("bgc", 4)]
    dense = digits_cnn(TINY.widths)
    convs = [m for m in dense.modules() if isinstance(m, torch.nn.Conv2d)][1:]  # the converted three
    assert models.params[0] == sum(c.weight.numel() for c in convs)  # counted by torch
    # BGC at N has GC at N/2's cost: 2 K m n / N
    gc2, bgc4 = models.iloc[1], models.iloc[3]
    assert gc2.params == bgc4.params == models.params[0] // 2
    assert all(0.0 <= e <= 1.0 for e in models.test_error)
    layers = result.layers_frame()
    assert set(layers.layer) == {"3", "7", "10"}
    assert (layers[layers.method == "bgc"].white_rel_output_E == 0.5).all()  # 1 - 2/4
    comparison = result.comparison()
    assert comparison.gc_half_N_params[0] == comparison.bgc_params[0]
    back = StudyResult.from_dict(json.loads(json.dumps(result.as_dict())))
    assert back.models == result.models and back.config == result.config
    assert len(study_figure(result).get_axes()) == 2


def test_error_rate_counts_wrong_answers():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.arange(10.0))  # always predicts class 9
    x = torch.zeros(4, 1, 8, 8)
    assert error_rate(model, x, torch.tensor([9, 9, 1, 2])) == 0.5
