"""The torch modules a calibration times: rings of one op, micro-ops, synthetic networks.

* :func:`build_spec` - the module, input and number of copies of a
  :class:`~groupconv.platform.specs.Spec`. Each op with weights is timed as a ring of
  copies of itself on the same input, so that its input is warm (the previous layer just
  wrote it) and its weights are not (as in a network).
* :func:`synthetic_network` - the small synthetic networks of the network correction
  (plain, depthwise-separable, grouped residual, MLP-Mixer-like, wide depthwise,
  bottleneck); none is a catalogue or zoo architecture.
* :func:`one_copy` - the module whose operators describe a ring's row.

torch is imported when a function is called, not with this module.
"""

from __future__ import annotations

import math

from ..errors import GroupConvError
from .specs import Spec

__all__ = ["build_spec", "network_input", "synthetic_network", "one_copy"]


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
        """A copy: reordering (``x.transpose(2, 3).contiguous()``, a ``transpose`` kernel) or not."""

        def __init__(self, reorder: bool = True) -> None:
            super().__init__()
            self.reorder = reorder

        def forward(self, x):
            return x.transpose(2, 3).contiguous() if self.reorder else x.clone()

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


def synthetic_network(kind: str):
    """One of the synthetic networks of :func:`~groupconv.platform.specs.network_specs` (a torch module)."""
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
    if kind in _SEQUENCE_NETWORKS:
        return _SEQUENCE_NETWORKS[kind]()
    raise GroupConvError(f"unknown synthetic network {kind!r}")


def build_spec(spec: Spec, device: str, dtype):
    """``(module, input, copies)`` for a spec on ``device`` in torch ``dtype``."""
    import torch
    from torch import nn

    Ring, Binary, Copy, Tiny, ChannelsLastLN, View = _modules()
    p = spec.p
    kw = {"device": device, "dtype": dtype}
    b = p.get("batch", 1)
    if spec.phase == "network":
        return synthetic_network(spec.kind).to(**kw), network_input(spec.kind, b, p["h"], device, dtype), 1
    if spec.kind == "tiny":
        return Tiny(), torch.randn(p["n"], **kw), 1
    if spec.kind == "view":
        return View(), torch.randn(p["n"], **kw), 1
    if spec.kind in _SEQUENCE_BUILDERS:
        return _SEQUENCE_BUILDERS[spec.kind](p, kw)
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
        elif spec.kind in ("copy", "clone"):
            mod = Copy(reorder=spec.kind == "copy")
        elif spec.kind == "pad":  # (pad, 0) on the last dim, or (pad, pad, pad, pad) on the last two
            pad = (p["pad"], 0) if p["dims"] == 1 else (p["pad"],) * 4
            mod = _lambda(lambda y: torch.nn.functional.pad(y, pad))
        else:
            raise GroupConvError(f"unknown calibration op {spec.kind!r}")
        return mod.to(**kw).eval(), x, 1
    copies = int(min(8, max(1, math.ceil(2 * 2**20 / max(w_bytes, 1)))))
    return Ring([make().to(**kw) for _ in range(copies)]).eval(), x, copies


def one_copy(module, copies: int):
    """The single op of a ring (what its row's features describe)."""
    return module.copies[0] if copies > 1 or type(module).__name__ == "Ring" else module


# ---------------------------------------------------------------------------- beyond CNNs
def _ring(make, x, w_bytes: int, kw):
    Ring = _modules()[0]
    copies = int(min(8, max(1, math.ceil(2 * 2**20 / max(w_bytes, 1)))))
    return Ring([make().to(**kw) for _ in range(copies)]).eval(), x, copies


def _lambda(fn):
    from torch import nn

    class Fn(nn.Module):
        def forward(self, x):
            return fn(x)

    return Fn()


def _b_tlinear(p, kw):
    import torch
    from torch import nn

    x = torch.randn(p["batch"], p["t"], p["fin"], **kw)
    return _ring(lambda: nn.Linear(p["fin"], p["fout"]), x, p["fin"] * p["fout"] * 4, kw)


def _b_sdpa(p, kw):
    import torch
    import torch.nn.functional as F

    q = torch.randn(p["batch"], p["heads"], p["t"], p["hd"], **kw)
    causal = bool(p["causal"])
    return _lambda(lambda x: F.scaled_dot_product_attention(x, x, x, is_causal=causal)).to(**kw), q, 1


def _b_mha(p, kw):
    import torch
    from torch import nn

    class MHA(nn.Module):
        def __init__(self):
            super().__init__()
            self.att = nn.MultiheadAttention(p["d"], p["heads"], batch_first=True)

        def forward(self, x):
            return self.att(x, x, x, need_weights=False)[0]

    x = torch.randn(p["batch"], p["t"], p["d"], **kw)
    return _ring(MHA, x, 4 * p["d"] * p["d"] * 4, kw)


