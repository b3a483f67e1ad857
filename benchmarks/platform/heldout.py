"""Held-out verification of the platform beyond CNN inference (issue 15): predict, then time.

One resumable command per session::

    PYTHONPATH=src python benchmarks/platform/heldout.py \\
        --platform data/platforms/cpu-epyc-1t.json --platform-2t data/platforms/cpu-epyc-2t.json \\
        --out benchmarks/platform/results/heldout

Networks (none is calibrated on: the calibration's synthetic networks live in
``groupconv.platform.modules``; these are written here, with other widths, depths and
layouts): MobileNet-V1 and ResNeXt-50 paper variants (E2GC G = 1, 4, 32 and FgGC g = 4),
the six zoo networks, and eleven networks of other families: a ViT/DeiT-style encoder
(F.scaled_dot_product_attention), a Swin-like window-attention net (shifted windows), an
MLP-Mixer, a GPT-style decoder (causal SDPA, token ids), a BERT-style ``nn.TransformerEncoder``
(its fused fast path), a 1-D audio convnet (grouped, dilated, strided ``Conv1d``), a UNet
(``ConvTranspose2d``, skips), an LSTM model, a GRU model and a ConvNeXt-like net.

A second set (``--set second``; ``--set all`` for both; default ``first``), written on
2026-12-06 before that session's model changes, so that the models can be checked again on
networks nobody has read errors from; keys prefixed ``set2/``: a PoolFormer (pooling token
mixer, ``GroupNorm(1, C)``), a MobileViT-like hybrid (inverted residuals, a MobileViT block
with ``nn.MultiheadAttention``), a Conformer-like speech encoder (``Conv2d`` subsampling,
SDPA, GLU and depthwise ``Conv1d``), a T5-like encoder-decoder (hand-written RMSNorm, cross
attention, an additive causal mask), a TCN (causal dilated ``Conv1d`` via ``F.pad``), a
RegNetX-like CNN (group width 16), a DenseNet-like CNN (``torch.cat`` growth), a gMLP
(spatial gating on transposed tokens), an LSTM word language model (10,000-word vocabulary)
and an Elman RNN (``nn.RNN``, tanh)::

    PYTHONPATH=src python benchmarks/platform/heldout.py --set second \\
        --platform data/platforms/cpu-epyc-1t.json --platform-2t data/platforms/cpu-epyc-2t.json \\
        --out benchmarks/platform/results/heldout_set2

Conditions: forward at B = 1 and 8, at 1 thread (``--platform``) and at 2 threads
(``--platform-2t``, a platform calibrated with ``--threads 2``); a training step (one
forward + one backward, as ``groupconv.measure`` defines ``forward_backward``) at 1 thread.

Measured with plain torch timing: ``torch.set_num_threads(T)``, eval mode and ``torch.no_grad()``
(forward) or train mode with a backward from a gradient of ones (training step), a warm-up
call, then the best of ``--calls`` calls; ``--rounds`` rounds with the networks in a new
shuffled order; the best over the rounds is kept. Wall time and this thread's CPU time are
recorded (the summary uses wall time, what a user sees; at 2 threads only wall time means
anything). Every measurement is appended to ``measured.csv`` at once: a stopped run resumes.

Writes ``predicted.csv``, ``measured.csv``, and for each clock (wall, thread) ``results_<clock>.csv``,
``summary_<clock>.json`` and ``summary_<clock>.md`` (MAPE and the share of points within
+/-10 % and +/-15 % per family, per condition and per dominant kernel, the load averages)
and one predicted-vs-measured figure per family (``figures_<clock>/<family>.png``). ``--quick``: B = 1 only, one round, the smaller half of the
chosen set's networks, forward at 1 thread only (a smoke run, minutes).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import random
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

MEASURED_COLUMNS = ("key", "batch", "threads", "mode", "round", "time_s", "thread_time_s", "calls", "timestamp",
                    "loadavg_1min")
CONDITIONS = (("forward", 1), ("forward", 2), ("forward_backward", 1))
SETS = ("first", "second", "all")  # --set: which held-out networks
SECOND_PREFIX = "set2/"  # the second set's keys, so that its rows never collide with the first set's


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--platform", required=True, help="platform JSON calibrated at 1 thread")
    p.add_argument("--platform-2t", default=None, help="platform JSON calibrated with --threads 2 (else: no 2-thread points)")
    p.add_argument("--out", default=str(ROOT / "benchmarks/platform/results/heldout"))
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--image-size", type=int, default=112)
    p.add_argument("--set", dest="which", choices=SETS, default="first",
                   help="which held-out networks: the 24 of issue 15 (first, default), the 10 written on "
                        "2026-12-06 (second, keys prefixed set2/), or both (all)")
    p.add_argument("--only", nargs="*", default=None, help="network keys to keep (prefix match)")
    p.add_argument("--conditions", nargs="*", default=None, help="e.g. forward:1 forward:2 forward_backward:1")
    p.add_argument("--quick", action="store_true", help="a smoke run: B = 1, one round, small networks, forward 1 thread")
    p.add_argument("--no-measure", action="store_true", help="predict and summarise only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clock", choices=("wall", "thread"), default="wall",
                   help="what the summary compares at 1 thread: wall time (default, what a user sees) or this "
                        "thread's CPU time (robust on a shared machine); 2-thread points always use wall time")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- networks
def _vit(image: int):
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.h = h
            self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(self.n1(x)).reshape(b, t, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
            x = x + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d))
            return x + self.mlp(self.n2(x))

    class ViT(nn.Module):  # DeiT-tiny-like: patch 16 -> at 112 px 49 tokens + cls
        def __init__(self, d=192, depth=6, heads=3, patch=8):
            super().__init__()
            self.embed = nn.Conv2d(3, d, patch, patch)
            n = (image // patch) ** 2
            self.cls = nn.Parameter(torch.zeros(1, 1, d))
            self.pos = nn.Parameter(torch.zeros(1, n + 1, d))
            self.blocks = nn.Sequential(*[Block(d, heads) for _ in range(depth)])
            self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, 1000)

        def forward(self, x):
            x = self.embed(x).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
            return self.head(self.norm(self.blocks(x))[:, 0])

    return ViT()


def _swin(image: int):
    import torch
    import torch.nn.functional as F
    from torch import nn

    class WindowBlock(nn.Module):
        def __init__(self, d, h, window, shift):
            super().__init__()
            self.h, self.w, self.shift = h, window, shift
            self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x):  # x: (B, H, W, C)
            b, hh, ww, c = x.shape
            y = self.n1(x)
            if self.shift:
                y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
            w = self.w
            y = y.view(b, hh // w, w, ww // w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, c)
            n = y.shape[0]
            q, k, v = self.qkv(y).reshape(n, w * w, 3, self.h, c // self.h).permute(2, 0, 3, 1, 4)
            y = self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, w * w, c))
            y = y.view(b, hh // w, ww // w, w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hh, ww, c)
            if self.shift:
                y = torch.roll(y, (self.shift, self.shift), (1, 2))
            x = x + y
            return x + self.mlp(self.n2(x))

    class Merge(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.norm, self.red = nn.LayerNorm(4 * d), nn.Linear(4 * d, 2 * d, bias=False)

        def forward(self, x):
            x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
            return self.red(self.norm(x))

    class Swin(nn.Module):
        def __init__(self, d=64):
            super().__init__()
            self.embed = nn.Conv2d(3, d, 4, 4)
            self.s1 = nn.Sequential(WindowBlock(d, 2, 7, 0), WindowBlock(d, 2, 7, 3))
            self.m1 = Merge(d)
            self.s2 = nn.Sequential(WindowBlock(2 * d, 4, 7, 0), WindowBlock(2 * d, 4, 7, 3))
            self.norm, self.head = nn.LayerNorm(2 * d), nn.Linear(2 * d, 1000)

        def forward(self, x):
            x = self.embed(x).permute(0, 2, 3, 1)
            x = self.s2(self.m1(self.s1(x)))
            return self.head(self.norm(x).mean((1, 2)))

    return Swin()


def _mixer(image: int):
    from torch import nn

    class MixerBlock(nn.Module):
        def __init__(self, tokens, d):
            super().__init__()
            self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.tok = nn.Sequential(nn.Linear(tokens, 2 * tokens), nn.GELU(), nn.Linear(2 * tokens, tokens))
            self.ch = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x):
            x = x + self.tok(self.n1(x).transpose(1, 2)).transpose(1, 2)
            return x + self.ch(self.n2(x))

    class Mixer(nn.Module):
        def __init__(self, d=128, depth=6, patch=8):
            super().__init__()
            t = (image // patch) ** 2
            self.embed = nn.Conv2d(3, d, patch, patch)
            self.blocks = nn.Sequential(*[MixerBlock(t, d) for _ in range(depth)])
            self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, 1000)

        def forward(self, x):
            x = self.embed(x).flatten(2).transpose(1, 2)
            return self.head(self.norm(self.blocks(x)).mean(1))

    return Mixer()


VOCAB, CONTEXT = 8000, 128


def _gpt():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.h = h
            self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(self.n1(x)).split(d, dim=2)
            q, k, v = (z.view(b, t, self.h, d // self.h).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).contiguous().view(b, t, d)
            x = x + self.proj(y)
            return x + self.fc2(F.gelu(self.fc1(self.n2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self, d=192, depth=4, heads=6):
            super().__init__()
            self.tok, self.pos = nn.Embedding(VOCAB, d), nn.Embedding(CONTEXT, d)
            self.blocks = nn.Sequential(*[Block(d, heads) for _ in range(depth)])
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, VOCAB, bias=False)

        def forward(self, ids):
            pos = torch.arange(ids.shape[1], device=ids.device)
            return self.head(self.norm(self.blocks(self.tok(ids) + self.pos(pos))))

    return GPT()


def _bert():
    import torch
    from torch import nn

    class BERT(nn.Module):
        def __init__(self, d=256, depth=4, heads=4):
            super().__init__()
            self.tok, self.pos = nn.Embedding(VOCAB, d), nn.Embedding(CONTEXT, d)
            self.norm = nn.LayerNorm(d)
            layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.1, activation="gelu", batch_first=True)
            self.body = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
            self.pool = nn.Linear(d, d)

        def forward(self, ids):
            pos = torch.arange(ids.shape[1], device=ids.device)
            x = self.body(self.norm(self.tok(ids) + self.pos(pos)))
            return torch.tanh(self.pool(x[:, 0]))

    return BERT()


SAMPLES = 16000


def _audio():
    from torch import nn

    def block(cin, cout, k, s=1, d=1, g=1):
        return [nn.Conv1d(cin, cout, k, s, d * (k // 2), dilation=d, groups=g, bias=False), nn.BatchNorm1d(cout),
                nn.GELU()]

    return nn.Sequential(
        *block(1, 32, 80, s=16), *block(32, 64, 3, s=2), *block(64, 64, 3, d=2, g=8), *block(64, 128, 3, s=2),
        *block(128, 128, 3, d=4, g=16), *block(128, 128, 9, g=128), *block(128, 256, 1), *block(256, 256, 3, s=2, g=4),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(256, 35),
    )


def _unet(image: int):
    import torch
    from torch import nn

    def double(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class UNet(nn.Module):
        def __init__(self, c=16):
            super().__init__()
            self.d1, self.d2, self.d3, self.mid = double(3, c), double(c, 2 * c), double(2 * c, 4 * c), double(4 * c, 8 * c)
            self.pool = nn.MaxPool2d(2)
            self.u3, self.c3 = nn.ConvTranspose2d(8 * c, 4 * c, 2, 2), double(8 * c, 4 * c)
            self.u2, self.c2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, 2), double(4 * c, 2 * c)
            self.u1, self.c1 = nn.ConvTranspose2d(2 * c, c, 2, 2), double(2 * c, c)
            self.out = nn.Conv2d(c, 2, 1)

        def forward(self, x):
            a = self.d1(x)
            b = self.d2(self.pool(a))
            c = self.d3(self.pool(b))
            m = self.mid(self.pool(c))
            y = self.c3(torch.cat([self.u3(m), c], 1))
            y = self.c2(torch.cat([self.u2(y), b], 1))
            y = self.c1(torch.cat([self.u1(y), a], 1))
            return self.out(y)

    return UNet()


FRAMES, FEATURES = 100, 80


def _lstm():
    from torch import nn

    class LSTMModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(FEATURES, 192, 2, batch_first=True, bidirectional=True)
            self.head = nn.Linear(384, 30)

        def forward(self, x):
            return self.head(self.rnn(x)[0])

    return LSTMModel()


def _gru():
    from torch import nn

    class GRUModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(FEATURES, 128, 2, batch_first=True)
            self.head = nn.Linear(128, 30)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    return GRUModel()


def _convnext(image: int):
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.dw = nn.Conv2d(d, d, 7, 1, 3, groups=d)
            self.norm = nn.LayerNorm(d)
            self.fc1, self.act, self.fc2 = nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d)
            self.gamma = nn.Parameter(torch.full((d,), 1e-6))

        def forward(self, x):
            y = self.dw(x).permute(0, 2, 3, 1)
            y = self.gamma * self.fc2(self.act(self.fc1(self.norm(y))))
            return x + y.permute(0, 3, 1, 2)

    class Down(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.norm, self.conv = nn.LayerNorm(cin), nn.Conv2d(cin, cout, 2, 2)

        def forward(self, x):
            return self.conv(self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))

    class ConvNeXt(nn.Module):
        def __init__(self, dims=(40, 80, 160, 320), depths=(2, 2, 4, 2)):
            super().__init__()
            layers = [nn.Conv2d(3, dims[0], 4, 4)]
            for i, (d, n) in enumerate(zip(dims, depths)):
                if i:
                    layers.append(Down(dims[i - 1], d))
                layers += [Block(d) for _ in range(n)]
            self.body = nn.Sequential(*layers)
            self.norm, self.head = nn.LayerNorm(dims[-1]), nn.Linear(dims[-1], 1000)

        def forward(self, x):
            return self.head(self.norm(self.body(x).mean((2, 3))))

    return ConvNeXt()


# ----------------------------------------------------------------------------- the second set
# Written on 2026-12-06, before that session's model changes, as a second check that the
# platform's models were not fitted to the first set. Plain torch.nn, small sizes, shapes and
# layouts unlike both the first set and ``groupconv.platform.modules.synthetic_network``.
MFCC = 40  # features per frame of the small speech/sequence inputs (the TCN's channels, the RNN's features)
TCN_STEPS = 1000
LM_VOCAB, LM_CONTEXT = 10000, 64
T5_DECODER_TOKENS = 32


def _poolformer(image: int):
    from torch import nn

    class PoolBlock(nn.Module):  # MetaFormer block: pooling token mixer, 1x1-conv MLP, GroupNorm(1, C)
        def __init__(self, d):
            super().__init__()
            self.n1, self.n2 = nn.GroupNorm(1, d), nn.GroupNorm(1, d)
            self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
            self.mlp = nn.Sequential(nn.Conv2d(d, 4 * d, 1), nn.GELU(), nn.Conv2d(4 * d, d, 1))

        def forward(self, x):
            y = self.n1(x)
            x = x + (self.pool(y) - y)
            return x + self.mlp(self.n2(x))

    class PoolFormer(nn.Module):  # PoolFormer-S12-like (depths 2, 2, 6, 2) at 3/16 of its widths, shorter stage 3
        def __init__(self, dims=(24, 48, 96, 192), depths=(2, 2, 4, 2)):
            super().__init__()
            layers = [nn.Conv2d(3, dims[0], 7, 4, 2)]
            for i, (d, n) in enumerate(zip(dims, depths)):
                if i:
                    layers.append(nn.Conv2d(dims[i - 1], d, 3, 2, 1))
                layers += [PoolBlock(d) for _ in range(n)]
            self.body = nn.Sequential(*layers)
            self.norm, self.head = nn.GroupNorm(1, dims[-1]), nn.Linear(dims[-1], 1000)

        def forward(self, x):
            return self.head(self.norm(self.body(x)).mean((2, 3)))

    return PoolFormer()


def _mobilevit(image: int):
    import torch
    from torch import nn

    def cbs(cin, cout, k=3, s=1, g=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(cout)]
        return layers + [nn.SiLU()] if act else layers

    class InvertedResidual(nn.Module):  # MobileNet-V2 block (SiLU, as MobileViT has it)
        def __init__(self, cin, cout, s, e=2):  # MobileViT-XXS expands by 2
            super().__init__()
            mid = cin * e
            self.body = nn.Sequential(*cbs(cin, mid, 1), *cbs(mid, mid, 3, s, g=mid), *cbs(mid, cout, 1, act=False))
            self.res = s == 1 and cin == cout

        def forward(self, x):
            return x + self.body(x) if self.res else self.body(x)

    class TransformerLayer(nn.Module):  # pre-norm, nn.MultiheadAttention, SiLU MLP
        def __init__(self, d, heads):
            super().__init__()
            self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.att = nn.MultiheadAttention(d, heads, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.SiLU(), nn.Linear(2 * d, d))

        def forward(self, x):
            y = self.n1(x)
            x = x + self.att(y, y, y, need_weights=False)[0]
            return x + self.mlp(self.n2(x))

    class MobileViTBlock(nn.Module):  # local conv, unfold to 2x2 patches, transformer, fold, fuse
        def __init__(self, c, d, depth=2, heads=4, patch=2):
            super().__init__()
            self.p = patch
            self.local = nn.Sequential(*cbs(c, c, 3), nn.Conv2d(c, d, 1, bias=False))
            self.transformer = nn.Sequential(*[TransformerLayer(d, heads) for _ in range(depth)], nn.LayerNorm(d))
            self.proj = nn.Sequential(*cbs(d, c, 1))
            self.fuse = nn.Sequential(*cbs(2 * c, c, 3))

        def forward(self, x):
            b, _, h, w = x.shape
            p = self.p
            y = self.local(x)
            d = y.shape[1]
            # (B, d, H, W) -> (B * p * p, H/p * W/p, d): one sequence per pixel position within a patch
            y = y.reshape(b, d, h // p, p, w // p, p).permute(0, 3, 5, 2, 4, 1).reshape(b * p * p, -1, d)
            y = self.transformer(y)
            y = y.reshape(b, p, p, h // p, w // p, d).permute(0, 5, 3, 1, 4, 2).reshape(b, d, h, w)
            return self.fuse(torch.cat([x, self.proj(y)], 1))

    class MobileViT(nn.Module):  # MobileViT-XXS-like; at 112 px one MobileViT block, at 14 x 14
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                *cbs(3, 16, 3, 2), InvertedResidual(16, 16, 1),
                InvertedResidual(16, 24, 2), InvertedResidual(24, 24, 1),
                InvertedResidual(24, 48, 2), MobileViTBlock(48, 64),
                InvertedResidual(48, 64, 2), InvertedResidual(64, 64, 1),  # 7 x 7: too small for 2 x 2 patches
                *cbs(64, 256, 1))
            self.head = nn.Linear(256, 1000)

        def forward(self, x):
            return self.head(self.body(x).mean((2, 3)))

    return MobileViT()


def _conformer():
    import torch.nn.functional as F
    from torch import nn

    class FeedForward(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.body = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.SiLU(), nn.Dropout(0.1),
                                      nn.Linear(4 * d, d), nn.Dropout(0.1))

        def forward(self, x):
            return self.body(x)

    class ConvModule(nn.Module):  # pointwise conv + GLU, depthwise conv, BatchNorm, SiLU, pointwise conv
        def __init__(self, d, k=15):
            super().__init__()
            self.norm = nn.LayerNorm(d)
            self.pw1, self.glu = nn.Conv1d(d, 2 * d, 1), nn.GLU(dim=1)
            self.dw = nn.Conv1d(d, d, k, padding=k // 2, groups=d)
            self.bn, self.act = nn.BatchNorm1d(d), nn.SiLU()
            self.pw2, self.drop = nn.Conv1d(d, d, 1), nn.Dropout(0.1)

        def forward(self, x):  # (B, T, d)
            y = self.glu(self.pw1(self.norm(x).transpose(1, 2)))
            y = self.pw2(self.act(self.bn(self.dw(y))))
            return self.drop(y.transpose(1, 2))

    class ConformerBlock(nn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.h = heads
            self.ff1, self.ff2 = FeedForward(d), FeedForward(d)
            self.n_att, self.qkv, self.out = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.conv = ConvModule(d)
            self.norm = nn.LayerNorm(d)

        def forward(self, x):
            b, t, d = x.shape
            x = x + 0.5 * self.ff1(x)
            q, k, v = self.qkv(self.n_att(x)).chunk(3, dim=-1)
            q, k, v = (z.reshape(b, t, self.h, d // self.h).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=0.1 if self.training else 0.0)
            x = x + self.out(y.transpose(1, 2).reshape(b, t, d))
            x = x + self.conv(x)
            x = x + 0.5 * self.ff2(x)
            return self.norm(x)

    class Conformer(nn.Module):  # on log-mel frames (B, T, F): 4x Conv2d subsampling, 3 blocks, CTC-style head
        def __init__(self, d=128, heads=4, c=64, classes=32):
            super().__init__()
            self.sub = nn.Sequential(nn.Conv2d(1, c, 3, 2), nn.ReLU(), nn.Conv2d(c, c, 3, 2), nn.ReLU())
            f = ((FEATURES - 1) // 2 - 1) // 2
            self.proj = nn.Linear(c * f, d)
            self.blocks = nn.Sequential(*[ConformerBlock(d, heads) for _ in range(3)])
            self.head = nn.Linear(d, classes)

        def forward(self, x):
            y = self.sub(x.unsqueeze(1))  # (B, c, T/4, F/4)
            b, c, t, f = y.shape
            y = self.proj(y.permute(0, 2, 1, 3).reshape(b, t, c * f))
            return self.head(self.blocks(y))

    return Conformer()


def _t5():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class RMSNorm(nn.Module):  # T5's layer norm: no mean, no bias
        def __init__(self, d, eps=1e-6):
            super().__init__()
            self.eps, self.weight = eps, nn.Parameter(torch.ones(d))

        def forward(self, x):
            return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    class Attention(nn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.h = heads
            self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))

        def forward(self, x, memory, mask=None):
            b, t, d = x.shape
            s = memory.shape[1]
            q = self.q(x).view(b, t, self.h, d // self.h).transpose(1, 2)
            k = self.k(memory).view(b, s, self.h, d // self.h).transpose(1, 2)
            v = self.v(memory).view(b, s, self.h, d // self.h).transpose(1, 2)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            return self.o(y.transpose(1, 2).reshape(b, t, d))

    class GatedFF(nn.Module):  # T5 v1.1: gated GELU
        def __init__(self, d, ff):
            super().__init__()
            self.wi0, self.wi1 = nn.Linear(d, ff, bias=False), nn.Linear(d, ff, bias=False)
            self.wo = nn.Linear(ff, d, bias=False)
            self.drop = nn.Dropout(0.1)

        def forward(self, x):
            return self.wo(self.drop(F.gelu(self.wi0(x), approximate="tanh") * self.wi1(x)))

    class EncoderLayer(nn.Module):
        def __init__(self, d, heads, ff):
            super().__init__()
            self.n1, self.att, self.n2, self.ff = RMSNorm(d), Attention(d, heads), RMSNorm(d), GatedFF(d, ff)

        def forward(self, x):
            y = self.n1(x)
            x = x + self.att(y, y)
            return x + self.ff(self.n2(x))

    class DecoderLayer(nn.Module):
        def __init__(self, d, heads, ff):
            super().__init__()
            self.n1, self.self_att = RMSNorm(d), Attention(d, heads)
            self.n2, self.cross_att = RMSNorm(d), Attention(d, heads)
            self.n3, self.ff = RMSNorm(d), GatedFF(d, ff)

        def forward(self, x, memory, mask):
            y = self.n1(x)
            x = x + self.self_att(y, y, mask)
            x = x + self.cross_att(self.n2(x), memory)
            return x + self.ff(self.n3(x))

    class T5(nn.Module):  # a small encoder-decoder; the decoder reads the first 32 tokens
        def __init__(self, d=128, heads=4, ff=256, depth=2):  # T5 v1.1's ff = 2 d
            super().__init__()
            self.emb = nn.Embedding(VOCAB, d)
            self.encoder = nn.ModuleList([EncoderLayer(d, heads, ff) for _ in range(depth)])
            self.decoder = nn.ModuleList([DecoderLayer(d, heads, ff) for _ in range(depth)])
            self.enc_norm, self.dec_norm = RMSNorm(d), RMSNorm(d)
            self.lm_head = nn.Linear(d, VOCAB, bias=False)
            self.lm_head.weight = self.emb.weight  # tied, as in T5

        def forward(self, ids):
            memory = self.emb(ids)
            for layer in self.encoder:
                memory = layer(memory)
            memory = self.enc_norm(memory)
            t = T5_DECODER_TOKENS
            mask = torch.full((t, t), float("-inf"), device=ids.device).triu(1)  # causal, additive
            x = self.emb(ids[:, :t])
            for layer in self.decoder:
                x = layer(x, memory, mask)
            return self.lm_head(self.dec_norm(x) * x.shape[-1] ** -0.5)

    return T5()


def _tcn():
    import torch.nn.functional as F
    from torch import nn

    class CausalConv(nn.Conv1d):
        def forward(self, x):  # pad on the left only: no step sees the future
            return super().forward(F.pad(x, ((self.kernel_size[0] - 1) * self.dilation[0], 0)))

    class TemporalBlock(nn.Module):
        def __init__(self, cin, cout, dilation, k=3):
            super().__init__()
            self.body = nn.Sequential(CausalConv(cin, cout, k, dilation=dilation), nn.ReLU(), nn.Dropout(0.2),
                                      CausalConv(cout, cout, k, dilation=dilation), nn.ReLU(), nn.Dropout(0.2))
            self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.body(x) + self.skip(x))

    class TCN(nn.Module):  # Bai et al. 2018: 6 residual blocks, dilations 1..32, receptive field 253 steps
        def __init__(self, c=48, classes=10):
            super().__init__()
            self.body = nn.Sequential(*[TemporalBlock(MFCC if i == 0 else c, c, 2 ** i) for i in range(6)])
            self.head = nn.Linear(c, classes)

        def forward(self, x):
            return self.head(self.body(x)[:, :, -1])

    return TCN()


def _regnet(image: int):
    from torch import nn

    def cbr(cin, cout, k=1, s=1, g=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(cout)]
        return layers + [nn.ReLU()] if act else layers

    class XBlock(nn.Module):  # RegNetX bottleneck: 1x1, grouped 3x3 (group width 16), 1x1; ratio 1
        def __init__(self, cin, cout, s, group_width=16):
            super().__init__()
            self.body = nn.Sequential(*cbr(cin, cout), *cbr(cout, cout, 3, s, cout // group_width),
                                      *cbr(cout, cout, act=False))
            self.skip = nn.Sequential(*cbr(cin, cout, 1, s, act=False)) if s != 1 or cin != cout else nn.Identity()
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.body(x) + self.skip(x))

    class RegNetX(nn.Module):  # RegNetX-400MF widths, depths (1, 2, 7, 12) shortened to (1, 2, 4, 5)
        def __init__(self, widths=(32, 64, 160, 384), depths=(1, 2, 4, 5)):
            super().__init__()
            layers, c = cbr(3, 32, 3, 2), 32
            for w, n in zip(widths, depths):
                for i in range(n):
                    layers.append(XBlock(c, w, 2 if i == 0 else 1))
                    c = w
            self.body = nn.Sequential(*layers)
            self.head = nn.Linear(c, 1000)

        def forward(self, x):
            return self.head(self.body(x).mean((2, 3)))

    return RegNetX()


def _densenet(image: int):
    import torch
    from torch import nn

    class DenseLayer(nn.Module):  # BN-ReLU-1x1 (4 x growth) - BN-ReLU-3x3 (growth), concatenated on
        def __init__(self, cin, growth, bottleneck=4):
            super().__init__()
            self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(),
                                      nn.Conv2d(cin, bottleneck * growth, 1, bias=False),
                                      nn.BatchNorm2d(bottleneck * growth), nn.ReLU(),
                                      nn.Conv2d(bottleneck * growth, growth, 3, 1, 1, bias=False))

        def forward(self, x):
            return torch.cat([x, self.body(x)], 1)

    def transition(cin, cout):
        return [nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False), nn.AvgPool2d(2, 2)]

    class DenseNet(nn.Module):  # DenseNet-BC-like, growth 16, blocks (4, 4, 6, 4), compression 0.5
        def __init__(self, growth=16, blocks=(4, 4, 6, 4)):
            super().__init__()
            c = 2 * growth
            layers = [nn.Conv2d(3, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
            for i, n in enumerate(blocks):
                for _ in range(n):
                    layers.append(DenseLayer(c, growth))
                    c += growth
                if i < len(blocks) - 1:
                    layers += transition(c, c // 2)
                    c //= 2
            self.body = nn.Sequential(*layers, nn.BatchNorm2d(c), nn.ReLU())
            self.head = nn.Linear(c, 1000)

        def forward(self, x):
            return self.head(self.body(x).mean((2, 3)))

    return DenseNet()


def _gmlp(image: int):
    from torch import nn

    class SpatialGatingUnit(nn.Module):  # split, LayerNorm, a Linear along the tokens, multiply
        def __init__(self, ff, tokens):
            super().__init__()
            self.norm = nn.LayerNorm(ff // 2)
            self.spatial = nn.Linear(tokens, tokens)
            nn.init.zeros_(self.spatial.weight)
            nn.init.ones_(self.spatial.bias)

        def forward(self, x):
            u, v = x.chunk(2, dim=-1)
            v = self.spatial(self.norm(v).transpose(1, 2)).transpose(1, 2)
            return u * v

    class GMLPBlock(nn.Module):
        def __init__(self, d, ff, tokens):
            super().__init__()
            self.norm = nn.LayerNorm(d)
            self.proj_in, self.act = nn.Linear(d, ff), nn.GELU()
            self.sgu = SpatialGatingUnit(ff, tokens)
            self.proj_out = nn.Linear(ff // 2, d)

        def forward(self, x):
            return x + self.proj_out(self.sgu(self.act(self.proj_in(self.norm(x)))))

    class GMLP(nn.Module):  # gMLP-Ti-like (d 128, ff 768, 30 blocks) narrowed: d 96, ff 384, 4 blocks; 14 x 14 patches
        def __init__(self, d=96, ff=384, depth=4, grid=14):
            super().__init__()
            patch = max(1, image // grid)  # 8 px at 112 px
            self.embed = nn.Conv2d(3, d, patch, patch)
            self.blocks = nn.Sequential(*[GMLPBlock(d, ff, (image // patch) ** 2) for _ in range(depth)])
            self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, 1000)

        def forward(self, x):
            x = self.embed(x).flatten(2).transpose(1, 2)
            return self.head(self.norm(self.blocks(x)).mean(1))

    return GMLP()


def _lstm_lm():
    from torch import nn

    class LSTMLanguageModel(nn.Module):  # Zaremba-style word-level LM (medium-ish), logits at every step
        def __init__(self, d=256, hidden=512):
            super().__init__()
            self.emb, self.drop = nn.Embedding(LM_VOCAB, d), nn.Dropout(0.5)
            self.rnn = nn.LSTM(d, hidden, 2, batch_first=True, dropout=0.5)
            self.decoder = nn.Linear(hidden, LM_VOCAB)

        def forward(self, ids):
            return self.decoder(self.drop(self.rnn(self.drop(self.emb(ids)))[0]))

    return LSTMLanguageModel()


def _vanilla_rnn():
    from torch import nn

    class RNNClassifier(nn.Module):  # Elman RNN (tanh), 2 layers, classify from the last step
        def __init__(self, hidden=256, classes=12):
            super().__init__()
            self.rnn = nn.RNN(MFCC, hidden, 2, nonlinearity="tanh", batch_first=True)
            self.head = nn.Linear(hidden, classes)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    return RNNClassifier()


def networks(image: int, which: str = "first"):
    """(key, family, builder, input maker) of the held-out networks of set ``which``.

    ``first``: the 24 networks of issue 15; ``second``: the 10 networks written on 2026-12-06
    (keys prefixed ``set2/``); ``all``: both.
    """
    if which not in SETS:
        raise ValueError(f"which must be one of {', '.join(SETS)}, got {which!r}")
    out = []
    if which in ("first", "all"):
        out += _first_set(image)
    if which in ("second", "all"):
        out += _second_set(image)
    return out


def _second_set(image: int):
    import torch

    img = lambda b: torch.randn(b, 3, image, image)  # noqa: E731
    return [(SECOND_PREFIX + key, family, build, make_input) for key, family, build, make_input in (
        ("poolformer", "metaformer", lambda: _poolformer(image), img),
        ("mobilevit_like", "hybrid", lambda: _mobilevit(image), img),
        ("conformer_like", "speech", _conformer, lambda b: torch.randn(b, FRAMES, FEATURES)),
        ("t5_like", "transformer enc-dec", _t5, lambda b: torch.randint(0, VOCAB, (b, CONTEXT))),
        ("tcn", "1-D conv", _tcn, lambda b: torch.randn(b, MFCC, TCN_STEPS)),
        ("regnet_like", "CNN", lambda: _regnet(image), img),
        ("densenet_like", "CNN", lambda: _densenet(image), img),
        ("gmlp_like", "mixer", lambda: _gmlp(image), img),
        ("lstm_lm", "rnn", _lstm_lm, lambda b: torch.randint(0, LM_VOCAB, (b, LM_CONTEXT))),
        ("vanilla_rnn", "rnn", _vanilla_rnn, lambda b: torch.randn(b, FRAMES, MFCC)),
    )]


def _first_set(image: int):
    import torch

    from groupconv.networks import build_module
    from groupconv.networks.zoo import ZOO, build_zoo

    img = lambda b: torch.randn(b, 3, image, image)  # noqa: E731
    ids = lambda b: torch.randint(0, VOCAB, (b, CONTEXT))  # noqa: E731
    out = []
    for arch in ("mobilenet_v1", "resnext50"):
        for variant, group in (("e2gc", 1), ("e2gc", 4), ("e2gc", 32), ("fggc", 4)):
            out.append((f"{arch}/{variant}/{group}", f"paper {arch}",
                        lambda a=arch, v=variant, g=group: build_module(a, v, g), img))
    for name in ZOO:
        out.append((f"zoo/{name}", "zoo", lambda n=name: build_zoo(n, image), img))
    out += [
        ("vit_small_deit", "transformer", lambda: _vit(image), img),
        ("swin_window", "transformer", lambda: _swin(image), img),
        ("mlp_mixer", "mixer", lambda: _mixer(image), img),
        ("gpt_decoder", "transformer", _gpt, ids),
        ("bert_encoder", "transformer", _bert, ids),
        ("audio_conv1d", "1-D conv", _audio, lambda b: torch.randn(b, 1, SAMPLES)),
        ("unet", "encoder-decoder", lambda: _unet(image), img),
        ("lstm_model", "rnn", _lstm, lambda b: torch.randn(b, FRAMES, FEATURES)),
        ("gru_model", "rnn", _gru, lambda b: torch.randn(b, FRAMES, FEATURES)),
        ("convnext_like", "convnext", lambda: _convnext(image), img),
    ]
    return out


QUICK = ("mobilenet_v1/e2gc/1", "mobilenet_v1/e2gc/4", "zoo/mobilenet_v2", "zoo/resnet18", "vit_small_deit",
         "mlp_mixer", "gpt_decoder", "bert_encoder", "audio_conv1d", "unet", "lstm_model", "gru_model",
         "swin_window", "convnext_like",
         # the smaller half of the second set
         "set2/poolformer", "set2/conformer_like", "set2/tcn", "set2/gmlp_like", "set2/vanilla_rnn")


# ----------------------------------------------------------------------------- predicting
def predict_all(platforms, nets, batches, conditions):
    import torch

    from groupconv.platform import UnmeasuredKernelWarning, predict

    rows = []
    for key, family, build, make_input in nets:
        torch.manual_seed(0)
        model = build()
        for mode, threads in conditions:
            platform = platforms.get(threads)
            if platform is None:
                continue
            for batch in batches:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UnmeasuredKernelWarning)  # named in roofline_ops
                    pred = predict(platform, model, (make_input(batch),), mode=mode, threads=threads)
                by_kernel = pred.by_class()
                top = max(by_kernel, key=by_kernel.get)
                rows.append({"key": key, "family": family, "batch": batch, "threads": threads, "mode": mode,
                             "predicted_s": pred.time_s, "top_kernel": top,
                             "top_share": by_kernel[top] / pred.time_s,
                             "roofline_ops": sum(pred.roofline_ops.values()),
                             "unmeasured": " ".join(pred.unmeasured)})
    return rows


# ----------------------------------------------------------------------------- measuring
def _done(path: Path, clock: str = "wall"):
    out = {}
    if path.exists():
        with path.open() as f:
            for row in csv.DictReader(f):
                threads = int(row["threads"])
                column = "thread_time_s" if clock == "thread" and threads == 1 else "time_s"
                out[(row["key"], int(row["batch"]), threads, row["mode"], int(row["round"]))] = float(row[column])
    return out


def _time_once(model, x, mode, calls):
    import torch

    best, best_cpu = math.inf, math.inf
    if mode == "forward":
        model.eval()
        with torch.no_grad():
            model(x)
            for _ in range(calls):
                t0, c0 = time.perf_counter(), time.thread_time()
                model(x)
                best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.thread_time() - c0)
        return best, best_cpu
    model.train()

    def step():
        for p in model.parameters():
            p.grad = None
        y = model(x)
        y.backward(torch.ones_like(y))

    step()
    for _ in range(calls):
        t0, c0 = time.perf_counter(), time.thread_time()
        step()
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.thread_time() - c0)
    return best, best_cpu


def measure_all(nets, batches, conditions, rounds, calls, seed, path: Path):
    import torch

    done = _done(path)
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(MEASURED_COLUMNS)
            f.flush()
        previous = torch.get_num_threads()
        try:
            for r in range(rounds):
                rng = random.Random(seed * 1000 + r)
                order = list(nets)
                rng.shuffle(order)
                for key, _family, build, make_input in order:
                    todo = [(m, t, b) for m, t in conditions for b in batches if (key, b, t, m, r) not in done]
                    if not todo:
                        continue
                    rng.shuffle(todo)
                    torch.manual_seed(seed)
                    model = build()
                    for mode, threads, batch in todo:
                        torch.set_num_threads(threads)
                        x = make_input(batch)
                        wall, cpu = _time_once(model, x, mode, calls)
                        done[(key, batch, threads, mode, r)] = wall / batch
                        writer.writerow([key, batch, threads, mode, r, f"{wall / batch:.9g}", f"{cpu / batch:.9g}", calls,
                                         dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                         f"{os.getloadavg()[0]:.2f}"])
                        f.flush()
        finally:
            torch.set_num_threads(previous)
    return done


# ----------------------------------------------------------------------------- summarising
def _stats(errors):
    import numpy as np

    e = np.abs(np.asarray(errors, dtype=float))
    if not len(e):
        return {"n": 0}
    return {"n": int(len(e)), "mape": float(e.mean()), "within_10": float((e <= 0.10).mean()),
            "within_15": float((e <= 0.15).mean()), "max": float(e.max())}


def summarise(pred_rows, done):
    best: dict[tuple, float] = {}
    for (key, b, t, m, _r), v in done.items():
        best[(key, b, t, m)] = min(v, best.get((key, b, t, m), math.inf))
    rows = []
    for p in pred_rows:
        k = (p["key"], p["batch"], p["threads"], p["mode"])
        if k not in best:
            continue
        rows.append(dict(p, measured_s=best[k], error=p["predicted_s"] / best[k] - 1.0))
    out = {"conditions": {}, "families": {}, "kernels": {}}
    for mode, threads in CONDITIONS:
        sel = [r for r in rows if r["mode"] == mode and r["threads"] == threads]
        if not sel:
            continue
        cond = f"{mode}@{threads}t"
        out["conditions"][cond] = _stats([r["error"] for r in sel])
        out["families"][cond] = {f: _stats([r["error"] for r in sel if r["family"] == f])
                                 for f in sorted({r["family"] for r in sel})}
        out["kernels"][cond] = {k: _stats([r["error"] for r in sel if r["top_kernel"] == k])
                                for k in sorted({r["top_kernel"] for r in sel})}
    return rows, out


def write_markdown(path: Path, summary, meta, rows):
    lines = [f"# Held-out verification ({meta['created']})", "",
             f"platform (1 thread): `{meta['platform']}`; 2 threads: `{meta['platform_2t']}`; image {meta['image_size']} px; "
             f"{meta['rounds']} round(s) x best of {meta['calls']}; clock {meta['clock']} (1 thread); "
             f"1-min load average (2 cores) during the measurements {meta.get('load_during_measurements')}", ""]
    for cond, s in summary["conditions"].items():
        lines += [f"## {cond}: MAPE {100 * s['mape']:.1f} %, within 10 % {100 * s['within_10']:.0f} %, "
                  f"within 15 % {100 * s['within_15']:.0f} % ({s['n']} points)", "",
                  "| family | n | MAPE | within 10 % | within 15 % | worst |", "| --- | --- | --- | --- | --- | --- |"]
        for fam, f in summary["families"][cond].items():
            lines.append(f"| {fam} | {f['n']} | {100 * f['mape']:.1f} % | {100 * f['within_10']:.0f} % | "
                         f"{100 * f['within_15']:.0f} % | {100 * f['max']:.0f} % |")
        lines += ["", "| dominant kernel (predicted) | n | MAPE | within 15 % |", "| --- | --- | --- | --- |"]
        for k, f in summary["kernels"][cond].items():
            lines.append(f"| {k} | {f['n']} | {100 * f['mape']:.1f} % | {100 * f['within_15']:.0f} % |")
        lines.append("")
    lines += ["## Every point", "", "| network | B | threads | mode | predicted ms | measured ms | error |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in sorted(rows, key=lambda r: (r["mode"], r["threads"], r["family"], r["key"], r["batch"])):
        lines.append(f"| {r['key']} | {r['batch']} | {r['threads']} | {r['mode']} | {1e3 * r['predicted_s']:.3f} | "
                     f"{1e3 * r['measured_s']:.3f} | {100 * r['error']:+.1f} % |")
    path.write_text("\n".join(lines) + "\n")


def figures(rows, out_dir: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    marks = {("forward", 1): "o", ("forward", 2): "s", ("forward_backward", 1): "^"}
    for fam in sorted({r["family"] for r in rows}):
        sel = [r for r in rows if r["family"] == fam]
        fig, ax = plt.subplots(figsize=(4.2, 4.0))
        for (mode, threads), m in marks.items():
            pts = [r for r in sel if r["mode"] == mode and r["threads"] == threads]
            if pts:
                ax.scatter([1e3 * r["measured_s"] for r in pts], [1e3 * r["predicted_s"] for r in pts], marker=m,
                           label=f"{mode} {threads}t", alpha=0.8)
        lo = min(min(r["measured_s"], r["predicted_s"]) for r in sel) * 1e3 / 1.3
        hi = max(max(r["measured_s"], r["predicted_s"]) for r in sel) * 1e3 * 1.3
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.fill_between([lo, hi], [lo / 1.15, hi / 1.15], [lo * 1.15, hi * 1.15], color="0.9", zorder=0)
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel="measured ms / frame",
               ylabel="predicted ms / frame", title=fam)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / f"{fam.replace(' ', '_').replace('/', '-')}.png", dpi=110, metadata={"Software": None})
        plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from groupconv.platform import Platform

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    batches = [1] if args.quick else args.batches
    rounds = 1 if args.quick else args.rounds
    conditions = [("forward", 1)] if args.quick else list(CONDITIONS)
    if args.conditions:
        conditions = [(c.split(":")[0], int(c.split(":")[1])) for c in args.conditions]
    platforms = {1: Platform.load(args.platform)}
    if args.platform_2t:
        platforms[2] = Platform.load(args.platform_2t)
    conditions = [(m, t) for m, t in conditions if t in platforms]
    nets = networks(args.image_size, args.which)
    if args.quick:
        nets = [n for n in nets if n[0] in QUICK]
    if args.only:
        nets = [n for n in nets if any(n[0].startswith(o) for o in args.only)]
    meta = {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "platform": args.platform,
            "platform_2t": args.platform_2t, "image_size": args.image_size, "rounds": rounds, "calls": args.calls,
            "batches": batches, "conditions": [f"{m}@{t}t" for m, t in conditions], "torch": torch.__version__,
            "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()), "quick": args.quick, "set": args.which}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred_rows = predict_all(platforms, nets, batches, conditions)
    with (out / "predicted.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(pred_rows[0]))
        w.writeheader()
        w.writerows(pred_rows)
    if not args.no_measure:
        measure_all(nets, batches, conditions, rounds, args.calls, args.seed, out / "measured.csv")
    meta["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if (out / "measured.csv").exists():
        with (out / "measured.csv").open() as f:
            loads = sorted(float(r["loadavg_1min"]) for r in csv.DictReader(f))
        if loads:
            meta["load_during_measurements"] = {"min": loads[0], "median": loads[len(loads) // 2], "max": loads[-1]}
    for clock in ("wall", "thread"):  # both summaries; --clock picks the one printed
        done = _done(out / "measured.csv", clock)
        meta["clock"] = clock
        rows, summary = summarise(pred_rows, done)
        if rows:
            with (out / f"results_{clock}.csv").open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
            figures(rows, out / f"figures_{clock}")
        (out / f"summary_{clock}.json").write_text(json.dumps({"metadata": meta, **summary}, indent=2) + "\n")
        write_markdown(out / f"summary_{clock}.md", summary, meta, rows)
        if clock != args.clock:
            continue
        for cond, s in summary["conditions"].items():
            print(f"{cond}: MAPE {100 * s['mape']:.1f} %, within 10 % {100 * s['within_10']:.0f} %, "
                  f"within 15 % {100 * s['within_15']:.0f} % ({s['n']} points)")
            for fam, f in summary["families"][cond].items():
                print(f"    {fam:<22} n={f['n']:<3} MAPE {100 * f['mape']:5.1f} %  within 15 % {100 * f['within_15']:3.0f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
