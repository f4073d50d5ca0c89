"""Backbones with a uniform stage interface, and AutoMix's Mix Block.

Every backbone is ``stem`` followed by four ``stages``; ``forward(x, mix=...)`` can mix the hidden state
between stages (Manifold Mixup) and ``features(x, upto)`` returns a stage's feature map (the Mix Block
reads stage 3). CIFAR-style ResNet-18 / ResNeXt-50 (32×4d): 3×3 stride-1 stem, no max-pool, stage
strides 1, 2, 2, 2, last BN of each residual branch initialised to zero (openmixup's ``ResNet_CIFAR`` /
``ResNeXt_CIFAR``); ``resnet18`` / ``resnet50``: torchvision's ImageNet models.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet as tv_resnet


class Backbone(nn.Module):
    """stem → stage1..stage4 → global average pool; ``out_channels[i]`` is stage i+1's width."""

    def __init__(self, stem: nn.Module, stages: list[nn.Module], out_channels: list[int]):
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.out_channels = out_channels
        self.feat_dim = out_channels[-1]

    def forward(self, x: torch.Tensor, mix_at: int | None = None,
                mix: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Pooled features; with ``mix``, the hidden state after ``mix_at`` stages (0 = the input) is mixed."""
        if mix is not None and mix_at == 0:
            x = mix(x)
        h = self.stem(x)
        for i, stage in enumerate(self.stages, start=1):
            h = stage(h)
            if mix is not None and mix_at == i:
                h = mix(h)
        return torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)

    def features(self, x: torch.Tensor, upto: int = 3) -> torch.Tensor:
        """The feature map after ``upto`` stages."""
        h = self.stem(x)
        for stage in self.stages[:upto]:
            h = stage(h)
        return h

    def features_and_pooled(self, x: torch.Tensor, upto: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
        """The feature map after ``upto`` stages and the pooled output of the whole network, in one pass
        (every stage sees the batch, so a network in train mode updates all its BatchNorm statistics)."""
        h, feature = self.stem(x), None
        for i, stage in enumerate(self.stages, start=1):
            h = stage(h)
            if i == upto:
                feature = h
        return feature, torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)


def _zero_init_last_bn(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, tv_resnet.Bottleneck):
            nn.init.zeros_(m.bn3.weight)
        elif isinstance(m, tv_resnet.BasicBlock):
            nn.init.zeros_(m.bn2.weight)


def cifar_resnet(depth: int = 18, in_channels: int = 3, width: float = 1.0, groups: int = 1,
                 width_per_group: int = 64) -> Backbone:
    """CIFAR ResNet-18 (``depth=18``), ResNet-50, or ResNeXt-50 32×4d (``depth=50, groups=32, width_per_group=4``)."""
    block, layers = {18: (tv_resnet.BasicBlock, [2, 2, 2, 2]), 50: (tv_resnet.Bottleneck, [3, 4, 6, 3])}[depth]
    widths = [max(int(round(c * width)), 4) for c in (64, 128, 256, 512)]
    # torchvision's block classes give the right shapes; build the stages with a throw-away ResNet whose
    # planes follow ``widths`` (its stem and head are replaced).
    net = tv_resnet.ResNet(block, layers, groups=groups, width_per_group=width_per_group)
    net.inplanes = widths[0]
    stages = [net._make_layer(block, w, n, stride=s) for w, n, s in zip(widths, layers, (1, 2, 2, 2), strict=True)]
    stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                         nn.ReLU(inplace=True))
    backbone = Backbone(stem, stages, [w * block.expansion for w in widths])
    for m in backbone.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    _zero_init_last_bn(backbone)
    return backbone


def torchvision_resnet(depth: int = 50, in_channels: int = 3) -> Backbone:
    net = {18: tv_resnet.resnet18, 50: tv_resnet.resnet50}[depth](zero_init_residual=True)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    stages = [net.layer1, net.layer2, net.layer3, net.layer4]
    expansion = 4 if depth == 50 else 1
    return Backbone(stem, stages, [c * expansion for c in (64, 128, 256, 512)])


BACKBONES: dict[str, Callable[..., Backbone]] = {
    "cifar_resnet18": lambda in_channels=3, width=1.0: cifar_resnet(18, in_channels, width),
    "cifar_resnext50": lambda in_channels=3, width=1.0: cifar_resnet(50, in_channels, width, 32, 4),
    "resnet18": lambda in_channels=3, width=1.0: torchvision_resnet(18, in_channels),
    "resnet50": lambda in_channels=3, width=1.0: torchvision_resnet(50, in_channels),
}


def build_backbone(name: str, in_channels: int = 3, width: float = 1.0) -> Backbone:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    if width != 1.0 and not name.startswith("cifar_"):
        raise ValueError(f"width applies to the CIFAR backbones only, not {name}")
    return BACKBONES[name](in_channels=in_channels, width=width)


class MixBlock(nn.Module):
    """AutoMix's pixel Mix Block: from the feature maps z of a batch and of its partner batch z[index], a mask.

    With q = W_q z_i, k = W_q z_j (the same 1×1 projection, C → C/r), v = W_v z_j (1×1, C → 1) over the
    h·w positions::

        P = softmax_j( q_iᵀ k_j / √(C/r) ),   m = σ( Upsample( P v ) ),   mask = [1 − m, m]

    mask[:, 0] weights sample i, mask[:, 1] its partner: x̃ = mask₀ ⊙ x + mask₁ ⊙ x[index], so the two
    channels sum to one at every pixel. λ enters as a switch: with ``lam_concat`` a constant channel
    λ (on z_i) and 1−λ (on z_j) is appended before the projections, otherwise λ acts only through the
    mask-λ loss (:func:`projects.automix.losses.mask_lambda_loss`). Upsampling is nearest-neighbour to the
    image size, before the sigmoid.
    """

    def __init__(self, in_channels: int, reduction: int = 2, lam_concat: bool = False):
        super().__init__()
        self.lam_concat = lam_concat
        c = in_channels + int(lam_concat)
        self.inter_channels = max(in_channels // reduction, 1)
        self.query = nn.Conv2d(c, self.inter_channels, 1)
        self.value = nn.Conv2d(c, 1, 1)
        for conv in (self.query, self.value):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def _inputs(self, z: torch.Tensor, lam: float, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        partner = z[index]
        if self.lam_concat:
            ones = torch.ones_like(z[:, :1])
            z, partner = torch.cat([z, ones * lam], 1), torch.cat([partner, ones * (1 - lam)], 1)
        return z, partner

    def attention_logits(self, z: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
        """q_iᵀ k_j / √(C/r) for every position i of z and j of its partner: (n, hw, hw)."""
        q = self.query(z).flatten(2).float()                      # n, c', hw
        k = self.query(partner).flatten(2).float()
        return q.transpose(1, 2) @ k / math.sqrt(self.inter_channels)

    def diagnostics(self, z: torch.Tensor, lam: float, index: torch.Tensor, size: tuple[int, int]) -> dict:
        """Is the block past uniform attention? The logits' spread within a row (std over partner positions,
        mean over rows and samples; 0 = uniform attention), the query weight's Frobenius norm, and the mask's
        spatial std (std over pixels of B's share, mean over samples; 0 = a flat mask, a plain blend)."""
        with torch.no_grad():
            logits = self.attention_logits(*self._inputs(z, lam, index))
            mask = self(z, lam, index, size)
        return {"logit_spread": float(logits.std(-1).mean()),
                "query_norm": float(self.query.weight.detach().norm()),
                "mask_spatial_std": float(mask[:, 1].flatten(1).std(1).mean())}

    def forward(self, z: torch.Tensor, lam: float, index: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        z, partner = self._inputs(z, lam, index)
        n, _, h, w = z.shape
        v = self.value(partner).flatten(2).transpose(1, 2).float()  # n, hw, 1
        attn = torch.softmax(self.attention_logits(z, partner), dim=-1)  # n, hw, hw
        m = (attn @ v).transpose(1, 2).reshape(n, 1, h, w)
        m = torch.sigmoid(F.interpolate(m, size=size, mode="nearest")).to(z.dtype)
        return torch.cat([1 - m, m], dim=1)
