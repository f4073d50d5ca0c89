"""VALUE's metrics on hand-computed cases: the official tIoU (hull union, float32, inclusive threshold), moment and
video retrieval recalls in submitted order (first 100 only), accuracy, coco-caption scores (java) and the
meta-average on the published HERO numbers."""

import math

import numpy as np
import pytest

from projects.value import metrics
from projects.value.tasks import TASK_NAMES

# HERO (AT->ST, PT+FT) on the VALUE test leaderboard (VALUE-Leaderboard.github.io README)
HERO_AT_ST = {"tvr": 13.56, "how2r": 3.95, "yc2r": 54.28, "vatex_en_r": 49.09, "tvqa": 74.83, "how2qa": 74.60,
              "violin": 67.18, "vlep": 69.37, "tvc": 48.13, "yc2c": 121.89, "vatex_en_c": 56.54}


# ------------------------------------------------------------------------------------------------ temporal IoU
@pytest.mark.parametrize("pred, gt, expected", [
    ((2.0, 5.0), (2.0, 5.0), 1.0),    # identical
    ((0.0, 2.0), (2.0, 4.0), 0.0),    # touching
    ((0.0, 1.0), (3.0, 4.0), 0.0),    # disjoint: hull 4, no intersection
    ((2.0, 4.0), (0.0, 8.0), 0.25),   # prediction inside the ground truth
    ((0.0, 8.0), (2.0, 4.0), 0.25),   # ground truth inside the prediction
    ((1.0, 4.0), (2.0, 6.0), 0.4),    # partial: 2 / 5
    ((4.0, 6.0), (5.0, 5.0), 0.0),    # zero-length ground truth inside the prediction
    ((5.0, 5.0), (5.0, 5.0), 0.0),    # both zero-length at the same point: the hull has no length
])
def test_temporal_iou_hand_computed(pred, gt, expected):
    iou = metrics.temporal_iou(np.array([pred]), gt)
    assert iou.dtype == np.float32 and iou.shape == (1,)
    assert iou[0] == pytest.approx(expected, abs=1e-6)


def test_temporal_iou_is_vectorised_over_predictions():
    iou = metrics.temporal_iou([[0, 10], [0, 5], [5, 15], [20, 30]], (0, 10))
    np.testing.assert_allclose(iou, [1.0, 0.5, 5 / 15, 0.0], rtol=1e-6)


def test_iou_threshold_is_inclusive_and_computed_in_float32():
    # 7 / 10 in float32 is exactly float32(0.7): counts as correct at 0.7
    assert metrics.temporal_iou([[0.0, 7.0]], (0.0, 10.0))[0] == np.float32(0.7)
    # (13.1 - 6.1) / (16.1 - 6.1) is 0.6999999999999998 in float64 but 0.70000005 in float32: correct officially
    pred, gt = (6.1, 13.1), (6.1, 16.1)
    assert (pred[1] - pred[0]) / (gt[1] - gt[0]) < 0.7
    assert metrics.temporal_iou([pred], gt)[0] >= np.float32(0.7)
    gts = {1: (3, 0.0, 10.0), 2: (3, *gt), 3: (3, 0.0, 10.0)}
    preds = {1: [[3, 0.0, 7.0, 1.0]], 2: [[3, *pred, 1.0]], 3: [[3, 0.0, 6.99, 1.0]]}
    out = metrics.vcmr_recalls(preds, gts)
    assert out["0.7_r1"] == 66.67  # queries 1 and 2; query 3 (IoU 0.699) misses
    assert out["0.5_r1"] == 100.0


# --------------------------------------------------------------------------------------------- moment retrieval
GT = {1: (5, 0.0, 10.0), 2: (6, 10.0, 20.0)}


def test_vcmr_keys_and_a_perfect_submission():
    out = metrics.vcmr_recalls({1: [[5, 0.0, 10.0, 0.9]], 2: [[6, 10.0, 20.0, 0.9]]}, GT)
    assert list(out) == ["0.5_r1", "0.5_r5", "0.5_r10", "0.5_r100", "0.7_r1", "0.7_r5", "0.7_r10", "0.7_r100"]
    assert set(out.values()) == {100.0}


def test_vcmr_wrong_video_with_a_perfect_span_is_a_miss():
    out = metrics.vcmr_recalls({1: [[4, 0.0, 10.0, 1.0]], 2: [[6, 10.0, 20.0, 1.0]]}, GT)
    assert out["0.5_r1"] == out["0.7_r1"] == out["0.7_r100"] == 50.0


