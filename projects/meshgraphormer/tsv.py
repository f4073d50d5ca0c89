"""MeshTransformer's TSV dataset layout (METRO / Mesh Graphormer releases of Human3.6M, 3DPW, FreiHAND, COCO,
MuCo, UP-3D, MPII), read from a local path.

A split is a YAML file whose keys name TSV files relative to it:

* ``img``: rows ``key \\t base64(JPEG)``; ``hw``: rows ``key \\t [{"height": H, "width": W}]``;
* ``label``: rows ``key \\t [ {label} ]`` with ``center`` (x, y px), ``scale`` (the box is ``200 * scale`` px),
  ``2d_joints`` (J x 3: x, y px, confidence), ``3d_joints`` (J x 4: xyz metres, confidence), ``pose`` (72 SMPL /
  48 MANO axis-angle), ``betas`` (10), ``has_2d_joints``, ``has_3d_joints``, ``has_smpl``;
* ``linelist`` (optional): one row index per line, the rows used;
* ``composite: true`` (the mixed body set): ``img`` / ``hw`` / ``label`` are lists of TSV files and the
  linelist rows are ``source index \\t row index``.

Every TSV may have a ``.lineidx`` beside it (one byte offset per row, ``train.img.tsv`` -> ``train.img.lineidx``);
without it the offsets are computed by one pass over the file.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from shared.errors import CorruptDataError, DatasetNotFoundError

LABEL_KEYS = ("center", "scale", "2d_joints", "3d_joints")


class TsvFile:
    """Random access to the rows of one TSV file (``row(i)`` -> its tab-separated columns)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetNotFoundError(f"{self.path}: no such TSV file (MeshTransformer layout, see "
                                       "projects/meshgraphormer/README.md, 'Data')")
        lineidx = self.path.with_name(self.path.stem + ".lineidx")  # train.img.tsv -> train.img.lineidx
        if lineidx.is_file():
            try:
                self.offsets = [int(x) for x in lineidx.read_text().split()]
            except ValueError as err:
                raise CorruptDataError(f"{lineidx}: not one byte offset per line ({err}); delete it and the "
                                       "offsets are computed from the TSV") from err
            size = self.path.stat().st_size
            if self.offsets and (self.offsets[-1] >= size or self.offsets != sorted(self.offsets)):
                raise CorruptDataError(f"{lineidx}: its offsets do not fit {self.path} ({size} bytes; last offset "
                                       f"{self.offsets[-1]}), so it belongs to another version of the file; delete "
                                       "it and the offsets are computed from the TSV")
        else:
            self.offsets, pos = [], 0
            with self.path.open("rb") as f:
                for line in f:
                    if line.strip():
                        self.offsets.append(pos)
                    pos += len(line)

    def __len__(self) -> int:
        return len(self.offsets)

    def row(self, i: int) -> list[str]:
        with self.path.open("rb") as f:
            f.seek(self.offsets[i])
            line = f.readline().decode("utf-8")
        return [c.strip() for c in line.rstrip("\n").split("\t")]


def _resolve(name: str, root: Path) -> Path:
    p = Path(name)
    return p if p.is_absolute() else root / p


