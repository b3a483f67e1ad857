"""Trace a torch model at the aten-operator level: the glue between torch and cost/ops.py.

:class:`OpRecorder` is a ``TorchDispatchMode`` (the mechanism of
``torch.utils.flop_counter.FlopCounterMode``): every aten op that reaches the dispatcher
is recorded with its shapes and dtypes, and costed by :func:`groupconv.cost.ops.op_cost`.
Module attribution uses global forward pre/post hooks the way
``torch.utils.module_tracker.ModuleTracker`` does (a stack of qualified names, plus
multi-grad hooks for the backward pass), so every op knows its innermost module.

By default the model runs on the ``meta`` device: its parameters and buffers are
swapped for shape-only meta tensors for the run and put back afterwards (the model
is not copied, and it is left as it was), so nothing is computed and no memory is used.

torch is imported when a function here is called, never when this module is imported.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Any

from ..cost import ops as cost_ops
from ..errors import GroupConvError, UserModelError

__all__ = ["RawOp", "Trace", "trace_model"]


@dataclass
class RawOp:
    """One recorded call, before it is turned into an :class:`~groupconv.networks.OpCount`."""

    op: str
    packet: str
    module: str
    phase: str
    args: tuple  # positional args, tensors as TensorSpec
    inputs: tuple  # every tensor argument as TensorSpec
    outputs: tuple  # TensorSpec of every tensor returned
    dtype: str
    cost: cost_ops.OpCost
    param_args: tuple  # (position, original parameter) for args that are, or are computed from, parameters
    live_bytes: int = 0  # bytes of op outputs alive right after this call (the tracer's memory estimate)


@dataclass
class Trace:
    """Everything a traced run saw."""

    ops: list
    called: set  # ids of the model's modules whose forward hooks fired
    input_shapes: tuple
    output_shapes: dict  # qualified module name -> shapes of its first call's tensor outputs
    resident_bytes: int  # parameters, buffers and inputs: alive for the whole run
    model: Any = None  # the module that ran (DataParallel/DistributedDataParallel unwrapped)


_SKIP = None  # metadata ops torch's flop counter also passes through, filled lazily


def _skip_ops():
    global _SKIP
    if _SKIP is None:
        import torch

        aten = torch.ops.aten
        _SKIP = frozenset({
            aten.sym_is_contiguous.default, aten.is_contiguous.default,
            aten.is_contiguous.memory_format, aten.is_strides_like_format.default,
            aten.is_non_overlapping_and_dense.default, aten.size.default,
            aten.sym_size.default, aten.stride.default, aten.sym_stride.default,
            aten.storage_offset.default, aten.sym_storage_offset.default,
            aten.numel.default, aten.sym_numel.default, aten.dim.default,
            torch.ops.prim.layout.default, torch.ops.prim.device.default,
        })
    return _SKIP


_DTYPE_NAMES: dict = {}
_OP_INFO: dict = {}


def _dtype_name(dtype) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


def _make_recorder(names: dict, params: dict, neutral: set):
    """Build the dispatch mode (a class defined lazily so that torch loads on demand).

    ``names`` maps id(module) -> qualified name, ``params`` id(tensor the model runs on)
    -> the model's parameter, ``neutral`` holds the ids of the buffers the model runs on
    (they may enter a computed weight without being data).
    """
    import weakref

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    Tensor = torch.Tensor
    Spec = cost_ops.TensorSpec
    strided = torch.strided
    skip = _skip_ops()
    info = _OP_INFO  # func -> (op name, packet, known), shared across runs
    graph_task_id = torch._C._current_graph_task_id
    with_values = cost_ops.VALUE_ARGS

    def spec(t, values: bool = False) -> cost_ops.TensorSpec:
        shape = tuple(t.shape)
        if values and t.dim() == 1 and t.device.type != "meta" and not t.is_floating_point():
            return Spec(shape, t.element_size(), values=tuple(int(x) for x in t.tolist()))
        stride = t.stride() if t.layout == strided else ()
        if 0 in stride:  # a broadcast (expanded) view: only the distinct elements are read
            stored = 1
            for size, step in zip(shape, stride):
                if step:
                    stored *= size
            return Spec(shape, t.element_size(), stored)
        return Spec(shape, t.element_size(), contiguous=t.layout != strided or t.is_contiguous())

    def is_descendant(inner: str, outer: str) -> bool:
        return inner != outer and (outer == "" or inner.startswith(outer + "."))

    class OpRecorder(TorchDispatchMode):
        """Record every aten op with its module, shapes, dtype, MACs and bytes."""

        def __init__(self):
            super().__init__()
            self.ops: list[RawOp] = []
            self.stack: list[str] = []  # forward module stack (qualified names)
            self.bw_stack: list[str] = []
            self.called: set[int] = set()
            self.handles: list = []  # multi-grad hooks for backward attribution
            self.recording = True
            self.output_shapes: dict[str, tuple] = {}
            self.out_names: dict[int, tuple] = {}  # id(output) -> (weakref, [module names])
            # computed weights: id(tensor) -> (weakref, parameters it was computed from)
            self.derived: dict[int, tuple] = {}
            # memory: id(op output) -> bytes, for outputs still alive
            self.alive: dict[int, int] = {}
            self.refs: dict[int, Any] = {}
            self.live = 0

        # module attribution (the ModuleTracker technique, as a stack)
        def pre_hook(self, mod, inputs):
            name = names.get(id(mod))
            if name is None:
                name = type(mod).__name__
            self.called.add(id(mod))
            self.stack.append(name)
            if torch.is_grad_enabled():
                tensors = [a for a in _flat(inputs) if isinstance(a, Tensor) and a.requires_grad]
                if tensors:
                    self._grad_hook(tensors, lambda *_: self._bw_pop(name))

        def post_hook(self, mod, inputs, output):
            if self.stack:
                self.stack.pop()
            name = names.get(id(mod), type(mod).__name__)
            leaves = [a for a in _flat(output) if isinstance(a, Tensor)]
            if name not in self.output_shapes:
                self.output_shapes[name] = tuple(tuple(a.shape) for a in leaves)
            if torch.is_grad_enabled():
                tensors = [a for a in leaves if a.requires_grad]
                if tensors:
                    self._grad_hook(tensors, lambda *_: self._bw_push(name))
                    for t in tensors:  # the model's own outputs: their hooks never fire
                        entry = self.out_names.get(id(t))
                        if entry is None or entry[0]() is not t:
                            entry = self.out_names[id(t)] = (weakref.ref(t), [])
                        entry[1].append(name)

        def _grad_hook(self, tensors, fn):
            from torch.autograd.graph import register_multi_grad_hook

            self.handles.append(register_multi_grad_hook(tensors, fn, mode="any"))

        def _bw_push(self, name):
            # a module whose output is also its parent's output starts its backward at
            # the same moment as the parent: keep the innermost module on top
            i = len(self.bw_stack)
            while i > 0 and is_descendant(self.bw_stack[i - 1], name):
                i -= 1
            self.bw_stack.insert(i, name)

        def _bw_pop(self, name):
            for i in range(len(self.bw_stack) - 1, -1, -1):
                if self.bw_stack[i] == name:
                    del self.bw_stack[i]
                    return

        def start_backward(self, outs):
            """Enter the modules that produced the model's outputs (autograd starts there)."""
            for t in outs:
                entry = self.out_names.get(id(t))
                if entry is not None and entry[0]() is t:
                    for name in entry[1]:
                        if name not in self.bw_stack:
                            self._bw_push(name)

        # computed weights: tensors computed from parameters (and buffers) alone
        def _params_of(self, t):
            """The parameters ``t`` is, is a view of, or was computed from alone (else None)."""
            while t is not None:
                p = params.get(id(t))
                if p is not None:
                    return (p,)
                entry = self.derived.get(id(t))
                if entry is not None and entry[0]() is t:
                    return entry[1]
                t = t._base
            return None

        def _derive(self, tensors, out):
            found: dict[int, Any] = {}
            for a in tensors:
                got = self._params_of(a)
                if got is None:
                    if id(a) in neutral or a.dim() == 0:
                        continue
                    return
                for p in got:
                    found[id(p)] = p
            if not found:
                return
            value = tuple(found.values())
            for o in out:
                key = id(o)
                self.derived[key] = (weakref.ref(o, lambda _, key=key: self.derived.pop(key, None)), value)

        def _track(self, outs, packet):
            if packet in cost_ops.VIEW_OPS or packet in cost_ops.FREE_OPS:
                return
            for o in outs:
                key = id(o)
                if key in self.alive or o._base is not None:
                    continue  # in place (already counted) or a view of a counted tensor
                size = o.numel() * o.element_size() if o.layout == strided else 0
                self.alive[key] = size
                self.live += size
                self.refs[key] = weakref.ref(o, lambda _, key=key: self._free(key))

        def _free(self, key):
            self.live -= self.alive.pop(key, 0)
            self.refs.pop(key, None)

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in skip or not self.recording:
                return func(*args, **kwargs)
            entry = info.get(func)
            if entry is None:
                op = str(func)  # "aten.convolution.default"
                packet = cost_ops.packet_name(op)
                known = (
                    packet in cost_ops.MAC_FORMULAS or packet in cost_ops.MAC_FREE_OPS
                    or packet in cost_ops.VIEW_OPS or packet in cost_ops.FREE_OPS
                )
                entry = info[func] = (op, packet, known)
            op, packet, known = entry
            if not known and isinstance(func, torch._ops.OpOverload):
                # no formula: let its composite decomposition (if any) be recorded
                # instead, as FlopCounterMode does
                with self:
                    r = func.decompose(*args, **kwargs)
                if r is not NotImplemented:
                    return r
            out = func(*args, **kwargs)

            values = packet in with_values
            specs_args = []
            inputs = []
            tensors = []
            param_args = []
            dtype = None
            for i, a in enumerate(args):
                if isinstance(a, Tensor):
                    s = spec(a, values)
                    specs_args.append(s)
                    inputs.append(s)
                    tensors.append(a)
                    if dtype is None:
                        dtype = a.dtype
                    if params:
                        got = self._params_of(a)
                        if got is not None:
                            param_args.extend((i, p) for p in got)
                elif isinstance(a, (list, tuple)) and a and isinstance(a[0], Tensor):
                    ss = [spec(x) if isinstance(x, Tensor) else x for x in a]
                    specs_args.append(ss)
                    inputs.extend(x for x in ss if isinstance(x, Spec))
                    tensors.extend(x for x in a if isinstance(x, Tensor))
                    if dtype is None:
                        dtype = a[0].dtype
                else:
                    specs_args.append(a)
            for k, a in kwargs.items():
                if isinstance(a, Tensor) and k != "out":
                    inputs.append(spec(a))
                    tensors.append(a)
            if isinstance(out, Tensor):
                out_tensors = (out,)
                if dtype is None:
                    dtype = out.dtype
            elif isinstance(out, (list, tuple)):
                out_tensors = tuple(o for o in out if isinstance(o, Tensor))
            else:
                out_tensors = ()
            outputs = tuple(spec(o) for o in out_tensors)
            cost = cost_ops.op_cost(packet, specs_args, outputs, inputs)
            if params and tensors and out_tensors and cost.macs == 0:
                self._derive(tensors, out_tensors)
            self._track(out_tensors, packet)
            phase = "backward" if graph_task_id() != -1 else "forward"
            if phase == "forward":
                module = self.stack[-1] if self.stack else ""
            else:
                module = self.bw_stack[-1] if self.bw_stack else ""
            self.ops.append(RawOp(
                op, packet, module, phase, tuple(specs_args), tuple(inputs), outputs,
                _dtype_name(dtype) if dtype is not None else "", cost, tuple(param_args), self.live,
            ))
            return out

    return OpRecorder


