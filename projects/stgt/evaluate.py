"""The MOTChallenge evaluation: CLEAR-MOT and identity metrics from ``motmetrics``, HOTA/DetA/AssA from TrackEval.

``python -m projects.stgt.evaluate --gt GT --pred PRED [--json OUT] [--benchmark MOT17]``

``GT`` is a ``gt.txt`` file, a sequence folder (``<seq>/gt/gt.txt``) or a split folder of sequences; ``PRED`` is a
result file or a folder of ``<seq>.txt`` files (the MOTChallenge submission layout).

Before scoring, each frame goes through the MOTChallenge preprocessing (TrackEval's ``MotChallenge2DBox``):
predicted boxes matched (Hungarian, IoU >= 0.5) to a ground-truth box of a distractor class (person on vehicle,
static person, distractor, reflection; MOT20 adds non-MOT vehicle) are dropped, then every ground-truth box
that is not a pedestrian or is zero-marked (``consider = 0``) is dropped. MOT15-style ground truth (no class
column) only drops zero-marked boxes.

motmetrics 1.4 computes IoU distances with ``np.asfarray``, which NumPy 2 removed: :func:`iou_distance` here
replaces ``motmetrics.distances.iou_matrix`` (same definition) and is the only distance the accumulators see,
so nothing of motmetrics that calls ``asfarray`` runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import motmetrics as mm
import numpy as np
from scipy.optimize import linear_sum_assignment

from projects.stgt.mot import NO_CLASS, read_gt, read_tracks
from shared.errors import DatasetNotFoundError, UserFacingError, user_message

PEDESTRIAN = 1
DISTRACTORS = (2, 7, 8, 12)  # person_on_vehicle, static_person, distractor, reflection
DISTRACTORS_MOT20 = DISTRACTORS + (6,)  # + non_mot_vehicle
MATCH_IOU = 0.5
# motmetrics' names of the MOTChallenge summary, then TrackEval's.
MM_METRICS = ["idf1", "idp", "idr", "recall", "precision", "num_unique_objects", "mostly_tracked",
              "partially_tracked", "mostly_lost", "num_false_positives", "num_misses", "num_switches",
              "num_fragmentations", "mota", "motp"]
SHORT = {"idf1": "IDF1", "idp": "IDP", "idr": "IDR", "recall": "Rcll", "precision": "Prcn", "num_unique_objects": "GT",
         "mostly_tracked": "MT", "partially_tracked": "PT", "mostly_lost": "ML", "num_false_positives": "FP",
         "num_misses": "FN", "num_switches": "IDs", "num_fragmentations": "FM", "mota": "MOTA", "motp": "MOTP",
         "hota": "HOTA", "deta": "DetA", "assa": "AssA"}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), boxes as left, top, width, height:
    ``|A ∩ B| / (|A| + |B| - |A ∩ B|)``, 0 where both are empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    union = a[:, None, 2:].prod(-1) + b[None, :, 2:].prod(-1) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou_distance(gt: np.ndarray, pred: np.ndarray, max_distance: float = 1 - MATCH_IOU) -> np.ndarray:
    """motmetrics' IoU distance ``1 - IoU``, NaN ("do not pair") above ``max_distance``; NumPy-2 safe."""
    dist = 1.0 - box_iou(gt, pred)
    return np.where(dist > max_distance, np.nan, dist)


def preprocess_frame(gt: np.ndarray, pred: np.ndarray, benchmark: str = "MOT17") -> tuple[np.ndarray, np.ndarray]:
    """MOTChallenge preprocessing of one frame. ``gt`` rows as :func:`read_gt`, ``pred`` rows as
    :func:`read_tracks`; returns the ground truth and the predictions that are scored."""
    has_classes = len(gt) > 0 and not (gt[:, 7] == NO_CLASS).all()
    if not has_classes or benchmark == "MOT15":
        return gt[gt[:, 6] != 0], pred
    if len(gt) and len(pred):
        iou = box_iou(gt[:, 2:6], pred[:, 2:6])
        iou[iou < MATCH_IOU - np.finfo(float).eps] = 0
        rows, cols = linear_sum_assignment(-iou)
        matched = iou[rows, cols] > np.finfo(float).eps
        rows, cols = rows[matched], cols[matched]
        distractors = DISTRACTORS_MOT20 if benchmark == "MOT20" else DISTRACTORS
        pred = np.delete(pred, cols[np.isin(gt[rows, 7], distractors)], axis=0)
    return gt[(gt[:, 6] != 0) & (gt[:, 7] == PEDESTRIAN)], pred


