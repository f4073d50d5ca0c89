"""VALUE's metrics, computed as VALUE-Leaderboard/EvaluationTools computes them, and the meta-average.

* **Video-corpus moment retrieval** (TVR, How2R): a prediction ``[video_idx, start, end, (score)]`` is correct when
  ``video_idx`` is the query's video and ``tIoU >= 0.7``, with ``tIoU = max(0, min(e, e') - max(s, s')) /
  (max(e, e') - min(s, s'))`` (the official union is the convex hull of the two spans; it differs from the true
  union only for disjoint spans, where the IoU is 0 anyway), computed in float32. ``R@k`` is the percentage of
  queries with a correct prediction among their first ``k``, in the order submitted (nothing is re-sorted by
  score), at most 100 used.
* **Video retrieval** (YC2R, VATEX-EN-R): ``R@k`` = percentage of queries whose video is among the first ``k``.
* A retrieval task's score is ``AveR = (R@1 + R@5 + R@10) / 3`` (moment retrieval: at IoU 0.7).
* **QA** (TVQA, How2QA, VIOLIN, VLEP): accuracy in percent.
* **Captioning** (TVC, YC2C, VATEX-EN-C): CIDEr-D of coco-caption (pycocoevalcap) over every reference of a clip,
  after replacing non-ASCII characters by spaces and the Stanford PTB tokenisation (lower-cased, punctuation
  dropped; it runs ``java``); BLEU-4, METEOR and ROUGE-L alongside for information. All x100.

Every number is rounded to 2 decimals, as the official scorer formats them.

The **meta-average** (:func:`meta_average`) is the plain mean of the 11 task scores, as the paper and the
leaderboard define it. The official ``evaluate.py`` instead averages 14 values, the 11 task scores and the
three group averages (retrieval, QA, captioning), which counts each group's average twice:
:func:`official_average` reproduces that number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from projects.value.tasks import GROUPS, TASK_NAMES

RECALL_KS = (1, 5, 10, 100)
IOU_THRESHOLDS = (0.5, 0.7)
MAX_PREDICTIONS = 100


def rounded(x: float) -> float:
    """A fraction as a percentage with 2 decimals (the official ``get_rounded_percentage``)."""
    return round(100.0 * float(x), 2)


def temporal_iou(pred: np.ndarray, gt: Sequence[float]) -> np.ndarray:
    """tIoU of spans ``pred (N, 2)`` with one span ``gt``, in float32; 0 where the hull has no length."""
    pred = np.asarray(pred, dtype=np.float32).reshape(-1, 2)
    st, ed = np.float32(gt[0]), np.float32(gt[1])
    inter = np.maximum(np.float32(0), np.minimum(pred[:, 1], ed) - np.maximum(pred[:, 0], st))
    hull = np.maximum(pred[:, 1], ed) - np.minimum(pred[:, 0], st)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hull > 0, inter / hull, np.float32(0)).astype(np.float32)


def vcmr_recalls(predictions: Mapping, ground_truth: Mapping, thresholds: Iterable[float] = IOU_THRESHOLDS,
                 ks: Iterable[int] = RECALL_KS, max_predictions: int = MAX_PREDICTIONS) -> dict[str, float]:
    """``{"0.7_r1": ..., ...}``: moment retrieval recalls in percent.

    ``predictions[id]`` is a list of ``[video_idx, start, end, ...]`` in ranked order, ``ground_truth[id] =
    (video_idx, start, end)``. Every ground-truth id must have predictions (:mod:`projects.value.submission`
    checks); ids without ground truth are ignored."""
    thresholds, ks = tuple(thresholds), tuple(ks)
    hits = np.zeros((len(ground_truth), len(thresholds), len(ks)), dtype=bool)
    for i, (qid, (vid, st, ed)) in enumerate(ground_truth.items()):
        pred = np.asarray([p[:3] for p in predictions[qid][:max_predictions]], dtype=np.float32).reshape(-1, 3)
        iou = temporal_iou(pred[:, 1:3], (st, ed)) * (pred[:, 0] == np.float32(vid))
        for j, thd in enumerate(thresholds):
            correct = iou >= np.float32(thd)
            for m, k in enumerate(ks):
                hits[i, j, m] = bool(correct[:k].any())
    mean = hits.mean(0) if len(ground_truth) else np.zeros((len(thresholds), len(ks)))
    return {f"{thd}_r{k}": rounded(mean[j, m]) for j, thd in enumerate(thresholds) for m, k in enumerate(ks)}


def vr_recalls(predictions: Mapping, ground_truth: Mapping, ks: Iterable[int] = RECALL_KS,
               max_predictions: int = MAX_PREDICTIONS) -> dict[str, float]:
    """``{"r1": ..., "r5": ..., ...}``: video retrieval recalls in percent; ``predictions[id]`` is a ranked list
    of video indices, ``ground_truth[id]`` the query's video index."""
    ks = tuple(ks)
    hits = np.zeros((len(ground_truth), len(ks)), dtype=bool)
    for i, (qid, vid) in enumerate(ground_truth.items()):
        ranked = [int(v) for v in predictions[qid][:max_predictions]]
        for m, k in enumerate(ks):
            hits[i, m] = int(vid) in ranked[:k]
    mean = hits.mean(0) if len(ground_truth) else np.zeros(len(ks))
    return {f"r{k}": rounded(mean[m]) for m, k in enumerate(ks)}


