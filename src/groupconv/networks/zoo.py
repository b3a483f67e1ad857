"""Standard architectures written in the package: ResNet, MobileNet-V2, ShuffleNet-V2,
ConvNeXt, EfficientNet-B0.

These are the held-out networks of the platform verification benchmark
(``benchmarks/platform``): none of them is used to calibrate a platform, so predicting
them tests whether a model learned on layers and operators transfers to networks.

Each factory builds the network exactly as torchvision does (same modules, same layer
order, same parameter count at 1000 classes; torchvision is not a dependency, the
published parameter counts are checked in ``tests/networks/test_zoo.py``), and takes

* ``image_size`` - the side of the square input the network is meant for. Every network
  here ends in a global average pool, so it runs on any size large enough for its
  downsampling; the argument is recorded on the module (``module.image_size``) so that
  :func:`zoo_input_shape` and the benchmark know what to feed it. Must be at least 32.
* ``num_classes`` - outputs of the classifier (default 1000, ImageNet-1K).
* ``device`` - where to create the parameters; ``"meta"`` builds a shape-only module,
  enough for counting.

:data:`ZOO` maps a name to its factory. Modules come back in eval mode (inference is
what the benchmark times) with torchvision's initialisation.

torch is imported when a factory is called, never when this module is imported.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Callable

from .. import _validate as v
from ..errors import GroupConvError
from .torch_models import _resnext

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "ZOO",
    "build_zoo",
    "zoo_input_shape",
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "shufflenet_v2",
    "convnext_tiny",
    "efficientnet_b0",
]

#: Smallest input side every network here accepts (five stride-2 stages: 32 -> 1).
MIN_IMAGE_SIZE = 32


def _check(image_size: int, num_classes: int) -> tuple[int, int]:
    image_size = v.positive_int("image_size", image_size)
    if image_size < MIN_IMAGE_SIZE:
        raise GroupConvError(f"image_size must be at least {MIN_IMAGE_SIZE}, got {image_size}")
    return image_size, v.positive_int("num_classes", num_classes)


def _finish(module, image_size: int, device):
    import torch

    module.image_size = image_size
    if device is None or torch.device(device).type != "meta":
        _init(module)
    return module.eval()


def _init(module) -> None:
    """torchvision's initialisation (Kaiming-normal convs, unit norms, small linears)."""
    from torch import nn

    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def _device(device):
    import torch

    return torch.device(device) if device is not None else nullcontext()


# --- ResNet (He et al. 2016) ------------------------------------------------------------------


