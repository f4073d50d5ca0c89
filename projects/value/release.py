"""Readers of the VALUE DataRelease formats (no torch here), each raising an error that names the file, the line
and the key when the data is malformed.

Layout (``DataRelease``'s download scripts; ``root`` is what ``--data.root`` / ``--gt`` point at)::

    root/ann/<task>/<task>_<split>_release.jsonl   annotations, one JSON object per line (fields: REQUIRED)
    root/ann/<task>/<task>_video2dur_idx.json      {split: {vid_name: [duration, video_idx]}} (retrieval)
    root/ann/<source>_subtitles.jsonl              {"vid_name": ..., "sub": [{"text", "start", "end"}, ...]}
    root/vis_features/<source>/<feature>/<vid_name>.npz   key "features", (T, D), one row per 1.5 s

Files are also found directly under ``root`` or under ``root/<task>/`` (the EvaluationTools ``reference_data``
layout). Timestamps ``ts`` are ``[start, end]`` lists (TVR, How2R, VLEP, TVC) or ``"start-end"`` strings (TVQA,
How2QA); both are read as two floats in seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from projects.value.tasks import Task, subtitle_file
from shared.errors import UNREADABLE_ARRAY_FILE, CorruptDataError, DatasetNotFoundError

FRAME_SECONDS = 1.5
RELEASE_URL = "https://github.com/VALUE-Leaderboard/DataRelease"

# Fields a record must carry, per task (the answers only where ``answers=True`` is asked for).
REQUIRED: dict[str, tuple[str, ...]] = {
    "tvr": ("vid_name", "duration", "ts", "desc", "desc_id"),
    "how2r": ("vid_name", "duration", "ts", "desc", "desc_id"),
    "yc2r": ("vid_name", "desc", "desc_id"), "vatex_en_r": ("vid_name", "desc", "desc_id"),
    "tvqa": ("vid_name", "qid", "q", "a0", "a1", "a2", "a3", "a4"),
    "how2qa": ("vid_name", "qid", "q", "a0", "a1", "a2", "a3"),
    "violin": ("vid_name", "example_id", "statement"), "vlep": ("vid_name", "example_id", "events"),
    "tvc": ("vid_name", "clip_id", "ts"), "yc2c": ("vid_name", "clip_id"), "vatex_en_c": ("vid_name", "clip_id"),
}
ANSWER_FIELD = {"qa": "answer_idx", "caption": "descs"}
ANSWER_FIELD_BY_TASK = {"violin": "answer", "vlep": "answer"}


def answer_field(task: Task) -> str | None:
    """The key holding a record's answer (captions: ``descs``); None for retrieval (the answer is the record)."""
    return ANSWER_FIELD_BY_TASK.get(task.name, ANSWER_FIELD.get(task.kind))


def find_file(root: str | Path, name: str, task: str | None = None) -> Path | None:
    """``name`` under ``root/ann/<task>``, ``root/ann``, ``root/<task>`` or ``root`` (first found)."""
    root = Path(root)
    places = ([root / "ann" / task, root / task] if task else []) + [root / "ann", root]
    return next((p / name for p in places if (p / name).is_file()), None)


def require_file(root: str | Path, name: str, task: str | None = None, what: str = "") -> Path:
    path = find_file(root, name, task)
    if path is None:
        where = f"{root}/ann/{task}/" if task else f"{root}/ann/"
        raise DatasetNotFoundError(f"{what or name} not found: looked for {name} in {where} (and {root}/). Download "
                                   f"the VALUE annotations with the scripts of {RELEASE_URL} (download_annotations/) "
                                   f"into {root}/ann/, or generate the embedded mini-VALUE (see "
                                   f"projects/value/README.md).")
    return path


