"""Metrics of probabilistic motion prediction, with DLow's definitions (Khrylx/DLow ``motion_pred/eval.py``).

Shapes: ``samples`` (B, K, T, J, 3), K futures per observed sequence; ``gt`` (B, T, J, 3). Each frame's pose is
flattened to one vector of J·3 numbers; distances are L2 in the input's units; every function returns (B,).

* ADE = min_k (1/T) Σ_t ‖x̂_{k,t} − x_t‖₂
* FDE = min_k ‖x̂_{k,T} − x_T‖₂
* APD = 1/(K(K−1)) Σ_{i≠j} ‖x̂_i − x̂_j‖₂ over whole flattened samples (0 when K = 1)
* MPJPE at frame t: (1/J) Σ_j ‖x̂_{t,j} − x_{t,j}‖₂ (per joint, as Human3.6M papers report it)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _check(samples: torch.Tensor, gt: torch.Tensor) -> None:
    if samples.dim() != 5 or gt.dim() != 4 or samples.shape[:1] + samples.shape[2:] != gt.shape:
        raise ValueError(f"expected samples (B, K, T, J, 3) and gt (B, T, J, 3), got {tuple(samples.shape)} and "
                         f"{tuple(gt.shape)}")


def frame_distances(samples: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """‖x̂_{k,t} − x_t‖₂ over each frame's flattened pose: (B, K, T)."""
    _check(samples, gt)
    return (samples - gt[:, None]).flatten(3).norm(dim=-1)


def best_of_k_ade(samples: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Average displacement error of the best of the K samples: (B,)."""
    return frame_distances(samples, gt).mean(dim=2).min(dim=1).values


def best_of_k_fde(samples: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Final displacement error of the best of the K samples: (B,)."""
    return frame_distances(samples, gt)[..., -1].min(dim=1).values


def apd(samples: torch.Tensor) -> torch.Tensor:
    """Average pairwise distance between the K whole samples (diversity): (B,)."""
    if samples.dim() != 5:
        raise ValueError(f"expected samples (B, K, T, J, 3), got {tuple(samples.shape)}")
    k = samples.shape[1]
    if k < 2:
        return samples.new_zeros(samples.shape[0])
    flat = samples.flatten(2)
    distances = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")  # exact 0 for equal samples
    return distances.sum(dim=(1, 2)) / (k * (k - 1))


def mpjpe(predicted: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error per frame: (..., T, J, 3) → (..., T)."""
    return (predicted - gt).norm(dim=-1).mean(dim=-1)


def best_of_k_mpjpe(samples: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """MPJPE per frame (B, T) of the sample with the lowest ADE."""
    best = best_of_k_ade_index(samples, gt)
    return mpjpe(samples[torch.arange(len(samples)), best], gt)


def best_of_k_ade_index(samples: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Index (B,) of the sample with the lowest ADE."""
    return frame_distances(samples, gt).mean(dim=2).argmin(dim=1)


def zero_velocity(observed: torch.Tensor, n_pred: int) -> torch.Tensor:
    """The zero-velocity baseline: the last observed pose held for ``n_pred`` frames, (B, T_obs, J, 3) →
    (B, n_pred, J, 3)."""
    return observed[:, -1:].expand(-1, n_pred, -1, -1)


def horizon_frames(milliseconds: Sequence[float], fps: float, n_pred: int) -> dict[int, int]:
    """The predicted frame index (0-based) shown ``ms`` after the last observed frame, for each horizon that
    falls on a frame within ``n_pred`` (at 25 fps: 80 ms → 1, 160 → 3, 320 → 7, 400 → 9)."""
    out = {}
    for ms in milliseconds:
        frame = ms * fps / 1000.0
        if abs(frame - round(frame)) < 1e-6 and 1 <= round(frame) <= n_pred:
            out[int(ms)] = int(round(frame)) - 1
    return out
