"""Validation of a platform file on load: its JSON Schema, then the semantic checks.

The JSON Schema (``groupconv/data/platform.schema.json``, published as
``docs/platform.schema.json``) fixes the layout, the types and the ranges a schema can
state (positive roofline peaks, non-negative fixed costs and linear coefficients, known
model forms, network-correction factors in [0.02, 50]). :func:`validate_platform` runs it
with :mod:`jsonschema`, then checks what JSON Schema cannot express:

* every number is finite (a file with ``NaN`` or ``Infinity``, which Python's json reads);
* every model's kernel type and feature names are known to this groupconv;
* the coefficient count matches the features (``linear``: one per feature; ``power``:
  the exponent's constant plus one per feature), and so do the standard errors;
* over the calibration ranges a model predicts at most :data:`MAX_CALL_S` per call
  (a damaged coefficient that would predict 1e9 s is refused here, not at prediction time).

Each failure is one :class:`~groupconv.errors.GroupConvError` line naming the file, the
field (as a JSON path) and the value.

Imports neither torch nor zeus.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources

from ..errors import GroupConvError
from .models import FORMS, KERNELS, OpFeatures

__all__ = ["MAX_CALL_S", "platform_schema", "validate_platform"]

#: Longest time (s) a model may predict for one call over its calibration ranges.
MAX_CALL_S = 3600.0
#: The same bound for energy (J) per call.
MAX_CALL_J = 3.6e6


@lru_cache(maxsize=1)
def platform_schema() -> dict:
    """The platform file's JSON Schema (draft 2020-12) as a dict."""
    text = resources.files("groupconv").joinpath("data/platform.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(platform_schema())


def _path(parts) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _non_finite(obj, parts=()):
    """The path and value of the first non-finite number in ``obj`` (None if there is none)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return parts, obj
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            found = _non_finite(v, (*parts, k))
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found = _non_finite(v, (*parts, i))
            if found:
                return found
    return None


def _known_feature(name: str) -> bool:
    try:
        OpFeatures(kernel="other", macs=1.0, bytes=1.0).value(name)
    except (KeyError, ValueError):
        return False
    return True


def validate_platform(d: object, where: str = "platform") -> None:
    """Raise a one-line :class:`~groupconv.errors.GroupConvError` unless ``d`` (a parsed
    platform JSON) passes the schema and the semantic checks (see the module docstring)."""
    from jsonschema.exceptions import best_match

    if not isinstance(d, Mapping):
        raise GroupConvError(f"{where}: not a platform (a JSON object expected)")
    found = _non_finite(d)
    if found is not None:
        parts, value = found
        raise GroupConvError(f"{where}: malformed platform file: {_path(parts)} is {value!r}, not a finite number")
    error = best_match(_validator().iter_errors(d))
    if error is not None:
        message = " ".join(error.message.split())
        if len(message) > 160:
            message = message[:157] + "..."
        raise GroupConvError(f"{where}: malformed platform file: {_path(error.absolute_path)}: {message}")
    for section in ("time_models", "energy_models"):
        for name, model in dict(d.get(section) or {}).items():
            _check_model(model, f"{where}: $.{section}.{name}", section)


def _check_model(m: Mapping, where: str, section: str) -> None:
    parts = str(m["kernel"]).split(":")
    if parts[0] in ("forward", "backward") and len(parts) > 1:  # a phase's model: backward:conv_slow
        parts = parts[1:]
    base = parts[0]
    if base not in KERNELS:
        raise GroupConvError(f"{where}: unknown kernel type {base!r}")
    form = m["form"]
    if form not in set(FORMS.values()):
        raise GroupConvError(f"{where}: unknown model form {form!r}; known: {', '.join(sorted(set(FORMS.values())))}")
    features = list(m["features"])
    for f in features:
        if not _known_feature(f):
            raise GroupConvError(f"{where}: unknown feature {f!r}")
    theta = [float(t) for t in m["theta"]]
    expected = len(features) + (1 if form == "power" else 0)
    if form in ("linear", "power") and len(theta) != expected:
        raise GroupConvError(
            f"{where}: {len(theta)} coefficient(s) in theta for {len(features)} feature(s) of a {form} model "
            f"(expected {expected})"
        )
    stderr = m.get("theta_stderr")
    if stderr is not None and len(stderr) != len(theta):
        raise GroupConvError(f"{where}: {len(stderr)} theta_stderr value(s) for {len(theta)} coefficient(s)")
    ranges = dict(m.get("ranges") or {})
    if form not in ("linear", "power") or not all(f in ranges for f in features):
        return
    for f in features:
        low, high = ranges[f]
        if low > high:
            raise GroupConvError(f"{where}: ranges.{f} [{low!r}, {high!r}] has its minimum above its maximum")
    c0 = float(m["c0"])
    if form == "linear":
        worst = c0 + sum(t * max(abs(ranges[f][0]), abs(ranges[f][1])) for t, f in zip(theta, features))
    else:
        z = theta[0] + sum(max(t * ranges[f][0], t * ranges[f][1]) for t, f in zip(theta[1:], features))
        worst = c0 + math.exp(min(z, 700.0))
    cap, unit = (MAX_CALL_J, "J") if section == "energy_models" else (MAX_CALL_S, "s")
    if not math.isfinite(worst) or worst > cap:
        raise GroupConvError(
            f"{where}: predicts up to {worst:.3g} {unit} per call over its calibration ranges "
            f"(more than {cap:g} {unit}): a damaged coefficient"
        )
