"""The bench helpers run and report consistent quantities (no timing targets: those live in bench.py)."""

import torch
from torch import nn

from shared.bench import forward_flops, lightning_vs_plain, matmul_gflops, training_flops


def _net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))


def test_lightning_vs_plain_reports_both_loops_and_their_ratio():
    batch = (torch.randn(4, 12), torch.tensor([0, 1, 2, 0]))
    result = lightning_vs_plain(_net, batch, steps=3, warmup=1)
    assert result["plain_s"] > 0 and result["lightning_s"] > 0
    assert result["ratio"] == result["lightning_s"] / result["plain_s"]


def test_training_flops_is_three_forward_passes():
    net, batch = _net(), (torch.randn(4, 12), torch.tensor([0, 1, 2, 0]))
    forward = 2 * 4 * (12 * 8 + 8 * 3)  # two multiply-add FLOPs per weight per sample
    assert forward_flops(net, batch[0]) == forward
    assert training_flops(net, batch) == 3 * forward
    assert matmul_gflops(n=64, repeats=2) > 0