def test_vcmr_ranks_in_submitted_order_not_by_score():
    # the correct moment has the lower score but comes second: a miss at R@1, a hit at R@5
    out = metrics.vcmr_recalls({1: [[5, 30.0, 40.0, 0.9], [5, 0.0, 10.0, 0.1]], 2: [[6, 10.0, 20.0, 0.5]]}, GT)
    assert (out["0.7_r1"], out["0.7_r5"]) == (50.0, 100.0)
    # equal scores: the order submitted decides
    tied_wrong_first = {1: [[5, 30.0, 40.0, 0.5], [5, 0.0, 10.0, 0.5]], 2: [[6, 10.0, 20.0, 0.5]]}
    tied_right_first = {1: [[5, 0.0, 10.0, 0.5], [5, 30.0, 40.0, 0.5]], 2: [[6, 10.0, 20.0, 0.5]]}
    assert metrics.vcmr_recalls(tied_wrong_first, GT)["0.7_r1"] == 50.0
    assert metrics.vcmr_recalls(tied_right_first, GT)["0.7_r1"] == 100.0


def test_vcmr_uses_only_the_first_100_predictions():
    wrong = [[5, 50.0, 60.0, 1.0]] * 100
    at_101 = metrics.vcmr_recalls({1: wrong + [[5, 0.0, 10.0, 1.0]], 2: [[6, 10.0, 20.0, 1.0]]}, GT)
    assert at_101["0.7_r100"] == 50.0
    at_100 = metrics.vcmr_recalls({1: wrong[:99] + [[5, 0.0, 10.0, 1.0]], 2: [[6, 10.0, 20.0, 1.0]]}, GT)
    assert (at_100["0.7_r10"], at_100["0.7_r100"]) == (50.0, 100.0)


def test_vcmr_with_fewer_predictions_than_k_and_three_element_entries():
    # 3 predictions without scores, the correct one third: R@1 misses, R@5 and up hit
    out = metrics.vcmr_recalls({1: [[5, 30.0, 40.0], [5, 40.0, 50.0], [5, 0.0, 10.0]], 2: [[6, 10.0, 20.0]]}, GT)
    assert (out["0.7_r1"], out["0.7_r5"], out["0.7_r10"], out["0.7_r100"]) == (50.0, 100.0, 100.0, 100.0)


def test_vcmr_iou_between_the_thresholds_and_extra_ids():
    # IoU 0.6: correct at 0.5, not at 0.7; the prediction for id 99 (no ground truth) is ignored
    out = metrics.vcmr_recalls({1: [[5, 0.0, 6.0]], 2: [[6, 10.0, 20.0]], 99: [[1, 0.0, 1.0]]}, GT)
    assert (out["0.5_r1"], out["0.7_r1"]) == (100.0, 50.0)


def test_vcmr_rounds_percentages_to_two_decimals():
    gts = {1: (1, 0.0, 1.0), 2: (2, 0.0, 1.0), 3: (3, 0.0, 1.0)}
    out = metrics.vcmr_recalls({1: [[1, 0.0, 1.0]], 2: [[9, 0.0, 1.0]], 3: [[9, 0.0, 1.0]]}, gts)
    assert out["0.7_r1"] == 33.33


# ---------------------------------------------------------------------------------------------- video retrieval
def test_vr_recalls_hand_computed():
    gts = {1: 10, 2: 20, 3: 30}
    preds = {1: [10, 11, 12], 2: [0, 1, 2, 3, 4, 20], 3: list(range(100, 200)) + [30], 4: [40]}
    assert metrics.vr_recalls(preds, gts) == {"r1": 33.33, "r5": 33.33, "r10": 66.67, "r100": 66.67}


def test_average_recall_and_task_score():
    assert metrics.average_recall({"r1": 10.0, "r5": 20.0, "r10": 33.0, "r100": 99.0}) == 21.0
    vcmr = {"0.5_r1": 90.0, "0.5_r5": 90.0, "0.5_r10": 90.0, "0.7_r1": 1.0, "0.7_r5": 2.0, "0.7_r10": 4.5}
    assert metrics.average_recall(vcmr, "0.7_") == 2.5
    assert metrics.task_score("vcmr", vcmr) == 2.5
    assert metrics.task_score("vr", {"r1": 10.0, "r5": 20.0, "r10": 33.0}) == 21.0
    assert metrics.task_score("qa", {"accuracy": 74.83}) == 74.83
    assert metrics.task_score("caption", {"CIDEr": 48.13, "Bleu_4": 10.0}) == 48.13
    with pytest.raises(ValueError, match="unknown task kind"):
        metrics.task_score("ranking", {})


