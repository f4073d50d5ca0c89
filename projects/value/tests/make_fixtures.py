"""Writes the tiny VALUE fixtures: ``python -m projects.value.tests.make_fixtures``.

``fixtures/release/`` follows the DataRelease layout and record formats exactly (``ann/<task>/...``, the subtitle
files in ``ann/``, ``vis_features/<source>/<feature>/<vid_name>.npz`` with key ``features`` in float16); the
records are made up but shaped like the real ones (vid_names, id ranges, TVQA's ``"st-ed"`` strings, ...).
``fixtures/malformed/`` holds one broken file per failure the readers must name. Every file is a few lines.
"""

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent / "fixtures"
RELEASE = HERE / "release"
MALFORMED = HERE / "malformed"

# TV videos: two of TVR's train split, two of its val split (global indices as in tvr_video2dur_idx.json)
TV_TRAIN = {"friends_s01e03_seg02_clip_19": [61.46, 2179], "grey_s03e12_seg02_clip_17": [94.03, 2180]}
TV_VAL = {"castle_s01e01_seg01_clip_02": [89.35, 19614], "house_s02e05_seg02_clip_11": [66.2, 19615]}
TV_TEST = {"met_s05e20_seg02_clip_08": [75.1, 1090]}
# (vid_name, rows of resnet, rows of slowfast): the 2D and 3D extractors disagree by a frame or two
FEATURES = (("friends_s01e03_seg02_clip_19", 8, 7), ("grey_s03e12_seg02_clip_17", 5, 6),
            ("castle_s01e01_seg01_clip_02", 4, 4), ("house_s02e05_seg02_clip_11", 6, 5),
            ("s03e02_seg02_clip_10", 20, 21))  # a TVQA clip of The Big Bang Theory (no show prefix)
RESNET_DIM, SLOWFAST_DIM = 6, 4


