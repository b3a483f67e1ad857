"""Energy measurements as fitting data: the paper's tables and recorded runs.

A fit needs, for every measured point, *what ran* (a list of layers and a batch size)
and *what it cost* (energy per frame, in joules). :class:`EnergyData` holds exactly that,
plus a label table (network, variant, group, platform, ...) and a ``key`` per point that
says which points belong to the same workload at different batch sizes (the unit that
leave-one-out validation drops).

Two sources:

* :func:`paper_dataset` - the E2GC paper's Tables III/IV (EPF on P100 and P4000 at
  B = 1, 4, 16) joined with the network catalogue's per-layer counts
  (:func:`groupconv.networks.build_network`); :func:`paper_table_join` gives the same
  join as a flat table, with our counts next to the printed ones.
* :func:`load_runs` - a runs CSV in the measurement module's schema (layer rows and
  network rows, energy per frame).

Counts are per frame (MACs, params, activations of :class:`~groupconv.cost.ConvLayer`);
the batch size is the workload's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from .. import _validate as v
from ..cost import ConvLayer
from ..errors import GroupConvError
from ..measure.schema import check_csv_lines
from ..networks import build_module, build_network, count_module
from ..paper_tables import BATCHES, PLATFORMS, load_e2gc_tables, load_epf
from ..vocab import LAYER_METHODS

__all__ = [
    "Workload",
    "LayerArrays",
    "EnergyData",
    "PAPER_TABLES",
    "paper_dataset",
    "paper_table_join",
    "load_runs",
    "RUNS_LAYER_COLUMNS",
    "RUNS_NETWORK_COLUMNS",
    "MODELLED_METHODS",
    "QUANTITIES",
    "bgc_layers",
]

#: What a fit can be of: energy per frame (J) or time per frame (s).
QUANTITIES: tuple[str, ...] = ("energy_J", "time_s")

#: CLI names of the paper's tables -> the catalogue's architecture name.
PAPER_TABLES: dict[str, str] = {
    "e2gc-mobilenet": "mobilenet_v1",
    "e2gc-resnext": "resnext50",
}


@dataclass(frozen=True)
class Workload:
    """What ran: a list of layers executed on a batch of ``batch`` frames.

    Parameters
    ----------
    layers : tuple of ConvLayer
        The conv and linear layers (their per-frame counts are used; their own
        ``batch`` field is ignored in favour of ``batch``).
    batch : int
        Frames per batch B.
    label : str
        Free text for tables and plots, e.g. ``"mobilenet_v1 e2gc G=4"``.
    """

    layers: tuple[ConvLayer, ...]
    batch: int = 1
    label: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise GroupConvError("a workload needs at least one layer, got none")
        for layer in self.layers:
            if not isinstance(layer, ConvLayer):
                raise GroupConvError(f"workload layers must be ConvLayer, got {type(layer).__name__}")
        v.positive_int("batch", self.batch)


@dataclass(frozen=True, eq=False)
class LayerArrays:
    """Per-layer counts of many workloads, concatenated (float64 arrays, one entry per layer).

    ``owner[i]`` is the index of the workload that layer ``i`` belongs to;
    :meth:`per_workload` sums a per-layer quantity over each workload.
    """

    macs: np.ndarray
    params: np.ndarray
    activations: np.ndarray
    groups: np.ndarray
    group_size: np.ndarray
    in_channels: np.ndarray
    out_channels: np.ndarray
    taps: np.ndarray
    out_height: np.ndarray
    out_width: np.ndarray
    batch: np.ndarray  # the owning workload's batch, repeated per layer
    owner: np.ndarray
    n_workloads: int

    @classmethod
    def from_layers(cls, layers: Sequence[ConvLayer], batch: int | Sequence[int] = 1) -> LayerArrays:
        """Arrays for a single list of layers; ``batch`` may be one value per layer."""
        batches = np.broadcast_to(np.asarray(batch, dtype=float), (len(layers),))
        return cls._build([(layer, b, 0) for layer, b in zip(layers, batches)], 1)

    @classmethod
    def from_workloads(cls, workloads: Sequence[Workload]) -> LayerArrays:
        rows = [(layer, w.batch, i) for i, w in enumerate(workloads) for layer in w.layers]
        return cls._build(rows, len(workloads))

    @classmethod
    def _build(cls, rows, n_workloads: int) -> LayerArrays:
        def column(get) -> np.ndarray:
            return np.array([get(layer) for layer, _, _ in rows], dtype=float)

        return cls(
            macs=column(lambda l: l.macs),
            params=column(lambda l: l.total_params),  # weights + bias: the traffic the models use
            activations=column(lambda l: l.activations),
            groups=column(lambda l: l.groups),
            group_size=column(lambda l: l.group_size),
            in_channels=column(lambda l: l.in_channels),
            out_channels=column(lambda l: l.out_channels),
            taps=column(lambda l: l.taps),
            out_height=column(lambda l: l.out_height),
            out_width=column(lambda l: l.out_width),
            batch=np.array([b for _, b, _ in rows], dtype=float),
            owner=np.array([i for _, _, i in rows], dtype=np.intp),
            n_workloads=n_workloads,
        )

    def per_workload(self, per_layer: np.ndarray) -> np.ndarray:
        """Sum a per-layer array over the layers of each workload."""
        return np.bincount(self.owner, weights=per_layer, minlength=self.n_workloads)


@dataclass(frozen=True, eq=False)
class EnergyData:
    """Measured energy (or time) per frame of a set of workloads (the input of every fit).

    Parameters
    ----------
    workloads : tuple of Workload
    target : numpy.ndarray
        The fitted quantity per frame, one per workload, finite and > 0: energy (J) or
        time (s), as ``quantity`` says (``energy_J`` is a read-only alias of it).
    info : pandas.DataFrame
        One row per workload with at least ``key`` (points sharing a key are the same
        workload at different batch sizes; leave-one-out drops a whole key) and ``batch``;
        the paper data adds ``network, platform, variant, group``.
    source : str
        Where the numbers come from (provenance, shown in fit reports).
    notes : tuple of str
        What was skipped or assumed while loading.
    quantity : {"energy_J", "time_s"}
        What ``target`` holds: energy per frame (the default), or time per frame in
        seconds when only time was measured (a CPU without an energy meter); every model
        then fits time with the same formulas, its coefficients in seconds.
    """

    workloads: tuple[Workload, ...]
    target: np.ndarray
    info: pd.DataFrame
    source: str = ""
    notes: tuple[str, ...] = field(default=())
    quantity: str = "energy_J"

    def __post_init__(self) -> None:
        object.__setattr__(self, "workloads", tuple(self.workloads))
        v.one_of("quantity", self.quantity, QUANTITIES)
        values = np.asarray(self.target, dtype=float).reshape(-1)
        object.__setattr__(self, "target", values)
        if len(self.workloads) == 0:
            raise GroupConvError("energy data has no points")
        if len(values) != len(self.workloads):
            raise GroupConvError(
                f"{self.quantity} has {len(values)} values for {len(self.workloads)} workloads"
            )
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise GroupConvError(f"{self.quantity} must be finite and > 0, got {float(values[i])!r} at point {i}")
        info = self.info.reset_index(drop=True).copy()
        if len(info) != len(self.workloads):
            raise GroupConvError(f"info has {len(info)} rows for {len(self.workloads)} workloads")
        if "key" not in info:
            info["key"] = [w.label or str(i) for i, w in enumerate(self.workloads)]
        info["batch"] = [w.batch for w in self.workloads]
        object.__setattr__(self, "info", info)
        object.__setattr__(self, "notes", tuple(self.notes))

    @property
    def energy_J(self) -> np.ndarray:
        """Read-only alias of :attr:`target` (what older code and notebooks read)."""
        return self.target

    @classmethod
    def from_workloads(
        cls,
        workloads: Sequence[Workload],
        energy_J: Sequence[float] | np.ndarray,
        keys: Sequence[str] | None = None,
        info: pd.DataFrame | None = None,
        source: str = "",
    ) -> EnergyData:
        """Build from workloads and energies; ``keys`` default to the workload labels."""
        info = pd.DataFrame(index=range(len(workloads))) if info is None else info.copy()
        if keys is not None:
            info["key"] = list(keys)
        elif "key" not in info:
            info["key"] = [w.label or str(i) for i, w in enumerate(workloads)]
        return cls(tuple(workloads), np.asarray(energy_J, dtype=float), info, source)

    def __len__(self) -> int:
        return len(self.workloads)

    def __repr__(self) -> str:
        return f"<EnergyData: {len(self)} points, {len(set(self.keys))} workloads; {self.source}>"

    @cached_property
    def layers(self) -> LayerArrays:
        """Per-layer counts of every workload, for vectorised model evaluation."""
        return LayerArrays.from_workloads(self.workloads)

    @property
    def batch(self) -> np.ndarray:
        """Batch size of each point (float array)."""
        return np.array([w.batch for w in self.workloads], dtype=float)

    @property
    def keys(self) -> np.ndarray:
        """Workload key of each point (leave-one-out unit)."""
        return self.info["key"].to_numpy()

    def subset(self, mask: np.ndarray | Sequence[bool]) -> EnergyData:
        """The points where ``mask`` is true (a new object; this one is unchanged)."""
        mask = np.asarray(mask, dtype=bool)
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            raise GroupConvError("subset selects no points")
        return EnergyData(
            tuple(self.workloads[i] for i in idx),
            self.target[idx],
            self.info.iloc[idx].reset_index(drop=True),
            self.source,
            self.notes,
            self.quantity,
        )

    def with_energy(self, energy_J: np.ndarray, source: str | None = None) -> EnergyData:
        """The same workloads with other energies (e.g. simulated ones)."""
        return EnergyData(
            self.workloads, energy_J, self.info, self.source if source is None else source, self.notes,
            self.quantity,
        )

    def as_frame(self) -> pd.DataFrame:
        """The label table with the measured ``energy_J`` and each workload's totals."""
        arrays = self.layers
        out = self.info.copy()
        out["energy_J"] = self.target
        out["macs"] = arrays.per_workload(arrays.macs)
        out["params"] = arrays.per_workload(arrays.params)
        out["activations"] = arrays.per_workload(arrays.activations)
        out["layers"] = [len(w.layers) for w in self.workloads]
        return out