def read_jsonl(path: str | Path) -> list[tuple[int, dict]]:
    """``(line number, object)`` for every non-empty line; a line that is not a JSON object is an error naming
    ``path:line``."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise CorruptDataError(f"{path}:{n}: not valid JSON ({err.msg} at column {err.colno}); each line "
                                       f"must hold one JSON object") from None
            if not isinstance(obj, dict):
                raise CorruptDataError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
            out.append((n, obj))
    return out


def read_json(path: str | Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise CorruptDataError(f"{path}:{err.lineno}: not valid JSON ({err.msg} at column {err.colno})") from None


def parse_span(value, where: str, allow_nan: bool = False) -> tuple[float, float] | None:
    """``[st, ed]`` or ``"st-ed"`` -> ``(st, ed)`` in seconds, ``0 <= st <= ed``. ``allow_nan``: a ``NaN`` bound
    (TVQA's original train/val files write ``"NaN-NaN"`` for questions without a localised moment) gives None."""
    try:
        if isinstance(value, str):
            a, b = value.split("-")
            st, ed = float(a), float(b)
        else:
            st, ed = (float(v) for v in value)
    except (ValueError, TypeError):
        raise CorruptDataError(f"{where}: ts must be [start, end] or \"start-end\" in seconds, got {value!r}") from None
    if allow_nan and (math.isnan(st) or math.isnan(ed)):
        return None
    if not (math.isfinite(st) and math.isfinite(ed)) or st < 0 or ed < st:
        raise CorruptDataError(f"{where}: ts {value!r} is not a span 0 <= start <= end")
    return st, ed


def load_annotations(task: Task, path: str | Path, answers: bool = False) -> list[dict]:
    """The records of one annotation file, checked: required fields present (``answers=True``: the answer field
    too), ``ts`` parsed to ``(st, ed)`` (QA tasks: removed where the file has NaN, as TVQA's ``"NaN-NaN"``),
    answers in range, ids unique. Each record gains ``_line``."""
    records, seen = [], {}
    need = REQUIRED[task.name] + ((answer_field(task),) if answers and answer_field(task) else ())
    for n, rec in read_jsonl(path):
        where = f"{path}:{n}"
        missing = [k for k in need if k not in rec]
        if missing:
            raise CorruptDataError(f"{where}: {task.title} record lacks {', '.join(missing)} (fields: "
                                   f"{', '.join(need)})")
        rid = rec.get(task.id_key)
        try:
            int(rid)
        except (TypeError, ValueError):
            raise CorruptDataError(f"{where}: {task.id_key} must be an integer, got {rid!r}") from None
        if rid in seen:
            raise CorruptDataError(f"{where}: {task.id_key} {rid!r} already used on line {seen[rid]}")
        seen[rid] = n
        if "ts" in rec:  # a QA moment may be NaN (unlocalised): the record then has no ts
            span = parse_span(rec["ts"], f"{where}: key ts", allow_nan=task.kind == "qa")
            if span is None:
                del rec["ts"]
            else:
                rec["ts"] = span
        if task.kind == "qa" and task.name in ("tvqa", "how2qa"):
            for k in range(task.answers):
                if not isinstance(rec[f"a{k}"], str):
                    raise CorruptDataError(f"{where}: a{k} must be a string")
        if task.name == "vlep" and (not isinstance(rec["events"], list) or len(rec["events"]) != 2):
            raise CorruptDataError(f"{where}: events must be a list of two future events")
        key = answer_field(task)
        if key in rec and task.kind == "qa":
            try:
                ans = int(rec[key])
            except (TypeError, ValueError):
                raise CorruptDataError(f"{where}: {key} must be an integer, got {rec[key]!r}") from None
            if not 0 <= ans < task.answers:
                raise CorruptDataError(f"{where}: {key} {ans} outside 0..{task.answers - 1}")
            rec[key] = ans
        if key in rec and task.kind == "caption":
            descs = rec[key]
            if not isinstance(descs, list) or not all(isinstance(d, dict) and isinstance(d.get("desc"), str)
                                                      for d in descs) or not descs:
                raise CorruptDataError(f"{where}: descs must be a non-empty list of {{\"desc\": str, ...}}")
        rec["_line"] = n
        records.append(rec)
    if not records:
        raise CorruptDataError(f"{path}: no records")
    return records


def load_subtitles(path: str | Path) -> dict[str, list[tuple[str, float, float]]]:
    """``{vid_name: [(text, start, end), ...]}`` from a ``<source>_subtitles.jsonl``."""
    out = {}
    for n, rec in read_jsonl(path):
        where = f"{path}:{n}"
        if "vid_name" not in rec or not isinstance(rec.get("sub"), list):
            raise CorruptDataError(f"{where}: a subtitle line needs \"vid_name\" and a list \"sub\" of "
                                   f"{{\"text\", \"start\", \"end\"}}")
        subs = []
        for i, s in enumerate(rec["sub"]):
            try:
                text, st, ed = str(s["text"]), float(s["start"]), float(s["end"])
            except (KeyError, TypeError, ValueError):
                raise CorruptDataError(f"{where}: sub[{i}] of {rec['vid_name']} needs text, start and end, got "
                                       f"{s!r}") from None
            if not (math.isfinite(st) and math.isfinite(ed)) or ed < st:
                raise CorruptDataError(f"{where}: sub[{i}] of {rec['vid_name']} has end {ed} before start {st}")
            subs.append((text, st, ed))
        out[rec["vid_name"]] = subs
    return out


def load_video_index(path: str | Path) -> dict[str, dict[str, tuple[float, int]]]:
    """``{split: {vid_name: (duration, video_idx)}}`` from a ``*_video2dur_idx.json``."""
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise CorruptDataError(f"{path}: expected {{split: {{vid_name: [duration, video_idx]}}}}")
    out = {}
    for split, videos in raw.items():
        if not isinstance(videos, dict):
            raise CorruptDataError(f"{path}: key {split!r} must map vid_name -> [duration, video_idx]")
        out[split] = {}
        for vid, value in videos.items():
            ok = (isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int | float) for v in value)
                  and float(value[1]).is_integer())
            if not ok:
                raise CorruptDataError(f"{path}: {split}/{vid}: expected [duration, video_idx] (numbers, the index an "
                                       f"integer), got {value!r}")
            out[split][vid] = (float(value[0]), int(value[1]))
    return out


