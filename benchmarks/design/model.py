"""The real-data network of the design benchmark: a CNN trained on scikit-learn's digits.

The 8x8 digits are upsampled to 16x16 and the network is wide enough (32-64-128-128-256
channels, 52 M MACs per frame) that its convs dominate its measured time on a CPU.
``build()`` is an untrained instance; ``trained()`` loads the weights that ``run.py``
trained and cached (``cache/model.pt``), so the CLI can be pointed at it::

    groupconv design benchmarks/design/model.py:trained --platform benchmarks/design/platform_cpu.json \\
        --data benchmarks/design/cache/design_data.pt --max-error 0.3
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
SIZE = 16


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv4 = nn.Conv2d(128, 128, 3, padding=1)
        self.conv5 = nn.Conv2d(128, 256, 3, padding=1)
        self.head = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = self.pool(torch.relu(self.conv3(x)))
        x = torch.relu(self.conv4(x))
        x = torch.relu(self.conv5(x))
        return self.head(x.mean(dim=(2, 3)))


def build() -> DigitsCNN:
    return DigitsCNN()


def trained() -> DigitsCNN:
    model = DigitsCNN()
    model.load_state_dict(torch.load(CACHE / "model.pt", map_location="cpu", weights_only=True))
    return model.eval()


def digits(seed: int = 0):
    """(x_train, y_train, x_test, y_test): 1200 / 597 digits, 1 x 16 x 16 in [0, 1]."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
    x = nn.functional.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    y = torch.tensor(d.target, dtype=torch.long)
    order = torch.as_tensor(np.random.default_rng(seed).permutation(len(y)))
    x, y = x[order], y[order]
    return x[:1200], y[:1200], x[1200:], y[1200:]
