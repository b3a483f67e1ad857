"""Turn a model spec (a file, an importable factory, a catalogue name) into a torch module.

:func:`resolve_model` is what ``groupconv count`` (and other commands that take a
model) call on their positional argument:

* ``"path/to/file.py:factory"`` - the file is loaded as a module and ``factory(**kwargs)``
  called;
* ``"package.module:factory"`` - imported with :func:`importlib.import_module`;
* a catalogue name (``"mobilenet_v1"``, ``"resnext50"``) with ``variant`` and ``group``;
* a zoo name (standard architectures, :mod:`groupconv.networks.zoo`, when present).

Any failure is one :class:`~groupconv.errors.GroupConvError` line naming the spec.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from ..errors import GroupConvError, UserModelError
from .catalogue import ARCHITECTURES
from .torch_models import build_module
from .zoo import ZOO

__all__ = ["resolve_model"]


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
        text = str(exc).strip().splitlines()
        raise UserModelError(f"model spec {spec!r}: the factory raised {type(exc).__name__}: {text[0] if text else ''}") from None


def _load(where: str, spec: str):
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where)
        if not path.is_file():
            raise GroupConvError(f"model spec {spec!r}: no such file {where}")
        name = _module_name(path)
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise GroupConvError(f"model spec {spec!r}: cannot load {where} as Python")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        try:
            loader_spec.loader.exec_module(module)
        except SystemExit as exc:
            sys.modules.pop(name, None)
            raise UserModelError(f"model spec {spec!r}: importing {where} called sys.exit({exc.code!r})") from None
        except Exception as exc:  # the user's file can raise anything on import
            sys.modules.pop(name, None)
            text = str(exc).strip().splitlines()
            raise UserModelError(f"model spec {spec!r}: importing {where} raised {type(exc).__name__}: {text[0] if text else ''}") from None
        return module
    try:
        return importlib.import_module(where)
    except ImportError as exc:
        raise GroupConvError(f"model spec {spec!r}: cannot import {where} ({exc})") from None


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
