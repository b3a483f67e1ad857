"""resolve_model: FILE.py:FACTORY, package.module:factory, catalogue names; one-line errors."""

from __future__ import annotations

import sys

import pytest

torch = pytest.importorskip("torch")

from groupconv.approx.sources import resolve_data  # noqa: E402
from groupconv.errors import GroupConvError, UserModelError  # noqa: E402
from groupconv.networks import (  # noqa: E402
    build_network,
    count_module,
    input_shape,
    load_user_module,
    resolve_model,
)

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


BAD_FILES = {  # file text -> (error class, the line load_user_module gives, {f} the file)
    "exits.py": ("import sys\nsys.exit(3)\n", UserModelError, "importing {f} called sys.exit(3)"),
    "exits_text.py": ("raise SystemExit('bye')\n", UserModelError, "importing {f} called sys.exit('bye')"),
    "raises.py": ("raise KeyError('w')\n", UserModelError, "importing {f} raised KeyError: 'w'"),
    "multiline.py": ("raise ValueError('first\\nsecond')\n", UserModelError, "importing {f} raised ValueError: first"),
    "syntax.py": ("def f(:\n", UserModelError, "importing {f} raised SyntaxError: "),
    "missing_dep.py": ("import no_such_package_here\n", UserModelError,
                       "importing {f} raised ModuleNotFoundError: No module named 'no_such_package_here'"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_load_user_module_turns_a_failing_import_into_one_line(tmp_path, name):
    text, kind, expected = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(text)
    before = set(sys.modules)
    with pytest.raises(kind) as info:
        load_user_module(str(path))
    message = str(info.value)
    assert message.startswith(expected.format(f=path)) and "\n" not in message, message
    assert set(sys.modules) - before == set()  # the half-run module is not left behind


def test_load_user_module_missing_unloadable_and_unimportable(tmp_path):
    for where, expected in [
        (str(tmp_path / "nowhere.py"), f"no such file {tmp_path / 'nowhere.py'}"),
        (str(tmp_path), f"no such file {tmp_path}"),  # a directory is not a file
        ("no_such_pkg_xyz.models", "cannot import no_such_pkg_xyz.models (No module named 'no_such_pkg_xyz')"),
    ]:
        with pytest.raises(GroupConvError) as info:
            load_user_module(where)
        assert str(info.value) == expected and not isinstance(info.value, UserModelError)
    (tmp_path / "notes.txt").write_text("x = 1\n")
    with pytest.raises(GroupConvError, match=r"cannot load .*notes.txt as Python"):
        load_user_module(str(tmp_path / "notes.txt"))


def test_load_user_module_runs_a_file_and_imports_a_module(tmp_path, monkeypatch):
    path = tmp_path / "user_things_abc.py"
    path.write_text("VALUE = 6 * 7\n")
    module = load_user_module(path)  # a PathLike is a file
    assert module.VALUE == 42 and sys.modules["user_things_abc"] is module  # importable under its stem
    private = load_user_module(str(path), module_name="_private_user_things")
    assert private.VALUE == 42 and private is not module and sys.modules["user_things_abc"] is module
    assert load_user_module("json.decoder") is sys.modules["json.decoder"]
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "exits_on_import_pkg.py").write_text("import sys\nsys.exit(9)\n")
    with pytest.raises(UserModelError, match=r"^importing exits_on_import_pkg called sys.exit\(9\)$"):
        load_user_module("exits_on_import_pkg")
    for name in ("user_things_abc", "_private_user_things"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_model_and_data_specs_give_the_same_line_for_a_bad_file(tmp_path, name):
    """The twin loaders are one: ``resolve_model`` and ``resolve_data`` prefix the same line."""
    text, kind, expected = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(text)
    lines = []
    for resolve, what in ((resolve_model, "model"), (resolve_data, "data")):
        spec = f"{path}:make"
        with pytest.raises(kind) as info:
            resolve(spec)
        prefix = f"{what} spec {spec!r}: "
        assert str(info.value).startswith(prefix + expected.format(f=path)), str(info.value)
        lines.append(str(info.value)[len(prefix):])
    assert lines[0] == lines[1]
