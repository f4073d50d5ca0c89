"""DY-Conv and DCD layers against their equations, computed by hand."""

import pytest
import torch
import torch.nn.functional as F

from projects.dcd.module import batch_statistics, mixup_alpha_at, smoothed_cross_entropy, temperature_at
from projects.dcd.nets import DCDConv2d, DyConv2d, DynamicClassifier, hard_sigmoid2

torch.manual_seed(0)


def test_hard_sigmoid2_is_relu6_shifted_and_spans_0_to_2():
    x = torch.tensor([-10.0, -3.0, -1.5, 0.0, 1.5, 3.0, 10.0])
    torch.testing.assert_close(hard_sigmoid2(x), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.0]))


def test_lambda_stays_in_0_2_for_any_input():
    layer = DCDConv2d(16, 32, 3)
    scale, phi = layer.dynamic_coefficients(100 * torch.randn(8, 16, 9, 9))
    assert scale.shape == (8, 32) and phi.shape == (8, layer.latent_dim, layer.latent_dim)
    assert scale.min() >= 0 and scale.max() <= 2
    assert (scale == 0).any() and (scale == 2).any()  # saturates on both sides at this input scale


@pytest.mark.parametrize("stride", [1, 2])
def test_without_the_fusion_term_dcd_is_lambda_scaled_static_conv(stride: int):
    """P = 0 removes P Phi Q^T: y = Lambda(x) * (W0 conv x)."""
    layer = DCDConv2d(8, 12, 3, stride)
    torch.nn.init.zeros_(layer.p.weight)
    x = torch.randn(4, 8, 10, 10)
    scale, _ = layer.dynamic_coefficients(x)
    expected = F.conv2d(x, layer.conv.weight, stride=stride, padding=1) * scale[:, :, None, None]
    torch.testing.assert_close(layer(x), expected)


def test_with_the_dynamic_branch_zeroed_dcd_is_the_static_conv():
    """Branch weights 0 -> Lambda = hard_sigmoid2(0) = 1 and Phi = 0; with P = 0 too, y = W0 conv x."""
    layer = DCDConv2d(8, 12, 3)
    for w in (layer.branch.squeeze.weight, layer.to_phi.weight, layer.to_scale.weight, layer.p.weight):
        torch.nn.init.zeros_(w)
    x = torch.randn(2, 8, 7, 7)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.conv.weight, padding=1))


def test_1x1_dcd_equals_its_per_sample_weight_matrix():
    """Eq. 6 with BN at identity (eval, fresh statistics): W(x) = Lambda(x) W0 + P (I + Phi(x)) Q^T."""
    layer = DCDConv2d(10, 6, 1).eval()
    x = torch.randn(3, 10, 5, 5)
    with torch.no_grad():
        scale, phi = layer.dynamic_coefficients(x)
        eye = torch.eye(layer.latent_dim)
        bn_gain = 1 / (1 + layer.bn_q.eps) ** 0.5  # BN in eval with mean 0, var 1: y = x / sqrt(1 + eps)
        w0 = layer.conv.weight[:, :, 0, 0]
        q, p = layer.q.weight[:, :, 0, 0], layer.p.weight[:, :, 0, 0]
        weight = scale[:, :, None] * w0 + p @ (bn_gain * (bn_gain * phi + eye)) @ (bn_gain * q)
        expected = torch.einsum("boc,bchw->bohw", weight, x)
        torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)


def test_dynamic_classifier_matches_its_formula():
    head = DynamicClassifier(20, 7, latent_dim=4, squeeze_dim=5).eval()
    x = torch.randn(3, 20)
    with torch.no_grad():
        y = head.branch(x)
        scale = hard_sigmoid2(head.to_scale(y))
        phi = head.to_phi(y).view(3, 4, 4)
        g = 1 / (1 + 1e-5) ** 0.5
        z = g * head.q(x)
        expected = scale * head.fc(x) + head.p(g * torch.einsum("bij,bj->bi", phi, z) + z)
        torch.testing.assert_close(head(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("k", "stride", "groups", "cin", "cout", "hw"), [
    (3, 1, 1, 8, 8, 9), (3, 2, 1, 8, 16, 9), (1, 1, 1, 16, 64, 7), (1, 2, 1, 16, 32, 8), (3, 2, 8, 8, 8, 10),
])
def test_output_shapes_match_nn_conv2d(k, stride, groups, cin, cout, hw):
    x = torch.randn(2, cin, hw, hw)
    expected = torch.nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups)(x).shape
    assert DyConv2d(cin, cout, k, stride, groups=groups)(x).shape == expected
    if groups == 1:
        assert DCDConv2d(cin, cout, k, stride)(x).shape == expected