# --- the paper's Tables III and IV -----------------------------------------------------


def _paper_arch(network: str) -> str:
    """Accept the CLI name (``e2gc-mobilenet``) or the catalogue's (``mobilenet_v1``)."""
    if network in PAPER_TABLES:
        return PAPER_TABLES[network]
    return v.one_of("paper table", network, list(PAPER_TABLES) + list(PAPER_TABLES.values()))


def paper_dataset(network: str, platform: str, batches: Sequence[int] = BATCHES) -> EnergyData:
    """EPF of one network on one GPU from the E2GC paper, joined with per-layer counts.

    Parameters
    ----------
    network : {"mobilenet_v1", "resnext50", "e2gc-mobilenet", "e2gc-resnext"}
        Table III (MobileNet-V1) or Table IV (ResNeXt-50).
    platform : {"P100", "P4000"}
    batches : sequence of int
        Subset of the measured batch sizes (1, 4, 16).

    Returns
    -------
    EnergyData
        33 points (11 variants x 3 batch sizes); ``info`` has ``network, platform,
        variant, group, batch, key`` with ``key = "<variant> <group>"``.

    Notes
    -----
    The paper's EPF is for one forward plus one backward pass (training), while the
    catalogue's MACs are forward MACs; the backward pass costs about twice the forward
    MACs, a constant factor every model absorbs in its energy coefficients.
    """
    arch = _paper_arch(network)
    v.one_of("platform", platform, PLATFORMS)
    for b in batches:
        v.one_of("batch", b, BATCHES)
    epf = load_epf()
    rows = epf[(epf.network == arch) & (epf.platform == platform) & epf.batch.isin(list(batches))]
    workloads, info = [], []
    for row in rows.itertuples(index=False):
        net = build_network(arch, row.variant, int(row.group), int(row.batch))
        symbol = "G" if row.variant == "e2gc" else "g"
        workloads.append(Workload(net.layers, int(row.batch), f"{arch} {row.variant} {symbol}={row.group}"))
        info.append(
            {
                "network": arch,
                "platform": platform,
                "variant": row.variant,
                "group": int(row.group),
                "batch": int(row.batch),
                "key": f"{row.variant} {row.group}",
            }
        )
    table = "III" if arch == "mobilenet_v1" else "IV"
    source = (
        f"E2GC paper Table {table} ({arch}), EPF on {platform}, B in {tuple(batches)}; "
        "forward + backward pass, nvidia-smi"
    )
    return EnergyData(tuple(workloads), rows["epf_J"].to_numpy(), pd.DataFrame(info), source)


