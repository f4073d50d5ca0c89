"""The 3D pose and mesh metrics of the official evaluation (Human3.6M / 3DPW protocols and FreiHAND's).

All take batched tensors ``pred`` and ``gt`` of shape (B, N, 3) in any one unit (the papers report millimetres)
and return one value per sample, shape (B,), in that unit; average over the batch for the tables.

* ``mpjpe``  mean per-joint position error, ``mean_n ||p_n - g_n||``, on root-centred inputs (centre them
  first: :func:`root_centre`);
* ``pa_mpjpe``  the same after the Procrustes (similarity: scale, rotation, translation) alignment of ``pred``
  to ``gt`` (:func:`procrustes_align`), as ``reconstruction_error`` of the official code;
* ``mpve``  mean per-vertex error, ``mean_v ||p_v - g_v||`` (3DPW's MPVE, after centring);
* ``pa_mpvpe``  ``mpve`` after the Procrustes alignment (FreiHAND's PA-MPVPE);
* ``f_score``  at distance ``threshold``: precision P = share of predicted points within ``threshold`` of
  the nearest ground-truth point, recall R = share of ground-truth points within ``threshold`` of the nearest
  predicted point, F = 2PR / (P + R) (0 when P = R = 0). FreiHAND's evaluation applies it to the
  Procrustes-aligned mesh (``align=True``); thresholds 5 mm and 15 mm.
"""

from __future__ import annotations

import torch


def _check(pred: torch.Tensor, gt: torch.Tensor, same_count: bool = True) -> None:
    n = 1 if not same_count else 2
    if pred.dim() != 3 or gt.dim() != 3 or pred.shape[-1] != 3 or gt.shape[-1] != 3 or \
            pred.shape[:n] != gt.shape[:n]:
        raise ValueError(f"pred and gt must both be (B, N, 3); got {tuple(pred.shape)} and {tuple(gt.shape)}")


def root_centre(points: torch.Tensor, root: int | list[int]) -> torch.Tensor:
    """Subtract the root (the mean of several indices for the pelvis = mid-hips of Human3.6M's 14 joints)."""
    idx = [root] if isinstance(root, int) else list(root)
    return points - points[:, idx].mean(1, keepdim=True)


def procrustes_align(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """``pred`` moved by the similarity transform ``s R x + t`` minimising ``sum ||s R p + t - g||^2`` (Umeyama):
    with centred X (pred) and Y (gt), ``X^T Y = U S V^T``, ``R = V diag(1, 1, det(V U^T)) U^T``,
    ``s = tr(diag(1, 1, ±1) S) / ||X||^2``, ``t = mean(g) - s R mean(p)``."""
    _check(pred, gt)
    p, g = pred.double(), gt.double()
    mp, mg = p.mean(1, keepdim=True), g.mean(1, keepdim=True)
    x, y = p - mp, g - mg
    u, s, vh = torch.linalg.svd(x.transpose(1, 2) @ y)
    v = vh.transpose(1, 2)
    sign = torch.sign(torch.linalg.det(v @ u.transpose(1, 2)))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    z = torch.ones_like(s)
    z[:, -1] = sign
    rot = v @ torch.diag_embed(z) @ u.transpose(1, 2)
    scale = (s * z).sum(1) / x.pow(2).sum((1, 2)).clamp(min=1e-30)
    aligned = scale[:, None, None] * x @ rot.transpose(1, 2) + mg
    return aligned.to(pred.dtype)


def mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error per sample, ``mean_n ||p_n - g_n||_2``."""
    _check(pred, gt)
    return (pred - gt).norm(dim=-1).mean(-1)


def pa_mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """MPJPE after the Procrustes alignment of ``pred`` to ``gt``."""
    return mpjpe(procrustes_align(pred, gt), gt)


def mpve(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean per-vertex error per sample, ``mean_v ||p_v - g_v||_2``."""
    return mpjpe(pred, gt)


def pa_mpvpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """MPVE after the Procrustes alignment of ``pred`` to ``gt``."""
    return mpjpe(procrustes_align(pred, gt), gt)


def f_score(pred: torch.Tensor, gt: torch.Tensor, threshold: float, align: bool = False) -> torch.Tensor:
    """F-score per sample at ``threshold`` (same unit as the points): ``2 P R / (P + R)`` with P and R the
    shares of predicted / ground-truth points whose nearest point in the other set is within ``threshold`` (the
    sets may differ in size unless ``align``).
    ``align=True`` Procrustes-aligns ``pred`` first, as FreiHAND's evaluation does."""
    _check(pred, gt, same_count=align)
    if align:
        pred = procrustes_align(pred, gt)
    d = torch.cdist(pred.double(), gt.double())
    precision = (d.min(2).values < threshold).double().mean(1)
    recall = (d.min(1).values < threshold).double().mean(1)
    total = precision + recall
    f = torch.where(total > 0, 2 * precision * recall / total.clamp(min=1e-30), torch.zeros_like(total))
    return f.to(pred.dtype)
