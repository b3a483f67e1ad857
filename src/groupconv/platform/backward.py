"""Backward kernels: which kernel each aten backward op runs, what it is measured on, how it is fitted.

A training step (``predict --mode forward_backward``: one forward and one backward, as
:mod:`groupconv.measure` defines ``forward_backward``; no optimizer step) records, in its
backward phase, the aten backward ops the autograd engine runs. On a CPU each is one
kernel of its own, and not the forward's:

* ``aten.convolution_backward`` computes the input gradient and the weight gradient (and
  the bias gradient) in one call, on the **same path as the forward** (torch's
  ``select_conv_backend`` takes the same decision for both): oneDNN
  (``mkldnn_convolution_backward``) or the native im2col path (``_slow_conv2d_backward``),
  depthwise and transposed included. Its arguments are ``(grad_out, input, weight, ...)``:
  the kernel and the conv features are taken from the input and weight, not from the
  gradient (:func:`backward_features`). The counter's MACs are the forward's times the
  gradients computed (two inside a network, one for a first layer whose input needs none).
* ``mm`` (the gradients of ``linear``/``addmm``/``mm``/``bmm``): the same GEMM library as
  the forward, on transposed operands.
* ``native_batch_norm_backward``, ``native_layer_norm_backward``, ``threshold_backward``
  (ReLU), ``hardtanh_backward`` (ReLU6), ``gelu_backward``, ``silu_backward``,
  ``hardswish_backward``, ``sigmoid_backward``, ``max_pool2d_with_indices_backward``,
  ``avg_pool2d_backward``, ``_adaptive_avg_pool2d_backward``, ``_softmax_backward_data``,
  ``_scaled_dot_product_flash_attention_for_cpu_backward``, ``embedding_dense_backward``:
  one kernel each, priced by a model of its own (``"backward:<kernel>:<op>"``).
* ``mkldnn_rnn_layer_backward``: one fused oneDNN kernel per LSTM layer and direction
  (kernel ``"rnn"``; the counter leaves its MACs at 0, the model sees twice the forward
  layer's MACs: the gradients of the inputs and of both weight matrices).

Each is calibrated on its own (:func:`backward_specs`, built and timed by
:mod:`~groupconv.platform.backward_modules`): the backward of one op, as autograd runs it
in a training step, and fitted into models named ``"backward:<kernel>"`` and
``"backward:<kernel>:<op>"`` (:func:`fit_backward_models`), which
:class:`~groupconv.platform.Platform` looks up first for an op of the backward phase. A
backward op of a kernel no backward model covers is priced with the forward model of its
kernel (and from the roofline where there is none either).

Imports neither torch nor zeus.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from types import SimpleNamespace

import numpy as np

from .models import FEATURES, KERNELS, KernelModel, OpFeatures, collapse_loop_ops, features_of, fit_kernel_model, kernel_of
from .specs import Spec, _conv_candidates, _memory_candidates, _sequence_candidates, make_spec

__all__ = ["BACKWARD_KINDS", "BACKWARD_OPS", "DEPTHWISE_BACKWARD_TERMS", "WEIGHT_ONLY", "backward_features", "backward_kernel", "backward_specs",
           "collapse_backward_loops", "fit_backward_models", "forward_twin"]

#: aten backward ops whose counter class is not their kernel's (no formula or class there).
BACKWARD_OPS: dict[str, str] = {
    "aten.hardtanh_backward": "elementwise",
    "aten.mkldnn_rnn_layer_backward": "rnn",
    "aten._adaptive_avg_pool2d_backward": "pool",
    "aten.native_dropout_backward": "elementwise",
}

#: The name a conv backward call that computes the weight gradient only (a network's first
#: conv, whose input needs no gradient) is priced under: ``backward:<kernel>:<this>``.
WEIGHT_ONLY = "aten.convolution_backward.weight_only"

#: Operator kinds (of :mod:`~groupconv.platform.specs`) whose backward is calibrated.
BACKWARD_KINDS: tuple[str, ...] = ("conv", "conv1d", "convT", "linear", "tlinear", "bn", "ln", "tln", "act", "tact",
                                   "maxpool", "avgpool", "gap", "softmax", "tsoftmax", "sdpa", "lstm", "gru",
                                   "embedding")
#: Terms of the depthwise conv backward model: the forward's, and MACs x kernel taps (the
#: weight gradient of a 5x5 or 7x7 depthwise conv costs about twice per MAC what a 3x3's
#: does here: without the term the model's fit error was 43 %, with it 21 %).
DEPTHWISE_BACKWARD_TERMS: tuple[str, ...] = FEATURES["conv_dw"] + ("macs_x_taps",)
#: Compute kinds given two turns per round in :func:`backward_specs` (convs three).
_TWO_TURNS = ("linear", "tlinear", "sdpa", "lstm", "gru", "conv1d")


def _packet(name: str) -> str:
    return name.rsplit(".", 1)[0] if name.count(".") >= 2 else name


def forward_twin(op):
    """The forward ``aten.convolution`` call whose backward ``op`` (an
    ``aten.convolution_backward`` ``OpCount``) is: input and weight from its arguments, the
    output shaped as its incoming gradient. Other ops are returned unchanged."""
    if _packet(str(getattr(op, "op", ""))) != "aten.convolution_backward":
        return op
    shapes = tuple(tuple(s) for s in op.input_shapes)
    grad_out, x, w = shapes[0], shapes[1], shapes[2]
    return SimpleNamespace(
        op="aten.convolution.default", op_class="conv", module=getattr(op, "module", ""), phase="forward",
        input_shapes=(x, w), output_shapes=(grad_out,), dtype=getattr(op, "dtype", "float32"),
        macs=op.macs, bytes_read=op.bytes_read, bytes_written=op.bytes_written, layer=None,
        groups=int(getattr(op, "groups", 1) or 1),
    )


def backward_kernel(op, *, device: str = "cpu", threads: int = 1) -> str:
    """The kernel type a backward op runs (see the module docstring)."""
    packet = _packet(str(getattr(op, "op", "")))
    if packet == "aten.convolution_backward":
        return kernel_of(forward_twin(op), device=device, threads=threads)
    if packet in BACKWARD_OPS:
        return BACKWARD_OPS[packet]
    return kernel_of(op, device=device, threads=threads)


def _rnn_layer_macs(shapes: Sequence[Sequence[int]]) -> float:
    """Twice the MACs of the forward layer of an ``mkldnn_rnn_layer_backward`` call
    ``(input (T, B, F), w_ih (G*H, F), w_hh (G*H, H), ...)``."""
    x, w_ih, w_hh = shapes[0], shapes[1], shapes[2]
    steps_x_batch = math.prod(x[:-1]) if len(x) > 1 else 1
    return 2.0 * steps_x_batch * w_ih[0] * (w_ih[1] + w_hh[1])


def backward_features(op, *, device: str = "cpu", threads: int = 1) -> OpFeatures:
    """:class:`~groupconv.platform.models.OpFeatures` of a backward op (per call).

    A conv backward is described by its forward twin (:func:`forward_twin`: the kernel, the
    per-group channels, output pixels, weight bytes) with the counter's MACs and bytes of
    the backward call; an RNN layer backward by twice its forward MACs and its time steps
    (``lead``); every other op as the forward ops are, under its backward kernel.
    """
    packet = _packet(str(getattr(op, "op", "")))
    kernel = backward_kernel(op, device=device, threads=threads)
    if packet == "aten.convolution_backward":
        twin = forward_twin(op)
        f = features_of(twin, device=device, threads=threads)
        x = tuple(twin.input_shapes[0])
        computes_dx = bool(op.output_shapes) and tuple(op.output_shapes[0]) == x and x != tuple(twin.input_shapes[1])
        return replace(f, op=str(op.op) if computes_dx else WEIGHT_ONLY, macs=float(op.macs),
                       bytes=float(op.bytes_read + op.bytes_written), phase="backward")
    f = features_of(op, device=device, threads=threads)
    if packet == "aten.mkldnn_rnn_layer_backward":
        shapes = tuple(tuple(int(d) for d in s) for s in op.input_shapes)
        return replace(f, kernel=kernel, macs=_rnn_layer_macs(shapes), lead=shapes[0][0] if shapes else 1,
                       phase="backward")
    return replace(f, kernel=kernel, phase="backward")


def collapse_backward_loops(count, model):
    """``count`` with the backward ops of each loop module (a GRU on a CPU, see
    :data:`~groupconv.platform.models.LOOP_MODULES`) merged into one backward op
    ``groupconv.rnn_loop`` (kernel ``rnn_loop``, priced by ``backward:rnn_loop``), as the
    forward's are by :func:`~groupconv.platform.predict.collapse_loops`
    (:func:`~groupconv.platform.models.collapse_loop_ops`)."""
    return collapse_loop_ops(count, model, "backward")


# ------------------------------------------------------------------------------ specs
def backward_specs(*, threads: int = 1, seed: int = 0, n_conv: int = 160, n_memory: int = 120, n_sequence: int = 140,
                   n_stem: int = 40, batches: Sequence[int] = (1, 1, 2, 4, 8)) -> list[Spec]:
    """Backward calibration specs (phase ``"backward"``), ordered so that any prefix is informative.

    Each is a forward spec of :mod:`~groupconv.platform.specs` (same kind and parameters)
    plus ``dx``: whether the op's input needs a gradient (1 inside a network; 0 for a
    network's first conv, which then computes the weight gradient only). The first convs
    of networks (``n_stem``: 1 or 3 input channels, large kernels and strides, 2-D on
    images and 1-D on signals) are specs of their own: their few input channels are far
    from every other conv's, and a model fitted without them extrapolates. Kinds take
    turns (convs three turns per round, the other compute kernels two), shapes within a
    kind farthest-first.
    """
    from .specs import farthest_first, spec_kernel

    rng = np.random.default_rng(seed + 17)
    cands = [s for s in _conv_candidates(rng, n_conv, batches) if _conv_macs(s) <= 1.5e8]
    cands += [s for s in _memory_candidates(rng, n_memory, batches)
              if s.kind in BACKWARD_KINDS and (s.kind != "linear" or _linear_macs(s) <= 2e8)]
    cands += [s for s in _sequence_candidates(np.random.default_rng(seed + 18), n_sequence, batches)
              if s.kind in BACKWARD_KINDS]
    stems = _stem_candidates(np.random.default_rng(seed + 19), n_stem, batches)
    queues: dict[str, list[Spec]] = {}
    for s in cands:
        p = s.p
        if s.kind == "embedding":
            dx = 0
        elif s.kind == "conv":
            dx = int(rng.random() > 0.15)
        else:
            dx = 1
        label = spec_kernel(s, threads) + ":" + s.kind + (":" + str(p["act"]) if "act" in p else "")
        queues.setdefault(label, []).append(make_spec("backward", s.kind, dx=dx, **p))
    for s in stems:  # a network's first conv: its input needs no gradient
        queues.setdefault(f"stem:{s.kind}", []).append(make_spec("backward", s.kind, dx=0, **s.p))
    ordered = [farthest_first(q) for _, q in sorted(queues.items())]
    weights = [3 if q and q[0].kind == "conv" else 2 if q and q[0].kind in _TWO_TURNS else 1 for q in ordered]
    out: list[Spec] = []
    while any(ordered):
        for q, w in zip(ordered, weights):
            for _ in range(w):
                if q:
                    out.append(q.pop(0))
    return out


def _stem_candidates(rng: np.random.Generator, n: int, batches: Sequence[int]) -> list[Spec]:
    """First convs of networks: images (1 or 3 channels) and signals (1 channel)."""
    out: list[Spec] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        b = int(rng.choice(batches))
        cout = int(rng.choice((8, 16, 24, 32, 48, 64, 96)))
        if len(out) % 2 == 0:
            k, stride = [(3, 1), (3, 2), (5, 2), (7, 2), (4, 4), (8, 8), (16, 16)][int(rng.integers(0, 7))]
            h = int(rng.choice((32, 56, 64, 96, 112, 128, 160)))
            s = make_spec("op", "conv", batch=b, cin=int(rng.choice((1, 3, 3))), cout=cout, k=k, h=h, groups=1,
                          stride=stride)
            if _conv_macs(s) > 1.5e8:
                continue
        else:
            k, stride = [(3, 1), (11, 4), (9, 2), (64, 16), (10, 5), (400, 160), (7, 2)][int(rng.integers(0, 7))]
            length = int(rng.choice((1024, 4000, 8000, 16000)))
            if b * cout * k * length / stride > 1.5e8:
                continue
            s = make_spec("op", "conv1d", batch=b, cin=1, cout=cout, k=k, length=length, groups=1, dilation=1,
                          stride=stride)
        if s.key not in seen:
            seen.add(s.key)
            out.append(s)
    return out


def _conv_macs(s: Spec) -> float:
    p = s.p
    ho = (p["h"] + 2 * (p["k"] // 2) - p["k"]) // p["stride"] + 1
    return float(p["batch"] * p["cout"] * p["cin"] // p["groups"] * p["k"] ** 2 * ho * ho)


def _linear_macs(s: Spec) -> float:
    p = s.p
    return float(p["batch"] * p["fin"] * p["fout"])


def forward_spec(spec: Spec) -> Spec:
    """The forward op spec a backward spec takes the backward of (without ``dx``)."""
    p = {k: v for k, v in spec.p.items() if k != "dx"}
    return make_spec("op", spec.kind, **p)


# ------------------------------------------------------------------------------ fitting
def fit_backward_models(rows: Sequence[dict[str, object]], *, min_per_op: int = 5) -> dict[str, KernelModel]:
    """Time models of the backward kernels from calibration rows of phase ``"backward"``.

    One model per kernel type (``"backward:<kernel>"``) and, for the kernels other than
    convs, one per aten op with at least ``min_per_op`` points (``"backward:<kernel>:<op>"``),
    each by :func:`~groupconv.platform.models.fit_kernel_model` on the per-call time. A
    conv kernel's rows without an input gradient (``dx=0`` in the spec) get a model of
    their own (``"backward:<kernel>:aten.convolution_backward.weight_only"``) where there are
    ``min_per_op`` of them. The depthwise backward's terms add MACs x taps
    (:data:`DEPTHWISE_BACKWARD_TERMS`).
    """
    from .runs import row_features

    by_kernel: dict[str, list[dict[str, object]]] = {}
    for r in rows:
        if r.get("phase") == "backward" and str(r.get("kernel")) in KERNELS:
            by_kernel.setdefault(str(r["kernel"]), []).append(r)
    models: dict[str, KernelModel] = {}

    def fit(kernel: str, name: str, krows: list[dict[str, object]]) -> None:
        calls = [max(1, int(float(r["calls"]))) for r in krows]
        feats = [row_features(r, c) for r, c in zip(krows, calls)]
        terms = DEPTHWISE_BACKWARD_TERMS if kernel == "conv_dw" else None
        models[name] = fit_kernel_model(kernel, feats, [float(r["time_s"]) / c for r, c in zip(krows, calls)],
                                        name=name, features=terms)

    for kernel, krows in sorted(by_kernel.items()):
        if kernel.startswith("conv"):
            # the weight gradient alone (a first conv: few input channels, no input
            # gradient) is a model of its own where it has the points, else in the kernel's
            alone = [r for r in krows if int(json.loads(str(r.get("spec") or "{}")).get("dx", 1)) == 0]
            both = [r for r in krows if r not in alone]
            if len(alone) >= min_per_op and both:
                fit(kernel, f"backward:{kernel}:{WEIGHT_ONLY}", alone)
                fit(kernel, f"backward:{kernel}", both)
            else:
                fit(kernel, f"backward:{kernel}", krows)
            continue
        fit(kernel, f"backward:{kernel}", krows)
        by_op: dict[str, list[dict[str, object]]] = {}
        for r in krows:
            by_op.setdefault(str(r["op"]), []).append(r)
        if len(by_op) > 1:
            for op, orows in sorted(by_op.items()):
                if len(orows) >= min_per_op:
                    fit(kernel, f"backward:{kernel}:{op}", orows)
    return models
