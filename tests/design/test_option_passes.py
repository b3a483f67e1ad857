"""design's network errors of every option of a layer in one pass (issue 19 item 3): the
same numbers as one pass of the network per option, and a model that mixes the samples of
a batch falls back to one pass per option."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from groupconv.approx.network import eligible_convs, replacement  # noqa: E402
from groupconv.design.options import _network_error, _network_errors, _outputs  # noqa: E402


class BatchMixer(nn.Module):
    """Subtracts the batch mean: its output for one sample depends on the others."""

    def forward(self, x):
        return x - x.mean(0, keepdim=True)


def _net(mix: bool):
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()]
    if mix:
        layers.append(BatchMixer())
    layers += [nn.Conv2d(8, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)]
    return nn.Sequential(*layers).eval()


@pytest.mark.parametrize("mix", [False, True])
def test_one_pass_equals_one_pass_per_option(mix):
    model = _net(mix)
    x = torch.randn(20, 3, 8, 8)
    reference = _outputs(model, x)
    name, conv = list(eligible_convs(model).items())[1]  # 8 -> 8
    rng = np.random.default_rng(1)
    swaps = [replacement(conv, m, g, weights=rng.normal(size=tuple(conv.weight.shape)) * 0.1, name=name)
             for m, g in (("gc", 2), ("gc", 4), ("bgc", 2))]
    state = [None]
    together = _network_errors(model, conv, swaps, x, reference, state, chunk=12)
    alone = [_network_error(model, conv, s, x, reference) for s in swaps]
    assert together == pytest.approx(alone, rel=1e-9)
    assert len(set(alone)) == 3 and min(alone) > 0
    assert state == [not mix]  # the mixing model was caught and measured one option at a time
