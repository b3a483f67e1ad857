"""Approximability of every conv of a trained torch model, and converting it to GC or BGC.

:func:`approximability_of_model` runs a batch of model inputs through the model once,
captures the input activations of every eligible conv (forward pre-hooks), and measures
for each layer and each (method, N) how well the best grouped replacement reproduces
that layer's output on those activations (BGC paper Eq. 5.1 / 5.3 with the layer's own
weight as the single weight sample, the same measure as
:func:`~groupconv.approx.torch_layers.approximability_of_conv`), next to the cost of
each choice from :mod:`groupconv.cost` (BGC Table 1 parameters, Eq. 3.14 operations).

:func:`convert_model` returns a copy of the model whose chosen convs are replaced by
``torch.nn.Conv2d(..., groups=N)`` (GC) or :class:`groupconv.nn.BalancedGroupConv`
(BGC) carrying the least-squares optimal weights for those activations (the BGC paper's
§5.2.1 "transfer the parameters of the pre-trained standard convolution", done exactly),
and a per-layer report. Every layer is fitted on the activations the *original* model
feeds it, so each converted layer's output error on ``data`` (with the original inputs)
is exactly the reported E.

Eligible layers: ``torch.nn.Conv1d`` / ``Conv2d`` with ``groups == 1`` (the standard
convolutions the paper converts) whose channel counts N divides; others are left out of
the table. Activations are captured in eval mode (batch norm with its running
statistics), as the network runs at inference. A layer whose inputs are all zero on
``data`` (after a zero-initialised conv, say) gets E = 0 for every replacement. torch is
imported inside the functions.

Per-layer table (:meth:`ModelApprox.to_frame`), one row per (layer, method, N):

=================  =====================================================================
column             meaning
=================  =====================================================================
layer              the module's qualified name in the model (``"features.3"``)
method, groups     ``"gc"`` / ``"bgc"`` and N
E                  Eq. 5.1: mean over the samples of ``||conv(x) - best(x)||^2``
rel_E              Eq. 5.3: ``E / (||W||^2 mean ||x||^2)``
rel_output_E       ``E / mean ||conv(x)||^2``: the fraction of the output energy lost
params, macs       weights and per-frame operations of the replacement (cost model)
params_dense,      the same for the original dense conv
macs_dense
in_channels, out_channels, kernel, stride, samples, positions: the layer and the data
=================  =====================================================================
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import _validate as v
from ..cost.numeric import gc_variant_cost, gc_variant_params
from ..errors import GroupConvError
from .data import as_real_array
from .measure import ApproxResult
from .structures import METHODS
from .torch_layers import LayerApprox, approximability_of_conv, dense_weight, grouped_weights, output_positions

__all__ = [
    "ModelApprox",
    "approximability_of_model",
    "convert_model",
    "eligible_convs",
    "capture_inputs",
    "layer_cost",
    "replacement",
    "MODEL_COLUMNS",
    "CONVERT_COLUMNS",
]

#: Columns of :meth:`ModelApprox.to_frame`.
MODEL_COLUMNS = (
    "layer", "method", "groups", "E", "rel_E", "rel_output_E", "params", "macs",
    "params_dense", "macs_dense", "in_channels", "out_channels", "kernel", "stride",
    "samples", "positions",
)
#: Columns of the report of :func:`convert_model`.
CONVERT_COLUMNS = (
    "layer", "method", "groups", "E", "rel_E", "rel_output_E", "params_before",
    "params_after", "macs_before", "macs_after",
)


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise GroupConvError(
            "torch is needed for real networks: pip install -e '.[torch]'"
        ) from None
    return torch


def eligible_convs(model) -> dict:
    """``{qualified name: module}`` of the model's dense ``Conv1d`` / ``Conv2d`` layers, in order."""
    torch = _torch()
    if not isinstance(model, torch.nn.Module):
        raise GroupConvError(f"need a torch.nn.Module, got {type(model).__name__}")
    return {
        name: mod
        for name, mod in model.named_modules()
        if isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d)) and mod.groups == 1
    }


def _select(model, layers) -> dict:
    convs = eligible_convs(model)
    if not convs:
        raise GroupConvError("the model has no dense Conv1d/Conv2d layer to approximate")
    if layers is None:
        return convs
    names = [layers] if isinstance(layers, str) else list(layers)
    unknown = [n for n in names if n not in convs]
    if unknown:
        raise GroupConvError(
            f"no dense conv named {unknown[0]!r} in the model; eligible: {', '.join(convs)}"
        )
    return {n: convs[n] for n in names}


