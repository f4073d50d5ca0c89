"""Queue, teacher freezing, momentum update and kNN monitor."""

import pytest
import torch
import torch.nn.functional as F

from projects.seed.bench import standalone
from projects.seed.losses import seed_loss
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


def test_seed_loss_uses_the_queue_as_it_was_before_the_push():
    torch.manual_seed(0)
    model = standalone(_seed())
    before = model.queue.embeddings.clone()
    (view, _), _ = batch = _batch()
    loss = model.training_step(batch, 0)
    with torch.no_grad():
        student, teacher = model.embed(view), F.normalize(model.teacher(view), dim=1)
        expected = seed_loss(student, teacher, before, 0.2, 1e-4)
    torch.testing.assert_close(loss, expected)


def test_both_networks_see_the_first_view_only():
    model = standalone(_seed())
    x = torch.randn(4, 1, 28, 28)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    with_nan = model.training_step(((x, torch.full_like(x, float("nan"))), torch.zeros(4, dtype=torch.long)), 0)
    model.load_state_dict(fresh)
    alone = model.training_step(((x,), torch.zeros(4, dtype=torch.long)), 0)
    assert torch.isfinite(with_nan) and torch.equal(with_nan, alone)


def test_moco_queue_receives_exactly_the_keys(monkeypatch):
    model = standalone(MoCoV2(arch="conv4", width=4, queue_size=8, dim=6, bn_splits=2))
    sentinel = F.normalize(torch.arange(24.0).view(4, 6) + 1, dim=1)
    monkeypatch.setattr(model, "keys", lambda x: sentinel)
    model.training_step(_batch(4), 0)
    torch.testing.assert_close(model.queue.embeddings[:4], sentinel)


def test_teacher_architecture_mismatch_is_named(tmp_path):
    from shared.errors import UserFacingError

    teacher = MoCoV2(arch="conv4", width=8, dim=6, queue_size=8)
    path = tmp_path / "teacher.ckpt"
    torch.save({"hyper_parameters": dict(teacher.hparams), "state_dict": teacher.state_dict()}, path)
    student = _seed(teacher_ckpt=str(path))  # conv4 w8, dim 6: matches
    torch.testing.assert_close(student.teacher[0].state_dict(), teacher.encoder.state_dict())
    with pytest.raises(UserFacingError, match="teacher_arch / teacher_width"):
        _seed(teacher_ckpt=str(path), teacher_width=16)
