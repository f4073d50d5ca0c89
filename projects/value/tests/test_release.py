"""The DataRelease readers on the fixture files (``make_fixtures.py``), HERO's subtitle-to-frame alignment on
hand-computed cases, the task table, and one malformed file per error the readers must name."""

import json
from pathlib import Path

import numpy as np
import pytest

from projects.value import release
from projects.value.tasks import TASKS, annotation_file, get_task, subtitle_file, video_index_file
from shared.errors import CorruptDataError, DatasetNotFoundError, UserFacingError

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = FIXTURES / "release"
ANN = ROOT / "ann"
BAD = FIXTURES / "malformed"
FEATS = [ROOT / "vis_features" / "tv" / "resnet", ROOT / "vis_features" / "tv" / "slowfast"]
FRIENDS = "friends_s01e03_seg02_clip_19"


# ------------------------------------------------------------------------------------------------------- tasks
def test_prediction_file_names_of_both_phases():
    names = {t.name: (t.prediction_file("val"), t.prediction_file("test")) for t in TASKS.values()}
    p = "_predictions.json"
    assert names == {
        "tvr": ("tvr_val" + p, "tvr_test" + p), "how2r": ("how2r_val" + p, "how2r_test_public" + p),
        "yc2r": ("yc2r_val" + p, "yc2r_test" + p), "vatex_en_r": ("vatex_en_r_val" + p, "vatex_en_r_test_public" + p),
        "tvqa": ("tvqa_val" + p, "tvqa_test" + p), "how2qa": ("how2qa_val" + p, "how2qa_test_public" + p),
        "violin": ("violin_test" + p, "violin_test_private" + p), "vlep": ("vlep_dev" + p, "vlep_test" + p),
        "tvc": ("tvc_val" + p + "l", "tvc_test" + p + "l"), "yc2c": ("yc2c_val" + p + "l", "yc2c_test" + p + "l"),
        "vatex_en_c": ("vatex_en_c_test_public" + p + "l", "vatex_en_c_test_private" + p + "l")}


def test_task_table():
    assert [t.group for t in TASKS.values()].count("retrieval") == 4
    assert {t.name: t.answers for t in TASKS.values() if t.kind == "qa"} == {"tvqa": 5, "how2qa": 4, "violin": 2,
                                                                           "vlep": 2}
    assert annotation_file(TASKS["tvqa"], "val") == "tvqa_val.jsonl"
    assert annotation_file(TASKS["tvqa"], "test") == "tvqa_test_release.jsonl"
    assert annotation_file(TASKS["how2r"], "val") == "how2r_val_1k_release.jsonl"
    assert annotation_file(TASKS["vlep"], "dev") == "vlep_dev_release.jsonl"
    assert subtitle_file("tv") == "tv_subtitles.jsonl"
    assert video_index_file(TASKS["yc2r"]) == "yc2r_video2dur_idx.json"
    assert get_task("tvc").score_name == "CIDEr-D"
    with pytest.raises(KeyError, match="unknown VALUE task 'tvqa_plus'"):
        get_task("tvqa_plus")


