"""Submissions end to end on the fixture release (val phase: TVR, YC2R, TVQA, How2QA, VIOLIN's test split, VLEP's
dev split, TVC): ground truth, the zip layout, a perfect submission scoring 100, a broken one reporting every
problem at once, and the ``evaluate`` CLI with its leaderboard table."""

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from projects.value import evaluate, metrics
from projects.value.submission import (
    STRICT_IDS,
    Report,
    SubmissionError,
    layout_problems,
    load_ground_truth,
    parse_predictions,
    read_files,
    score_submission,
    validate,
    write_submission,
)
from projects.value.tasks import TASKS
from shared.errors import CorruptDataError, DatasetNotFoundError

ROOT = Path(__file__).parent / "fixtures" / "release"
VAL_TASKS = ("tvr", "yc2r", "tvqa", "how2qa", "violin", "vlep", "tvc")
FILES = {"tvr/tvr_val_predictions.json", "yc2r/yc2r_val_predictions.json", "tvqa/tvqa_val_predictions.json",
         "how2qa/how2qa_val_predictions.json", "violin/violin_test_predictions.json",
         "vlep/vlep_dev_predictions.json", "tvc/tvc_val_predictions.jsonl"}


@pytest.fixture(scope="module")
def gts():
    return {t: load_ground_truth(TASKS[t], "val", ROOT) for t in VAL_TASKS}


def perfect(gts) -> dict:
    """Every task's predictions in the file format, all correct (the right moment ranked first)."""
    out = {}
    tvr = gts["tvr"].answers
    out["tvr"] = {"VCMR": [{"desc_id": k, "desc": "ignored", "predictions": [[v, st, ed, 0.9], [v, 0.0, 1.0, 0.1]]}
                           for k, (v, st, ed) in tvr.items()],
                  "VR": [{"desc_id": k, "predictions": [v, 0]} for k, (v, _, _) in tvr.items()]}
    out["yc2r"] = {"VR": [{"desc_id": str(k), "predictions": [v, 1, 2]} for k, v in gts["yc2r"].answers.items()]}
    for t in ("tvqa", "how2qa", "violin", "vlep"):
        out[t] = {str(k): v for k, v in gts[t].answers.items()}
    out["tvc"] = [{"vid_name": "v", "clip_id": k, "ts": [0, 1], "descs": [{"desc": refs[0]}]}
                  for k, refs in gts["tvc"].answers.items()]
    return out


