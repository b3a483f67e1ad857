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
from ..errors import DeadChannelsWarning, GroupConvError
from ..platform import UnmeasuredKernelWarning, predict

__all__ = [
    "DESIGN_METHODS",
    "LayerOption",
    "OptionTable",
    "eligible_convs",
    "check_data_fits",
    "load_data",
    "option_table",
]

#: Options a layer may take (``dense`` is always one of them).
DESIGN_METHODS: tuple[str, ...] = ("dense", "gc", "bgc")


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


def check_data_fits(model, data) -> None:
    """One forward pass on the first sample; a mismatch is one line naming the shape."""
    import torch

    if not torch.is_tensor(data):
        raise GroupConvError(f"data must be a tensor or an array, got {type(data).__name__}")
    if data.ndim < 2 or data.shape[0] < 1:
        raise GroupConvError(f"data must be a batch of model inputs (samples, ...), got shape {tuple(data.shape)}")
    if not bool(torch.isfinite(data).all()):
        raise GroupConvError(f"data of shape {tuple(data.shape)} contain non-finite values")
    try:
        with torch.no_grad():
            model.eval()(data[:1])
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().split("\n")[0]
        raise GroupConvError(f"data of shape {tuple(data.shape)} do not fit the model: {first}") from None


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
            meta.eval()(torch.zeros(shape, device="meta"))
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
    with warnings.catch_warnings(record=True) as caught:
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
) -> OptionTable:
    """Price and measure every (method, N) of every eligible conv of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        The trained network (not modified).
    platform : groupconv.platform.Platform
    data : torch.Tensor
        Model inputs ``(samples, ...)``; each conv's own input activations are captured
        from them.
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

    Returns
    -------
    OptionTable
    """
    import torch

    for method in methods:
        v.one_of("method", method, ("gc", "bgc"))
    if groups is not None:
        groups = sorted({v.positive_int("groups", g) for g in groups})
    if not isinstance(model, torch.nn.Module):
        raise GroupConvError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_data_fits(model, data)
    shape = (1, *data.shape[1:]) if input_shape is None else tuple(v.positive_int("input shape", s) for s in input_shape)
    if len(shape) != data.ndim:
        raise GroupConvError(f"input shape {shape} has {len(shape)} dims, the data {tuple(data.shape)} have {data.ndim}")
    convs = eligible_convs(model)
    if not convs:
        raise GroupConvError("the model has no eligible conv (a dense Conv2d whose in and out channels share a divisor > 1)")
    names = [n for n, _ in convs]
    candidates = {n: _candidate_groups(conv, groups) for n, conv in convs}
    all_n = sorted({g for opts in candidates.values() for g in opts})
    # every conv's approximability on its own input activations from the data (one capture)
    approx = None
    if all_n and methods:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DeadChannelsWarning)
            approx = approximability_of_model(model, data, methods=tuple(methods), groups=all_n,
                                              layers=[n for n in names if candidates[n]], return_weights=True)
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
    reference = _outputs(model, data) if network else None
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
        net_errors = (_network_errors(model, conv, [rep for _, rep in found], data, reference, batching)
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
        samples=int(data.shape[0]), channels=tuple((c.in_channels, c.out_channels) for _, c in convs), notes=msgs,
        weights=fitted,
    )


def _outputs(model, data, chunk: int = 256):
    import torch

    outs = []
    model.eval()
    with torch.no_grad():
        for start in range(0, data.shape[0], chunk):
            y = model(data[start : start + chunk])
            if not torch.is_tensor(y):
                raise GroupConvError(f"the model returns {type(y).__name__}, not a tensor: network_E needs a "
                                     "tensor output (use network=False)")
            outs.append(y.detach().double())
    return torch.cat(outs)


def relative_output_error(model, data, reference, chunk: int = 256) -> float:
    """``sum ||model(x) - reference||^2 / sum ||reference||^2`` over ``data``."""
    y = _outputs(model, data, chunk)
    total = float((reference**2).sum())
    return float(((y - reference) ** 2).sum()) / total if total > 0 else float("nan")


def _network_error(model, conv, swap, data, reference) -> float:
    """Relative output error of ``model`` on ``data`` with ``conv`` computing ``swap`` instead."""
    handle = conv.register_forward_hook(lambda mod, args, out: swap(args[0]))
    try:
        return relative_output_error(model, data, reference)
    finally:
        handle.remove()


def _network_errors(model, conv, swaps, data, reference, batching: list, chunk: int = 256) -> list[float]:
    """:func:`_network_error` of each of ``swaps`` at ``conv``, in one pass of the network:
    the hooked ``conv`` returns the outputs of every swap stacked along the batch, so the
    layers before it run once and the layers after it see ``len(swaps)`` copies of each
    chunk. The same numbers as one pass per swap (checked on the first layer: a model
    whose later layers mix the samples of a batch falls back to one pass per swap)."""
    import torch

    if not swaps:
        return []
    if batching[0] is False or len(swaps) == 1:
        return [_network_error(model, conv, s, data, reference) for s in swaps]
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
