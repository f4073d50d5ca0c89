"""The losses of the HERO-style baseline, as HERO / VALUE StarterCode define them.

* Retrieval ranking (HERO Eq. for VSM / VCMR, video level): hinge ``l(q, v, v⁻) = max(0, δ + s(q, v⁻) - s(q, v))``
  over negative videos (``neg_ctx``) and ``max(0, δ + s(q⁻, v) - s(q, v))`` over negative queries (``neg_q``),
  margin ``δ = 0.1``, every in-batch negative, each direction weighted (TVR: 8 and 8; YC2R / VATEX-EN-R: 10 and
  10). Hard negative mining after a start step: the ``hard_pool`` highest-scoring negatives weigh
  ``hard_weight`` (10), the others 0.1.
* Moment localisation: ``CE(start) + CE(end)`` over the frames of the query's video, weight ``lw_st_ed`` (TVR 0.01),
  computed on a step only with probability ``1 - drop_svmr_prob`` (TVR 0.8).
* Multiple-choice QA: ``CE(choice) + lw_st_ed (CE(start) + CE(end)) / 2`` with ``lw_st_ed = 0.4``; VIOLIN's single
  statement: binary cross-entropy.
* Captioning: token cross-entropy against the label-smoothed target (``ε = 0.1``).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def hinge_ranking_loss(scores: torch.Tensor, same: torch.Tensor, margin: float = 0.1, hard_pool: int = 0,
                       hard_weight: float = 10.0, easy_weight: float = 0.1) -> torch.Tensor:
    """Mean over queries of the mean over negatives of ``max(0, δ + s_neg - s_pos)``.

    ``scores (B, B)``: row ``i`` scores positive ``i`` (diagonal) against candidates ``j``; ``same (B, B)`` marks
    pairs that are not negatives (the diagonal, and other queries of the same video). ``hard_pool > 0``: the
    ``hard_pool`` highest-scoring negatives of a row weigh ``hard_weight``, the others ``easy_weight``.
    """
    pos = scores.diagonal().unsqueeze(1)
    loss = (margin + scores - pos).clamp(min=0)
    valid = ~same
    weight = valid.float()
    if hard_pool > 0:
        ranked = scores.masked_fill(same, float("-inf")).argsort(1, descending=True)
        rank = torch.empty_like(ranked)
        rank.scatter_(1, ranked, torch.arange(scores.shape[1], device=scores.device).expand_as(ranked))
        weight = torch.where(rank < hard_pool, hard_weight, easy_weight) * valid
    count = valid.sum(1).clamp(min=1)
    return ((loss * weight).sum(1) / count).mean()


def retrieval_loss(scores: torch.Tensor, same: torch.Tensor, margin: float, lw_neg_ctx: float, lw_neg_q: float,
                   hard_pool: int = 0, hard_weight: float = 10.0) -> torch.Tensor:
    """``lw_neg_ctx · L(q, v, v⁻) + lw_neg_q · L(q, v, q⁻)``; ``scores[i, j] = s(q_i, v_j)``."""
    neg_ctx = hinge_ranking_loss(scores, same, margin, hard_pool, hard_weight)
    neg_q = hinge_ranking_loss(scores.T, same.T, margin, hard_pool, hard_weight)
    return lw_neg_ctx * neg_ctx + lw_neg_q * neg_q


def span_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, start: torch.Tensor,
              end: torch.Tensor) -> torch.Tensor:
    """``CE(start) + CE(end)`` over frames; targets -1 are ignored (0 when every target is)."""
    keep = start >= 0
    if not bool(keep.any()):
        return start_logits.sum() * 0.0
    return (F.cross_entropy(start_logits[keep], start[keep]) + F.cross_entropy(end_logits[keep], end[keep]))


def choice_loss(logits: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over candidates; one candidate (VIOLIN) -> binary cross-entropy on its logit."""
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], answer.float())
    return F.cross_entropy(logits, answer)


def caption_loss(logits: torch.Tensor, targets: torch.Tensor, smoothing: float = 0.1) -> torch.Tensor:
    """``-Σ_w q(w) log p(w)`` with ``q = (1 - ε) onehot + ε / V``, averaged over non-padding target tokens."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=0, label_smoothing=smoothing)