def paper_table_join() -> pd.DataFrame:
    """Tables III/IV in long form (one row per network, variant, group, platform, batch)
    joined with the catalogue's totals.

    Columns: ``table, network, variant, group, platform, batch, epf_J`` (from the paper),
    ``params_paper, macs_paper`` (printed, counts), ``params, macs, activations, layers,
    grouped_layers, groups_total`` (ours, per frame; ``groups_total`` sums the groups of
    the varied 3x3 convs) and ``macs_rel_err`` (ours vs printed).
    """
    wide = load_e2gc_tables()
    epf = load_epf()
    totals = []
    for row in wide.itertuples(index=False):
        net = build_network(row.network, row.variant, int(row.group))
        varied = [layer for layer in net.layers if layer.name in net.varied]
        totals.append(
            {
                "network": row.network,
                "variant": row.variant,
                "group": int(row.group),
                "params_paper": int(round(row.params_millions * 1e6)),
                "macs_paper": int(round(row.macs_millions * 1e6)),
                "params": net.params,
                "macs": net.macs,
                "activations": net.activations,
                "layers": len(net.layers),
                "grouped_layers": len(varied),
                "groups_total": sum(layer.groups for layer in varied),
            }
        )
    joined = epf.merge(pd.DataFrame(totals), on=["network", "variant", "group"], how="left")
    joined["macs_rel_err"] = (joined["macs"] - joined["macs_paper"]) / joined["macs_paper"]
    return joined