def jsonl(path: Path, records: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def text(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


def npz(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` with fixed zip timestamps, so that rewriting the fixtures changes no byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for key, array in arrays.items():
            with z.open(zipfile.ZipInfo(f"{key}.npy", date_time=(2021, 6, 7, 0, 0, 0)), "w") as f:
                np.lib.format.write_array(f, np.asarray(array), allow_pickle=False)


def release() -> None:
    ann = RELEASE / "ann"
    # ---------------------------------------------------------------------------------------------- retrieval
    jsonl(ann / "tvr" / "tvr_train_release.jsonl", [
        {"vid_name": "friends_s01e03_seg02_clip_19", "duration": 61.46, "ts": [16.48, 33.87],
         "desc": "Phoebe puts one of her ponytails in her mouth.", "type": "v", "desc_id": 0},
        {"vid_name": "grey_s03e12_seg02_clip_17", "duration": 94.03, "ts": [35.73, 40.9],
         "desc": "Meredith walks into the kitchen and talks to Derek.", "type": "vt", "desc_id": 1},
    ])
    jsonl(ann / "tvr" / "tvr_val_release.jsonl", [
        {"vid_name": "castle_s01e01_seg01_clip_02", "duration": 89.35, "ts": [10.2, 21.5],
         "desc": "Castle hands Beckett a signed book.", "type": "v", "desc_id": 90200},
        {"vid_name": "house_s02e05_seg02_clip_11", "duration": 66.2, "ts": [0.0, 7.5],
         "desc": "House tells Wilson the patient is lying.", "type": "t", "desc_id": 90201},
        {"vid_name": "castle_s01e01_seg01_clip_02", "duration": 89.35, "ts": [60.0, 89.35],
         "desc": "Beckett walks out of the room holding a file.", "type": "vt", "desc_id": 90202},
    ])
    text(ann / "tvr" / "tvr_video2dur_idx.json",
         json.dumps({"test_public": TV_TEST, "train": TV_TRAIN, "val": TV_VAL}) + "\n")
    jsonl(ann / "yc2r" / "yc2r_train_release.jsonl", [
        {"vid_name": "GLd3aX16zBg_0", "duration": 12, "desc": "spread margarine on two slices of white bread",
         "desc_id": 0},
    ])
    jsonl(ann / "yc2r" / "yc2r_val_release.jsonl", [
        {"vid_name": "ljyO7IaGWLY_10", "duration": 7, "desc": "layer marinara sauce and pierogies", "desc_id": 10337},
        {"vid_name": "ljyO7IaGWLY_11", "duration": 12, "desc": "bake the pierogies in the oven", "desc_id": 10338},
    ])
    text(ann / "yc2r" / "yc2r_video2dur_idx.json", json.dumps({
        "train": {"GLd3aX16zBg_0": [12, 0]},
        "val": {"ljyO7IaGWLY_10": [7, 10337], "ljyO7IaGWLY_11": [12, 10338]},
        "test": {"xHr8X2Wpmno_0": [9, 13829]}}) + "\n")
    # -------------------------------------------------------------------------------------------------------- QA
    tvqa_answers = ("Because Sheldon is being rude.", "Because he is late.", "Because he wants to leave.",
                    "Because Leonard took his seat.", "Because he is hungry.")
    jsonl(ann / "tvqa" / "tvqa_train.jsonl", [
        {**{f"a{i}": a for i, a in enumerate(tvqa_answers)}, "answer_idx": 2,
         "q": "Why is Howard upset when he walks in?", "qid": 0, "show_name": "The Big Bang Theory",
         "ts": "20.16-25.12", "vid_name": "s03e02_seg02_clip_10"},
        {**{f"a{i}": a for i, a in enumerate(tvqa_answers)}, "answer_idx": 0,
         "q": "What does Sheldon say after Penny leaves?", "qid": 1, "show_name": "The Big Bang Theory",
         "ts": "NaN-NaN", "vid_name": "s03e02_seg02_clip_10"},  # the original release has unlocalised questions
    ])
    jsonl(ann / "tvqa" / "tvqa_val.jsonl", [
        {"a0": "A book.", "a1": "A gun.", "a2": "A coffee cup.", "a3": "A phone.", "a4": "A badge.", "answer_idx": 0,
         "q": "What does Castle hand Beckett?", "qid": 122039, "show_name": "Castle", "ts": "10.2-21.5",
         "vid_name": "castle_s01e01_seg01_clip_02"},
        {"a0": "Cuddy.", "a1": "Wilson.", "a2": "Foreman.", "a3": "Chase.", "a4": "Cameron.", "answer_idx": 1,
         "q": "Who is House talking to?", "qid": 122040, "show_name": "House M.D.", "ts": "0-7.5",
         "vid_name": "house_s02e05_seg02_clip_11"},
        {"a0": "Sitting.", "a1": "Running.", "a2": "Dancing.", "a3": "Sleeping.", "a4": "Cooking.", "answer_idx": 4,
         "q": "What is Monica doing when Rachel comes in?", "qid": 122041, "show_name": "Friends",
         "ts": "40.5-52.07", "vid_name": "friends_s01e03_seg02_clip_19"},
    ])
    jsonl(ann / "how2qa" / "how2qa_val_release.jsonl", [
        {"vid_name": "25848", "ts": "36.58-58.52", "qid": 30351, "q": "What website is shown during this video?",
         "a0": "Www.lyndalepl.com.", "a1": "Www.plants.com.", "a2": "Www.lyndaleplants.com.", "a3": "Www.lyndale.com.",
         "answer_idx": 2},
        {"vid_name": "11723", "ts": "0-11.77", "qid": 30352, "q": "What is the man folding?",
         "a0": "A paper crane.", "a1": "A shirt.", "a2": "A map.", "a3": "A towel.", "answer_idx": 0},
    ])
    jsonl(ann / "violin" / "violin_test_release.jsonl", [
        {"paired_id": "gt3ntYidpvs_clip_000_040-0-0", "vid_name": "gt3ntYidpvs_clip_000_040",
         "statement": "The lady in the black tanktop looked out the window to make sure it was safe to open it.",
         "example_id": 85722, "answer": 1},
        {"paired_id": "gt3ntYidpvs_clip_000_040-0-1", "vid_name": "gt3ntYidpvs_clip_000_040",
         "statement": "The lady in the black tanktop opened the door without looking.", "example_id": 85723,
         "answer": 0},
    ])
    jsonl(ann / "vlep" / "vlep_dev_release.jsonl", [
        {"example_id": 21411, "vid_name": "OO9kSxcT9Rg_subs_012_00:13:00_00:14:00_ep", "ts": [10.54, 13.55],
         "events": ["The customer eats the food from the tray.", "The customer takes the tray of food."],
         "answer": 1, "split": "dev"},
        {"example_id": 21412, "vid_name": "friends_s03e09_seg02_clip_07_ep", "ts": [3.2, 8.0],
         "events": ["Joey sits down on the couch.", "Joey leaves the apartment."], "answer": 0, "split": "dev"},
    ])
    # ------------------------------------------------------------------------------------------------ captioning
    jsonl(ann / "tvc" / "tvc_train_release.jsonl", [
        {"vid_name": "grey_s03e12_seg02_clip_17", "duration": 94.03, "ts": [35.73, 40.9], "clip_id": 0,
         "descs": [{"desc": "Meredith walks into the kitchen.", "desc_id": 0, "type": "v", "from_retrieval": True},
                   {"desc": "Meredith talks to Derek in the kitchen.", "desc_id": 1, "type": "vt",
                    "from_retrieval": False}]},
    ])
    jsonl(ann / "tvc" / "tvc_val_release.jsonl", [
        {"vid_name": "castle_s01e01_seg01_clip_02", "duration": 89.35, "ts": [10.2, 21.5], "clip_id": 86602,
         "descs": [{"desc": "Castle hands Beckett a signed book.", "desc_id": 90200, "type": "v",
                    "from_retrieval": True},
                   {"desc": "Castle gives a book to Beckett.", "desc_id": 90300, "type": "v", "from_retrieval": False},
                   {"desc": "Beckett takes the book Castle signed.", "desc_id": 90301, "type": "v",
                    "from_retrieval": False},
                   {"desc": "Castle smiles and passes Beckett his novel.", "desc_id": 90302, "type": "vt",
                    "from_retrieval": False}]},
        {"vid_name": "house_s02e05_seg02_clip_11", "duration": 66.2, "ts": [0.0, 7.5], "clip_id": 86603,
         "descs": [{"desc": "House tells Wilson the patient is lying.", "desc_id": 90201, "type": "t",
                    "from_retrieval": True},
                   {"desc": "House talks to Wilson in the hallway.", "desc_id": 90303, "type": "vt",
                    "from_retrieval": False},
                   {"desc": "Wilson listens while House limps down the hall.", "desc_id": 90304, "type": "v",
                    "from_retrieval": False},
                   {"desc": "House says that everybody lies.", "desc_id": 90305, "type": "t",
                    "from_retrieval": False}]},
    ])
    # ------------------------------------------------------------------------------------------------- subtitles
    jsonl(ann / "tv_subtitles.jsonl", [
        # 7 feature frames (10.5 s) in the fixture features; the 4th line starts after them
        {"vid_name": "friends_s01e03_seg02_clip_19", "sub": [
            {"text": " Rachel : Hi, guys.", "start": 0.0, "end": 4.4},
            {"text": " Monica : Hey!", "start": 2.8, "end": 3.9},
            {"text": " Ross : So, what's going on?", "start": 6.0, "end": 7.4},
            {"text": " Chandler : Nothing.", "start": 10.6, "end": 12.0}]},
        {"vid_name": "grey_s03e12_seg02_clip_17", "sub": [
            {"text": " Meredith : Derek?", "start": 0.862, "end": 1.862}]},
        {"vid_name": "castle_s01e01_seg01_clip_02", "sub": []},
    ])
    jsonl(ann / "yc2_subtitles.jsonl", [
        {"vid_name": "ljyO7IaGWLY_10", "sub": [{"text": "now we layer the sauce", "start": 0.5, "end": 3.2}]},
        {"vid_name": "ljyO7IaGWLY_11", "sub": []},
    ])
    # -------------------------------------------------------------------------------------------------- features
    rng = np.random.default_rng(0)
    for vid, n2d, n3d in FEATURES:
        for feat, n, dim in (("resnet", n2d, RESNET_DIM), ("slowfast", n3d, SLOWFAST_DIM)):
            npz(RELEASE / "vis_features" / "tv" / feat / f"{vid}.npz",
                features=rng.normal(0, 1, (n, dim)).astype(np.float16))


def malformed() -> None:
    good_tvr = {"vid_name": "castle_s01e01_seg01_clip_02", "duration": 89.35, "ts": [10.2, 21.5],
                "desc": "Castle hands Beckett a signed book.", "type": "v", "desc_id": 90200}
    tvqa = {"a0": "A book.", "a1": "A gun.", "a2": "A cup.", "a3": "A phone.", "a4": "A badge.", "answer_idx": 0,
            "q": "What does Castle hand Beckett?", "qid": 122039, "show_name": "Castle", "ts": "10.2-21.5",
            "vid_name": "castle_s01e01_seg01_clip_02"}
    violin = {"paired_id": "gt3ntYidpvs_clip_000_040-0-0", "vid_name": "gt3ntYidpvs_clip_000_040",
              "statement": "The lady looked out the window.", "example_id": 85722, "answer": 1}
    # line 2 is cut off mid-object
    text(MALFORMED / "tvr_invalid_json.jsonl",
         json.dumps(good_tvr) + "\n" + '{"vid_name": "house_s02e05_seg02_clip_11", "duration": 66.2, "ts": [0.0\n')
    # line 2 has no ts
    jsonl(MALFORMED / "tvr_missing_ts.jsonl",
          [good_tvr, {k: v for k, v in {**good_tvr, "desc_id": 90201}.items() if k != "ts"}])
    jsonl(MALFORMED / "tvqa_bad_ts.jsonl", [{**tvqa, "ts": "abc"}])
    jsonl(MALFORMED / "tvqa_answer_out_of_range.jsonl", [tvqa, {**tvqa, "qid": 122040, "answer_idx": 7}])
    jsonl(MALFORMED / "violin_duplicate_id.jsonl", [violin, {**violin, "paired_id": "gt3ntYidpvs_clip_000_040-0-1",
                                                             "answer": 0}])
    jsonl(MALFORMED / "tv_subtitles_end_before_start.jsonl", [
        {"vid_name": "friends_s01e03_seg02_clip_19", "sub": [{"text": " Rachel : Hi.", "start": 0.0, "end": 1.2}]},
        {"vid_name": "grey_s03e12_seg02_clip_17", "sub": [{"text": " Meredith : Derek?", "start": 0.8, "end": 1.8},
                                                          {"text": " Derek : Yes?", "start": 5.0, "end": 4.1}]},
    ])
    text(MALFORMED / "tvr_video2dur_idx_not_pair.json",
         json.dumps({"val": {"castle_s01e01_seg01_clip_02": [89.35, 19614],
                             "house_s02e05_seg02_clip_11": 66.2}}) + "\n")
    for name, arrays in (("no_features_key", {"feats": np.zeros((3, 4), np.float16)}),
                         ("nan_features", {"features": np.array([[0.5, np.nan], [1.0, 2.0]], np.float16)})):
        npz(MALFORMED / name / f"{name}.npz", **arrays)


def main() -> None:
    for folder in (RELEASE, MALFORMED):
        shutil.rmtree(folder, ignore_errors=True)
    release()
    malformed()
    for path in sorted(HERE.rglob("*")):
        if path.is_file():
            print(path.relative_to(HERE), path.stat().st_size)


if __name__ == "__main__":
    main()