# ------------------------------------------------------------------------------------------------------------ QA
def test_accuracy_ignores_extra_ids():
    assert metrics.accuracy({1: 0, 2: 1, 3: 0, 99: 4}, {1: 0, 2: 1, 3: 2}) == 66.67
    assert metrics.accuracy({1: "2"}, {1: 2}) == 100.0
    assert metrics.accuracy({}, {}) == 0.0


# ---------------------------------------------------------------------------------------------------- captioning
REFS = {1: ["a man rides a red bicycle down the street", "a person is riding a bike on a road"],
        2: ["a woman cuts an onion in the kitchen", "someone is chopping an onion"],
        3: ["two dogs play with a ball in the park", "dogs are running after a ball"]}


def test_caption_scores_rank_an_exact_match_above_a_wrong_caption():
    exact = metrics.caption_scores({k: v[0] for k, v in REFS.items()}, REFS, meteor=False)
    wrong = metrics.caption_scores({1: "a cat sleeps on the sofa", 2: REFS[2][0], 3: REFS[3][0]}, REFS, meteor=False)
    assert set(exact) == {"Bleu_4", "ROUGE_L", "CIDEr"}
    assert exact["Bleu_4"] == 100.0 and exact["ROUGE_L"] == 100.0  # every caption is one of its references
    assert exact["CIDEr"] > wrong["CIDEr"] > 0
    assert wrong["Bleu_4"] < 100.0


def test_caption_scores_ignore_case_punctuation_and_non_ascii():
    refs = {1: ["a red circle", "a red round circle"], 2: ["a caf  with blue chairs", "a small cafe"]}
    plain = metrics.caption_scores({1: "a red circle", 2: "a caf  with blue chairs"}, refs, meteor=False)
    styled = metrics.caption_scores({1: "A red circle.", 2: "A café with blue chairs!"}, refs, meteor=False)
    assert styled == plain
    assert metrics.ascii_only("café ü") == "caf   "


def test_caption_scores_with_meteor():
    # the only test that starts METEOR's JVM (several seconds)
    out = metrics.caption_scores({1: REFS[1][0], 2: "a cat sleeps on the sofa", 3: REFS[3][1]}, REFS)
    assert set(out) == {"Bleu_4", "METEOR", "ROUGE_L", "CIDEr"}
    assert 0 < out["METEOR"] < 100


def test_caption_scores_need_the_same_clips():
    with pytest.raises(ValueError, match="1 missing, 1 extra"):
        metrics.caption_scores({1: "a", 9: "b"}, {1: ["a"], 2: ["b"]}, meteor=False)


# -------------------------------------------------------------------------------------------------- meta-average
def test_meta_average_of_the_published_hero_numbers():
    assert metrics.meta_average(HERO_AT_ST) == 57.58
    assert metrics.group_averages(HERO_AT_ST) == {"retrieval": 30.22, "qa": 71.5, "captioning": 75.52}
    # the official evaluate.py averages 11 task scores + 3 group averages
    assert metrics.official_average(HERO_AT_ST) == 57.9
    assert set(HERO_AT_ST) == set(TASK_NAMES)


def test_meta_average_names_every_missing_task():
    partial = {k: v for k, v in HERO_AT_ST.items() if k not in ("vlep", "tvc")}
    with pytest.raises(KeyError) as err:
        metrics.meta_average(partial)
    assert "no score for vlep, tvc " in str(err.value)


def test_meta_average_of_a_subset_and_nan():
    assert metrics.meta_average(HERO_AT_ST, tasks=("tvr", "yc2r")) == 33.92
    assert metrics.meta_average({"tvr": 10.0, "tvqa": 80.0, "extra": 1e9}, tasks=("tvr", "tvqa")) == 45.0
    with pytest.raises(ValueError, match="NaN"):
        metrics.meta_average({"tvr": math.nan, "tvqa": 1.0}, tasks=("tvr", "tvqa"))


def test_official_average_counts_an_empty_group_as_zero():
    scores = {"tvr": 10.0, "tvqa": 80.0}
    assert metrics.group_averages(scores) == {"retrieval": 10.0, "qa": 80.0, "captioning": 0.0}
    assert metrics.official_average(scores) == 36.0  # (10 + 80 + 10 + 80 + 0) / 5
