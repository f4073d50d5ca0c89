"""VALUE leaderboard submissions: the zip layout, reading, validation against the ground truth, scoring, writing.

A submission is a zip with one folder per task at its root (no enclosing folder), each holding the task's
prediction file for a phase (:meth:`projects.value.tasks.Task.prediction_file`), e.g. ``tvr/tvr_val_predictions.json``,
``violin/violin_test_predictions.json`` (the val phase scores VIOLIN's test split),
``tvc/tvc_val_predictions.jsonl``. Formats, as EvaluationTools reads them:

* moment retrieval (tvr, how2r): ``{"VCMR": [{"desc_id": 1, "predictions": [[video_idx, st, ed, score], ...]}],
  "VR": [...]}`` (``VR`` optional), ranked, at most 100 used; video indices from ``<task>_video2dur_idx.json``;
* video retrieval (yc2r, vatex_en_r): ``{"VR": [{"desc_id": 1, "predictions": [video_idx, ...]}]}``;
* QA (tvqa, how2qa, violin, vlep): ``{"<qid or example_id>": answer_index}``;
* captioning (tvc, yc2c, vatex_en_c): JSON Lines ``{"clip_id": 1, "descs": [{"desc": "..."}]}`` (first desc used).

:func:`validate` lists **every** problem at once, each with its task, file and id; errors are what the official
scorer would crash on (a missing id, a malformed entry, an extra id where it asserts equal id sets), warnings
what it silently ignores or truncates.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from projects.value import metrics
from projects.value.release import answer_field, find_file, load_annotations, load_video_index, read_json, require_file
from projects.value.tasks import PHASES, TASK_NAMES, TASKS, Task, video_index_file
from shared.errors import CorruptDataError, UserFacingError

# tasks whose official scorer asserts that the submitted ids equal the ground-truth ids (extra ids fail)
STRICT_IDS = {"how2qa", "violin", "tvc", "yc2c", "vatex_en_c"}


@dataclasses.dataclass(frozen=True)
class Problem:
    severity: str  # "error" (the official scorer would fail) or "warning" (it ignores or truncates)
    task: str
    file: str
    id: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.task}/{self.file}" + (f" id {self.id}" if self.id is not None else "")
        return f"{self.severity}: {where}: {self.message}"


class SubmissionError(UserFacingError):
    """A submission with errors; ``problems`` holds them all."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        shown = "\n".join(f"  {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"the submission has {len(errors)} error(s) and {len(problems) - len(errors)} warning(s):\n"
                         f"{shown}{more}")


# ----------------------------------------------------------------------------------------------- ground truth
@dataclasses.dataclass
class GroundTruth:
    """One task's answers for one phase, in the shape :mod:`projects.value.metrics` takes."""

    task: Task
    phase: str
    path: Path
    answers: dict  # vcmr: id -> (video_idx, st, ed); vr: id -> video_idx; qa: id -> int; caption: id -> [str]
    video_idx: dict[str, int] = dataclasses.field(default_factory=dict)


