"""The bench helpers run and report consistent quantities (no timing targets: those live in bench.py)."""

import lightning as L
import torch
from torch import nn

from shared.bench import (
    forward_flops,
    lightning_step_seconds,
    lightning_vs_plain,
    matmul_gflops,
    median_seconds,
    plain_step_seconds,
    training_flops,
    training_step_seconds,
)


def _net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))


def test_both_loops_do_the_same_work():
    """Same seed, batch, optimiser and step count: the two loops must end with identical weights."""
    batch = (torch.randn(4, 12), torch.tensor([0, 1, 2, 0]))
    torch.manual_seed(0)
    plain_net, lightning_net = _net(), _net()
    lightning_net.load_state_dict(plain_net.state_dict())
    start = [p.clone() for p in plain_net.parameters()]
    assert plain_step_seconds(plain_net, batch, steps=3, warmup=1) > 0
    assert lightning_step_seconds(lightning_net, batch, steps=3, warmup=1) > 0
    for before, a, b in zip(start, plain_net.parameters(), lightning_net.parameters(), strict=True):
        assert not torch.equal(before, a)  # 4 SGD steps moved the weights
        torch.testing.assert_close(a, b)
    result = lightning_vs_plain(_net, batch, steps=2, warmup=1)
    assert {"plain_s", "lightning_s", "ratio"} <= result.keys()


def test_training_flops_is_three_forward_passes():
    net, batch = _net(), (torch.randn(4, 12), torch.tensor([0, 1, 2, 0]))
    forward = 2 * 4 * (12 * 8 + 8 * 3)  # two multiply-add FLOPs per weight per sample
    assert forward_flops(net, batch[0]) == forward
    assert training_flops(net, batch) == 3 * forward
    assert matmul_gflops(n=64, repeats=2) > 0


class _DictModule(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = _net()

    def training_step(self, batch, batch_idx):
        loss = nn.functional.cross_entropy(self.net(batch["x"]), batch["y"])
        self.log("train/loss", loss)  # switched off by the bare loop (no Trainer attached)
        return loss


def test_training_step_seconds_runs_the_modules_own_step():
    torch.manual_seed(0)
    module = _DictModule()
    start = [p.clone() for p in module.parameters()]
    batch = {"x": torch.randn(4, 12), "y": torch.tensor([0, 1, 2, 0])}
    assert training_step_seconds(module, batch, steps=2, warmup=1, optimizer=torch.optim.SGD, lr=0.1) > 0
    assert all(not torch.equal(a, b) for a, b in zip(start, module.parameters(), strict=True))


def test_median_seconds_calls_warmup_plus_repeats_without_gradients():
    calls = []
    x = torch.ones(2, requires_grad=True)
    assert median_seconds(lambda: calls.append((x * 2).requires_grad), repeats=3, warmup=2) >= 0
    assert calls == [False] * 5
