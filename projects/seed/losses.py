"""The two objectives: MoCo-v2's InfoNCE (teacher pretraining, student baseline) and SEED's.

All embeddings are L2-normalised rows; the queue holds K earlier key (MoCo) or teacher (SEED)
embeddings, one per row.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce_loss(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoCo (He et al. 2020, Eq. 1): ``-log exp(q.k+/t) / (exp(q.k+/t) + sum_queue exp(q.k-/t))``.

    Logits are ``[q.k+, q.queue^T] / t`` with the positive in column 0; averaged over the batch.
    """
    positive = (query * key).sum(1, keepdim=True)
    logits = torch.cat([positive, query @ queue.T], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(query), dtype=torch.long, device=query.device))


def seed_logits(embedding: torch.Tensor, teacher: torch.Tensor, queue: torch.Tensor) -> torch.Tensor:
    """Similarities to ``[teacher embedding of the same image, queue]``: column 0 is ``z . z_T``."""
    return torch.cat([(embedding * teacher).sum(1, keepdim=True), embedding @ queue.T], dim=1)


def seed_loss(student: torch.Tensor, teacher: torch.Tensor, queue: torch.Tensor, student_temp: float = 0.2,
              teacher_temp: float = 1e-4) -> torch.Tensor:
    """SEED (Fang et al. 2021, Sec. 3): cross-entropy between the teacher's and the student's similarity
    distributions over ``D+ = [z_T, queue]``:

        p_T = softmax([z_T . z_T, z_T . queue] / t_T),  p_S = softmax([z_S . z_T, z_S . queue] / t_S),
        loss = mean over the batch of  -sum_j p_T[j] log p_S[j].

    ``student`` and ``teacher`` are L2-normalised (N, D) embeddings of the same view, ``queue`` (K, D)
    holds earlier teacher embeddings. The teacher side carries no gradient.
    """
    teacher = teacher.detach()
    target = F.softmax(seed_logits(teacher, teacher, queue) / teacher_temp, dim=1)
    log_p_student = F.log_softmax(seed_logits(student, teacher, queue) / student_temp, dim=1)
    return -(target * log_p_student).sum(1).mean()