def _flat(obj):
    from torch.utils._pytree import tree_leaves

    return tree_leaves(obj)


def _first_param(model):
    for p in model.parameters():
        return p
    for b in model.buffers():
        return b
    return None


def _prepare_inputs(inputs, device, dtype) -> tuple:
    """Shapes -> zeros (float), tensors -> moved to ``device`` (dtype kept)."""
    import torch

    def one(item):
        if isinstance(item, torch.Tensor):
            return item.to(device) if device is not None else item
        shape = _as_shape(item)
        return torch.zeros(shape, dtype=dtype, device=device)

    if isinstance(inputs, torch.Tensor):
        return (one(inputs),)
    if isinstance(inputs, (list, tuple)) and inputs:
        if not any(isinstance(item, (torch.Tensor, list, tuple)) for item in inputs):
            return (one(inputs),)  # one shape (checked by _as_shape)
        return tuple(one(item) for item in inputs)
    raise GroupConvError(
        f"inputs must be a shape, a list of shapes, a tensor or a tuple of tensors, got {inputs!r}"
    )


def _is_shape(obj) -> bool:
    return isinstance(obj, (list, tuple)) and len(obj) > 0 and all(
        isinstance(s, int) and not isinstance(s, bool) for s in obj
    )


def _as_shape(item) -> tuple[int, ...]:
    if not _is_shape(item) or any(s < 1 for s in item):
        raise GroupConvError(f"input shape must be a non-empty sequence of positive integers, got {item!r}")
    if math.prod(int(s) for s in item) * 8 >= 2**63:  # torch's storage size is an int64 of bytes
        raise GroupConvError(f"input shape {tuple(item)} holds more elements than a tensor can")
    return tuple(int(s) for s in item)


