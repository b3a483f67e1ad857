"""The catalogue's networks as real ``torch.nn.Module`` s.

:func:`build_module` returns MobileNet-V1 or ResNeXt-50 (32x4d) with E2GC or FgGC
modules, for inputs of shape (B, 3, 224, 224). Its conv and linear submodules are, in
execution order, exactly the layers of :func:`~groupconv.networks.build_network` (same
names, shapes and groups); every conv is followed by batch norm (and ReLU where the
original networks have one) and has no bias.

The ResNeXt-50 submodules are named like torchvision's ``resnext50_32x4d`` (``conv1``,
``layer1.0.conv2``, ``layer1.0.downsample.0``, ``fc`` ...), so FgGC g=32 has the same
parameter names and shapes as torchvision's model. MobileNet-V1 uses ``stem``,
``blocks.<i>.gconv`` (the 3x3 group conv: depthwise in E2GC G=1), ``blocks.<i>.pconv``
(the 1x1 conv) and ``fc``.

torch is imported when a function here is called, never when this module is imported.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING

from .. import _validate as v
from .catalogue import (
    ARCHITECTURES,
    IMAGE_SIZE,
    MOBILENET_V1_MODULES,
    MOBILENET_V1_STEM_CHANNELS,
    NUM_CLASSES,
    RESNEXT50_STAGES,
    RESNEXT50_STEM_CHANNELS,
    VARIANTS,
    layer_groups,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["RESNEXT101_32X8D_STAGES", "build_module", "input_shape", "resnext101_32x8d"]


def input_shape(batch: int = 1) -> tuple[int, int, int, int]:
    """The input shape every catalogue module expects: (batch, 3, 224, 224)."""
    return (v.positive_int("batch", batch), 3, IMAGE_SIZE, IMAGE_SIZE)


def build_module(arch: str, variant: str, group: int, *, device=None, groups=None) -> torch.nn.Module:
    """MobileNet-V1 or ResNeXt-50 (32x4d) with E2GC or FgGC modules, as a torch module.

    Parameters
    ----------
    arch : {"mobilenet_v1", "resnext50"}
    variant : {"e2gc", "fggc"}
    group : int
        G (channels per group) for ``e2gc``; g (number of groups) for ``fggc``.
    device : str or torch.device, optional
        Where to create the parameters. ``"meta"`` builds a shape-only module (no
        memory, no initialisation), enough for :func:`~groupconv.networks.count_module`.
    groups : sequence of int, optional
        The number of groups of every grouped 3x3 conv, in network order, overriding
        the variant's (see :func:`~groupconv.networks.catalogue.layer_groups`).

    Returns
    -------
    torch.nn.Module
        In training mode, initialised like torchvision (Kaiming-normal convs, unit BN
        scale, zero BN shift, PyTorch's default linear init). Input (B, 3, 224, 224),
        output (B, 1000) logits.
    """
    v.one_of("architecture", arch, ARCHITECTURES)
    v.one_of("variant", variant, VARIANTS)
    group = v.positive_int("group", group)
    per_layer = layer_groups(arch, variant, group, groups)
    import torch

    builders = {"mobilenet_v1": _mobilenet_v1, "resnext50": _resnext50}
    with torch.device(device) if device is not None else nullcontext():
        module = builders[arch](per_layer)
        if device is None or torch.device(device).type != "meta":
            _init_like_torchvision(module)
    return module


def _init_like_torchvision(module) -> None:
    from torch import nn

    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _mobilenet_v1(groups: tuple[int, ...]):
    from torch import nn

    class ConvBNReLU(nn.Module):
        """k x k conv (padding k // 2, no bias) -> batch norm -> ReLU."""

        def __init__(self, m: int, n: int, k: int, stride: int = 1, groups: int = 1):
            super().__init__()
            self.conv = nn.Conv2d(m, n, k, stride=stride, padding=k // 2, groups=groups, bias=False)
            self.bn = nn.BatchNorm2d(n)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.relu(self.bn(self.conv(x)))

    class Module(nn.Module):
        """A 3x3 group conv followed by a 1x1 conv (an E2GC or FgGC module)."""

        def __init__(self, m: int, n: int, stride: int, groups: int):
            super().__init__()
            self.gconv = ConvBNReLU(m, m, 3, stride=stride, groups=groups)
            self.pconv = ConvBNReLU(m, n, 1)

        def forward(self, x):
            return self.pconv(self.gconv(x))

    class MobileNetV1(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = ConvBNReLU(3, MOBILENET_V1_STEM_CHANNELS, 3, stride=2)
            blocks, channels = [], MOBILENET_V1_STEM_CHANNELS
            for i, (out_channels, stride) in enumerate(MOBILENET_V1_MODULES):
                blocks.append(Module(channels, out_channels, stride, groups[i]))
                channels = out_channels
            self.blocks = nn.Sequential(*blocks)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(channels, NUM_CLASSES)

        def forward(self, x):
            x = self.pool(self.blocks(self.stem(x)))
            return self.fc(x.flatten(1))

    return MobileNetV1()


#: ResNeXt-101 (32x8d): 3, 4, 23, 3 bottlenecks of width 256, 512, 1024, 2048 (32 groups of 8
#: channels in the first stage), outputs 256 ... 2048, as torchvision's ``resnext101_32x8d``.
RESNEXT101_32X8D_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (3, 256, 256, 1),
    (4, 512, 512, 2),
    (23, 1024, 1024, 2),
    (3, 2048, 2048, 2),
)


def resnext101_32x8d(*, device=None) -> torch.nn.Module:
    """ResNeXt-101 (32x8d) as torchvision builds it (88,791,336 parameters, 16.5 G MACs at 224).

    The catalogue's ResNeXt builder with deeper stages and wider bottlenecks (FgGC g=32);
    used by the counting benchmark. ``device="meta"`` builds it without memory.
    """
    import torch

    with torch.device(device) if device is not None else nullcontext():
        module = _resnext((32,) * sum(blocks for blocks, _, _, _ in RESNEXT101_32X8D_STAGES),
                          RESNEXT101_32X8D_STAGES)
        if device is None or torch.device(device).type != "meta":
            _init_like_torchvision(module)
    return module


def _resnext50(groups: tuple[int, ...]):
    return _resnext(groups, RESNEXT50_STAGES)


def _resnext(groups: tuple[int, ...], stages):
    """A torchvision-layout ResNeXt with ``stages`` = (blocks, width, out_channels, stride) each
    and ``groups`` = the number of groups of every 3x3 conv, in network order."""
    from torch import nn

    class Bottleneck(nn.Module):
        """1x1 -> 3x3 group conv (carries the stride) -> 1x1, plus the shortcut."""

        def __init__(self, m: int, width: int, n: int, stride: int, groups: int):
            super().__init__()
            self.conv1 = nn.Conv2d(m, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, n, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(n)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or m != n:
                self.downsample = nn.Sequential(
                    nn.Conv2d(m, n, 1, stride=stride, bias=False), nn.BatchNorm2d(n)
                )

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            shortcut = x if self.downsample is None else self.downsample(x)
            return self.relu(out + shortcut)

    class ResNeXt(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, RESNEXT50_STEM_CHANNELS, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(RESNEXT50_STEM_CHANNELS)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            channels = RESNEXT50_STEM_CHANNELS
            for s, (blocks, width, out_channels, stage_stride) in enumerate(stages, start=1):
                stage = []
                for b in range(blocks):
                    g = groups[sum(stages[i][0] for i in range(s - 1)) + b]
                    stride = stage_stride if b == 0 else 1
                    stage.append(Bottleneck(channels, width, out_channels, stride, g))
                    channels = out_channels
                setattr(self, f"layer{s}", nn.Sequential(*stage))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(channels, NUM_CLASSES)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNeXt()
