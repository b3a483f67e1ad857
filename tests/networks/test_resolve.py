"""resolve_model: FILE.py:FACTORY, package.module:factory, catalogue names; one-line errors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from groupconv.errors import GroupConvError  # noqa: E402
from groupconv.networks import build_network, count_module, input_shape, resolve_model  # noqa: E402

SOURCE = '''
from torch import nn

INSTANCE = nn.Linear(3, 2)
NOT_A_MODEL = 42


def build(width=4):
    return nn.Linear(3, width)


def wrong():
    return "a string"


def broken():
    raise ValueError("no weights here\\nsecond line")
'''


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "models.py"
    path.write_text(SOURCE)
    return path


def test_file_factory_instance_and_kwargs(spec_file):
    assert resolve_model(f"{spec_file}:build").out_features == 4
    assert resolve_model(f"{spec_file}:build", width=7).out_features == 7
    assert resolve_model(f"{spec_file}:INSTANCE").out_features == 2


def test_importable_factory_and_catalogue():
    assert isinstance(resolve_model("torch.nn:Identity"), torch.nn.Identity)
    module = resolve_model("resnext50", variant="fggc", group=32, device="meta")
    assert count_module(module, input_shape(1)).macs == build_network("resnext50", "fggc", 32).macs


@pytest.mark.parametrize(
    "spec,fragment",
    [
        ("{f}:missing", "'missing'"),
        ("{f}:NOT_A_MODEL", "'NOT_A_MODEL'"),
        ("{f}:wrong", "str"),
        ("{f}:broken", "ValueError: no weights here"),
        ("nowhere/models.py:build", "nowhere/models.py"),
        ("no_such_pkg.models:build", "no_such_pkg.models"),
        ("resnet9000", "'resnet9000'"),
        (":build", "':build'"),
        ("", "''"),
        ("mobilenet_v1", "variant and group"),
    ],
)
def test_bad_specs_are_one_line(spec, fragment, spec_file):
    with pytest.raises(GroupConvError) as info:
        resolve_model(spec.replace("{f}", str(spec_file)))
    assert fragment in str(info.value) and "\n" not in str(info.value)