# ------------------------------------------------------------------------------------------------- annotations
def test_read_jsonl_numbers_lines_and_skips_blank_ones(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert release.read_jsonl(path) == [(1, {"a": 1}), (3, {"a": 2})]
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(CorruptDataError, match=r"x\.jsonl:2: expected a JSON object, got list"):
        release.read_jsonl(path)


def test_tvr_annotations():
    recs = release.load_annotations(TASKS["tvr"], ANN / "tvr" / "tvr_val_release.jsonl")
    assert [r["desc_id"] for r in recs] == [90200, 90201, 90202]
    assert recs[0]["ts"] == (10.2, 21.5) and recs[2]["ts"] == (60.0, 89.35)
    assert recs[1]["vid_name"] == "house_s02e05_seg02_clip_11" and recs[1]["type"] == "t"
    assert [r["_line"] for r in recs] == [1, 2, 3]


def test_yc2r_annotations_have_no_ts():
    recs = release.load_annotations(TASKS["yc2r"], ANN / "yc2r" / "yc2r_val_release.jsonl")
    assert [(r["vid_name"], r["desc_id"], r["duration"]) for r in recs] == [("ljyO7IaGWLY_10", 10337, 7),
                                                                          ("ljyO7IaGWLY_11", 10338, 12)]
    assert all("ts" not in r for r in recs)


def test_tvqa_annotations_parse_string_ts_and_nan():
    val = release.load_annotations(TASKS["tvqa"], ANN / "tvqa" / "tvqa_val.jsonl", answers=True)
    assert [r["ts"] for r in val] == [(10.2, 21.5), (0.0, 7.5), (40.5, 52.07)]
    assert [r["answer_idx"] for r in val] == [0, 1, 4]
    assert val[0]["a4"] == "A badge." and val[0]["show_name"] == "Castle"
    train = release.load_annotations(TASKS["tvqa"], ANN / "tvqa" / "tvqa_train.jsonl", answers=True)
    assert train[0]["ts"] == (20.16, 25.12) and train[0]["vid_name"] == "s03e02_seg02_clip_10"
    assert "ts" not in train[1]  # "NaN-NaN": a question without a localised moment


def test_how2qa_violin_vlep_annotations():
    how2qa = release.load_annotations(TASKS["how2qa"], ANN / "how2qa" / "how2qa_val_release.jsonl", answers=True)
    assert [(r["qid"], r["ts"], r["answer_idx"]) for r in how2qa] == [(30351, (36.58, 58.52), 2),
                                                                      (30352, (0.0, 11.77), 0)]
    assert "a4" not in how2qa[0]
    violin = release.load_annotations(TASKS["violin"], ANN / "violin" / "violin_test_release.jsonl", answers=True)
    assert [(r["example_id"], r["answer"]) for r in violin] == [(85722, 1), (85723, 0)]
    vlep = release.load_annotations(TASKS["vlep"], ANN / "vlep" / "vlep_dev_release.jsonl", answers=True)
    assert vlep[0]["ts"] == (10.54, 13.55) and vlep[0]["answer"] == 1 and len(vlep[0]["events"]) == 2
    assert vlep[1]["vid_name"].endswith("_ep")


def test_tvc_annotations():
    recs = release.load_annotations(TASKS["tvc"], ANN / "tvc" / "tvc_val_release.jsonl", answers=True)
    assert [r["clip_id"] for r in recs] == [86602, 86603]
    assert recs[0]["ts"] == (10.2, 21.5) and len(recs[0]["descs"]) == 4
    assert recs[0]["descs"][0] == {"desc": "Castle hands Beckett a signed book.", "desc_id": 90200, "type": "v",
                                   "from_retrieval": True}
    train = release.load_annotations(TASKS["tvc"], ANN / "tvc" / "tvc_train_release.jsonl", answers=True)
    assert len(train[0]["descs"]) == 2


def test_answers_required_only_when_asked(tmp_path):
    path = tmp_path / "tvqa_test_release.jsonl"
    rec = {f"a{i}": "x" for i in range(5)} | {"q": "Why?", "qid": 7, "vid_name": "s01e01_seg01_clip_00",
                                              "ts": "1-2", "show_name": "Friends"}
    path.write_text(json.dumps(rec) + "\n")
    assert release.load_annotations(TASKS["tvqa"], path)[0]["qid"] == 7
    with pytest.raises(CorruptDataError, match=r"tvqa_test_release\.jsonl:1: TVQA record lacks answer_idx"):
        release.load_annotations(TASKS["tvqa"], path, answers=True)


def test_find_file_in_the_release_and_reference_layouts(tmp_path):
    assert release.find_file(ROOT, "tvr_val_release.jsonl", "tvr") == ANN / "tvr" / "tvr_val_release.jsonl"
    assert release.find_file(ROOT, "tv_subtitles.jsonl") == ANN / "tv_subtitles.jsonl"
    assert release.find_file(ROOT, "tvr_val_release.jsonl") is None  # not under ann/ itself
    (tmp_path / "tvr").mkdir()
    (tmp_path / "tvr" / "tvr_val_archive.jsonl").write_text("")  # EvaluationTools' reference_data/<task>/
    assert release.find_file(tmp_path, "tvr_val_archive.jsonl", "tvr") == tmp_path / "tvr" / "tvr_val_archive.jsonl"
    (tmp_path / "ann" / "vlep").mkdir(parents=True)
    (tmp_path / "ann" / "vlep" / "vlep_subtitles.jsonl").write_text("")  # DataRelease puts VLEP's here
    assert release.subtitles_path(tmp_path, "vlep") == tmp_path / "ann" / "vlep" / "vlep_subtitles.jsonl"
    assert release.subtitles_path(ROOT, "tv") == ANN / "tv_subtitles.jsonl"


def test_missing_files_raise_dataset_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        release.require_file(tmp_path, "tvr_val_release.jsonl", "tvr")
    assert "tvr_val_release.jsonl" in str(err.value) and f"{tmp_path}/ann/tvr/" in str(err.value)
    assert "DataRelease" in str(err.value)
    with pytest.raises(DatasetNotFoundError, match="subtitles of source 'how2'"):
        release.subtitles_path(ROOT, "how2")
    with pytest.raises(DatasetNotFoundError) as err:
        release.load_features(FEATS, "bbt_s01e01_seg01_clip_00")
    assert str(FEATS[0] / "bbt_s01e01_seg01_clip_00.npz") in str(err.value)


# ---------------------------------------------------------------------------------------- subtitles and index
def test_subtitles():
    subs = release.load_subtitles(ANN / "tv_subtitles.jsonl")
    assert list(subs) == [FRIENDS, "grey_s03e12_seg02_clip_17", "castle_s01e01_seg01_clip_02"]
    assert subs[FRIENDS][1] == (" Monica : Hey!", 2.8, 3.9)
    assert len(subs[FRIENDS]) == 4 and subs["castle_s01e01_seg01_clip_02"] == []
    assert release.load_subtitles(ANN / "yc2_subtitles.jsonl")["ljyO7IaGWLY_10"] == [("now we layer the sauce",
                                                                                       0.5, 3.2)]


def test_video_index():
    index = release.load_video_index(ANN / "tvr" / "tvr_video2dur_idx.json")
    assert set(index) == {"train", "val", "test_public"}
    assert index["val"] == {"castle_s01e01_seg01_clip_02": (89.35, 19614), "house_s02e05_seg02_clip_11": (66.2, 19615)}
    assert release.load_video_index(ANN / "yc2r" / "yc2r_video2dur_idx.json")["val"]["ljyO7IaGWLY_11"] == (12.0,
                                                                                                            10338)


# --------------------------------------------------------------------------------------------------- features
def test_features_are_cut_to_the_shorter_and_concatenated_2d_first():
    resnet = np.load(FEATS[0] / f"{FRIENDS}.npz")["features"]
    slowfast = np.load(FEATS[1] / f"{FRIENDS}.npz")["features"]
    assert resnet.dtype == slowfast.dtype == np.float16
    assert resnet.shape == (8, 6) and slowfast.shape == (7, 4)
    feat = release.load_features(FEATS, FRIENDS)
    assert feat.dtype == np.float32 and feat.shape == (7, 10)
    np.testing.assert_array_equal(feat[:, :6], resnet[:7].astype(np.float32))
    np.testing.assert_array_equal(feat[:, 6:], slowfast[:7].astype(np.float32))
    assert release.load_features(FEATS, "grey_s03e12_seg02_clip_17").shape == (5, 10)  # 5 resnet vs 6 slowfast
    assert release.load_features(FEATS[1:], "grey_s03e12_seg02_clip_17").shape == (6, 4)


# -------------------------------------------------------------------------------------------------- alignment
def test_subtitle_frames():
    assert release.subtitle_frames(0.0, 4.4, 10) == range(0, 3)
    assert release.subtitle_frames(2.8, 3.9, 10) == range(1, 3)
    assert release.subtitle_frames(6.0, 30.0, 7) == range(4, 7)  # cut to the video
    assert release.subtitle_frames(3.0, 3.0, 10) == range(2, 2)  # zero length on a frame boundary: none


def test_alignment_of_the_fixture_video():
    """7 frames (10.5 s). Rachel 0.0-4.4 s = [0, 2.93] frames covers 0-2, Monica 2.8-3.9 s = [1.87, 2.6] covers
    1-2. Frame 1 = [1, 2]: IoU Rachel 1/2.93 = 0.34, Monica 0.13/1.6 = 0.08 -> Rachel (although Monica's range is
    shorter). Frame 2: Rachel 0.93/3 = 0.31, Monica 0.6/1.13 = 0.53 -> Monica. Ross 6.0-7.4 s covers frame 4.
    Chandler starts at 10.6 s, after the 7 frames: dropped. Frames 3, 5, 6 have no subtitle."""
    subs = release.load_subtitles(ANN / "tv_subtitles.jsonl")
    n = len(release.load_features(FEATS, FRIENDS))
    clips, unmatched = release.align_subtitles(subs[FRIENDS], n)
    assert clips == [(" Rachel : Hi, guys.", [0, 1]), (" Monica : Hey!", [2]), (" Ross : So, what's going on?", [4])]
    assert unmatched == [3, 5, 6]
    n = len(release.load_features(FEATS, "grey_s03e12_seg02_clip_17"))
    assert release.align_subtitles(subs["grey_s03e12_seg02_clip_17"], n) == ([(" Meredith : Derek?", [0, 1])],
                                                                             [2, 3, 4])


def test_alignment_without_subtitles_makes_groups_of_five_frames():
    subs = release.load_subtitles(ANN / "tv_subtitles.jsonl")["castle_s01e01_seg01_clip_02"]
    assert release.align_subtitles(subs, 4) == ([("", [0, 1, 2, 3])], [])
    assert release.align_subtitles([], 12) == ([("", [0, 1, 2, 3, 4]), ("", [5, 6, 7, 8, 9]), ("", [10, 11])], [])
    assert release.align_subtitles([], 4, group=2) == ([("", [0, 1]), ("", [2, 3])], [])


def test_alignment_a_subtitle_can_lose_every_frame_and_ties_go_to_the_earlier():
    # E = [0, 2] frames 0-1 (IoU 0.5 each); F = [0.2, 1.8] frames 0-1 (IoU 0.8/1.8 = 0.44 each): F gets nothing
    clips, unmatched = release.align_subtitles([("E", 0.0, 3.0), ("F", 0.3, 2.7)], 3)
    assert clips == [("E", [0, 1]), ("F", [])] and unmatched == [2]
    clips, _ = release.align_subtitles([("first", 1.5, 3.0), ("second", 1.5, 3.0)], 3)
    assert clips == [("first", [1]), ("second", [])]


def test_alignment_caps_a_long_last_subtitle_to_11_frames():
    # 30 s video; the last subtitle lasts 26 s > 16 s, so of its frames 2-19 only 2-12 are kept
    clips, unmatched = release.align_subtitles([("x", 0.0, 1.0), ("long", 3.0, 29.0)], 20)
    assert clips == [("x", [0]), ("long", list(range(2, 13)))]
    assert unmatched == [1, *range(13, 20)]
    # not the last one: no cap
    clips, _ = release.align_subtitles([("long", 3.0, 29.0), ("x", 29.5, 29.9)], 20)
    assert clips[0] == ("long", list(range(2, 19)))
    # a subtitle starting exactly at the end of 7 frames (10.5 s) is dropped; if none is left: pseudo-groups
    assert release.align_subtitles([("a", 0.0, 1.0), ("b", 10.5, 11.0)], 7) == ([("a", [0])], [1, 2, 3, 4, 5, 6])
    assert release.align_subtitles([("b", 10.5, 11.0)], 7) == ([("", [0, 1, 2, 3, 4]), ("", [5, 6])], [])
    # a dropped last subtitle caps nothing: the long one before it keeps all its frames
    clips, _ = release.align_subtitles([("long", 3.0, 29.0), ("late", 31.0, 32.0)], 20)
    assert clips == [("long", list(range(2, 20)))]


# -------------------------------------------------------------------------------------------------- malformed
def _annotations(task: str, answers: bool = False):
    return lambda path: release.load_annotations(TASKS[task], path, answers=answers)


@pytest.mark.parametrize("name, read, expected", [
    ("tvr_invalid_json.jsonl", _annotations("tvr"), [":2: not valid JSON"]),
    ("tvr_missing_ts.jsonl", _annotations("tvr"), [":2: TVR record lacks ts"]),
    ("tvqa_bad_ts.jsonl", _annotations("tvqa"), [":1: key ts: ts must be", "'abc'"]),
    ("tvqa_answer_out_of_range.jsonl", _annotations("tvqa", True), [":2: answer_idx 7 outside 0..4"]),
    ("violin_duplicate_id.jsonl", _annotations("violin", True), [":2: example_id 85722 already used on line 1"]),
    ("tv_subtitles_end_before_start.jsonl", release.load_subtitles,
     [":2: sub[1] of grey_s03e12_seg02_clip_17 has end 4.1 before start 5.0"]),
    ("tvr_video2dur_idx_not_pair.json", release.load_video_index,
     [": val/house_s02e05_seg02_clip_11: expected [duration, video_idx]", "got 66.2"]),
])
def test_malformed_annotation_files_name_file_line_and_key(name, read, expected):
    path = BAD / name
    with pytest.raises(CorruptDataError) as err:
        read(path)
    assert isinstance(err.value, UserFacingError)
    message = str(err.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message


@pytest.mark.parametrize("name, expected", [
    ("no_features_key", "no key 'features' (keys: feats)"),
    ("nan_features", "'features' holds NaN or infinite values"),
])
def test_malformed_feature_files(name, expected):
    with pytest.raises(CorruptDataError) as err:
        release.load_features([BAD / name], name)
    assert str(err.value) == f"{BAD / name / name}.npz: {expected}"


def test_truncated_feature_file(tmp_path):
    path = tmp_path / "clip.npz"
    np.savez(path, features=np.ones((6, 4), np.float32))
    path.write_bytes(path.read_bytes()[:-40])  # the zip's central directory is cut off: numpy raises BadZipFile
    with pytest.raises(CorruptDataError, match=r"clip.npz: not a readable .npz \(File is not a zip file\)"):
        release.load_features([tmp_path], "clip")


def test_other_malformed_values(tmp_path):
    path = tmp_path / "tvr_video2dur_idx.json"
    path.write_text('{"val": {"castle_s01e01_seg01_clip_02": ["long", 19614]}}')
    with pytest.raises(CorruptDataError, match="val/castle_s01e01_seg01_clip_02"):
        release.load_video_index(path)
    path.write_text('{"val": {"a": [1.0, 2]},\n "test": [}')
    with pytest.raises(CorruptDataError, match=r"tvr_video2dur_idx\.json:2: not valid JSON"):
        release.load_video_index(path)
    empty = tmp_path / "tvr_val_release.jsonl"
    empty.write_text("\n")
    with pytest.raises(CorruptDataError, match="no records"):
        release.load_annotations(TASKS["tvr"], empty)
    bad_events = tmp_path / "vlep_dev_release.jsonl"
    bad_events.write_text(json.dumps({"example_id": 1, "vid_name": "x_ep", "ts": [1, 2], "events": ["only one"],
                                      "answer": 0}) + "\n")
    with pytest.raises(CorruptDataError, match=r":1: events must be a list of two"):
        release.load_annotations(TASKS["vlep"], bad_events)
    with pytest.raises(CorruptDataError, match=r"ts \[5, 2\] is not a span"):
        release.parse_span([5, 2], "x")
    assert release.parse_span("NaN-NaN", "x", allow_nan=True) is None
    with pytest.raises(CorruptDataError, match="is not a span"):
        release.parse_span("NaN-NaN", "x")


def test_non_integer_id_names_file_line_and_key(tmp_path: Path):
    path = tmp_path / "tvr_val_release.jsonl"
    path.write_text(json.dumps({"vid_name": "v", "duration": 9.0, "ts": [0, 3], "desc": "d", "desc_id": 1}) + "\n"
                    + json.dumps({"vid_name": "v", "duration": 9.0, "ts": [0, 3], "desc": "d", "desc_id": "x7"}) + "\n")
    with pytest.raises(CorruptDataError, match=r"tvr_val_release.jsonl:2: desc_id must be an integer, got 'x7'"):
        release.load_annotations(TASKS["tvr"], path)