def _move_kwargs(kwargs: dict, device) -> dict:
    import torch

    if device is None:
        return dict(kwargs)
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}


def _shapes_of(inputs) -> tuple:
    import torch

    return tuple(tuple(x.shape) if isinstance(x, torch.Tensor) else x for x in inputs)


def _unwrap(model):
    """The module a DataParallel / DistributedDataParallel wrapper runs (its ``.module``)."""
    from torch import nn

    while isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    return model


def _model_error(exc: BaseException, model, args, kw, target, started: bool) -> GroupConvError:
    """One line for an exception raised while the model ran: the model's own message, and
    the input shapes only as a fact (never blamed: most failures are not about the shape)."""
    text = str(exc).strip()
    reason = f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
    shapes = [*_shapes_of(args), *(_shapes_of(tuple(v for v in kw.values() if hasattr(v, "shape"))))]
    shown = shapes[0] if len(shapes) == 1 else list(shapes)
    name = type(model).__name__
    if isinstance(exc, SystemExit):  # the model's own code called sys.exit
        return UserModelError(f"model {name} called sys.exit({exc.code!r}) while running")
    if target.type == "meta" and "meta" in reason.lower():
        reason += " (the model needs real data: count it on a real device, device=None / --device cpu)"
    if not started:
        return GroupConvError(f"cannot run model {name} on device {target.type!r}: {reason}")
    label = "input shape" if len(shapes) == 1 else "input shapes"
    return UserModelError(f"model {name} raised {reason} ({label} {shown})")