def _as_input(data):
    torch = _torch()
    if isinstance(data, (tuple, list)) and data and all(torch.is_tensor(d) for d in data):
        return tuple(d.detach() for d in data)
    if torch.is_tensor(data):
        if data.is_complex():
            raise GroupConvError("data are complex; the model inputs must be real tensors")
        return (data.detach(),)

    return (torch.from_numpy(as_real_array("data", data)),)


def capture_inputs(model, data, layers: Iterable[str] | None = None, batch_size: int = 256) -> dict:
    """Run ``data`` (a batch of model inputs) through ``model`` and keep each conv's input.

    Returns ``{name: tensor (S, n, *spatial)}`` in float64 on the CPU for the chosen
    dense convs (all by default). The model runs in eval mode under ``torch.no_grad`` in
    chunks of ``batch_size``; its training flag is restored afterwards.
    """
    torch = _torch()
    chosen = _select(model, layers)
    inputs = _as_input(data)
    total = inputs[0].shape[0]
    v.positive_int("batch size", batch_size)
    if total == 0:
        raise GroupConvError("data are empty: need at least one model input")
    captured: dict[str, list] = {name: [] for name in chosen}
    handles = []
    for name, conv in chosen.items():
        def hook(module, args, name=name):
            captured[name].append(args[0].detach().to("cpu", torch.float64))
        handles.append(conv.register_forward_pre_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            for start in range(0, total, batch_size):
                model(*(x[start : start + batch_size] for x in inputs))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    missing = [n for n, parts in captured.items() if not parts]
    if missing:
        raise GroupConvError(f"layer {missing[0]!r} was not called by the model's forward pass")
    return {name: torch.cat(parts) for name, parts in captured.items()}


def layer_cost(conv, method: str, groups: int, positions: int) -> tuple[int, int]:
    """``(params, macs)`` per frame of replacing ``conv`` by ``method`` with N groups.

    From the cost model: BGC Table 1 parameters (``K m n / N`` for GC, ``2 K m n / N``
    for BGC, ``K m n`` for the dense conv, method ``"sc"``) and Eq. 3.14 operations
    (``K D m n / N`` MACs for GC, ``2 K D m n / N + D n`` for BGC, where D is the number of
    output positions and ``D n`` the additions of the group mean). Biases not counted.
    """

    name = {"gc": "GC", "bgc": "BGC", "sc": "SC"}[method]
    taps = math.prod(conv.kernel_size)
    n, m = conv.in_channels, conv.out_channels
    params = gc_variant_params(name, n, m, taps, groups)
    macs = gc_variant_cost(name, n, m, taps, groups, positions)
    return int(round(float(params))), int(round(float(macs)))


@dataclass(frozen=True)
class ModelApprox:
    """Per-layer approximability of a model: one record per (layer, method, N).

    Attributes
    ----------
    rows : tuple of dict
        The records (keys: :data:`MODEL_COLUMNS`).
    layers : tuple of str
        The layers measured, in model order.
    samples : int
        Model inputs the activations came from.
    weights : dict
        ``(layer, method, N) -> dense-equivalent best weight`` (only when asked for).
    """

    rows: tuple[dict, ...]
    layers: tuple[str, ...]
    samples: int
    weights: dict = field(default_factory=dict, compare=False, repr=False)

    def records(self) -> list[dict]:
        """The rows as a list of dicts (JSON-ready)."""
        return [dict(r) for r in self.rows]

    def as_dict(self) -> dict:
        """``{"samples": S, "layers": [...], "rows": [...]}``."""
        return {"samples": self.samples, "layers": list(self.layers), "rows": self.records()}

    def to_frame(self):
        """A pandas DataFrame with the columns :data:`MODEL_COLUMNS`."""
        import pandas as pd

        return pd.DataFrame(self.records(), columns=list(MODEL_COLUMNS))

    def _repr_html_(self) -> str:
        cols = ["layer", "method", "groups", "rel_output_E", "rel_E", "params", "macs"]
        return self.to_frame()[cols]._repr_html_()

    def select(self, method: str, groups: int) -> list[dict]:
        """The rows of one (method, N), in layer order."""
        return [r for r in self.rows if r["method"] == method and r["groups"] == groups]

    def table(self) -> str:
        """A readable fixed-width table."""
        head = f"{'layer':<18}{'method':<7}{'N':>4}{'lost output':>13}{'rel_E':>12}{'params':>10}{'MACs':>12}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(
                f"{r['layer']:<18}{r['method']:<7}{r['groups']:>4}{r['rel_output_E']:>13.3%}"
                f"{r['rel_E']:>12.4e}{r['params']:>10,}{r['macs']:>12,}"
            )
        return "\n".join(lines)


