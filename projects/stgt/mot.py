"""MOTChallenge files: the sequence folder (``seqinfo.ini``, ``det/det.txt``, ``gt/gt.txt``, ``img1/``) and the
result files trackers submit.

Columns, as the MOTChallenge devkit defines them (MOT16 paper, Milan et al. 2016, Table 2 and 3):

* ``det.txt``: ``frame, -1, left, top, width, height, score[, x, y, z[, f_1 ... f_A]]``; columns after the tenth
  are read as the box's appearance embedding (the layout DeepSORT's ``generate_detections`` writes);
* ``gt.txt`` (MOT16/17/20): ``frame, id, left, top, width, height, consider, class, visibility``; ``consider=0``
  marks a box the evaluation ignores ("zero-marked"); classes are :data:`CLASSES`;
* ``gt.txt`` (MOT15 / 2D MOT 2015, and motmetrics' TUD files; 10 columns): ``frame, id, left, top, width, height,
  1, -1, -1, -1``; no classes (``class`` is read as :data:`NO_CLASS`);
* result files: ``frame, id, left, top, width, height, score, -1, -1, -1``.

Frames are 1-based; boxes are in pixels with (left, top) the top-left corner.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.errors import CorruptDataError, DatasetNotFoundError

# MOTChallenge class ids (MOT16 paper, Table 3).
CLASSES = {1: "pedestrian", 2: "person_on_vehicle", 3: "car", 4: "bicycle", 5: "motorbike", 6: "non_mot_vehicle",
           7: "static_person", 8: "distractor", 9: "occluder", 10: "occluder_on_ground", 11: "occluder_full",
           12: "reflection", 13: "crowd"}
NO_CLASS = -1  # MOT15-style ground truth has no class column
SEQINFO_KEYS = ("name", "imDir", "frameRate", "seqLength", "imWidth", "imHeight", "imExt")


@dataclass
class Sequence:
    """One MOTChallenge sequence in memory.

    ``gt`` rows: ``frame, id, left, top, width, height, consider, class, visibility`` (float64; MOT15 files get
    ``class = -1`` and ``visibility = 1``); ``det`` rows: ``frame, left, top, width, height, score``;
    ``det_feat`` (same rows, A columns): the detections' appearance embeddings, when the file has them.
    """

    name: str
    frame_rate: float
    length: int
    width: int
    height: int
    det: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))
    gt: np.ndarray | None = None
    det_feat: np.ndarray | None = None
    image_dir: Path | None = None
    image_ext: str = ".jpg"

    def frame_det(self, frame: int) -> np.ndarray:
        """Detections of one frame as ``(K, 5)``: ``left, top, width, height, score``."""
        return self.det[self.det[:, 0] == frame, 1:6]

    def frame_feat(self, frame: int) -> np.ndarray | None:
        """Appearance embeddings of one frame's detections (same order as :meth:`frame_det`), or None."""
        return None if self.det_feat is None else self.det_feat[self.det[:, 0] == frame]

    def image_path(self, frame: int) -> Path | None:
        return None if self.image_dir is None else self.image_dir / f"{frame:06d}{self.image_ext}"


def _read_rows(path: Path, min_cols: int, what: str, line_numbers: list[int] | None = None) -> list[list[float]]:
    """The numeric rows of a MOT text file; ``line_numbers`` (if given) receives each row's line in the file."""
    rows = []
    with path.open() as f:
        for lineno, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                continue
            parts = text.replace(" ", "").split(",") if "," in text else text.split()
            if len(parts) < min_cols:
                raise CorruptDataError(
                    f"{path}, line {lineno}: {len(parts)} columns, a {what} row needs at least {min_cols} "
                    f"(frame, id, left, top, width, height, ...); fix or delete the line")
            try:
                values = [float(p) for p in parts]
            except ValueError:
                raise CorruptDataError(f"{path}, line {lineno}: not a number in {text!r}; {what} rows are "
                                       "comma-separated numbers") from None
            if not np.isfinite(values).all():
                raise CorruptDataError(f"{path}, line {lineno}: NaN or infinity in {text!r}; fix or delete the line")
            if values[0] < 1 or values[0] != int(values[0]):
                raise CorruptDataError(f"{path}, line {lineno}: frame {parts[0]} is not a 1-based frame number; "
                                       "MOTChallenge frames count from 1")
            if values[4] < 0 or values[5] < 0:
                raise CorruptDataError(f"{path}, line {lineno}: negative width or height in {text!r}; fix or delete "
                                       "the line")
            rows.append(values)
            if line_numbers is not None:
                line_numbers.append(lineno)
    return rows


