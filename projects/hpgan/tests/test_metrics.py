"""The public metrics against hand-computed values and DLow's formulas."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist

from projects.hpgan import metrics


def _two_samples() -> tuple[torch.Tensor, torch.Tensor]:
    # B = 1, K = 2, T = 2, J = 1; the ground truth is the origin
    samples = torch.tensor([[[[[3.0, 4, 0]], [[0, 0, 0]]], [[[1, 0, 0]], [[0, 2, 0]]]]])
    return samples, torch.zeros(1, 2, 1, 3)


def test_ade_fde_apd_by_hand():
    samples, gt = _two_samples()
    # sample 0: distances 5, 0 (mean 2.5, last 0); sample 1: 1, 2 (mean 1.5, last 2)
    torch.testing.assert_close(metrics.best_of_k_ade(samples, gt), torch.tensor([1.5]))
    torch.testing.assert_close(metrics.best_of_k_fde(samples, gt), torch.tensor([0.0]))
    torch.testing.assert_close(metrics.apd(samples), torch.tensor([math.sqrt(2**2 + 4**2 + 2**2)]))


def test_frames_are_flattened_not_averaged_over_joints():
    samples = torch.zeros(1, 1, 1, 2, 3)
    samples[0, 0, 0, :, 0] = torch.tensor([3.0, 4.0])  # two joints off by 3 and 4 along x
    gt = torch.zeros(1, 1, 2, 3)
    assert metrics.best_of_k_ade(samples, gt).item() == pytest.approx(5.0)  # ‖(3, 4)‖, not (3 + 4) / 2
    assert metrics.mpjpe(samples[:, 0], gt).item() == pytest.approx(3.5)  # per joint: (3 + 4) / 2


def test_apd_is_dlows_mean_over_pairs():
    samples = torch.randn(3, 5, 4, 2, 3, dtype=torch.float64)
    expected = [pdist(s.reshape(5, -1).numpy()).mean() for s in samples]
    np.testing.assert_allclose(metrics.apd(samples).numpy(), expected, rtol=1e-12)
    assert metrics.apd(samples[:, :1]).abs().sum() == 0


def test_best_of_k_against_a_loop():
    samples, gt = torch.randn(4, 6, 5, 3, 3), torch.randn(4, 5, 3, 3)
    for b in range(4):
        per_sample = [np.mean([np.linalg.norm((samples[b, k, t] - gt[b, t]).numpy()) for t in range(5)])
                      for k in range(6)]
        assert metrics.best_of_k_ade(samples, gt)[b].item() == pytest.approx(min(per_sample), rel=1e-5)
        final = [np.linalg.norm((samples[b, k, -1] - gt[b, -1]).numpy()) for k in range(6)]
        assert metrics.best_of_k_fde(samples, gt)[b].item() == pytest.approx(min(final), rel=1e-5)


def test_zero_velocity_and_horizons():
    observed = torch.arange(12.0).view(1, 4, 1, 3)
    still = metrics.zero_velocity(observed, 3)
    assert still.shape == (1, 3, 1, 3) and torch.equal(still[0, 2], observed[0, -1])
    assert metrics.horizon_frames([80, 160, 320, 400, 560, 1000], 25, 20) == {80: 1, 160: 3, 320: 7, 400: 9, 560: 13}
    assert metrics.horizon_frames([80, 100], 30, 20) == {100: 2}


def test_shape_errors_are_explained():
    with pytest.raises(ValueError, match=r"samples \(B, K, T, J, 3\)"):
        metrics.best_of_k_ade(torch.zeros(2, 3, 4, 3), torch.zeros(2, 3, 4, 3))
