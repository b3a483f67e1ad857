"""The platform file: a frozen :class:`Platform` value and its versioned JSON schema.

A platform is what :func:`~groupconv.platform.calibrate` learned about one device: who
measured what (metadata), its roofline constants, one fitted model per kernel type of the
time of an operator call (and of its energy where an energy meter was read), the network
correction learned from whole synthetic networks, and the E2GC paper's alpha and beta
fitted to this platform. The JSON layout is documented in ``docs/platform.md``; a file of
another ``schema_version`` is refused with a one-line error.

Imports neither torch nor zeus.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._atomic import atomic_write_text
from ..cost import ConvLayer
from ..errors import GroupConvError, UnmeasuredKernelWarning
from ..vocab import DTYPE_BYTES, FLOAT_DTYPES
from .backward import backward_features
from .correction import NetworkCorrection
from .models import KernelModel, OpFeatures, Roofline, features_of, hidden_copy_features
from .schema import validate_platform

__all__ = ["SCHEMA_VERSION", "Platform", "UnmeasuredKernelWarning"]

#: Version of the platform JSON layout this code reads and writes.
SCHEMA_VERSION = 1




@dataclass(frozen=True)
class Platform:
    """A calibrated platform (see the module docstring and ``docs/platform.md``).

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"cuda:N"``.
    metadata : dict
        Device name, software versions, threads, dtype, protocol, budget, runs file,
        energy source, creation time (free-form, JSON values).
    roofline : Roofline
    time_models : dict of str -> KernelModel
        Per kernel type, time (s) of one call.
    energy_models : dict of str -> KernelModel
        Per kernel type, energy (J) of one call; empty without an energy meter.
    network_correction : NetworkCorrection
        Factors multiplying the per-op predictions (per kernel group), learned from whole
        synthetic networks, with the errors before and after (a mapping of the same
        fields is accepted and converted).
    e2gc : dict
        The E2GC paper's law (Eq. 1) fitted to this platform's conv calibration points:
        ``beta``, ``scale``, their standard errors, ``fitted_to`` ("time_s" without a meter)
        and the identifiability notes.
    validation : dict
        Errors on held-out calibration points and networks.
    """

    device: str
    metadata: Mapping[str, object]
    roofline: Roofline
    time_models: Mapping[str, KernelModel]
    energy_models: Mapping[str, KernelModel] = field(default_factory=dict)
    network_correction: NetworkCorrection = field(default_factory=NetworkCorrection)
    e2gc: Mapping[str, object] = field(default_factory=dict)
    validation: Mapping[str, object] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.network_correction, NetworkCorrection):
            object.__setattr__(self, "network_correction", NetworkCorrection.from_dict(self.network_correction))

    @property
    def has_energy(self) -> bool:
        """Whether energy was measured (an energy meter existed during calibration)."""
        return bool(self.energy_models)

    @property
    def threads(self) -> int:
        return int(self.metadata.get("threads", 1) or 1)

    # ------------------------------------------------------------------ LayerPricer
    @property
    def objectives(self) -> tuple[str, ...]:
        """What this platform prices per frame (:class:`~groupconv.cost.LayerPricer`): energy
        first where it has an energy meter, and time."""
        return ("energy_J", "time_s") if self.has_energy else ("time_s",)

    def layer_cost(self, layer: ConvLayer, batch: int, objective: str = "time_s") -> float:
        """Predicted time (s) or energy (J) per frame of ``layer`` run on ``batch`` frames
        (:class:`~groupconv.cost.LayerPricer`; no warning for an unmeasured kernel)."""
        if objective not in self.objectives:
            raise GroupConvError(f"objective {objective} needs a platform with an energy meter; this one has none")
        if objective == "energy_J":
            return self.predict_op_energy(layer, batch, warn=False) / batch
        return self.predict_op(layer, batch, warn=False) / batch

    # ------------------------------------------------------------------ prediction
    def features(self, op, batch: int | None = None) -> OpFeatures:
        """:class:`OpFeatures` of an ``OpCount``-like op, or of a ``ConvLayer`` at ``batch``."""
        if isinstance(op, ConvLayer):
            op = _conv_layer_op(op, batch if batch is not None else op.batch, str(self.metadata.get("dtype", "float32")))
        if getattr(op, "phase", "forward") == "backward":  # the kernel a backward op runs (platform/backward.py)
            return backward_features(op, device=self.device, threads=self.threads)
        return features_of(op, device=self.device, threads=self.threads)

    def _predict(self, feats: OpFeatures, models: Mapping[str, KernelModel], factor: float, warn: bool) -> tuple[float, bool]:
        model = _lookup(models, feats)
        if model is None:
            if warn:
                warnings.warn(
                    f"operator class {feats.kernel!r} was never measured on this platform: "
                    "predicted from the roofline constants",
                    UnmeasuredKernelWarning,
                    stacklevel=4,
                )
            return self.roofline.time_s(feats.macs, feats.bytes) * factor, False
        # never faster than the roofline allows
        t = max(model.predict(feats), self.roofline.time_s(feats.macs, feats.bytes) - self.roofline.fixed_s)
        hidden = hidden_copy_features(feats)  # a non-contiguous input copied inside the kernel
        if hidden is not None:
            copy = _lookup(models, hidden)
            if copy is not None:
                t += copy.predict(hidden) - copy.c0  # the copy's work, not a second call
        return t * factor, True

    def predict_op(self, op, batch: int | None = None, *, warn: bool = True, raw: bool = False) -> float:
        """Predicted time (s) of one call of ``op`` (the whole batch), network-corrected.

        Parameters
        ----------
        op : OpCount or ConvLayer
            An operator call as the counter records it, or a ``ConvLayer`` (priced as
            one ``aten.convolution`` call on ``batch`` frames: what a grouping search needs
            to price alternatives without retracing).
        batch : int, optional
            Frames of the call for a ``ConvLayer`` (default: its own ``batch``); ignored
            for an ``OpCount``, whose counts are already for the whole call.
        warn : bool
            Warn (:class:`UnmeasuredKernelWarning`) when the kernel type was never measured.
        raw : bool
            Leave out the network correction (the per-op model alone).
        """
        feats = self.features(op, batch)
        factor = 1.0 if raw else self.network_correction.time_factor_of(feats.kernel)
        return _checked(self._predict(feats, self.time_models, factor, warn)[0], feats, "time", "s")

    def predict_op_energy(self, op, batch: int | None = None, *, warn: bool = True) -> float | None:
        """Predicted energy (J) of one call, None on a platform without an energy meter."""
        if not self.has_energy:
            return None
        feats = self.features(op, batch)
        model = _lookup(self.energy_models, feats)
        factor = self.network_correction.energy_factor_or_one
        if model is None:
            return None
        return _checked(model.predict(feats) * factor, feats, "energy", "J")

    def model_name(self, op, batch: int | None = None) -> str | None:
        """The name of the time model that prices ``op`` (``"kernel"`` or ``"kernel:op"``),
        None where the op is priced from the roofline alone."""
        model = _lookup(self.time_models, self.features(op, batch))
        return None if model is None else model.kernel

    @property
    def dtype(self) -> str:
        return str(self.metadata.get("dtype", "float32") or "float32")

    def check_conditions(self, *, threads: int | None = None, dtype: str | None = None,
                         device: str | None = None) -> None:
        """Refuse, in one line, a prediction asked for other conditions than calibrated.

        A platform prices kernels as they ran at its own thread count, dtype and device;
        mixing conditions would be silently wrong (two threads do not halve a network's
        time), so any mismatch is a :class:`~groupconv.errors.GroupConvError`.
        """
        if threads is not None and int(threads) != self.threads:
            raise GroupConvError(
                f"the platform was calibrated with {self.threads} thread(s), the prediction asks for {threads}: "
                f"calibrate with --threads {threads} for that"
            )
        if dtype is not None and str(dtype) != self.dtype:
            raise GroupConvError(
                f"the platform was calibrated in {self.dtype}, the model runs in {dtype}: calibrate with --dtype {dtype}"
            )
        if device is not None:
            kind = str(device).split(":")[0]
            if kind != "meta" and kind != self.device.split(":")[0]:
                raise GroupConvError(f"the platform is for device {self.device!r}, the model is on {str(device)!r}")

    def bound(self, op, batch: int | None = None) -> str:
        """``"memory"`` or ``"compute"``: the roofline class of one call."""
        feats = self.features(op, batch)
        return self.roofline.bound(feats.macs, feats.bytes)

    # ------------------------------------------------------------------ JSON
    def as_dict(self) -> dict[str, object]:
        return {
            "schema_version": self.schema_version,
            "device": self.device,
            "metadata": dict(self.metadata),
            "roofline": self.roofline.as_dict(),
            "time_models": {k: m.as_dict() for k, m in self.time_models.items()},
            "energy_models": {k: m.as_dict() for k, m in self.energy_models.items()},
            "network_correction": self.network_correction.as_dict(),
            "e2gc": dict(self.e2gc),
            "validation": dict(self.validation),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the platform as indented JSON (NaN written as null); returns the path."""
        path = Path(path)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        d = _nan_to_none(self.as_dict())
        validate_platform(json.loads(json.dumps(d)), str(path))  # never write a file load() refuses
        text = json.dumps(d, indent=2, allow_nan=False)
        atomic_write_text(path, text + "\n")  # whole or not at all
        return path

    @classmethod
    def from_dict(cls, d: Mapping[str, object], where: str = "platform") -> Platform:
        if not isinstance(d, Mapping):
            raise GroupConvError(f"{where}: not a platform (a JSON object expected)")
        version = d.get("schema_version")
        if version == SCHEMA_VERSION:
            validate_platform(d, where)  # field by field: schema, then semantic checks
        if version != SCHEMA_VERSION:
            raise GroupConvError(
                f"{where}: platform schema version {version!r}, this groupconv reads version "
                f"{SCHEMA_VERSION}; calibrate again with 'groupconv calibrate'"
            )
        try:
            roof = dict(d["roofline"])
            return cls(
                device=str(d["device"]),
                metadata=dict(d.get("metadata", {})),
                roofline=Roofline(
                    float(roof["peak_macs_per_s"]), float(roof["bandwidth_bytes_per_s"]), float(roof["fixed_s"])
                ),
                time_models={k: KernelModel.from_dict(m) for k, m in dict(d["time_models"]).items()},
                energy_models={k: KernelModel.from_dict(m) for k, m in dict(d.get("energy_models", {})).items()},
                network_correction=NetworkCorrection.from_dict(d.get("network_correction", {})),
                e2gc=dict(d.get("e2gc", {})),
                validation=dict(d.get("validation", {})),
                schema_version=int(version),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GroupConvError(f"{where}: malformed platform file ({type(exc).__name__}: {exc})") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Platform:
        """Read a platform file; another schema version or a malformed file is a one-line error."""
        path = Path(path)
        if not path.is_file():
            raise GroupConvError(f"platform file {str(path)!r} does not exist")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except RecursionError:
            raise GroupConvError(f"{path}: not a JSON platform file (nested too deeply)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise GroupConvError(f"{path}: not a JSON platform file ({exc})".split("\n")[0]) from None
        return cls.from_dict(d, str(path))

    def summary(self) -> str:
        """A few lines: device, roofline, per-kernel errors, correction."""
        r = self.roofline
        lines = [
            f"platform {self.metadata.get('device_name', self.device)} ({self.device}, "
            f"{self.metadata.get('threads')} thread(s), {self.metadata.get('dtype')})",
            f"  roofline: {r.peak_macs_per_s / 1e9:.2f} GMAC/s, {r.bandwidth_bytes_per_s / 1e9:.2f} GB/s, "
            f"fixed cost {r.fixed_s * 1e6:.1f} us",
        ]
        for k, m in self.time_models.items():
            cv = "n/a" if m.cv_mape is None else f"{100 * m.cv_mape:.1f} %"
            lines.append(f"  {k:<13} n={m.n:<4} fit MAPE {100 * m.fit_mape:5.1f} %  CV MAPE {cv}")
        nc = self.network_correction
        if nc:
            groups = ", ".join(f"{g} {v:.2f}" for g, v in dict(nc.factors or {}).items())
            lines.append(f"  network correction from {nc.n_networks or 0} network(s): "
                         f"factor {1.0 if nc.time_factor is None else nc.time_factor:.3f}" + (f" ({groups})" if groups else "")
                         + (f", LOO MAPE {100 * nc.loo_mape_corrected:.1f} %" if nc.loo_mape_corrected is not None else ""))
        lines.append("  energy: " + ("measured" if self.has_energy else "none (no energy meter): time only"))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(self.summary()) + "</pre>"


def _out_of_place(op: str) -> str:
    """``aten.relu_.default`` -> ``aten.relu.default`` (an in-place op priced as its twin)."""
    parts = op.split(".")
    if len(parts) >= 2 and parts[1].endswith("_") and not parts[1].startswith("_"):
        parts[1] = parts[1][:-1]
    return ".".join(parts)


#: The kernel type whose model prices a kernel type a platform file has no model of,
#: because it was calibrated before that type existed (a ``transpose`` was a ``copy``).
KERNEL_FALLBACKS: dict[str, str] = {"transpose": "copy"}


def _lookup(models: Mapping[str, KernelModel], feats: OpFeatures) -> KernelModel | None:
    """The per-operator model (or that of its out-of-place twin), else the kernel type's.

    A backward op first looks for models of its phase (``"backward:kernel:op"``,
    ``"backward:kernel"``): a platform that measured backward kernels on their own
    prices them so; one that did not prices them with the forward models.
    """
    names = [f"{feats.kernel}:{feats.op}", f"{feats.kernel}:{_out_of_place(feats.op)}", feats.kernel]
    if feats.kernel in KERNEL_FALLBACKS:  # a platform calibrated before the kernel type was split out
        names.append(KERNEL_FALLBACKS[feats.kernel])
    if feats.phase != "forward":
        names = [f"{feats.phase}:{n}" for n in names] + names
    for name in names:
        model = models.get(name)
        if model is not None:
            return model
    return None


def _checked(value: float, feats: OpFeatures, what: str, unit: str) -> float:
    """``value`` if it is a finite positive prediction, else a one-line error: a time or an
    energy is never NaN, infinite, negative or zero (a platform built in Python with a bad
    coefficient; a file is refused on load already)."""
    if not math.isfinite(value) or value <= 0:
        raise GroupConvError(
            f"the platform predicts {value!r} {unit} of {what} for a {feats.kernel} call "
            f"({feats.op or 'op'}, {feats.macs:.3g} MACs): its model of {feats.kernel} is damaged"
        )
    return value


def _nan_to_none(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj




def _conv_layer_op(layer: ConvLayer, batch: int, dtype: str):
    """The ``OpCount`` of one ``aten.convolution`` call of ``layer`` on ``batch`` frames
    (the bytes as the operator counter counts them: input, weight and bias read, output written)."""
    from ..networks.count import OpCount

    kh, kw = (layer.kernel, layer.kernel) if isinstance(layer.kernel, int) else tuple(layer.kernel)
    h_in = layer.in_height if layer.in_height is not None else layer.out_height * layer.stride
    w_in = layer.in_width if layer.in_width is not None else layer.out_width * layer.stride
    x = (batch, layer.in_channels, h_in, w_in)
    w = (layer.out_channels, layer.in_channels // layer.groups, kh, kw)
    out = (batch, layer.out_channels, layer.out_height, layer.out_width)
    size = DTYPE_BYTES[dtype] if dtype in FLOAT_DTYPES else 4
    read = (math.prod(x) + math.prod(w) + (layer.out_channels if layer.bias else 0)) * size
    return OpCount(
        op="aten.convolution.default",
        op_class="conv",
        module=layer.name,
        phase="forward",
        input_shapes=(x, w),
        output_shapes=(out,),
        dtype=dtype,
        macs=layer.macs * batch,
        bytes_read=read,
        bytes_written=math.prod(out) * size,
        groups=layer.groups,
        layer=layer,
    )
