"""SEED's and MoCo's losses against hand-computed values and their limiting cases."""

import math

import pytest
import torch
import torch.nn.functional as F

from projects.seed.losses import info_nce_loss, seed_logits, seed_loss


def _unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_seed_loss_on_a_tiny_case_by_hand():
    student, teacher = _unit([1.0, 0.0]), _unit([0.6, 0.8])
    queue = _unit([0.0, 1.0])
    ts, tt = 0.5, 1.0
    # teacher similarities: [t.t, t.q] = [1, 0.8]; student: [s.t, s.q] = [0.6, 0]
    p_t = [math.exp(1 / tt), math.exp(0.8 / tt)]
    p_t = [v / sum(p_t) for v in p_t]
    log_z = math.log(math.exp(0.6 / ts) + math.exp(0.0 / ts))
    expected = -(p_t[0] * (0.6 / ts - log_z) + p_t[1] * (0.0 / ts - log_z))
    assert seed_loss(student, teacher, queue, ts, tt).item() == pytest.approx(expected, rel=1e-6)


def test_positive_column_comes_first():
    s, t, q = _unit([1.0, 0.0], [0.0, 1.0]), _unit([1.0, 0.0], [1.0, 0.0]), _unit([0.0, 1.0], [1.0, 1.0])
    logits = seed_logits(s, t, q)
    torch.testing.assert_close(logits[:, 0], (s * t).sum(1))
    torch.testing.assert_close(logits[:, 1:], s @ q.T)


def test_minimised_when_the_student_equals_the_teacher():
    """With equal temperatures the target is the student's own distribution at s = t: gradient zero, and any
    other student scores higher."""
    torch.manual_seed(0)
    teacher, queue = F.normalize(torch.randn(4, 8), dim=1), F.normalize(torch.randn(16, 8), dim=1)
    student = teacher.clone().requires_grad_(True)
    loss = seed_loss(student, teacher, queue, 0.2, 0.2)
    (grad,) = torch.autograd.grad(loss, student)
    # the only gradient left is along the embedding itself (it leaves the unit sphere), none tangential
    tangential = grad - (grad * teacher).sum(1, keepdim=True) * teacher
    assert tangential.abs().max() < 1e-5
    for _ in range(5):
        other = F.normalize(teacher + 0.3 * torch.randn_like(teacher), dim=1)
        assert seed_loss(other, teacher, queue, 0.2, 0.2) > loss


def test_near_zero_teacher_temperature_is_cross_entropy_on_the_teachers_nearest_neighbour():
    torch.manual_seed(1)
    student, teacher = F.normalize(torch.randn(6, 8), dim=1), F.normalize(torch.randn(6, 8), dim=1)
    queue = F.normalize(torch.randn(32, 8), dim=1)
    nearest = seed_logits(teacher, teacher, queue).argmax(1)
    assert (nearest == 0).all()  # an embedding's nearest neighbour in [itself, queue] is itself
    expected = F.cross_entropy(seed_logits(student, teacher, queue) / 0.2, nearest)
    assert seed_loss(student, teacher, queue, 0.2, 1e-6).item() == pytest.approx(expected.item(), rel=1e-5)


def test_teacher_side_carries_no_gradient():
    student = F.normalize(torch.randn(3, 4), dim=1).requires_grad_(True)
    teacher = F.normalize(torch.randn(3, 4), dim=1).requires_grad_(True)
    seed_loss(student, teacher, F.normalize(torch.randn(5, 4), dim=1)).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_info_nce_by_hand():
    q, k, queue = _unit([1.0, 0.0]), _unit([0.8, 0.6]), _unit([0.0, 1.0], [-1.0, 0.0])
    t = 0.2
    logits = torch.tensor([0.8, 0.0, -1.0]) / t
    expected = -(logits[0] - torch.logsumexp(logits, 0))
    assert info_nce_loss(q, k, queue, t).item() == pytest.approx(expected.item(), rel=1e-4)


def test_a_queued_copy_of_the_teacher_splits_the_near_zero_temperature_target():
    """If the queue holds a copy of z_T, both columns are the teacher's nearest neighbours and the
    t_T -> 0 target is 1/2 on each: the loss is the mean of the two cross-entropies."""
    torch.manual_seed(2)
    student, teacher = F.normalize(torch.randn(1, 8), dim=1), F.normalize(torch.randn(1, 8), dim=1)
    queue = torch.cat([F.normalize(torch.randn(5, 8), dim=1), teacher, F.normalize(torch.randn(3, 8), dim=1)])
    logits = seed_logits(student, teacher, queue) / 0.2
    expected = 0.5 * (F.cross_entropy(logits, torch.tensor([0])) + F.cross_entropy(logits, torch.tensor([6])))
    assert seed_loss(student, teacher, queue, 0.2, 1e-6).item() == pytest.approx(expected.item(), rel=1e-5)
