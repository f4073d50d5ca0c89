"""Queue, teacher freezing, momentum update and kNN monitor."""

import pytest
import torch
import torch.nn.functional as F

from projects.seed.bench import standalone
from projects.seed.module import SEED, EmbeddingQueue, MoCoV2, weighted_knn


def test_queue_is_fifo_and_wraps_around():
    queue = EmbeddingQueue(size=5, dim=2)
    first = torch.arange(6.0).view(3, 2)
    queue.push(first)
    torch.testing.assert_close(queue.embeddings[:3], first)
    assert int(queue.pointer) == 3
    second = 10 + torch.arange(6.0).view(3, 2)
    queue.push(second)  # rows 3, 4, then 0: the oldest row is overwritten first
    torch.testing.assert_close(queue.embeddings[3:], second[:2])
    torch.testing.assert_close(queue.embeddings[0], second[2])
    torch.testing.assert_close(queue.embeddings[1:3], first[1:])
    assert int(queue.pointer) == 1


def _seed(**kw) -> SEED:
    args = dict(student_arch="conv4", student_width=4, teacher_arch="conv4", teacher_width=8, queue_size=8, dim=6)
    return SEED(**{**args, **kw})


def _batch(n=4):
    x = torch.randn(n, 1, 28, 28)
    return (x, x.flip(-1)), torch.zeros(n, dtype=torch.long)




def test_seed_queue_holds_teacher_embeddings_only():
    model = standalone(_seed())
    (view, _), _ = batch = _batch()
    model.training_step(batch, 0)
    with torch.no_grad():
        teacher = F.normalize(model.teacher(view), dim=1)
    torch.testing.assert_close(model.queue.embeddings[:4], teacher)


def test_teacher_gets_no_gradient_and_keeps_its_batchnorm_statistics():
    model = standalone(_seed()).train()
    assert not model.teacher.training and all(not p.requires_grad for p in model.teacher.parameters())
    stats = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    loss = model.training_step(_batch(), 0)
    loss.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert any(p.grad is not None for p in model.encoder.parameters())
    for key, value in model.teacher.state_dict().items():
        torch.testing.assert_close(value, stats[key], msg=key)


def test_moco_key_encoder_is_the_momentum_average():
    model = MoCoV2(arch="conv4", width=4, queue_size=8, dim=6, key_momentum=0.9)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.key_encoder.parameters()]
    model._momentum_update()
    for old, key, online in zip(before, model.key_encoder.parameters(), model.encoder.parameters(), strict=True):
        torch.testing.assert_close(key, 0.9 * old + 0.1 * online)
    assert all(not p.requires_grad for p in model.key_encoder.parameters())


def test_moco_queue_receives_the_keys():
    torch.manual_seed(0)
    model = standalone(MoCoV2(arch="conv4", width=4, queue_size=8, dim=6, bn_splits=2))
    old = model.queue.embeddings.clone()
    model.training_step(_batch(4), 0)
    assert not torch.equal(model.queue.embeddings[:4], old[:4]) and torch.equal(model.queue.embeddings[4:], old[4:])
    torch.testing.assert_close(model.queue.embeddings[:4].norm(dim=1), torch.ones(4))


def test_weighted_knn_by_hand():
    bank = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), dim=1)
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[1.0, 0.05]])
    # k=2: neighbours 0 (label 0, sim ~1) and 1 (label 1, sim ~0.99); exp(sim/0.1) favours label 0
    assert weighted_knn(query, bank, labels, 2, k=2, temperature=0.1).tolist() == [0]
    # k=3 adds a label-1 vote of weight exp(0.05/0.1) ~ 1.6, too small to flip it
    assert weighted_knn(query, bank, labels, 2, k=3, temperature=0.1).tolist() == [0]
    # a cold temperature makes it the nearest neighbour; a hot one a majority vote
    assert weighted_knn(query, bank, labels, 2, k=3, temperature=100.0).tolist() == [1]


def test_missing_teacher_checkpoint_says_how_to_make_one(tmp_path):
    from shared.errors import UserFacingError

    with pytest.raises(UserFacingError, match=r"Teacher checkpoint .*none.ckpt not found.*demo.yaml"):
        _seed(teacher_ckpt=str(tmp_path / "none.ckpt"))
