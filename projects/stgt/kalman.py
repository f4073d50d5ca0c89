"""The constant-velocity Kalman filter of SORT / DeepSORT / ByteTrack, on (cx, cy, a, h) with a = w / h.

State ``x = (cx, cy, a, h, vcx, vcy, va, vh)``; motion ``x' = F x`` with ``F = [[I, I], [0, I]]`` (one frame);
observation ``z = H x`` with ``H = [I, 0]``. Noise scales with the box height as in DeepSORT:
process ``Q = diag(σp h, σp h, 1e-2, σp h, σv h, σv h, 1e-5, σv h)²`` and measurement
``R = diag(σp h, σp h, 1e-1, σp h)²`` with ``σp = 1/20``, ``σv = 1/160``.

Predict: ``x ← F x``, ``P ← F P Fᵀ + Q``. Update: ``K = P Hᵀ (H P Hᵀ + R)⁻¹``, ``x ← x + K (z − H x)``,
``P ← (I − K H) P``.
"""

from __future__ import annotations

import numpy as np

STD_POS = 1.0 / 20
STD_VEL = 1.0 / 160
_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)


def xywh_to_xyah(box: np.ndarray) -> np.ndarray:
    """(left, top, w, h) → (cx, cy, w / h, h)."""
    box = np.asarray(box, dtype=np.float64)
    return np.array([box[0] + box[2] / 2, box[1] + box[3] / 2, box[2] / max(box[3], 1e-6), box[3]])


def xyah_to_xywh(state: np.ndarray) -> np.ndarray:
    """(cx, cy, a, h, ...) → (left, top, w, h)."""
    cx, cy, a, h = state[:4]
    w = a * h
    return np.array([cx - w / 2, cy - h / 2, w, h])


class KalmanBox:
    """One box's Kalman filter; :meth:`predict` advances a frame, :meth:`update` folds in a measured box."""

    def __init__(self, box_xywh: np.ndarray):
        z = xywh_to_xyah(box_xywh)
        self.x = np.concatenate([z, np.zeros(4)])
        h = z[3]
        std = [2 * STD_POS * h, 2 * STD_POS * h, 1e-2, 2 * STD_POS * h,
               10 * STD_VEL * h, 10 * STD_VEL * h, 1e-5, 10 * STD_VEL * h]
        self.P = np.diag(np.square(std))

    def predict(self) -> np.ndarray:
        h = self.x[3]
        q = np.square([STD_POS * h, STD_POS * h, 1e-2, STD_POS * h, STD_VEL * h, STD_VEL * h, 1e-5, STD_VEL * h])
        self.x = _F @ self.x
        self.P = _F @ self.P @ _F.T + np.diag(q)
        return self.box

    def update(self, box_xywh: np.ndarray) -> np.ndarray:
        z = xywh_to_xyah(box_xywh)
        h = self.x[3]
        r = np.diag(np.square([STD_POS * h, STD_POS * h, 1e-1, STD_POS * h]))
        s = _H @ self.P @ _H.T + r
        k = np.linalg.solve(s, _H @ self.P).T  # P Hᵀ S⁻¹ (S symmetric)
        self.x = self.x + k @ (z - _H @ self.x)
        self.P = (np.eye(8) - k @ _H) @ self.P
        return self.box

    @property
    def box(self) -> np.ndarray:
        """The current estimate as (left, top, w, h)."""
        return xyah_to_xywh(self.x)
