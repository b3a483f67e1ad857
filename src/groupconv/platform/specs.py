"""What a calibration measures: roofline, operator and network specs (no torch).

* :func:`roofline_specs` - large GEMMs and convs (peak MAC/s), large copies and adds
  (bandwidth), a one-element op (the fixed cost of a call).
* :func:`operator_specs` - the designed operator set: dense, grouped, depthwise and
  pointwise convs over channels, groups, kernel sizes, map sizes, strides and batches
  shaped like the stages of a CNN; linear layers; batch norm, layer norm, activations,
  adds, pooling, concatenation, softmax and copies. Ordered so that any prefix is
  informative: kernels take turns, and within a kernel each next shape is the one
  farthest (in log MACs, log bytes, groups) from those already chosen
  (:func:`farthest_first`); a budget cuts the list where the time runs out.
* :func:`network_specs` - small synthetic networks (built by
  :func:`~groupconv.platform.modules.synthetic_network`; none of the catalogue or zoo
  architectures, which are kept for validation), timed whole for the network correction.

A :class:`Spec` is plain data (phase, kind, JSON-able parameters) with a stable
:attr:`Spec.key`, the key of its row in the runs CSV. Imports neither torch nor zeus.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .models import cpu_conv_uses_mkldnn

__all__ = ["FUSED_SPEC_KERNELS", "SEQUENCE_KINDS", "SEQUENCE_NETWORKS", "Spec", "make_spec", "roofline_specs", "operator_specs", "network_specs", "spec_kernel", "farthest_first"]


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


def make_spec(phase: str, kind: str, **params) -> Spec:
    """A :class:`Spec` with its parameters in a canonical (sorted) order."""
    return Spec(phase, kind, tuple(sorted(params.items())))


def roofline_specs() -> list[Spec]:
    """Microbenchmarks for the roofline constants."""
    return [
        make_spec("roofline", "tiny", n=1),
        make_spec("roofline", "view", n=64),
        make_spec("roofline", "linear", batch=1024, fin=1024, fout=1024),
        make_spec("roofline", "conv", batch=1, cin=256, cout=256, k=3, h=28, groups=1, stride=1),
        make_spec("roofline", "copy", batch=1, c=64, h=256),  # 16 MiB
        make_spec("roofline", "add", batch=1, c=64, h=256),
        make_spec("roofline", "linear", batch=512, fin=2048, fout=512),
        make_spec("roofline", "tiny", n=2),
        make_spec("roofline", "view", n=4096),
        make_spec("roofline", "view", n=8),
        make_spec("roofline", "copy", batch=4, c=64, h=256),
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
        form = rng.choice(["dense3", "pointwise", "grouped", "depthwise", "dense_k", "grouped_pw", "per_group", "stem"],
                          p=[0.11, 0.19, 0.14, 0.14, 0.08, 0.1, 0.19, 0.05])
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
        elif form == "per_group":  # a fixed number of channels per group (E2GC's G): many groups
            k = 3
            per = int(rng.choice([c for c in (2, 4, 8, 16, 32) if c < cin and cin % c == 0]))
            cout, groups = cin, cin // per
        elif form == "depthwise":
            k = int(rng.choice([3, 3, 5, 7]))
            cout, groups = cin, cin
        elif form == "stem":  # the first conv on an image: three channels, a large kernel or a patch embedding
            k = int(rng.choice([3, 4, 7, 8, 16]))
            cin, cout = 3, int(rng.choice([16, 24, 32, 64, 96, 192]))
            h = int(rng.choice((224, 112, 64, 32)))
        stride = int(rng.choice([1, 1, 1, 2])) if h >= 8 else 1
        if form == "stem":
            stride = int(rng.choice([2, 2, 4])) if k < 8 else k  # a patch embedding strides by its size
        batch = int(rng.choice(batches))
        h_out = (h + 2 * (k // 2) - k) // stride + 1
        macs = batch * cout * (cin // groups) * k * k * h_out * h_out
        if macs > 4e8 or macs < 1e4:
            continue
        s = make_spec("op", "conv", batch=batch, cin=cin, cout=cout, k=k, h=h, groups=groups, stride=stride)
        if s.key not in seen:
            seen.add(s.key)
            out.append(s)
    return out


def _memory_candidates(rng: np.random.Generator, n: int, batches: Sequence[int]) -> list[Spec]:
    out: list[Spec] = []
    seen: set[str] = set()
    kinds = ("bn", "act", "add", "maxpool", "avgpool", "gap", "cat", "copy", "clone", "pad", "ln", "softmax", "linear")
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
            s = make_spec("op", "act", batch=batch, c=c, h=h, act=str(rng.choice(_ACTS)))
        elif kind == "ln":
            s = make_spec("op", "ln", batch=batch, c=c, h=h)
        elif kind == "softmax":
            s = make_spec("op", "softmax", batch=batch, c=c, h=h)
        elif kind == "pad":  # a causal or "same" padding: on the last dim (1-D signals) or the last two
            s = make_spec("op", "pad", batch=batch, c=c, h=h, pad=int(rng.choice((1, 2, 4, 8))),
                          dims=int(rng.choice((1, 2))))
        elif kind == "linear":
            tokens = int(rng.choice((1, 1, 4, 49, 196)))
            fin = int(rng.choice((64, 128, 256, 512, 1024, 2048)))
            fout = int(rng.choice((10, 64, 128, 256, 512, 1000, 2048)))
            s = make_spec("op", "linear", batch=batch * tokens, fin=fin, fout=fout)
        else:
            s = make_spec("op", kind, batch=batch, c=c, h=h)
        if s.key not in seen:
            seen.add(s.key)
            out.append(s)
    return out


#: Specs of a fused kernel (the kind -> the kernel type it should time); the CPU falls
#: back to the decomposition in some cases (see ``fitting.dispatched_as_specified``).
FUSED_SPEC_KERNELS: dict[str, str] = {"mha": "mha", "enclayer": "encoder_layer"}

#: Operator kinds of networks beyond CNNs (token, attention, recurrent, 1-D, decoder ops).
SEQUENCE_KINDS: tuple[str, ...] = ("tlinear", "sdpa", "mha", "enclayer", "tln", "tsoftmax", "tact", "permute",
                                   "lstm", "gru", "conv1d", "convT", "interp", "embedding", "tadd")


def _sequence_candidates(rng: np.random.Generator, n: int, batches: Sequence[int]) -> list[Spec]:
    """Shapes of transformers, MLP-Mixers, RNNs, 1-D convnets and decoders with skips."""
    out: list[Spec] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        kind = SEQUENCE_KINDS[len(out) % len(SEQUENCE_KINDS)] if tries < 3 * len(SEQUENCE_KINDS) else \
            str(rng.choice(SEQUENCE_KINDS))
        b = int(rng.choice(batches[:5]))
        t = int(rng.choice((16, 32, 49, 64, 128, 196, 256)))
        d = int(rng.choice((64, 96, 128, 192, 256, 384, 512)))
        heads = int(rng.choice([h for h in (1, 2, 3, 4, 6, 8) if d % h == 0 and d // h >= 16]))
        if kind == "tlinear":
            fout = int(rng.choice((d // 2, d, 2 * d, 3 * d, 4 * d, 1000)))
            if b * t * d * fout > 4e8:
                continue
            s = make_spec("op", kind, batch=b, t=t, fin=d, fout=fout)
        elif kind == "sdpa":
            if b * heads * t * t * (d // heads) > 2e8:
                continue
            s = make_spec("op", kind, batch=b, heads=heads, t=t, hd=d // heads, causal=int(rng.integers(0, 2)))
        elif kind in ("mha", "enclayer"):
            if b * t * d * d * (12 if kind == "enclayer" else 4) > 4e8:
                continue
            s = make_spec("op", kind, batch=b, t=t, d=d, heads=heads)
        elif kind in ("tln", "tact", "tadd"):
            width = int(rng.choice((d, 2 * d, 4 * d))) if kind == "tact" else d
            if b * t * width > 4e6:
                continue
            extra = {"act": str(rng.choice(("gelu", "silu", "relu")))} if kind == "tact" else {}
            s = make_spec("op", kind, batch=b, t=t, d=width, **extra)
        elif kind == "tsoftmax":
            if b * heads * t * t > 4e6:
                continue
            s = make_spec("op", kind, batch=b, heads=heads, t=t)
        elif kind == "permute" and rng.random() < 0.5:  # a map between NCHW and channels-last (ConvNeXt, Swin)
            h = int(rng.choice((7, 14, 28, 56)))
            c = int(rng.choice((32, 64, 96, 192, 384)))
            if b * c * h * h > 4e6:
                continue
            s = make_spec("op", kind, batch=b, c=c, h=h, to=str(rng.choice(("nhwc", "nchw"))))
        elif kind == "permute":
            if b * t * d > 4e6:
                continue
            s = make_spec("op", kind, batch=b, t=t, heads=heads, hd=d // heads)
        elif kind == "gru":
            hidden = int(rng.choice((32, 64, 128, 256)))
            fin = int(rng.choice((16, 40, 64, 128)))
            seq = int(rng.choice((8, 16, 32, 64, 128)))
            s = make_spec("op", kind, batch=b, seq=seq, fin=fin, hidden=hidden, layers=int(rng.choice((1, 1, 2))))
        elif kind == "lstm":
            hidden = int(rng.choice((32, 64, 128, 256, 512)))
            fin = int(rng.choice((16, 40, 64, 128, 256)))
            seq = int(rng.choice((8, 16, 32, 64, 128)))
            if b * seq * 4 * hidden * (fin + hidden) > 3e8:
                continue
            s = make_spec("op", kind, batch=b, seq=seq, fin=fin, hidden=hidden, bidir=int(rng.integers(0, 2)))
        elif kind == "conv1d" and rng.random() < 0.25:  # a stem on the raw signal: one channel, a long kernel
            k = int(rng.choice((11, 40, 80, 160)))
            stride = int(rng.choice((k // 4, k // 5, 4, 8, 16)))
            length = int(rng.choice((4000, 8000, 16000)))
            cout = int(rng.choice((16, 32, 64)))
            s = make_spec("op", kind, batch=b, cin=1, cout=cout, k=k, length=length, groups=1, dilation=1,
                          stride=max(1, stride))
        elif kind == "conv1d":
            cin = int(rng.choice((16, 32, 64, 128, 256)))
            cout = int(cin * rng.choice((1, 1, 2)))
            g = int(rng.choice([g for g in (1, 1, 2, 4, 8, cin) if cin % g == 0 and cout % g == 0]))
            k = int(rng.choice((1, 3, 5, 7, 9)))
            length = int(rng.choice((64, 128, 256, 512, 1024, 2048)))
            dil = int(rng.choice((1, 1, 2, 4))) if k > 1 else 1
            stride = int(rng.choice((1, 1, 2, 4)))
            if b * cout * cin // g * k * length / stride > 3e8:
                continue
            s = make_spec("op", kind, batch=b, cin=cin, cout=cout, k=k, length=length, groups=g, dilation=dil,
                          stride=stride)
        elif kind == "convT":
            h = int(rng.choice((4, 7, 8, 14, 16, 28, 32)))
            cin = int(rng.choice((16, 32, 64, 128, 256)))
            cout = cin // int(rng.choice((1, 2)))
            k, st = (2, 2) if rng.integers(0, 3) else (4, 2)
            if b * cin * cout * k * k * h * h > 3e8:
                continue
            s = make_spec("op", kind, batch=b, cin=cin, cout=cout, k=k, stride=st, h=h)
        elif kind == "interp":
            h = int(rng.choice((7, 14, 16, 28, 32, 56)))
            c = int(rng.choice((16, 32, 64, 128, 256)))
            if b * c * h * h * 4 > 4e6:
                continue
            s = make_spec("op", kind, batch=b, c=c, h=h, mode=str(rng.choice(("nearest", "bilinear"))))
        else:  # embedding
            vocab = int(rng.choice((1000, 5000, 30000)))
            s = make_spec("op", kind, batch=b, t=t, vocab=vocab, d=d)
        if s.key not in seen:
            seen.add(s.key)
            out.append(s)
    return out


def spec_kernel(s: Spec, threads: int) -> str:
    """The kernel a spec exercises (analytically, for ordering)."""
    p = s.p
    if s.kind == "conv":
        x = (p["batch"], p["cin"], p["h"], p["h"])
        w = (p["cout"], p["cin"] // p["groups"], p["k"], p["k"])
        if not cpu_conv_uses_mkldnn(x, w, stride=p["stride"], groups=p["groups"], threads=threads):
            return "conv_slow"
        return "conv_dw" if p["groups"] == p["cin"] and p["groups"] > 1 else "conv_mkldnn"
    if s.kind == "conv1d":
        x = (p["batch"], p["cin"], p["length"])
        w = (p["cout"], p["cin"] // p["groups"], p["k"])
        if not cpu_conv_uses_mkldnn(x, w, stride=p["stride"], dilation=p["dilation"], groups=p["groups"],
                                    threads=threads):
            return "conv_slow"
        return "conv_dw" if p["groups"] == p["cin"] and p["groups"] > 1 else "conv_mkldnn"
    if s.kind == "convT":
        x = (p["batch"], p["cin"], p["h"], p["h"])
        w = (p["cin"], p["cout"], p["k"], p["k"])
        return "conv_transpose" if cpu_conv_uses_mkldnn(x, w, stride=p["stride"], threads=threads) else \
            "conv_transpose_slow"
    return {"bn": "norm", "ln": "norm", "act": "activation", "add": "elementwise", "maxpool": "pool",
            "avgpool": "pool", "gap": "reduction", "cat": "cat", "copy": "transpose", "clone": "copy", "pad": "copy", "softmax": "softmax",
            "linear": "matmul", "tlinear": "matmul", "sdpa": "attention", "mha": "mha", "enclayer": "encoder_layer",
            "tln": "norm", "tsoftmax": "softmax", "tact": "activation", "permute": "transpose", "lstm": "rnn", "gru": "rnn_loop",
            "interp": "pool", "embedding": "embedding", "tadd": "elementwise"}.get(s.kind, "other")


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
    if s.kind == "permute":  # two layouts (attention heads, NCHW <-> NHWC): their size
        n = p["batch"] * (p["c"] * p["h"] ** 2 if "c" in p else p["t"] * p["heads"] * p["hd"])
        return np.array([np.log(4.0 * n), np.log(p["batch"])])
    if "c" in p and "h" in p and s.kind not in SEQUENCE_KINDS:
        byts = 4 * p["batch"] * p["c"] * p["h"] ** 2
        return np.array([0.0, np.log(byts), 0.0, 0.0, np.log(p["batch"])])
    # the other kinds: the log of each numeric parameter (one layout per kind)
    return np.array([np.log(float(v) + 1.0) for _, v in s.params if isinstance(v, (int, float))])


def farthest_first(specs: list[Spec]) -> list[Spec]:
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


def operator_specs(*, threads: int = 1, seed: int = 0, n_conv: int = 900, n_memory: int = 450,
                   n_sequence: int = 600, batches: Sequence[int] = (1, 1, 2, 4, 8, 16)) -> list[Spec]:
    """The designed operator set, ordered so that every prefix is informative.

    Kernels take turns (a budget of a few points still fits every kernel a little); within
    a kernel, shapes are in farthest-first order.
    """
    rng = np.random.default_rng(seed)
    cands = _conv_candidates(rng, n_conv, batches) + _memory_candidates(rng, n_memory, batches)
    if n_sequence:
        cands += _sequence_candidates(np.random.default_rng(seed + 1), n_sequence, batches)
    by_kernel: dict[str, list[Spec]] = {}
    for s in cands:
        by_kernel.setdefault(spec_kernel(s, threads), []).append(s)
    # memory ops are split by kind within their kernel so that every op type gets points early
    queues: list[list[Spec]] = []
    for kernel, specs in sorted(by_kernel.items()):
        kinds: dict[str, list[Spec]] = {}
        for s in specs:
            kinds.setdefault(s.kind if s.kind not in ("act", "tact") else f"{s.kind}:{s.p['act']}", []).append(s)
        for group in kinds.values():
            queues.append(farthest_first(group))
    # convs are most of a CNN's time: give each conv queue three turns per round
    weights = [3 if q and q[0].kind == "conv" else 1 for q in queues]
    # a network's time sits in its compute kernels: two turns for the sequence models' ones
    weights = [2 if q and q[0].kind in ("tlinear", "sdpa", "lstm", "gru", "conv1d", "mha", "enclayer") else w
               for q, w in zip(queues, weights)]
    out: list[Spec] = []
    while any(queues):
        for q, w in zip(queues, weights):
            for _ in range(w):
                if q:
                    out.append(q.pop(0))
    return out


#: Synthetic network families beyond CNNs (``h`` is their sequence length or map size).
SEQUENCE_NETWORKS: tuple[tuple[str, int], ...] = (
    ("encoder", 64), ("decoder", 96), ("rnn", 48), ("audio1d", 1024), ("skipnet", 64), ("encoder", 128),
    ("decoder", 48), ("rnn", 96), ("audio1d", 2048), ("skipnet", 48), ("mhablock", 64), ("mhablock", 128),
)


def network_specs(round: int = 0) -> list[Spec]:
    """Small synthetic networks (not catalogue, zoo or held-out architectures) for the
    correction: CNNs, transformer encoders and decoders, a token MLP, RNNs, 1-D convnets
    and an encoder-decoder with skips.

    ``round`` numbers a second (third, ...) timing of the same networks, minutes apart: their
    keys carry it (round 0's keys do not), and the fit keeps each network's fastest round
    (on a shared virtual machine a stretch of seconds can run two threads 30 % slower)."""
    extra = {"round": round} if round else {}
    out = []
    for net, size in (("plain", 64), ("dwsep", 96), ("resgroup", 64), ("mixer", 56), ("widedw", 128),
                      ("bottleneck", 96), ("plain", 96), ("dwsep", 64), ("resgroup", 96), ("mixer", 32),
                      ("widedw", 96), ("bottleneck", 128)):
        for batch in (1, 4):
            out.append(make_spec("network", net, batch=batch, h=size, **extra))
    # interleaved so that a short calibration (the first networks only) sees every family
    interleaved: list[Spec] = []
    seq = [make_spec("network", net, batch=batch, h=size, **extra) for net, size in SEQUENCE_NETWORKS
           for batch in (1, 4)]
    for i in range(max(len(out), len(seq))):
        interleaved += out[i:i + 1] + seq[i:i + 1]
    return interleaved
