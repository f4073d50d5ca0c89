"""The pre-check's plumbing: only the Mix Block learns, the frozen network stays as it was, the trace is recorded.

(Whether the mask leaves uniform is the script's output, ~4 min on one core, and depends on the random stream;
see the README. This test checks the machinery on a tiny run.)"""

import torch

from projects.automix import precheck


def test_only_the_mix_block_learns_and_the_trace_follows_it(tmp_path):
    x, y = precheck.load(96, seed=0)
    net, head, acc = precheck.pretrain(x, y, width=0.125, epochs=1, batch_size=32, seed=0)
    assert 0 <= acc <= 100 and not any(p.requires_grad for p in [*net.parameters(), *head.parameters()])
    frozen = [p.clone() for p in [*net.parameters(), *head.parameters()]]
    block, trace = precheck.train_mix_block(net, head, x, y, steps=20, lr=0.5, batch_size=16, every=10)
    for before, after in zip(frozen, [*net.parameters(), *head.parameters()], strict=True):
        torch.testing.assert_close(before, after)  # no gradient step reached the frozen network
    assert [t["step"] for t in trace] == [0, 10, 20]
    assert trace[-1]["query_norm"] == float(block.query.weight.norm())
    assert trace[0]["query_norm"] != trace[-1]["query_norm"]  # the block's own weights moved
    assert all(t["logit_spread"] >= 0 and 0 <= t["mask_spatial_std"] <= 0.5 for t in trace)