def _b_enclayer(p, kw):
    import torch
    from torch import nn

    x = torch.randn(p["batch"], p["t"], p["d"], **kw)
    make = lambda: nn.TransformerEncoderLayer(p["d"], p["heads"], 4 * p["d"], dropout=0.0,  # noqa: E731
                                              batch_first=True)
    return _ring(make, x, 12 * p["d"] * p["d"] * 4, kw)


def _b_tln(p, kw):
    import torch
    from torch import nn

    return nn.LayerNorm(p["d"]).to(**kw).eval(), torch.randn(p["batch"], p["t"], p["d"], **kw), 1


def _b_tact(p, kw):
    import torch
    from torch import nn

    mod = {"gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU}[p["act"]]()
    return mod.eval(), torch.randn(p["batch"], p["t"], p["d"], **kw), 1


def _b_tadd(p, kw):
    import torch

    Binary = _modules()[1]
    return Binary(torch.randn(p["batch"], p["t"], p["d"], **kw), "add").eval(), \
        torch.randn(p["batch"], p["t"], p["d"], **kw), 1


def _b_tsoftmax(p, kw):
    import torch
    from torch import nn

    return nn.Softmax(dim=-1).eval(), torch.randn(p["batch"], p["heads"], p["t"], p["t"], **kw), 1


def _b_permute(p, kw):
    import torch

    if "to" in p:  # NCHW <-> channels-last, made contiguous
        b, c, h = p["batch"], p["c"], p["h"]
        if p["to"] == "nhwc":
            return _lambda(lambda y: y.permute(0, 2, 3, 1).contiguous()), torch.randn(b, c, h, h, **kw), 1
        return _lambda(lambda y: y.permute(0, 3, 1, 2).contiguous()), torch.randn(b, h, h, c, **kw), 1
    x = torch.randn(p["batch"], p["t"], p["heads"], p["hd"], **kw)
    return _lambda(lambda y: y.permute(0, 2, 1, 3).contiguous()), x, 1


def _b_lstm(p, kw):
    import torch
    from torch import nn

    class LSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(p["fin"], p["hidden"], batch_first=True, bidirectional=bool(p["bidir"]))

        def forward(self, x):
            return self.rnn(x)[0]

    x = torch.randn(p["batch"], p["seq"], p["fin"], **kw)
    return LSTM().to(**kw).eval(), x, 1


def _b_gru(p, kw):
    import torch
    from torch import nn

    class GRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(p["fin"], p["hidden"], p["layers"], batch_first=True)

        def forward(self, x):
            return self.rnn(x)[0]

    x = torch.randn(p["batch"], p["seq"], p["fin"], **kw)
    return GRU().to(**kw).eval(), x, 1


def _b_conv1d(p, kw):
    import torch
    from torch import nn

    k, d = p["k"], p["dilation"]
    make = lambda: nn.Conv1d(p["cin"], p["cout"], k, p["stride"], d * (k // 2), dilation=d,  # noqa: E731
                             groups=p["groups"], bias=False)
    x = torch.randn(p["batch"], p["cin"], p["length"], **kw)
    return _ring(make, x, p["cout"] * p["cin"] // p["groups"] * k * 4, kw)


def _b_convT(p, kw):
    import torch
    from torch import nn

    make = lambda: nn.ConvTranspose2d(p["cin"], p["cout"], p["k"], p["stride"], (p["k"] - p["stride"]) // 2,  # noqa: E731
                                      bias=False)
    x = torch.randn(p["batch"], p["cin"], p["h"], p["h"], **kw)
    return _ring(make, x, p["cin"] * p["cout"] * p["k"] ** 2 * 4, kw)


def _b_interp(p, kw):
    import torch
    from torch import nn

    mode = p["mode"]
    mod = nn.Upsample(scale_factor=2, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    return mod.eval(), torch.randn(p["batch"], p["c"], p["h"], p["h"], **kw), 1


def _b_embedding(p, kw):
    import torch
    from torch import nn

    ids = torch.randint(0, p["vocab"], (p["batch"], p["t"]), device=kw["device"])
    return nn.Embedding(p["vocab"], p["d"]).to(**kw).eval(), ids, 1


_SEQUENCE_BUILDERS = {
    "tlinear": _b_tlinear, "sdpa": _b_sdpa, "mha": _b_mha, "enclayer": _b_enclayer, "tln": _b_tln,
    "tact": _b_tact, "tadd": _b_tadd, "tsoftmax": _b_tsoftmax, "permute": _b_permute, "lstm": _b_lstm, "gru": _b_gru,
    "conv1d": _b_conv1d, "convT": _b_convT, "interp": _b_interp, "embedding": _b_embedding,
}


def network_input(kind: str, batch: int, size: int, device: str = "cpu", dtype=None):
    """The input of a synthetic network: images ``(B, 3, size, size)`` for the CNN-like
    ones, tokens ``(B, size, width)``, token ids ``(B, size)``, signals ``(B, 1, size)``."""
    import torch

    kw = {"device": device, "dtype": dtype or torch.float32}
    if kind == "decoder":
        return torch.randint(0, _VOCAB, (batch, size), device=device)
    if kind in ("encoder", "mhablock"):
        return torch.randn(batch, size, _WIDTH[kind], **kw)
    if kind == "rnn":
        return torch.randn(batch, size, 40, **kw)
    if kind == "audio1d":
        return torch.randn(batch, 1, size, **kw)
    return torch.randn(batch, 3, size, size, **kw)


_VOCAB = 4000
_WIDTH = {"encoder": 160, "mhablock": 144}


def _net_encoder():
    from torch import nn

    class Encoder(nn.Module):  # transformer encoder stack (fused fast path at inference)
        def __init__(self):
            super().__init__()
            layer = nn.TransformerEncoderLayer(160, 5, 480, dropout=0.0, batch_first=True)
            self.body = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(160)
            self.head = nn.Linear(160, 50)

        def forward(self, x):
            return self.head(self.norm(self.body(x)).mean(1))

    return Encoder()


def _net_mhablock():
    from torch import nn

    class Block(nn.Module):  # post-norm attention + SiLU MLP around nn.MultiheadAttention
        def __init__(self, d):
            super().__init__()
            self.att = nn.MultiheadAttention(d, 4, batch_first=True)
            self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.mlp = nn.Sequential(nn.Linear(d, 3 * d), nn.SiLU(), nn.Linear(3 * d, d))

        def forward(self, x):
            x = self.n1(x + self.att(x, x, x, need_weights=False)[0])
            return self.n2(x + self.mlp(x))

    return nn.Sequential(Block(144), Block(144), nn.Linear(144, 20))


def _net_decoder():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):  # pre-norm causal self-attention written out, GELU MLP
        def __init__(self, d, h):
            super().__init__()
            self.h = h
            self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(self.n1(x)).view(b, t, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
            return x + self.mlp(self.n2(x))

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(_VOCAB, 128)
            self.pos = nn.Parameter(torch.zeros(1, 256, 128))
            self.blocks = nn.Sequential(Block(128, 4), Block(128, 4))
            self.norm = nn.LayerNorm(128)
            self.head = nn.Linear(128, _VOCAB, bias=False)

        def forward(self, ids):
            x = self.emb(ids) + self.pos[:, : ids.shape[1]]
            return self.head(self.norm(self.blocks(x)))

    return Decoder()


def _net_rnn():
    from torch import nn

    class RNN(nn.Module):  # a bidirectional LSTM then a GRU, on feature frames
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(40, 96, 2, batch_first=True, bidirectional=True)
            self.gru = nn.GRU(192, 64, batch_first=True)
            self.head = nn.Linear(64, 12)

        def forward(self, x):
            return self.head(self.gru(self.lstm(x)[0])[0][:, -1])

    return RNN()


def _net_audio1d():
    from torch import nn

    def cbr(cin, cout, k, s=1, d=1, g=1):
        return [nn.Conv1d(cin, cout, k, s, d * (k // 2), dilation=d, groups=g, bias=False), nn.BatchNorm1d(cout),
                nn.ReLU()]

    return nn.Sequential(*cbr(1, 24, 11, s=4), *cbr(24, 48, 5, s=2), *cbr(48, 48, 3, d=2, g=4),
                         *cbr(48, 96, 3, s=2), *cbr(96, 96, 5, g=96), *cbr(96, 96, 1), *cbr(96, 96, 3, d=4, g=8),
                         nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(96, 10))


def _net_skipnet():
    import torch
    import torch.nn.functional as F
    from torch import nn

    def cbr(cin, cout, s=1):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, s, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class SkipNet(nn.Module):  # encoder-decoder with skips: a transposed conv and an upsample
        def __init__(self):
            super().__init__()
            self.e1, self.e2, self.e3 = cbr(3, 24), cbr(24, 48, 2), cbr(48, 96, 2)
            self.up1 = nn.ConvTranspose2d(96, 48, 2, 2)
            self.d1 = cbr(96, 48)
            self.d2 = cbr(72, 24)
            self.head = nn.Conv2d(24, 4, 1)

        def forward(self, x):
            a = self.e1(x)
            b = self.e2(a)
            c = self.e3(b)
            y = self.d1(torch.cat([self.up1(c), b], 1))
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            return self.head(self.d2(torch.cat([y, a], 1)))

    return SkipNet()


_SEQUENCE_NETWORKS = {"encoder": _net_encoder, "mhablock": _net_mhablock, "decoder": _net_decoder, "rnn": _net_rnn,
                      "audio1d": _net_audio1d, "skipnet": _net_skipnet}
