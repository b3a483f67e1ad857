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

__all__ = ["build_spec", "synthetic_network", "one_copy"]


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
        return synthetic_network(spec.kind).to(**kw), torch.randn(b, 3, p["h"], p["h"], **kw), 1
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


def one_copy(module, copies: int):
    """The single op of a ring (what its row's features describe)."""
    return module.copies[0] if copies > 1 or type(module).__name__ == "Ring" else module
