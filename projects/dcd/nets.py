"""Networks for DCD: the three convolution types and the backbones that use them.

Plain ``nn.Module`` s, no Lightning. Notation follows the paper: a convolution maps C input channels
to C' output channels, its static weight is W0, the latent space has L dimensions.

* :class:`DyConv2d`  DY-Conv (Chen et al., CVPR 2020), DCD paper Eq. 1:
  ``W(x) = sum_k pi_k(x) W_k``,  ``pi(x) = softmax(z(x) / tau)``, K = 4 kernels.
* :class:`DCDConv2d` dynamic convolution decomposition, DCD paper Eq. 6 (dynamic channel fusion):
  ``W(x) = Lambda(x) W0 + P Phi(x) Q^T``.
* :class:`DynamicClassifier` the same decomposition applied to the final fully connected layer.

Which layers become dynamic, the latent size L and the squeeze width of the dynamic branch follow
the official implementation (liyunsheng13/dcd) for each backbone; see ``_dcd_sizes_*`` below.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

ConvType = Literal["static", "dy", "dcd"]
Arch = Literal["resnet18", "resnet50", "mobilenet_v2"]
# A conv factory builds one convolution: (in, out, kernel, stride, groups, role) -> module.
# role is "block" for the convolutions inside residual blocks that a dynamic type may replace, and
# "fixed" for stems, shortcuts, depthwise and head convolutions, which stay static for every type.
ConvFactory = Callable[[int, int, int, int, int, str], nn.Module]


def hard_sigmoid2(x: torch.Tensor) -> torch.Tensor:
    """``relu6(x + 3) / 3``: a hard sigmoid with range [0, 2] and value 1 at x = 0."""
    return F.relu6(x + 3.0) / 3.0


class DynamicBranch(nn.Module):
    """The shared trunk of DCD's dynamic branch: pool, squeeze FC, then a self-gate.

    ``h = W1 pool(x)``;  ``y = h * hard_sigmoid2(W2 h)``  (the official "SE module small").
    """

    def __init__(self, in_features: int, squeeze_dim: int):
        super().__init__()
        self.squeeze = nn.Linear(in_features, squeeze_dim, bias=False)
        self.gate = nn.Linear(squeeze_dim, squeeze_dim, bias=False)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        h = self.squeeze(pooled)
        return h * hard_sigmoid2(self.gate(h))


class DCDConv2d(nn.Module):
    """Dynamic convolution decomposition, DCD Eq. 6: ``W(x) = Lambda(x) W0 + P Phi(x) Q^T``.

    Computed on feature maps, as the official code does (BN inside the latent space and the
    identity that makes the fused term ``P (I + Phi(x)) Q^T``)::

        y = Lambda(x) * (W0 conv x)  +  P [ BN_phi(Phi(x) z) + z ],   z = BN_q(Q^T x)

    * ``Lambda(x)``: diagonal, one value per output channel, ``hard_sigmoid2`` of the branch, in [0, 2].
    * ``Phi(x)``: a full L x L matrix per sample (dynamic channel fusion), linear in the branch.
    * ``Q^T``: a 1x1 projection C -> L carrying the stride; ``P``: a 1x1 projection L -> C'.

    Args:
        latent_dim: L. Default ``floor(sqrt(C * pool_size**2))``, the official ResNet rule.
        squeeze_dim: width of the branch. Default ``max(C * pool_size**2, L**2) // 16``, at least 4.
        pool_size: the branch pools x to ``pool_size x pool_size`` before its first FC.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 padding: int | None = None, latent_dim: int | None = None, squeeze_dim: int | None = None,
                 pool_size: int = 1):
        super().__init__()
        pooled = in_channels * pool_size**2
        latent_dim = latent_dim or int(math.sqrt(pooled))
        squeeze_dim = squeeze_dim or max(max(pooled, latent_dim**2) // 16, 4)
        padding = kernel_size // 2 if padding is None else padding
        self.latent_dim = latent_dim
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)  # W0
        self.q = nn.Conv2d(in_channels, latent_dim, 1, stride, bias=False)  # Q^T
        self.p = nn.Conv2d(latent_dim, out_channels, 1, bias=False)  # P
        self.bn_q = nn.BatchNorm2d(latent_dim)
        self.bn_phi = nn.BatchNorm1d(latent_dim)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.branch = DynamicBranch(pooled, squeeze_dim)
        self.to_phi = nn.Linear(squeeze_dim, latent_dim**2, bias=False)
        self.to_scale = nn.Linear(squeeze_dim, out_channels, bias=False)

    def dynamic_coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``Lambda(x)`` as (B, C') and ``Phi(x)`` as (B, L, L)."""
        y = self.branch(self.pool(x).flatten(1))
        phi = self.to_phi(y).view(-1, self.latent_dim, self.latent_dim)
        return hard_sigmoid2(self.to_scale(y)), phi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, phi = self.dynamic_coefficients(x)
        static = self.conv(x) * scale[:, :, None, None]
        z = self.bn_q(self.q(x))
        b, _, h, w = z.shape
        z = z.flatten(2)
        fused = self.bn_phi(torch.bmm(phi, z)) + z
        return static + self.p(fused.view(b, -1, h, w))


class DynamicClassifier(nn.Module):
    """DCD applied to the classifier (official ``DYCls``, L = 32, branch width 32)::

        logits = Lambda(x) * (W0 x + b)  +  P [ BN_phi(Phi(x) z) + z ],   z = BN_q(Q^T x)
    """

    def __init__(self, in_features: int, num_classes: int, latent_dim: int = 32, squeeze_dim: int = 32):
        super().__init__()
        self.latent_dim = latent_dim
        self.fc = nn.Linear(in_features, num_classes)  # W0, b
        self.q = nn.Linear(in_features, latent_dim, bias=False)
        self.p = nn.Linear(latent_dim, num_classes, bias=False)
        self.bn_q = nn.BatchNorm1d(latent_dim)
        self.bn_phi = nn.BatchNorm1d(latent_dim)
        self.branch = DynamicBranch(in_features, squeeze_dim)
        self.to_phi = nn.Linear(squeeze_dim, latent_dim**2, bias=False)
        self.to_scale = nn.Linear(squeeze_dim, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branch(x)
        phi = self.to_phi(y).view(-1, self.latent_dim, self.latent_dim)
        static = self.fc(x) * hard_sigmoid2(self.to_scale(y))
        z = self.bn_q(self.q(x))
        fused = self.bn_phi(torch.bmm(phi, z[:, :, None])[:, :, 0]) + z
        return static + self.p(fused)


class DyConv2d(nn.Module):
    """DY-Conv (Chen et al. 2020), DCD Eq. 1: ``W(x) = sum_k pi_k(x) W_k`` with
    ``pi(x) = softmax(FC2(ReLU(FC1(avgpool(x)))) / tau)``, so ``0 <= pi_k <= 1`` and ``sum_k pi_k = 1``.

    ``temperature`` (tau) is a buffer, saved in checkpoints; training anneals it from 30 to 1
    (:func:`projects.dcd.module.temperature_at`). The K kernels are aggregated per sample and applied
    as one grouped convolution over the batch.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 padding: int | None = None, groups: int = 1, num_kernels: int = 4, reduction: int = 4,
                 temperature: float = 30.0):
        super().__init__()
        self.stride, self.groups = stride, groups
        self.padding = kernel_size // 2 if padding is None else padding
        self.out_channels = out_channels
        hidden = max(in_channels // reduction, 4)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_kernels),
        )
        self.weight = nn.Parameter(torch.empty(num_kernels, out_channels, in_channels // groups,
                                               kernel_size, kernel_size))
        for w in self.weight:
            nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``pi(x)`` as (B, K); each row sums to one."""
        return torch.softmax(self.attention(x) / self.temperature, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        pi = self.attention_weights(x)
        weight = torch.einsum("bk,koiyx->boiyx", pi, self.weight).reshape(-1, *self.weight.shape[2:])
        out = F.conv2d(x.reshape(1, b * c, h, w), weight, None, self.stride, self.padding,
                       groups=b * self.groups)
        return out.view(b, self.out_channels, *out.shape[-2:])


# ----------------------------------------------------------------------------- conv factories


def _static(cin: int, cout: int, k: int, stride: int, groups: int) -> nn.Module:
    return nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)


def _dcd_sizes_resnet18(cin: int, cout: int) -> dict:
    """Official BasicBlock rule: 2x2 pooling, L = floor(sqrt(4C)), width max(4C, L^2) // 16 (>= 4)."""
    latent = int(math.sqrt(cin * 4))
    return dict(pool_size=2, latent_dim=latent, squeeze_dim=max(max(cin * 4, latent**2) // 16, 4))


def _dcd_sizes_resnet50(cin: int, cout: int) -> dict:
    """Official Bottleneck rule: global pooling, L = floor(sqrt(C)), width max(C, L^2) // 16."""
    latent = int(math.sqrt(cin))
    return dict(pool_size=1, latent_dim=latent, squeeze_dim=max(cin, latent**2) // 16)


def _dcd_sizes_mobilenet(cin: int, cout: int, fc_squeeze: int = 16) -> dict:
    """Official MobileNetV2 rule. Expanding layers (C < C') pool 2x2 (mul 4) and start at r = 8,
    projecting layers pool 1x1 and start at r = 2; L = min(C mul, C') // r, r doubled until
    L^2 <= 2 C mul, L >= 4; width max(C mul, L^2) // fc_squeeze, >= 4."""
    mul, reduction, pool = (4, 8, 2) if cin < cout else (1, 2, 1)
    latent = min(cin * mul // reduction, cout // reduction)
    while latent**2 > cin * mul * 2:
        reduction *= 2
        latent = min(cin * mul // reduction, cout // reduction)
    latent = max(latent, 4)
    return dict(pool_size=pool, latent_dim=latent, squeeze_dim=max(max(cin * mul, latent**2) // fc_squeeze, 4))


def conv_factory(conv: ConvType, dcd_sizes: Callable[[int, int], dict] | None = None) -> ConvFactory:
    """A factory that builds ``conv`` at "block" positions and a static convolution elsewhere."""
    if conv not in ("static", "dy", "dcd"):
        raise ValueError(f"conv must be one of 'static', 'dy', 'dcd'; got {conv!r}")

    def make(cin: int, cout: int, k: int, stride: int, groups: int, role: str) -> nn.Module:
        if role != "block" or conv == "static":
            return _static(cin, cout, k, stride, groups)
        if conv == "dy":
            return DyConv2d(cin, cout, k, stride, groups=groups)
        if groups != 1:
            raise ValueError(f"DCD is defined for dense convolutions; got groups={groups} for {cin}->{cout}")
        return DCDConv2d(cin, cout, k, stride, **dcd_sizes(cin, cout))

    return make


def _classifier(conv: ConvType, in_features: int, num_classes: int, dropout: float) -> nn.Sequential:
    head = DynamicClassifier(in_features, num_classes) if conv == "dcd" else nn.Linear(in_features, num_classes)
    return nn.Sequential(nn.Dropout(dropout), head) if dropout > 0 else nn.Sequential(head)


def _init_weights(model: nn.Module) -> None:
    """He (fan-out) init for convolutions, BN at identity, as the official code does."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


LinearInit = Literal["official", "normal", "default"]


def init_linear_layers(model: nn.Module, scheme: str) -> None:
    """Initialise every ``nn.Linear`` (classifier, DCD and DY-Conv branches) by ``scheme``.

    * ``"normal"``: ``W ~ N(0, 0.01^2)``, ``b = 0``, the official MobileNetV2's init;
    * ``"default"``: PyTorch's default (``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``), what the official ResNets keep.
    """
    if scheme not in ("normal", "default"):
        raise ValueError(f"linear_init must be 'official', 'normal' or 'default'; got {scheme!r}")
    for m in model.modules():
        if isinstance(m, nn.Linear):
            if scheme == "normal":
                nn.init.normal_(m.weight, 0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            else:
                m.reset_parameters()


# ----------------------------------------------------------------------------- ResNet


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, make_conv: ConvFactory):
        super().__init__()
        self.conv1 = make_conv(cin, planes, 3, stride, 1, "block")
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = make_conv(planes, planes, 3, 1, 1, "block")
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(cin, planes, stride, make_conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3), as torchvision and the official DCD code."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, make_conv: ConvFactory):
        super().__init__()
        self.conv1 = make_conv(cin, planes, 1, 1, 1, "block")
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = make_conv(planes, planes, 3, stride, 1, "block")
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = make_conv(planes, planes * 4, 1, 1, 1, "block")
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.shortcut = _shortcut(cin, planes * 4, stride, make_conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: int, make_conv: ConvFactory) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(make_conv(cin, cout, 1, stride, 1, "fixed"), nn.BatchNorm2d(cout))


class ResNet(nn.Module):
    """ResNet-18/50. ``small_input`` swaps the 7x7/2 stem and max-pool for a 3x3/1 stem (28-32 px data);
    ``width_mult`` scales every stage's width (1.0 is the paper's network)."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], make_conv: ConvFactory,
                 conv: ConvType, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
                 small_input: bool = False, dropout: float = 0.0):
        super().__init__()
        widths = [max(int(round(w * width_mult)), 4) for w in (64, 128, 256, 512)]
        if small_input:
            self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
                                      nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False),
                                      nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        stages, cin = [], widths[0]
        for i, (planes, n) in enumerate(zip(widths, layers, strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if (i > 0 and j == 0) else 1, make_conv))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = _classifier(conv, cin, num_classes, dropout)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.stages(self.stem(x))).flatten(1))


# ----------------------------------------------------------------------------- MobileNetV2


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _conv_bn_relu6(cin: int, cout: int, k: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2 block. With expansion t > 1 the two 1x1 convolutions are "block" positions
    (dynamic for DY/DCD, as in the official DCD code); the depthwise 3x3 stays static."""

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int, make_conv: ConvFactory):
        super().__init__()
        hidden = int(round(cin * expand_ratio))
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers += [make_conv(cin, hidden, 1, 1, 1, "block"), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   make_conv(hidden, cout, 1, 1, 1, "block" if expand_ratio != 1 else "fixed"),
                   nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (t, c, n, s settings of Sandler et al.); ``small_input`` makes the stem stride 1."""

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))

    def __init__(self, make_conv: ConvFactory, conv: ConvType, num_classes: int = 1000, in_channels: int = 3,
                 width_mult: float = 1.0, small_input: bool = False, dropout: float = 0.0):
        super().__init__()
        cin = _make_divisible(32 * width_mult)
        layers: list[nn.Module] = [_conv_bn_relu6(in_channels, cin, 3, 1 if small_input else 2)]
        for t, c, n, s in self.SETTINGS:
            cout = _make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t, make_conv))
                cin = cout
        last = _make_divisible(1280 * width_mult) if width_mult > 1.0 else 1280
        layers.append(_conv_bn_relu6(cin, last, 1, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = _classifier(conv, last, num_classes, dropout)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


def build_model(arch: Arch, conv: ConvType = "static", num_classes: int = 1000, *, in_channels: int = 3,
                width_mult: float = 1.0, small_input: bool = False, dropout: float = 0.0,
                fc_squeeze: int = 16, linear_init: LinearInit = "official") -> nn.Module:
    """Build ``arch`` in {resnet18, resnet50, mobilenet_v2} with ``conv`` in {static, dy, dcd}.

    ``fc_squeeze`` is the official MobileNetV2 branch divisor (16 for the released x1.0 model).
    ``linear_init`` initialises every linear layer (see :func:`init_linear_layers`); ``"official"`` is
    what the official code does for that backbone: PyTorch's default for the ResNets, N(0, 0.01) for
    MobileNetV2. At PyTorch's default, DCD's ``fc_phi`` head gives Phi(x) large enough that a ResNet
    overflows in eval mode on some inputs (see the README); ``"normal"`` avoids it.
    """
    common = dict(num_classes=num_classes, in_channels=in_channels, width_mult=width_mult,
                  small_input=small_input, dropout=dropout)
    if arch == "resnet18":
        model = ResNet(BasicBlock, [2, 2, 2, 2], conv_factory(conv, _dcd_sizes_resnet18), conv, **common)
    elif arch == "resnet50":
        model = ResNet(Bottleneck, [3, 4, 6, 3], conv_factory(conv, _dcd_sizes_resnet50), conv, **common)
    elif arch == "mobilenet_v2":
        sizes = lambda cin, cout: _dcd_sizes_mobilenet(cin, cout, fc_squeeze)  # noqa: E731
        model = MobileNetV2(conv_factory(conv, sizes), conv, **common)
    else:
        raise ValueError(f"arch must be one of 'resnet18', 'resnet50', 'mobilenet_v2'; got {arch!r}")
    if linear_init == "official":
        linear_init = "normal" if arch == "mobilenet_v2" else "default"
    if linear_init != "default":  # built at PyTorch's default already; an unknown scheme raises here
        init_linear_layers(model, linear_init)
    return model
