"""The online tracking runner: track life cycle, the two baselines and STGT's cascade association.

Every tracker here shares one life cycle (ByteTrack's), so that the comparison is about association alone:

* each track carries a :class:`~projects.stgt.kalman.KalmanBox`, predicted one frame ahead before association;
* a detection matched to a track updates its filter; a track born from an unmatched detection is *tentative*
  and becomes *tracked* when matched again in the next frame (in the first frame it is tracked at once); a
  tentative track that misses that frame is dropped;
* a tracked track that is not matched becomes *lost*; it can be re-activated by a later match; it dies after
  ``max_age`` frames without one;
* births: unmatched detections with score >= ``birth_score``;
* output: the updated box of every tracked track matched in the frame.

Associations (``method``):

* ``sort``: detections with score >= ``high_score`` against all tracks, IoU of the predicted boxes, Hungarian,
  a pair needs IoU >= ``iou_high`` (SORT, Bewley et al. 2016, with the life cycle above);
* ``byte``: ByteTrack's two stages (Zhang et al. 2022): high-score detections against tracked + lost tracks
  (IoU >= ``iou_high``), then low-score detections (``low_score`` <= s < ``high_score``) against the tracked
  tracks left (IoU >= ``iou_low``), then tentative tracks against the high-score detections left;
* ``stgt``: the paper's cascade (its section 4.4; :meth:`Tracker._associate_stgt`): Match-with-Motion (long,
  unbroken tracks against every candidate by Kalman IoU >= 0.75), then the graph transformer on the high-score
  candidates and the tracks seen within its window, then long-occluded tracks by the distance of box
  top-centres (plus the embeddings' distance when detections carry embeddings), then duplicate removal;
* ``stgt_nomotion``, ``stgt_nolongterm``: the paper's ablations without the first / the third stage;
* ``stgt_nocascade``: the graph transformer alone (high-score candidates, tracks seen within the window; no
  Match-with-Motion, no long-term stage, no duplicate removal).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from projects.stgt.evaluate import box_iou
from projects.stgt.kalman import KalmanBox
from projects.stgt.mot import Sequence

METHODS = ("sort", "byte", "stgt", "stgt_nomotion", "stgt_nolongterm", "stgt_nocascade")


@dataclass
class TrackerConfig:
    """Thresholds of the association stages and of the life cycle (ByteTrack's MOT17 values)."""

    high_score: float = 0.6
    low_score: float = 0.1
    birth_score: float = 0.7
    iou_high: float = 0.2
    iou_low: float = 0.5
    iou_tentative: float = 0.3
    max_age: int = 30
    motion_frames: int = 15
    iou_motion: float = 0.75
    min_prob: float = 0.5
    max_dtop: float = 0.5
    max_appearance: float = 0.8  # with embeddings, the long-term cost may reach max_dtop + max_appearance
    duplicate_cover: float = 0.7


@dataclass
class Track:
    track_id: int
    kf: KalmanBox
    score: float
    state: str = "tentative"  # tentative | tracked | lost
    last_frame: int = 0
    streak: int = 1  # consecutive frames matched, up to last_frame
    history: list = field(default_factory=list)  # (frame, box xywh, score[, embedding]) of every matched detection

    @property
    def box(self) -> np.ndarray:
        return self.kf.box


def hungarian(score: np.ndarray, threshold: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Maximum-score one-to-one matching; a pair is kept only if its score >= ``threshold``.

    Returns the matched (row, column) pairs and the unmatched rows and columns. No row or column is used twice
    (``scipy.optimize.linear_sum_assignment`` on ``-score``).
    """
    n, m = score.shape
    if n == 0 or m == 0:
        return [], list(range(n)), list(range(m))
    rows, cols = linear_sum_assignment(-score)
    pairs = [(r, c) for r, c in zip(rows, cols, strict=True) if score[r, c] >= threshold]
    used_r, used_c = {r for r, _ in pairs}, {c for _, c in pairs}
    return pairs, [r for r in range(n) if r not in used_r], [c for c in range(m) if c not in used_c]


class Tracker:
    """Online multi-object tracker; ``model`` (an :class:`~projects.stgt.nets.STGT`) is needed by ``stgt*``."""

    def __init__(self, method: str = "byte", config: TrackerConfig | None = None, model=None,
                 window: int | None = None, image_size: tuple[float, float] = (1920.0, 1080.0)):
        if method not in METHODS:
            raise ValueError(f"unknown association {method!r}; choose one of {', '.join(METHODS)}")
        if method.startswith("stgt") and model is None:
            raise ValueError(f"association {method!r} needs a trained STGT model (--ckpt)")
        self.method, self.cfg, self.model = method, config or TrackerConfig(), model
        self.window = window or (model.window if model is not None else 10)
        self.image_size = image_size
        self.tracks: list[Track] = []
        self.feats: np.ndarray | None = None  # the current frame's embeddings, if any
        self.appearance: bool | None = None  # whether frames come with embeddings (set by the first step)
        self.next_id = 1
        self.frame = 0

    # ------------------------------------------------------------------ life cycle
    def step(self, frame: int, dets: np.ndarray, feats: np.ndarray | None = None
             ) -> list[tuple[int, np.ndarray, float]]:
        """Advance to ``frame`` with its detections ``(K, 5)`` (left, top, w, h, score) and, optionally, their
        appearance embeddings ``(K, A)``; returns the ``(id, box, score)`` of every track reported in this
        frame. Embeddings go into the tracks' histories (the transformer's inputs) and the long-term stage."""
        self.frame = frame
        dets = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
        if feats is not None and len(feats) != len(dets):
            raise ValueError(f"frame {frame}: {len(feats)} embeddings for {len(dets)} detections")
        if self.appearance is None:
            self.appearance = feats is not None
        elif self.appearance != (feats is not None):
            had = "had them" if self.appearance else "had none"
            raise ValueError(f"frame {frame}: embeddings {'missing' if self.appearance else 'given'}, but earlier "
                             f"frames {had}; give them in every frame or in none")
        keep = dets[:, 4] >= self.cfg.low_score
        dets = dets[keep]
        self.feats = None if feats is None else np.asarray(feats, dtype=np.float64)[keep]
        for t in self.tracks:
            t.kf.predict()
        matches, unmatched = getattr(self, f"_associate_{self.method.split('_')[0]}")(dets)
        matched_tracks = set()
        for t, d in matches:
            t.kf.update(dets[d, :4])
            t.score = float(dets[d, 4])
            t.history.append(self._entry(frame, dets, d))
            t.streak = t.streak + 1 if t.last_frame == frame - 1 else 1
            t.last_frame = frame
            t.state = "tracked"
            matched_tracks.add(t.track_id)
        survivors = []
        for t in self.tracks:
            if t.track_id not in matched_tracks:
                if t.state == "tentative":
                    continue
                t.state = "lost"
                if frame - t.last_frame > self.cfg.max_age:
                    continue
            survivors.append(t)
        self.tracks = survivors
        births = [d for d in unmatched if dets[d, 4] >= self.cfg.birth_score]
        for d in births:
            t = Track(self.next_id, KalmanBox(dets[d, :4]), float(dets[d, 4]), last_frame=frame,
                      state="tracked" if frame == 1 else "tentative",
                      history=[self._entry(frame, dets, d)])
            self.next_id += 1
            self.tracks.append(t)
        return [(t.track_id, t.box, t.score) for t in self.tracks if t.state == "tracked" and t.last_frame == frame]

    def _entry(self, frame: int, dets: np.ndarray, d: int) -> tuple:
        """A history entry: (frame, box, score[, embedding])."""
        entry = (frame, dets[d, :4].copy(), float(dets[d, 4]))
        return entry if self.feats is None else (*entry, self.feats[d].copy())

    def run(self, seq: Sequence) -> np.ndarray:
        """Track a whole sequence; rows ``frame, id, left, top, w, h, score`` (the MOT result layout)."""
        self.image_size = (float(seq.width), float(seq.height))
        rows = []
        for frame in range(1, seq.length + 1):
            for tid, box, score in self.step(frame, seq.frame_det(frame), seq.frame_feat(frame)):
                rows.append((frame, tid, *box, score))
        return np.asarray(rows, dtype=np.float64).reshape(-1, 7)

    # ------------------------------------------------------------------ helpers
    def _iou_match(self, tracks: list[Track], dets: np.ndarray, idx: list[int], threshold: float):
        iou = box_iou(np.array([t.box for t in tracks]).reshape(-1, 4), dets[idx, :4])
        pairs, rest_t, rest_d = hungarian(iou, threshold)
        return [(tracks[r], idx[c]) for r, c in pairs], [tracks[r] for r in rest_t], [idx[c] for c in rest_d]

    def _split(self, dets: np.ndarray) -> tuple[list[int], list[int]]:
        high = [i for i in range(len(dets)) if dets[i, 4] >= self.cfg.high_score]
        low = [i for i in range(len(dets)) if dets[i, 4] < self.cfg.high_score]
        return high, low

    # ------------------------------------------------------------------ associations
    def _associate_sort(self, dets: np.ndarray):
        high, _ = self._split(dets)
        matches, _, rest = self._iou_match(self.tracks, dets, high, self.cfg.iou_high)
        return matches, rest

    def _associate_byte(self, dets: np.ndarray):
        high, low = self._split(dets)
        confirmed = [t for t in self.tracks if t.state != "tentative"]
        tentative = [t for t in self.tracks if t.state == "tentative"]
        m1, rest_t, rest_high = self._iou_match(confirmed, dets, high, self.cfg.iou_high)
        tracked_left = [t for t in rest_t if t.state == "tracked"]
        m2, _, _ = self._iou_match(tracked_left, dets, low, self.cfg.iou_low)
        m3, _, rest_high = self._iou_match(tentative, dets, rest_high, self.cfg.iou_tentative)
        return m1 + m2 + m3, rest_high

    def _associate_stgt(self, dets: np.ndarray):
        """The cascade of the paper's section 4.4 (stages switched off by the ablation methods).

        1. Match-with-Motion: tracks matched in each of the last ``motion_frames`` frames against every
           candidate, IoU of the Kalman prediction >= ``iou_motion`` (Hungarian); then candidates scoring below
           ``high_score`` are dropped.
        2. The graph transformer: tracks matched within the last ``window`` frames (tentative ones included)
           against the candidates left; Hungarian on the detection rows' probabilities of the tracklet columns,
           a pair needs probability >= ``min_prob``.
        3. Long-term occlusion: tracks unmatched for longer than the window against the candidates left, cost
           ``D_top`` (distance of the top-centres of the track's last matched box and the candidate, over the
           track's height), plus the Euclidean distance of the embeddings when there are some (the paper's
           cost); a pair needs a cost <= ``max_dtop`` (+ ``max_appearance`` with embeddings).
        4. Duplicates: an unmatched candidate covered by a matched box (intersection / its own area >
           ``duplicate_cover``) is deleted; the rest may start tracks.
        """
        motion, long_term = self.method in ("stgt", "stgt_nolongterm"), self.method in ("stgt", "stgt_nomotion")
        dedup = self.method != "stgt_nocascade"
        cand = list(range(len(dets)))
        matches, tracks = [], list(self.tracks)
        if motion:
            stable = [t for t in tracks if t.streak >= self.cfg.motion_frames and t.last_frame == self.frame - 1]
            matches, rest, cand = self._iou_match(stable, dets, cand, self.cfg.iou_motion)
            tracks = [t for t in tracks if t not in stable] + rest
        cand = [d for d in cand if dets[d, 4] >= self.cfg.high_score]
        recent = [t for t in tracks if self.frame - t.last_frame <= self.window]
        m2, _, cand = self._model_match(recent, dets, cand)
        matches += m2
        if long_term:
            old = [t for t in tracks if self.frame - t.last_frame > self.window]
            m3, _, cand = self._top_match(old, dets, cand)
            matches += m3
        if dedup and matches and cand:
            matched = np.array([dets[d, :4] for _, d in matches])
            cover = _intersection(dets[cand, :4], matched) / np.maximum(dets[cand, 2] * dets[cand, 3], 1e-9)[:, None]
            cand = [d for d, c in zip(cand, cover.max(1), strict=True) if c <= self.cfg.duplicate_cover]
        return matches, cand

    def _top_match(self, tracks: list[Track], dets: np.ndarray, idx: list[int]):
        if not tracks or not idx:
            return [], tracks, idx
        last = np.array([t.history[-1][1] for t in tracks])
        d = dets[idx, :4]
        top_t = np.stack([last[:, 0] + last[:, 2] / 2, last[:, 1]], 1)
        top_d = np.stack([d[:, 0] + d[:, 2] / 2, d[:, 1]], 1)
        cost = np.linalg.norm(top_t[:, None] - top_d[None], axis=-1) / last[:, 3:4]  # D_top
        if self.feats is not None:
            feat_t = np.array([t.history[-1][3] for t in tracks])
            cost = cost + np.linalg.norm(feat_t[:, None] - self.feats[idx][None], axis=-1)
        limit = self.cfg.max_dtop + (self.cfg.max_appearance if self.feats is not None else 0.0)
        pairs, rest_t, rest_d = hungarian(-cost, -limit)
        return [(tracks[r], idx[c]) for r, c in pairs], [tracks[r] for r in rest_t], [idx[c] for c in rest_d]

    def _model_match(self, tracks: list[Track], dets: np.ndarray, idx: list[int]):
        """Stage 2: the graph transformer's assignment of ``dets[idx]`` to ``tracks``."""
        if not tracks or not idx:
            return [], tracks, idx
        from projects.stgt.nets import tracklet_tensors

        inputs = tracklet_tensors([t.history for t in tracks], dets[idx], self.frame, self.window, self.image_size,
                                  None if self.feats is None else self.feats[idx])
        device = next(iter(self.model.parameters()), torch.zeros(0)).device
        inputs = {k: v.to(device) for k, v in inputs.items()}
        self.model.eval()
        with torch.no_grad():
            det_prob, _ = self.model.assignment(**inputs)
        prob = det_prob[0, :, :-1].T.cpu().numpy()  # (tracks, detections)
        pairs, rest_t, rest_d = hungarian(prob, self.cfg.min_prob)
        return [(tracks[r], idx[c]) for r, c in pairs], [tracks[r] for r in rest_t], [idx[c] for c in rest_d]


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection areas of boxes (left, top, w, h) ``a`` (n, 4) and ``b`` (m, 4)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])
    return np.clip(rb - lt, 0, None).prod(-1)
