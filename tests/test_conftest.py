"""The suite-wide hypothesis profile is the derandomised one (tests/conftest.py)."""

import os

import pytest
from hypothesis import given, settings, strategies as st


@pytest.mark.skipif(os.environ.get("HYPOTHESIS_PROFILE", "derandomized") != "derandomized",
                    reason="another hypothesis profile was chosen")
def test_profile_is_derandomized():
    assert settings.default.derandomize is True
    assert settings.default.database is None


_seen: list[list[int]] = []


@given(st.lists(st.integers(), min_size=1, max_size=5))
@settings(max_examples=20)
def _draw(xs):
    _seen[-1].append(tuple(xs))


def test_two_runs_draw_the_same_examples():
    if not settings.default.derandomize:
        pytest.skip("random profile")
    _seen.append([])
    _draw()
    _seen.append([])
    _draw()
    assert _seen[0] == _seen[1] and len(_seen[0]) > 1
