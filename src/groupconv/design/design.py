"""Design the grouping of any trained network: per-layer dense, GC or BGC and N.

:func:`design` builds the option table of a model (:func:`~groupconv.design.options.option_table`:
every (method, N) of every eligible conv, its predicted time and energy on the platform,
its error on the layer's own activations), computes the exact Pareto front of total
predicted cost against total error (:func:`~groupconv.optimize.pareto_front`), puts
the paper's plans on it (FgGC/GC and BGC with a constant N, E2GC with a constant group
size G) and, under a budget, chooses one plan:

* ``max_error=X``: the cheapest plan whose error is at most X;
* ``max_time_s=T``: the plan with the least error whose predicted time is at most T;
* ``max_params=P``: (alone) the plan with the least error within P weights; with another
  budget, a constraint on the front itself (searched exactly, not filtered afterwards).

A plan's cost is the whole model's prediction with the options swapped in
(``base + sum_l (option_l - dense_l)``: a platform prices a network as a sum over its
operators, and only the chosen convs change), its error the sum over layers of each
option's ``network_E`` - the network's output error on the data with that layer alone
replaced - or, with ``aggregate="rel_output_E"``, of the layer's own lost output fraction
(which to use, and why a sum: ``docs/design.md``).

:func:`convert_plan` turns a plan into a model: every grouped layer gets its
least-squares weights for the data (the same fit that measured its error).

torch is imported inside the functions.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import _validate as v
from .. import _progress
from .._atomic import atomic_write, atomic_write_text
from ..errors import DeadChannelsWarning, ExportWarning, GroupConvError
from ..approx.network import convert_model, replacement
from .options import OptionTable, option_table
from ..optimize import pareto_front

#: Error aggregates: the sum over layers of each option's ``network_E`` (the network's
#: output error with that layer alone replaced) or of its ``rel_output_E`` (the layer's).
AGGREGATES: tuple[str, ...] = ("network_E", "rel_output_E")

__all__ = ["AGGREGATES", "Plan", "Design", "design", "plan_from_table", "constant_plans", "convert_plan", "export_plan"]


@dataclass(frozen=True)
class Plan:
    """One grouping of the network: an option per eligible conv and its predicted totals.

    Attributes
    ----------
    label : str
        ``"front"``, ``"designed"``, ``"gc N=4"``, ``"bgc N=4"``, ``"e2gc G=16"`` ...
    layers : tuple of dict
        One ``{"layer", "method", "groups"}`` per eligible conv, in model order.
    time_s : float
        Predicted time per frame of the whole model.
    energy_J : float or None
    error : float
        The aggregate error: the sum over layers of the option table's ``network_E``
        (or ``rel_output_E``; see :func:`design`).
    params, macs : int
        Weights of the whole model (biases included) and MACs per frame of its
        eligible convs.
    measured_error : float or None
        The network's output error on the data with the whole plan converted
        (``sum ||f'(x) - f(x)||^2 / sum ||f(x)||^2``), where it was measured.
    """

    label: str
    layers: tuple[dict, ...]
    time_s: float
    energy_J: float | None
    error: float
    params: int
    macs: int
    measured_error: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {"label": self.label, "layers": [dict(l) for l in self.layers], "time_s": self.time_s,
                "energy_J": self.energy_J, "error": self.error, "params": self.params, "macs": self.macs,
                "measured_error": self.measured_error}

    def key(self) -> tuple:
        """``((method, N), ...)`` per layer: what identifies the grouping."""
        return tuple((l["method"], l["groups"]) for l in self.layers)

    def short(self) -> str:
        """``conv1 dense, conv2 gc 4, ...``."""
        return ", ".join(f"{l['layer']} {l['method']}" + ("" if l["method"] == "dense" else f" {l['groups']}")
                         for l in self.layers)

    def cost(self, objective: str) -> float:
        return self.time_s if objective == "time_s" else float(self.energy_J)


def _compact(plan: "Plan", width: int = 72) -> str:
    """``plan.short()``, or where that is longer than ``width`` characters the count of
    layers per form (``gc 32 x12, bgc 4 x2``); ``--json`` lists every layer."""
    text = plan.short()
    if len(text) <= width:
        return text
    counts: dict[str, int] = {}
    for l in plan.layers:
        key = l["method"] + ("" if l["method"] == "dense" else f" {l['groups']}")
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k} x{n}" for k, n in counts.items())


def plan_from_table(table: OptionTable, choice: Sequence[int], label: str = "plan",
                    aggregate: str = "network_E") -> Plan:
    """The plan that takes option ``choice[l]`` of every layer ``l`` of ``table``; its
    error is the sum over layers of the option column ``aggregate``."""
    v.one_of("aggregate", aggregate, AGGREGATES)
    if len(choice) != len(table.options):
        raise GroupConvError(f"a plan needs one option per layer ({len(table.options)}), got {len(choice)}")
    time_s = table.base_time_s
    energy = table.base_energy_J
    params, macs, error, layers = table.base_params, 0, 0.0, []
    for row, i in zip(table.options, choice):
        opt, dense = row[i], row[0]
        time_s += opt.time_s - dense.time_s
        if energy is not None:
            energy += (opt.energy_J or 0.0) - (dense.energy_J or 0.0)
        params += opt.params - dense.params
        macs += opt.macs
        value = getattr(opt, aggregate)
        if value is None:
            raise GroupConvError(f"the option table has no {aggregate} (built with network=False)")
        error += value
        layers.append({"layer": opt.layer, "method": opt.method, "groups": opt.groups})
    return Plan(label, tuple(layers), float(time_s), energy, float(error), int(params), int(macs))


def _index(row, method: str, groups: int) -> int | None:
    for i, o in enumerate(row):
        if o.method == method and o.groups == groups:
            return i
    return None


def constant_plans(table: OptionTable, methods: Sequence[str] = ("gc", "bgc"),
                   aggregate: str = "network_E") -> tuple[Plan, ...]:
    """The paper's plans: GC (FgGC) and BGC with one N for every layer, E2GC with one
    group size G (N = in_channels / G per layer, dense where that is 1).

    A constant plan exists only where every eligible conv admits it.
    """
    out = []
    ns = sorted({o.groups for row in table.options for o in row if o.method != "dense"})
    for method in methods:
        for n in ns:
            choice = [_index(row, method, n) for row in table.options]
            if all(c is not None for c in choice):
                out.append(plan_from_table(table, choice, f"{method} N={n}", aggregate))
    if "gc" in methods:
        ins = [c for c, _ in table.channels]
        sizes = sorted({g for c in ins for g in range(1, c + 1) if c % g == 0})
        for g in sizes:
            choice = []
            for row, c in zip(table.options, ins):
                if c % g:
                    choice.append(None)
                    continue
                n = c // g
                choice.append(0 if n == 1 else _index(row, "gc", n))
            if all(c is not None for c in choice) and any(c != 0 for c in choice):
                out.append(plan_from_table(table, choice, f"e2gc G={g}", aggregate))
    return tuple(out)


@dataclass(frozen=True, eq=False)
class Design:
    """The designed grouping of one model on one platform.

    Attributes
    ----------
    table : OptionTable
    objective : {"time_s", "energy_J"}
        The cost on the front.
    front : tuple of Plan
        The exact Pareto front of (total cost, total error), cheapest first.
    chosen : Plan or None
        The plan the budgets select (None without a budget).
    constant : tuple of Plan
        The paper's constant plans, priced and measured the same way.
    budgets : dict
        ``max_error``, ``max_time_s``, ``max_params`` (None when not given).
    notes : tuple of str
    aggregate : str
        What a plan's ``error`` sums (see :func:`design`).
    """

    table: OptionTable
    objective: str
    front: tuple[Plan, ...]
    chosen: Plan | None
    constant: tuple[Plan, ...]
    budgets: dict
    notes: tuple[str, ...] = field(default=())
    aggregate: str = "network_E"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: ``plans`` (the front), ``chosen``, ``constant_plans``, ``options``."""
        return {
            "objective": self.objective,
            "aggregate": self.aggregate,
            "budgets": dict(self.budgets),
            "chosen": None if self.chosen is None else self.chosen.as_dict(),
            "plans": [p.as_dict() for p in self.front],
            "constant_plans": [p.as_dict() for p in self.constant],
            "base_time_s": self.table.base_time_s,
            "base_energy_J": self.table.base_energy_J,
            "base_params": self.table.base_params,
            "input_shape": list(self.table.input_shape),
            "samples": self.table.samples,
            "options": self.table.records(),
            "notes": list(self.notes) + list(self.table.notes),
        }

    def summary(self, rows: int | None = 10) -> str:
        """The text report: the front (at most ``rows`` plans, evenly spread; None for all),
        the paper's constant plans, the chosen plan, what the error means, the notes."""
        t = self.table
        what = ("the network's output" if self.aggregate == "network_E" else "each grouped layer's own output")
        lines = [f"{len(t.layers)} eligible conv(s), {sum(len(r) for r in t.options)} options, "
                 f"{len(self.front)} plans on the front of {self.objective} against error; "
                 f"dense model {t.base_time_s * 1e3:.4g} ms/frame, {t.base_params:,} weights",
                 f"error: the fraction of {what} lost on DATA, summed over the plan's grouped layers "
                 "(0 exact; 1 as bad as an output of zeros; above 1 worse than zeros)"]
        header = f"{'time ms/frame':>13} {'vs dense':>8} {'error':>8} {'weights':>10}  plan"

        def row(p) -> str:
            return (f"{p.time_s * 1e3:13.4g} {p.time_s / t.base_time_s:7.2f}x {p.error:8.4f} "
                    f"{p.params:>10,}  {_compact(p)}")

        shown = list(range(len(self.front)))
        if rows is not None and len(shown) > rows:
            shown = sorted({round(i * (len(shown) - 1) / (rows - 1)) for i in range(rows)})
        lines.append("front (cheapest first)" + ("" if len(shown) == len(self.front) else
                     f", {len(shown)} of {len(self.front)} plans (--json lists all):"))
        lines.append(header)
        lines += [row(self.front[i]) for i in shown]
        if self.constant:  # one row per distinct plan (E2GC G=1 is GC N=n, ...), all its names
            names: dict = {}
            for p in self.constant:
                names.setdefault(p.key(), [p]).append(p.label)
            lines.append("the paper's constant plans, priced and scored the same way:")
            lines += [row(ps[0]) + f"  [{' = '.join(ps[1:])}]" for ps in names.values()]
        if self.chosen is not None:
            c = self.chosen
            measured = "" if c.measured_error is None else f" (measured on the data: {c.measured_error:.4f})"
            lines.append(f"chosen ({c.label}): {c.time_s * 1e3:.4g} ms/frame, error {c.error:.4f}{measured}, "
                         f"{c.params:,} weights: {_compact(c)}")
            if c.time_s > t.base_time_s:
                lines.append(f"note: the chosen plan is predicted slower than the dense model "
                             f"({c.time_s * 1e3:.4g} vs {t.base_time_s * 1e3:.4g} ms/frame): it meets the budget "
                             "with fewer weights, not less time; --max-time-s bounds the time")
        lines += [f"note: {n}" for n in (*self.notes, *t.notes)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Design {len(self.table.layers)} convs, {len(self.front)} plans on the front, chosen={self.chosen is not None}>"

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(self.summary()) + "</pre>"


def design(
    model,
    platform,
    data,
    *,
    methods: Sequence[str] = ("gc", "bgc"),
    groups: Iterable[int] | None = None,
    input_shape: Sequence[int] | None = None,
    max_error: float | None = None,
    max_time_s: float | None = None,
    max_params: int | None = None,
    objective: str | None = None,
    aggregate: str = "network_E",
    rescore: bool = True,
    measured_cache: dict | None = None,
    table: OptionTable | None = None,
    progress: bool = False,
    sequential: bool = False,
    input_index=None,
) -> Design:
    """The per-layer grouping of ``model`` for the least cost at the least error.

    Parameters
    ----------
    model, platform, data, methods, groups, input_shape :
        As for :func:`~groupconv.design.options.option_table` (the trained model, the
        platform file's value, the model inputs, the options considered and the priced
        input shape).
    max_error, max_time_s, max_params : optional
        Budgets (see the module docstring). ``max_time_s`` is a time budget, so the
        front is then of time.
    objective : {"time_s", "energy_J"}, optional
        Cost of the front (default: energy where the platform has a meter, else time).
    aggregate : {"network_E", "rel_output_E"}
        The total error of a plan: the sum over its layers of each option's
        ``network_E`` (default; the network's output error with that layer alone
        replaced) or of its ``rel_output_E`` (the layer's own). ``docs/design.md`` says
        why the default, with the measurements.
    rescore : bool
        Under a budget, convert every candidate - each front plan and each constant
        plan within the budget - as a whole, measure the network's output error on the
        data (``measured_error``) and choose by it: the least measured error within a
        time or params budget, the cheapest plan whose measured error is at most
        ``max_error``. The additive error only builds the front (``docs/design.md``: the
        sum is optimistic where several layers are grouped hard). ``False``: choose on
        the front by the additive error.
    measured_cache : dict, optional
        ``plan.key() -> measured error``, shared between calls on the same table.
    table : OptionTable, optional
        A table already built (skips the measurements).
    progress : bool
    sequential : bool
        Rescore (and convert) plans with :func:`convert_plan`'s ``sequential=True``: each
        grouped layer fitted on the inputs of the already converted network.
    input_index : int, sequence of int or callable, optional
        Which part of a batch is the model input (labelled data: ``input_index=0``).

    Returns
    -------
    Design

    Raises
    ------
    GroupConvError
        Bad data or budgets; a budget no plan meets (the message names the nearest plan).
    """
    if objective is not None:
        v.one_of("objective", objective, ("time_s", "energy_J"))
    v.one_of("aggregate", aggregate, AGGREGATES)
    if max_error is not None:
        max_error = _nonneg("max_error", max_error)
    if max_time_s is not None:
        max_time_s = v.finite_positive("max_time_s", max_time_s)
    if max_params is not None:
        max_params = v.positive_int("max_params", max_params)
    if table is None:
        table = option_table(model, platform, data, methods=methods, groups=groups,
                             input_shape=input_shape, network=aggregate == "network_E", progress=progress,
                             input_index=input_index)
    has_energy = table.base_energy_J is not None
    if objective is None:
        objective = "time_s" if (max_time_s is not None or not has_energy) else "energy_J"
    if objective == "energy_J" and not has_energy:
        raise GroupConvError("objective energy_J needs a platform with an energy meter; this one has none")
    if objective == "energy_J" and max_time_s is not None:
        raise GroupConvError("max_time_s is a time budget: use objective time_s with it")
    key = "time_s" if objective == "time_s" else "energy_J"
    cost = [[getattr(o, key) or 0.0 for o in row] for row in table.options]
    error = table.column(aggregate)
    if any(e is None for row in error for e in row):
        raise GroupConvError(f"the option table has no {aggregate} (built with network=False)")
    params = table.column("params")
    dense_params = sum(row[0].params for row in table.options)
    fixed = table.base_params - dense_params
    budgeted = None if max_params is None else max_params - fixed
    try:
        points = pareto_front(cost, error, params, max_params=budgeted)
    except GroupConvError:
        least = plan_from_table(table, [min(range(len(r)), key=lambda i: (r[i].params, getattr(r[i], aggregate)))
                                        for r in table.options], "fewest params", aggregate)
        raise GroupConvError(f"no plan has at most max_params {max_params:,} weights: the nearest has "
                             f"{least.params:,} ({_describe(least)})") from None
    front = tuple(plan_from_table(table, q.choice, "front", aggregate) for q in points)
    chosen = _choose(front, objective, max_error, max_time_s, max_params)
    constant = constant_plans(table, tuple(methods), aggregate)
    if chosen is not None and rescore:
        chosen = _rescore(model, data, table, front, constant, objective, max_error, max_time_s, max_params,
                          measured_cache, sequential=sequential, input_index=input_index)
    notes = []
    if any(o.method == "bgc" and o.groups == 2 for row in table.options for o in row):
        notes.append("BGC with N = 2 spans every input channel (error 0) at the dense weight count")
    return Design(table=table, objective=objective, front=front, chosen=chosen,
                  constant=constant, notes=tuple(notes), aggregate=aggregate,
                  budgets={"max_error": max_error, "max_time_s": max_time_s, "max_params": max_params})


def _nonneg(name: str, value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise GroupConvError(f"{name} must be a number, got {value!r}") from None
    if not (x >= 0 and math.isfinite(x)):
        raise GroupConvError(f"{name} must be finite and >= 0, got {value!r}")
    return x


def _describe(p: Plan) -> str:
    energy = "" if p.energy_J is None else f", {p.energy_J:.4g} J"
    return f"{p.time_s:.4g} s{energy}, error {p.error:.4g}, {p.params:,} weights: {p.short()}"


def _choose(front: tuple[Plan, ...], objective: str, max_error, max_time_s, max_params) -> Plan | None:
    if max_error is None and max_time_s is None and max_params is None:
        return None
    ok = [p for p in front
          if (max_error is None or p.error <= max_error) and (max_time_s is None or p.time_s <= max_time_s)]
    if not ok:
        if max_time_s is not None and max_error is None:
            nearest = min(front, key=lambda p: (p.time_s, p.error))
            raise GroupConvError(f"no plan has a predicted time of at most max_time_s {max_time_s:.4g} s: "
                                 f"the nearest is {_describe(nearest)}")
        nearest = min(front, key=lambda p: max((p.error - (max_error or 0)) / max(max_error or 0, 1e-12),
                                               (p.time_s - (max_time_s or 0)) / max(max_time_s or 0, 1e-12)))
        raise GroupConvError(f"no plan has error <= max_error {max_error:.4g} and time <= max_time_s "
                             f"{max_time_s:.4g} s together: the nearest is {_describe(nearest)}")
    if max_time_s is not None or (max_error is None and max_params is not None):
        best = min(ok, key=lambda p: (p.error, p.cost(objective)))
    else:
        best = min(ok, key=lambda p: (p.cost(objective), p.error))
    return Plan("designed", best.layers, best.time_s, best.energy_J, best.error, best.params, best.macs)


def _rescore(model, data, table, front, constant, objective, max_error, max_time_s, max_params, cache,
             sequential=False, input_index=None):
    """The chosen plan among the front's and the constant plans, by measured error."""
    from .options import _outputs, relative_output_error

    cache = {} if cache is None else cache
    pool, seen = [], set()
    for p in (*front, *constant):
        if p.key() in seen:
            continue
        seen.add(p.key())
        if (max_time_s is None or p.time_s <= max_time_s) and (max_params is None or p.params <= max_params):
            pool.append(p)
    reference = None
    scored = []
    if max_error is not None:  # the cheapest first: stop past the cost of the first that meets it
        pool.sort(key=lambda p: p.cost(objective))
    met = None
    for p in _progress.progress(pool, desc="rescoring plans", unit="plan"):
        if met is not None and p.cost(objective) > met:
            break
        if p.key() not in cache:
            if reference is None:
                reference = _outputs(model, data, input_index=input_index)
            new, _ = convert_plan(model, p, data, table, sequential=sequential, input_index=input_index)
            cache[p.key()] = relative_output_error(new, data, reference, input_index=input_index)
        scored.append((p, cache[p.key()]))
        if max_error is not None and met is None and cache[p.key()] <= max_error:
            met = p.cost(objective)
    if max_error is not None:
        ok = [(p, m) for p, m in scored if m <= max_error]
        if not ok:  # only under another budget: the dense plan measures 0
            p, m = min(scored, key=lambda pm: pm[1])
            raise GroupConvError(f"no plan within the other budgets has a measured error <= max_error {max_error:.4g}: "
                                 f"the nearest measures {m:.4g} ({_describe(p)})")
        best, m = min(ok, key=lambda pm: (pm[0].cost(objective), pm[1]))
    else:
        best, m = min(scored, key=lambda pm: (pm[1], pm[0].cost(objective)))
    label = "designed" if best.label in ("front", "designed") else f"designed ({best.label})"
    return Plan(label, best.layers, best.time_s, best.energy_J, best.error, best.params, best.macs, float(m))


def convert_plan(model, plan: Plan, data, table: OptionTable | None = None, *, sequential: bool = False,
                 input_index=None):
    """A copy of ``model`` with every layer of ``plan`` replaced, least-squares weights for ``data``.

    Each grouped layer gets the best GC/BGC replacement of the original layer on its own
    input activations in the original model, with the original bias: the layers of each
    (method, N) of the plan are converted by :func:`groupconv.approx.network.convert_model`
    and put into one copy. With a ``table`` that kept its fits (``table.weights``, the
    same least-squares fits) nothing is refitted. Returns ``(new_model, report)``, one
    dict per grouped layer (``layer, method, groups, rel_output_E``; the last None when
    taken from the table).

    ``sequential=True``: the grouped layers are converted one at a time in model order,
    each fitted on the inputs the already converted network feeds it, against the
    original layer's output on the original network
    (:func:`groupconv.approx.network.convert_layers_sequentially`); the table's fits are
    not used. ``data`` is any data source of :func:`groupconv.approx.sources.iter_batches`;
    ``input_index`` says which part of a batch is the model input.
    """
    import copy

    from ..nn import set_submodule  # torch

    modules = dict(model.named_modules())
    for l in plan.layers:
        if l["layer"] not in modules:
            raise GroupConvError(f"the plan names layer {l['layer']!r}, which the model does not have")
    grouped = [l for l in plan.layers if l["method"] != "dense"]
    if sequential:
        from ..approx.network import convert_layers_sequentially

        with warnings.catch_warnings():  # rank-deficient fits are noted by option_table
            warnings.filterwarnings("ignore", "the regressors are numerically rank-deficient", RuntimeWarning)
            new, rows = convert_layers_sequentially(
                model, data, [(l["layer"], l["method"], l["groups"]) for l in grouped], input_index=input_index,
                progress=False)
        by_name = {r["layer"]: r for r in rows}
        return new, [{"layer": l["layer"], "method": l["method"], "groups": l["groups"],
                      "rel_output_E": float(by_name[l["layer"]]["rel_output_E"])} for l in grouped]
    cached = {} if table is None else table.weights
    new = copy.deepcopy(model)
    report = {}
    by_option: dict[tuple[str, int], list[str]] = {}
    for l in grouped:
        k = (l["layer"], l["method"], l["groups"])
        if k in cached:
            conv = modules[l["layer"]]
            set_submodule(new, l["layer"], replacement(conv, l["method"], l["groups"], cached[k], l["layer"]))
            report[l["layer"]] = {**l, "rel_output_E": None}
        else:
            by_option.setdefault((l["method"], l["groups"]), []).append(l["layer"])
    for (method, groups), names in by_option.items():
        with warnings.catch_warnings():  # rank-deficient fits are noted by option_table
            warnings.simplefilter("ignore", DeadChannelsWarning)
            converted, rep = convert_model(model, data, method=method, groups=groups, layers=names,
                                           input_index=input_index, progress=False)
        for name, r in zip(rep["layer"], rep.to_dict("records")):
            set_submodule(new, name, converted.get_submodule(name))
            report[name] = {"layer": name, "method": method, "groups": groups,
                            "rel_output_E": float(r["rel_output_E"])}
    return new, [report[l["layer"]] for l in grouped]


def export_plan(model, plan: Plan, data, out_dir: str | os.PathLike[str], *, sequential: bool = False,
                input_index=None) -> dict[str, Path]:
    """Write the chosen plan and the converted model into ``out_dir`` (each file written to a
    temporary name and renamed, so a failure leaves no partial file).

    Files
    -----
    ``plan.json``
        The plan (``layers`` = ``layer, method, groups``) and the conversion report.
    ``model.pt2``
        The converted model as a self-contained program (:func:`torch.export.export`,
        batch dimension dynamic): it loads in any process, without the model's source,
        with ``torch.export.load("model.pt2").module()``.
    ``weights.pt``
        Its ``state_dict`` (``torch.load(path, weights_only=True)``), for rebuilding the
        model from the plan in the user's own code.
    ``model.pt``
        ``torch.save`` of the module itself: ``torch.load(path, weights_only=False)``
        wherever the model's own classes import (a model built from ``FILE.py`` is
        pickled under the module name ``FILE``, so where ``import FILE`` works).

    Returns a dict ``{"plan", "program", "weights", "model"}`` of the paths written
    (``"program"`` absent, with a warning, when ``torch.export`` cannot trace the model).
    """
    import torch

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise GroupConvError(f"--export {str(out)!r} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    new, report = convert_plan(model, plan, data, sequential=sequential, input_index=input_index)
    new.eval()
    paths = {"plan": out / "plan.json", "program": out / "model.pt2", "weights": out / "weights.pt",
             "model": out / "model.pt"}
    program = _exported_program(new, data, input_index)
    meta = {**plan.as_dict(), "converted": report,
            "load": {"program": 'torch.export.load("model.pt2").module()' if program is not None else None,
                     "weights": 'torch.load("weights.pt", weights_only=True)',
                     "model": 'torch.load("model.pt", weights_only=False)  # where the model\'s classes import'}}
    atomic_write_text(paths["plan"], json.dumps(meta, indent=2) + "\n")
    if program is None:
        del paths["program"]
    else:
        with atomic_write(paths["program"], "wb") as handle:
            torch.export.save(program, handle)
    with atomic_write(paths["weights"], "wb") as handle:
        torch.save(new.state_dict(), handle)
    with atomic_write(paths["model"], "wb") as handle:  # a full disk leaves no partial model.pt
        torch.save(new, handle)
    return paths


def _exported_program(model, data, input_index=None):
    """``torch.export`` of ``model`` on two rows of ``data``'s first batch with a dynamic
    batch, else a static one; None (with a warning) when the model cannot be exported."""
    import torch

    from .options import check_data_fits

    example = check_data_fits(model, data, input_index)[0][:2]
    attempts = []
    if len(example) > 1:
        attempts.append(({0: torch.export.Dim("batch")},))
    attempts.append(None)
    last = None
    for dynamic in attempts:
        try:
            with torch.no_grad():
                return torch.export.export(model, (example,), dynamic_shapes=dynamic)
        except Exception as exc:  # torch.export refuses some Python control flow
            last = exc
    text = str(last).strip().splitlines()
    warnings.warn(f"the converted model cannot be exported as a program (torch.export: "
                  f"{type(last).__name__}: {text[0] if text else ''}); model.pt and weights.pt are written",
                  ExportWarning, stacklevel=3)
    return None
