"""The per-layer option table: every (method, N) of every eligible conv, priced and measured.

For every eligible conv of a trained model (a dense ``torch.nn.Conv2d``, ``groups == 1``,
whose in and out channels share a divisor > 1) and every option - the layer as it is
(``dense``), group convolution with N groups (``gc``, BGC paper Eq. 2.3) and balanced
group convolution (``bgc``, Eq. 3.1: a grouped conv plus a dense conv of the group mean)
- the table holds:

* the predicted time per frame (and energy, where the platform has a meter) of the
  replacement on the platform: the replacement module is traced on ``meta`` at the
  layer's own input shape and every operator it runs is priced with
  :meth:`groupconv.platform.Platform.predict_op` (for BGC: the grouped conv, the mean,
  the small dense conv and the add);
* its weights and MACs per frame;
* its approximation error on the layer's **own input activations** from the user's data
  (:func:`groupconv.approx.network.approximability_of_model`): ``rel_output_E``, the
  fraction of the layer's output energy the best least-squares replacement loses, and
  ``E``, the mean squared output error per sample;
* ``network_E``: the fraction of the network's output energy on the data lost when that
  layer alone takes the option (its least-squares weights, one forward pass).

torch is imported inside the functions.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .. import _progress
from .. import _validate as v
from ..approx.network import approximability_of_model, replacement
from ..approx.network import eligible_convs as dense_convs
from ..approx.torch_layers import output_positions
from ..cost.optimum import admissible_groups
from ..errors import DeadChannelsWarning, GroupConvError, UserModelError
from ..platform import UnmeasuredKernelWarning, predict
from ..vocab import DESIGN_METHODS, GROUPED_METHODS

__all__ = [
    "DESIGN_METHODS",
    "LayerOption",
    "OptionTable",
    "eligible_convs",
    "check_data_fits",
    "load_data",
    "option_table",
]



def eligible_convs(model) -> list[tuple[str, object]]:
    """``(name, conv)`` of every dense ``Conv2d`` of ``model`` that some N > 1 can group.

    The dense convs of :func:`groupconv.approx.network.eligible_convs` that are 2-D (BGC
    is a 2-D module) and whose in and out channels share a divisor greater than 1
    (a 3-channel stem feeding an even number of filters is left as it is).
    """
    import torch

    return [(name, mod) for name, mod in dense_convs(model).items()
            if isinstance(mod, torch.nn.Conv2d) and math.gcd(mod.in_channels, mod.out_channels) > 1]


def load_data(path: str):
    """Model inputs from a ``.pt`` tensor or a ``.npy`` array (float32 tensor on CPU)."""
    import numpy as np
    import torch

    text = str(path)
    if text.endswith(".npy"):
        try:
            array = np.load(text, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise GroupConvError(f"data {text!r}: not a readable .npy array ({exc})".split("\n")[0]) from None
        if not np.issubdtype(array.dtype, np.number):
            raise GroupConvError(f"data {text!r}: a numeric array expected, got dtype {array.dtype}")
        return torch.as_tensor(array).float()
    if text.endswith(".pt"):
        try:
            obj = torch.load(text, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise GroupConvError(f"data file {text!r} does not exist") from None
        except Exception as exc:  # torch raises many kinds on a corrupt file
            raise GroupConvError(f"data {text!r}: not a readable torch tensor ({type(exc).__name__})") from None
        if not torch.is_tensor(obj):
            raise GroupConvError(f"data {text!r}: a tensor expected, got {type(obj).__name__}")
        return obj.float()
    raise GroupConvError(f"data {text!r}: must be a .pt tensor or a .npy array")


def _first_batch(data, input_index=None) -> tuple:
    """The first batch of model inputs of any data source (:mod:`groupconv.approx.sources`)."""
    from ..approx.sources import iter_batches

    for inputs in iter_batches(data, input_index=input_index):
        return inputs
    raise GroupConvError("data yielded no samples")  # pragma: no cover - iter_batches raises first


def check_data_fits(model, data, input_index=None) -> tuple:
    """One forward pass on the first sample; a mismatch is one line naming the shape.

    ``data`` is a tensor or any data source of :func:`groupconv.approx.sources.iter_batches`
    (iterable of batches, DataLoader, shard directory). Returns the first batch's inputs.
    """
    import torch

    def describe_batch(inputs):
        return " + ".join(str(tuple(x.shape)) for x in inputs)

    if torch.is_tensor(data) and (data.ndim < 2 or data.shape[0] < 1):
        raise GroupConvError(f"data must be a batch of model inputs (samples, ...), got shape {tuple(data.shape)}")
    first = _first_batch(data, input_index)
    if first[0].ndim < 2:
        raise GroupConvError(f"data must be batches of model inputs (samples, ...), got shape {describe_batch(first)}")
    if not all(bool(torch.isfinite(x).all()) for x in first if x.is_floating_point()):
        raise GroupConvError(f"data of shape {describe_batch(first)} contain non-finite values")
    try:
        with torch.no_grad():
            model.eval()(*(x[:1] for x in first))
    except GroupConvError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        text = str(exc).strip().split("\n")[0]
        raise GroupConvError(f"data of shape {describe_batch(first)} do not fit the model: {text}") from None
    except SystemExit as exc:  # the model's own code called sys.exit
        raise UserModelError(f"model {type(model).__name__} called sys.exit({exc.code!r}) while running") from None
    except Exception as exc:  # the model's own exception class: one line naming it
        text = (str(exc).strip().split("\n") or [""])[0]
        raise UserModelError(f"model {type(model).__name__} raised {type(exc).__name__}: {text}") from None
    return first


def _input_shapes(model, shape, names: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """The input shape of each named module when ``model`` runs on ``shape`` (on meta)."""
    import copy

    import torch

    meta = copy.deepcopy(model).to("meta")
    modules = dict(meta.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}
    def record(name):
        def hook(mod, args):  # returns None: the inputs pass unchanged
            shapes.setdefault(name, tuple(int(d) for d in args[0].shape))
        return hook

    hooks = [modules[n].register_forward_pre_hook(record(n)) for n in names]
    try:
        with torch.no_grad():
            dtype = next((p.dtype for p in meta.parameters() if p.is_floating_point()), torch.float32)
            meta.eval()(torch.zeros(shape, device="meta", dtype=dtype))
    finally:
        for h in hooks:
            h.remove()
    return shapes


@dataclass(frozen=True)
class LayerOption:
    """One option of one layer.

    Attributes
    ----------
    layer : str
        The conv's qualified name in the model.
    method : {"dense", "gc", "bgc"}
    groups : int
        N (1 for dense).
    time_s : float
        Predicted time per frame of the replacement (all its operators) on the platform.
    energy_J : float or None
        Predicted energy per frame (None without an energy meter).
    params, macs : int
        Weights (no bias) and MACs per frame of the replacement's convs (BGC: both convs;
        the mean's additions are not MACs).
    rel_output_E : float
        Fraction of the layer's output energy on the data that the best least-squares
        replacement loses (0 for dense).
    E : float
        Mean squared output error per sample of that replacement (BGC paper Eq. 5.1 with
        the layer's own weight).
    network_E : float or None
        Fraction of the **network's** output energy on the data lost when this layer
        alone takes this option (least-squares weights): ``sum ||f'(x) - f(x)||^2 /
        sum ||f(x)||^2`` (0 for dense; None when not measured).
    """

    layer: str
    method: str
    groups: int
    time_s: float
    energy_J: float | None
    params: int
    macs: int
    rel_output_E: float
    E: float
    network_E: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class OptionTable:
    """Every option of every eligible conv, and what the rest of the network costs.

    Attributes
    ----------
    layers : tuple of str
        Eligible convs, in model order.
    options : tuple of tuple of LayerOption
        ``options[l]``: the options of ``layers[l]``; the first is ``dense``.
    input_shape : tuple of int
        The input shape the platform priced (batch first).
    base_time_s, base_energy_J : float
        Predicted time (energy) per frame of the whole unchanged model.
    base_params : int
        Weights of the whole unchanged model (every parameter, biases included).
    samples : int
        Data samples the activations came from.
    channels : tuple of (int, int)
        ``(in_channels, out_channels)`` of every eligible conv.
    notes : tuple of str
    weights : dict
        ``(layer, method, N) -> `` the least-squares replacement's dense-equivalent
        weight (kept when ``network=True``), so that converting a plan refits nothing.
    """

    layers: tuple[str, ...]
    options: tuple[tuple[LayerOption, ...], ...]
    input_shape: tuple[int, ...]
    base_time_s: float
    base_energy_J: float | None
    base_params: int
    samples: int
    channels: tuple[tuple[int, int], ...] = ()
    notes: tuple[str, ...] = field(default=())
    weights: dict = field(default_factory=dict, compare=False, repr=False)

    def column(self, name: str) -> list[list[float]]:
        """``[[option.name for option in layer] for layer in options]``."""
        return [[getattr(o, name) for o in row] for row in self.options]

    def records(self) -> list[dict[str, object]]:
        return [o.as_dict() for row in self.options for o in row]

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.records())

    def as_dict(self) -> dict[str, object]:
        return {
            "layers": list(self.layers), "input_shape": list(self.input_shape),
            "base_time_s": self.base_time_s, "base_energy_J": self.base_energy_J,
            "base_params": self.base_params, "samples": self.samples,
            "channels": [list(c) for c in self.channels],
            "options": self.records(), "notes": list(self.notes),
        }

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(index=False, float_format=lambda x: f"{x:.4g}")


def _candidate_groups(conv, groups: Iterable[int] | None) -> list[int]:
    admissible = admissible_groups(conv.in_channels, conv.out_channels)
    if groups is None:
        return [g for g in admissible if g > 1]
    return [g for g in groups if g > 1 and g in admissible]


def _price(platform, module, shape) -> tuple[float, float | None, tuple[str, ...]]:
    """Predicted time (and energy) of ``module`` at ``shape`` on ``platform``, in the
    platform's dtype: the platform describes where the design is deployed, so a model kept
    in float64 for accurate least squares is priced as the float32 network it becomes there
    (a copy; the model itself is not changed)."""
    import copy

    import torch

    dtype = getattr(torch, platform.dtype)
    floats = {p.dtype for p in module.parameters() if p.is_floating_point()}
    if floats and floats != {dtype}:
        module = copy.deepcopy(module).to(dtype)
    with warnings.catch_warnings(record=True):  # recorded, not shown: pred.unmeasured names them
        warnings.simplefilter("always", UnmeasuredKernelWarning)
        pred = predict(platform, module, shape)
    return float(pred.time_s), pred.energy_J, tuple(pred.unmeasured)


def option_table(
    model,
    platform,
    data,
    *,
    methods: Sequence[str] = ("gc", "bgc"),
    groups: Iterable[int] | None = None,
    input_shape: Sequence[int] | None = None,
    network: bool = True,
    progress: bool = False,
    input_index=None,
) -> OptionTable:
    """Price and measure every (method, N) of every eligible conv of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        The trained network (not modified).
    platform : groupconv.platform.Platform
    data : tensor, iterable of batches, DataLoader or ShardDirectory
        Model inputs ``(samples, ...)`` (:func:`groupconv.approx.sources.iter_batches`);
        each conv's patch statistics are streamed from its input activations on them
        (summed over the ranks under torch.distributed). It is read more than once
        (statistics, then ``network_E``): a DataLoader or list, not a one-shot generator.
    methods : sequence of {"gc", "bgc"}
        Grouped forms to consider besides ``dense``.
    groups : iterable of int, optional
        The N to consider (each layer keeps those that divide its channels); default
        every divisor > 1 of ``gcd(in, out)``.
    input_shape : sequence of int, optional
        Input shape the platform prices, batch first (default ``(1, *data.shape[1:])``).
    network : bool
        Also measure every option's ``network_E`` (one forward pass over the data per
        option, with that layer alone swapped in).
    progress : bool
        A tqdm bar over the layers.
    input_index : int, sequence of int or callable, optional
        Which part of a batch is the model input (labelled data: ``input_index=0``).

    Returns
    -------
    OptionTable
    """
    import torch

    for method in methods:
        v.one_of("method", method, GROUPED_METHODS)
    if groups is not None:
        groups = sorted({v.positive_int("groups", g) for g in groups})
    if not isinstance(model, torch.nn.Module):
        raise GroupConvError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    first = check_data_fits(model, data, input_index)[0]
    shape = (1, *first.shape[1:]) if input_shape is None else tuple(v.positive_int("input shape", s) for s in input_shape)
    if len(shape) != first.ndim:
        raise GroupConvError(f"input shape {shape} has {len(shape)} dims, the data {tuple(first.shape)} have {first.ndim}")
    convs = eligible_convs(model)
    if not convs:
        raise GroupConvError("the model has no eligible conv (a dense Conv2d whose in and out channels share a divisor > 1)")
    names = [n for n, _ in convs]
    candidates = {n: _candidate_groups(conv, groups) for n, conv in convs}
    all_n = sorted({g for opts in candidates.values() for g in opts})
    if groups is not None:
        # a group count that divides no eligible conv would silently leave dense only
        unused = [g for g in groups if g not in all_n]
        if unused and not all_n:
            possible = sorted({g for _, conv in convs for g in _candidate_groups(conv, None)})
            raise GroupConvError(
                f"groups {', '.join(map(str, unused))} divide(s) no eligible conv's in and out channels: only "
                f"dense would be left; group counts these convs admit: {', '.join(map(str, possible[:12]))}"
            )
        if unused:
            warnings.warn(f"groups {', '.join(map(str, unused))} divide(s) no eligible conv's in and out "
                          "channels: left out", stacklevel=2)
    # every conv's approximability on its own input activations from the data (one capture)
    approx = None
    if all_n and methods:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DeadChannelsWarning)
            approx = approximability_of_model(model, data, methods=tuple(methods), groups=all_n,
                                              layers=[n for n in names if candidates[n]], return_weights=True,
                                              input_index=input_index, progress=progress)
        dead = [w for w in caught if issubclass(w.category, DeadChannelsWarning)]
        deficient = (len(dead), sorted({str(w.message).split(" output group ")[0] for w in dead}))
        for w in caught:
            if not issubclass(w.category, DeadChannelsWarning):
                warnings.warn(w.message, w.category, stacklevel=2)
    else:
        deficient = (0, [])
    shapes = _input_shapes(model, shape, names)  # each conv's input at the priced shape
    base_t, base_e, unmeasured = _price(platform, model, shape)
    notes = set(unmeasured)
    reference = _outputs(model, data, input_index=input_index) if network else None
    batching = [None]  # whether the model passes stacked options through (checked on first use)
    rows = []
    fitted: dict = {}
    steps = _progress.progress(convs, desc="pricing and scoring layers", unit="conv") if progress else convs
    for name, conv in steps:
        in_shape = shapes[name]
        t, e, un = _price(platform, conv, in_shape)
        notes.update(un)
        w = int(conv.weight.numel())
        out_hw = _out_positions(conv, in_shape[2:])
        row = [LayerOption(name, "dense", 1, t, e, w, w * out_hw, 0.0, 0.0, 0.0 if network else None)]
        found = []
        for r in (approx.rows if approx is not None else ()):
            if r["layer"] != name or r["groups"] not in candidates[name]:
                continue
            weights = approx.weights[(name, r["method"], r["groups"])]
            rep = replacement(conv, r["method"], r["groups"], weights=weights, name=name)
            if network:
                fitted[(name, r["method"], int(r["groups"]))] = weights
            found.append((r, rep))
        # every option of this layer in one pass of the network (the layers before it run once)
        net_errors = (_network_errors(model, conv, [rep for _, rep in found], data, reference, batching,
                                      input_index=input_index)
                      if network else [None] * len(found))
        for (r, rep), net_e in zip(found, net_errors):
            t, e, un = _price(platform, rep, in_shape)
            notes.update(un)
            p = sum(int(mod.weight.numel()) for mod in rep.modules() if isinstance(mod, torch.nn.Conv2d))
            row.append(LayerOption(name, r["method"], int(r["groups"]), t, e, p, p * out_hw,
                                   float(r["rel_output_E"]), float(r["E"]), net_e))
        rows.append(tuple(row))
    base_params = sum(int(p.numel()) for p in model.parameters())
    msgs = ((f"kernel type(s) {', '.join(sorted(notes))} never measured on this platform: priced from the "
             "roofline",) if notes else ())
    if deficient[0]:
        msgs += (f"{deficient[0]} least-squares fit(s) ({', '.join(deficient[1])}) had linearly dependent "
                 "regressors (dead, constant or duplicated input channels in DATA): solved by a pseudo-inverse, "
                 "the error stays exact (DeadChannelsWarning)",)
    return OptionTable(
        layers=tuple(n for n, _ in convs), options=tuple(rows), input_shape=tuple(shape),
        base_time_s=base_t, base_energy_J=base_e, base_params=base_params,
        samples=int(approx.samples if approx is not None else len(reference) if reference is not None else 0),
        channels=tuple((c.in_channels, c.out_channels) for _, c in convs), notes=msgs,
        weights=fitted,
    )


def _outputs(model, data, chunk: int = 256, input_index=None):
    """The model's outputs on every batch of ``data`` (float64 on the CPU, concatenated)."""
    import torch

    from ..approx.sources import iter_batches

    outs = []
    model.eval()
    with torch.no_grad():
        for inputs in iter_batches(data, input_index=input_index, batch_size=chunk):
            y = model(*inputs)
            if not torch.is_tensor(y):
                raise GroupConvError(f"the model returns {type(y).__name__}, not a tensor: network_E needs a "
                                     "tensor output (use network=False)")
            outs.append(y.detach().to("cpu", torch.float64))
    return torch.cat(outs)


