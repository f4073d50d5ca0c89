"""The losses against their formulas on tiny hand-computed cases."""

import math

import pytest
import torch
from torch import nn

from projects.hpgan import losses
from projects.hpgan.data import BONES


class Linear(nn.Module):
    """D(x) = Σ w ⊙ x: its gradient is w wherever it is taken."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = w

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def test_gradient_penalty_is_per_frame_as_the_official_code():
    w = torch.zeros(1, 2, 1, 3)
    w[0, 0, 0] = torch.tensor([3.0, 4.0, 0.0])  # frame 0: ‖w‖ = 5 → (5 − 1)² = 16
    w[0, 1, 0, 2] = 1.0                          # frame 1: ‖w‖ = 1 → 0
    real, fake = torch.randn(2, 2, 1, 3), torch.randn(2, 2, 1, 3)
    assert losses.gradient_penalty(Linear(w), real, fake).item() == pytest.approx(8.0)
    # both frames at 1/√2: per frame (1/√2 − 1)², while the textbook per-sample norm would be 1 (penalty 0)
    w = torch.full((1, 2, 1, 1), 1 / math.sqrt(2)) * torch.tensor([1.0, 0, 0])
    assert losses.gradient_penalty(Linear(w), real, fake).item() == pytest.approx((1 / math.sqrt(2) - 1) ** 2)


def test_gradient_penalty_interpolates_with_one_alpha():
    square = lambda x: (x**2).flatten(1).sum(1)  # noqa: E731  gradient 2x̂
    real, fake = torch.tensor([[[[1.0, 0, 0]]]]), torch.zeros(1, 1, 1, 3)
    assert losses.gradient_penalty(square, real, fake, alpha=0.5).item() == pytest.approx(0.0)  # x̂ = 0.5 → ‖2x̂‖ = 1
    assert losses.gradient_penalty(square, real, fake, alpha=1.0).item() == pytest.approx(1.0)  # ‖2‖ − 1 = 1


def test_gradient_penalty_draws_one_alpha_for_the_batch():
    square = lambda x: (x**2).flatten(1).sum(1)  # noqa: E731
    real = torch.tensor([1.0, 2.0]).view(2, 1, 1, 1) * torch.tensor([1.0, 0, 0])
    fake = torch.zeros_like(real)
    torch.manual_seed(3)
    alpha = float(torch.rand(()))
    expected = ((2 * alpha * 1 - 1) ** 2 + (2 * alpha * 2 - 1) ** 2) / 2  # ‖2x̂‖ = 2α‖real‖ per sample
    torch.manual_seed(3)
    assert losses.gradient_penalty(square, real, fake).item() == pytest.approx(expected, rel=1e-5)


def test_critic_loss_is_the_negated_wasserstein_estimate():
    assert losses.critic_loss(torch.tensor([2.0, 4.0]), torch.tensor([1.0, 0.0])).item() == -2.5


def _pose(batch: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    pose = torch.randn(batch, 15, 3)
    return pose - pose[:, :1]


def test_bone_loss_of_a_uniformly_stretched_skeleton():
    last = _pose()
    predicted = (1.5 * last)[:, None].expand(-1, 4, -1, -1)  # every bone 1.5 × its observed length
    # |L − 1.5 L| / L = 0.5 for every bone and frame: summed over the 14 bones, averaged over batch and frames
    assert losses.bone_loss(predicted, last, BONES).item() == pytest.approx(0.5 * len(BONES), rel=1e-4)
    assert losses.bone_loss(last[:, None].expand(-1, 4, -1, -1), last, BONES).item() == pytest.approx(0.0, abs=1e-4)


def test_consistency_loss_of_a_constant_drift():
    last = _pose()
    step = torch.zeros(15, 3)
    step[:, 1] = 0.2  # every joint moves 0.2 up each frame
    predicted = last[:, None] + step * torch.arange(1, 5.0).view(1, 4, 1, 1)
    expected = math.sqrt(2 * 4 * 15 * 0.2**2) / (2 * 4)  # Frobenius norm over batch × frames × joints / (B · T)
    assert losses.consistency_loss(predicted, last).item() == pytest.approx(expected, rel=1e-5)
    assert losses.consistency_loss(last[:, None].expand(-1, 4, -1, -1), last).item() == pytest.approx(1e-4)


def test_generator_loss_weights():
    last = _pose()
    predicted = 1.5 * last[:, None].expand(-1, 3, -1, -1)
    parts = losses.generator_loss(torch.tensor([1.0, 3.0]), predicted, last, BONES)
    expected = -2.0 + 0.001 * parts["consistency"] + 0.01 * parts["bone"]
    assert parts["loss"].item() == pytest.approx(expected.item())


def test_quality_loss_is_binary_cross_entropy():
    logits = torch.tensor([0.0])
    assert losses.quality_loss(logits, logits).item() == pytest.approx(2 * math.log(2))