def test_dy_attention_is_a_distribution_and_flattens_at_high_temperature():
    layer = DyConv2d(8, 8, 3, temperature=1.0)
    x = torch.randn(5, 8, 6, 6)
    pi = layer.attention_weights(x)
    assert pi.shape == (5, 4) and (pi >= 0).all()
    torch.testing.assert_close(pi.sum(1), torch.ones(5))
    layer.temperature.fill_(1e6)
    torch.testing.assert_close(layer.attention_weights(x), torch.full((5, 4), 0.25), rtol=0, atol=1e-5)


def test_dy_conv_applies_the_attention_weighted_kernel_per_sample():
    layer = DyConv2d(4, 6, 3, stride=2, groups=2)
    x = torch.randn(3, 4, 8, 8)
    pi = layer.attention_weights(x)
    for b in range(3):
        weight = (pi[b, :, None, None, None, None] * layer.weight).sum(0)
        expected = F.conv2d(x[b:b + 1], weight, stride=2, padding=1, groups=2)
        torch.testing.assert_close(layer(x)[b:b + 1], expected, rtol=1e-5, atol=1e-5)


def test_temperature_schedule_is_linear_from_30_to_1_over_10_epochs():
    assert temperature_at(0) == 30.0
    assert temperature_at(5) == pytest.approx(15.5)
    assert temperature_at(10) == 1.0 and temperature_at(42) == 1.0
    assert temperature_at(0.5, anneal_epochs=1.0) == pytest.approx(15.5)
    assert temperature_at(3, anneal_epochs=0) == 1.0


def test_mixup_alpha_ramps_linearly_over_the_official_100_epochs():
    assert mixup_alpha_at(0, 0.2, 100) == 0.0  # the first epoch does not mix
    assert mixup_alpha_at(50, 0.2, 100) == pytest.approx(0.1)
    assert mixup_alpha_at(100, 0.2, 100) == 0.2 and mixup_alpha_at(119, 0.2, 100) == 0.2
    assert mixup_alpha_at(0, 0.2, 0) == 0.2


def test_label_smoothing_puts_eps_over_the_wrong_classes_as_the_official_loss():
    logits, target, eps = torch.randn(5, 4), torch.tensor([0, 3, 1, 2, 2]), 0.1
    q = torch.full((5, 4), eps / 3).scatter(1, target[:, None], 1 - eps)  # q_y = 1 - eps, q_k = eps / (K - 1)
    expected = -(q * logits.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(smoothed_cross_entropy(logits, target, eps), expected)
    torch.testing.assert_close(smoothed_cross_entropy(logits, target, 0.0), F.cross_entropy(logits, target))


def test_batch_statistics_evaluates_with_train_mode_bn_and_keeps_the_running_statistics():
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3), torch.nn.Dropout(0.5)).eval()
    model[1].running_mean.fill_(5.0)
    x = torch.randn(8, 2, 4, 4)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with batch_statistics(model):
        y = model(x)
    z = model[0](x)  # by hand: normalise with the batch's own mean and (biased) variance; dropout stays off
    expected = (z - z.mean((0, 2, 3), keepdim=True)) / (z.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5).sqrt()
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-4)
    assert not model.training and not model[1].training and model[1].momentum == 0.1
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, saved[k])


def test_mixup_step_is_the_lambda_weighted_loss_of_one_mixed_batch():
    from projects.dcd.module import DCDClassifier

    model = DCDClassifier(arch="resnet18", conv="static", num_classes=3, in_channels=1, width_mult=0.0625,
                          small_input=True, mixup_alpha=0.4, label_smoothing=0.1).eval()  # eval: BN fixed
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(3)
    loss = model.training_step((x, y), 0)
    torch.manual_seed(3)  # the same draws by hand: one lambda ~ Beta(0.4, 0.4), one permutation
    lam = float(torch.distributions.Beta(0.4, 0.4).sample())
    perm = torch.randperm(6)
    logits = model(lam * x + (1 - lam) * x[perm])
    expected = lam * smoothed_cross_entropy(logits, y, 0.1) + (1 - lam) * smoothed_cross_entropy(logits, y[perm], 0.1)
    assert 0 < lam < 1 and not torch.equal(perm, torch.arange(6))
    torch.testing.assert_close(loss, expected)
