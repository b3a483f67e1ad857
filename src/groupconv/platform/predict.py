"""Predict the time (and energy) of a network per frame from its per-operator counts.

A model is traced once into per-operator counts (MACs and bytes of every operator call,
:func:`groupconv.networks.count_module`); the platform prices each call with the model of
its kernel type (:meth:`Platform.predict_op`), and the network's time is the sum. What
was learned on single operators transfers to networks because both are described by the
same per-operator counts.

**Where the model is traced.** On a CPU platform the model is traced on the CPU itself
(one real run at the asked batch, at the platform's thread count), so the trace holds
the kernels the CPU dispatches: one fused oneDNN kernel per LSTM layer and direction
(``mkldnn_rnn_layer``), the fused SDPA, multi-head-attention and transformer-encoder
fast paths, where the meta device would show their decompositions (an LSTM on meta is
thousands of small ops). A platform of another device (a GPU platform used on a
CPU-only host) is priced from the meta trace, with the device's conv dispatch rule
(:func:`~groupconv.platform.models.kernel_of`); fused kernels are then not seen.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from ..errors import GroupConvError
from .models import collapse_loop_ops
from .platform import Platform, UnmeasuredKernelWarning

__all__ = ["OpPrediction", "Prediction", "collapse_loops", "predict", "trace_counts"]

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
    model: str = ""

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
    traced_on : str
        Where the model was traced (``"cpu"``: the device's own kernels; ``"meta"``).
    threads : int
        The thread count the prediction is for (the platform's).
    """

    time_s: float
    energy_J: float | None
    ops: tuple[OpPrediction, ...]
    batch: int
    mode: str
    platform_device: str
    counter: str = "count_module"
    unmeasured: tuple[str, ...] = field(default=())
    traced_on: str = ""
    threads: int = 1

    @property
    def roofline_ops(self) -> dict[str, int]:
        """Operators priced from the roofline fallback (no kernel model): name -> calls."""
        out: dict[str, int] = {}
        for o in self.ops:
            if not o.measured_kernel:
                key = f"{o.op} ({o.kernel})"
                out[key] = out.get(key, 0) + 1
        return out

    def by_model(self) -> dict[str, float]:
        """Predicted time per frame summed per kernel model that priced it."""
        out: dict[str, float] = {}
        for o in self.ops:
            out[o.model] = out.get(o.model, 0.0) + o.time_s
        return out

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
            "roofline_ops": self.roofline_ops,
            "traced_on": self.traced_on,
            "threads": self.threads,
            "by_kernel": self.by_class(),
            "by_model": self.by_model(),
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
            f"{label} on {device or self.platform_device}, batch {self.batch}, {self.mode}, "
            f"{self.threads} thread(s), traced on {self.traced_on}",
            f"predicted time per frame: {self.time_s * 1e3:.4g} ms   energy per frame: {energy}",
            f"MACs per frame: {self.macs:,.0f}   bytes per frame: {self.bytes:,.0f}",
            "time per kernel model:",
            f"  {'kernel model':<36} {'time/frame':>12}  {'share':>7}",
        ]
        for kernel, t in sorted(self.by_model().items(), key=lambda kv: -kv[1]):
            lines.append(f"  {kernel:<36} {t * 1e3:9.4f} ms  {100 * t / self.time_s:5.1f} %")
        if self.roofline_ops:
            lines.append("priced from the roofline (no kernel model): "
                         + ", ".join(f"{op} x{n}" for op, n in self.roofline_ops.items()))
        table = self.op_table()
        slowest = table.sort_values("time_s", ascending=False).head(top)
        lines.append(f"slowest {len(slowest)} of {len(table)} operators:")
        lines.append(f"  {'module':<28} {'kernel model':<28} {'bound':<7} {'time/frame':>13}  {'MACs/frame':>19}")
        for _, r in slowest.iterrows():
            lines.append(f"  {r['module'] or '(top)':<28} {r['model']:<28} {r['bound']:<7} {r['time_s'] * 1e6:10.1f} us  "
                         f"{r['macs']:>14,.0f} MACs")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        energy = "n/a" if self.energy_J is None else f"{self.energy_J:.4g} J"
        head = f"<p>predicted {self.time_s * 1e3:.4g} ms/frame, energy {energy}, batch {self.batch}, {self.mode}</p>"
        return head + self.op_table().to_html(max_rows=30)


