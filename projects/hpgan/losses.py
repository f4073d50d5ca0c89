"""HP-GAN's losses, as the official code computes them (ebarsoum/hpgan ``train_hpgan.py``, ``braniac/nn``); the
paper's text (and so its equation numbers) was not reachable here, so the formulas below are the code's.

Generator:  L_G = −E[D(x_obs ⊕ G(x_obs, z))] + 0.001 · L_cons + 0.01 · L_bone
Critic:     L_D = E[D(fake)] − E[D(real)] + 10 · GP   (+ weight decay 0.001 on the critic's weights)
Quality:    L_Q = −E[log σ(Q(real))] − E[log(1 − σ(Q(fake)))]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss E[D(fake)] − E[D(real)] (its negation estimates the Wasserstein distance)."""
    return fake_scores.mean() - real_scores.mean()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     alpha: torch.Tensor | float | None = None) -> torch.Tensor:
    """GP = E_{b,t}[(‖∂D(x̂)/∂x̂_{b,t}‖₂ − 1)²] with x̂ = α·real + (1 − α)·fake over all frames (B, T, J, 3).

    As the official code does and unlike Gulrajani et al.: one α ~ U(0, 1) for the whole batch (not one per
    sample), and the gradient norm taken per frame over its J × 3 coordinates (not per sample over the
    whole sequence), averaged over samples and frames; the observed frames, where real = fake, count too."""
    if alpha is None:
        alpha = torch.rand((), device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    norms = grad.flatten(2).norm(dim=2)  # (B, T)
    return ((norms - 1) ** 2).mean()


def bone_lengths(poses: torch.Tensor, bones: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Lengths (..., n_bones) of the (parent, child) bones of poses (..., J, 3)."""
    parents, children = zip(*bones, strict=True)
    return (poses[..., list(children), :] - poses[..., list(parents), :]).norm(dim=-1)


def bone_loss(predicted: torch.Tensor, last_observed: torch.Tensor, bones: Sequence[tuple[int, int]]) -> torch.Tensor:
    """L_bone = Σ_{b,t,k} |ℓ_k(x_b,obs) − ℓ_k(x̂_{b,t})| / (ℓ_k(x_b,obs) + 1e-5) / (B · T_pred).

    Each predicted bone against its length in the last observed pose, summed over the bones and averaged over
    the batch and the predicted frames, as the official code normalises it. ``predicted`` (B, T, J, 3),
    ``last_observed`` (B, J, 3)."""
    reference = bone_lengths(last_observed, bones)[:, None]  # (B, 1, n_bones)
    relative = (reference - bone_lengths(predicted, bones)).abs() / (reference + 1e-5)
    return relative.sum() / (predicted.shape[0] * predicted.shape[1])


def consistency_loss(predicted: torch.Tensor, last_observed: torch.Tensor) -> torch.Tensor:
    """L_cons = max(1e-4, ‖x̂_{1..T} − x̂_{0..T−1}‖_F / (B · T_pred)), x̂_0 the last observed pose; the Frobenius
    norm is over the whole batch of frame-to-frame differences (not squared), as the official code has it."""
    previous = torch.cat([last_observed[:, None], predicted[:, :-1]], dim=1)
    return torch.clamp((predicted - previous).norm() / (predicted.shape[0] * predicted.shape[1]), min=1e-4)


def generator_loss(fake_scores: torch.Tensor, predicted: torch.Tensor, last_observed: torch.Tensor,
                   bones: Sequence[tuple[int, int]], consistency_weight: float = 0.001,
                   bone_weight: float = 0.01) -> dict[str, torch.Tensor]:
    """L_G and its parts: adversarial −E[D(fake)], consistency and bone terms with the paper's weights."""
    adversarial = -fake_scores.mean()
    consistency = consistency_loss(predicted, last_observed)
    bone = bone_loss(predicted, last_observed, bones)
    total = adversarial + consistency_weight * consistency + bone_weight * bone
    return {"loss": total, "adversarial": adversarial, "consistency": consistency, "bone": bone}


def quality_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the motion-quality network: real sequences 1, generated ones 0
    (the sum of the two means, as the official code writes it)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