def _resnet18(layers: tuple[int, ...], image_size: int, num_classes: int, device):
    from torch import nn

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, m, width, stride):
            super().__init__()
            n = width * self.expansion
            self.conv1 = nn.Conv2d(m, width, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.downsample = (
                nn.Sequential(nn.Conv2d(m, n, 1, stride, bias=False), nn.BatchNorm2d(n))
                if stride != 1 or m != n else None
            )

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            shortcut = x if self.downsample is None else self.downsample(x)
            return self.relu(out + shortcut)

    Block = BasicBlock

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            channels = 64
            for i, (blocks, width) in enumerate(zip(layers, (64, 128, 256, 512)), start=1):
                stage = []
                for b in range(blocks):
                    stage.append(Block(channels, width, 2 if (b == 0 and i > 1) else 1))
                    channels = width * Block.expansion
                setattr(self, f"layer{i}", nn.Sequential(*stage))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(channels, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    with _device(device):
        return _finish(ResNet(), image_size, device)


def resnet18(image_size: int = 224, num_classes: int = 1000, *, device=None) -> torch.nn.Module:
    """ResNet-18 (He et al. 2016), torchvision's layout: 11,689,512 parameters at 1000 classes."""
    image_size, num_classes = _check(image_size, num_classes)
    return _resnet18((2, 2, 2, 2), image_size, num_classes, device)


#: ResNet-50's stages as (blocks, bottleneck width, output channels, stride): the catalogue's
#: ResNeXt-50 builder with one group and half the width.
RESNET50_STAGES = ((3, 64, 256, 1), (4, 128, 512, 2), (6, 256, 1024, 2), (3, 512, 2048, 2))


def resnet50(image_size: int = 224, num_classes: int = 1000, *, device=None) -> torch.nn.Module:
    """ResNet-50 v1.5 (stride on the 3x3 conv), torchvision's layout: 25,557,032 parameters.

    Built by the catalogue's ResNeXt builder (:mod:`groupconv.networks.torch_models`) with
    one group per 3x3 conv and the bottleneck widths 64, 128, 256, 512.
    """
    image_size, num_classes = _check(image_size, num_classes)
    from torch import nn

    with _device(device):
        module = _resnext((1,) * sum(b for b, _, _, _ in RESNET50_STAGES), RESNET50_STAGES)
        if num_classes != module.fc.out_features:
            module.fc = nn.Linear(module.fc.in_features, num_classes)
        return _finish(module, image_size, device)


# --- MobileNet-V2 (Sandler et al. 2018) -----------------------------------------------------

#: (expansion t, output channels c, repeats n, first stride s), the paper's Table 2.
MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _conv_bn_act(m, n, k, stride=1, groups=1, act="relu6"):
    from torch import nn

    acts = {"relu6": lambda: nn.ReLU6(inplace=True), "relu": lambda: nn.ReLU(inplace=True),
            "silu": lambda: nn.SiLU(inplace=True), None: None}
    layers = [nn.Conv2d(m, n, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(n)]
    if acts[act] is not None:
        layers.append(acts[act]())
    return nn.Sequential(*layers)


def mobilenet_v2(image_size: int = 224, num_classes: int = 1000, *, device=None) -> torch.nn.Module:
    """MobileNet-V2 (width 1.0), torchvision's layout: 3,504,872 parameters at 1000 classes."""
    image_size, num_classes = _check(image_size, num_classes)
    from torch import nn

    class InvertedResidual(nn.Module):
        def __init__(self, m, n, stride, t):
            super().__init__()
            hidden = m * t
            layers = [] if t == 1 else [_conv_bn_act(m, hidden, 1)]
            layers += [_conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
                       nn.Conv2d(hidden, n, 1, bias=False), nn.BatchNorm2d(n)]
            self.conv = nn.Sequential(*layers)
            self.use_res = stride == 1 and m == n

        def forward(self, x):
            return x + self.conv(x) if self.use_res else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            features, channels = [_conv_bn_act(3, 32, 3, 2)], 32
            for t, c, n, s in MOBILENET_V2_SETTINGS:
                for i in range(n):
                    features.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                    channels = c
            features.append(_conv_bn_act(channels, 1280, 1))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
            return self.classifier(x.flatten(1))

    with _device(device):
        return _finish(MobileNetV2(), image_size, device)


# --- ShuffleNet-V2 (Ma et al. 2018) ------------------------------------------------------------

#: x1.0: blocks per stage and the output channels of conv1, the three stages and conv5.
SHUFFLENET_V2_REPEATS = (4, 8, 4)
SHUFFLENET_V2_CHANNELS = (24, 116, 232, 464, 1024)


def shufflenet_v2(image_size: int = 224, num_classes: int = 1000, *, device=None) -> torch.nn.Module:
    """ShuffleNet-V2 x1.0, torchvision's layout: 2,278,604 parameters at 1000 classes.

    Channel split, two branches, concatenation and a channel shuffle with 2 groups per
    block (the shuffle and the split are views and copies outside any conv module).
    """
    image_size, num_classes = _check(image_size, num_classes)
    import torch
    from torch import nn

    def shuffle(x, groups: int = 2):
        b, c, h, w = x.shape
        return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)

    class InvertedResidual(nn.Module):
        def __init__(self, m, n, stride):
            super().__init__()
            self.stride = stride
            half = n // 2
            if stride > 1:
                self.branch1 = nn.Sequential(
                    nn.Conv2d(m, m, 3, stride, 1, groups=m, bias=False), nn.BatchNorm2d(m),
                    nn.Conv2d(m, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
                )
            else:
                self.branch1 = nn.Sequential()
            self.branch2 = nn.Sequential(
                nn.Conv2d(m if stride > 1 else half, half, 1, bias=False), nn.BatchNorm2d(half),
                nn.ReLU(inplace=True),
                nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False), nn.BatchNorm2d(half),
                nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            )

        def forward(self, x):
            if self.stride == 1:
                x1, x2 = x.chunk(2, dim=1)
                out = torch.cat((x1, self.branch2(x2)), dim=1)
            else:
                out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
            return shuffle(out)

    class ShuffleNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            c = SHUFFLENET_V2_CHANNELS
            self.conv1 = nn.Sequential(nn.Conv2d(3, c[0], 3, 2, 1, bias=False), nn.BatchNorm2d(c[0]),
                                       nn.ReLU(inplace=True))
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            channels = c[0]
            for i, (repeats, out) in enumerate(zip(SHUFFLENET_V2_REPEATS, c[1:4]), start=2):
                blocks = [InvertedResidual(channels, out, 2)]
                blocks += [InvertedResidual(out, out, 1) for _ in range(repeats - 1)]
                setattr(self, f"stage{i}", nn.Sequential(*blocks))
                channels = out
            self.conv5 = nn.Sequential(nn.Conv2d(channels, c[4], 1, bias=False), nn.BatchNorm2d(c[4]),
                                       nn.ReLU(inplace=True))
            self.fc = nn.Linear(c[4], num_classes)

        def forward(self, x):
            x = self.maxpool(self.conv1(x))
            x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
            return self.fc(x.mean([2, 3]))

    with _device(device):
        return _finish(ShuffleNetV2(), image_size, device)


# --- ConvNeXt (Liu et al. 2022) ----------------------------------------------------------------

CONVNEXT_TINY_DEPTHS = (3, 3, 9, 3)
CONVNEXT_TINY_DIMS = (96, 192, 384, 768)


def convnext_tiny(image_size: int = 224, num_classes: int = 1000, *, device=None) -> torch.nn.Module:
    """ConvNeXt-T, torchvision's layout: 28,589,128 parameters at 1000 classes.

    Per block: depthwise 7x7 conv (with bias), layer norm over channels (channels-last),
    Linear 4x expansion, GELU, Linear back, a learnt per-channel layer scale, residual
    add. Patchify stem (4x4 stride 4) and 2x2 stride-2 downsampling, each with a layer
    norm. Stochastic depth is the identity at inference and left out.
    """
    image_size, num_classes = _check(image_size, num_classes)
    import torch
    from torch import nn

    class LayerNorm2d(nn.LayerNorm):
        """Layer norm over the channels of an NCHW tensor."""

        def forward(self, x):
            x = x.permute(0, 2, 3, 1)
            x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
            return x.permute(0, 3, 1, 2)

    class Block(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim, bias=True)
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.fc1 = nn.Linear(dim, 4 * dim)
            self.act = nn.GELU()
            self.fc2 = nn.Linear(4 * dim, dim)
            self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 1e-6))

        def forward(self, x):
            y = self.dwconv(x).permute(0, 2, 3, 1)
            y = self.fc2(self.act(self.fc1(self.norm(y)))).permute(0, 3, 1, 2)
            return x + self.layer_scale * y

    class ConvNeXt(nn.Module):
        def __init__(self):
            super().__init__()
            dims = CONVNEXT_TINY_DIMS
            layers = [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4, bias=True), LayerNorm2d(dims[0], eps=1e-6))]
            for i, (depth, dim) in enumerate(zip(CONVNEXT_TINY_DEPTHS, dims)):
                layers.append(nn.Sequential(*[Block(dim) for _ in range(depth)]))
                if i + 1 < len(dims):
                    layers.append(nn.Sequential(LayerNorm2d(dim, eps=1e-6),
                                                nn.Conv2d(dim, dims[i + 1], 2, 2, bias=True)))
            self.features = nn.Sequential(*layers)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.norm = LayerNorm2d(dims[-1], eps=1e-6)
            self.classifier = nn.Linear(dims[-1], num_classes)

        def forward(self, x):
            x = self.norm(self.avgpool(self.features(x)))
            return self.classifier(x.flatten(1))

    with _device(device):
        return _finish(ConvNeXt(), image_size, device)  # _init leaves the layer scale at 1e-6


