"""Backbones: sizes of the CIFAR ResNet-18 / ResNeXt-50 and torchvision ResNets, and the stage interface."""

import pytest
import torch

from projects.automix.nets import build_backbone


@pytest.mark.parametrize("name, params, stage3, out", [
    ("cifar_resnet18", 11_168_832, (256, 8, 8), 512),      # + a 512x100 head = the usual 11.2 M of CIFAR R-18
    ("cifar_resnext50", 22_972_224, (1024, 8, 8), 2048),   # ResNeXt-50 32x4d with a 3x3 stride-1 stem
    ("resnet18", 11_176_512, (256, 2, 2), 512),            # torchvision, without its fc
    ("resnet50", 23_508_032, (1024, 2, 2), 2048),
])
def test_backbone_sizes_and_stage_shapes(name, params, stage3, out):
    net = build_backbone(name).eval()
    assert sum(p.numel() for p in net.parameters()) == params
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feature, pooled = net.features_and_pooled(x, 3)
        assert feature.shape[1:] == stage3 and pooled.shape == (2, out)
        torch.testing.assert_close(pooled, net(x))
        torch.testing.assert_close(feature, net.features(x, 3))


def test_cifar_resnet_has_no_max_pool_and_a_stride_one_stem():
    net = build_backbone("cifar_resnet18", in_channels=1, width=0.25)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
    assert net.stem[0].stride == (1, 1) and net.stem[0].kernel_size == (3, 3)
    assert net.features(torch.randn(1, 1, 28, 28), 1).shape[-1] == 28  # stage 1 keeps the resolution


def test_width_only_for_cifar_backbones():
    with pytest.raises(ValueError, match="CIFAR backbones only"):
        build_backbone("resnet50", width=0.5)
