"""Time the backward of one op on its own, as a training step runs it (torch builders).

:func:`build_backward` turns a backward spec (:func:`~groupconv.platform.backward.backward_specs`)
into a module whose call is exactly the backward pass of the op: the forward op of the
same spec (:func:`~groupconv.platform.modules.build_spec`) is run in training mode with
gradients, as 1 to 4 copies (own weights, own copy of the input: about 16 MiB of inputs
in all), and each call of the module runs
``torch.autograd.grad(outputs, [inputs, *parameters], grad_outs, retain_graph=True)`` with
fixed gradients of ones: the autograd nodes of those ops, their kernels and the engine's
work, nothing else and nothing subtracted; the row's time is the call's over the copies.
In one call the engine's set-up of a backward pass (about 18 us here, paid once per
training step) is shared by the copies, and the saved activations of one copy are out of
cache when its backward runs, as in a network. :func:`measure_backward` times it with the
calibration's timing (:func:`groupconv.measure.fastest_window`, at the platform's thread
count: the CPU backward runs on the calling thread) and describes the row by the backward
kernel that does the work (:func:`~groupconv.platform.backward.backward_features`).

torch is imported when a function is called, not with this module.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from ..errors import GroupConvError
from .backward import backward_features, collapse_backward_loops, forward_spec
from .runs import feature_columns
from .specs import Spec

__all__ = ["build_backward", "measure_backward"]


def build_backward(spec: Spec, device: str, dtype, copies: int | None = None):
    """``(module, input, op, copies)``: ``module(x)`` runs the backward of ``copies`` copies of
    the spec's op at once (``op`` is the first), each on its own copy of the input."""
    import torch
    from torch import nn

    from .modules import build_spec, one_copy

    made = []
    n = copies or 1
    while len(made) < n:
        fwd, x, ring = build_spec(forward_spec(spec), device, dtype)
        if copies is None:  # about 16 MiB of inputs in all, 1 to 4 copies
            n = copies = int(min(4, max(1, (16 * 2**20) // max(1, x.numel() * x.element_size()))))
        mods = list(fwd.copies) if ring > 1 or type(fwd).__name__ == "Ring" else [one_copy(fwd, ring)]
        made += mods[: n - len(made)]
    xs = []
    for op in made:
        op.train()
        xi = x.detach().clone()
        if xi.is_floating_point() and int(spec.p.get("dx", 1)):
            xi.requires_grad_(True)
        xs.append(xi)
    leaves = [t for op, xi in zip(made, xs) for t in (xi, *op.parameters()) if t.requires_grad]
    if not leaves:
        raise GroupConvError(f"backward spec {spec.key}: nothing needs a gradient")

    class Backward(nn.Module):
        """One call = the backward of each copy of the op on its input (the graph built once)."""

        def __init__(self) -> None:
            super().__init__()
            self.ops = nn.ModuleList(made)
            with torch.enable_grad():
                self.outs = [op(xi) for op, xi in zip(made, xs)]
            self.grads = [torch.ones_like(o) for o in self.outs]

        def forward(self, _x):
            return torch.autograd.grad(self.outs, leaves, self.grads, retain_graph=True, allow_unused=True)

    return Backward(), xs[0], made[0], len(made)


def measure_backward(spec: Spec, device: str, dtype: str, threads: int, protocol) -> list[dict[str, object]]:
    """Time one backward spec; one row of the runs CSV (``phase="backward"``)."""
    from ..measure import fastest_window
    from ..measure.workloads import torch_dtype
    from ..networks import count_module

    module, x, op, copies = build_backward(spec, device, torch_dtype(dtype))
    timed = fastest_window(module, x, protocol, clock="auto")
    # the ops autograd runs for this op's backward, counted as prediction counts them
    counted = collapse_backward_loops(count_module(op, (x,), device=None, backward=True), op)
    ops = [o for o in counted.ops if o.phase == "backward"]
    feats = [backward_features(o, device=device, threads=threads) for o in ops]
    feats = [f for f in feats if f.kernel != "view"]
    if not feats:
        raise GroupConvError(f"backward spec {spec.key} recorded no backward kernel")
    f0 = max(feats, key=lambda f: (f.macs, f.bytes))
    same = [f for f in feats if f.kernel == f0.kernel and f.op == f0.op]
    calls = len(same)
    # a module calling its kernel several times (linear: two mm; a bidirectional LSTM: one
    # layer per direction) is one row of that many calls, with the mean call's features
    return [{
        "key": spec.key, "phase": "backward", "kind": spec.kind, "spec": json.dumps(spec.p, sort_keys=True),
        "batch": int(x.shape[0]), "copies": copies, "time_s": timed.time_s / copies,
        "time_std_s": timed.time_std_s / copies,
        "energy_J": None, "repeats": timed.repeats, "trials": timed.trials, "device": device, "threads": threads,
        "dtype": dtype, "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **feature_columns(f0, calls),
        "macs": sum(f.macs for f in same), "bytes": sum(f.bytes for f in same),
    }]
