"""Count the conv and linear layers of any torch model from one forward pass.

:func:`count_module` runs the model once on zeros of the given shape with forward hooks
on every ``nn.Conv1d``, ``nn.Conv2d`` and ``nn.Linear``, and turns each call into a
:class:`~groupconv.cost.ConvLayer` built from the shapes it actually saw (so padding,
dilation, stride and ``padding="same"`` need no special cases: the output size is read,
not predicted).

Conventions
-----------
* The leading dimension of the input is the batch B; ``macs`` are per frame (per item
  of the batch), as everywhere in groupconv.
* A ``Conv1d`` on length L is a 1 x L map with a 1 x k kernel.
* A ``Linear`` applied to (B, ..., in) is a 1x1 conv on a 1 x P map, P = the product
  of the middle dimensions (P = 1 for the usual (B, in)).
* ``ConvLayer.stride`` is the stride when it is the same along both axes, else 1 (the
  input and output sizes, which the counts use, are always recorded exactly).
* A module called several times (shared weights) gives one layer per call (named
  ``name#2``, ``name#3`` ...); its parameters are counted once.
* Compute outside these three module types (batch norm, attention matmuls, functional
  ``F.conv2d`` calls, ``Conv3d``, transposed convs) is not counted; called modules of the
  unsupported conv types are listed in :attr:`ModelCount.uncounted`.

torch is imported when :func:`count_module` is called, not when this module is imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from .. import _validate as v
from ..cost import ConvLayer
from ..errors import GroupConvError
from ._totals import LayerTotals

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["ModelCount", "count_module"]


@dataclass(frozen=True)
class ModelCount(LayerTotals):
    """Conv and linear layers of a torch model, as seen in one forward pass.

    Parameters
    ----------
    layers : tuple of ConvLayer
        One per call of a conv or linear module, in execution order, named by the
        module's qualified name.
    input_shape : tuple of int
        The shape the model was run on; ``input_shape[0]`` is the batch.
    weight_params, bias_params : int
        Weights and biases of the counted modules (each module once).
    other_params : int
        Every other parameter of the model (batch norm, embeddings, modules not called).
    uncounted : tuple of str
        Names of called modules whose compute is not counted (Conv3d, transposed convs).
    """

    layers: tuple[ConvLayer, ...]
    input_shape: tuple[int, ...]
    weight_params: int
    bias_params: int
    other_params: int
    uncounted: tuple[str, ...] = field(default=())

    @property
    def batch(self) -> int:
        return self.input_shape[0]

    @property
    def params(self) -> int:
        """Weights + biases of the conv and linear modules (each module once)."""
        return self.weight_params + self.bias_params

    @property
    def total_params(self) -> int:
        """Every parameter of the model, ``sum(p.numel() for p in module.parameters())``."""
        return self.params + self.other_params

    def layer_table(self) -> pd.DataFrame:
        """One row per layer (``ConvLayer.as_dict()``)."""
        return pd.DataFrame([layer.as_dict() for layer in self.layers])

    def as_dict(self) -> dict[str, object]:
        """Totals and per-layer dicts as plain ints/strings (for JSON)."""
        return {
            "input_shape": list(self.input_shape),
            "batch": self.batch,
            "params": self.params,
            "weight_params": self.weight_params,
            "bias_params": self.bias_params,
            "other_params": self.other_params,
            "total_params": self.total_params,
            "macs": self.macs,
            "flops": self.flops,
            "activations": self.activations,
            "uncounted": list(self.uncounted),
            "layers": [layer.as_dict() for layer in self.layers],
        }


def count_module(module: torch.nn.Module, input_shape) -> ModelCount:
    """List the conv and linear layers of ``module`` with their exact counts.

    Parameters
    ----------
    module : torch.nn.Module
        Any model; it is run once, in eval mode and without gradients, on zeros of
        ``input_shape`` (on the device and with the dtype of its first parameter, so a
        model on the ``meta`` device is counted without computing anything). Its
        train/eval flags are restored afterwards.
    input_shape : sequence of int
        Input shape, batch first, e.g. ``(1, 3, 224, 224)``.

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
    shape = _check_shape(input_shape)
    import torch
    from torch import nn

    if not isinstance(module, nn.Module):
        raise GroupConvError(f"module must be a torch.nn.Module, got {type(module).__name__}")

    names = {id(m): name or type(m).__name__.lower() for name, m in module.named_modules()}
    calls: dict[int, int] = {}
    layers: list[ConvLayer] = []
    uncounted: list[str] = []
    counted_modules: dict[int, nn.Module] = {}

    def hook(mod, args, output):
        calls[id(mod)] = calls.get(id(mod), 0) + 1
        name = names[id(mod)]
        if calls[id(mod)] > 1:
            name = f"{name}#{calls[id(mod)]}"
        if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            layers.append(_layer_from_call(mod, args[0].shape, output.shape, name))
            counted_modules[id(mod)] = mod
        elif name not in uncounted:
            uncounted.append(name)

    handles = [
        m.register_forward_hook(hook)
        for m in module.modules()
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))
    ]
    first = next(iter(module.parameters()), None)
    x = torch.zeros(
        shape,
        dtype=first.dtype if first is not None else torch.float32,
        device=first.device if first is not None else "cpu",
    )
    modes = {m: m.training for m in module.modules()}
    try:
        module.eval()
        with torch.no_grad():
            module(x)
    except GroupConvError:
        raise
    except (RuntimeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GroupConvError(f"input_shape {shape} does not fit the module: {reason}") from None
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.training = training

    weights = sum(m.weight.numel() for m in counted_modules.values())
    biases = sum(m.bias.numel() for m in counted_modules.values() if m.bias is not None)
    total = sum(p.numel() for p in module.parameters())
    return ModelCount(
        layers=tuple(layers),
        input_shape=shape,
        weight_params=weights,
        bias_params=biases,
        other_params=total - weights - biases,
        uncounted=tuple(uncounted),
    )


def _check_shape(input_shape) -> tuple[int, ...]:
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise GroupConvError(f"input_shape must be a sequence of positive integers, got {input_shape!r}") from None
    if not shape:
        raise GroupConvError(f"input_shape must not be empty, got {input_shape!r}")
    for size in shape:
        v.positive_int("every input_shape entry", size)
    return tuple(int(size) for size in shape)


def _layer_from_call(mod, in_shape, out_shape, name: str) -> ConvLayer:
    """A ConvLayer for one call of a Conv1d, Conv2d or Linear with these shapes."""
    from torch import nn

    bias = mod.bias is not None
    if isinstance(mod, nn.Linear):
        lead = tuple(out_shape[:-1])
        batch = lead[0] if lead else 1
        positions = math.prod(lead[1:])
        return ConvLayer(
            mod.in_features, mod.out_features, 1, 1, positions, batch=batch, bias=bias,
            name=name, kind="linear",
        )
    spatial_dims = 2 if isinstance(mod, nn.Conv2d) else 1
    in_spatial = tuple(in_shape[-spatial_dims:])
    out_spatial = tuple(out_shape[-spatial_dims:])
    batched = len(out_shape) == spatial_dims + 2
    batch = out_shape[0] if batched else 1
    if spatial_dims == 1:  # a length-L signal is a 1 x L map
        in_spatial, out_spatial = (1, *in_spatial), (1, *out_spatial)
        kernel = (1, mod.kernel_size[0])
        stride = mod.stride[0]
    else:
        kernel = tuple(mod.kernel_size)
        stride = mod.stride[0] if mod.stride[0] == mod.stride[1] else 1
    return ConvLayer(
        mod.in_channels, mod.out_channels, kernel, out_spatial[0], out_spatial[1],
        groups=mod.groups, stride=stride, batch=batch, bias=bias,
        in_height=in_spatial[0], in_width=in_spatial[1], name=name, kind="conv",
    )
