"""Calibrate a platform: roofline microbenchmarks, a designed set of operators, networks.

:func:`calibrate` measures, with the measurement module's protocol
(:func:`groupconv.measure.measure`), in three phases, writing one row per measurement to
a resumable runs CSV beside the platform file (``platform.json`` -> ``platform.runs.csv``):

1. **Roofline** (:func:`roofline_specs`): large GEMMs and convs (peak MAC/s), large copies
   and adds (bandwidth), a one-element op (the fixed cost of a call).
2. **Operators** (:func:`operator_specs`): dense, grouped, depthwise and pointwise convs
   over channels, groups, kernel sizes, map sizes, strides and batches shaped like the
   stages of a CNN; linear layers; batch norm, layer norm, activations, adds, pooling,
   concatenation, softmax and copies. Each op with weights is timed as a ring of copies
   of itself on the same input, so that its input is warm (the previous layer just wrote
   it) and its weights are not (as in a network). The designed set is ordered so that any
   prefix is informative: kernels take turns, and within a kernel each next shape is the
   one farthest (in log MACs, log bytes, groups) from those already chosen. ``budget_s``
   cuts the list where the time runs out.
3. **Networks** (:func:`network_specs`): small synthetic networks defined here (none of
   the catalogue or zoo architectures, which are kept for validation), timed whole; the
   ratio of measured to summed per-op predictions is the network correction.

The per-kernel models (:mod:`~groupconv.platform.models`) are then fitted from the rows;
the features of each row come from the same per-operator counter that :func:`predict`
uses, so what is learned on operators transfers to networks.

A calibration killed half-way resumes: the rows already in the runs CSV are kept and
only the missing configurations are measured.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import _validate as v
from ..errors import GroupConvError
from .models import KERNELS, KernelModel, OpFeatures, Roofline, cpu_conv_uses_mkldnn, fit_kernel_model
from .platform import Platform

__all__ = [
    "Spec",
    "RUN_COLUMNS",
    "calibrate",
    "runs_path_for",
    "roofline_specs",
    "operator_specs",
    "network_specs",
    "fit_platform",
    "DEFAULT_BUDGET_S",
]

#: Groups of kernel types that share one network-correction factor.
CORRECTION_GROUPS: tuple[str, ...] = ("conv", "matmul", "norm", "memory")


def correction_group(kernel: str) -> str:
    """The network-correction group of a kernel type (see :data:`CORRECTION_GROUPS`)."""
    base = kernel.split(":")[0]
    if base.startswith("conv"):
        return "conv"
    if base in ("matmul", "attention"):
        return "matmul"
    if base == "norm":
        return "norm"
    return "memory"


#: Default budget: a complete calibration (s).
DEFAULT_BUDGET_S = 900.0

#: Columns of the calibration runs CSV (``time_s``/``energy_J`` are per **call**).
RUN_COLUMNS: tuple[str, ...] = (
    "key", "phase", "kind", "spec", "kernel", "op", "batch", "copies", "calls", "macs", "bytes", "groups",
    "cin_per_group", "cout_per_group", "out_pixels", "taps", "outer", "weight_bytes",
    "time_s", "time_std_s", "energy_J", "repeats", "trials", "device", "threads", "dtype", "timestamp",
)


@dataclass(frozen=True)
class Spec:
    """One configuration to measure: ``phase`` ("roofline", "op", "network"), ``kind``
    (what to build) and its parameters (JSON-able)."""

    phase: str
    kind: str
    params: tuple[tuple[str, object], ...]

    @property
    def p(self) -> dict[str, object]:
        return dict(self.params)

    @property
    def key(self) -> str:
        return f"{self.phase}:{self.kind}:" + ",".join(f"{k}={val}" for k, val in self.params)


def _spec(phase: str, kind: str, **params) -> Spec:
    return Spec(phase, kind, tuple(sorted(params.items())))


def runs_path_for(out: str | os.PathLike[str]) -> Path:
    """The runs CSV kept beside a platform file: ``x.json`` -> ``x.runs.csv``."""
    out = Path(out)
    return out.with_name(out.stem + ".runs.csv")


# ---------------------------------------------------------------------------- specs
def roofline_specs() -> list[Spec]:
    """Microbenchmarks for the roofline constants."""
    return [
        _spec("roofline", "tiny", n=1),
        _spec("roofline", "view", n=64),
        _spec("roofline", "linear", batch=1024, fin=1024, fout=1024),
        _spec("roofline", "conv", batch=1, cin=256, cout=256, k=3, h=28, groups=1, stride=1),
        _spec("roofline", "copy", batch=1, c=64, h=256),  # 16 MiB
        _spec("roofline", "add", batch=1, c=64, h=256),
        _spec("roofline", "linear", batch=512, fin=2048, fout=512),
        _spec("roofline", "tiny", n=2),
        _spec("roofline", "view", n=4096),
        _spec("roofline", "view", n=8),
        _spec("roofline", "copy", batch=4, c=64, h=256),
    ]


_ACTS = ("relu", "relu6", "hardswish", "silu", "gelu", "sigmoid")


def _conv_candidates(rng: np.random.Generator, n: int, batches: Sequence[int]) -> list[Spec]:
    """Conv shapes like a CNN's stages: map size falls as channels grow."""
    out: list[Spec] = []
    seen: set[str] = set()
    sizes = (112, 64, 56, 32, 28, 16, 14, 8, 7, 4)
    tries = 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        h = int(rng.choice(sizes))
        base = max(16, int(2 ** round(np.log2(16 * 112 / h))))  # ~16 ch at 112, ~512 at 4
        cin = int(min(1024, max(8, base * 2.0 ** rng.integers(-2, 2))))
        cout = int(min(1024, max(8, cin * 2.0 ** rng.integers(-1, 3))))
        form = rng.choice(["dense3", "pointwise", "grouped", "depthwise", "dense_k", "grouped_pw"], p=[0.15, 0.2, 0.2, 0.2, 0.1, 0.15])
        k, groups = 3, 1
        if form == "pointwise":
            k = 1
        elif form == "dense_k":
            k = int(rng.choice([5, 7]))
        elif form == "grouped":
            k = 3
            groups = int(rng.choice([g for g in (2, 4, 8, 16, 32, 64) if cin % g == 0 and cout % g == 0 and g < cin]))
        elif form == "grouped_pw":
            k = 1
            groups = int(rng.choice([g for g in (2, 4, 8, 16, 32) if cin % g == 0 and cout % g == 0 and g < cin]))
        elif form == "depthwise":
            k = int(rng.choice([3, 3, 5, 7]))
            cout, groups = cin, cin
        stride = int(rng.choice([1, 1, 1, 2])) if h >= 8 else 1
        batch = int(rng.choice(batches))
        h_out = (h + 2 * (k // 2) - k) // stride + 1
        macs = batch * cout * (cin // groups) * k * k * h_out * h_out
        if macs > 4e8 or macs < 1e4:
            continue
        s = _spec("op", "conv", batch=batch, cin=cin, cout=cout, k=k, h=h, groups=groups, stride=stride)
        if s.key not in seen:
            seen.add(s.key)
            out.append(s)
    return out


def _memory_candidates(rng: np.random.Generator, n: int, batches: Sequence[int]) -> list[Spec]:
    out: list[Spec] = []
    seen: set[str] = set()
    kinds = ("bn", "act", "add", "maxpool", "avgpool", "gap", "cat", "copy", "ln", "softmax", "linear")
    tries = 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        kind = kinds[len(out) % len(kinds)] if tries < 3 * len(kinds) else str(rng.choice(kinds))
        batch = int(rng.choice(batches))
        h = int(rng.choice((112, 56, 32, 28, 16, 14, 7)))
        c = int(min(1024, max(8, 2 ** round(np.log2(16 * 112 / h)) * 2.0 ** rng.integers(-1, 3))))
        if batch * c * h * h > 8e6:
            continue
        if kind == "act":
            s = _spec("op", "act", batch=batch, c=c, h=h, act=str(rng.choice(_ACTS)))
        elif kind == "ln":
            s = _spec("op", "ln", batch=batch, c=c, h=h)
        elif kind == "softmax":
            s = _spec("op", "softmax", batch=batch, c=c, h=h)
        elif kind == "linear":
            tokens = int(rng.choice((1, 1, 4, 49, 196)))
            fin = int(rng.choice((64, 128, 256, 512, 1024, 2048)))
            fout = int(rng.choice((10, 64, 128, 256, 512, 1000, 2048)))
            s = _spec("op", "linear", batch=batch * tokens, fin=fin, fout=fout)
        else:
            s = _spec("op", kind, batch=batch, c=c, h=h)
        if s.key not in seen:
            seen.add(s.key)
            out.append(s)
    return out


def _spec_kernel(s: Spec, threads: int) -> str:
    """The kernel a spec exercises (analytically, for ordering)."""
    p = s.p
    if s.kind == "conv":
        x = (p["batch"], p["cin"], p["h"], p["h"])
        w = (p["cout"], p["cin"] // p["groups"], p["k"], p["k"])
        if not cpu_conv_uses_mkldnn(x, w, stride=p["stride"], groups=p["groups"], threads=threads):
            return "conv_slow"
        return "conv_dw" if p["groups"] == p["cin"] and p["groups"] > 1 else "conv_mkldnn"
    return {"bn": "norm", "ln": "norm", "act": "activation", "add": "elementwise", "maxpool": "pool",
            "avgpool": "pool", "gap": "reduction", "cat": "cat", "copy": "copy", "softmax": "softmax",
            "linear": "matmul"}.get(s.kind, "other")


def _spec_point(s: Spec) -> np.ndarray:
    """Rough (log MACs, log bytes, log groups, kernel) of a spec, for ordering."""
    p = s.p
    if s.kind == "conv":
        ho = (p["h"] + 2 * (p["k"] // 2) - p["k"]) // p["stride"] + 1
        macs = p["batch"] * p["cout"] * p["cin"] // p["groups"] * p["k"] ** 2 * ho * ho
        byts = 4 * (p["batch"] * (p["cin"] * p["h"] ** 2 + p["cout"] * ho * ho) + p["cout"] * p["cin"] // p["groups"] * p["k"] ** 2)
        return np.array([np.log(macs), np.log(byts), np.log(p["groups"]), p["k"] / 3.0, np.log(p["batch"])])
    if s.kind == "linear":
        macs = p["batch"] * p["fin"] * p["fout"]
        byts = 4 * (p["batch"] * (p["fin"] + p["fout"]) + p["fin"] * p["fout"])
        return np.array([np.log(macs), np.log(byts), 0.0, 0.0, np.log(p["batch"])])
    byts = 4 * p["batch"] * p["c"] * p["h"] ** 2
    return np.array([0.0, np.log(byts), 0.0, 0.0, np.log(p["batch"])])


def _farthest_first(specs: list[Spec]) -> list[Spec]:
    """Order specs so that each next one is the farthest from those before (standardised)."""
    if len(specs) <= 2:
        return list(specs)
    X = np.array([_spec_point(s) for s in specs])
    sd = X.std(axis=0)
    sd[sd == 0] = 1.0
    X = (X - X.mean(axis=0)) / sd
    order = [int(np.argmin(X[:, 0] + X[:, 1]))]  # the smallest first, then spread
    dist = np.linalg.norm(X - X[order[0]], axis=1)
    dist[order[0]] = -np.inf
    while len(order) < len(specs):
        nxt = int(np.argmax(dist))
        order.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(X - X[nxt], axis=1))
        dist[order] = -np.inf  # each spec once, also among identical points
    return [specs[i] for i in order]


def operator_specs(*, threads: int = 1, seed: int = 0, n_conv: int = 700, n_memory: int = 300,
                   batches: Sequence[int] = (1, 1, 2, 4, 8, 16)) -> list[Spec]:
    """The designed operator set, ordered so that every prefix is informative.

    Kernels take turns (a budget of a few points still fits every kernel a little); within
    a kernel, shapes are in farthest-first order.
    """
    rng = np.random.default_rng(seed)
    cands = _conv_candidates(rng, n_conv, batches) + _memory_candidates(rng, n_memory, batches)
    by_kernel: dict[str, list[Spec]] = {}
    for s in cands:
        by_kernel.setdefault(_spec_kernel(s, threads), []).append(s)
    # memory ops are split by kind within their kernel so that every op type gets points early
    queues: list[list[Spec]] = []
    for kernel, specs in sorted(by_kernel.items()):
        kinds: dict[str, list[Spec]] = {}
        for s in specs:
            kinds.setdefault(s.kind if s.kind != "act" else f"act:{s.p['act']}", []).append(s)
        for group in kinds.values():
            queues.append(_farthest_first(group))
    # convs are most of a CNN's time: give each conv queue three turns per round
    weights = [3 if q and q[0].kind == "conv" else 1 for q in queues]
    out: list[Spec] = []
    while any(queues):
        for q, w in zip(queues, weights):
            for _ in range(w):
                if q:
                    out.append(q.pop(0))
    return out


def network_specs() -> list[Spec]:
    """Small synthetic networks (not catalogue or zoo architectures) for the correction."""
    out = []
    for net, size in (("plain", 64), ("dwsep", 96), ("resgroup", 64), ("mixer", 56), ("widedw", 128),
                      ("bottleneck", 96), ("plain", 96), ("dwsep", 64), ("resgroup", 96), ("mixer", 32),
                      ("widedw", 96), ("bottleneck", 128)):
        for batch in (1, 4):
            out.append(_spec("network", net, batch=batch, h=size))
    return out


# ---------------------------------------------------------------------------- building
def _modules():
    """The small torch modules calibration builds (defined lazily: torch is imported here)."""
    import torch
    from torch import nn

    class Ring(nn.Module):
        """Copies of one op applied in turn to the same input (warm input, cold-ish weights)."""

        def __init__(self, copies: list[nn.Module]) -> None:
            super().__init__()
            self.copies = nn.ModuleList(copies)

        def forward(self, x):
            y = None
            for m in self.copies:
                y = m(x)
            return y

    class Binary(nn.Module):
        def __init__(self, other: torch.Tensor, op: str) -> None:
            super().__init__()
            self.register_buffer("other", other)
            self.op = op

        def forward(self, x):
            return x + self.other if self.op == "add" else torch.cat([x, self.other], dim=1)

    class Copy(nn.Module):
        def forward(self, x):
            return x.transpose(2, 3).contiguous()

    class View(nn.Module):
        def forward(self, x):
            return x.view(-1, 2)

    class Tiny(nn.Module):
        def forward(self, x):
            return torch.relu(x)

    class ChannelsLastLN(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.ln = nn.LayerNorm(c)

        def forward(self, x):
            return self.ln(x)

    return Ring, Binary, Copy, Tiny, ChannelsLastLN, View


def _synthetic_network(kind: str):
    from torch import nn

    def cbr(cin, cout, k=3, s=1, g=1, act=nn.ReLU):
        return [nn.Conv2d(cin, cout, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(cout), act()]

    if kind == "plain":
        layers = cbr(3, 24, s=2) + cbr(24, 48, s=2) + cbr(48, 48) + cbr(48, 96, s=2) + cbr(96, 192, s=2) + cbr(192, 192, k=1)
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(192, 100))
    if kind == "dwsep":
        layers = cbr(3, 16, s=2, act=nn.Hardswish)
        c = 16
        for cout, s in ((24, 2), (24, 1), (48, 2), (96, 2), (96, 1)):
            layers += cbr(c, c, s=s, g=c, act=nn.Hardswish) + cbr(c, cout, k=1, act=nn.Hardswish)
            c = cout
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 100))
    if kind == "resgroup":
        class Block(nn.Module):
            def __init__(self, c, g):
                super().__init__()
                self.body = nn.Sequential(*cbr(c, c, k=1), *cbr(c, c, g=g), nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))
                self.act = nn.ReLU()

            def forward(self, x):
                return self.act(x + self.body(x))

        return nn.Sequential(*cbr(3, 32, s=2), Block(32, 4), *cbr(32, 64, s=2), Block(64, 8), Block(64, 16),
                             *cbr(64, 128, s=2), Block(128, 4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))
    if kind == "widedw":  # depthwise-separable at ImageNet-like widths (about 3 M weights)
        layers = cbr(3, 24, s=2)
        c = 24
        for cout, s in ((48, 1), (96, 2), (96, 1), (192, 2), (192, 1), (384, 2), (384, 1), (384, 1), (768, 2)):
            layers += cbr(c, c, s=s, g=c, act=nn.ReLU6) + cbr(c, cout, k=1, act=nn.ReLU6)
            c = cout
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1000))
    if kind == "bottleneck":  # residual bottlenecks with grouped 3x3 (about 6 M weights)
        class Bottleneck(nn.Module):
            def __init__(self, cin, mid, cout, g, s):
                super().__init__()
                self.body = nn.Sequential(*cbr(cin, mid, k=1), *cbr(mid, mid, s=s, g=g),
                                          nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
                self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, s, bias=False), nn.BatchNorm2d(cout))
                             if s != 1 or cin != cout else nn.Identity())
                self.act = nn.ReLU()

            def forward(self, x):
                return self.act(self.body(x) + self.skip(x))

        return nn.Sequential(*cbr(3, 48, k=5, s=2), nn.MaxPool2d(3, 2, 1), Bottleneck(48, 96, 192, 16, 1),
                             Bottleneck(192, 192, 384, 16, 2), Bottleneck(384, 192, 384, 8, 1),
                             Bottleneck(384, 384, 768, 16, 2), Bottleneck(768, 384, 768, 32, 1),
                             Bottleneck(768, 768, 1536, 32, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(1536, 1000))
    if kind == "mixer":
        class Tokens(nn.Module):
            def forward(self, x):
                return x.flatten(2).transpose(1, 2)

        class MLP(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.norm = nn.LayerNorm(d)
                self.fc1 = nn.Linear(d, 2 * d)
                self.act = nn.GELU()
                self.fc2 = nn.Linear(2 * d, d)

            def forward(self, x):
                return x + self.fc2(self.act(self.fc1(self.norm(x))))

        return nn.Sequential(nn.Conv2d(3, 64, 4, 4), Tokens(), MLP(64), MLP(64), nn.LayerNorm(64))
    raise GroupConvError(f"unknown synthetic network {kind!r}")


def _build(spec: Spec, device: str, dtype):
    """(module, input, copies) for a spec."""
    import torch
    from torch import nn

    Ring, Binary, Copy, Tiny, ChannelsLastLN, View = _modules()
    p = spec.p
    kw = {"device": device, "dtype": dtype}
    b = p.get("batch", 1)
    if spec.phase == "network":
        return _synthetic_network(spec.kind).to(**kw), torch.randn(b, 3, p["h"], p["h"], **kw), 1
    if spec.kind == "tiny":
        return Tiny(), torch.randn(p["n"], **kw), 1
    if spec.kind == "view":
        return View(), torch.randn(p["n"], **kw), 1
    if spec.kind == "conv":
        make = lambda: nn.Conv2d(p["cin"], p["cout"], p["k"], p["stride"], p["k"] // 2, groups=p["groups"], bias=False)  # noqa: E731
        x = torch.randn(b, p["cin"], p["h"], p["h"], **kw)
        w_bytes = p["cout"] * p["cin"] // p["groups"] * p["k"] ** 2 * 4
    elif spec.kind == "linear":
        make = lambda: nn.Linear(p["fin"], p["fout"])  # noqa: E731
        x = torch.randn(b, p["fin"], **kw)
        w_bytes = p["fin"] * p["fout"] * 4
    else:
        c, h = p["c"], p["h"]
        x = torch.randn(b, c, h, h, **kw)
        if spec.kind == "bn":
            mod = nn.BatchNorm2d(c)
            mod.running_var.uniform_(0.5, 2.0)
        elif spec.kind == "ln":
            mod, x = ChannelsLastLN(c), torch.randn(b, h, h, c, **kw)
        elif spec.kind == "act":
            mod = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, "silu": nn.SiLU,
                   "gelu": nn.GELU, "sigmoid": nn.Sigmoid}[p["act"]]()
        elif spec.kind == "add":
            mod = Binary(torch.randn(b, c, h, h, **kw), "add")
        elif spec.kind == "cat":
            mod = Binary(torch.randn(b, c, h, h, **kw), "cat")
        elif spec.kind == "maxpool":
            mod = nn.MaxPool2d(3, 2, 1)
        elif spec.kind == "avgpool":
            mod = nn.AvgPool2d(2, 2)
        elif spec.kind == "gap":
            mod = nn.AdaptiveAvgPool2d(1)
        elif spec.kind == "softmax":
            mod = nn.Softmax(dim=-1)
        elif spec.kind == "copy":
            mod = Copy()
        else:
            raise GroupConvError(f"unknown calibration op {spec.kind!r}")
        return mod.to(**kw).eval(), x, 1
    copies = int(min(8, max(1, math.ceil(2 * 2**20 / max(w_bytes, 1)))))
    return Ring([make().to(**kw) for _ in range(copies)]).eval(), x, copies


def _one_copy(module, copies: int):
    return module.copies[0] if copies > 1 or type(module).__name__ == "Ring" else module


# ---------------------------------------------------------------------------- runs CSV
class _Runs:
    """Append-only calibration runs CSV: one flushed + fsynced row per measurement, resumable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, str]] = {}
        if path.exists() and path.stat().st_size > 0:
            text = path.read_text(encoding="utf-8")
            if not text.endswith("\n"):  # killed mid-line: drop the partial row
                text = text[: text.rfind("\n") + 1]
                path.write_text(text, encoding="utf-8")
            reader = csv.DictReader(io.StringIO(text))
            if tuple(reader.fieldnames or ()) != RUN_COLUMNS:
                raise GroupConvError(f"{path}: not a calibration runs file of this version (columns differ)")
            for row in reader:
                self.rows[row["key"]] = row
            self._handle = open(path, "a", encoding="utf-8", newline="")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(path, "w", encoding="utf-8", newline="")
            self._write(list(RUN_COLUMNS))

    def _write(self, values: list[str]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values)
        self._handle.write(buffer.getvalue())
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def add(self, row: dict[str, object]) -> None:
        values = {k: "" if row.get(k) is None else (repr(row[k]) if isinstance(row[k], float) else str(row[k])) for k in RUN_COLUMNS}
        self._write([values[k] for k in RUN_COLUMNS])
        self.rows[values["key"]] = values

    def close(self) -> None:
        self._handle.close()


# ---------------------------------------------------------------------------- measuring
def _measure_spec(spec: Spec, device: str, dtype: str, threads: int, source, protocol) -> list[dict[str, object]]:
    """Measure one spec; rows (one per kernel the spec ran, network: one row)."""
    import torch

    from ..measure import measure
    from ..measure.workloads import torch_dtype
    from ..networks import count_module

    module, x, copies = _build(spec, device, torch_dtype(dtype))
    batch = int(x.shape[0])
    if source.available:
        result = measure(module, x, protocol, source)
        per_call = result.time_s * batch / copies
        std = result.time_std_s * batch / copies
        energy = None if result.energy_J is None else result.energy_J * batch / copies
        repeats, trials = result.repeats, result.trials
    else:
        best, spread, repeats = _best_of_windows(module, x, protocol)
        per_call, std, energy, trials = best / copies, spread / copies, None, protocol.trials
    counted = _one_copy(module, copies) if spec.phase != "network" else module
    base = {
        "key": spec.key, "phase": spec.phase, "kind": spec.kind, "spec": json.dumps(spec.p, sort_keys=True),
        "batch": batch, "copies": copies, "time_s": per_call, "time_std_s": std, "energy_J": energy,
        "repeats": repeats, "trials": trials, "device": device, "threads": threads, "dtype": dtype,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if spec.phase == "network":
        return [dict(base, kernel="network", op="", calls=0, macs=0, bytes=0, groups=1, cin_per_group=1,
                     cout_per_group=1, out_pixels=1, taps=1, outer=1, weight_bytes=0)]
    ops = count_module(counted, (x,)).ops
    if not ops:
        raise GroupConvError(f"calibration op {spec.key} recorded no operator")
    from .models import features_of

    # the op that does the work (a linear also records a free transpose, a batch norm an
    # empty tensor): its features describe the row, whose time includes the free ones
    feats = [features_of(o, device=device, threads=threads) for o in ops]
    f0 = max(feats, key=lambda f: (f.kernel != "view", f.macs, f.bytes))
    if spec.kind == "view":
        f0 = feats[0]
    return [dict(base, kernel=f0.kernel, op=f0.op, calls=1, macs=f0.macs,
                 bytes=f0.bytes, groups=f0.groups, cin_per_group=f0.cin_per_group,
                 cout_per_group=f0.cout_per_group, out_pixels=f0.out_pixels, taps=f0.taps, outer=f0.outer,
                 weight_bytes=f0.weight_bytes)]


def _best_of_windows(module, x, protocol) -> tuple[float, float, int]:
    """Time of one step (s): the fastest of ``protocol.trials`` windows; (best, std, repeats).

    The measurement module's step, warm-up and window sizing (:mod:`groupconv.measure.protocol`),
    but the **minimum** over windows instead of the mean (a window can only be slowed
    down by other work, so the fastest is the best estimate of the undisturbed time; with
    no energy to integrate nothing needs the mean), timed on :func:`_cpu_clock`.
    """
    import statistics

    import torch

    from ..measure.protocol import _calibrate, _timed_window, make_step

    step = make_step(module, x, protocol.mode)
    begin = time.perf_counter()
    done = 0
    while done < protocol.warmup or time.perf_counter() - begin < protocol.warmup_s:
        step()
        done += 1
    device = x.device
    repeats = _calibrate(step, protocol.min_window_s, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        times = [_timed_window(step, repeats, device) / repeats for _ in range(protocol.trials)]
    else:
        clock = _cpu_clock()
        times = []
        for _ in range(protocol.trials):
            start = clock()
            for _ in range(repeats):
                step()
            times.append((clock() - start) / repeats)
    return min(times), (statistics.stdev(times) if len(times) > 1 else 0.0), repeats


def _cpu_clock():
    """The clock of a CPU measurement: this thread's CPU time with one torch thread.

    With ``torch.set_num_threads(1)`` every kernel runs on the calling thread, so its CPU
    time is the time the work took, whatever else the machine runs: on a machine shared
    with other work, wall-clock windows are stretched by time-slicing (2-3x was seen here),
    CPU time is not. With several threads, wall-clock time (``time.perf_counter``).
    """
    import torch

    return time.thread_time if torch.get_num_threads() == 1 else time.perf_counter


def _protocol(budget_s: float):
    from ..measure import Protocol

    short = budget_s < 60
    return Protocol(mode="forward", warmup=2, warmup_s=0.01 if short else 0.02, trials=5,
                    min_window_s=0.005 if short else 0.01, measure_memory=False)


def calibrate(
    device: str = "cpu",
    out: str | os.PathLike[str] | None = None,
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    threads: int | None = None,
    dtype: str = "float32",
    energy: str = "auto",
    seed: int = 0,
    progress: bool | None = None,
) -> Platform:
    """Measure this machine and fit a :class:`Platform` (see the module docstring).

    Parameters
    ----------
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    out : path, optional
        Where to save the platform JSON; the runs CSV goes beside it
        (:func:`runs_path_for`). Without it nothing is written (and nothing resumes).
    budget_s : float
        Wall-clock budget of the measurements (s); the designed operator set is cut where
        it runs out. Default 900 (a complete calibration on a 2-core CPU).
    threads : int, optional
        ``torch.set_num_threads`` during calibration (restored afterwards); default 1 on
        a CPU, torch's default on a GPU. The kernel a conv takes depends on it.
    dtype : str
        Tensor dtype, e.g. ``"float32"``.
    energy : {"auto", "zeus", "none"}
        Energy source (as in :func:`groupconv.measure.run_campaign`).
    seed : int
        Seed of the designed operator set.
    progress : bool, optional
        tqdm bar with an ETA (default: only on a terminal).

    Returns
    -------
    Platform
    """
    import torch
    from tqdm import tqdm

    from ..measure.campaign import resolve_source
    from ..measure.environment import describe_environment, resolve_device
    from ..measure.workloads import torch_dtype

    device = resolve_device(device)
    budget_s = v.finite_positive("budget_s", budget_s)
    torch_dtype(dtype)  # names a bad dtype
    if threads is None and device == "cpu":
        threads = 1
    if threads is not None:
        threads = v.positive_int("threads", threads)
    progress = sys.stderr.isatty() if progress is None else progress
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    threads_now = torch.get_num_threads()
    source = resolve_source(energy, device)
    runs = _Runs(runs_path_for(out)) if out is not None else None
    rows: dict[str, dict[str, object]] = {} if runs is None else {k: dict(r) for k, r in runs.rows.items()}
    protocol = _protocol(budget_s)
    # a resumed calibration has already spent the time between its first and last rows
    begin = time.perf_counter() - _time_spent(rows.values())
    skipped: list[str] = []
    try:
        env = describe_environment(device)
        roof = roofline_specs()
        nets = network_specs()
        ops = operator_specs(threads=threads_now, seed=seed)
        # phases share the budget: roofline first, networks last (a reserve of ~15 %)
        net_reserve = min(0.15 * budget_s, 120.0)
        n_nets = len(nets) if budget_s >= 60 else 4
        # the roofline and the networks always run (a platform needs its roofline constants
        # and its network correction: they take a few seconds, the reserve); the designed
        # operator set fills the rest of the budget
        plan: list[tuple[Spec, float]] = [(s, math.inf) for s in roof]
        plan += [(s, budget_s - net_reserve) for s in ops]
        plan += [(s, math.inf) for s in nets[:n_nets]]
        with tqdm(total=round(budget_s), desc="calibrate", unit="s", disable=not progress,
                  bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]") as bar:
            for spec, deadline in plan:
                elapsed = time.perf_counter() - begin
                if spec.key in rows:
                    continue
                if elapsed >= deadline:
                    skipped.append(spec.key)
                    continue
                try:
                    new = _measure_spec(spec, device, dtype, threads_now, source, protocol)
                except RuntimeError as exc:  # e.g. out of memory on a small device
                    warnings.warn(f"calibration point {spec.key} failed: {exc}".split("\n")[0], stacklevel=2)
                    continue
                for row in new:
                    rows[spec.key] = row
                    if runs is not None:
                        runs.add(row)
                bar.n = min(budget_s, time.perf_counter() - begin)
                bar.refresh()
    finally:
        if runs is not None:
            runs.close()
        torch.set_num_threads(previous_threads)
    metadata = {
        "device_name": env.device,
        "driver": env.driver,
        "torch_version": env.torch_version,
        "cuda_version": env.cuda_version,
        "cudnn_version": env.cudnn_version,
        "threads": threads_now,
        "dtype": dtype,
        "energy_source": source.name if source.available else "none",
        "budget_s": budget_s,
        "measured_s": round(time.perf_counter() - begin, 1),
        "protocol": {k: getattr(protocol, k) for k in protocol.__dataclass_fields__},
        "runs_file": None if out is None else runs_path_for(out).name,
        "seed": seed,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "groupconv_counter": _counter_name(),
        "points_measured": len(rows),
        "points_skipped_for_budget": len(skipped),
        "clock": ("measure (mean of windows, with energy)" if source.available else
                  "cuda events (fastest window)" if device != "cpu" else
                  "thread_time (fastest window)" if threads_now == 1 else "perf_counter (fastest window)"),
    }
    platform = fit_platform(list(rows.values()), device=device, metadata=metadata)
    if out is not None:
        platform.save(out)
    return platform


def _time_spent(rows: Iterable[dict[str, object]]) -> float:
    """Seconds between the first and the last row written (0 for none)."""
    stamps = []
    for r in rows:
        try:
            stamps.append(datetime.fromisoformat(str(r["timestamp"])).timestamp())
        except (KeyError, ValueError):
            continue
    return max(stamps) - min(stamps) if stamps else 0.0


def _counter_name() -> str:
    from .. import __version__

    return f"groupconv.networks.count_module ({__version__})"


# ---------------------------------------------------------------------------- fitting
def _f(row, name) -> float | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    return float(value)


def _row_features(r: dict[str, object], calls: int) -> OpFeatures:
    def i(name: str) -> int:
        return int(float(r[name])) if r.get(name) not in (None, "") else 1

    return OpFeatures(
        kernel=str(r["kernel"]), macs=_f(r, "macs") / calls, bytes=_f(r, "bytes") / calls, groups=i("groups"),
        op=str(r.get("op") or ""), batch=i("batch"), cin_per_group=i("cin_per_group"),
        cout_per_group=i("cout_per_group"), out_pixels=i("out_pixels"), taps=i("taps"), outer=i("outer"),
        weight_bytes=_f(r, "weight_bytes") or 0.0,
    )


def fit_platform(rows: Sequence[dict[str, object]], *, device: str, metadata: dict[str, object]) -> Platform:
    """Fit a :class:`Platform` from calibration rows (dicts with :data:`RUN_COLUMNS`)."""
    if not rows:
        raise GroupConvError("no calibration rows to fit a platform from")
    ops = [r for r in rows if r["phase"] in ("op", "roofline") and r["kernel"] != "network"]
    nets = [r for r in rows if r["phase"] == "network"]
    # roofline constants
    peak = max((_f(r, "macs") / _f(r, "time_s") for r in ops if _f(r, "macs")), default=float("nan"))
    bw = max((_f(r, "bytes") / _f(r, "time_s") for r in ops if _f(r, "bytes") and not _f(r, "macs")), default=float("nan"))
    tiny = [_f(r, "time_s") for r in rows if r["kind"] == "tiny"]
    fixed = min(tiny) if tiny else min(_f(r, "time_s") for r in ops)
    if not math.isfinite(peak) or not math.isfinite(bw):
        raise GroupConvError("the calibration has no compute or no memory microbenchmark: raise --budget-s")
    roof = Roofline(peak, bw, fixed)
    # per-kernel models (time; energy where measured), per call
    by_kernel: dict[str, list[dict[str, object]]] = {}
    for r in ops:
        if r["kind"] == "tiny":
            continue
        by_kernel.setdefault(str(r["kernel"]), []).append(r)
    time_models: dict[str, KernelModel] = {}
    energy_models: dict[str, KernelModel] = {}
    has_energy = all(_f(r, "energy_J") for r in ops) and bool(ops)
    def fit_group(kernel: str, name: str, krows: list[dict[str, object]]) -> None:
        calls = [max(1, int(float(r["calls"]))) for r in krows]
        feats = [_row_features(r, c) for r, c in zip(krows, calls)]
        time_models[name] = fit_kernel_model(kernel, feats, [_f(r, "time_s") / c for r, c in zip(krows, calls)],
                                             name=name)
        if has_energy:
            energy_models[name] = fit_kernel_model(
                kernel, feats, [_f(r, "energy_J") / c for r, c in zip(krows, calls)], quantity="energy_J", name=name
            )

    for kernel, krows in sorted(by_kernel.items()):
        if kernel not in KERNELS:
            continue
        fit_group(kernel, kernel, krows)
        if kernel.startswith("conv"):
            continue
        # one model per operator of a memory-bound class (relu and gelu differ), where measured enough
        by_op: dict[str, list[dict[str, object]]] = {}
        for r in krows:
            by_op.setdefault(str(r["op"]), []).append(r)
        if len(by_op) > 1:
            for op, orows in sorted(by_op.items()):
                if len(orows) >= 5:
                    fit_group(kernel, f"{kernel}:{op}", orows)
    platform = Platform(device=device, metadata=metadata, roofline=roof, time_models=time_models,
                        energy_models=energy_models)
    correction = _network_correction(platform, nets)
    e2gc = _fit_e2gc(ops, has_energy)
    validation = {
        "kernels": {k: {"n": m.n, "fit_mape": m.fit_mape, "cv_mape": m.cv_mape} for k, m in time_models.items()},
        "networks": correction.get("networks", []),
    }
    return Platform(device=device, metadata=metadata, roofline=roof, time_models=time_models,
                    energy_models=energy_models, network_correction=correction, e2gc=e2gc, validation=validation)


def _predict_network_raw(platform: Platform, row: dict[str, object]) -> tuple[dict[str, float], float | None]:
    """Per-frame per-op predictions (no correction) of a synthetic network row, summed per
    correction group (:data:`CORRECTION_GROUPS`), and the energy (or None)."""
    from ..networks import count_module

    p = json.loads(str(row["spec"]))
    model = _synthetic_network(str(row["kind"]))
    count = count_module(model, (int(p["batch"]), 3, int(p["h"]), int(p["h"])))
    ops, batch = count.ops, count.batch
    groups: dict[str, float] = dict.fromkeys(CORRECTION_GROUPS, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for o in ops:
            groups[correction_group(platform.features(o).kernel)] += platform.predict_op(o, warn=False, raw=True) / batch
        e = None
        if platform.has_energy:
            e = sum(platform.predict_op_energy(o, warn=False) or 0.0 for o in ops) / batch
    return groups, e


def _group_factors(T: np.ndarray, y: np.ndarray, prior: float, strength: float = 0.3) -> np.ndarray:
    """Non-negative factors a (one per group) with y ~ T a on relative residuals, each pulled
    towards ``prior`` (ridge of weight ``strength``): groups a network set barely exercises
    stay near the overall factor."""
    from scipy.optimize import nnls

    used = T.sum(axis=0) > 0
    A = T / y[:, None]
    A = np.vstack([A, strength * np.eye(T.shape[1])])
    b = np.concatenate([np.ones(len(y)), strength * np.full(T.shape[1], prior)])
    a, _ = nnls(A, b)
    a[~used] = prior
    return a


def _network_correction(platform: Platform, nets: Sequence[dict[str, object]]) -> dict[str, object]:
    """Measured / predicted time of whole synthetic networks, per correction group, with LOO errors."""
    if not nets:
        return {"time_factor": 1.0, "n_networks": 0, "note": "no network measured: no correction"}
    keys, measured, parts, energies = [], [], [], []
    for r in nets:
        groups, e = _predict_network_raw(platform, r)
        keys.append(str(r["key"]))
        measured.append(_f(r, "time_s") / int(float(r["batch"])))
        parts.append([groups[g] for g in CORRECTION_GROUPS])
        energies.append((_f(r, "energy_J"), e, int(float(r["batch"]))))
    y, T = np.array(measured), np.array(parts)
    raw = T.sum(axis=1)
    factor = float(np.exp(np.mean(np.log(y / raw))))
    n = len(y)
    a = _group_factors(T, y, factor) if n >= 4 else np.full(len(CORRECTION_GROUPS), factor)
    pred = T @ a
    loo = []
    for i in range(n):
        keep = np.arange(n) != i
        if n >= 5:
            f_i = float(np.exp(np.mean(np.log(y[keep] / raw[keep]))))
            a_i = _group_factors(T[keep], y[keep], f_i)
        else:
            a_i = a
        loo.append(abs(float(T[i] @ a_i) / y[i] - 1))
    out: dict[str, object] = {
        "time_factor": factor,
        "factors": {g: float(v) for g, v in zip(CORRECTION_GROUPS, a)},
        "n_networks": n,
        "mape_uncorrected": float(np.mean(np.abs(raw / y - 1))),
        "mape_single_factor": float(np.mean(np.abs(raw * factor / y - 1))),
        "mape_corrected": float(np.mean(np.abs(pred / y - 1))),
        "loo_mape_corrected": float(np.mean(loo)),
        "networks": [
            {"key": k, "measured_time_s": float(m), "predicted_time_s": float(p), "uncorrected_time_s": float(r)}
            for k, m, p, r in zip(keys, y, pred, raw)
        ],
        "note": "whole synthetic networks, measured / predicted: time ~ sum over groups of factor x "
                "summed per-op predictions (non-negative least squares on relative errors, each factor "
                "pulled towards the geometric-mean ratio time_factor); absorbs ops the per-op counts "
                "miss and the difference between an op timed alone and inside a network",
    }
    if platform.has_energy and all(em is not None and ep for em, ep, _ in energies):
        out["energy_factor"] = float(np.exp(np.mean(np.log([em / b / ep for em, ep, b in energies]))))
    return out


def _fit_e2gc(ops: Sequence[dict[str, object]], has_energy: bool) -> dict[str, object]:
    """The E2GC paper's law (Eq. 1) fitted to the conv calibration points of this platform."""
    import pandas as pd

    from ..cost import ConvLayer
    from ..fit import EnergyData, Workload, fit_model

    convs = [r for r in ops if r["kind"] == "conv"]
    if len(convs) < 3:
        return {"note": "fewer than 3 conv points: the E2GC law was not fitted"}
    quantity = "energy_J" if has_energy else "time_s"
    workloads, y = [], []
    for r in convs:
        p = json.loads(str(r["spec"]))
        ho = (p["h"] + 2 * (p["k"] // 2) - p["k"]) // p["stride"] + 1
        layer = ConvLayer(p["cin"], p["cout"], kernel=p["k"], out_height=ho, out_width=ho, groups=p["groups"],
                          stride=p["stride"], in_height=p["h"], in_width=p["h"])
        workloads.append(Workload((layer,), batch=int(p["batch"]), label=str(r["key"])))
        y.append(_f(r, quantity) / int(p["batch"]))  # per frame, as the paper's law
    info = pd.DataFrame({"key": [w.label for w in workloads], "batch": [w.batch for w in workloads]})
    data = EnergyData(tuple(workloads), np.array(y), info, source="platform calibration")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_model("paper", data, loo=False)
    notes = list(fit.notes)
    if not has_energy:
        notes.insert(0, "no energy meter: the law was fitted to time per frame (s), not energy; "
                        "'scale' is then in s, and beta is the time exponent of data movement")
    return {
        "fitted_to": quantity,
        "beta": fit.params["beta"],
        "beta_stderr": fit.stderr["beta"],
        "scale": fit.params["scale"],
        "scale_stderr": fit.stderr["scale"],
        "alpha": None,
        "mape": fit.mape,
        "n": len(y),
        "notes": notes,
    }