class MeshTsvSplit:
    """One split described by a MeshTransformer YAML file: ``record(i)`` gives the RGB image (H, W, 3) uint8 and
    the parsed label of the i-th used row, with errors naming the file and line."""

    def __init__(self, yaml_file: str | Path):
        self.yaml_file = Path(yaml_file)
        if not self.yaml_file.is_file():
            raise DatasetNotFoundError(f"{self.yaml_file}: no such split file; give the YAML of a MeshTransformer "
                                       "TSV split (e.g. freihand/train.yaml, human3.6m/valid.protocol2.yaml)")
        try:
            cfg = yaml.safe_load(self.yaml_file.read_text()) or {}
        except yaml.YAMLError as err:
            raise CorruptDataError(f"{self.yaml_file}: not valid YAML ({err})") from err
        for key in ("img", "label"):
            if key not in cfg:
                raise CorruptDataError(f"{self.yaml_file}: missing key '{key}' (a split needs img and label TSVs)")
        root = self.yaml_file.parent
        self.composite = bool(cfg.get("composite", False))
        if self.composite:
            for key in ("img", "label"):
                if not isinstance(cfg[key], list):
                    raise CorruptDataError(f"{self.yaml_file}: '{key}' of a composite split must be a YAML list of "
                                           f"TSV files, got {cfg[key]!r} (write the list file's lines as a list)")
            self.img = [TsvFile(_resolve(n, root)) for n in cfg["img"]]
            self.label = [TsvFile(_resolve(n, root)) for n in cfg["label"]]
            if len(self.img) != len(self.label):
                raise CorruptDataError(f"{self.yaml_file}: composite split lists {len(self.img)} img and "
                                       f"{len(self.label)} label files; they must pair up")
        else:
            self.img, self.label = [TsvFile(_resolve(cfg["img"], root))], [TsvFile(_resolve(cfg["label"], root))]
        for img, label in zip(self.img, self.label, strict=True):
            if len(img) != len(label):
                raise CorruptDataError(f"{label.path} has {len(label)} rows but {img.path} has {len(img)}: the "
                                       "label and image TSVs of a split must have one row per image")
        self.rows: list[tuple[int, int]] = []
        if cfg.get("linelist"):
            path = _resolve(cfg["linelist"], root)
            if not path.is_file():
                raise DatasetNotFoundError(f"{path}: the linelist named in {self.yaml_file} is missing")
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                parts = line.split("\t")
                try:
                    src, idx = (int(parts[0]), int(parts[1])) if self.composite else (0, int(parts[0]))
                except (ValueError, IndexError) as err:
                    raise CorruptDataError(f"{path}, line {lineno}: expected "
                                           f"{'source index <TAB> row index' if self.composite else 'a row index'}"
                                           f", got {line!r}") from err
                if src >= len(self.img) or idx >= len(self.img[src]):
                    raise CorruptDataError(f"{path}, line {lineno}: row {src}/{idx} is beyond the TSV files")
                self.rows.append((src, idx))
        else:
            self.rows = [(s, i) for s in range(len(self.img)) for i in range(len(self.img[s]))]

    def __len__(self) -> int:
        return len(self.rows)

    def record(self, i: int) -> tuple[np.ndarray, dict, str]:
        """The RGB image, the label dict and where the label is (``file, line n``) of the i-th used row."""
        src, idx = self.rows[i]
        img_row, label_row = self.img[src].row(idx), self.label[src].row(idx)
        where_img = f"{self.img[src].path}, line {idx + 1}"
        where_label = f"{self.label[src].path}, line {idx + 1}"
        if len(img_row) < 2 or len(label_row) < 2:
            raise CorruptDataError(f"{where_img if len(img_row) < 2 else where_label}: expected 'key <TAB> value'")
        if img_row[0] != label_row[0]:
            raise CorruptDataError(f"{where_label}: key {label_row[0]!r} does not match the image key "
                                   f"{img_row[0]!r} of {where_img}")
        try:
            image = np.asarray(Image.open(io.BytesIO(base64.b64decode(img_row[-1]))).convert("RGB"))
        except Exception as err:
            raise CorruptDataError(f"{where_img}: the image column is not a base64-encoded image ({err})") from err
        try:
            label = json.loads(label_row[-1])
            label = label[0] if isinstance(label, list) else label
        except (json.JSONDecodeError, IndexError) as err:
            raise CorruptDataError(f"{where_label}: the label column is not a JSON list of one dict ({err})") \
                from err
        missing = [k for k in LABEL_KEYS if k not in label]
        if missing:
            raise CorruptDataError(f"{where_label}: the label lacks {', '.join(missing)} (expected keys: "
                                   f"{', '.join(LABEL_KEYS)}, pose, betas, has_3d_joints, has_smpl)")
        return image, label, where_label


def parse_label(label: dict, where: str, num_joints_2d: int, num_joints_3d: int) -> dict[str, np.ndarray]:
    """The numeric fields of a label as arrays of the expected shapes (the batch axis of 1 dropped)."""
    def array(key, default=None):
        try:
            return np.asarray(label.get(key, default), dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise CorruptDataError(f"{where}: '{key}' is not a numeric array ({err})") from err

    out = {}
    for key, cols, n in (("2d_joints", 3, num_joints_2d), ("3d_joints", 4, num_joints_3d)):
        arr = array(key)
        if arr.ndim == 3:
            arr = arr[0]
        if arr.shape != (n, cols):
            raise CorruptDataError(f"{where}: '{key}' has shape {arr.shape}, expected ({n}, {cols})")
        out[key] = arr
    for key, size in (("center", 2), ("scale", 1)):
        arr = array(key).reshape(-1)
        if arr.size != size:
            raise CorruptDataError(f"{where}: '{key}' must hold {size} number(s), got {label[key]!r}")
        out[key] = arr if size > 1 else np.float32(arr[0])
    out["pose"] = array("pose", np.zeros(1)).reshape(-1)
    out["betas"] = array("betas", np.zeros(10)).reshape(-1)
    for key in ("has_2d_joints", "has_3d_joints", "has_smpl"):
        out[key] = np.float32(label.get(key, 0))
    return out