def zip_files(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


# ------------------------------------------------------------------------------------------------ ground truth
def test_ground_truth_of_the_val_phase(gts):
    assert gts["tvr"].answers == {90200: (19614, 10.2, 21.5), 90201: (19615, 0.0, 7.5), 90202: (19614, 60.0, 89.35)}
    assert gts["tvr"].video_idx == {"castle_s01e01_seg01_clip_02": 19614, "house_s02e05_seg02_clip_11": 19615}
    assert gts["yc2r"].answers == {10337: 10337, 10338: 10338}
    assert gts["tvqa"].answers == {122039: 0, 122040: 1, 122041: 4}
    assert gts["how2qa"].answers == {30351: 2, 30352: 0}
    assert gts["violin"].answers == {85722: 1, 85723: 0}
    assert gts["violin"].path.name == "violin_test_release.jsonl"  # the val phase scores VIOLIN's test split
    assert gts["vlep"].answers == {21411: 1, 21412: 0}
    assert gts["vlep"].path.name == "vlep_dev_release.jsonl"
    assert list(gts["tvc"].answers) == [86602, 86603] and len(gts["tvc"].answers[86602]) == 4


def test_tvqa_solution_file_is_preferred_and_missing_ground_truth(tmp_path):
    (tmp_path / "tvqa").mkdir()
    (tmp_path / "tvqa" / "tvqa_val.jsonl").write_text((ROOT / "ann" / "tvqa" / "tvqa_val.jsonl").read_text())
    solution = {"split": "tvqa_val", "solution": {"Castle": {"122039": 3}, "House M.D.": {"122040": 1}}}
    (tmp_path / "tvqa" / "tvqa_val_solution.json").write_text(json.dumps(solution))
    assert load_ground_truth(TASKS["tvqa"], "val", tmp_path).answers == {122039: 3, 122040: 1}
    with pytest.raises(DatasetNotFoundError, match=r"VIOLIN test ground truth \(violin_test_private_gt\.jsonl or "):
        load_ground_truth(TASKS["violin"], "test", ROOT)


def test_retrieval_ground_truth_needs_the_phase_split_in_the_video_index(tmp_path):
    ann = tmp_path / "ann" / "tvr"
    ann.mkdir(parents=True)
    (ann / "tvr_test_release.jsonl").write_text((ROOT / "ann" / "tvr" / "tvr_val_release.jsonl").read_text())
    (ann / "tvr_video2dur_idx.json").write_text((ROOT / "ann" / "tvr" / "tvr_video2dur_idx.json").read_text())
    with pytest.raises(CorruptDataError, match="no split 'test' .splits: test_public, train, val."):
        load_ground_truth(TASKS["tvr"], "test", tmp_path)


# ---------------------------------------------------------------------------------------------- a good submission
def test_zip_round_trip_and_perfect_scores(gts, tmp_path):
    path = write_submission(tmp_path / "perfect.zip", {"val": perfect(gts)})
    files = read_files(path)
    assert set(files) == FILES
    assert json.loads(files["violin/violin_test_predictions.json"]) == {"85722": 1, "85723": 0}
    assert [json.loads(line)["clip_id"] for line in files["tvc/tvc_val_predictions.jsonl"].decode().splitlines()] == [
        86602, 86603]
    report = score_submission(path, "val", ROOT, meteor=False)
    assert isinstance(report, Report) and report.name == "perfect" and report.problems == []
    assert set(report.scores) == set(VAL_TASKS)
    assert set(report.metrics["tvr"].values()) == {100.0}  # VCMR at both IoUs and VR_r*
    assert "VR_r1" in report.metrics["tvr"] and "0.7_r100" in report.metrics["tvr"]
    assert report.metrics["yc2r"] == {"r1": 100.0, "r5": 100.0, "r10": 100.0, "r100": 100.0}
    for t in ("tvr", "yc2r", "tvqa", "how2qa", "violin", "vlep"):
        assert report.scores[t] == 100.0
    assert report.metrics["tvc"]["Bleu_4"] == 100.0 and report.scores["tvc"] == report.metrics["tvc"]["CIDEr"] > 0
    assert report.meta_average is None  # 7 of the 11 tasks
    assert report.mean_of_scored == round((600 + report.scores["tvc"]) / 7, 2)


def test_a_folder_reads_like_the_zip(gts, tmp_path):
    path = write_submission(tmp_path / "s.zip", {"val": perfect(gts)})
    with zipfile.ZipFile(path) as z:
        z.extractall(tmp_path / "folder")
    assert read_files(tmp_path / "folder") == read_files(path)
    with pytest.raises(ValueError, match="phase must be one of"):
        write_submission(tmp_path / "x.zip", {"dev": {}})


def test_warnings_do_not_stop_scoring(gts, tmp_path):
    preds = perfect(gts)
    preds["tvqa"]["999999"] = 1  # extra id: the TVQA scorer ignores it
    first = preds["tvr"]["VCMR"][0]
    first["predictions"] = first["predictions"][:1] + [[0, 0.0, 1.0, 0.0]] * 105  # 106 > 100: truncated
    report = score_submission(write_submission(tmp_path / "w.zip", {"val": preds}), "val", ROOT,
                              tasks=["tvr", "tvqa"])
    assert set(report.scores) == {"tvr", "tvqa"} and report.scores == {"tvr": 100.0, "tvqa": 100.0}
    assert [(p.severity, p.task, p.id) for p in report.problems] == [("warning", "tvr", "90200"),
                                                                      ("warning", "tvqa", "999999")]
    assert "106 predictions; only the first 100 are scored" in str(report.problems[0])


# ------------------------------------------------------------------------------------------- a broken submission
def broken_files(gts) -> dict[str, str]:
    good = perfect(gts)
    tvr = good["tvr"]
    tvr["VCMR"][0]["predictions"] = tvr["VCMR"][0]["predictions"] * 51  # 102 predictions: warning
    tvr["VCMR"][1]["predictions"] = [[19615, 5.0]]  # malformed moment
    tvr["VCMR"][2]["predictions"] = []  # empty list
    yc2r = {**good["yc2r"], "VCMR": [{"desc_id": 10337, "predictions": [[10337, 0, 1, 1]]}]}
    tvqa = {k: v for k, v in good["tvqa"].items() if k != "122041"} | {"999": 1}  # missing 122041, extra 999
    violin = good["violin"] | {"4242": 0}  # an extra id fails VIOLIN's scorer
    return {"tvr/tvr_val_predictions.json": json.dumps(tvr), "yc2r/yc2r_val_predictions.json": json.dumps(yc2r),
            "tvqa/tvqa_val_predictions.json": json.dumps(tvqa),
            "violin/violin_test_predictions.json": json.dumps(violin),
            "my_submission/vlep/vlep_dev_predictions.json": json.dumps(good["vlep"]),  # enclosing folder
            "tvc/tvc_val_predictions.jsonl": "".join(json.dumps(line) + "\n" for line in good["tvc"])}
    # how2qa is missing


EXPECTED = [  # (severity, task, file, id, part of the message)
    ("error", "how2qa", "how2qa_val_predictions.json", None, "the task's folder is missing"),
    ("error", "vlep", "vlep_dev_predictions.json", None,
     "expected vlep/vlep_dev_predictions.json; found my_submission/vlep/vlep_dev_predictions.json: zip the task "
     "folders themselves, not an enclosing folder"),
    ("warning", "tvr", "tvr_val_predictions.json", "90200", "102 predictions; only the first 100 are scored"),
    ("error", "tvr", "tvr_val_predictions.json", "90201", "1 prediction(s) are not [video_idx, start, end, score]"),
    ("error", "tvr", "tvr_val_predictions.json", "90202", "empty prediction list"),
    ("error", "tvr", "tvr_val_predictions.json", "90201", "no prediction for this ground-truth id"),
    ("error", "tvr", "tvr_val_predictions.json", "90202", "no prediction for this ground-truth id"),
    ("error", "yc2r", "yc2r_val_predictions.json", None, "video retrieval takes only 'VR' predictions"),
    ("error", "tvqa", "tvqa_val_predictions.json", "122041", "no prediction for this ground-truth id"),
    ("warning", "tvqa", "tvqa_val_predictions.json", "999", "not in the ground truth; ignored"),
    ("error", "violin", "violin_test_predictions.json", "4242",
     "not in the ground truth (the official scorer rejects extra ids for this task)"),
]


def test_validate_reports_every_problem_at_once(gts):
    _, problems = validate({k: v.encode() for k, v in broken_files(gts).items()}, "val", gts)
    got = [(p.severity, p.task, p.file, p.id) for p in problems]
    assert got == [e[:4] for e in EXPECTED]
    for p, (severity, task, file, pid, message) in zip(problems, EXPECTED, strict=True):
        text = str(p)
        assert text.startswith(f"{severity}: {task}/{file}" + (f" id {pid}" if pid else "") + ": ")
        assert message in text


def test_score_submission_raises_listing_every_problem(gts, tmp_path):
    path = zip_files(tmp_path / "broken.zip", broken_files(gts))
    with pytest.raises(SubmissionError) as err:
        score_submission(path, "val", ROOT, meteor=False)
    assert len(err.value.problems) == len(EXPECTED)
    message = str(err.value)
    assert message.startswith("the submission has 9 error(s) and 2 warning(s):\n")
    assert "  error: tvqa/tvqa_val_predictions.json id 122041: no prediction" in message
    assert "  error: violin/violin_test_predictions.json id 4242: not in the ground truth" in message
    assert "  warning: tvqa/tvqa_val_predictions.json id 999: not in the ground truth; ignored" in message


def test_other_malformed_predictions(gts):
    tvc = TASKS["tvc"]
    lines = b'{"clip_id": 86602, "descs": [{"desc": "a"}]}\nnot json\n{"clip_id": 1, "descs": [{"desc": "b"}]}\n' \
            b'{"clip_id": 86603, "descs": []}\n'
    preds, _, problems = parse_predictions(tvc, "tvc_val_predictions.jsonl", lines, gts["tvc"])
    assert preds == {86602: "a", 1: "b"}
    expected = [("error", None, "line 2:"), ("error", None, "line 4:"), ("error", "86603", "no pred"),
                ("error", "1", "not in ")]
    assert [(p.severity, p.id, p.message[:7]) for p in problems] == expected
    assert "tvc" in STRICT_IDS
    _, _, problems = parse_predictions(TASKS["tvqa"], "f.json", b'{"122039": 5, "x": 1, "122040": 1, "122041": 4}',
                                       gts["tvqa"])
    assert [str(p) for p in problems] == [
        "error: tvqa/f.json id 122039: answer 5 is not an integer in 0..4",
        "error: tvqa/f.json: qid 'x' is not an integer",
        "error: tvqa/f.json id 122039: no prediction for this ground-truth id"]
    _, _, problems = parse_predictions(TASKS["tvr"], "f.json", b'{"VR": []}', gts["tvr"])
    assert "expected a JSON object with a list under 'VCMR'" in str(problems[0]) and len(problems) == 1
    _, _, problems = parse_predictions(TASKS["vlep"], "f.json", b"{", gts["vlep"])
    assert str(problems[0]).startswith("error: vlep/f.json: not valid JSON")


def test_layout_problems_name_a_misnamed_file():
    files = {"violin/violin_val_predictions.json": b"{}", "tvr/tvr_val_predictions.json": b"{}"}
    problems = layout_problems(files, "val", ["tvr", "violin"])
    assert [str(p) for p in problems] == [
        "error: violin/violin_test_predictions.json: expected violin/violin_test_predictions.json; found "
        "violin/violin_val_predictions.json"]


# --------------------------------------------------------------------------------------------------------- CLI
def test_cli_scores_and_ranks_submissions(gts, tmp_path, capsys):
    best = write_submission(tmp_path / "best.zip", {"val": perfect(gts)})
    worse_preds = perfect(gts)
    worse_preds["tvqa"]["122041"] = 0  # 2 of 3 right
    worse_preds["yc2r"]["VR"][0]["predictions"] = [1, 10337]  # R@1 misses one query
    worse = write_submission(tmp_path / "worse.zip", {"val": worse_preds})
    md, table, out_json = tmp_path / "table.md", tmp_path / "table.csv", tmp_path / "all.json"
    code = evaluate.main([str(worse), str(best), "--split", "val", "--gt", str(ROOT), "--no-meteor",
                          "--table-md", str(md), "--table-csv", str(table), "--json", str(out_json)])
    assert code == 0
    rows = list(csv.reader(io.StringIO(table.read_text())))
    assert rows[0] == ["submission", "YC2R", "TVR", "VLEP", "TVQA", "VIOLIN", "How2QA", "TVC", "Mean (7 tasks)",
                       "evaluate.py average"]
    assert [r[0] for r in rows[1:]] == ["best", "worse"]  # ranked by the mean, not by argument order
    assert rows[1][1:7] == ["100.00"] * 6 and rows[2][1] == "83.33" and rows[2][4] == "66.67"
    assert rows[1][7] == rows[2][7]  # same captions
    cider = float(rows[1][7])
    assert float(rows[1][8]) == round((600 + cider) / 7, 2)
    assert float(rows[2][8]) == round((83.33 + 400 + 66.67 + cider) / 7, 2)
    lines = md.read_text().splitlines()
    assert lines[0].startswith("| submission | YC2R | TVR |") and lines[2].startswith("| best | 100.00 |")
    assert lines[3].startswith("| worse | 83.33 |") and len(lines) == 4
    reports = json.loads(out_json.read_text())
    assert [r["submission"] for r in reports] == ["worse", "best"] and reports[0]["scores"]["tvqa"] == 66.67
    printed = capsys.readouterr().out
    assert "TVQA        accuracy 66.67" in printed and "| best |" in printed


def test_cli_fails_on_a_broken_submission_listing_its_problems(gts, tmp_path, capsys):
    good = write_submission(tmp_path / "good.zip", {"val": perfect(gts)})
    broken = zip_files(tmp_path / "broken.zip", broken_files(gts))
    code = evaluate.main([str(broken), str(good), "--split", "val", "--gt", str(ROOT), "--no-meteor",
                          "--tasks", "tvr", "tvqa", "violin", "vlep", "how2qa"])
    assert code == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"{broken}: the submission has 8 error(s) and 2 warning(s):")
    for part in ("error: tvqa/tvqa_val_predictions.json id 122041: no prediction",
                 "error: vlep/vlep_dev_predictions.json: expected vlep/vlep_dev_predictions.json; found my_submission",
                 "error: how2qa/how2qa_val_predictions.json: expected how2qa/how2qa_val_predictions.json; the task's",
                 "warning: tvr/tvr_val_predictions.json id 90200: 102 predictions"):
        assert part in captured.err
    assert "| good |" in captured.out  # the good submission is still scored