def average_recall(recalls: Mapping[str, float], prefix: str = "") -> float:
    """AveR = mean of R@1, R@5 and R@10 (``prefix="0.7_"`` for moment retrieval)."""
    return round(sum(recalls[f"{prefix}r{k}"] for k in (1, 5, 10)) / 3, 2)


def accuracy(predictions: Mapping, ground_truth: Mapping) -> float:
    """Percentage of ground-truth ids whose predicted answer equals the answer."""
    if not ground_truth:
        return 0.0
    return rounded(np.mean([int(predictions[k]) == int(v) for k, v in ground_truth.items()]))


def ascii_only(text: str) -> str:
    """Every character with a code point >= 128 replaced by a space, as the official scorer does."""
    return "".join(c if ord(c) < 128 else " " for c in text)


def caption_scores(predictions: Mapping, references: Mapping, meteor: bool = True) -> dict[str, float]:
    """``{"Bleu_4", "METEOR", "ROUGE_L", "CIDEr"}`` x100 of one caption per clip against all its references.

    ``predictions[clip_id]`` is a string, ``references[clip_id]`` a list of strings; the clip sets must match
    (the official scorer asserts it). Needs ``java`` for the PTB tokenizer (and METEOR; ``meteor=False`` skips
    METEOR, whose JVM takes several seconds to start)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    if set(predictions) != set(references):
        raise ValueError(f"caption ids differ: {len(set(references) - set(predictions))} missing, "
                         f"{len(set(predictions) - set(references))} extra")
    keys = {k: i for i, k in enumerate(references)}  # the tokenizer wants plain keys
    tokenizer = PTBTokenizer()
    try:
        gts = tokenizer.tokenize({keys[k]: [{"caption": ascii_only(r)} for r in refs]
                                  for k, refs in references.items()})
        res = tokenizer.tokenize({keys[k]: [{"caption": ascii_only(predictions[k])}] for k in references})
    except FileNotFoundError as err:
        from shared.errors import UserFacingError

        raise UserFacingError("captioning is scored with coco-caption's PTB tokenizer, which runs `java`: install "
                              "a Java runtime (e.g. apt-get install openjdk-17-jre-headless) or leave the "
                              "captioning tasks out (--tasks without tvc, yc2c, vatex_en_c)") from err
    out = {"Bleu_4": Bleu(4).compute_score(gts, res, verbose=0)[0][3], "ROUGE_L": Rouge().compute_score(gts, res)[0],
           "CIDEr": Cider().compute_score(gts, res)[0]}
    if meteor:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()
        try:
            out["METEOR"] = scorer.compute_score(gts, res)[0]
        finally:
            scorer.close() if hasattr(scorer, "close") else None
    return {k: rounded(v) for k, v in out.items()}


def task_score(kind: str, metrics: Mapping[str, float]) -> float:
    """The number a task is ranked by: AveR, accuracy or CIDEr-D (percent)."""
    if kind == "vcmr":
        return average_recall(metrics, "0.7_")
    if kind == "vr":
        return average_recall(metrics)
    if kind == "qa":
        return float(metrics["accuracy"])
    if kind == "caption":
        return float(metrics["CIDEr"])
    raise ValueError(f"unknown task kind {kind!r}")


def meta_average(scores: Mapping[str, float], tasks: Sequence[str] = TASK_NAMES) -> float:
    """The paper's meta-average: the plain mean of the task scores of ``tasks`` (by default all 11, keyed by the
    submission folder names ``tvr, how2r, yc2r, vatex_en_r, tvqa, how2qa, violin, vlep, tvc, yc2c,
    vatex_en_c``). Raises ``KeyError`` naming every task that has no score."""
    missing = [t for t in tasks if t not in scores]
    if missing:
        raise KeyError(f"no score for {', '.join(missing)} (the meta-average needs every task of {list(tasks)})")
    values = [float(scores[t]) for t in tasks]
    if any(math.isnan(v) for v in values):
        raise ValueError(f"a task score is NaN: {dict(zip(tasks, values, strict=True))}")
    return round(sum(values) / len(values), 2)


def group_averages(scores: Mapping[str, float]) -> dict[str, float]:
    """Mean score of each group's scored tasks (official: 0 for a group with none)."""
    out = {}
    for group, members in GROUPS.items():
        present = [float(scores[t]) for t in members if t in scores]
        out[group] = round(sum(present) / len(present), 2) if present else 0.0
    return out


def official_average(scores: Mapping[str, float]) -> float:
    """What the official ``evaluate.py`` prints as "average": the mean over the three groups' dicts, i.e. the task
    scores present **and** each group's average (a group with no task contributes its 0 placeholder)."""
    values = [float(v) for v in scores.values()] + list(group_averages(scores).values())
    return round(sum(values) / len(values), 2)