def _swap_tensors(model, substitutes: dict, done: list) -> None:
    """Put ``substitutes[id(t)]`` in place of every parameter and buffer ``t`` of ``model``.

    Each module once, by its own tables (a module or tensor registered under several
    names, tied weights and parametrizations are all reached once). Appends to ``done``
    what to put back: (table, key, original), as it goes. ``torch.func.functional_call`` is not used: handed a
    module registered under two names it swaps it twice and puts the substitutes back.
    """
    for mod in model.modules():
        for table in (mod._parameters, mod._buffers):
            for key, t in list(table.items()):
                if t is not None and id(t) in substitutes:
                    done.append((table, key, t))
                    table[key] = substitutes[id(t)]


def trace_model(model, inputs, *, kwargs=None, device="meta", backward=False, training=None) -> tuple[Trace, list]:
    """Run ``model`` once under the recorder; return the trace and the unique parameters.

    See :func:`groupconv.networks.count_module` for the arguments. The model's train/eval
    flags are restored afterwards; on ``meta`` its parameters and buffers are untouched.
    """
    import torch
    from torch import nn
    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    if not isinstance(model, nn.Module):
        raise GroupConvError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    model = _unwrap(model)
    if kwargs is not None and not isinstance(kwargs, dict):
        raise GroupConvError(f"kwargs must be a dict of keyword inputs, got {type(kwargs).__name__}")
    kwargs = dict(kwargs or {})
    if isinstance(inputs, dict):  # a dict of inputs: the model's keyword arguments
        if set(inputs) & set(kwargs):
            raise GroupConvError(f"keyword input(s) {sorted(set(inputs) & set(kwargs))} given twice (inputs and kwargs)")
        kwargs = {**inputs, **kwargs}
        inputs = ()
    if not all(isinstance(k, str) for k in kwargs):
        raise GroupConvError(f"keyword inputs must be named by strings, got {list(kwargs)!r}")
    first = _first_param(model)
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    if device is not None:
        try:
            target = torch.device(device)
        except (RuntimeError, TypeError):
            raise GroupConvError(f"device must be a torch device name such as 'meta' or 'cpu', got {device!r}") from None
        if target.type == "cuda" and not torch.cuda.is_available():
            raise GroupConvError(
                f"device {device!r}: this torch has no CUDA device ({torch.__version__}); count on 'meta' or 'cpu'"
            )
    else:
        target = first.device if first is not None else torch.device("cpu")
    keyword_only = (inputs is None or (isinstance(inputs, (list, tuple)) and len(inputs) == 0)) and kwargs
    args = () if keyword_only else _prepare_inputs(inputs, target, dtype)
    kw = _move_kwargs(kwargs, target)
    training = bool(backward) if training is None else bool(training)

    names = {id(m): name for name, m in model.named_modules()}
    unique = list(model.parameters())  # parameters() yields each shared parameter once
    swap = first is not None and first.device != target
    params: dict[int, Any] = {}
    made: dict[int, Any] = {}
    neutral: set[int] = set()
    buffers: dict[int, Any] = {}
    if swap:
        for p in unique:
            made[id(p)] = torch.empty_like(p, device=target).requires_grad_(p.requires_grad and backward)
            params[id(made[id(p)])] = p
        for b in model.buffers():
            buffers[id(b)] = (
                torch.zeros_like(b, device=target) if target.type != "meta" else torch.empty_like(b, device=target)
            )
        neutral = {id(b) for b in buffers.values()}
    else:
        params = {id(p): p for p in unique}
        neutral = {id(b) for b in model.buffers()}
    resident = sum(t.numel() * t.element_size() for t in (made.values() if swap else unique))
    resident += sum(b.numel() * b.element_size() for b in (buffers.values() if swap else model.buffers()))
    resident += sum(
        t.numel() * t.element_size() for t in (*args, *kw.values()) if isinstance(t, torch.Tensor)
    )
    # a run on the model's own tensors must not leave training side effects behind
    saved_buffers = (
        {name: b.detach().clone() for name, b in model.named_buffers()} if not swap and training else {}
    )

    swapped: list = []
    Recorder = _make_recorder(names, params, neutral)
    recorder = Recorder()
    modes = {m: m.training for m in model.modules()}
    pre = register_module_forward_pre_hook(recorder.pre_hook)
    post = register_module_forward_hook(recorder.post_hook)
    try:
        model.train(training)
        grad = torch.enable_grad() if (backward or training) else torch.no_grad()
        with grad, recorder:
            if swap:
                _swap_tensors(model, {**made, **buffers}, swapped)
            out = model(*args, **kw)
            if backward:
                recorder.recording = False
                outs = [o for o in _flat(out) if isinstance(o, torch.Tensor) and o.requires_grad]
                if not outs:
                    raise GroupConvError("backward=True but no output of the model requires grad")
                grads = [torch.ones_like(o) for o in outs]
                leaves = [t for t in (made.values() if swap else unique) if t.requires_grad]
                leaves += [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
                if not leaves:
                    raise GroupConvError("backward=True but no parameter or input of the model requires grad")
                recorder.start_backward(outs)
                recorder.recording = True
                # autograd.grad, not backward: nothing accumulates into the model's .grad
                torch.autograd.grad(outs, leaves, grads, allow_unused=True)
    except GroupConvError:
        raise
    except (Exception, SystemExit) as exc:  # the user's model can raise (or exit) anything: one line naming it
        started = id(model) in recorder.called or bool(recorder.ops)
        raise _model_error(exc, model, args, kw, target, started) from None
    finally:
        for table, key, tensor in reversed(swapped):
            table[key] = tensor
        pre.remove()
        post.remove()
        for h in recorder.handles:
            h.remove()
        for m, flag in modes.items():
            m.training = flag
        if saved_buffers:
            with torch.no_grad():
                for name, b in model.named_buffers():
                    if name in saved_buffers:
                        b.copy_(saved_buffers[name])
    shapes = _shapes_of(args) + _shapes_of(tuple(v for v in kw.values() if isinstance(v, torch.Tensor)))
    trace = Trace(recorder.ops, recorder.called, shapes, dict(recorder.output_shapes), resident, model)
    return trace, unique