# --- recorded runs -----------------------------------------------------------------------

#: Columns a layer row of a runs CSV must have.
RUNS_LAYER_COLUMNS: tuple[str, ...] = (
    "in_channels",
    "out_channels",
    "kernel",
    "height",
    "width",
    "groups",
    "batch",
    "energy_J",
)
#: Columns a network row of a runs CSV must have.
RUNS_NETWORK_COLUMNS: tuple[str, ...] = ("arch", "variant", "group", "batch", "energy_J")
#: Layer methods the models describe: plain group convs, and BGC as two convs (:func:`bgc_layers`).
MODELLED_METHODS: tuple[str, ...] = LAYER_METHODS


def bgc_layers(layer: ConvLayer) -> tuple[ConvLayer, ConvLayer]:
    """A balanced group conv as the two convolutions it runs (BGC paper Eq. 3.1).

    ``y^k = W^{kk} x^k + W-bar^k x-bar``: the grouped conv ``n -> m`` with N groups
    (``layer`` itself), plus the "mean" conv: one dense ``n/N -> m`` conv on the mean of
    the input groups (the N blocks ``W-bar^k`` stacked, as :class:`groupconv.nn.BalancedGroupConv`
    computes it). Its weights are ``m (n/N) d_k^2`` and its MACs that times ``h w``: the
    same as the grouped conv's, so a BGC layer costs twice the MACs of its GC. The mean
    itself (an elementwise average over the groups) is not a conv and is not counted.
    """
    groups = layer.groups
    mean = ConvLayer(
        layer.in_channels // groups, layer.out_channels, (layer.kernel_h, layer.kernel_w),
        layer.out_height, layer.out_width, stride=layer.stride, batch=layer.batch,
        in_height=layer.in_height, in_width=layer.in_width,
        name=f"{layer.name}.balance" if layer.name else "balance",
    )
    return layer, mean


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _int_cell(path: Path, line: int, column: str, value: object) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number) or number != int(number) or number < 1:
        raise GroupConvError(f"{path}: line {line}: column {column} must be a positive integer, got {value!r}")
    return int(number)


