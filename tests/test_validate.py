import pytest

from groupconv import _validate as v
from groupconv.errors import GroupConvError


@pytest.mark.parametrize("bad", [0, -3, 2.5, "4", True, None])
def test_positive_int_rejects_and_names_value(bad):
    with pytest.raises(GroupConvError) as info:
        v.positive_int("groups", bad)
    message = str(info.value)
    assert "groups" in message and repr(bad) in message and "\n" not in message


def test_divides_names_both_values():
    v.divides("groups", 4, "in_channels", 64)
    with pytest.raises(GroupConvError, match=r"in_channels=64 is not divisible by groups=3"):
        v.divides("groups", 3, "in_channels", 64)


@pytest.mark.parametrize(
    "value, ok", [(0.0, False), (1e-9, True), (1.0, True), (1.5, False), (float("nan"), False)]
)
def test_alpha_interval_half_open(value, ok):
    if ok:
        assert v.in_interval("alpha", value, 0, 1, high_open=False) == value
    else:
        with pytest.raises(GroupConvError, match="alpha"):
            v.in_interval("alpha", value, 0, 1, high_open=False)


@pytest.mark.parametrize("value", [0.0, 1.0, -0.2])
def test_beta_open_interval(value):
    with pytest.raises(GroupConvError, match=r"beta must lie in \(0, 1\)"):
        v.in_interval("beta", value, 0, 1)


def test_one_of_lists_choices():
    with pytest.raises(GroupConvError, match="unknown architecture 'vgg'; choose one of a, b"):
        v.one_of("architecture", "vgg", ["a", "b"])
