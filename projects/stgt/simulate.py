"""Detections made from ground truth, and synthetic pedestrian scenes, both in the MOTChallenge layout.

The embedded default of this paper is the real TUD-Campus / TUD-Stadtmitte ground truth shipped in ``motmetrics``
(no images, so no real detector can run on it). :class:`DetectorSimulator` turns ground truth into the
detections a pedestrian detector would give, with the failure modes the paper's cascade is built for:

* **occlusion**: each box's occluded fraction ``o`` is the part of it covered by boxes whose bottom edge is lower
  in the image (nearer the camera), measured on a 16 x 8 grid of points inside the box;
* **misses**: a box is detected with probability ``(1 - miss_rate) * (1 - o) ** occlusion_power``; occluded
  people drop out first;
* **scores**: ``clip(score_mean - score_occlusion * o + N(0, score_std), 0.01, 1)``, so partly occluded people
  get the low scores a two-stage (high / low score) association is meant to recover;
* **box noise**: centre ``+ N(0, pos_std * h)``, width and height ``* exp(N(0, size_std))``;
* **false positives**: ``Poisson(fp_per_frame)`` boxes a frame, pedestrian-shaped (height drawn from the
  sequence's own heights times ``exp(N(0, 0.1))``, width 0.41 h) anywhere in the image, scores
  ``U(fp_score_low, fp_score_high)``;
* **appearance embeddings** (``embedding_dim`` > 0, off by default): a re-ID network simulated as one random
  unit vector ``p_id`` per person (fixed by the sequence's name and the id) and, per detection,
  ``normalise(p_id + σ ε / √(1 - o))``, ``ε ~ N(0, I / A)``, ``σ = embedding_noise``: occluded boxes give
  noisier embeddings; a false positive gets a random unit vector. They come from a random stream of their own,
  so the boxes are the same with or without them.

:func:`synthetic_sequence` makes ground truth to train on: pedestrians walking at constant velocity with small
accelerations across a 640 x 480 view at 25 fps (TUD's size and rate), height growing with the image row
(a ground plane seen from above), entering and leaving at the borders; visibility from the same occlusion
model, MOT16 classes (all pedestrians).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from projects.stgt.mot import Sequence


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def occlusion(boxes: np.ndarray, grid: tuple[int, int] = (16, 8)) -> np.ndarray:
    """Occluded fraction of each box (left, top, w, h) by the boxes whose bottom edge is lower (nearer)."""
    n = len(boxes)
    if n == 0:
        return np.zeros(0)
    gy, gx = grid
    u = (np.arange(gx) + 0.5) / gx
    v = (np.arange(gy) + 0.5) / gy
    px = boxes[:, None, None, 0] + u[None, None, :] * boxes[:, None, None, 2]  # (n, 1, gx)
    py = boxes[:, None, None, 1] + v[None, :, None] * boxes[:, None, None, 3]  # (n, gy, 1)
    px, py = np.broadcast_arrays(px, py)  # (n, gy, gx)
    bottom = boxes[:, 1] + boxes[:, 3]
    covered = np.zeros(px.shape, dtype=bool)
    for j in range(n):
        front = bottom[j] > bottom  # box j is nearer than box i
        front[j] = False
        if not front.any():
            continue
        inside = ((px >= boxes[j, 0]) & (px <= boxes[j, 0] + boxes[j, 2])
                  & (py >= boxes[j, 1]) & (py <= boxes[j, 1] + boxes[j, 3]))
        covered |= inside & front[:, None, None]
    return covered.mean(axis=(1, 2))


@dataclass
class DetectorSimulator:
    """A pedestrian detector simulated from ground truth (see the module docstring for each term)."""

    miss_rate: float = 0.08
    occlusion_power: float = 1.5
    score_mean: float = 0.9
    score_occlusion: float = 0.7
    score_std: float = 0.08
    pos_std: float = 0.04
    size_std: float = 0.06
    fp_per_frame: float = 0.5
    fp_score_low: float = 0.05
    fp_score_high: float = 0.65
    embedding_dim: int = 0
    embedding_noise: float = 0.5

    def __call__(self, seq: Sequence, seed: int) -> Sequence:
        """``seq`` with ``det`` replaced by simulated detections drawn from its ground truth with ``seed``."""
        if seq.gt is None:
            raise ValueError(f"sequence {seq.name} has no ground truth to simulate detections from")
        rng = np.random.default_rng(seed)
        emb_rng = np.random.default_rng([seed, 1])  # its own stream: turning embeddings on leaves the boxes as they are
        gt = seq.gt[(seq.gt[:, 6] != 0) & np.isin(seq.gt[:, 7], (1, -1))]
        heights = gt[:, 5] if len(gt) else np.array([100.0])
        rows, feats = [], []
        for frame in range(1, seq.length + 1):
            in_frame = gt[gt[:, 0] == frame]
            boxes = in_frame[:, 2:6]
            occ = occlusion(boxes)
            keep = rng.random(len(boxes)) < (1 - self.miss_rate) * (1 - occ) ** self.occlusion_power
            b, o = boxes[keep], occ[keep]
            cx = b[:, 0] + b[:, 2] / 2 + rng.normal(0, self.pos_std, len(b)) * b[:, 3]
            cy = b[:, 1] + b[:, 3] / 2 + rng.normal(0, self.pos_std, len(b)) * b[:, 3]
            w = b[:, 2] * np.exp(rng.normal(0, self.size_std, len(b)))
            h = b[:, 3] * np.exp(rng.normal(0, self.size_std, len(b)))
            s = np.clip(self.score_mean - self.score_occlusion * o + rng.normal(0, self.score_std, len(b)), 0.01, 1)
            n_fp = rng.poisson(self.fp_per_frame)
            fh = rng.choice(heights, n_fp) * np.exp(rng.normal(0, 0.1, n_fp))
            fw = 0.41 * fh
            fx = rng.uniform(0, max(seq.width - 1.0, 1.0), n_fp) - fw / 2
            fy = rng.uniform(0, max(seq.height - 1.0, 1.0), n_fp) - fh / 2
            fs = rng.uniform(self.fp_score_low, self.fp_score_high, n_fp)
            det = np.concatenate([np.stack([cx - w / 2, cy - h / 2, w, h, s], 1),
                                  np.stack([fx, fy, fw, fh, fs], 1)])
            rows.append(np.concatenate([np.full((len(det), 1), frame), det], 1))
            if self.embedding_dim:
                feats.append(np.concatenate([self.embed(seq.name, in_frame[keep, 1], o, emb_rng),
                                             _unit(emb_rng.normal(size=(n_fp, self.embedding_dim)))]))
        det = np.concatenate(rows) if rows else np.zeros((0, 6))
        feat = (np.concatenate(feats) if feats else np.zeros((0, self.embedding_dim))) if self.embedding_dim else None
        return Sequence(name=seq.name, frame_rate=seq.frame_rate, length=seq.length, width=seq.width,
                        height=seq.height, det=det, gt=seq.gt, det_feat=feat, image_dir=seq.image_dir,
                        image_ext=seq.image_ext)

    def embed(self, sequence: str, ids: np.ndarray, occluded: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Simulated re-ID embeddings of people ``ids`` of ``sequence`` with occluded fractions ``occluded``. A
        person's prototype is fixed by (sequence name, id), so people of different sequences (training scenes
        and test sequences) never share one."""
        key = zlib.crc32(sequence.encode())
        proto = np.array([_unit(np.random.default_rng([7, key, int(i)]).normal(size=self.embedding_dim))
                          for i in ids])
        proto = proto.reshape(len(ids), self.embedding_dim)  # (0, A) for a frame without detections
        noise = rng.normal(size=proto.shape) / np.sqrt(self.embedding_dim)
        scale = self.embedding_noise / np.sqrt(np.clip(1 - occluded, 0.05, 1))[:, None]
        return _unit(proto + scale * noise)


