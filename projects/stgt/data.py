"""Training samples for the graph transformer, from MOTChallenge sequences.

A sample is what the tracker's graph-transformer stage sees at frame ``t`` (paper section 4.3: clips of T + 1
frames, ground-truth boxes replaced by the detector's boxes matched to them by IoU):

* **tracklets**: every object with a matched detection in frames ``t - T .. t - 1``, as its matched detection
  boxes over those T frames (:func:`~projects.stgt.nets.tracklet_window`: a box carried forward over misses);
* **detections**: frame ``t``'s detections with score >= ``high_score`` (the candidates the cascade hands
  the transformer), false positives included;
* **targets**: each detection's tracklet, or the source (a new object or a false positive); per tracklet,
  whether it has no detection at ``t`` (the sink).

Data sources (:class:`MotDataModule`):

* appearance embeddings (``appearance_dim`` > 0) are appended to every box: read from the detection files'
  columns after the tenth, or simulated (:class:`~projects.stgt.simulate.DetectorSimulator`);
* embedded default (``root: null``): synthetic pedestrian scenes (:func:`~projects.stgt.simulate.synthetic_sequence`)
  with simulated detections, a different seed per sequence; validation on other seeds;
* a MOTChallenge split folder (``root: /data/MOT17/train``): the sequences' ground truth with their public
  detections (``det/det.txt``), or with simulated detections (``simulate: true``); validation on the last
  ``val_fraction`` of each sequence's frames. ``sequences`` picks folders by name or glob (``["*-FRCNN"]``:
  MOT17 ships each sequence three times, once per public detector).
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import lightning as L
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch.utils.data import Dataset

from projects.stgt.evaluate import box_iou
from projects.stgt.mot import Sequence, load_sequence
from projects.stgt.nets import box_features, tracklet_window
from projects.stgt.simulate import DetectorSimulator, synthetic_sequence
from shared.errors import CorruptDataError, DatasetNotFoundError
from shared.sampling import SplitLoaders, make_loader


def match_detections(seq: Sequence, min_iou: float = 0.5) -> np.ndarray:
    """The ground-truth id of every detection of ``seq`` (Hungarian on IoU per frame, IoU >= ``min_iou``;
    -1 for a false positive). Only pedestrians that are not zero-marked count (classless MOT15 rows too)."""
    ids = np.full(len(seq.det), -1, dtype=np.int64)
    gt = seq.gt[(seq.gt[:, 6] != 0) & np.isin(seq.gt[:, 7], (1, -1))]
    for frame in np.unique(seq.det[:, 0]):
        d_idx = np.flatnonzero(seq.det[:, 0] == frame)
        g = gt[gt[:, 0] == frame]
        if len(g) == 0:
            continue
        iou = box_iou(g[:, 2:6], seq.det[d_idx, 1:5])
        rows, cols = linear_sum_assignment(-iou)
        ok = iou[rows, cols] >= min_iou
        ids[d_idx[cols[ok]]] = g[rows[ok], 1].astype(np.int64)
    return ids


def sequence_samples(seq: Sequence, window: int, high_score: float = 0.6, low_score: float = 0.1,
                     frames: range | None = None) -> list[dict]:
    """The graph-transformer samples of every frame of ``seq`` (or of ``frames``) that has a tracklet or a
    detection (see the module docstring)."""
    ids = match_detections(seq)
    image = (float(seq.width), float(seq.height))
    keep = (seq.det[:, 5] >= low_score) & (ids >= 0)
    feat = seq.det_feat
    appearance = 0 if feat is None else feat.shape[1]
    histories: dict[int, list] = {}
    for k in np.flatnonzero(keep):
        entry = (int(seq.det[k, 0]), seq.det[k, 1:5], float(seq.det[k, 5]))
        histories.setdefault(int(ids[k]), []).append(entry if feat is None else (*entry, feat[k]))
    for h in histories.values():
        h.sort(key=lambda entry: entry[0])
    frames_of = {o: np.array([entry[0] for entry in h]) for o, h in histories.items()}
    frames = range(2, seq.length + 1) if frames is None else frames
    samples = []
    for t in frames:
        # an object is a tracklet at t if it has a matched detection in frames t - window .. t - 1
        alive = []
        for o, fr in frames_of.items():
            i = np.searchsorted(fr, t - window)
            if i < len(fr) and fr[i] < t:
                alive.append(o)
        cur = np.flatnonzero((seq.det[:, 0] == t) & (seq.det[:, 5] >= high_score))
        if not alive and not len(cur):
            continue
        tracks = np.zeros((len(alive), window, 4 + appearance), dtype=np.float32)
        for i, o in enumerate(alive):
            past = histories[o][:np.searchsorted(frames_of[o], t)]
            win = tracklet_window(past, t, window)
            tracks[i] = np.concatenate([box_features(win[:, :4], image), win[:, 4:]], 1)
        col = {o: i for i, o in enumerate(alive)}
        det_target = np.array([col.get(int(ids[d]), len(alive)) for d in cur], dtype=np.int64)
        sink = np.ones(len(alive), dtype=np.float32)
        sink[det_target[det_target < len(alive)]] = 0
        dets = box_features(seq.det[cur, 1:5], image)
        if feat is not None:
            dets = np.concatenate([dets, feat[cur]], 1)
        samples.append({"tracks": tracks, "dets": dets.astype(np.float32),
                        "det_target": det_target, "sink_target": sink})
    return samples


class AssignmentSamples(Dataset):
    def __init__(self, samples: list[dict]):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return self.samples[i]


def collate(samples: list[dict]) -> dict[str, torch.Tensor]:
    """Pad to the batch's largest N and M; masks mark the real tracklets and detections. A detection's
    source target ``N_i`` (its own sample's tracklet count) moves to the padded ``N``."""
    n = max(1, max(len(s["tracks"]) for s in samples))
    m = max(1, max(len(s["dets"]) for s in samples))
    b, t, feat = len(samples), samples[0]["tracks"].shape[1], samples[0]["tracks"].shape[2]  # (N, T, F), N may be 0
    out = {"tracks": torch.zeros(b, n, t, feat), "track_mask": torch.zeros(b, n, dtype=torch.bool),
           "dets": torch.zeros(b, m, feat), "det_mask": torch.zeros(b, m, dtype=torch.bool),
           "det_target": torch.full((b, m), n, dtype=torch.long), "sink_target": torch.zeros(b, n)}
    for i, s in enumerate(samples):
        k, j = len(s["tracks"]), len(s["dets"])
        out["tracks"][i, :k] = torch.from_numpy(s["tracks"])
        out["track_mask"][i, :k] = True
        out["dets"][i, :j] = torch.from_numpy(s["dets"])
        out["det_mask"][i, :j] = True
        target = torch.from_numpy(s["det_target"])
        out["det_target"][i, :j] = torch.where(target >= k, torch.full_like(target, n), target)
        out["sink_target"][i, :k] = torch.from_numpy(s["sink_target"])
    return out


class MotDataModule(SplitLoaders, L.LightningDataModule):
    """Graph-transformer samples from synthetic scenes (``root: null``) or a MOTChallenge split folder."""

    def __init__(self, root: str | None = None, sequences: list[str] | None = None, simulate: bool = False,
                 window: int = 5, high_score: float = 0.6, low_score: float = 0.1, train_sequences: int = 16,
                 val_sequences: int = 4, sequence_length: int = 150, people: int = 12, val_fraction: float = 0.2,
                 appearance_dim: int = 0, batch_size: int = 32, num_workers: int = 0, seed: int | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.detector = DetectorSimulator(embedding_dim=appearance_dim)

    def _loader(self, dataset, shuffle: bool):
        hp = self.hparams
        return make_loader(dataset, hp.batch_size, shuffle, hp.num_workers, hp.seed, collate_fn=collate)

    def _samples(self, seqs: list[Sequence], frames=None) -> list[dict]:
        """Every sample of ``seqs`` (``frames(seq)``: which frames of each; default all)."""
        hp = self.hparams
        out = []
        for s in seqs:
            out += sequence_samples(s, hp.window, hp.high_score, hp.low_score, frames(s) if frames else None)
        return out

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "train_set"):
            return
        hp = self.hparams
        if hp.root is None:
            def scene(i: int) -> Sequence:
                return self.detector(synthetic_sequence(1000 + i, hp.sequence_length, hp.people), seed=i)

            train = [scene(i) for i in range(hp.train_sequences)]
            val = [scene(hp.train_sequences + i) for i in range(hp.val_sequences)]
            self.train_set = AssignmentSamples(self._samples(train))
            self.val_set = AssignmentSamples(self._samples(val))
            return
        seqs = [self.detector(s, seed=i) if hp.simulate else s for i, s in enumerate(self.load_sequences())]
        for s, folder in zip(seqs, self.folders, strict=True):
            if not len(s.det):
                raise DatasetNotFoundError(f"{folder}: no detections (det/det.txt); give them, or set "
                                           "data.init_args.simulate=true to simulate them from the ground truth")
            found = 0 if s.det_feat is None else s.det_feat.shape[1]
            if found != hp.appearance_dim:
                raise CorruptDataError(
                    f"{folder / 'det' / 'det.txt'}: {found} embedding columns after the tenth, but "
                    f"data.init_args.appearance_dim={hp.appearance_dim}; set it (and model.appearance_dim) to {found}")

        def split(s: Sequence, train: bool) -> range:
            cut = int(s.length * (1 - hp.val_fraction))
            return range(2, cut + 1) if train else range(cut + 1, s.length + 1)

        self.train_set = AssignmentSamples(self._samples(seqs, lambda s: split(s, True)))
        self.val_set = AssignmentSamples(self._samples(seqs, lambda s: split(s, False)))
        if not len(self.train_set) or not len(self.val_set):
            raise DatasetNotFoundError(
                f"{hp.root}: {len(self.train_set)} training and {len(self.val_set)} validation samples with "
                f"data.init_args.val_fraction={hp.val_fraction}; the sequences are too short for this split, or "
                "have no detections scoring >= data.init_args.high_score")

    def load_sequences(self) -> list[Sequence]:
        hp = self.hparams
        root = Path(hp.root)
        if not root.is_dir():
            raise DatasetNotFoundError(f"data.init_args.root={root} is not a folder: give a MOTChallenge split "
                                       "folder such as MOT17/train, holding one folder per sequence")
        found = sorted(d.name for d in root.iterdir() if (d / "seqinfo.ini").is_file())
        names = [n for n in found if any(fnmatch(n, pattern) for pattern in hp.sequences)] if hp.sequences else found
        if not names:
            wanted = f" matching data.init_args.sequences={hp.sequences}" if hp.sequences else ""
            raise DatasetNotFoundError(f"{root}: no sequence folders (with seqinfo.ini){wanted} inside")
        self.folders = [root / n for n in names]
        seqs = [load_sequence(f) for f in self.folders]
        missing = [s.name for s in seqs if s.gt is None]
        if missing:
            raise DatasetNotFoundError(f"{root / missing[0]}: no gt/gt.txt; training needs ground truth (test "
                                       "splits have none)")
        return seqs
