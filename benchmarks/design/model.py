"""The real-data network of the design benchmark: the digits study's CNN, made wider.

The approximability study's network (:func:`groupconv.approx.study.digits_cnn`: four
3x3 conv-BN-ReLU blocks on scikit-learn's 8x8 digits) with widths 64-128-256-256, so
that its convs (19 M MACs per frame) dominate its measured time on a CPU. ``build()`` is
an untrained instance; ``trained()`` loads the weights that ``run.py`` trained and cached
(``cache/model.pt``), so the CLI can be pointed at it::

    groupconv design benchmarks/design/model.py:trained --platform data/platforms/cpu-epyc-1t.json \\
        --data benchmarks/design/cache/design_data.pt --max-time-s 6e-4
"""

from __future__ import annotations

from pathlib import Path

import torch

from groupconv.approx.study import digits_cnn, load_digits

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
WIDTHS = (64, 128, 256, 256)
SEED = 0


def build():
    torch.manual_seed(SEED)
    return digits_cnn(WIDTHS)


def trained():
    model = build()
    model.load_state_dict(torch.load(CACHE / "model.pt", map_location="cpu", weights_only=True))
    return model.eval()


def digits():
    """(x_train, y_train, x_test, y_test): the study's split for seed 0 (1204 / 593 digits)."""
    return load_digits(SEED)