def load_features(dirs: list[str | Path], vid: str) -> np.ndarray:
    """``(T, D)`` float32 features of ``vid``: ``<dir>/<vid>.npz`` key ``features`` from each of ``dirs`` (2D first,
    then 3D), cut to the shortest and concatenated along the feature axis, as StarterCode builds its video db."""
    parts = []
    for d in dirs:
        path = Path(d) / f"{vid}.npz"
        if not path.is_file():
            raise DatasetNotFoundError(f"{path} not found: every video needs one .npz per feature folder "
                                       f"({', '.join(map(str, dirs))}); see {RELEASE_URL} (download_features/)")
        try:
            with np.load(path) as z:
                keys = list(z.files)
                feat = np.asarray(z["features"], dtype=np.float32) if "features" in keys else None
        except UNREADABLE_ARRAY_FILE as err:
            raise CorruptDataError(f"{path}: not a readable .npz ({err})") from None
        if feat is None:
            raise CorruptDataError(f"{path}: no key 'features' (keys: {', '.join(keys) or 'none'})")
        if feat.ndim != 2 or len(feat) == 0:
            raise CorruptDataError(f"{path}: 'features' must be a non-empty (T, D) array, got shape {feat.shape}")
        if not np.isfinite(feat).all():
            raise CorruptDataError(f"{path}: 'features' holds NaN or infinite values")
        parts.append(feat)
    n = min(len(p) for p in parts)
    return np.concatenate([p[:n] for p in parts], axis=1)


def _frame_units(seconds: float, interval: float) -> float:
    """Seconds in frame units, in float32 as StarterCode's prepro_sub.py computes them."""
    return float(np.float32(seconds) / np.float32(interval))


def subtitle_frames(start: float, end: float, n_frames: int, interval: float = FRAME_SECONDS) -> range:
    """Frames a subtitle overlaps: ``floor(start / 1.5) .. ceil(end / 1.5) - 1`` (frame ``i`` spans ``[1.5 i,
    1.5 (i + 1))``), cut to the video (empty for a zero-length subtitle on a frame boundary, as in HERO)."""
    a = int(math.floor(_frame_units(start, interval)))
    b = int(math.ceil(_frame_units(end, interval)))
    return range(min(a, n_frames), min(b, n_frames))


def _hero_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """prepro_sub.py's temporal IoU: 0 unless the spans overlap with positive length."""
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    return 0.0 if hi <= lo else (hi - lo) / (max(a[1], b[1]) - min(a[0], b[0]))


LONG_LAST_SUB_SECONDS, LONG_LAST_SUB_FRAMES = 16.0, 11


def align_subtitles(subs: list[tuple[str, float, float]], n_frames: int, interval: float = FRAME_SECONDS,
                    group: int = 5) -> tuple[list[tuple[str, list[int]]], list[int]]:
    """HERO's subtitle-to-frame alignment (StarterCode ``prepro_sub.py``): ``([(text, frames)], unmatched frames)``.

    A subtitle overlaps frames :func:`subtitle_frames`; the **last** subtitle, when it lasts more than 16 s (its
    end cut to the video), keeps only its first 11. Each frame goes to the one overlapping subtitle with the
    highest IoU between the frame ``[t, t + 1]`` and the subtitle's span in frame units (ties to the earlier
    subtitle), so a subtitle may end up with no frame. Subtitles starting at or after the end of the ``n_frames``
    frames are dropped (as HERO's ``max_clip_len`` cut drops those past the cut; for the rare subtitle past the
    real video end HERO keeps a text-only segment). A video with no subtitle left gets empty pseudo-subtitles of
    ``group`` frames each (StarterCode's ``nframe_group``)."""
    video_end = interval * n_frames
    kept = []  # (text, span in frame units, frames)
    for i, (text, st, ed) in enumerate(subs):
        if np.float32(st) >= video_end:
            continue
        covered = subtitle_frames(st, ed, n_frames, interval)
        if i == len(subs) - 1 and min(ed, video_end) - st > LONG_LAST_SUB_SECONDS:
            covered = covered[:LONG_LAST_SUB_FRAMES]
        kept.append((text, (_frame_units(st, interval), _frame_units(ed, interval)), covered))
    if not kept:
        return [("", list(range(i, min(i + group, n_frames)))) for i in range(0, n_frames, group)], []
    owner = {}
    for t in range(n_frames):
        candidates = [i for i, (_, _, r) in enumerate(kept) if t in r]
        if candidates:  # max() keeps the first of equal IoUs
            owner[t] = max(candidates, key=lambda i: _hero_iou((t, t + 1), kept[i][1]))
    clips = [(text, [t for t in range(n_frames) if owner.get(t) == i]) for i, (text, _, _) in enumerate(kept)]
    return clips, [t for t in range(n_frames) if t not in owner]


def subtitles_path(root: str | Path, source: str) -> Path:
    # ann/<source>/ first: DataRelease puts vlep_subtitles.jsonl in ann/vlep/, the others in ann/
    return require_file(root, subtitle_file(source), source, what=f"subtitles of source {source!r}")