def _groups_list(groups) -> list[int]:
    items = [groups] if isinstance(groups, (int, np.integer)) else list(groups)
    out = []
    for g in items:
        g = v.positive_int("groups", g)
        if g not in out:
            out.append(g)
    if not out:
        raise GroupConvError("give at least one number of groups")
    return out


def _measure(model, data, methods, groups, layers, batch_size, return_weights, require_all):

    methods = [v.one_of("method", m, METHODS) for m in dict.fromkeys(methods)]
    group_list = _groups_list(groups)
    chosen = _select(model, layers)
    acts = capture_inputs(model, data, list(chosen), batch_size)
    rows, weights = [], {}
    for name, conv in chosen.items():
        fits = [g for g in group_list if conv.in_channels % g == 0 and conv.out_channels % g == 0]
        if require_all and len(fits) < len(group_list):
            bad = next(g for g in group_list if g not in fits)
            raise GroupConvError(
                f"layer {name!r} has {conv.in_channels} -> {conv.out_channels} channels, not "
                f"divisible by groups={bad}; pass layers=[...] to convert only others"
            )
        if not fits:
            continue
        if not bool(acts[name].any()):
            result = _dead_layer(conv, fits, methods, acts[name])
        else:
            result = approximability_of_conv(conv, fits, methods, data=acts[name],
                                             return_weights=return_weights)
        dense_params, dense_macs = layer_cost(conv, "sc", 1, result.positions)
        for r in result.results:
            params, macs = layer_cost(conv, r.method, r.groups, result.positions)
            rows.append(dict(
                layer=name, method=r.method, groups=r.groups, E=r.E, rel_E=r.rel_E,
                rel_output_E=r.rel_output_E, params=params, macs=macs,
                params_dense=dense_params, macs_dense=dense_macs,
                in_channels=conv.in_channels, out_channels=conv.out_channels,
                kernel=tuple(conv.kernel_size), stride=tuple(conv.stride),
                samples=result.samples, positions=result.positions,
            ))
            if return_weights:
                weights[(name, r.method, r.groups)] = result.weights[(r.method, r.groups)]
    samples = int(next(iter(acts.values())).shape[0])
    return ModelApprox(rows=tuple(rows), layers=tuple(chosen), samples=samples, weights=weights)


def _dead_layer(conv, groups, methods, act):
    """A layer whose inputs are all zero on these data: every replacement is exact (E = 0).

    The replacement keeps the block diagonal of the layer's weight (its GC part).
    """

    positions = output_positions(conv, tuple(act.shape[2:]))
    weight = dense_weight(conv)
    results, weights = [], {}
    for method in methods:
        for g in groups:
            results.append(ApproxResult(method=method, groups=g, E=0.0, E_stderr=0.0, rel_E=0.0,
                                        rel_output_E=0.0, errors=(0.0,), unknowns=0,
                                        rows=int(act.shape[0]) * positions))
            n_g, m_g = conv.in_channels // g, conv.out_channels // g
            mask = np.kron(np.eye(g), np.ones((m_g, n_g)))
            weights[(method, g)] = weight * mask.reshape(mask.shape + (1,) * (weight.ndim - 2))
    return LayerApprox(layer=repr(conv), in_channels=conv.in_channels,
                       out_channels=conv.out_channels, kernel=tuple(conv.kernel_size),
                       samples=int(act.shape[0]), positions=positions, data_source="user",
                       results=tuple(results), weights=weights)


