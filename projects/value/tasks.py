"""The 11 VALUE tasks: kind, data source, leaderboard splits and file names (VALUE-Leaderboard/EvaluationTools and
DataRelease).

Quirks kept from the leaderboard: the **val** phase scores VLEP's ``dev`` split, VIOLIN's ``test`` split and
VATEX-EN-C's ``test_public`` split; the **test** phase scores How2R, VATEX-EN-R and How2QA on ``test_public`` and
VIOLIN and VATEX-EN-C on ``test_private``. Prediction files are JSON, captioning ones JSON Lines.
"""

from __future__ import annotations

import dataclasses

KINDS = ("vcmr", "vr", "qa", "caption")
GROUPS = {"retrieval": ("yc2r", "vatex_en_r", "tvr", "how2r"),  # the order of the official evaluate.py
          "qa": ("vlep", "tvqa", "violin", "how2qa"),
          "captioning": ("yc2c", "tvc", "vatex_en_c")}
PHASES = ("val", "test")


@dataclasses.dataclass(frozen=True)
class Task:
    """One VALUE task. ``splits`` maps a leaderboard phase to the dataset split it scores; ``ground_truth`` maps a
    phase to the file names (first found wins) the scorer reads the answers from: the leaderboard's reference
    file, then the DataRelease file that carries the same answers."""

    name: str
    title: str
    kind: str
    source: str  # the subtitle / feature source: tv, how2, yc2, vatex, violin, vlep
    splits: dict[str, str]
    ground_truth: dict[str, tuple[str, ...]]
    answers: int = 0  # multiple-choice candidates (QA tasks)
    id_key: str = "desc_id"  # the id a prediction is keyed by
    train_file: str = ""

    def prediction_file(self, phase: str) -> str:
        """The submission's file name for ``phase`` (``<task>/<this name>`` inside the zip)."""
        ext = "jsonl" if self.kind == "caption" else "json"
        return f"{self.name}_{self.splits[phase]}_predictions.{ext}"

    @property
    def group(self) -> str:
        return next(g for g, tasks in GROUPS.items() if self.name in tasks)

    @property
    def score_name(self) -> str:
        """The task score the leaderboard ranks by."""
        return {"vcmr": "AveR (IoU 0.7)", "vr": "AveR", "qa": "accuracy", "caption": "CIDEr-D"}[self.kind]


def _gt(val: tuple[str, ...], test: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {"val": val, "test": test}


TASKS: dict[str, Task] = {t.name: t for t in [
    Task("tvr", "TVR", "vcmr", "tv", {"val": "val", "test": "test"},
         _gt(("tvr_val_archive.jsonl", "tvr_val_release.jsonl"), ("tvr_test_gt.jsonl", "tvr_test_release.jsonl")),
         train_file="tvr_train_release.jsonl"),
    Task("how2r", "How2R", "vcmr", "how2", {"val": "val", "test": "test_public"},
         _gt(("how2r_val_1k_release.jsonl",), ("how2r_test_public_1k_gt.jsonl", "how2r_test_public_1k_release.jsonl")),
         train_file="how2r_train_release.jsonl"),
    Task("yc2r", "YC2R", "vr", "yc2", {"val": "val", "test": "test"},
         _gt(("yc2r_val_release.jsonl",), ("yc2r_test_gt.jsonl", "yc2r_test_release.jsonl")),
         train_file="yc2r_train_release.jsonl"),
    Task("vatex_en_r", "VATEX-EN-R", "vr", "vatex", {"val": "val", "test": "test_public"},
         _gt(("vatex_en_r_val_release.jsonl",),
             ("vatex_en_r_test_public_gt.jsonl", "vatex_en_r_test_public_release.jsonl")),
         train_file="vatex_en_r_train_release.jsonl"),
    Task("tvqa", "TVQA", "qa", "tv", {"val": "val", "test": "test"},
         _gt(("tvqa_val_solution.json", "tvqa_val.jsonl"), ("tvqa_test_solution.json", "tvqa_test_release.jsonl")),
         answers=5, id_key="qid", train_file="tvqa_train.jsonl"),
    Task("how2qa", "How2QA", "qa", "how2", {"val": "val", "test": "test_public"},
         _gt(("how2qa_val_release.jsonl",), ("how2qa_test_public_gt.jsonl", "how2qa_test_public_release.jsonl")),
         answers=4, id_key="qid", train_file="how2qa_train_release.jsonl"),
    Task("violin", "VIOLIN", "qa", "violin", {"val": "test", "test": "test_private"},
         _gt(("violin_test_release.jsonl",), ("violin_test_private_gt.jsonl", "violin_test_private_release.jsonl")),
         answers=2, id_key="example_id", train_file="violin_train_release.jsonl"),
    Task("vlep", "VLEP", "qa", "vlep", {"val": "dev", "test": "test"},
         _gt(("vlep_dev_archive.jsonl", "vlep_dev_release.jsonl"),
             ("vlep_test_archive.jsonl", "vlep_test_release.jsonl")),
         answers=2, id_key="example_id", train_file="vlep_train_release.jsonl"),
    Task("tvc", "TVC", "caption", "tv", {"val": "val", "test": "test"},
         _gt(("tvc_val_archive.jsonl", "tvc_val_release.jsonl"), ("tvc_test_gt.jsonl", "tvc_test_release.jsonl")),
         id_key="clip_id", train_file="tvc_train_release.jsonl"),
    Task("yc2c", "YC2C", "caption", "yc2", {"val": "val", "test": "test"},
         _gt(("yc2c_val_release.jsonl",), ("yc2c_test_gt.jsonl", "yc2c_test_release.jsonl")),
         id_key="clip_id", train_file="yc2c_train_release.jsonl"),
    Task("vatex_en_c", "VATEX-EN-C", "caption", "vatex", {"val": "test_public", "test": "test_private"},
         _gt(("vatex_en_c_test_public_release.jsonl",),
             ("vatex_en_c_test_private_gt.jsonl", "vatex_en_c_test_private_release.jsonl")),
         id_key="clip_id", train_file="vatex_en_c_train_release.jsonl"),
]}
TASK_NAMES = tuple(TASKS)

# One task per training step, drawn with these weights: StarterCode's all-task (AT) mix ratios.
AT_RATIOS = {"tvr": 5, "tvc": 5, "tvqa": 5, "violin": 3, "vlep": 1, "how2r": 2, "vatex_en_r": 6, "yc2r": 2,
             "vatex_en_c": 2, "yc2c": 2, "how2qa": 1}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise KeyError(f"unknown VALUE task {name!r}; the tasks are {', '.join(TASK_NAMES)}")
    return TASKS[name]


def annotation_file(task: Task, split: str) -> str:
    """The DataRelease annotation file of ``task`` for a dataset ``split`` (train, val, dev, test, test_public, ...).
    TVQA's train and val files come from the original TVQA release and have no ``_release`` suffix; How2R's
    val/test files carry ``_1k``."""
    if task.name == "tvqa" and split in ("train", "val"):
        return f"tvqa_{split}.jsonl"
    if task.name == "how2r" and split in ("val", "test_public"):
        return f"how2r_{split}_1k_release.jsonl"
    return f"{task.name}_{split}_release.jsonl"


def subtitle_file(source: str) -> str:
    return f"{source}_subtitles.jsonl"


def video_index_file(task: Task) -> str:
    """``{split: {vid_name: [duration, video_idx]}}``: the video indices retrieval predictions refer to."""
    return f"{task.name}_video2dur_idx.json"
