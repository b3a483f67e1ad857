"""Count any torch model at the operator level: every op's MACs and bytes, per module, per frame.

:func:`count_module` runs the model once under a ``TorchDispatchMode``
(:mod:`groupconv.networks.trace`), by default on the ``meta`` device so that nothing is
computed, and records every aten op with its module path, shapes, dtype, MACs and bytes
read and written (formulas in :mod:`groupconv.cost.ops`, which imports no torch).

Conventions
-----------
* **Per frame** means per item of the batch the caller declares (``batch=``; default:
  the leading dimension of the first input), never an op's own leading dimension, so a
  model that folds (B, T) into its batch, or concatenates its input with itself, is
  still divided by B. :class:`OpCount` values are per call (the whole batch).
* ``macs``: multiply-accumulates (convolutions of any rank, transposed and grouped;
  ``mm``/``addmm``/``bmm``/``baddbmm``; attention in every backend); ``flops = 2 macs``.
* ``bytes``: bytes read + bytes written by every op (views move nothing); weights are
  read once per call, so per-frame bytes fall with the batch, as in
  :class:`~groupconv.cost.ConvLayer`'s traffic model.
* ``params`` means **weights of the MAC-performing layers** (the tensors multiplied in a
  conv or a matmul), the E2GC paper's P, the same as
  :attr:`groupconv.networks.Network.params`. A weight computed in ``forward``
  (``weight_norm``, ``spectral_norm``, ``F.conv2d(x, 2 * w)``) counts every parameter it
  was computed from: a parameter is a weight when a multiplied operand of a MAC op is
  the parameter, a view of it, or a tensor computed from parameters (and buffers and
  scalars) alone. ``bias_params`` are the biases of those
  layers, ``other_params`` everything else (batch norm, embeddings, unused modules) and
  ``total_params`` every unique parameter (tied and shared parameters once).
* :attr:`ModelCount.layers` holds a :class:`~groupconv.cost.ConvLayer` per forward conv
  or matmul call: a conv on N images is a layer of ``batch=N`` (a Conv1d on length L is a
  1 x L map; a Conv3d folds depth into height: kernel ``(kd*kh, kw)``, map
  ``(D*H, W)``); a transposed conv is its adjoint conv (input and output swapped, the
  same MACs, weights and activations); ``mm``/``addmm`` (M, K) x (K, N) is a 1x1 conv
  K -> N on a 1 x M/B map of batch B; ``bmm`` with b = B*h matrices is a 1x1 conv with
  h groups. The per-frame totals come from the ops, not from the layers.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from .. import _validate as v
from ..cost import ConvLayer
from ..cost import ops as cost_ops
from ..errors import GroupConvError
from ._text import human, render

__all__ = ["ModelCount", "OpCount", "count_module"]

_MAC_CLASSES = frozenset(("conv", "conv_transpose", "matmul", "attention", "rnn"))
# argument positions of the bias (added, not multiplied) in the MAC ops that take one
_BIAS_POSITION = {
    "aten.convolution": (2,), "aten._convolution": (2,), "aten.convolution_overrideable": (2,),
    "aten.mkldnn_convolution": (2,), "aten._slow_conv2d_forward": (3,),
    "aten.addmm": (0,), "aten._addmm_activation": (0,), "aten.baddbmm": (0,), "aten.addbmm": (0,),
    "aten.addmv": (0,), "aten.mkldnn_rnn_layer": (3, 4), "aten._native_multi_head_attention": (6, 8),
    "aten._transformer_encoder_layer_fwd": (4, 6, 15, 17),
}
# parameters a fused MAC op takes that it does not multiply (the fused layer norms)
_NOT_MULTIPLIED = {"aten._transformer_encoder_layer_fwd": (10, 11, 12, 13)}
# convs with torch's (N, C, *spatial) input and (C_out, C_in / g, *k) weight layout
_CONV_PACKETS = frozenset(
    p for p, (c, _) in cost_ops.MAC_FORMULAS.items() if c in ("conv", "conv_transpose") and p != "aten.conv_tbc"
)


def _per_frame(total: int, batch: int):
    return total // batch if total % batch == 0 else total / batch


@dataclass(frozen=True)
class OpCount:
    """One aten op call: what ran, where, on what shapes, and what it cost.

    Parameters
    ----------
    op : str
        aten overload name, e.g. ``"aten.convolution.default"``.
    op_class : str
        One of ``groupconv.cost.ops.OP_CLASSES`` ("conv", "matmul", "norm", ...).
    module : str
        Qualified name of the innermost module running ("" at top level).
    phase : {"forward", "backward"}
    input_shapes, output_shapes : tuple of tuple of int
        Shapes of the tensor arguments and of the tensors returned.
    dtype : str
        dtype of the first tensor argument, e.g. ``"float32"``.
    macs, bytes_read, bytes_written : int
        Of the whole call (the whole batch, not per frame).
    layer : ConvLayer or None
        The call as a cost-model layer (convs and matmuls only).
    groups : int
        Groups of a convolution, else 1.
    strided_bytes : int
        Bytes of the tensor arguments that are not row-major contiguous (permuted or
        transposed views, strided slices, channels-last maps;
        :attr:`groupconv.cost.ops.TensorSpec.contiguous`): a kernel that needs contiguous
        inputs copies them first.
    """

    op: str
    op_class: str
    module: str
    phase: str
    input_shapes: tuple
    output_shapes: tuple
    dtype: str
    macs: int
    bytes_read: int
    bytes_written: int
    layer: ConvLayer | None = None
    groups: int = 1
    strided_bytes: int = 0

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def bytes(self) -> int:
        """Bytes read + written by the call."""
        return self.bytes_read + self.bytes_written

    @property
    def arithmetic_intensity(self) -> float:
        """MACs per byte moved (0 for an op that moves nothing)."""
        return self.macs / self.bytes if self.bytes else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "op": self.op, "op_class": self.op_class, "module": self.module, "phase": self.phase,
            "input_shapes": [list(s) for s in self.input_shapes],
            "output_shapes": [list(s) for s in self.output_shapes],
            "dtype": self.dtype, "macs": self.macs, "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written, "groups": self.groups,
            "arithmetic_intensity": self.arithmetic_intensity,
        }


@dataclass(frozen=True)
class ModelCount:
    """Every op of one traced run, and per-frame totals that cannot mislead.

    Parameters
    ----------
    ops : tuple of OpCount
        In execution order (values per call).
    batch : int
        The declared number of frames; every per-frame total is divided by it.
    input_shapes : tuple
        Shapes of the positional inputs the model ran on.
    params, bias_params, total_params : int
        Weights of the MAC-performing layers, their biases, every unique parameter.
    layers : tuple of ConvLayer
        The forward convs and matmuls as cost-model layers (see the module docstring).
    unsupported : dict
        aten op name -> calls, for ops with no MAC formula that are not known to be
        MAC-free (their bytes are counted, their MACs are not).
    uncalled_modules : tuple of str
        Modules of the model whose forward never ran through ``__call__`` (never
        called, or called as ``.forward`` directly: then their ops are counted under the
        caller).
    module_params : dict
        Qualified module name -> unique parameters in its subtree (for the module table).
    module_outputs : dict
        Qualified module name -> shapes of the tensors its first call returned.
    module_peak_bytes : dict
        Qualified module name -> estimated peak memory while it ran (see
        :attr:`peak_bytes`), the whole batch.
    resident_bytes : int
        Bytes of the parameters, buffers and inputs (alive for the whole run).
    """

    ops: tuple[OpCount, ...]
    batch: int
    input_shapes: tuple
    params: int
    bias_params: int
    total_params: int
    layers: tuple[ConvLayer, ...] = ()
    unsupported: dict = field(default_factory=dict)
    uncalled_modules: tuple[str, ...] = ()
    module_params: dict = field(default_factory=dict, repr=False, compare=False)
    module_outputs: dict = field(default_factory=dict, repr=False, compare=False)
    module_peak_bytes: dict = field(default_factory=dict, repr=False, compare=False)
    resident_bytes: int = 0

    # --- totals, per frame ---------------------------------------------------------
    @property
    def other_params(self) -> int:
        """Parameters that are neither MAC weights nor their biases (batch norm, embeddings ...)."""
        return self.total_params - self.params - self.bias_params

    @property
    def macs(self):
        """Multiply-accumulates per frame (every recorded op, divided by ``batch``).

        An int when ``batch`` divides the total (always for models that treat the items
        of a batch alike), else a float. The same holds for the other per-frame totals.
        """
        return _per_frame(sum(o.macs for o in self.ops), self.batch)

    @property
    def flops(self):
        """FLOPs per frame, 2 * macs."""
        return _per_frame(2 * sum(o.macs for o in self.ops), self.batch)

    @property
    def bytes_read(self):
        return _per_frame(sum(o.bytes_read for o in self.ops), self.batch)

    @property
    def bytes_written(self):
        return _per_frame(sum(o.bytes_written for o in self.ops), self.batch)

    @property
    def bytes(self):
        """Bytes read + written per frame, unfused (every op's own traffic)."""
        return _per_frame(sum(o.bytes_read + o.bytes_written for o in self.ops), self.batch)

    @property
    def arithmetic_intensity(self) -> float:
        """MACs per byte moved over the whole run."""
        moved = sum(o.bytes_read + o.bytes_written for o in self.ops)
        return sum(o.macs for o in self.ops) / moved if moved else 0.0

    @property
    def peak_bytes(self) -> int:
        """Estimated peak memory of the run (whole batch, not per frame).

        Parameters, buffers and inputs (:attr:`resident_bytes`) plus the largest total of
        op outputs alive at once: every tensor an op writes (views and in-place results
        add nothing) is counted from the op that makes it until Python frees it, as the
        caching allocator would see it with every block freed at once. Not counted:
        kernel workspaces, allocator rounding and fragmentation, the CUDA context.
        """
        return self.module_peak_bytes.get("", self.resident_bytes)

    @property
    def activations(self) -> int:
        """Sum over :attr:`layers` of input + output elements per image (as Network's)."""
        return sum(layer.activations for layer in self.layers)

    # --- tables --------------------------------------------------------------------
    def op_calls(self) -> pd.DataFrame:
        """One row per op call (values per call)."""
        return pd.DataFrame([o.as_dict() for o in self.ops])

    def op_table(self, by: str = "op") -> pd.DataFrame:
        """Per operator type (``by="op"``) or per op class (``by="op_class"``), per frame.

        Columns: ``by``, ``calls``, ``macs``, ``bytes`` (per frame), ``share_macs``,
        ``share_bytes`` and ``arithmetic_intensity``; sorted by bytes.
        """
        v.one_of("op_table by", by, ("op", "op_class"))
        rows: dict[str, list] = {}
        for o in self.ops:
            row = rows.setdefault(getattr(o, by), [0, 0, 0])
            row[0] += 1
            row[1] += o.macs
            row[2] += o.bytes_read + o.bytes_written
        total_macs = sum(r[1] for r in rows.values()) or 1
        total_bytes = sum(r[2] for r in rows.values()) or 1
        table = pd.DataFrame(
            [
                {
                    by: key, "calls": calls, "macs": _per_frame(macs, self.batch),
                    "bytes": _per_frame(moved, self.batch), "share_macs": macs / total_macs,
                    "share_bytes": moved / total_bytes,
                    "arithmetic_intensity": macs / moved if moved else 0.0,
                }
                for key, (calls, macs, moved) in rows.items()
            ]
        )
        return table.sort_values("bytes", ascending=False, kind="stable").reset_index(drop=True) if len(table) else table

    def layer_table(self) -> pd.DataFrame:
        """One row per layer (``ConvLayer.as_dict()``)."""
        return pd.DataFrame([layer.as_dict() for layer in self.layers])

    def module_table(self, depth: int | None = 2) -> pd.DataFrame:
        """Per-module tree to ``depth`` (like fvcore's ``flop_count_table``), per frame.

        One row per module at depth <= ``depth`` (the model itself is ``"model"`` at
        depth 0), in first-call order, with the ops of its whole subtree: ``params``
        (unique parameters of the subtree), ``macs``, ``bytes``, ``arithmetic_intensity``,
        ``output_shape`` (the shapes its first call returned, e.g. ``"2x64x56x56"``,
        several joined by ``", "``) and ``peak_bytes`` (estimated peak memory while it
        ran, whole batch: see :attr:`peak_bytes`). ``depth=None`` lists every module.
        """
        if depth is not None:
            depth = v.nonnegative_int("depth", depth)
        sums: dict[str, list] = {"": [0, 0]}
        for o in self.ops:
            parts = o.module.split(".") if o.module else []
            keys = [""] + [".".join(parts[: i + 1]) for i in range(len(parts))]
            for key in keys if depth is None else keys[: depth + 1]:
                row = sums.setdefault(key, [0, 0])
                row[0] += o.macs
                row[1] += o.bytes_read + o.bytes_written
        rows = []
        for key, (macs, moved) in sums.items():
            rows.append({
                "module": key or "model",
                "depth": 0 if not key else key.count(".") + 1,
                "params": self.module_params.get(key, 0),
                "macs": _per_frame(macs, self.batch),
                "bytes": _per_frame(moved, self.batch),
                "arithmetic_intensity": macs / moved if moved else 0.0,
                "output_shape": ", ".join("x".join(map(str, sh)) for sh in self.module_outputs.get(key, ())),
                "peak_bytes": self.module_peak_bytes.get(key, 0),
            })
        return pd.DataFrame(rows)

    # --- export --------------------------------------------------------------------
    def as_dict(self) -> dict[str, object]:
        """Totals (per frame), per-op and per-layer lists as plain values (for JSON)."""
        return {
            "batch": self.batch,
            "input_shapes": [list(s) for s in self.input_shapes],
            "macs": self.macs,
            "flops": self.flops,
            "bytes": self.bytes,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "arithmetic_intensity": self.arithmetic_intensity,
            "params": self.params,
            "bias_params": self.bias_params,
            "other_params": self.other_params,
            "total_params": self.total_params,
            "peak_bytes": self.peak_bytes,
            "resident_bytes": self.resident_bytes,
            "unsupported": dict(self.unsupported),
            "uncalled_modules": list(self.uncalled_modules),
            "op_types": self.op_table().to_dict(orient="records"),
            "ops": [o.as_dict() for o in self.ops],
            "layers": [layer.as_dict() for layer in self.layers],
        }

    def to_json(self, path=None, **dump_kwargs) -> str:
        """:meth:`as_dict` as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.as_dict(), **({"indent": 2} | dump_kwargs))
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
        return text

    def to_csv(self, path=None, table: str = "ops") -> str:
        """One of the tables as CSV: ``"ops"`` (per call), ``"op_types"``, ``"layers"``, ``"modules"``."""
        v.one_of("table", table, ("ops", "op_types", "layers", "modules"))
        frame = {
            "ops": lambda: self.op_calls().assign(
                input_shapes=lambda d: d["input_shapes"].map(json.dumps),
                output_shapes=lambda d: d["output_shapes"].map(json.dumps),
            ) if self.ops else pd.DataFrame(),
            "op_types": self.op_table,
            "layers": self.layer_table,
            "modules": lambda: self.module_table(None),
        }[table]()
        buf = io.StringIO()
        frame.to_csv(buf, index=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(buf.getvalue())
        return buf.getvalue()

    def summary(self, label: str = "model", depth: int = 2) -> str:
        """Totals per frame, the module tree to ``depth`` and the per-op-class table, as text
        (``label`` names the model in the first line)."""
        shapes = " ".join("x".join(map(str, s)) for s in self.input_shapes)
        lines = [
            f"{label}: input {shapes}, batch {self.batch} (per frame below)",
            f"MACs {human(self.macs)} ({self.macs:,}), FLOPs {human(self.flops)}, "
            f"bytes {human(self.bytes, 'B')} unfused (read {human(self.bytes_read, 'B')}, "
            f"written {human(self.bytes_written, 'B')}), arithmetic intensity {self.arithmetic_intensity:.2f} MAC/B",
            f"params {self.params:,} (weights of convs and matmuls), biases {self.bias_params:,}, "
            f"other {self.other_params:,}, total {self.total_params:,}",
            f"peak memory {human(self.peak_bytes, 'B')} estimated, whole batch (parameters, buffers and inputs "
            f"{human(self.resident_bytes, 'B')} + op outputs alive at once)",
            "",
        ]
        table = self.module_table(depth)
        rows = [
            ("  " * int(r.depth) + r.module, human(r.params) if r.params else "", human(r.macs) if r.macs else "",
             human(r.bytes, "B"), f"{r.arithmetic_intensity:.2f}", r.output_shape,
             human(r.peak_bytes, "B") if r.peak_bytes else "")
            for r in table.itertuples()
        ]
        lines += render(("module", "params", "MACs", "bytes", "MAC/B", "output shape", "peak mem"), rows, {1, 2, 3, 4, 6})
        lines.append("")
        ops = self.op_table(by="op_class")
        rows = [
            (r.op_class, str(r.calls), human(r.macs) if r.macs else "", human(r.bytes, "B"),
             f"{100 * r.share_bytes:.1f} %", f"{r.arithmetic_intensity:.2f}")
            for r in ops.itertuples()
        ]
        lines += render(("op class", "calls", "MACs", "bytes", "bytes %", "MAC/B"), rows, {1, 2, 3, 4, 5})
        if self.uncalled_modules:
            shown = ", ".join(self.uncalled_modules[:8]) + (" ..." if len(self.uncalled_modules) > 8 else "")
            lines.append(f"\nmodules never called through __call__ ({len(self.uncalled_modules)}): {shown}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = (
            f"<p>{self.macs:,} MACs, {self.bytes:,} bytes per frame (batch {self.batch}), "
            f"params {self.params:,} (total {self.total_params:,})"
            + (f"; <b>unsupported ops</b>: {dict(self.unsupported)}" if self.unsupported else "")
            + "</p>"
        )
        return head + self.module_table(2).to_html(index=False)


def count_module(model, inputs, *, kwargs=None, batch=None, device="meta", backward=False, training=None) -> ModelCount:
    """Count every aten op of one run of ``model``: MACs, bytes, module, shapes.

    Parameters
    ----------
    model : torch.nn.Module
        Any model. It is not modified: its train/eval flags are restored, and on
        ``device="meta"`` its parameters and buffers are swapped for meta tensors only
        for the run. ``nn.DataParallel`` and ``DistributedDataParallel`` are unwrapped
        (their ``.module`` is counted).
    inputs : shape, list of shapes, tensor, tuple of tensors, dict, or None
        A shape such as ``(1, 3, 224, 224)`` means zeros of the model's float dtype;
        tensors (integer token ids, masks ...) are moved to ``device`` as they are. A
        dict is the model's keyword arguments (``model(**inputs)``); ``None`` (or
        ``()``) with ``kwargs`` calls the model with keywords only.
    kwargs : dict, optional
        Keyword inputs (tensors are moved to ``device``).
    batch : int, optional
        The declared number of frames: every per-frame total is divided by it. Default:
        the leading dimension of the first input (positional, else the first keyword
        tensor).
    device : str or None
        ``"meta"`` (default) counts without computing anything; ``None`` counts where
        the model is (e.g. ``"cpu"`` to run the real kernels).
    backward : bool
        Also run and record the backward pass (ops tagged ``phase="backward"``).
    training : bool, optional
        Run in training mode (default: ``backward``). Without it the model runs in eval
        mode under ``torch.no_grad()`` (inference).

    Returns
    -------
    ModelCount

    Examples
    --------
    >>> import torch
    >>> conv = torch.nn.Conv2d(32, 64, 3, padding=1, groups=4, bias=False)
    >>> count_module(conv, (2, 32, 8, 8)).macs  # 64 * (32 / 4) * 9 * 8 * 8
    294912
    """
    from .trace import trace_model

    trace, unique = trace_model(model, inputs, kwargs=kwargs, device=device, backward=backward, training=training)
    model = trace.model  # DataParallel / DistributedDataParallel unwrapped
    if batch is None:
        first = trace.input_shapes[0] if trace.input_shapes else ()
        if not first:
            raise GroupConvError("the first input is a scalar or there is no tensor input; declare batch= (frames per run)")
        batch = first[0]
    batch = v.positive_int("batch", batch)

    weights: dict[int, object] = {}
    biases: dict[int, object] = {}
    for raw in trace.ops:
        if raw.cost.op_class in _MAC_CLASSES and raw.param_args:
            bias_at = _BIAS_POSITION.get(raw.packet, ())
            skip = _NOT_MULTIPLIED.get(raw.packet, ())
            for pos, p in raw.param_args:
                if pos not in skip:
                    (biases if pos in bias_at else weights)[id(p)] = p
    # (param_args also names the parameters a weight was computed from in the forward:
    # weight_norm's g and v, spectral_norm's weight_orig, F.conv2d(x, 2 * w)'s w)
    # a bias added by a separate op (Linear on 3-D input, GRU's b_hn): a parameter with
    # "bias" in its name, owned by a module that owns a counted weight
    owned: dict[int, list] = {}
    owner_of: dict[int, int] = {}
    for mod in model.modules():
        for pname, p in mod.named_parameters(recurse=False):
            owner_of.setdefault(id(p), id(mod))
            owned.setdefault(id(mod), []).append((pname, p))
    for mod_id in {owner_of.get(i) for i in weights}:
        for pname, p in owned.get(mod_id, ()):
            if "bias" in pname and id(p) not in weights:
                biases[id(p)] = p

    root = type(model).__name__.lower()
    seen: Counter = Counter()
    ops, layers = [], []
    unsupported: Counter = Counter()
    for raw in trace.ops:
        layer, groups = None, 1
        if raw.cost.op_class in _MAC_CLASSES and raw.phase == "forward" and raw.cost.macs:
            base = raw.module or root
            seen[base] += 1
            name = base if seen[base] == 1 else f"{base}#{seen[base]}"
            layer, groups = _layer_of(raw, name, batch)
            if layer is not None:
                layers.append(layer)
        elif raw.packet == "aten.convolution_backward":
            groups = int(raw.args[9])
        elif raw.packet in _CONV_PACKETS:
            groups = _conv_groups(raw)
        if not raw.cost.known:
            unsupported[raw.op] += 1
        ops.append(OpCount(
            raw.op, raw.cost.op_class, raw.module, raw.phase,
            tuple(s.shape for s in raw.inputs), tuple(s.shape for s in raw.outputs), raw.dtype,
            raw.cost.macs, raw.cost.bytes_read, raw.cost.bytes_written, layer, groups,
            sum(t.nbytes for t in raw.inputs if not t.contiguous),
        ))

    from torch import nn

    containers = (nn.ModuleList, nn.ModuleDict, nn.ParameterList, nn.ParameterDict)
    uncalled = tuple(
        name for name, m in model.named_modules()
        if id(m) not in trace.called and name and not isinstance(m, containers)
    )
    module_params = {name: _numel_once(m.parameters()) for name, m in model.named_modules()}
    peaks: dict[str, int] = {}
    for raw in trace.ops:
        parts = raw.module.split(".") if raw.module else []
        for key in [""] + [".".join(parts[: i + 1]) for i in range(len(parts))]:
            if raw.live_bytes > peaks.get(key, -1):
                peaks[key] = raw.live_bytes
    return ModelCount(
        ops=tuple(ops),
        batch=batch,
        input_shapes=trace.input_shapes,
        params=_numel_once(weights.values()),
        bias_params=_numel_once(biases.values()),
        total_params=_numel_once(unique),
        layers=tuple(layers),
        unsupported=dict(unsupported),
        uncalled_modules=uncalled,
        module_params=module_params,
        module_outputs=dict(trace.output_shapes),
        module_peak_bytes={k: trace.resident_bytes + p for k, p in peaks.items()},
        resident_bytes=trace.resident_bytes,
    )


def _numel_once(params) -> int:
    """Elements of ``params``, each tensor once: by identity, and on a real device also by
    memory (two Parameter objects over one storage, e.g. ``nn.Parameter(other.data)``)."""
    seen: set = set()
    total = 0
    for p in params:
        key = id(p) if p.device.type == "meta" else (p.device, p.data_ptr(), tuple(p.shape), p.stride())
        if key not in seen:
            seen.add(key)
            total += p.numel()
    return total


def _conv_groups(raw) -> int:
    x, w, out = raw.args[0], raw.args[1], raw.outputs[0]
    transposed = _is_transposed(raw)
    return out.shape[1] // w.shape[1] if transposed else x.shape[1] // w.shape[1]


def _is_transposed(raw) -> bool:
    if raw.cost.op_class == "conv_transpose":
        return True
    return raw.packet in ("aten.convolution", "aten._convolution", "aten.convolution_overrideable") and bool(raw.args[6])


def _stride_of(raw) -> int:
    stride = raw.args[3] if raw.packet in ("aten.convolution", "aten._convolution", "aten.convolution_overrideable") else None
    if isinstance(stride, (list, tuple)) and stride and all(s == stride[0] for s in stride):
        return int(stride[0])
    return 1


def _layer_of(raw, name: str, batch: int):
    """The call as a ConvLayer, and its groups (see the module docstring)."""
    if raw.packet in _CONV_PACKETS and raw.packet != "aten.convolution_backward":
        x, w, out = raw.args[0].shape, raw.args[1].shape, raw.outputs[0].shape
        transposed = _is_transposed(raw)
        groups = _conv_groups(raw)
        if len(x) == len(w) - 1:  # unbatched input
            x, out = (1, *x), (1, *out)
        dims = len(w) - 2
        kernel, in_sp, out_sp = tuple(w[2:]), tuple(x[2:]), tuple(out[2:])
        if dims == 1:
            kernel, in_sp, out_sp = (1, *kernel), (1, *in_sp), (1, *out_sp)
        elif dims >= 3:
            kernel = (math.prod(kernel[:-1]), kernel[-1])
            in_sp = (math.prod(in_sp[:-1]), in_sp[-1])
            out_sp = (math.prod(out_sp[:-1]), out_sp[-1])
        bias_at = _BIAS_POSITION.get(raw.packet, (-1,))[0]
        has_bias = 0 <= bias_at < len(raw.args) and isinstance(raw.args[bias_at], cost_ops.TensorSpec)
        stride = _stride_of(raw)
        if transposed:  # its adjoint conv: C_out -> C_in from the output map to the input map
            c_in, c_out, src, dst = out[1], x[1], out_sp, in_sp
        else:
            c_in, c_out, src, dst = x[1], out[1], in_sp, out_sp
        layer = ConvLayer(
            c_in, c_out, kernel, dst[0], dst[1], groups=groups, stride=stride, batch=x[0],
            bias=has_bias, in_height=src[0], in_width=src[1], name=name, kind="conv",
        )
        return layer, groups
    a_spec, b_spec, has_bias = _matmul_operands(raw)
    if a_spec is None:
        return None, 1
    a, b = a_spec.shape, b_spec.shape
    if len(a) == 2 and len(b) == 2:
        m, k, n = a[0], a[1], b[1]
        frames = batch if m % batch == 0 else 1
        return ConvLayer(k, n, 1, 1, m // frames, batch=frames, bias=has_bias, name=name, kind="linear"), 1
    if len(a) == 3 and len(b) == 3:
        nb, m, k, n = a[0], a[1], a[2], b[2]
        if b_spec.stored is not None and b_spec.stored == k * n:
            # one matrix broadcast over the nb products (F.linear on a 3-D input whose
            # batch dimension is not first, nn.MultiheadAttention(batch_first=True)):
            # the same layer as mm (nb*m, k) x (k, n)
            rows = nb * m
            frames = batch if rows % batch == 0 else 1
            return ConvLayer(k, n, 1, 1, rows // frames, batch=frames, bias=has_bias, name=name, kind="linear"), 1
        if nb % batch == 0:  # B*h matrices: h groups per frame
            frames, g, width = batch, nb // batch, m
        elif (nb * m) % batch == 0:
            # the batch is folded into the rows (einsum "bld,de->ble" as one (1, B*L, d)
            # product) or split across the nb products: with d = gcd(nb, B), each frame
            # holds nb/d of the matrices and m*d/B of their rows (an integer whenever B
            # divides nb*m), so the layer's per-frame MACs are the op's MACs / B
            d = math.gcd(nb, batch)
            frames, g, width = batch, nb // d, m * d // batch
        else:  # the op does not split into B equal frames: one layer of the whole call
            frames, g, width = 1, nb, m
        return ConvLayer(k * g, n * g, 1, 1, width, groups=g, batch=frames, bias=has_bias, name=name, kind="linear"), 1
    return None, 1


def _matmul_operands(raw):
    """(A, B, has_bias) of a matrix product whose operands are (M, K) x (K, N) or batched."""
    if raw.packet in ("aten.mm", "aten.bmm", "aten._int_mm", "aten._scaled_mm"):
        return raw.args[0], raw.args[1], False
    if raw.packet in ("aten.addmm", "aten._addmm_activation", "aten.baddbmm"):
        return raw.args[1], raw.args[2], True
    return None, None, False