def approximability_of_model(
    model,
    data,
    methods: Sequence[str] = ("gc", "bgc"),
    groups: int | Iterable[int] = (2, 4, 8),
    *,
    layers: Iterable[str] | None = None,
    batch_size: int = 256,
    return_weights: bool = False,
) -> ModelApprox:
    """Approximability of every eligible conv of ``model`` on its real input activations.

    Parameters
    ----------
    model : torch.nn.Module
        Any model; its dense ``Conv1d`` / ``Conv2d`` layers are measured.
    data : tensor (or tuple of tensors, or array)
        A batch of model inputs, e.g. ``(S, 1, 8, 8)`` images; each conv is measured on
        the activations this batch produces at its input.
    methods : sequence of {"gc", "bgc"}
    groups : int or iterable of int
        The N values; a layer gets rows only for the N that divide its channels.
    layers : iterable of str, optional
        Qualified names of the convs to measure (default: all eligible).
    batch_size : int
        Inputs per forward pass while capturing.
    return_weights : bool
        Keep each best replacement's dense-equivalent weight in ``.weights``.

    Returns
    -------
    ModelApprox
        One row per (layer, method, N); see the module docstring for the columns.
    """
    return _measure(model, data, methods, groups, layers, batch_size, return_weights, False)


def replacement(conv, method: str, groups: int, weights=None, name: str = "conv"):
    """The module that replaces ``conv``: itself (``dense``), or the GC conv or
    :class:`~groupconv.nn.BalancedGroupConv` of :func:`groupconv.nn.grouped_like` carrying
    ``weights``, a dense-equivalent ``(m, n, kh, kw)`` array split into the structure's own
    weights (zeros when None, enough for pricing), in the conv's dtype."""
    torch = _torch()
    from ..nn import grouped_like

    v.one_of("method", method, ("dense", "gc", "bgc"))
    if method == "dense":
        return conv
    groups = v.positive_int("groups", groups)
    if weights is None:
        weights = np.zeros((conv.out_channels, conv.in_channels, *conv.kernel_size))
    new = grouped_like(conv, method, groups, name=name)
    bias = conv.bias is not None
    with torch.no_grad():
        if method == "gc":
            new.weight.copy_(torch.from_numpy(grouped_weights(weights, "gc", groups)))
            if bias:
                new.bias.copy_(conv.bias)
            return new
        gc, bar = grouped_weights(weights, "bgc", groups)
        new.grouped.weight.copy_(torch.from_numpy(gc))
        new.balance.weight.copy_(torch.from_numpy(bar))
        if bias:
            new.grouped.bias.copy_(conv.bias)
    return new


def convert_model(
    model,
    data,
    method: str = "bgc",
    groups: int = 4,
    layers: Iterable[str] | None = None,
    *,
    batch_size: int = 256,
):
    """A copy of ``model`` with its convs replaced by least-squares optimal GC or BGC layers.

    Parameters
    ----------
    model : torch.nn.Module
        Left unchanged.
    data : tensor (or tuple of tensors, or array)
        A batch of model inputs; each layer is fitted to the activations the original
        model feeds it on this batch.
    method : {"gc", "bgc"}
        ``torch.nn.Conv*d(..., groups=N)`` or :class:`groupconv.nn.BalancedGroupConv`.
    groups : int
        N; must divide the channels of every layer named in ``layers``.
    layers : iterable of str, optional
        Qualified names of the convs to convert (default: every dense conv whose channels
        N divides; the others, e.g. a first conv on 1 or 3 input channels, stay).

    Returns
    -------
    new_model : torch.nn.Module
        The converted copy (same dtype and device, same training flag).
    report : pandas.DataFrame
        One row per converted layer, columns :data:`CONVERT_COLUMNS`: ``E`` (Eq. 5.1 on
        ``data``: the converted layer's mean squared output error per sample, given the
        original layer's inputs), ``rel_E``, ``rel_output_E``, and the parameters and
        per-frame MACs before and after (cost model; BGC's MACs include the n D mean
        additions of Eq. 3.14).
    """
    from ..nn import set_submodule

    import pandas as pd

    v.one_of("method", method, METHODS)
    groups = v.positive_int("groups", groups)
    result = _measure(model, data, [method], [groups], layers, batch_size, True, layers is not None)
    if not result.rows:
        raise GroupConvError(f"no dense conv of the model has channels divisible by groups={groups}")
    new_model = copy.deepcopy(model)
    rows = []
    for r in result.rows:
        conv = model.get_submodule(r["layer"])
        dense = result.weights[(r["layer"], method, groups)]
        set_submodule(new_model, r["layer"], replacement(conv, method, groups, dense, r["layer"]))
        rows.append(dict(
            layer=r["layer"], method=method, groups=groups, E=r["E"], rel_E=r["rel_E"],
            rel_output_E=r["rel_output_E"], params_before=r["params_dense"],
            params_after=r["params"], macs_before=r["macs_dense"], macs_after=r["macs"],
        ))
    return new_model, pd.DataFrame(rows, columns=list(CONVERT_COLUMNS))
