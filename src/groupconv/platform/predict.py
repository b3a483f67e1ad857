"""Predict the time (and energy) of a network per frame from its per-operator counts.

A model is traced once into per-operator counts (MACs and bytes of every operator call,
:func:`groupconv.networks.count_module`); the platform prices each call with the model of
its kernel type (:meth:`Platform.predict_op`), and the network's time is the sum. What
was learned on single operators transfers to networks because both are described by the
same per-operator counts.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import GroupConvError
from .platform import Platform, UnmeasuredKernelWarning

__all__ = ["OpPrediction", "Prediction", "predict"]

MODES = ("forward", "forward_backward")


@dataclass(frozen=True)
class OpPrediction:
    """One operator call, priced (time and energy per frame: the call divided by the batch)."""

    op: str
    op_class: str
    kernel: str
    module: str
    phase: str
    time_s: float
    energy_J: float | None
    bound: str
    macs: float
    bytes: float
    measured_kernel: bool

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Prediction:
    """Predicted cost of one network on one platform, per frame.

    Parameters
    ----------
    time_s : float
        Predicted time per frame (s).
    energy_J : float or None
        Predicted energy per frame (J); None on a platform without an energy meter.
    ops : tuple of OpPrediction
        Per operator call, in execution order (``macs``/``bytes``/``time_s`` per frame).
    batch : int
    mode : {"forward", "forward_backward"}
    counter : str
        What produced the per-op counts (``"count_module"``).
    unmeasured : tuple of str
        Kernel types predicted from the roofline alone.
    """

    time_s: float
    energy_J: float | None
    ops: tuple[OpPrediction, ...]
    batch: int
    mode: str
    platform_device: str
    counter: str = "count_module"
    unmeasured: tuple[str, ...] = field(default=())

    @property
    def macs(self) -> float:
        return sum(o.macs for o in self.ops)

    @property
    def bytes(self) -> float:
        return sum(o.bytes for o in self.ops)

    def by_class(self) -> dict[str, float]:
        """Predicted time per frame summed per kernel type."""
        out: dict[str, float] = {}
        for o in self.ops:
            out[o.kernel] = out.get(o.kernel, 0.0) + o.time_s
        return out

    def as_dict(self) -> dict[str, object]:
        return {
            "time_s": self.time_s,
            "energy_J": self.energy_J,
            "batch": self.batch,
            "mode": self.mode,
            "device": self.platform_device,
            "macs": self.macs,
            "bytes": self.bytes,
            "counter": self.counter,
            "unmeasured": list(self.unmeasured),
            "by_kernel": self.by_class(),
            "ops": [o.as_dict() for o in self.ops],
        }

    def op_table(self):
        """One row per operator call (a pandas DataFrame)."""
        import pandas as pd

        return pd.DataFrame([o.as_dict() for o in self.ops])

    def summary(self, label: str = "network", *, device: str | None = None, top: int = 15) -> str:
        """Totals per frame, time per kernel type and the ``top`` slowest operators, as text.

        ``label`` names the network and ``device`` the machine in the first line (default:
        the platform's device)."""
        energy = "n/a (no energy meter)" if self.energy_J is None else f"{self.energy_J * 1e3:.4g} mJ"
        lines = [
            f"{label} on {device or self.platform_device}, batch {self.batch}, {self.mode}",
            f"predicted time per frame: {self.time_s * 1e3:.4g} ms   energy per frame: {energy}",
            f"MACs per frame: {self.macs:,.0f}   bytes per frame: {self.bytes:,.0f}",
            "time per kernel type:",
            f"  {'kernel type':<14} {'time/frame':>12}  {'share':>7}",
        ]
        for kernel, t in sorted(self.by_class().items(), key=lambda kv: -kv[1]):
            lines.append(f"  {kernel:<14} {t * 1e3:9.4f} ms  {100 * t / self.time_s:5.1f} %")
        table = self.op_table()
        slowest = table.sort_values("time_s", ascending=False).head(top)
        lines.append(f"slowest {len(slowest)} of {len(table)} operators:")
        lines.append(f"  {'module':<28} {'kernel':<12} {'bound':<7} {'time/frame':>13}  {'MACs/frame':>19}")
        for _, r in slowest.iterrows():
            lines.append(f"  {r['module'] or '(top)':<28} {r['kernel']:<12} {r['bound']:<7} {r['time_s'] * 1e6:10.1f} us  "
                         f"{r['macs']:>14,.0f} MACs")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        energy = "n/a" if self.energy_J is None else f"{self.energy_J:.4g} J"
        head = f"<p>predicted {self.time_s * 1e3:.4g} ms/frame, energy {energy}, batch {self.batch}, {self.mode}</p>"
        return head + self.op_table().to_html(max_rows=30)


def predict(platform: Platform, count_or_model, inputs=None, *, mode: str = "forward") -> Prediction:
    """Predict the time (and energy) per frame of a network on ``platform``.

    Parameters
    ----------
    platform : Platform
    count_or_model : ModelCount or torch.nn.Module
        Per-operator counts (anything with ``.ops`` and ``.batch``), or a model, traced
        here on ``inputs``.
    inputs : shape tuple, list of shapes, tensor or tuple of tensors
        Needed with a model; the leading dim of the first input is the batch.
    mode : {"forward", "forward_backward"}
        ``forward``: eval mode, no gradients (what timing inference measures).

    Returns
    -------
    Prediction
    """
    if mode not in MODES:
        raise GroupConvError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not isinstance(platform, Platform):
        raise GroupConvError(f"platform must be a Platform, got {type(platform).__name__}")
    if hasattr(count_or_model, "ops") and hasattr(count_or_model, "batch"):
        ops, batch, counter = tuple(count_or_model.ops), int(count_or_model.batch), "count_module"
    else:
        if inputs is None:
            raise GroupConvError("predict needs inputs (a shape such as (1, 3, 224, 224)) with a model")
        from ..networks import count_module

        count = count_module(count_or_model, inputs, backward=mode == "forward_backward")
        ops, batch, counter = tuple(count.ops), int(count.batch), "count_module"
    if mode == "forward":
        ops = tuple(o for o in ops if getattr(o, "phase", "forward") == "forward")
    if not ops:
        raise GroupConvError("the model ran no operator the platform can price")
    priced: list[OpPrediction] = []
    unmeasured: list[str] = []
    for o in ops:
        feats = platform.features(o)
        measured = feats.kernel in platform.time_models
        if not measured and feats.kernel not in unmeasured:
            unmeasured.append(feats.kernel)
        t = platform.predict_op(o, warn=False)
        e = platform.predict_op_energy(o, warn=False)
        priced.append(
            OpPrediction(
                op=o.op, op_class=o.op_class, kernel=feats.kernel, module=getattr(o, "module", ""),
                phase=getattr(o, "phase", "forward"), time_s=t / batch,
                energy_J=None if e is None else e / batch,
                bound=platform.roofline.bound(feats.macs, feats.bytes),
                macs=feats.macs / batch, bytes=feats.bytes / batch, measured_kernel=measured,
            )
        )
    if unmeasured:
        warnings.warn(
            f"operator class(es) {', '.join(unmeasured)} never measured on this platform: "
            "predicted from the roofline constants",
            UnmeasuredKernelWarning,
            stacklevel=2,
        )
    energy = None
    if platform.has_energy:
        energy = sum(p.energy_J or 0.0 for p in priced)
    return Prediction(
        time_s=sum(p.time_s for p in priced),
        energy_J=energy,
        ops=tuple(priced),
        batch=batch,
        mode=mode,
        platform_device=platform.device,
        counter=counter,
        unmeasured=tuple(unmeasured),
    )