def read_det(path: str | Path, features: bool = False):
    """A detection file (``det/det.txt`` or any MOT result file) as ``(K, 6)``: frame, left, top, w, h, score.

    With ``features=True`` returns ``(det, feat)``: ``feat`` (K, A) holds the columns after the tenth (every row
    must have the same number), or is None when the file has ten columns or fewer."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} not found: a MOTChallenge detection file, one box a line")
    lines: list[int] = []
    rows = _read_rows(path, 7, "detection", lines)
    arr = np.asarray([r[:7] for r in rows], dtype=np.float64).reshape(-1, 7)
    det = arr[:, [0, 2, 3, 4, 5, 6]]
    if not features:
        return det
    widths = {len(r) for r in rows}
    if not rows or max(widths) <= 10:
        return det, None
    if len(widths) > 1:
        k = next(i for i, r in enumerate(rows) if len(r) != len(rows[0]))
        raise CorruptDataError(f"{path}, line {lines[k]}: {len(rows[k])} columns but line {lines[0]} has "
                               f"{len(rows[0])}; rows with appearance embeddings must all have the same length")
    return det, np.asarray([r[10:] for r in rows], dtype=np.float64)


def read_tracks(path: str | Path) -> np.ndarray:
    """A tracker result file as ``(K, 7)``: frame, id, left, top, width, height, score (score 1 when absent)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} not found: a MOTChallenge result file (frame,id,left,top,w,h,...)")
    rows = _read_rows(path, 6, "result")
    arr = np.asarray([(r + [1.0])[:7] for r in rows], dtype=np.float64).reshape(-1, 7)
    _check_unique(arr[:, :2], path)
    return arr