def predict(platform: Platform, count_or_model, inputs=None, *, mode: str = "forward", threads: int | None = None,
            trace: str = "auto") -> Prediction:
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
    threads : int, optional
        The thread count asked for; another than the platform's is refused in one line
        (calibrate at that thread count instead).
    trace : {"auto", "device", "meta"}
        Where a model is traced: ``auto`` (default) on the platform's device where it is
        this host's CPU (the kernels it dispatches, fused ones included), else on meta.

    Returns
    -------
    Prediction
    """
    if mode not in MODES:
        raise GroupConvError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not isinstance(platform, Platform):
        raise GroupConvError(f"platform must be a Platform, got {type(platform).__name__}")
    if trace not in ("auto", "device", "meta"):
        raise GroupConvError(f"trace must be one of auto, device, meta, got {trace!r}")
    platform.check_conditions(threads=threads)
    traced_on = "given"
    if hasattr(count_or_model, "ops") and hasattr(count_or_model, "batch"):
        ops, batch, counter = tuple(count_or_model.ops), int(count_or_model.batch), "count_module"
    else:
        if inputs is None:
            raise GroupConvError("predict needs inputs (a shape such as (1, 3, 224, 224)) with a model")
        traced_on = "cpu" if trace != "meta" and platform.device == "cpu" else "meta"
        if trace == "device" and traced_on == "meta":
            raise GroupConvError(f"cannot trace on the platform's device {platform.device!r} from this host; "
                                 "use trace='meta'")
        count = trace_counts(platform, count_or_model, inputs, mode=mode, where=traced_on)
        ops, batch, counter = tuple(count.ops), int(count.batch), "count_module"
        dtypes = [o.dtype for o in ops if o.macs > 0 and getattr(o, "dtype", None)]
        if dtypes:
            platform.check_conditions(dtype=dtypes[0])
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
                model=platform.model_name(o) or "roofline",
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
        traced_on=traced_on,
        threads=platform.threads,
    )


def trace_counts(platform: Platform, model, inputs, *, mode: str = "forward", where: str = "auto"):
    """Per-op counts (a ``ModelCount``) of ``model`` as ``platform`` prices them.

    ``where="cpu"`` (``auto`` on a CPU platform): one real run at the platform's thread
    count, so the trace holds the kernels the CPU dispatches; ``"meta"``: the meta trace.
    """
    if where == "auto":
        where = "cpu" if platform.device == "cpu" else "meta"
    from ..networks import count_module

    backward = mode == "forward_backward"
    if where == "meta":
        return count_module(model, inputs, backward=backward)
    import torch

    device = next((t.device for t in (*model.parameters(), *model.buffers())), None) if hasattr(model, "parameters") else None
    if device is not None and device.type not in ("cpu", "meta"):
        platform.check_conditions(device=str(device))
    previous = torch.get_num_threads()
    torch.set_num_threads(platform.threads)
    try:
        count = count_module(model, inputs, device="cpu", backward=backward)
    finally:
        torch.set_num_threads(previous)
    from .backward import collapse_backward_loops

    return collapse_backward_loops(collapse_loops(count, model), model)


def collapse_loops(count, model):
    """``count`` with the forward ops of each call of a :data:`~groupconv.platform.models.LOOP_MODULES` module (a GRU on
    a CPU: per time step a few matmuls and gate ops, dispatched from C++) merged into one op
    ``groupconv.rnn_loop`` (:func:`~groupconv.platform.models.collapse_loop_ops`). Other ops,
    and the backward phase, are unchanged."""
    return collapse_loop_ops(count, model, "forward")
