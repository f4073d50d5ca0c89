"""AutoMix's losses (Liu et al. 2022, Sec. 3; openmixup's ``cls_mixup_head`` and ``PixelMixBlock.mask_loss``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mixup_cross_entropy(logits: torch.Tensor, y: torch.Tensor, index: torch.Tensor, lam: float) -> torch.Tensor:
    """ℓ_mix = λ · CE(ŷ, y) + (1 − λ) · CE(ŷ, y[index]): the label of a sample mixed with its partner
    ``index[i]``, weighted by each sample's share λ / 1 − λ of the mixed input."""
    return lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[index])


def mask_lambda_loss(mask: torch.Tensor, lam: float, margin: float = 0.1) -> torch.Tensor:
    """ℓ_mask = max(|mean(mask₀) − λ| − margin, 0): the Mix Block's share of the first sample, averaged over
    the whole batch and every pixel, must stay within ``margin`` of λ (openmixup's "L1" mode)."""
    return torch.clamp((mask[:, 0].mean() - lam).abs() - margin, min=0.0)