def read_gt(path: str | Path) -> np.ndarray:
    """A ground-truth file as ``(K, 9)``: frame, id, left, top, w, h, consider, class, visibility.

    MOT16+ files have 9 columns; MOT15 files (10 columns, world coordinates after ``consider``, or 6/7 columns)
    get ``class = -1`` (no classes) and ``visibility = 1``.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} not found: a MOTChallenge ground-truth file")
    rows = _read_rows(path, 6, "ground-truth")
    out = np.empty((len(rows), 9))
    for i, r in enumerate(rows):
        consider = r[6] if len(r) > 6 else 1.0
        if len(r) in (8, 9):  # MOT16+: class, then visibility
            cls, vis = r[7], r[8] if len(r) == 9 else 1.0
        else:  # MOT15 layout: columns 8-10 are world coordinates, there are no classes
            cls, vis = NO_CLASS, 1.0
        out[i] = (r[0], r[1], r[2], r[3], r[4], r[5], consider, cls, vis)
    _check_unique(out[:, :2], path)
    return out


def _check_unique(frame_id: np.ndarray, path: Path) -> None:
    if len(frame_id) == 0:
        return
    _, first, counts = np.unique(frame_id, axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        frame, ident = frame_id[first[np.argmax(counts > 1)]]
        raise CorruptDataError(f"{path}: id {int(ident)} appears twice in frame {int(frame)}; every id may own one "
                               "box a frame")


def read_seqinfo(folder: Path) -> dict[str, str]:
    path = folder / "seqinfo.ini"
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{path} not found: {folder} is not a MOTChallenge sequence folder (seqinfo.ini, det/det.txt, "
            "gt/gt.txt, img1/); download MOT17/MOT20 from motchallenge.net and point --seq at e.g. "
            "MOT17/train/MOT17-02-FRCNN")
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error as err:
        raise CorruptDataError(f"{path}: not an INI file ({err})") from None
    if "Sequence" not in parser:
        raise CorruptDataError(f"{path}: no [Sequence] section")
    info = dict(parser["Sequence"])
    lower = {k.lower(): k for k in SEQINFO_KEYS}
    info = {lower.get(k, k): v for k, v in info.items()}
    missing = [k for k in SEQINFO_KEYS if k not in info]
    if missing:
        raise CorruptDataError(f"{path}: key {missing[0]} missing from [Sequence] (needs {', '.join(SEQINFO_KEYS)})")
    for key in ("frameRate", "seqLength", "imWidth", "imHeight"):
        try:
            value = float(info[key])
        except ValueError:
            raise CorruptDataError(f"{path}: {key} = {info[key]!r} is not a number") from None
        if key != "frameRate" and (value != int(value) or value < 1):
            raise CorruptDataError(f"{path}: {key} = {info[key]!r} must be a positive whole number")
    return info


def load_sequence(folder: str | Path, det_file: str | Path | None = None) -> Sequence:
    """A MOTChallenge sequence folder. ``det_file`` replaces ``det/det.txt`` (e.g. another detector's boxes)."""
    folder = Path(folder)
    info = read_seqinfo(folder)
    det_path = Path(det_file) if det_file is not None else folder / "det" / "det.txt"
    gt_path = folder / "gt" / "gt.txt"
    det, feat = read_det(det_path, features=True) if det_path.is_file() else (np.zeros((0, 6)), None)
    seq = Sequence(name=info["name"], frame_rate=float(info["frameRate"]), length=int(float(info["seqLength"])),
                   width=int(float(info["imWidth"])), height=int(float(info["imHeight"])), det=det, det_feat=feat,
                   gt=read_gt(gt_path) if gt_path.is_file() else None,
                   image_dir=folder / info["imDir"], image_ext=info["imExt"])
    if not det_path.is_file() and seq.gt is None:
        raise DatasetNotFoundError(f"{folder}: neither {det_path} nor {gt_path} exists; a sequence needs detections "
                                   "to track or ground truth to simulate them from")
    for path, arr in ((det_path, seq.det), (gt_path, seq.gt)):
        if arr is not None and len(arr) and arr[:, 0].max() > seq.length:
            raise CorruptDataError(f"{path}: frame {int(arr[:, 0].max())} is past seqLength={seq.length} of "
                                   f"{folder / 'seqinfo.ini'}; the file belongs to another sequence, or seqLength "
                                   "is wrong")
    return seq


def write_sequence(folder: str | Path, seq: Sequence) -> Path:
    """Write ``seq`` in the MOTChallenge layout (seqinfo.ini, det/det.txt with any embeddings after the tenth
    column, gt/gt.txt; no images)."""
    folder = Path(folder)
    (folder / "det").mkdir(parents=True, exist_ok=True)
    lines = ["[Sequence]", f"name={seq.name}", "imDir=img1", f"frameRate={seq.frame_rate:g}",
             f"seqLength={seq.length}", f"imWidth={seq.width}", f"imHeight={seq.height}", f"imExt={seq.image_ext}"]
    (folder / "seqinfo.ini").write_text("\n".join(lines) + "\n")
    with (folder / "det" / "det.txt").open("w") as f:
        for i, (fr, x, y, w, h, s) in enumerate(seq.det):
            extra = "" if seq.det_feat is None else "," + ",".join(f"{v:.5f}" for v in seq.det_feat[i])
            f.write(f"{int(fr)},-1,{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.4f},-1,-1,-1{extra}\n")
    if seq.gt is not None:
        (folder / "gt").mkdir(exist_ok=True)
        with (folder / "gt" / "gt.txt").open("w") as f:
            for fr, i, x, y, w, h, c, cls, vis in seq.gt:
                f.write(f"{int(fr)},{int(i)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{int(c)},{int(cls)},{vis:.4f}\n")
    return folder


def write_tracks(path: str | Path, rows: np.ndarray) -> Path:
    """Write tracker output ``(K, 7)`` (frame, id, left, top, w, h, score) as a MOTChallenge result file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    order = np.lexsort((rows[:, 1], rows[:, 0])) if len(rows) else []
    with path.open("w") as f:
        for fr, i, x, y, w, h, s in rows[order]:
            f.write(f"{int(fr)},{int(i)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.4f},-1,-1,-1\n")
    return path


def motmetrics_data(name: str) -> Path:
    """The folder of a sequence shipped inside motmetrics (``TUD-Campus``, ``TUD-Stadtmitte``)."""
    from importlib.resources import files

    folder = Path(str(files("motmetrics") / "data" / name))
    if not (folder / "gt.txt").is_file():
        raise DatasetNotFoundError(f"{folder / 'gt.txt'} not found: install motmetrics==1.4.0 (make install)")
    return folder