#: Image side of the catalogue's networks (and of the paper's measurements).
IMAGE_SIZE = 224


def _image_size(path: Path, line: int, row: dict) -> int:
    """Image side of a network row (``height`` = ``width``; empty means 224)."""
    sides = []
    for column in ("height", "width"):
        value = row.get(column)
        if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
            sides.append(IMAGE_SIZE)
        else:
            sides.append(_int_cell(path, line, column, value))
    if sides[0] != sides[1]:
        raise GroupConvError(f"{path}: line {line}: network rows need square images, got {sides[0]}x{sides[1]}")
    return sides[0]


def _network_layers(arch: str, variant: str, group: int, size: int) -> tuple[str, str, tuple[ConvLayer, ...]]:
    """A catalogue network's layers at ``size`` x ``size`` images (per frame, batch 1).

    224 (the paper's size) comes from :func:`groupconv.networks.build_network` without
    torch; another size is counted from a shape-only (``meta``) torch module, so it
    needs torch.
    """
    net = build_network(arch, variant, group)  # validates the names and the group
    if size == IMAGE_SIZE:
        return net.arch, net.variant, net.layers
    try:
        import torch  # noqa: F401
    except ImportError:
        raise GroupConvError(
            f"network rows at {size}x{size} images need torch to count their layers (224 does not)"
        ) from None
    module = build_module(net.arch, net.variant, group, device="meta")
    return net.arch, net.variant, count_module(module, (1, 3, size, size)).layers


