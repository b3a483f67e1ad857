"""The design-speed case of issue 19 item 3: a ReLU CNN of 15 3x3 convs (32 channels) with a
custom block class; `build15()` is the 15-conv network, `build()` a 5-conv one."""

import torch
from torch import nn


class ConvBlock(nn.Module):
    """A user's own module class."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x))


class Net(nn.Module):
    def __init__(self, width=16, depth=5, classes=10):
        super().__init__()
        layers = [ConvBlock(3, width)] + [ConvBlock(width, width) for _ in range(depth - 1)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.body(x).mean((2, 3)))


def build(depth=5):
    torch.manual_seed(0)
    return Net(depth=depth)


def build15():
    torch.manual_seed(0)
    return Net(width=32, depth=15)