def test_cli_check_only_validates(gts, tmp_path, capsys, monkeypatch):
    def no_scoring(*args, **kwargs):
        raise AssertionError("--check must not score")

    monkeypatch.setattr(metrics, "caption_scores", no_scoring)
    preds = perfect(gts)
    preds["tvqa"]["999"] = 1
    path = write_submission(tmp_path / "s.zip", {"val": preds})
    assert evaluate.main([str(path), "--split", "val", "--gt", str(ROOT), "--check"]) == 0
    out = capsys.readouterr().out
    assert out == f"{path}: OK (1 warning(s))\n  warning: tvqa/tvqa_val_predictions.json id 999: not in the ground " \
                  f"truth; ignored\n"


def test_cli_without_ground_truth_is_a_user_error(gts, tmp_path, capsys):
    path = write_submission(tmp_path / "s.zip", {"val": {"tvqa": {"1": 0}}})
    assert evaluate.main([str(path), "--split", "val", "--gt", str(tmp_path)]) == 2
    assert "no VALUE ground truth found for the val phase" in capsys.readouterr().err
    (tmp_path / "notzip.zip").write_text("hello")  # one bad file fails that submission only (exit 1)
    answers = {str(k): v for k, v in load_ground_truth(TASKS["tvqa"], "val", ROOT).answers.items()}
    good = write_submission(tmp_path / "good.zip", {"val": {"tvqa": answers}})
    assert evaluate.main([str(tmp_path / "notzip.zip"), str(good), "--split", "val", "--gt", str(ROOT),
                          "--tasks", "tvqa"]) == 1
    captured = capsys.readouterr()
    assert "notzip.zip: error:" in captured.err and "not a zip file" in captured.err
    assert "| good |" in captured.out
