"""The real-data network of the design benchmark: the digits study's CNN, made wider.

The approximability study's network (:func:`groupconv.approx.study.digits_cnn`: four
3x3 conv-BN-ReLU blocks on scikit-learn's 8x8 digits) with widths 64-128-256-256, so
that its convs (19 M MACs per frame) dominate its measured time on a CPU. ``build()`` is
an untrained instance; ``trained()`` loads the weights that ``run.py`` trained and cached
(``cache/model_seed0.pt``), so the CLI can be pointed at it::

    groupconv design benchmarks/design/model.py:trained --platform data/platforms/cpu-epyc-1t.json \\
        --data benchmarks/design/cache/design_data_seed0.pt --max-time-s 6e-4
"""

from __future__ import annotations

from pathlib import Path

import torch

from groupconv.approx.study import digits_cnn, load_digits

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
WIDTHS = (64, 128, 256, 256)
SEED = 0


def build(seed: int = SEED):
    torch.manual_seed(seed)
    return digits_cnn(WIDTHS)


def weights_path(seed: int = SEED) -> Path:
    return CACHE / f"model_seed{seed}.pt"


def trained(seed: int = SEED):
    model = build(seed)
    model.load_state_dict(torch.load(weights_path(seed), map_location="cpu", weights_only=True))
    return model.eval()


def digits(seed: int = SEED):
    """(x_train, y_train, x_test, y_test): the study's split for ``seed`` (1204 / 593 digits)."""
    return load_digits(seed)