# --- EfficientNet-B0 (Tan and Le 2019) ------------------------------------------------------------

#: (expansion, kernel, first stride, input channels, output channels, repeats): the paper's Table 1.
EFFICIENTNET_B0_SETTINGS = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
                            (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
                            (6, 3, 1, 192, 320, 1))


def efficientnet_b0(image_size: int = 224, num_classes: int = 1000, *, device=None) -> torch.nn.Module:
    """EfficientNet-B0, torchvision's layout: 5,288,548 parameters at 1000 classes.

    MBConv blocks: 1x1 expansion, depthwise k x k, squeeze-and-excitation (two 1x1 convs
    with bias on the pooled features, squeeze to a quarter of the block's input
    channels), 1x1 projection; SiLU activations; residual where shape allows
    (stochastic depth is the identity at inference).
    """
    image_size, num_classes = _check(image_size, num_classes)
    from torch import nn

    class SqueezeExcitation(nn.Module):
        def __init__(self, channels, squeeze):
            super().__init__()
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc1 = nn.Conv2d(channels, squeeze, 1)
            self.fc2 = nn.Conv2d(squeeze, channels, 1)
            self.activation = nn.SiLU(inplace=True)
            self.scale_activation = nn.Sigmoid()

        def forward(self, x):
            s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
            return x * s

    class MBConv(nn.Module):
        def __init__(self, m, n, k, stride, t):
            super().__init__()
            hidden = m * t
            layers = [] if t == 1 else [_conv_bn_act(m, hidden, 1, act="silu")]
            layers += [_conv_bn_act(hidden, hidden, k, stride, groups=hidden, act="silu"),
                       SqueezeExcitation(hidden, max(1, m // 4)),
                       _conv_bn_act(hidden, n, 1, act=None)]
            self.block = nn.Sequential(*layers)
            self.use_res = stride == 1 and m == n

        def forward(self, x):
            return x + self.block(x) if self.use_res else self.block(x)

    class EfficientNet(nn.Module):
        def __init__(self):
            super().__init__()
            features = [_conv_bn_act(3, 32, 3, 2, act="silu")]
            for t, k, s, m, n, repeats in EFFICIENTNET_B0_SETTINGS:
                features.append(nn.Sequential(*[MBConv(m if i == 0 else n, n, k, s if i == 0 else 1, t)
                                                for i in range(repeats)]))
            features.append(_conv_bn_act(320, 1280, 1, act="silu"))
            self.features = nn.Sequential(*features)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

        def forward(self, x):
            return self.classifier(self.avgpool(self.features(x)).flatten(1))

    with _device(device):
        return _finish(EfficientNet(), image_size, device)


#: name -> factory(image_size=224, num_classes=1000, *, device=None).
ZOO: dict[str, Callable[..., torch.nn.Module]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "shufflenet_v2": shufflenet_v2,
    "convnext_tiny": convnext_tiny,
    "efficientnet_b0": efficientnet_b0,
}


def build_zoo(name: str, image_size: int = 224, num_classes: int = 1000, *, device=None) -> torch.nn.Module:
    """The zoo network ``name`` (one of :data:`ZOO`), in eval mode."""
    v.one_of("zoo network", name, tuple(ZOO))
    return ZOO[name](image_size, num_classes, device=device)


def zoo_input_shape(module_or_size, batch: int = 1) -> tuple[int, int, int, int]:
    """(batch, 3, S, S) for a zoo module (its ``image_size``) or an image side ``S``."""
    size = getattr(module_or_size, "image_size", module_or_size)
    return (v.positive_int("batch", batch), 3, v.positive_int("image_size", size),
            v.positive_int("image_size", size))

