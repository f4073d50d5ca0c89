"""bench.py's Lightning-vs-bare-loop comparison: both sides do the same work, so its ratio is Lightning's overhead."""

import torch

from projects.value.bench import paired_step_seconds, tvr_batch
from projects.value.module import HeroModule


def test_both_loops_train_alike():
    """Same initial weights, optimiser, schedule and random draws (dropout, the span-loss draw): the two loops must
    compute the same loss at every step, while the weights move."""
    torch.manual_seed(0)
    batch = tvr_batch(queries=4, frames=20, feature_dim=16, vocab=50)

    def make() -> HeroModule:
        return HeroModule(feature_dim=16, vocab_size=50, hidden=32, cross_layers=1, temporal_layers=1, heads=2,
                          decoder_layers=1, lr=1e-3, drop_svmr_prob=0.5)

    result = paired_step_seconds(make, batch, steps=3, warmup=1)
    losses = result["losses"]
    assert len(losses["lightning"]) == len(losses["plain"]) == 4
    torch.testing.assert_close(losses["lightning"], losses["plain"])
    assert len(set(losses["plain"])) > 1  # the weights moved between steps
    assert result["lightning_s"] > 0 and result["plain_s"] > 0
    assert result["ratio_iqr"][0] <= result["ratio"] <= result["ratio_iqr"][1]
