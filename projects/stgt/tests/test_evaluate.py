"""The MOTChallenge evaluation against motmetrics' own expected numbers and TrackEval's own pipeline."""

import json
from pathlib import Path

import numpy as np
import pytest

from projects.stgt.evaluate import box_iou, evaluate, iou_distance, load_pairs, main, preprocess_frame
from projects.stgt.mot import motmetrics_data, read_gt, read_tracks

FIXTURES = Path(__file__).parent / "fixtures"
# motmetrics 1.4.0, tests/test_metrics.py::test_motchallenge_files: IDF1, IDP, IDR, Rcll, Prcn, GT, MT, PT, ML,
# FP, FN, IDs, FM, MOTA, MOTP (as a distance) of its shipped test.txt against gt.txt.
MOTMETRICS_EXPECTED = {
    "TUD-Campus": [0.557659, 0.729730, 0.451253, 0.582173, 0.941441, 8, 1, 6, 1, 13, 150, 7, 7, 0.526462, 0.277201],
    "TUD-Stadtmitte": [0.644619, 0.819760, 0.531142, 0.608997, 0.939920, 10, 5, 4, 1, 45, 452, 7, 6, 0.564014,
                       0.345904],
    "OVERALL": [0.624296, 0.799176, 0.512211, 0.602640, 0.940268, 18, 6, 10, 2, 58, 602, 14, 13, 0.555116, 0.330177],
}
ORDER = ["idf1", "idp", "idr", "recall", "precision", "num_unique_objects", "mostly_tracked", "partially_tracked",
         "mostly_lost", "num_false_positives", "num_misses", "num_switches", "num_fragmentations", "mota", "motp"]


def tud_pairs():
    return {n: (read_gt(motmetrics_data(n) / "gt.txt"), read_tracks(motmetrics_data(n) / "test.txt"))
            for n in ("TUD-Campus", "TUD-Stadtmitte")}


def test_reproduces_motmetrics_numbers_on_its_tud_files():
    scores = evaluate(tud_pairs(), benchmark="MOT15")
    for name, expected in MOTMETRICS_EXPECTED.items():
        ours = [scores[name][k] for k in ORDER]
        ours[-1] = 1 - ours[-1]  # our MOTP is MOTChallenge's mean IoU; motmetrics reports the distance
        np.testing.assert_allclose(ours, expected, atol=1e-3, err_msg=name)


def _trackeval(gt_root: Path, pred_files: dict[str, Path], tmp_path: Path, benchmark: str) -> dict:
    """TrackEval's own MotChallenge2DBox pipeline (file reading and preprocessing included)."""
    import trackeval

    gt_fol = tmp_path / "gt"
    tr_fol = tmp_path / "trackers" / "ours" / "data"
    tr_fol.mkdir(parents=True)
    for name, path in pred_files.items():
        (tr_fol / f"{name}.txt").write_text(path.read_text())
    seqs = {}
    for name in pred_files:
        src = gt_root / name
        (gt_fol / name / "gt").mkdir(parents=True)
        (gt_fol / name / "gt" / "gt.txt").write_text((src / "gt" / "gt.txt").read_text())
        (gt_fol / name / "seqinfo.ini").write_text((src / "seqinfo.ini").read_text())
        seqs[name] = None
    config = {"GT_FOLDER": str(gt_fol), "TRACKERS_FOLDER": str(tmp_path / "trackers"), "BENCHMARK": benchmark,
              "SPLIT_TO_EVAL": "train", "TRACKERS_TO_EVAL": ["ours"], "SKIP_SPLIT_FOL": True, "SEQ_INFO": seqs,
              "DO_PREPROC": True, "PRINT_CONFIG": False}
    ev = trackeval.Evaluator({"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False,
                              "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False,
                              "TIME_PROGRESS": False, "DISPLAY_LESS_PROGRESS": True, "OUTPUT_EMPTY_CLASSES": False})
    res, _ = ev.evaluate([trackeval.datasets.MotChallenge2DBox(config)],
                         [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"PRINT_CONFIG": False})])
    return res["MotChallenge2DBox"]["ours"]


