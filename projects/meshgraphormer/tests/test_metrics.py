"""The metrics against hand-computed values and the invariances that define them."""

import math

import pytest
import torch

from projects.meshgraphormer import metrics


def random_rotation(seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.linalg.det(q) > 0 else -q


def test_mpjpe_and_mpve_hand_computed():
    gt = torch.zeros(1, 2, 3)
    pred = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]])  # distances 5 and 1
    assert metrics.mpjpe(pred, gt).item() == pytest.approx(3.0)
    assert metrics.mpve(pred, gt).item() == pytest.approx(3.0)
    assert metrics.mpjpe(pred.repeat(4, 1, 1), gt.repeat(4, 1, 1)).shape == (4,)


def test_pa_mpjpe_is_zero_for_a_similarity_transformed_copy():
    gt = torch.randn(3, 21, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    pred = 2.5 * gt @ random_rotation(1).T + torch.tensor([0.3, -1.0, 4.0], dtype=torch.float64)
    assert metrics.mpjpe(pred, gt).min() > 0.5
    assert metrics.pa_mpjpe(pred, gt).max() < 1e-9
    assert metrics.pa_mpvpe(pred, gt).max() < 1e-9


def test_pa_mpjpe_is_invariant_to_a_similarity_transform_of_the_prediction():
    g = torch.Generator().manual_seed(2)
    gt = torch.randn(4, 30, 3, generator=g, dtype=torch.float64)
    pred = gt + 0.1 * torch.randn(4, 30, 3, generator=g, dtype=torch.float64)
    moved = 0.3 * pred @ random_rotation(3).T + torch.tensor([5.0, 1.0, -2.0], dtype=torch.float64)
    torch.testing.assert_close(metrics.pa_mpjpe(moved, gt), metrics.pa_mpjpe(pred, gt))
    assert (metrics.pa_mpjpe(pred, gt) <= metrics.mpjpe(pred, gt) + 1e-12).all()


def test_procrustes_does_not_reflect():
    gt = torch.randn(1, 10, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    mirrored = gt * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)  # a reflection is not a similarity
    assert metrics.pa_mpjpe(mirrored, gt).item() > 0.1


def test_pa_mpjpe_hand_computed_on_a_scaled_segment():
    gt = torch.tensor([[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]]])
    pred = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 5.0, 0.0]]])  # rotated and scaled: aligns exactly
    assert metrics.pa_mpjpe(pred, gt).item() == pytest.approx(0.0, abs=1e-6)
    # three points: a segment and an off-line point; the best similarity maps the segment exactly
    gt3 = torch.tensor([[[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], dtype=torch.float64)
    pred3 = torch.tensor([[[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 3.0, 0.0]]], dtype=torch.float64)
    # centred pred: (-1,-1), (1,-1), (0,2); s = tr(X^T Y) / |X|^2 = 2 / 8; aligned = s X + mean(gt)
    aligned = 0.25 * (pred3 - pred3.mean(1, keepdim=True))
    expected = (aligned - gt3).norm(dim=-1).mean()
    assert metrics.pa_mpjpe(pred3, gt3).item() == pytest.approx(expected.item(), rel=1e-9)


def test_f_score_hand_computed():
    gt = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0], [3.0, 0, 0]]])
    pred = torch.tensor([[[0.0, 0, 0], [1.0, 0.5, 0], [10.0, 0, 0]]])
    # precision: pred within 0.6 of gt: 2 of 3; recall: gt within 0.6 of pred: points 0 and 1 -> 2 of 4
    p, r = 2 / 3, 2 / 4
    assert metrics.f_score(pred, gt, 0.6).item() == pytest.approx(2 * p * r / (p + r))
    assert metrics.f_score(pred, gt, 0.01).item() == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))
    assert metrics.f_score(pred + 100, gt, 0.6).item() == 0.0
    assert metrics.f_score(gt, gt, 1e-6).item() == 1.0


def test_f_score_with_alignment_forgives_a_similarity():
    gt = torch.randn(2, 50, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    pred = 1.7 * gt @ random_rotation(6).T + 3.0
    assert metrics.f_score(pred, gt, 0.005).max() < 0.1
    assert metrics.f_score(pred, gt, 0.005, align=True).min() == pytest.approx(1.0)


def test_root_centre_and_shape_errors():
    x = torch.arange(12.0).view(1, 4, 3)
    assert metrics.root_centre(x, [2, 3])[0, 2:].sum(0).abs().max() == 0
    with pytest.raises(ValueError, match="must both be"):
        metrics.mpjpe(torch.zeros(2, 3), torch.zeros(2, 3))
    assert math.isfinite(metrics.pa_mpjpe(torch.zeros(1, 3, 3), torch.zeros(1, 3, 3)).item())
