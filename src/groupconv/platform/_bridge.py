"""Per-operator counts of a torch model: the operator counter, or a module-level stand-in.

:func:`count_ops` asks :func:`groupconv.networks.count_module` for per-operator counts
(the ``ops`` of its ``ModelCount``, one ``OpCount`` per aten call). Where the installed
counter predates per-operator counting (it returns conv and linear layers only), this
module records the same fields from forward hooks on the **leaf modules** instead: one
record per call of a conv, linear, norm, activation, pooling, dropout-free leaf, with
the MACs of the layer and the bytes of its inputs, weights and outputs. Functional ops
outside modules (residual adds, concatenation, shuffles) are then not seen; the
platform's network correction absorbs them on average. The stand-in goes away once the
per-operator counter is merged.

torch is imported inside the functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import GroupConvError

__all__ = ["OpRecord", "count_ops"]


@dataclass(frozen=True)
class OpRecord:
    """The ``OpCount`` fields the platform models read (per call, the whole batch)."""

    op: str
    op_class: str
    module: str
    phase: str
    input_shapes: tuple[tuple[int, ...], ...]
    output_shapes: tuple[tuple[int, ...], ...]
    dtype: str
    macs: int
    bytes_read: int
    bytes_written: int
    groups: int = 1
    layer: object = field(default=None, compare=False)


_ACTIVATIONS = ("ReLU", "ReLU6", "GELU", "SiLU", "Hardswish", "Hardsigmoid", "Sigmoid", "Tanh", "LeakyReLU", "ELU", "Mish")
_POOLS = ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d")
_NORMS = ("BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "InstanceNorm2d")


def _classify(mod) -> tuple[str, str] | None:
    """(op name, op_class) of a leaf module, None for modules that compute nothing."""
    from torch import nn

    name = type(mod).__name__
    tagged = getattr(mod, "_groupconv_op", None)  # calibration's own single-op modules
    if tagged is not None:
        return tuple(tagged)
    if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
        return "aten.convolution.default", "conv"
    if isinstance(mod, nn.Linear):
        return "aten.addmm.default" if mod.bias is not None else "aten.mm.default", "matmul"
    if name in _NORMS:
        return ("aten.native_layer_norm.default" if name == "LayerNorm" else "aten.native_batch_norm.default"), "norm"
    if name in _ACTIVATIONS:
        return f"aten.{name.lower()}.default", "activation"
    if name in _POOLS:
        return f"aten.{name.lower()}.default", "pool"
    if name == "Softmax":
        return "aten._softmax.default", "softmax"
    if name in ("Flatten", "Identity", "Dropout", "Dropout2d", "Unflatten"):
        return None
    return None


def _shapes(value) -> tuple[tuple[int, ...], ...]:
    import torch

    if isinstance(value, torch.Tensor):
        return (tuple(int(s) for s in value.shape),)
    if isinstance(value, (tuple, list)):
        return tuple(s for v in value for s in _shapes(v))
    return ()


def _hook_count(model, inputs: tuple, backward: bool) -> tuple[list[OpRecord], int]:
    import torch
    from torch import nn

    from ..cost import ConvLayer

    names = {id(m): name for name, m in model.named_modules()}
    records: list[OpRecord] = []

    def hook(mod, args, output):
        kind = _classify(mod)
        if kind is None:
            return
        op, op_class = kind
        x = args[0]
        itemsize = x.element_size()
        in_shapes = _shapes(args)
        out_shapes = _shapes(output)
        weights = [p for p in mod.parameters(recurse=False)]
        w_shapes = tuple(tuple(p.shape) for p in weights)
        out_numel = sum(math.prod(s) for s in out_shapes)
        in_numel = sum(math.prod(s) for s in in_shapes)
        w_numel = sum(p.numel() for p in weights)
        groups, layer, macs = 1, None, 0
        if op_class == "conv":
            groups = int(mod.groups)
            w = mod.weight
            macs = out_numel * (w.shape[1]) * math.prod(w.shape[2:])
            stride = mod.stride
            k = tuple(w.shape[2:]) if w.dim() == 4 else (1, int(w.shape[2]))
            out = out_shapes[0]
            layer = ConvLayer(
                in_channels=int(x.shape[1]), out_channels=int(w.shape[0]), kernel=k,
                out_height=int(out[2]) if len(out) == 4 else 1, out_width=int(out[-1]), groups=groups,
                stride=int(stride[0]) if len(set(stride)) == 1 else 1, batch=int(x.shape[0]),
                bias=mod.bias is not None,
                in_height=int(x.shape[2]) if x.dim() == 4 else 1, in_width=int(x.shape[-1]),
                name=names.get(id(mod), ""),
            )
        elif op_class == "matmul":
            macs = out_numel * int(mod.in_features)
        records.append(
            OpRecord(
                op=op, op_class=op_class, module=names.get(id(mod), ""), phase="forward",
                input_shapes=in_shapes + w_shapes, output_shapes=out_shapes,
                dtype=str(x.dtype).removeprefix("torch."), macs=int(macs),
                bytes_read=int((in_numel + w_numel) * itemsize), bytes_written=int(out_numel * itemsize),
                groups=groups, layer=layer,
            )
        )

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*inputs)
    except GroupConvError:
        raise
    except Exception as exc:  # the model does not run on this input
        shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
        raise GroupConvError(f"the model does not run on input shape {shapes}: {type(exc).__name__}: {exc}".split("\n")[0]) from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if backward:
        # backward of a conv/linear: grad wrt input and wrt weight, each as many MACs as the
        # forward; other ops about the traffic of their forward, twice
        back = [
            OpRecord(
                op=r.op.replace(".default", "_backward.default"), op_class=r.op_class, module=r.module,
                phase="backward", input_shapes=r.input_shapes, output_shapes=r.output_shapes, dtype=r.dtype,
                macs=2 * r.macs, bytes_read=2 * r.bytes_read, bytes_written=2 * r.bytes_written,
                groups=r.groups, layer=r.layer,
            )
            for r in reversed(records)
        ]
        records = records + back
    return records, int(inputs[0].shape[0])


def _as_inputs(model, inputs):
    """The inputs as a tuple of tensors (zeros for shapes) on the model's device."""
    import torch

    try:
        first = next(model.parameters())
        device, dtype = first.device, first.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, tuple) and inputs and all(isinstance(t, torch.Tensor) for t in inputs):
        return inputs
    if isinstance(inputs, (tuple, list)) and inputs and all(isinstance(s, int) for s in inputs):
        shapes = [tuple(inputs)]
    elif isinstance(inputs, (tuple, list)) and inputs and all(isinstance(s, (tuple, list)) for s in inputs):
        shapes = [tuple(s) for s in inputs]
    else:
        raise GroupConvError(f"inputs must be a shape, a list of shapes or tensors, got {inputs!r}")
    for s in shapes:
        if not s or any((not isinstance(d, int)) or d < 1 for d in s):
            raise GroupConvError(f"input shape {s} must be positive integers")
    return tuple(torch.zeros(s, device=device, dtype=dtype) for s in shapes)


def count_ops(model, inputs, *, backward: bool = False):
    """Per-operator records of one pass of ``model`` on ``inputs``; (ops, batch, source).

    ``source`` is ``"count_module"`` when the per-operator counter answered, else
    ``"module-hooks"`` (see the module docstring).
    """
    from torch import nn

    from .. import networks

    if not isinstance(model, nn.Module):
        raise GroupConvError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    try:
        count = networks.count_module(model, inputs, backward=backward)
    except TypeError:
        count = None  # the layer-only counter: no per-operator keyword arguments
    if count is not None and hasattr(count, "ops"):
        return tuple(count.ops), int(count.batch), "count_module"
    records, batch = _hook_count(model, _as_inputs(model, inputs), backward)
    return tuple(records), batch, "module-hooks"