def load_runs(
    path: str | Path,
    *,
    mode: str | None = None,
    dtype: str | None = None,
    device: str | None = None,
    workload: str | None = None,
    quantity: str | None = None,
    threads: int | None = None,
) -> EnergyData:
    """Energy (or, without an energy meter, time) per frame of recorded runs (the
    measurement module's CSV schema).

    Parameters
    ----------
    path : str or Path
        CSV with a ``workload`` column (``"layer"`` or ``"network"``; absent means all
        rows are layer rows). Layer rows need :data:`RUNS_LAYER_COLUMNS` (``height`` and
        ``width`` are the output size); network rows need :data:`RUNS_NETWORK_COLUMNS`.
        ``energy_J`` is per frame; rows where it is empty are skipped and counted.
    mode, dtype, device : str, optional
        Keep only the rows with this ``mode`` (``"forward"``/``"forward_backward"``),
        ``dtype`` or ``device``. A file that mixes several values of one of these columns
        must be narrowed down to one: energies of different modes, dtypes or devices do
        not belong in one fit.
    threads : int, optional
        Keep only the rows measured at this thread count (a file of several needs it).
    workload : {"layer", "network"}, optional
        Keep only layer rows or only network rows. A file with both must be narrowed
        down to one: a network costs more than the sum of its convs (batch norms,
        activations, residual adds, dispatch), which a model's network constants absorb;
        pooled with single-layer rows those constants would be fitted to a mixture that
        describes neither.
    quantity : {"energy_J", "time_s"}, optional
        What to fit. Default: ``energy_J`` if any row has one, else ``time_s`` (a CPU
        run has no energy meter); the returned data's ``quantity`` and notes say which.

    Returns
    -------
    EnergyData
        One point per usable row, ``key`` = the workload without its batch size;
        ``notes`` says how many rows were skipped and why.

    Notes
    -----
    Layer rows are ``ConvLayer(in_channels, out_channels, kernel, height, width,
    groups=groups, batch=batch)`` (the measurement module's layers keep their size:
    ``height x width`` is input and output). Network rows are the catalogue's networks;
    their ``height``/``width`` is the image size: 224 (or empty) is the torch-free
    catalogue, another size is counted from a shape-only torch module (needs torch).
    Rows with ``method == "bgc"`` (balanced group conv) are the two convolutions a BGC
    layer runs (:func:`bgc_layers`: the grouped conv plus the dense ``n/N -> m`` conv on
    the mean of the groups); ``dense``, ``gc`` and ``dw`` rows are plain group convs.
    """
    path = Path(path)
    if not path.exists():
        raise GroupConvError(f"runs file not found: {path}")
    if path.is_dir():
        raise GroupConvError(f"runs file is a directory: {path}")
    # the lines first, as measure reads them: a repeated header, a short, cut or glued
    # row, a bad method, and (a file of the measurement schema) every row's values
    check_csv_lines(path)
    try:
        frame = pd.read_csv(path, comment="#", skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GroupConvError(f"{path}: not a readable CSV ({first})") from None
    if quantity is not None:
        v.one_of("quantity", quantity, QUANTITIES)
    # CSV line of each row: header is line 1 (comment lines are not counted).
    frame["_line"] = np.arange(len(frame)) + 2
    notes: list[str] = []

    for column, wanted in (("mode", mode), ("dtype", dtype), ("device", device),
                           ("threads", None if threads is None else str(threads))):
        if column not in frame:
            if wanted is not None:
                raise GroupConvError(f"{path}: --{column} {wanted!r} given but the file has no {column} column")
            continue
        present = sorted(str(x) for x in frame[column].dropna().unique())
        if wanted is not None:
            if wanted not in present:
                raise GroupConvError(
                    f"{path}: no rows with {column} {wanted!r}; the file has {', '.join(present) or 'none'}"
                )
            frame = frame[frame[column].astype(str) == wanted]
        elif len(present) > 1:
            raise GroupConvError(
                f"{path}: rows mix {column} values {', '.join(present)}; choose one with --{column}"
            )

    if quantity is None:
        has_energy = "energy_J" in frame and (
            frame["energy_J"].notna() & (frame["energy_J"].astype(str).str.strip() != "")
        ).any()
        if not has_energy and "time_s" not in frame:
            raise GroupConvError(
                f"{path}: lacks a time_s column" + (" and its energy_J column is empty" if "energy_J" in frame
                                                   else " and an energy_J column")
            )
        quantity = "energy_J" if has_energy else "time_s"
        if quantity == "time_s":
            notes.append("no energy_J was measured: fitted time_s (seconds per frame) instead of energy")
    if quantity not in frame:
        if quantity == "energy_J" and "energy_J" in frame:
            raise GroupConvError(f"{path}: no row has energy_J and the file has no time_s column")
        raise GroupConvError(f"{path}: missing column {quantity}")
    col = quantity
    energy = pd.to_numeric(frame[col], errors="coerce")
    text = frame[col].astype(str).str.strip()
    not_number = energy.isna() & frame[col].notna() & (text != "")
    if not_number.any():
        i = np.flatnonzero(not_number.to_numpy())[0]
        raise GroupConvError(
            f"{path}: line {frame['_line'].iloc[i]}: {col} must be a number, got {frame[col].iloc[i]!r}"
        )
    empty = energy.isna()
    if empty.any():
        notes.append(f"skipped {_rows(int(empty.sum()))} with no {col}")
    frame = frame[~empty].assign(**{col: energy[~empty]})
    values = frame[col].to_numpy(dtype=float)
    nonpositive = ~np.isfinite(values) | (values <= 0)  # inf and -inf parse as numbers
    if nonpositive.any():
        i = np.flatnonzero(nonpositive)[0]
        raise GroupConvError(
            f"{path}: line {frame['_line'].iloc[i]}: {col} must be finite and > 0, got {float(values[i])!r}"
        )

    kind = frame["workload"].astype(str) if "workload" in frame else pd.Series("layer", index=frame.index)
    unknown = ~kind.isin(["layer", "network"])
    if unknown.any():
        i = np.flatnonzero(unknown.to_numpy())[0]
        raise GroupConvError(
            f"{path}: line {frame['_line'].iloc[i]}: workload must be layer or network, got {kind.iloc[i]!r}"
        )
    if workload is not None:
        v.one_of("workload", workload, ("layer", "network"))
        if not (kind == workload).any():
            raise GroupConvError(f"{path}: no {workload} rows")
        frame, kind = frame[kind == workload], kind[kind == workload]
    elif (kind == "layer").any() and (kind == "network").any():
        raise GroupConvError(
            f"{path}: rows mix layer and network workloads ({_rows(int((kind == 'layer').sum()))} and "
            f"{_rows(int((kind == 'network').sum()))}), which share no network constants; "
            "fit one at a time with --workload layer or --workload network"
        )
    is_bgc = pd.Series(False, index=frame.index)
    if "method" in frame:
        is_bgc = (kind == "layer") & (frame["method"].astype(str) == "bgc")
        if is_bgc.any():
            notes.append(f"{_rows(int(is_bgc.sum()))} of bgc layers modelled as the grouped conv plus the "
                         "mean conv (n/N -> m)")

    workloads, info = [], []
    for needed, which in ((RUNS_LAYER_COLUMNS, "layer"), (RUNS_NETWORK_COLUMNS, "network")):
        if (kind == which).any():
            missing = [c for c in needed if (col if c == "energy_J" else c) not in frame]  # the fitted quantity
            if missing:
                raise GroupConvError(f"{path}: {which} rows need column(s) {', '.join(missing)}")
    for row, which, bgc in zip(frame.to_dict("records"), kind, is_bgc):
        line = int(row["_line"])
        batch = _int_cell(path, line, "batch", row["batch"])
        try:
            if which == "layer":
                shape = {c: _int_cell(path, line, c, row[c]) for c in RUNS_LAYER_COLUMNS[:6]}
                layer = ConvLayer(
                    shape["in_channels"], shape["out_channels"], shape["kernel"],
                    shape["height"], shape["width"], groups=shape["groups"], batch=batch,
                )
                key = (
                    f"{layer.in_channels}->{layer.out_channels} k{shape['kernel']} "
                    f"{layer.out_height}x{layer.out_width} g={layer.groups}" + (" bgc" if bgc else "")
                )
                workloads.append(Workload(bgc_layers(layer) if bgc else (layer,), batch, key))
                info.append({"workload": "layer", "key": key, "groups": layer.groups, "line": line,
                             "method": "bgc" if bgc else str(row.get("method", ""))})
            else:
                group = _int_cell(path, line, "group", row["group"])
                size = _image_size(path, line, row)
                arch, variant, layers = _network_layers(str(row["arch"]), str(row["variant"]), group, size)
                key = f"{arch} {variant} {group}" + ("" if size == IMAGE_SIZE else f" {size}px")
                workloads.append(Workload(layers, batch, key))
                info.append(
                    {"workload": "network", "key": key, "network": arch,
                     "variant": variant, "group": group, "line": line}
                )
        except GroupConvError as exc:
            prefix = f"{path}: line {line}: "
            message = str(exc)
            raise GroupConvError(message if message.startswith(prefix) else prefix + message) from None
    if not workloads:
        reason = "; ".join(notes) if notes else "no rows"
        raise GroupConvError(f"{path}: no usable rows with {col} ({reason})")
    source = (f"runs file {path.name} ({len(workloads)} rows" + (f", mode {mode}" if mode else "")
              + f", fitted {col})")
    return EnergyData(tuple(workloads), frame[col].to_numpy(dtype=float), pd.DataFrame(info), source,
                      tuple(notes), quantity)