def _tracks_from_detections(seq_dir: Path, out: Path) -> Path:
    """A crude 'tracker': every public detection with a fresh id every 5 frames (many switches, some FPs on the
    distractor and the static person)."""
    det = np.loadtxt(seq_dir / "det" / "det.txt", delimiter=",")
    ids = np.arange(len(det)) % 7 + 1 + 100 * (det[:, 0] // 5)
    rows = [f"{int(f)},{int(i)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.3f},-1,-1,-1"
            for (f, _, x, y, w, h, s, *_), i in zip(det, ids, strict=True)]
    keep, seen = [], set()
    for r in rows:  # one box per id and frame
        key = tuple(r.split(",")[:2])
        if key not in seen:
            seen.add(key)
            keep.append(r)
    out.write_text("\n".join(keep) + "\n")
    return out


@pytest.mark.parametrize("benchmark", ["MOT17", "MOT15"])
def test_hota_and_preprocessing_match_trackeval_pipeline(benchmark: str, tmp_path: Path):
    root = FIXTURES / ("MOT17/train" if benchmark == "MOT17" else "MOT15/train")
    names = ["MOT17-02-FRCNN", "MOT17-04-FRCNN"] if benchmark == "MOT17" else ["TUD-mini"]
    preds = {n: _tracks_from_detections(root / n, tmp_path / f"{n}.txt") for n in names}
    te = _trackeval(root, preds, tmp_path / "te", benchmark)
    pred_dir = tmp_path
    ours = evaluate(load_pairs(root, pred_dir) if len(names) > 1 else load_pairs(root / names[0], preds[names[0]]),
                    benchmark=benchmark)
    for name in names:
        ref = te[name]["pedestrian"]
        assert ours[name]["hota"] == pytest.approx(float(np.mean(ref["HOTA"]["HOTA"])), abs=1e-9)
        assert ours[name]["assa"] == pytest.approx(float(np.mean(ref["HOTA"]["AssA"])), abs=1e-9)
        # CLEAR counts after the same preprocessing: TrackEval's CLEAR and motmetrics agree on TP / FN / FP
        assert ours[name]["num_false_positives"] == ref["CLEAR"]["CLR_FP"]
        assert ours[name]["num_misses"] == ref["CLEAR"]["CLR_FN"]
        assert ours[name]["mota"] == pytest.approx(ref["CLEAR"]["MOTA"], abs=1e-9)
    if benchmark == "MOT17":
        combined = te["COMBINED_SEQ"]["pedestrian"]
        assert ours["OVERALL"]["hota"] == pytest.approx(float(np.mean(combined["HOTA"]["HOTA"])), abs=1e-9)


def test_box_iou_by_hand():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 5, 10, 10], [20, 20, 5, 5], [0, 0, 10, 10], [0, 0, 0, 0]])
    np.testing.assert_allclose(box_iou(a, b), [[25 / 175, 0, 1, 0]])
    d = iou_distance(a, b)
    assert np.isnan(d[0, 0]) and np.isnan(d[0, 1]) and d[0, 2] == 0  # IoU 0.14 < 0.5: do not pair


def test_preprocessing_drops_distractor_matches_and_zero_marked_gt():
    gt = np.array([[1, 1, 0, 0, 10, 20, 1, 1, 1.0],     # pedestrian
                   [1, 2, 50, 0, 10, 20, 1, 7, 1.0],    # static person (distractor)
                   [1, 3, 100, 0, 10, 20, 0, 1, 1.0],   # zero-marked pedestrian
                   [1, 4, 150, 0, 10, 20, 1, 3, 1.0]])  # car: neither scored nor a distractor
    pred = np.array([[1, 7, 0, 0, 10, 20, 1], [1, 8, 51, 0, 10, 20, 1], [1, 9, 100, 0, 10, 20, 1],
                     [1, 10, 150, 0, 10, 20, 1]])
    g, p = preprocess_frame(gt, pred, "MOT17")
    assert g[:, 1].tolist() == [1]
    assert p[:, 1].tolist() == [7, 9, 10]  # only the box on the static person is removed
    g15, p15 = preprocess_frame(np.c_[gt[:, :7], -np.ones(4), gt[:, 8]], pred, "MOT15")
    assert g15[:, 1].tolist() == [1, 2, 4] and len(p15) == 4  # MOT15: no classes, zero-marked still dropped
    mot20_gt = gt.copy()
    mot20_gt[3, 7] = 6  # non-MOT vehicle: a distractor in MOT20 only
    assert preprocess_frame(mot20_gt, pred, "MOT20")[1][:, 1].tolist() == [7, 9]
    assert preprocess_frame(mot20_gt, pred, "MOT17")[1][:, 1].tolist() == [7, 9, 10]


def test_cli_prints_summary_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture):
    pred = tmp_path / "pred"
    pred.mkdir()
    gt = tmp_path / "gt"
    for n in ("TUD-Campus", "TUD-Stadtmitte"):
        (pred / f"{n}.txt").write_text((motmetrics_data(n) / "test.txt").read_text())
        (gt / n / "gt").mkdir(parents=True)
        (gt / n / "gt" / "gt.txt").write_text((motmetrics_data(n) / "gt.txt").read_text())
    scores = main(["--gt", str(gt), "--pred", str(pred), "--json", str(tmp_path / "s.json"), "--benchmark", "MOT15"])
    out = capsys.readouterr().out
    assert "OVERALL" in out and "HOTA" in out and "MOTA" in out
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["OVERALL"]["mota"] == pytest.approx(MOTMETRICS_EXPECTED["OVERALL"][13], abs=1e-3)
    assert saved == json.loads(json.dumps(scores))


def test_cli_missing_result_file_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture):
    (tmp_path / "pred").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["--gt", str(FIXTURES / "MOT17" / "train"), "--pred", str(tmp_path / "pred")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "MOT17-02-FRCNN.txt" in err and "error:" in err and "Traceback" not in err