def _frames(gt: np.ndarray, pred: np.ndarray, benchmark: str):
    last = int(max(gt[:, 0].max(initial=0), pred[:, 0].max(initial=0)))
    gt_by = {f: gt[gt[:, 0] == f] for f in np.unique(gt[:, 0]).astype(int)}
    pred_by = {f: pred[pred[:, 0] == f] for f in np.unique(pred[:, 0]).astype(int)}
    for f in range(1, last + 1):
        yield f, *preprocess_frame(gt_by.get(f, np.zeros((0, 9))), pred_by.get(f, np.zeros((0, 7))), benchmark)


def accumulate(gt: np.ndarray, pred: np.ndarray, benchmark: str = "MOT17") -> mm.MOTAccumulator:
    """A motmetrics accumulator of one sequence (after :func:`preprocess_frame`)."""
    acc = mm.MOTAccumulator(auto_id=False)
    for f, g, p in _frames(gt, pred, benchmark):
        if len(g) == 0 and len(p) == 0:
            continue
        acc.update(g[:, 1].astype(int), p[:, 1].astype(int), iou_distance(g[:, 2:6], p[:, 2:6]), frameid=f)
    return acc


def hota_data(gt: np.ndarray, pred: np.ndarray, benchmark: str = "MOT17") -> dict:
    """One sequence in the form TrackEval's metrics take (ids relabelled 0..n-1, IoU similarities)."""
    frames = list(_frames(gt, pred, benchmark))
    gt_ids = np.unique(np.concatenate([g[:, 1] for _, g, _ in frames] + [np.zeros(0)]))
    tr_ids = np.unique(np.concatenate([p[:, 1] for _, _, p in frames] + [np.zeros(0)]))
    data = {"num_timesteps": len(frames), "num_gt_ids": len(gt_ids), "num_tracker_ids": len(tr_ids),
            "gt_ids": [], "tracker_ids": [], "similarity_scores": [], "num_gt_dets": 0, "num_tracker_dets": 0}
    for _, g, p in frames:
        data["gt_ids"].append(np.searchsorted(gt_ids, g[:, 1]).astype(int))
        data["tracker_ids"].append(np.searchsorted(tr_ids, p[:, 1]).astype(int))
        data["similarity_scores"].append(box_iou(g[:, 2:6], p[:, 2:6]))
        data["num_gt_dets"] += len(g)
        data["num_tracker_dets"] += len(p)
    return data


def evaluate(sequences: dict[str, tuple[np.ndarray, np.ndarray]], benchmark: str = "MOT17") -> dict[str, dict]:
    """Scores per sequence and ``OVERALL`` for ``{name: (gt rows, predicted rows)}``.

    Returns plain floats: motmetrics' MOTChallenge metrics under their motmetrics names (``motp`` converted
    to MOTChallenge's convention, mean IoU of matches) plus ``hota``, ``deta``, ``assa`` (TrackEval's, averaged
    over the 19 localisation thresholds 0.05 ... 0.95).
    """
    from trackeval.metrics import HOTA

    if not sequences:
        raise UserFacingError("nothing to evaluate: no sequence has both ground truth and predictions")
    names = list(sequences)
    accs = [accumulate(*sequences[n], benchmark) for n in names]
    mh = mm.metrics.create()
    summary = mh.compute_many(accs, metrics=MM_METRICS, names=names, generate_overall=len(names) > 1)
    hota = HOTA()
    hota_res = {n: hota.eval_sequence(hota_data(*sequences[n], benchmark)) for n in names}
    if len(names) > 1:
        hota_res["OVERALL"] = hota.combine_sequences({n: hota_res[n] for n in names})
    out = {}
    for row_name, row in summary.iterrows():
        scores = {k: float(row[k]) for k in MM_METRICS}
        scores["motp"] = 1.0 - scores["motp"] if np.isfinite(scores["motp"]) else float("nan")
        res = hota_res[row_name]
        scores.update(hota=float(np.mean(res["HOTA"])), deta=float(np.mean(res["DetA"])),
                      assa=float(np.mean(res["AssA"])))
        out[str(row_name)] = scores
    return out


