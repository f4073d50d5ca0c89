"""The data module on the release-format fixtures and on a tiny mini-VALUE: videos as HERO reads them, the channel
ablation, task mixing, the generator's facts."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from projects.value import synthetic
from projects.value.data import TaskMixDataset, Tokenizer, ValueDataModule
from projects.value.release import load_annotations, load_subtitles
from projects.value.tasks import TASKS
from shared.errors import DatasetNotFoundError, UserFacingError

RELEASE = Path(__file__).parent / "fixtures" / "release"
TINY = {"tv": {"train": 5, "val": 2, "test": 2}, "yc2": {"train": 3, "val": 2, "test": 2}}


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    return synthetic.mini_value(tmp_path_factory.mktemp("mini"), TINY, seed=3)


def test_tokenizer_pads_with_zero():
    tok = Tokenizer()
    ids = tok.encode("alice: the keys are in the kitchen.")
    assert 0 not in ids and tok.decode([*ids, tok.sep, 5]) == "alice : the keys are in the kitchen."
    assert tok.sep != 0 and tok.cls != 0


def test_release_videos_concatenate_and_align(tmp_path: Path):
    dm = ValueDataModule(root=str(RELEASE), tasks=["tvr"])
    assert dm.feature_dim == 10  # resnet 6 + slowfast 4
    data = dm.task_data("tvr", "train")
    vid = data.records[0]["vid_name"]
    v = data.store[vid]
    subs = load_subtitles(RELEASE / "ann" / "tv_subtitles.jsonl")[vid]
    assert len(v["clips"]) == len([s for s in subs if s[1] < 1.5 * len(v["frames"])])
    covered = sorted(f for _, frames in v["clips"] for f in frames)
    assert len(covered) == len(set(covered))  # every frame belongs to at most one sentence
    batch = data.batch([0, 1])
    assert batch["query"][:, 0].tolist() == [data.tok.cls] * 2 and batch["start"].le(batch["end"]).all()


def test_channels(tmp_path: Path):
    both = ValueDataModule(root=str(RELEASE), tasks=["tvr"]).task_data("tvr", "train")
    video = ValueDataModule(root=str(RELEASE), tasks=["tvr"], channels="video").task_data("tvr", "train")
    subs = ValueDataModule(root=str(RELEASE), tasks=["tvr"], channels="subtitle").task_data("tvr", "train")
    vid = both.records[0]["vid_name"]
    assert any(tokens for tokens, _ in both.store[vid]["clips"])
    assert not any(tokens for tokens, _ in video.store[vid]["clips"])  # pseudo-subtitles of 5 frames, no text
    assert [f for _, f in video.store[vid]["clips"]][0] == list(range(min(5, len(both.store[vid]["frames"]))))
    assert subs.store[vid]["frames"].abs().sum() == 0 and both.store[vid]["frames"].abs().sum() > 0
    with pytest.raises(UserFacingError, match="channels"):
        ValueDataModule(root=str(RELEASE), channels="audio")


def test_task_mix_schedule_is_seeded_and_follows_ratios(mini: Path):
    dm = ValueDataModule(root=str(mini), tasks=["tvr", "tvqa"], features=list(synthetic.FEATURES), batch_size=2)
    tasks = {t: dm.task_data(t, "train") for t in ("tvr", "tvqa")}
    mix = TaskMixDataset(tasks, {"tvr": 3, "tvqa": 1}, {"tvr": 2, "tvqa": 2}, steps=400, seed=1)
    plan = mix.plan(0)
    assert plan == TaskMixDataset(tasks, {"tvr": 3, "tvqa": 1}, {"tvr": 2, "tvqa": 2}, 400, seed=1).plan(0)
    assert plan != mix.plan(1)
    share = np.mean([name == "tvr" for name, _ in plan])
    assert 0.68 < share < 0.82  # 3 / 4 expected
    paired = TaskMixDataset(tasks, {"tvr": 1, "tvqa": 1}, {"tvr": 2, "tvqa": 2}, steps=20, seed=1, task_every=2)
    names = [n for n, _ in paired.plan(0)]
    assert all(names[i] == names[i + 1] for i in range(0, 20, 2))
    qa = mix[next(i for i, (n, _) in enumerate(plan) if n == "tvqa")]
    assert qa["candidates"].shape[:2] == (2, 5) and qa["frames"].shape[0] == 10  # each video read 5 times


def test_mini_value_in_release_format(mini: Path):
    for task, split in (("tvr", "test"), ("tvqa", "val"), ("tvc", "train"), ("yc2r", "test")):
        name = {"tvqa": "tvqa_val.jsonl"}.get(task, f"{task}_{split}_release.jsonl")
        records = load_annotations(TASKS[task], mini / "ann" / task / name, answers=task in ("tvqa", "tvc"))
        assert records
    index = json.loads((mini / "ann" / "tvr" / "tvr_video2dur_idx.json").read_text())
    ids = [i for split in index.values() for _, i in split.values()]
    assert len(ids) == len(set(ids))
    feats = np.load(next((mini / "vis_features" / "tv" / "mobilenet_v2").glob("*.npz")))["features"]
    assert feats.dtype == np.float16 and feats.shape[1] == 1280
    assert synthetic.mini_value(mini.parent, TINY, seed=3) == mini  # cached: same folder, not regenerated


def test_scripts_put_facts_in_one_channel():
    rng = np.random.default_rng(0)
    script = synthetic.make_script(rng)
    said = " ".join(line["text"] for line in script["lines"])
    for obj in script["objects"]:  # what is shown is never said
        assert obj["colour"] not in said and obj["shape"] not in said
    questions = synthetic.tvqa_questions(script, rng)
    kinds = {q["_kind"] for q in questions}
    assert {"t", "v"} <= kinds
    for q in questions:
        options = [q[f"a{k}"] for k in range(5)]
        assert len(set(options)) == 5
    frame = synthetic.render_frame(script, synthetic.object_span(script["objects"][0])[0] + 0.1)
    assert frame.shape == (64, 64, 3) and len(np.unique(frame.reshape(-1, 3), axis=0)) >= 2


def test_missing_release_is_a_clear_error(tmp_path: Path):
    with pytest.raises(DatasetNotFoundError, match="data.root"):
        _ = ValueDataModule(root=str(tmp_path / "nowhere")).data_root
    (tmp_path / "ann").mkdir()
    dm = ValueDataModule(root=str(tmp_path), tasks=["tvqa", "tvr"])
    with pytest.raises(DatasetNotFoundError, match="tvqa_train.jsonl"):
        dm.task_data("tvqa", "train")
    with pytest.raises(DatasetNotFoundError, match="tvr_video2dur_idx.json"):
        dm.task_data("tvr", "train")


def test_batch_tensors_are_well_formed(mini: Path):
    dm = ValueDataModule(root=str(mini), tasks=["tvc"], features=list(synthetic.FEATURES))
    data = dm.task_data("tvc", "train")
    batch = data.batch(range(len(data)))
    m = batch["moment"]
    assert (m[:, 0] < m[:, 1]).all() and (m[:, 1] <= batch["frame_mask"].sum(1)).all()
    assert batch["caption_in"][:, 0].eq(data.tok.cls).all()
    last = (batch["caption_out"] != 0).sum(1) - 1
    assert batch["caption_out"][torch.arange(len(last)), last].eq(data.tok.sep).all()