def synthetic_sequence(seed: int, length: int = 150, people: int = 12, width: int = 640, height: int = 480,
                       frame_rate: float = 25.0, name: str | None = None) -> Sequence:
    """Ground truth of a synthetic pedestrian scene (MOT16 layout: consider 1, class 1, visibility)."""
    rng = np.random.default_rng(seed)
    rows, next_id = [], 1
    horizon = 0.25 * height  # rows above the horizon hold no feet

    def spawn(start: int) -> dict:
        nonlocal next_id
        side = rng.integers(4)
        foot_y = rng.uniform(horizon + 0.2 * height, height * 1.02)
        speed = rng.uniform(0.6, 2.2) * (foot_y / height)  # px / frame, slower far away
        if side < 2:  # enter from the left or right border
            x = -20.0 if side == 0 else width + 20.0
            vx = speed if side == 0 else -speed
            vy = rng.normal(0, 0.25 * speed)
        else:  # appear somewhere inside (came out of a door, or already there)
            x = rng.uniform(0.1, 0.9) * width
            vx = rng.choice([-1, 1]) * speed
            vy = rng.normal(0, 0.25 * speed)
        person = {"id": next_id, "x": x, "y": foot_y, "vx": vx, "vy": vy, "start": start,
                  "scale": rng.uniform(0.85, 1.15)}
        next_id += 1
        return person

    active = [spawn(1) for _ in range(people)]
    for p in active:  # the first frame starts with people spread over the view
        p["x"] = rng.uniform(0.05, 0.95) * width
    for frame in range(1, length + 1):
        boxes, ids = [], []
        for p in active:
            h = p["scale"] * (40 + 260 * (p["y"] - horizon) / (height - horizon))
            w = 0.41 * h
            boxes.append((p["x"] - w / 2, p["y"] - h, w, h))
            ids.append(p["id"])
        boxes = np.asarray(boxes).reshape(-1, 4)
        vis = 1 - occlusion(boxes)
        for (x, y, w, h), i, v in zip(boxes, ids, vis, strict=True):
            inside = x + w > 0 and x < width and y + h > 0 and y < height
            if inside:
                rows.append((frame, i, x, y, w, h, 1, 1, v))
        survivors = []
        for p in active:
            p["vx"] += rng.normal(0, 0.05)
            p["vy"] = 0.9 * p["vy"] + rng.normal(0, 0.05)
            p["x"] += p["vx"]
            p["y"] = float(np.clip(p["y"] + p["vy"], horizon + 0.1 * height, 1.05 * height))
            if -60 < p["x"] < width + 60:
                survivors.append(p)
        active = survivors
        while len(active) < people and rng.random() < 0.3:
            active.append(spawn(frame + 1))
    gt = np.asarray(rows, dtype=np.float64).reshape(-1, 9)
    return Sequence(name=name or f"SYNTH-{seed:03d}", frame_rate=frame_rate, length=length, width=width,
                    height=height, gt=gt)