def render(scores: dict[str, dict]) -> str:
    """The MOTChallenge summary table (rates in %, counts as integers)."""
    cols = list(SHORT)
    counts = {"num_unique_objects", "mostly_tracked", "partially_tracked", "mostly_lost", "num_false_positives",
              "num_misses", "num_switches", "num_fragmentations"}
    width = max(len(n) for n in scores) + 1
    lines = [" " * width + "".join(f"{SHORT[c]:>7}" for c in cols)]
    for name, s in scores.items():
        cells = "".join(f"{int(s[c]):>7d}" if c in counts else f"{100 * s[c]:>7.1f}" for c in cols)
        lines.append(f"{name:<{width}}{cells}")
    return "\n".join(lines)


def _gt_files(gt: Path) -> dict[str, Path]:
    if gt.is_file():
        return {gt.parent.parent.name if gt.parent.name == "gt" else gt.parent.name: gt}
    if (gt / "gt" / "gt.txt").is_file():
        return {gt.name: gt / "gt" / "gt.txt"}
    if (gt / "gt.txt").is_file():
        return {gt.name: gt / "gt.txt"}
    found = {d.name: d / "gt" / "gt.txt" for d in sorted(gt.iterdir()) if (d / "gt" / "gt.txt").is_file()} \
        if gt.is_dir() else {}
    if not found:
        raise DatasetNotFoundError(f"{gt}: no ground truth found; give a gt.txt file, a sequence folder holding "
                                   "gt/gt.txt, or a split folder of such sequences")
    return found


def load_pairs(gt: str | Path, pred: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pair ground-truth files with result files by sequence name (a single pair needs no matching names)."""
    gt_files, pred = _gt_files(Path(gt)), Path(pred)
    if pred.is_file():
        if len(gt_files) != 1:
            raise UserFacingError(f"--pred {pred} is one file but --gt holds {len(gt_files)} sequences; give a "
                                  "folder of <sequence>.txt result files")
        (name, path), = gt_files.items()
        return {name: (read_gt(path), read_tracks(pred))}
    if not pred.is_dir():
        raise DatasetNotFoundError(f"--pred {pred} not found: a result file or a folder of <sequence>.txt files")
    missing = [n for n in gt_files if not (pred / f"{n}.txt").is_file()]
    if missing:
        raise DatasetNotFoundError(f"{pred}: no result file {missing[0]}.txt for sequence {missing[0]}; every "
                                   "sequence of --gt needs one (an empty file if the tracker output nothing)")
    return {n: (read_gt(p), read_tracks(pred / f"{n}.txt")) for n, p in gt_files.items()}


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(prog="python -m projects.stgt.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--gt", required=True, help="gt.txt, a sequence folder or a folder of sequences")
    parser.add_argument("--pred", required=True, help="a result file or a folder of <sequence>.txt files")
    parser.add_argument("--benchmark", default="MOT17", choices=["MOT15", "MOT16", "MOT17", "MOT20"],
                        help="which distractor classes the preprocessing drops (MOT20 adds non-MOT vehicles)")
    parser.add_argument("--json", help="also write the scores to this JSON file")
    args = parser.parse_args(argv)
    try:
        scores = evaluate(load_pairs(args.gt, args.pred), args.benchmark)
    except UserFacingError as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        raise SystemExit(2) from None
    print(render(scores))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(scores, indent=2) + "\n")
    return scores


if __name__ == "__main__":
    main()
