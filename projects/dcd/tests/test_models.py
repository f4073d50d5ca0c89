"""Backbones: parameter counts against the official implementation and torchvision, shapes, MAdds."""

import pytest
import torch
import torchvision

from projects.dcd.claim import OFFICIAL_DCD_PARAMS, complexity
from projects.dcd.nets import DCDConv2d, DyConv2d, DynamicClassifier, build_model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "mobilenet_v2"])
def test_dcd_parameter_count_equals_the_official_implementation(arch: str):
    assert n_params(build_model(arch, "dcd", 1000)) == OFFICIAL_DCD_PARAMS[arch]


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "mobilenet_v2"])
def test_static_parameter_count_equals_torchvision(arch: str):
    assert n_params(build_model(arch, "static", 1000)) == n_params(getattr(torchvision.models, arch)())


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "mobilenet_v2"])
def test_dy_conv_has_k_copies_of_every_dynamic_kernel(arch: str):
    static, dy = build_model(arch, "static", 1000), build_model(arch, "dy", 1000)
    layers = [m for m in dy.modules() if isinstance(m, DyConv2d)]
    kernels = sum(m.weight.numel() for m in layers)
    attention = sum(n_params(m.attention) for m in layers)
    assert n_params(dy) == n_params(static) + kernels * 3 // 4 + attention


def test_dynamic_positions_follow_the_official_code():
    r18, r50, mv2 = (build_model(a, "dcd", 1000) for a in ("resnet18", "resnet50", "mobilenet_v2"))
    count = lambda m: sum(isinstance(x, DCDConv2d) for x in m.modules())  # noqa: E731
    assert count(r18) == 2 * 8  # both 3x3 convs of 8 basic blocks
    assert count(r50) == 3 * 16  # all three convs of 16 bottlenecks
    assert count(mv2) == 2 * 16  # the two 1x1 convs of the 16 blocks with expansion 6
    assert all(isinstance(m.classifier[-1], DynamicClassifier) for m in (r18, r50, mv2))
    assert isinstance(mv2.classifier[-1], DynamicClassifier)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "mobilenet_v2"])
@pytest.mark.parametrize("conv", ["static", "dy", "dcd"])
def test_forward_shapes(arch: str, conv: str):
    model = build_model(arch, conv, num_classes=7, dropout=0.1)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 7)
    small = build_model(arch, conv, num_classes=10, in_channels=1, width_mult=0.25, small_input=True)
    assert small(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_madds_of_static_backbones_match_the_usual_figures():
    """1.81G (ResNet-18), 4.1G (ResNet-50), 300M (MobileNetV2 x1.0) multiply-adds at 224 px."""
    assert complexity("resnet18", "static")["madds_M"] == pytest.approx(1814, rel=0.01)
    assert complexity("resnet50", "static")["madds_M"] == pytest.approx(4089, rel=0.01)
    assert complexity("mobilenet_v2", "static")["madds_M"] == pytest.approx(300.8, rel=0.01)


def test_dcd_refuses_grouped_convolutions():
    from projects.dcd.nets import conv_factory

    with pytest.raises(ValueError, match="groups=8"):
        conv_factory("dcd", lambda cin, cout: {})(8, 8, 3, 1, 8, "block")


def test_mobilenet_linear_layers_follow_the_official_init():
    """Every nn.Linear of the official MobileNetV2 (DCD branches included) starts as N(0, 0.01)."""
    torch.manual_seed(0)
    weights = torch.cat([m.weight.flatten() for m in build_model("mobilenet_v2", "dcd").modules()
                         if isinstance(m, torch.nn.Linear)])
    assert weights.std().item() == pytest.approx(0.01, rel=0.02)


def test_unknown_arch_or_conv_names_the_choices():
    with pytest.raises(ValueError, match="resnet18"):
        build_model("vgg16", "dcd")
    with pytest.raises(ValueError, match="'static', 'dy', 'dcd'"):
        build_model("resnet18", "cond")


def test_check_official_transfer_maps_every_tensor_by_shape_and_name():
    """The weight mapping used against the official code, checked on two of our own models."""
    from projects.dcd.check_official import transfer

    torch.manual_seed(0)
    source, target = build_model("mobilenet_v2", "dcd", 10), build_model("mobilenet_v2", "dcd", 10)
    transfer(source, target)
    x = torch.randn(2, 3, 64, 64)
    source.eval(), target.eval()
    with torch.no_grad():
        torch.testing.assert_close(source(x), target(x))


@pytest.mark.parametrize(("arch", "scheme", "std"), [("resnet18", "official", None), ("resnet18", "normal", 0.01),
                                                     ("mobilenet_v2", "default", None)])
def test_linear_init_is_a_choice_with_the_official_one_by_default(arch: str, scheme: str, std: float | None):
    """ResNets keep PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) unless asked for N(0, 0.01)."""
    torch.manual_seed(0)
    linears = [m for m in build_model(arch, "dcd", 1000, linear_init=scheme).modules()
               if isinstance(m, torch.nn.Linear)]
    if std is not None:
        assert torch.cat([m.weight.flatten() for m in linears]).std().item() == pytest.approx(std, rel=0.02)
    else:  # every weight inside its layer's default bound, and spread over it (not N(0, 0.01))
        for m in linears:
            bound = 1 / m.in_features ** 0.5
            assert m.weight.abs().max() <= bound and m.weight.abs().max() > 0.5 * bound
    with pytest.raises(ValueError, match="linear_init"):
        build_model("resnet18", "dcd", 10, linear_init="xavier")
