"""Shared fixtures of the measure tests.

Torch runs on one CPU thread here: CI has 2 shared cores, and two OpenMP threads on an
oversubscribed machine make every small convolution tens of times slower.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def fast_protocol():
    """A protocol that measures quickly (short windows, two trials)."""
    from groupconv.measure import Protocol

    return Protocol(warmup=1, warmup_s=0, trials=2, min_window_s=0.005)
