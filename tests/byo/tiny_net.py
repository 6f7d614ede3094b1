"""A file-defined model for ``--model tests/byo/tiny_net.py:build`` (tests/test_byo_model.py).

It carries what bring-your-own models bring: a depthwise and a grouped conv, a squeeze-excitation
block (adaptive pooling, 1x1 convs, hardsigmoid, mul), hardswish, a channel shuffle, layer norm,
``nn.MultiheadAttention`` over the pixels and a linear head.
"""

import torch
from torch import nn


class SE(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, c // 4, 1)
        self.fc2 = nn.Conv2d(c // 4, c, 1)

    def forward(self, x):
        s = self.pool(x)
        s = nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * s


def channel_shuffle(x, groups: int):
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.act = nn.Hardswish()
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.se = SE(16)
        self.gconv = nn.Conv2d(16, 32, 1, groups=4)
        self.norm = nn.LayerNorm(32)
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = self.act(self.bn(self.stem(x)))
        x = x + self.se(self.dw(x))
        x = channel_shuffle(self.gconv(x), 4)
        t = self.norm(x.flatten(2).transpose(1, 2))
        t = t + self.attn(t, t, t, need_weights=False)[0]
        return self.head(t.mean(1))


def build():
    return TinyNet().eval(), torch.randn(1, 3, 16, 16)


class Recipe:
    """The recipe-object form: build(), example_input() and calibration(n)."""

    def build(self):
        return TinyNet().eval()

    def example_input(self):
        return torch.randn(1, 3, 16, 16)

    def calibration(self, n):
        g = torch.Generator().manual_seed(1)
        return [torch.randn(n, 3, 16, 16, generator=g)]


def recipe():
    return Recipe()


def build_unsupported():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 4, 2, stride=2))
    return net.eval(), torch.randn(1, 3, 8, 8)