def load_ground_truth(task: Task, phase: str, root: str | Path) -> GroundTruth:
    """Read the answers of ``task`` for leaderboard ``phase`` from ``root`` (file names in :mod:`tasks`)."""
    names = task.ground_truth[phase]
    path = next((p for p in (find_file(root, n, task.name) for n in names) if p is not None), None)
    if path is None:
        require_file(root, names[0], task.name, what=f"{task.title} {phase} ground truth ({' or '.join(names)})")
    split = task.splits[phase]
    if path.suffix == ".json":  # TVQA's solution file: {"split": ..., "solution": {show: {qid: answer}}}
        raw = read_json(path)
        if not isinstance(raw, dict) or not isinstance(raw.get("solution"), dict):
            raise CorruptDataError(f"{path}: expected {{\"solution\": {{show_name: {{qid: answer_idx}}}}}}")
        try:
            answers = {int(q): int(a) for show in raw["solution"].values() for q, a in show.items()}
        except (AttributeError, TypeError, ValueError):
            raise CorruptDataError(f"{path}: every solution entry must be {{show_name: {{qid: answer_idx}}}} with "
                                   f"integer qids and answers") from None
        return GroundTruth(task, phase, path, answers)
    records = load_annotations(task, path, answers=task.kind in ("qa", "caption"))
    if task.kind in ("vcmr", "vr"):
        index_path = require_file(root, video_index_file(task), task.name, what=f"{task.title} video index")
        index = load_video_index(index_path)
        if split not in index:
            raise CorruptDataError(f"{index_path}: no split {split!r} (splits: {', '.join(index)}); the {phase} "
                                   f"phase of {task.title} ranks the videos of split {split!r}")
        vids = {v: idx for v, (_, idx) in index[split].items()}
        answers = {}
        for rec in records:
            if rec["vid_name"] not in vids:
                raise CorruptDataError(f"{path}:{rec['_line']}: video {rec['vid_name']!r} is not in split {split!r} "
                                       f"of {index_path}")
            vid = vids[rec["vid_name"]]
            answers[int(rec["desc_id"])] = (vid, *rec["ts"]) if task.kind == "vcmr" else vid
        return GroundTruth(task, phase, path, answers, vids)
    key = answer_field(task)
    if task.kind == "qa":
        return GroundTruth(task, phase, path, {int(r[task.id_key]): int(r[key]) for r in records})
    return GroundTruth(task, phase, path, {int(r["clip_id"]): [d["desc"] for d in r[key]] for r in records})


# ------------------------------------------------------------------------------------------------ predictions
def _int_id(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_predictions(task: Task, file: str, raw: bytes, gt: GroundTruth) -> tuple[dict, dict, list[Problem]]:
    """``(predictions, extra, problems)``: the predictions keyed as the ground truth is, a dict of other parts
    (``{"VR": ...}`` of a moment retrieval file) and every problem found."""
    problems: list[Problem] = []

    def problem(msg: str, pid=None, severity: str = "error") -> None:
        problems.append(Problem(severity, task.name, file, None if pid is None else str(pid), msg))

    preds, extra = {}, {}
    if task.kind == "caption":
        for n, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                cid, desc = obj["clip_id"], obj["descs"][0]["desc"]
            except (json.JSONDecodeError, KeyError, IndexError, TypeError):
                problem(f"line {n}: expected {{\"clip_id\": ..., \"descs\": [{{\"desc\": str}}]}}, got {line[:80]!r}")
                continue
            if not isinstance(cid, int) or isinstance(cid, bool) or not isinstance(desc, str):
                problem(f"line {n}: clip_id must be a JSON integer, as in the ground truth (the official scorer "
                        f"matches ids by type), and desc a string", cid)
                continue
            if int(cid) in preds:
                problem(f"line {n}: clip_id given twice; the later line is used", cid, "warning")
            preds[int(cid)] = desc
    else:
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            problem(f"not valid JSON ({err})")
            return preds, extra, problems
        if task.kind == "qa":
            if not isinstance(obj, dict):
                problem(f"expected {{\"{task.id_key}\": answer_index}}, got {type(obj).__name__}")
                return preds, extra, problems
            for k, v in obj.items():
                qid, ans = _int_id(k), _int_id(v)
                if qid is None:
                    problem(f"{task.id_key} {k!r} is not an integer")
                elif ans is None or not 0 <= ans < task.answers:
                    problem(f"answer {v!r} is not an integer in 0..{task.answers - 1}", k)
                else:
                    preds[qid] = ans
        else:
            key = "VCMR" if task.kind == "vcmr" else "VR"
            if not isinstance(obj, dict) or not isinstance(obj.get(key), list):
                problem(f"expected a JSON object with a list under {key!r}" +
                        (" (moment retrieval needs VCMR; VR is optional)" if task.kind == "vcmr" else ""))
                return preds, extra, problems
            if task.kind == "vr" and "VCMR" in obj:
                problem("video retrieval takes only 'VR' predictions; remove 'VCMR' (the official scorer fails on it)")
            preds = _ranked_lists(obj[key], task.kind == "vcmr", problem)
            if task.kind == "vcmr" and "VR" in obj:  # optional, but scored (and checked) when present
                if not isinstance(obj["VR"], list):
                    problem("'VR' must be a list of {\"desc_id\", \"predictions\": [video_idx, ...]}")
                else:
                    extra["VR"] = _ranked_lists(obj["VR"], False, lambda msg, pid=None, severity="error":
                                                problem("VR " + msg, pid, severity))
                    for k in gt.answers:
                        if k not in extra["VR"]:
                            problem("no VR prediction for this ground-truth id (the official scorer scores "
                                    "every key present)", k)
    missing = [k for k in gt.answers if k not in preds]
    for k in missing:
        problem("no prediction for this ground-truth id", k)
    extras = [k for k in preds if k not in gt.answers]
    for k in extras:
        problem("not in the ground truth" + (" (the official scorer rejects extra ids for this task)"
                                             if task.name in STRICT_IDS else "; ignored"), k,
                "error" if task.name in STRICT_IDS else "warning")
    return preds, extra, problems


def _moment_ok(p) -> bool:
    return (isinstance(p, list) and len(p) >= 3 and all(isinstance(x, int | float) for x in p[:3])
            and p[1] <= p[2])


def _ranked_lists(entries: list, moments: bool, problem) -> dict:
    out = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "desc_id" not in entry or not isinstance(entry.get("predictions"), list):
            problem(f"entry {i}: expected {{\"desc_id\": ..., \"predictions\": [...]}}")
            continue
        qid, ranked = _int_id(entry["desc_id"]), entry["predictions"]
        if qid is None:
            problem(f"entry {i}: desc_id {entry['desc_id']!r} is not an integer")
            continue
        if not ranked:
            problem("empty prediction list", qid)
            continue
        ok = [p for p in ranked if _moment_ok(p)] if moments else [p for p in ranked if isinstance(p, int | float)]
        if len(ok) != len(ranked):
            shape = "[video_idx, start, end, score] with start <= end" if moments else "an integer video index"
            problem(f"{len(ranked) - len(ok)} prediction(s) are not {shape}", qid)
            continue
        if len(ranked) > metrics.MAX_PREDICTIONS:
            problem(f"{len(ranked)} predictions; only the first {metrics.MAX_PREDICTIONS} are scored", qid, "warning")
        if qid in out:
            problem("desc_id given twice; the later entry is used", qid, "warning")
        out[qid] = ranked
    return out


# ----------------------------------------------------------------------------------------------- zip reading
def read_files(path: str | Path) -> dict[str, bytes]:
    """``{"<task>/<file>": bytes}`` of a submission zip (or a folder laid out the same way)."""
    path = Path(path)
    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes() for p in path.glob("*/*") if p.is_file()}
    if not zipfile.is_zipfile(path):
        raise UserFacingError(f"{path}: not a zip file (a submission is a zip with one folder per task at its root)")
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if not n.endswith("/")}