def relative_output_error(model, data, reference, chunk: int = 256, input_index=None) -> float:
    """``sum ||model(x) - reference||^2 / sum ||reference||^2`` over ``data``.

    Under torch.distributed both sums run over every rank's shard (each rank passes its
    own data and its own reference outputs), so every rank gets the same value.
    """
    import torch

    from ..approx import distributed

    y = _outputs(model, data, chunk, input_index)
    sums = torch.stack([((y - reference) ** 2).sum(), (reference**2).sum()]).to(torch.float64)
    if distributed.active():
        distributed.all_reduce_sum(sums)
    lost, total = float(sums[0]), float(sums[1])
    return lost / total if total > 0 else float("nan")


def _network_error(model, conv, swap, data, reference, input_index=None) -> float:
    """Relative output error of ``model`` on ``data`` with ``conv`` computing ``swap`` instead."""
    handle = conv.register_forward_hook(lambda mod, args, out: swap(args[0]))
    try:
        return relative_output_error(model, data, reference, input_index=input_index)
    finally:
        handle.remove()


def _network_errors(model, conv, swaps, data, reference, batching: list, chunk: int = 256,
                    input_index=None) -> list[float]:
    """:func:`_network_error` of each of ``swaps`` at ``conv``, in one pass of the network:
    the hooked ``conv`` returns the outputs of every swap stacked along the batch, so the
    layers before it run once and the layers after it see ``len(swaps)`` copies of each
    chunk. The same numbers as one pass per swap (checked on the first layer: a model
    whose later layers mix the samples of a batch falls back to one pass per swap, and so
    does streamed or distributed data, which the stacked pass does not slice)."""
    import torch

    from ..approx import distributed

    if not swaps:
        return []
    if (batching[0] is False or len(swaps) == 1 or not torch.is_tensor(data) or input_index is not None
            or distributed.active()):
        return [_network_error(model, conv, s, data, reference, input_index) for s in swaps]
    k = len(swaps)
    step = max(1, chunk // k)
    sums = [0.0] * k
    hook = conv.register_forward_hook(lambda mod, args, out: torch.cat([s(args[0]) for s in swaps]))
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, data.shape[0], step):
                x = data[start : start + step]
                y = model(x)
                if not torch.is_tensor(y) or y.shape[0] != k * x.shape[0]:
                    batching[0] = False
                    break
                ref = reference[start : start + x.shape[0]]
                for i, part in enumerate(y.detach().double().split(x.shape[0])):
                    sums[i] += float(((part - ref) ** 2).sum())
    except Exception:  # e.g. a reshape to a fixed batch after the layer: one pass per swap
        batching[0] = False
    finally:
        hook.remove()
    if batching[0] is False:
        return [_network_error(model, conv, s, data, reference) for s in swaps]
    total = float((reference**2).sum())
    errors = [s / total if total > 0 else float("nan") for s in sums]
    if batching[0] is None:  # first use: the stacked pass must equal one pass per swap
        single = _network_error(model, conv, swaps[-1], data, reference)
        batching[0] = math.isclose(single, errors[-1], rel_tol=1e-6, abs_tol=1e-12)
        if not batching[0]:
            return [_network_error(model, conv, s, data, reference) for s in swaps]
    return errors


def _out_positions(conv, spatial: Sequence[int]) -> int:
    return output_positions(conv, tuple(int(s) for s in spatial))
