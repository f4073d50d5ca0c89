"""Mesh Graphormer's training objective (paper Sec. 3.4, with the criteria and weights of the official code).

    L = w_J (L_3D(J_pred) + L_3D(R V_pred)) + w_V sum_l a_l L_V(V_pred^l) + w_V (L_2D(Π J_pred) + L_2D(Π R V_pred))

* ``L_V`` vertex loss at every mesh resolution l: ``mean |V - V_gt|`` (L1), over samples with a mesh;
* ``L_3D`` 3D joint loss on root-centred joints: ``mean c (J - J_gt)^2`` with per-joint confidence c, over samples
  with 3D joints; applied to the predicted joint tokens and to the joints ``R V`` regressed from the full mesh;
* ``L_2D`` reprojection loss ``mean c (Π(J) - j_gt)^2``, Π the weak-perspective projection
  (:func:`projects.meshgraphormer.nets.orthographic_projection`), both sets of joints again;
* weights: body w_J = 1000, w_V = 100, a = 1/3 per resolution; hand (the released FreiHAND script) w_J = w_V = 1,
  a = 1/2. The 2D term shares w_V, as the official code does.

The paper writes L1 for all terms; the official code uses squared errors for the joints (its author: "follow the
code"), and so do we.
"""

from __future__ import annotations

import torch


def _centre(x: torch.Tensor, root: list[int]) -> torch.Tensor:
    return x - x[:, root].mean(1, keepdim=True)


def vertex_loss(pred: torch.Tensor, gt: torch.Tensor, has_mesh: torch.Tensor) -> torch.Tensor:
    """``mean |V - V_gt|`` over the samples with ``has_mesh``; 0 when there is none."""
    sel = has_mesh.bool()
    if not sel.any():
        return pred.sum() * 0
    return (pred[sel] - gt[sel]).abs().mean()


def joint_3d_loss(pred: torch.Tensor, gt: torch.Tensor, conf: torch.Tensor, has_3d: torch.Tensor,
                  root: list[int]) -> torch.Tensor:
    """``mean c (J - J_gt)^2`` after centring both on the ``root`` joint(s), over the samples with ``has_3d``."""
    sel = has_3d.bool()
    if not sel.any():
        return pred.sum() * 0
    err = (_centre(pred[sel], root) - _centre(gt[sel], root)).pow(2)
    return (conf[sel, :, None] * err).mean()


def joint_2d_loss(pred: torch.Tensor, gt: torch.Tensor, conf: torch.Tensor) -> torch.Tensor:
    """``mean c (j - j_gt)^2`` on normalised image coordinates."""
    return (conf[..., None] * (pred - gt).pow(2)).mean()
