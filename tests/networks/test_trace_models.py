"""Small versions of the architectures the old hook counter got wrong, traced per op.

EfficientNet-style MBConv with squeeze-excitation, a Swin block (shifted windows, relative
position bias), a 3-D video ResNet stem, a temporal shift module, a GPT with tied
embeddings and causal SDPA, an LSTM language model. Each is checked against torch's
FlopCounterMode on the meta device, and on the real CPU kernels (fused attention,
mkldnn RNN) it counts the same.
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from groupconv.networks import count_module  # noqa: E402

class SE(nn.Module):
    """Squeeze-excitation: global pool, two 1x1 convs, a sigmoid gate."""

    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // 4, 1)
        self.fc2 = nn.Conv2d(c // 4, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.silu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


class MBConv(nn.Module):
    """EfficientNet's inverted residual: expand 4x, depthwise 3x3, SE, project."""

    def __init__(self, c):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(c, 4 * c, 1, bias=False), nn.BatchNorm2d(4 * c), nn.SiLU())
        self.dw = nn.Sequential(
            nn.Conv2d(4 * c, 4 * c, 3, padding=1, groups=4 * c, bias=False), nn.BatchNorm2d(4 * c), nn.SiLU()
        )
        self.se = SE(4 * c)
        self.proj = nn.Sequential(nn.Conv2d(4 * c, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.proj(self.se(self.dw(self.expand(x))))


class Eff(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1)
        self.blocks = nn.Sequential(MBConv(16), MBConv(16))
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.drop(self.blocks(self.stem(x)).mean((2, 3))))


class Swin(nn.Module):
    """One shifted-window block: roll, window partition, attention with a relative position
    bias gathered by index, window merge, MLP."""

    def __init__(self, dim=32, heads=4, win=4):
        super().__init__()
        self.win, self.heads = win, heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.rel = nn.Parameter(torch.zeros((2 * win - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(win), torch.arange(win), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + win - 1
        self.register_buffer("idx", rel[..., 0] * (2 * win - 1) + rel[..., 1])
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):  # (B, H, W, C)
        b, h, w_, c = x.shape
        w = self.win
        x = torch.roll(x, (-2, -2), (1, 2))
        t = self.norm(x).view(b, h // w, w, w_ // w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, c)
        q, k, v = self.qkv(t).reshape(t.shape[0], w * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)
        a = a + self.rel[self.idx.view(-1)].view(w * w, w * w, -1).permute(2, 0, 1)[None]
        o = (a.softmax(-1) @ v).transpose(1, 2).reshape(t.shape[0], w * w, c)
        o = self.proj(o).view(b, h // w, w_ // w, w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w_, c)
        x = x + o
        return x + self.mlp(x)


class R3D(nn.Module):
    """A 3-D video ResNet stem and one residual Conv3d."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(3, 16, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False), nn.BatchNorm3d(16),
            nn.ReLU(inplace=True), nn.MaxPool3d(3, 2, 1),
        )
        self.c = nn.Conv3d(16, 16, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.pool(F.relu(self.c(self.stem(x)) + self.stem(x))).flatten(1))


class TSM(nn.Module):
    """Temporal shift on (B*T, C, H, W): a quarter of the channels shifted in time, then a conv."""

    def __init__(self, frames=4):
        super().__init__()
        self.frames = frames
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        nt, c, h, w = x.shape
        x5 = x.view(nt // self.frames, self.frames, c, h, w)
        out = torch.zeros_like(x5)
        out[:, :-1, :2] = x5[:, 1:, :2]
        out[:, 1:, 2:4] = x5[:, :-1, 2:4]
        out[:, :, 4:] = x5[:, :, 4:]
        return self.conv(out.view(nt, c, h, w))


class GPT(nn.Module):
    """A 2-layer GPT: token + position embeddings, causal SDPA, tied output head."""

    def __init__(self, vocab=100, dim=32, heads=4, layers=2, seq=16):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, dim), nn.Embedding(seq, dim)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({
                "ln1": nn.LayerNorm(dim), "attn": nn.Linear(dim, 3 * dim), "proj": nn.Linear(dim, dim),
                "ln2": nn.LayerNorm(dim), "fc": nn.Linear(dim, 4 * dim), "out": nn.Linear(4 * dim, dim),
            })
            for _ in range(layers)
        )
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.wte.weight
        self.heads = heads

    def forward(self, ids):
        b, t = ids.shape
        x = self.wte(ids) + self.wpe(torch.arange(t, device=ids.device))
        for blk in self.blocks:
            q, k, v = blk["attn"](blk["ln1"](x)).split(x.shape[-1], -1)
            q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, -1)
            x = x + blk["proj"](y)
            x = x + blk["out"](F.gelu(blk["fc"](blk["ln2"](x)), approximate="tanh"))
        return self.head(self.ln(x))


class LSTMLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.rnn = nn.LSTM(16, 32, 2, batch_first=True, bidirectional=True)
        self.out = nn.Linear(64, 50)

    def forward(self, ids):
        return self.out(self.rnn(self.emb(ids))[0])


def flop_counter_macs(model, args) -> int:
    meta = copy.deepcopy(model).to("meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(*[a.to("meta") for a in args])
    return counter.get_total_flops() // 2


MODELS = {
    "efficientnet_like": (Eff, lambda: [torch.randn(2, 3, 32, 32)]),
    "swin_block": (Swin, lambda: [torch.randn(2, 8, 8, 32)]),
    "r3d": (R3D, lambda: [torch.randn(2, 3, 4, 32, 32)]),
    "tsm": (TSM, lambda: [torch.randn(8, 8, 6, 6)]),
    "gpt_tied": (GPT, lambda: [torch.randint(0, 100, (2, 16))]),
    "lstm_lm": (LSTMLM, lambda: [torch.randint(0, 50, (2, 7))]),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_against_flop_counter_and_real_kernels(name):
    torch.manual_seed(0)
    build, make_args = MODELS[name]
    model, args = build(), make_args()
    meta = count_module(model, tuple(args))
    assert meta.unsupported == {}
    assert meta.macs * meta.batch == flop_counter_macs(model, args)
    cpu = count_module(model, tuple(args), device=None)
    assert (cpu.macs, cpu.params, cpu.total_params) == (meta.macs, meta.params, meta.total_params)
    # every unique parameter once (the tied GPT embedding is one tensor, as in parameters())
    assert meta.total_params == sum(p.numel() for p in model.parameters())


def test_tsm_declared_clips():
    """TSM folds (B, T) into the batch: declare B to get MACs per clip (T = 4 frames)."""
    model = TSM()
    per_frame = count_module(model, (8, 8, 6, 6)).macs
    assert count_module(model, (8, 8, 6, 6), batch=2).macs == 4 * per_frame == 4 * 8 * 8 * 9 * 36


class ViT(nn.Module):
    """ViT-B/16 from torch's own encoder layer (pre-norm, GELU), as torchvision's vit_b_16."""

    def __init__(self, dim=768, depth=12, heads=12, mlp=3072, patch=16, size=224, classes=1000):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, (size // patch) ** 2 + 1, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, mlp, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.enc = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.norm(self.enc(x))[:, 0])


def test_vit_b16_by_hand():
    """The issue's ViT-B/16: 17.56 G MACs (the hook counter saw 11.27 G), 86,567,656 parameters."""
    with torch.device("meta"):
        model = ViT()
    count = count_module(model, (2, 3, 224, 224))
    tokens, dim, heads, mlp = 197, 768, 12, 3072
    patch = dim * 3 * 16 * 16 * 196
    per_layer = (
        tokens * dim * 3 * dim  # q, k, v projections
        + 2 * heads * tokens * tokens * (dim // heads)  # Q K^T and P V
        + tokens * dim * dim  # output projection
        + 2 * tokens * dim * mlp  # MLP
    )
    assert count.macs == patch + 12 * per_layer + dim * 1000 == 17_563_828_224
    assert count.total_params == 86_567_656  # torchvision's vit_b_16
    assert count.unsupported == {}
    # weights of the patch conv, 12 x (in-proj, out-proj, 2 MLP) and the head
    assert count.params == dim * 3 * 16 * 16 + 12 * (3 * dim * dim + dim * dim + 2 * dim * mlp) + dim * 1000
