"""Encoders and projection heads for MoCo-v2 and SEED. Plain ``nn.Module`` s, no Lightning.

An encoder maps images to a feature vector (the backbone's pooled features, what a linear probe
reads); a projection head maps features to the normalised embedding the losses compare.

* ImageNet scale: torchvision's ResNet-18/50, EfficientNet-B0 and MobileNetV3-Large with their
  classifiers removed, as the paper's students and teachers.
* 28 px scale: ``conv4`` (a 4-layer CNN, the small student) and ``resnet_small`` (a ResNet with a
  3x3 stride-1 stem and one basic block per stage, the larger teacher), both with a width parameter.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn
from torchvision import models


class Encoder(nn.Module):
    """A backbone returning (B, feature_dim) pooled features."""

    def __init__(self, body: nn.Module, feature_dim: int):
        super().__init__()
        self.body, self.feature_dim = body, feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def conv4(in_channels: int = 1, width: int = 16) -> Encoder:
    """Four conv-BN-ReLU layers, widths w, 2w, 4w, 8w, stride 2 from the second on, global pooling."""
    widths = [width, 2 * width, 4 * width, 8 * width]
    layers, cin = [], in_channels
    for i, w in enumerate(widths):
        layers.append(_conv_bn_relu(cin, w, 1 if i == 0 else 2))
        cin = w
    return Encoder(nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten()), cin)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv = nn.Sequential(_conv_bn_relu(cin, cout, stride), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x) + self.shortcut(x))


def resnet_small(in_channels: int = 1, width: int = 32) -> Encoder:
    """ResNet-10 for small images: 3x3 stride-1 stem, one basic block per stage, widths w..8w."""
    widths = [width, 2 * width, 4 * width, 8 * width]
    layers, cin = [_conv_bn_relu(in_channels, width)], width
    for i, w in enumerate(widths):
        layers.append(_BasicBlock(cin, w, 1 if i == 0 else 2))
        cin = w
    return Encoder(nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten()), cin)


def _torchvision(name: str, in_channels: int) -> Encoder:
    net = getattr(models, name)(weights=None)
    if name.startswith("resnet"):
        dim = net.fc.in_features
        net.fc = nn.Identity()
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    else:  # efficientnet_b0, mobilenet_v3_large: keep the classifier up to its last linear layer
        dim = net.classifier[-1].in_features  # 1280 for both (MobileNetV3 keeps its 960 -> 1280 layer)
        net.classifier = net.classifier[:-1]
    return Encoder(net, dim)


SMALL = {"conv4": conv4, "resnet_small": resnet_small}
TORCHVISION = ("resnet18", "resnet50", "efficientnet_b0", "mobilenet_v3_large")


def resolved_width(arch: str, width: int | None) -> int | None:
    """The base width ``build_encoder`` uses: ``width``, or the small encoder's default (None for torchvision)."""
    if width is not None or arch not in SMALL:
        return width
    return inspect.signature(SMALL[arch]).parameters["width"].default


def build_encoder(arch: str, in_channels: int = 3, width: int | None = None) -> Encoder:
    """``arch`` in {conv4, resnet_small} (28 px; ``width`` sets their base width) or one of torchvision's
    resnet18, resnet50, efficientnet_b0, mobilenet_v3_large (randomly initialised)."""
    if arch in SMALL:
        return SMALL[arch](in_channels, **({"width": width} if width else {}))
    if arch in TORCHVISION:
        return _torchvision(arch, in_channels)
    raise ValueError(f"arch must be one of {sorted(SMALL) + list(TORCHVISION)}; got {arch!r}")


def projection_head(in_dim: int, out_dim: int = 128, mlp: bool = True) -> nn.Module:
    """MoCo-v2's head: ``Linear(d, d) -> ReLU -> Linear(d, out)`` (``mlp``), else one linear layer."""
    if not mlp:
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))
