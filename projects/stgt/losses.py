"""The training loss on TransMOT's assignment matrix (paper section 4.3).

With logits ``A`` (M + 1) x (N + 1) (rows: detections, then the virtual sink; columns: tracklets, then the
virtual source), ``ā_m = softmax(A[m, :])`` over the N + 1 columns, ``a'_n = A[M, n]`` the sink row, ``y_m`` the
column of detection ``m``'s object (its tracklet, or the source for a new object or a false positive) and
``y^snk_n`` = 1 when tracklet ``n`` has no detection in the frame:

    L = -(1/M) Σ_m log ā_m[y_m]
        - (λ/N) Σ_n [ y^snk_n log σ(a'_n) + (1 - y^snk_n) log(1 - σ(a'_n)) ]

The first term is a cross-entropy over each detection row (a relaxed assignment: rows sum to one, columns need
not); the second is the multi-label soft-margin loss of the sink row. The paper prints the sink terms with a
"+" and gives no λ; the minus sign (a loss to minimise) and λ = 1 are ours. Over a batch, each term is averaged
over all the batch's detections (tracklets), padding excluded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def assignment_loss(logits: torch.Tensor, det_target: torch.Tensor, sink_target: torch.Tensor,
                    track_mask: torch.Tensor, det_mask: torch.Tensor, sink_weight: float = 1.0
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``logits`` (B, M + 1, N + 1); ``det_target`` (B, M) column index in ``0..N`` (N = the source, padding
    ignored); ``sink_target`` (B, N) in {0, 1}; masks (B, N) and (B, M). Returns the loss and its two terms."""
    n = logits.shape[-1] - 1
    col_mask = torch.cat([track_mask, torch.ones_like(track_mask[:, :1])], dim=1)
    rows = logits[:, :-1].masked_fill(~col_mask[:, None, :], -1e9)
    ce = F.cross_entropy(rows.reshape(-1, n + 1), det_target.reshape(-1), reduction="none").reshape(det_target.shape)
    det_term = (ce * det_mask).sum() / det_mask.sum().clamp(min=1)
    bce = F.binary_cross_entropy_with_logits(logits[:, -1, :-1], sink_target.to(logits.dtype), reduction="none")
    sink_term = (bce * track_mask).sum() / track_mask.sum().clamp(min=1)
    return det_term + sink_weight * sink_term, {"det": det_term.detach(), "sink": sink_term.detach()}