def layout_problems(files: Mapping[str, bytes], phase: str, tasks: Iterable[str]) -> list[Problem]:
    """Files the leaderboard would not find: wrong folder nesting or file name, missing tasks."""
    problems = []
    for task_name in tasks:
        task = TASKS[task_name]
        want = f"{task.name}/{task.prediction_file(phase)}"
        if want in files:
            continue
        nested = [n for n in files if n.endswith("/" + want)]
        near = [n for n in files if n.split("/")[-1] == task.prediction_file(phase) or n.startswith(task.name + "/")]
        hint = (f"found {nested[0]}: zip the task folders themselves, not an enclosing folder" if nested else
                f"found {', '.join(near[:3])}" if near else "the task's folder is missing")
        problems.append(Problem("error", task.name, task.prediction_file(phase), None, f"expected {want}; {hint}"))
    return problems


def write_submission(path: str | Path, predictions: Mapping[str, Mapping[str, object]]) -> Path:
    """Write a submission zip from ``{phase: {task: predictions}}``; predictions in the file format (a dict for
    JSON files, a list of line objects for captioning's JSON Lines)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for phase, by_task in predictions.items():
            if phase not in PHASES:
                raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
            for task_name, preds in by_task.items():
                task = TASKS[task_name]
                if task.kind == "caption":
                    buf = io.StringIO()
                    for line in preds:
                        buf.write(json.dumps(line) + "\n")
                    data = buf.getvalue()
                else:
                    data = json.dumps(preds)
                z.writestr(f"{task.name}/{task.prediction_file(phase)}", data)
    return path


# ----------------------------------------------------------------------------------------------------- scoring
@dataclasses.dataclass
class Report:
    """The scores of one submission: per-task metrics and scores, the meta-averages, every problem found."""

    name: str
    phase: str
    metrics: dict[str, dict[str, float]]
    scores: dict[str, float]
    problems: list[Problem]

    @property
    def meta_average(self) -> float | None:
        """The paper's meta-average over all 11 tasks (None unless all were scored)."""
        return metrics.meta_average(self.scores) if all(t in self.scores for t in TASK_NAMES) else None

    @property
    def mean_of_scored(self) -> float:
        """The plain mean over the tasks scored (the meta-average of a partial suite such as mini-VALUE)."""
        return metrics.meta_average(self.scores, tuple(self.scores))

    @property
    def official_average(self) -> float:
        return metrics.official_average(self.scores)


