"""Turn a model spec (a file, an importable factory, a catalogue name) into a torch module.

:func:`resolve_model` is what ``groupconv count`` (and other commands that take a
model) call on their positional argument:

* ``"path/to/file.py:factory"`` - the file is loaded as a module and ``factory(**kwargs)``
  called;
* ``"package.module:factory"`` - imported with :func:`importlib.import_module`;
* a catalogue name (``"mobilenet_v1"``, ``"resnext50"``) with ``variant`` and ``group``;
* a zoo name (standard architectures, :mod:`groupconv.networks.zoo`, when present).

Any failure is one :class:`~groupconv.errors.GroupConvError` line naming the spec.

:func:`load_user_module` is the one way a user's file (or importable module) is loaded,
here and for the CLI's ``--data FILE.py:FACTORY``
(:func:`groupconv.approx.sources.resolve_data`): the same one-line errors for both.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from ..errors import GroupConvError, UserModelError
from .catalogue import ARCHITECTURES
from .torch_models import build_module
from .zoo import ZOO

__all__ = ["load_user_module", "resolve_model"]


def _zoo() -> dict:
    """The standard-architecture zoo (name -> factory)."""
    return dict(ZOO)


def resolve_model(spec: str, *, variant: str | None = None, group: int | None = None, device=None, **kwargs):
    """The ``torch.nn.Module`` that ``spec`` names.

    Parameters
    ----------
    spec : str
        ``"FILE.py:FACTORY"``, ``"package.module:factory"``, a catalogue architecture
        (needs ``variant`` and ``group``) or a zoo name.
    variant, group :
        For catalogue architectures (see :func:`~groupconv.networks.build_module`).
    device : str, optional
        For catalogue architectures: where to build them (``"meta"`` for shapes only).
    **kwargs
        Passed to the factory (zoo names and ``FILE:FACTORY`` specs).

    Returns
    -------
    torch.nn.Module
    """
    from torch import nn

    if not isinstance(spec, str) or not spec.strip():
        raise GroupConvError(f"model spec must be FILE.py:FACTORY, package.module:factory or a network name, got {spec!r}")
    spec = spec.strip()
    if spec in ARCHITECTURES:
        if variant is None or group is None:
            raise GroupConvError(f"model {spec!r} is a catalogue network: give its variant and group")
        return build_module(spec, variant, group, device=device)
    zoo = _zoo()
    if spec in zoo:  # zoo names: factory(image_size=..., num_classes=...)
        return _call(zoo[spec], spec, kwargs)
    if ":" not in spec:
        known = sorted([*ARCHITECTURES, *zoo])
        raise GroupConvError(
            f"unknown model {spec!r}: expected FILE.py:FACTORY, package.module:factory or one of {', '.join(known)}"
        )
    where, _, attr = spec.rpartition(":")
    if not where or not attr:
        raise GroupConvError(f"model spec {spec!r} must look like FILE.py:FACTORY or package.module:factory")
    module = _load(where, spec)
    factory = getattr(module, attr, None)
    if factory is None:
        raise GroupConvError(f"model spec {spec!r}: {where} has no attribute {attr!r}")
    if isinstance(factory, nn.Module):
        return factory
    if not callable(factory):
        raise GroupConvError(f"model spec {spec!r}: {attr!r} is neither a factory nor a torch.nn.Module")
    model = _call(factory, spec, kwargs)
    if not isinstance(model, nn.Module):
        raise GroupConvError(f"model spec {spec!r}: {attr}() returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _call(factory, spec: str, kwargs: dict):
    try:
        return factory(**kwargs)
    except GroupConvError:
        raise
    except SystemExit as exc:  # a factory that calls sys.exit must not end the CLI silently
        raise UserModelError(f"model spec {spec!r}: the factory called sys.exit({exc.code!r})") from None
    except Exception as exc:  # a user's factory can raise anything; report it on one line
        raise UserModelError(f"model spec {spec!r}: the factory raised {_one_line(exc)}") from None


def _load(where: str, spec: str):
    try:
        return load_user_module(where)
    except GroupConvError as exc:  # the same line, prefixed with the spec it came from
        raise type(exc)(f"model spec {spec!r}: {exc}") from None


def _is_file_spec(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def load_user_module(where: str | os.PathLike, *, module_name: str | None = None) -> ModuleType:
    """The user's Python module that ``where`` names: a file loaded from its path, or an
    importable module imported.

    This is how ``FILE.py:FACTORY`` and ``package.module:factory`` specs (a model, the
    CLI's ``--data``) reach the user's code. Whatever goes wrong - no such file, a file
    that is not Python, a syntax error, an exception or a ``sys.exit`` while the module
    runs, a module that cannot be imported - is one :class:`~groupconv.errors.GroupConvError`
    line naming ``where``, never a traceback nor the end of the process.

    Parameters
    ----------
    where : str or os.PathLike
        A file (``"path/to/file.py"``: anything ending in ``.py`` or holding a path
        separator) or a dotted module name (``"package.module"``).
    module_name : str, optional
        For a file: the name it is registered under in ``sys.modules``. By default its
        stem where that shadows no standard-library, imported or importable module (so
        that what is pickled from it, e.g. ``torch.save`` of a model whose classes it
        defines, loads wherever the file imports), else a private name. A caller that may
        load a file a second time (the same file as model and data) gives a private name,
        so as not to replace the module whose classes are already in use.

    Returns
    -------
    types.ModuleType
        The module, executed (a file is re-executed on each call).

    Raises
    ------
    GroupConvError
        No such file, a file that cannot be loaded as Python, or a module that cannot be
        imported (:class:`ImportError`).
    UserModelError
        The module's own code raised (a :class:`SyntaxError` included) or called
        ``sys.exit`` while it was executed.
    """
    text = os.fspath(where)
    if not isinstance(where, str) or _is_file_spec(text):
        return _load_file(Path(text), text, module_name)
    try:
        return importlib.import_module(text)
    except ImportError as exc:
        raise GroupConvError(f"cannot import {text} ({exc})".split("\n")[0]) from None
    except SystemExit as exc:
        raise UserModelError(f"importing {text} called sys.exit({exc.code!r})") from None
    except Exception as exc:  # the user's module can raise anything on import
        raise UserModelError(f"importing {text} raised {_one_line(exc)}") from None


def _load_file(path: Path, text: str, module_name: str | None) -> ModuleType:
    if not path.is_file():
        raise GroupConvError(f"no such file {text}")
    name = _module_name(path) if module_name is None else module_name
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise GroupConvError(f"cannot load {text} as Python")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        loader_spec.loader.exec_module(module)
    except SystemExit as exc:
        sys.modules.pop(name, None)
        raise UserModelError(f"importing {text} called sys.exit({exc.code!r})") from None
    except Exception as exc:  # the user's file can raise anything on import
        sys.modules.pop(name, None)
        raise UserModelError(f"importing {text} raised {_one_line(exc)}") from None
    return module


def _one_line(exc: BaseException) -> str:
    """``"ValueError: the first line of its message"``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _module_name(path: Path) -> str:
    """The name a user's file is imported under: its stem where that is safe, so that what
    is pickled from it (``torch.save`` of a model whose classes it defines) loads in
    another process wherever the file imports (``import stem``); else a private name.

    The stem is used when it is an identifier and shadows no standard-library module and
    no other module that is imported or importable.
    """
    stem = path.stem
    resolved = path.resolve()
    if stem.isidentifier() and stem not in sys.stdlib_module_names:
        present = sys.modules.get(stem)
        where = getattr(present, "__file__", None)
        if present is None:
            try:
                found = importlib.util.find_spec(stem)  # an installed module of that name?
            except (ImportError, ValueError):
                found = None
            origin = getattr(found, "origin", None)
            if found is None or (origin is not None and Path(origin).resolve() == resolved):
                return stem
        elif where is not None and Path(where).resolve() == resolved:
            return stem
    return f"_groupconv_user_model_{abs(hash(str(resolved)))}"