def validate(files: Mapping[str, bytes], phase: str, gts: Mapping[str, GroundTruth]) -> tuple[dict, list[Problem]]:
    """``({task: (predictions, extra)}, problems)`` for the tasks of ``gts``."""
    problems = layout_problems(files, phase, gts)
    parsed = {}
    for name, gt in gts.items():
        file = f"{name}/{gt.task.prediction_file(phase)}"
        if file not in files:
            continue
        preds, extra, found = parse_predictions(gt.task, gt.task.prediction_file(phase), files[file], gt)
        problems += found
        parsed[name] = (preds, extra)
    return parsed, problems


def score_task(gt: GroundTruth, preds: dict, extra: dict, meteor: bool = True) -> dict[str, float]:
    """The official metrics of one validated task."""
    kind = gt.task.kind
    if kind == "vcmr":
        out = metrics.vcmr_recalls(preds, gt.answers)
        if "VR" in extra and all(k in extra["VR"] for k in gt.answers):
            vr_gt = {k: v[0] for k, v in gt.answers.items()}
            out.update({f"VR_{k}": v for k, v in metrics.vr_recalls(extra["VR"], vr_gt).items()})
        return out
    if kind == "vr":
        return metrics.vr_recalls(preds, gt.answers)
    if kind == "qa":
        return {"accuracy": metrics.accuracy(preds, gt.answers)}
    return metrics.caption_scores({k: preds[k] for k in gt.answers}, gt.answers, meteor=meteor)


def score_submission(path: str | Path, phase: str, gt_root: str | Path, tasks: Iterable[str] | None = None,
                     meteor: bool = True, name: str | None = None,
                     ground_truth: Mapping[str, GroundTruth] | None = None) -> Report:
    """Validate and score a submission. ``tasks``: the tasks to score (default: every task whose ground truth is
    under ``gt_root``; the leaderboard needs all 11). Raises :class:`SubmissionError` listing every problem when
    any is an error."""
    if phase not in PHASES:
        raise UserFacingError(f"--split must be one of {', '.join(PHASES)}, got {phase!r}")
    if tasks is None:
        tasks = [t for t in TASK_NAMES if any(find_file(gt_root, n, t) for n in TASKS[t].ground_truth[phase])]
        if not tasks:
            raise UserFacingError(f"{gt_root}: no VALUE ground truth found for the {phase} phase (file names: "
                                  f"projects/value/tasks.py; e.g. {TASKS['tvr'].ground_truth[phase][0]})")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise UserFacingError(f"unknown task(s) {', '.join(unknown)}; the tasks are {', '.join(TASK_NAMES)}")
    gts = dict(ground_truth) if ground_truth else {t: load_ground_truth(TASKS[t], phase, gt_root) for t in tasks}
    files = read_files(path)
    parsed, problems = validate(files, phase, gts)
    if any(p.severity == "error" for p in problems):
        raise SubmissionError(problems)
    per_task = {t: score_task(gts[t], *parsed[t], meteor=meteor) for t in gts}
    scores = {t: metrics.task_score(TASKS[t].kind, m) for t, m in per_task.items()}
    return Report(name or Path(path).stem, phase, per_task, scores, problems)
