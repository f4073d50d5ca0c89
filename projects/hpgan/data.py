"""Motion data as fixed-length windows of 3D joint positions: observed frames followed by future frames.

Every source becomes a list of :class:`Clip` (positions (T, 15, 3) in millimetres on :data:`JOINTS`, y up,
pelvis-centred per frame) and is cut into windows by :class:`MotionDataModule`:

* ``MocapDataModule`` (the embedded default): the 15 labelled DeepMimic clips that ship in ``pybullet_data``
  and the CMU/boxing BVH clips of Debian's ``assimp-testmodels``, each through forward kinematics of its own
  skeleton (:mod:`projects.hpgan.mocap`), resampled to ``fps`` and scaled to one leg length;
* ``H36MDataModule``: the exponential-map release of Human3.6M used by Martinez et al.
  (``h3.6m/dataset/S<k>/<action>_<1|2>.txt``: one frame a line, 99 comma-separated numbers = root position
  + 32 exponential maps, 50 Hz), through the forward kinematics of that release's skeleton, every 2nd frame;
* ``NTUDataModule``: NTU RGB+D ``.skeleton`` files (first body, 25 Kinect joints, metres, 30 fps).

A clip is split by segment: its last ``test_fraction`` (at least one window) is the test segment, the rest
the training segment; clips shorter than two windows are training only. Windows never cross the cut.
"""

from __future__ import annotations

import abc
import functools
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from projects.hpgan import mocap
from projects.hpgan.mocap import MIRROR
from shared.errors import CorruptDataError, DatasetNotFoundError
from shared.sampling import SplitLoaders

DEFAULT_BVH_DIR = "/usr/share/assimp/models/BVH"
BVH_ENV_VAR = "REPRO_ZOO_BVH"
LEG_MM = 831.4  # rest-pose hip → knee → ankle length of DeepMimic's humanoid (0.25 × URDF), in millimetres
# Bones as (parent, child) pairs of the common joint set (the pose losses use these).
BONES = tuple((p, c) for c, p in enumerate(mocap.PARENTS) if p >= 0)


@dataclass
class Clip:
    """One recording: ``positions`` (T, 15, 3) in mm, pelvis-centred; ``label`` an action name or ""."""

    name: str
    label: str
    positions: np.ndarray


def centre(positions: np.ndarray) -> np.ndarray:
    """Positions with the pelvis (joint 0) moved to the origin in every frame."""
    return positions - positions[:, :1]


# --------------------------------------------------------------------------------------------- embedded

def _pybullet_motions() -> Path:
    try:
        import pybullet_data
    except ImportError:
        raise DatasetNotFoundError("pybullet_data is missing: `pip install pybullet` (projects/hpgan/requirements.txt, "
                                   "installed by `make install`) ships the DeepMimic clips.") from None
    return Path(pybullet_data.getDataPath())


@functools.lru_cache(maxsize=4)
def embedded_clips(fps: float = 25.0, deepmimic_dir: str | None = None, bvh_dir: str | None = None,
                   joint_map: tuple[tuple[str, str], ...] = ()) -> tuple[Clip, ...]:
    """The DeepMimic clips (labelled by their file names: walk, run, backflip, …) and the BVH clips (which carry
    no action label: each is labelled by its file name, e.g. "Boxing_Toes") at ``fps``, scaled to DeepMimic's leg
    length, in millimetres. ``joint_map`` ((common joint, BVH joint name), …) overrides the names looked for in
    the BVH files (:data:`projects.hpgan.mocap.BVH_NAMES`)."""
    data = Path(deepmimic_dir) if deepmimic_dir else _pybullet_motions()
    urdf, motions = data / "humanoid" / "humanoid.urdf", data / "data" / "motions"
    files = sorted(motions.glob("humanoid3d_*.txt"))
    if not urdf.is_file() or not files:
        raise DatasetNotFoundError(f"No DeepMimic clips under {motions} (or no humanoid/humanoid.urdf in {data}): pass "
                                   "deepmimic_dir= the pybullet_data folder, or reinstall pybullet.")
    skeleton = mocap.read_urdf_skeleton(urdf)
    clips = [Clip(f"deepmimic/{m.name}", m.name, centre(mocap.to_common(m, mocap.DEEPMIMIC_NAMES, fps, LEG_MM, str(f))))
             for f in files for m in [mocap.read_deepmimic(f, skeleton)]]
    folder = Path(bvh_dir or os.environ.get(BVH_ENV_VAR) or DEFAULT_BVH_DIR)
    bvh_files = sorted(folder.glob("*.bvh"))
    if not bvh_files:
        raise DatasetNotFoundError(f"No BVH files in {folder}: `apt-get install assimp-testmodels` (as `make data` "
                                   "does) "
                                   f"puts CMU and boxing clips in {DEFAULT_BVH_DIR}, or set {BVH_ENV_VAR} / bvh_dir to "
                                   "a folder of .bvh files.")
    names = {**mocap.BVH_NAMES, **dict(joint_map)}
    clips += [Clip(f"bvh/{f.stem}", f.stem, centre(mocap.to_common(mocap.read_bvh(f), names, fps, LEG_MM, str(f))))
              for f in bvh_files]
    return tuple(clips)


# --------------------------------------------------------------------------------------------- Human3.6M

# The skeleton of Martinez et al.'s exponential-map release (src/forward_kinematics.py): parents and rest
# offsets (mm) of its 32 joints. Joint i turns by the exponential map in columns 3 + 3i … 5 + 3i.
H36M_PARENTS = (-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20, 19, 22, 12, 24, 25, 26,
                27, 28, 27, 30)
H36M_OFFSETS = (
    (0, 0, 0), (-132.948591, 0, 0), (0, -442.894612, 0), (0, -454.206447, 0), (0, 0, 162.767078), (0, 0, 74.999437),
    (132.948826, 0, 0), (0, -442.894413, 0), (0, -454.206590, 0), (0, 0, 162.767426), (0, 0, 74.999948),
    (0, 0.1, 0), (0, 233.383263, 0), (0, 257.077681, 0), (0, 121.134938, 0), (0, 115.002227, 0),
    (0, 257.077681, 0), (0, 151.034226, 0), (0, 278.882773, 0), (0, 251.733451, 0), (0, 0, 0), (0, 0, 99.999627),
    (0, 100.000188, 0), (0, 0, 0), (0, 257.077681, 0), (0, 151.031437, 0), (0, 278.892924, 0), (0, 251.728680, 0),
    (0, 0, 0), (0, 0, 99.999888), (0, 137.499922, 0), (0, 0, 0))
# Common joint → H3.6M joint (VideoPose3D's naming: 1-3 right leg, 6-8 left leg, 12 spine, 14 neck/nose,
# 17-19 left arm, 25-27 right arm).
H36M_COMMON = (0, 12, 14, 1, 2, 3, 6, 7, 8, 25, 26, 27, 17, 18, 19)
H36M_ACTIONS = ("walking", "eating", "smoking", "discussion", "directions", "greeting", "phoning", "posing",
                "purchases", "sitting", "sittingdown", "takingphoto", "waiting", "walkingdog", "walkingtogether")


def expmap_to_matrix(r: np.ndarray) -> np.ndarray:
    """Rodrigues: R = I + sin θ K + (1 − cos θ) K², θ = |r|, K the cross-product matrix of r / θ (..., 3 → 3×3)."""
    theta = np.linalg.norm(r, axis=-1, keepdims=True)
    axis = r / np.where(theta > 1e-12, theta, 1)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*r.shape[:-1], 3, 3)
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def h36m_positions(expmaps: np.ndarray) -> np.ndarray:
    """Joint positions (T, 32, 3), mm, y up, of exponential-map frames (T, 99), root translation and rotation
    zeroed as Martinez et al. do.

    Their ``fkl`` composes row vectors (x · R); the same pose in column form turns each joint by Rᵀ. Unlike
    their code, the rotation angles are not also added to the bone offsets (that adds < π mm per bone)."""
    frames = expmaps.reshape(len(expmaps), 33, 3)[:, 1:]  # (T, 32, 3): column triple 0 is the root position
    local = np.swapaxes(expmap_to_matrix(frames), -1, -2)
    local[:, 0] = np.eye(3)
    skeleton = mocap.Skeleton([str(i) for i in range(32)], list(H36M_PARENTS), np.asarray(H36M_OFFSETS, float))
    return mocap.forward_kinematics(skeleton, np.zeros((len(frames), 3)), mocap.matrix_to_quat(local))


def read_h36m_expmap(path: str | Path) -> np.ndarray:
    """One ``S<k>/<action>_<n>.txt`` file as an array (T, 99), every malformed line named."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} not found: expected Martinez et al.'s h3.6m/dataset/S<k>/<action>_<n>.txt.")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        try:
            values = [float(v) for v in parts]
        except ValueError:
            raise CorruptDataError(f"{path}, line {n}: a value that is not a number ({line[:60]!r}).") from None
        if len(values) != 99:
            raise CorruptDataError(f"{path}, line {n}: {len(values)} values, expected 99 (root position + 32 "
                                   "exponential maps, comma-separated).")
        rows.append(values)
    if not rows:
        raise CorruptDataError(f"{path}: no frames.")
    return np.asarray(rows)


MARTINEZ_SEED = 1234567890


def martinez_test_starts(length_1: int, length_2: int, seed: int = MARTINEZ_SEED) -> list[tuple[int, int]]:
    """Martinez et al.'s eight test sequences of one action (``find_indices_srnn``): (sub-action, i) four times
    for sub-actions 1 and 2 in turn, i drawn by a fresh ``RandomState(seed).randint(16, T_k − 150)`` per
    action on the 25 fps sequences; the sequence's last observed frame is i + 49."""
    rng = np.random.RandomState(seed)
    starts = []
    for _ in range(4):
        starts.append((1, int(rng.randint(16, length_1 - 150))))
        starts.append((2, int(rng.randint(16, length_2 - 150))))
    return starts


def martinez_test_windows(clips: Sequence[Clip], n_obs: int, n_pred: int) -> list[Clip]:
    """For each action of ``clips`` (one subject, sub-actions 1 and 2), the eight windows of Martinez et al.'s
    protocol: ``n_obs`` frames up to frame i + 49, then ``n_pred`` (at most 100) frames."""
    if n_obs > 50 + 16 or n_pred > 100:
        raise ValueError("Martinez et al.'s windows hold at most 66 observed and 100 predicted frames")
    by_name = {c.name.split("/")[-1]: c for c in clips}
    windows = []
    for action in dict.fromkeys(c.label for c in clips):
        pair = by_name.get(f"{action}_1"), by_name.get(f"{action}_2")
        if None in pair or min(len(c.positions) for c in pair) < 167:
            raise CorruptDataError(f"Martinez et al.'s test protocol needs {action}_1 and {action}_2 of 167 frames or "
                                   "more at 25 fps for the test subject; use test_protocol='all' for other data.")
        for k, (sub, i) in enumerate(martinez_test_starts(len(pair[0].positions), len(pair[1].positions))):
            last = i + 50  # one past the last observed frame
            windows.append(Clip(f"{pair[sub - 1].name}#{k}", action,
                                pair[sub - 1].positions[last - n_obs:last + n_pred]))
    return windows


def h36m_clips(root: str | Path, subjects: Sequence[int], actions: Sequence[str] = H36M_ACTIONS,
               step: int = 2) -> list[Clip]:
    """Every ``<action>_{1,2}.txt`` of ``subjects`` under ``root`` (the ``h3.6m/dataset`` folder), every
    ``step``-th frame (50 Hz → 25 fps), on the common joints."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root} not found: download Martinez et al.'s h3.6m.zip (human-motion-prediction "
                                   "README) and pass its h3.6m/dataset folder as data_dir.")
    clips = []
    for subject in subjects:
        for action in actions:
            for sub in (1, 2):
                path = root / f"S{subject}" / f"{action}_{sub}.txt"
                positions = h36m_positions(read_h36m_expmap(path)[::step])
                clips.append(Clip(f"S{subject}/{action}_{sub}", action, centre(positions[:, H36M_COMMON])))
    return clips


# --------------------------------------------------------------------------------------------- NTU RGB+D

NTU_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
# Common joint → NTU joint (0-based: 0 spine base, 1 spine middle, 2 neck, 4-6 left arm, 8-10 right arm,
# 12-14 left leg, 16-18 right leg).
NTU_COMMON = (0, 1, 2, 16, 17, 18, 12, 13, 14, 8, 9, 10, 4, 5, 6)
NTU_CROSS_SUBJECT_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)


def read_ntu_skeleton(path: str | Path) -> np.ndarray:
    """The first body's 25 joints (T, 25, 3), in metres, of an NTU RGB+D ``.skeleton`` file.

    Layout: frame count; per frame a body count; per body a line of 10 values (id, clipped edges, hand
    states, restricted, lean x/y, tracking state), a joint count (25) and one line of 12 values per joint
    (x y z, depth x y, colour x y, orientation w x y z, tracking state). Frames without a body are dropped."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} not found: expected an NTU RGB+D .skeleton file.")
    lines = path.read_text().splitlines()
    position = 0

    def take(what: str) -> list[str]:
        nonlocal position
        if position >= len(lines):
            raise CorruptDataError(f"{path}: the file ends at line {position} where {what} was expected (truncated?).")
        position += 1
        return lines[position - 1].split()

    def integer(what: str) -> int:
        tokens = take(what)
        if len(tokens) != 1 or not tokens[0].isdigit():
            raise CorruptDataError(f"{path}, line {position}: expected {what} (one integer), got {' '.join(tokens)!r}.")
        return int(tokens[0])

    frames = []
    for _ in range(integer("the frame count")):
        first = None
        for body in range(integer("a body count")):
            if len(take("a body line of 10 values")) != 10:
                raise CorruptDataError(f"{path}, line {position}: a body line needs 10 values.")
            joints = []
            for _ in range(integer("a joint count")):
                values = take("a joint line of 12 values")
                try:
                    numbers = [float(v) for v in values]
                except ValueError:
                    numbers = []
                if len(numbers) != 12:
                    raise CorruptDataError(f"{path}, line {position}: a joint line needs 12 numbers, got "
                                           f"{' '.join(values)[:60]!r}.")
                joints.append(numbers[:3])
            if len(joints) != 25:
                raise CorruptDataError(f"{path}, line {position}: {len(joints)} joints, expected the 25 Kinect v2 "
                                       "joints.")
            if body == 0:
                first = joints
        if first is not None:
            frames.append(first)
    if not frames:
        raise CorruptDataError(f"{path}: no frame holds a body (NTU lists such samples as 'missing skeletons').")
    return np.asarray(frames, dtype=np.float64)


def ntu_clips(root: str | Path, actions: Sequence[int] | None = None, performers: Sequence[int] | None = None,
              min_frames: int = 0) -> list[Clip]:
    """The ``.skeleton`` files under ``root`` whose action and performer are in the given lists (None: all),
    on the common joints, in mm; labels are "A<nnn>"."""
    root = Path(root)
    files = sorted(root.rglob("*.skeleton")) if root.is_dir() else []
    if not files:
        raise DatasetNotFoundError(f"No .skeleton files under {root}: unpack NTU RGB+D's nturgbd_skeletons archive "
                                   "and pass its folder as data_dir.")
    clips = []
    for f in files:
        match = NTU_NAME.search(f.name)
        if not match:
            raise CorruptDataError(f"{f}: the name does not follow SsssCcccPpppRrrrAaaa.skeleton.")
        performer, action = int(match.group(3)), int(match.group(5))
        if (actions is not None and action not in actions) or (performers is not None and performer not in performers):
            continue
        positions = read_ntu_skeleton(f)[:, NTU_COMMON] * 1000.0
        if len(positions) >= min_frames:
            clips.append(Clip(f.stem, f"A{action:03d}", centre(positions)))
    return clips


# --------------------------------------------------------------------------------------------- windows

def split_segments(length: int, window: int, test_fraction: float) -> tuple[slice, slice | None]:
    """Training and test frame ranges of a clip: the last ``test_fraction`` (at least one window) is test,
    and a clip shorter than two windows is training only."""
    if length < 2 * window or test_fraction <= 0:
        return slice(0, length), None
    test = max(window, int(round(test_fraction * length)))
    test = min(test, length - window)
    return slice(0, length - test), slice(length - test, length)


def mirror(poses: torch.Tensor) -> torch.Tensor:
    """The left-right mirror image of poses (..., 15, 3): x negated, left and right joints swapped."""
    flipped = poses[..., list(MIRROR), :].clone()
    flipped[..., 0] = -flipped[..., 0]
    return flipped


def rotate_y(poses: torch.Tensor, angle: float) -> torch.Tensor:
    """Poses (..., 3) turned by ``angle`` radians about the vertical (y) axis."""
    c, s = math.cos(angle), math.sin(angle)
    rotation = poses.new_tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return poses @ rotation.T


def frame_statistics(frames: torch.Tensor, turned: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-joint, per-coordinate mean and standard deviation (15, 3) of frames (N, 15, 3).

    ``turned``: the statistics of the frames turned about the vertical axis by a uniform angle, as the
    augmentation shows them to the model: x and z then have mean 0 and the same variance E[x² + z²] / 2, so that
    a joint that never moves sideways in the files (a hip, when the root rotation is removed) is not divided by
    a near-zero spread it does not have after turning."""
    mean, std = frames.mean(0), frames.std(0)
    if turned:
        horizontal = (frames[..., 0] ** 2 + frames[..., 2] ** 2).mean(0).div(2).sqrt()
        mean[:, 0] = mean[:, 2] = 0
        std[:, 0] = std[:, 2] = horizontal
    return mean, std


class MotionWindows(Dataset):
    """Windows of ``window`` frames every ``stride`` frames from each segment; items are
    ``{"poses": (window, 15, 3) float32 mm, "label": int}`` (label -1: unlabelled).

    ``augment`` (training): a random mirror image and a random turn about the vertical axis per item."""

    def __init__(self, segments: Sequence[tuple[np.ndarray, int]], window: int, stride: int = 1, augment: bool = False):
        self.segments = [torch.as_tensor(s, dtype=torch.float32) for s, _ in segments]
        self.labels = [label for _, label in segments]
        self.window, self.augment = window, augment
        self.index = [(i, start) for i, s in enumerate(self.segments)
                      for start in range(0, len(s) - window + 1, stride)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        clip, start = self.index[i]
        poses = self.segments[clip][start:start + self.window]
        if self.augment:
            if torch.rand(()) < 0.5:
                poses = mirror(poses)
            poses = rotate_y(poses, float(torch.rand(())) * 2 * math.pi)
        return {"poses": poses, "label": self.labels[clip]}


class MotionDataModule(SplitLoaders, L.LightningDataModule, abc.ABC):
    """Windows of ``n_obs + n_pred`` frames from training and test clips (module docstring).

    Subclasses say which frames train and which test (:meth:`split_clips`). After ``setup``: ``train_set``,
    ``val_set`` (the test windows), ``classes`` (the action labels with test windows; a window's label indexes
    this list or is -1), and the per-joint, per-coordinate ``mean`` and ``std`` (15, 3) of the training frames
    for normalisation."""

    def __init__(self, n_obs: int = 10, n_pred: int = 20, test_fraction: float = 0.2, train_stride: int = 1,
                 test_stride: int = 5, augment: bool = True, batch_size: int = 16, num_workers: int = 0,
                 seed: int | None = None):
        super().__init__()
        self.save_hyperparameters()

    @abc.abstractmethod
    def split_clips(self) -> tuple[list[Clip], list[Clip]]:
        """The training clips (or segments) and the test clips (or segments)."""

    @property
    def window(self) -> int:
        return self.hparams.n_obs + self.hparams.n_pred

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "train_set"):
            return
        hp = self.hparams
        train, test = self.split_clips()
        self.classes = sorted({c.label for c in test if c.label})
        label = {name: i for i, name in enumerate(self.classes)}
        self.train_set = MotionWindows([(c.positions, label.get(c.label, -1)) for c in train], self.window,
                                       hp.train_stride, augment=hp.augment)
        self.val_set = MotionWindows([(c.positions, label.get(c.label, -1)) for c in test], self.window,
                                     hp.test_stride)
        if not len(self.train_set) or not len(self.val_set):
            raise CorruptDataError(f"{type(self).__name__}: {len(self.train_set)} training and {len(self.val_set)} "
                                   f"test windows of {self.window} frames from {len(train)} training and {len(test)} "
                                   "test clips; check the data folder and the split, and that clips hold at least "
                                   "one window.")
        self.mean, self.std = frame_statistics(torch.cat([s for s in self.train_set.segments if len(s)]),
                                               turned=hp.augment)


class MocapDataModule(MotionDataModule):
    """The embedded default: DeepMimic + BVH motion capture at ``fps`` (see :func:`embedded_clips`)."""

    def __init__(self, fps: float = 25.0, deepmimic_dir: str | None = None, bvh_dir: str | None = None,
                 joint_map: dict[str, str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.save_hyperparameters()

    def split_clips(self) -> tuple[list[Clip], list[Clip]]:
        """Each clip's training segment, and its test segment where it has one (:func:`split_segments`)."""
        hp = self.hparams
        clips = embedded_clips(hp.fps, hp.deepmimic_dir, hp.bvh_dir, tuple(sorted((hp.joint_map or {}).items())))
        self.clip_names = [c.name for c in clips]
        train, test = [], []
        for clip in clips:
            train_part, test_part = split_segments(len(clip.positions), self.window, hp.test_fraction)
            train.append(Clip(clip.name, clip.label, clip.positions[train_part]))
            if test_part is not None:
                test.append(Clip(clip.name, clip.label, clip.positions[test_part]))
        return train, test


class H36MDataModule(MotionDataModule):
    """Human3.6M (Martinez et al.'s exponential-map release) at 25 fps; training subjects train, test subjects
    test (``test_fraction`` is unused: the split is by subject, as Martinez et al.: test S5).

    ``test_protocol``: "martinez", the eight seeded windows per action of Martinez et al. (one test subject),
    or "all", every ``test_stride`` frames of the test subjects' clips."""

    def __init__(self, data_dir: str = "data/h3.6m/dataset", train_subjects: Sequence[int] = (1, 6, 7, 8, 9, 11),
                 test_subjects: Sequence[int] = (5,), actions: Sequence[str] = H36M_ACTIONS,
                 test_protocol: str = "martinez", **kwargs):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if test_protocol not in ("martinez", "all"):
            raise ValueError(f"test_protocol is 'martinez' or 'all', got {test_protocol!r}")

    def split_clips(self) -> tuple[list[Clip], list[Clip]]:
        hp = self.hparams
        train = h36m_clips(hp.data_dir, hp.train_subjects, hp.actions)
        test = h36m_clips(hp.data_dir, hp.test_subjects, hp.actions)
        if hp.test_protocol == "martinez":
            if len(hp.test_subjects) != 1:
                raise ValueError("Martinez et al.'s test protocol draws from one test subject (S5)")
            test = martinez_test_windows(test, hp.n_obs, hp.n_pred)
        return train, test


class NTUDataModule(MotionDataModule):
    """NTU RGB+D skeletons, cross-subject: ``train_performers`` train, the others test. ``actions`` default to
    1-49 (the single-person classes HP-GAN uses); clips shorter than ``min_frames`` are dropped (HP-GAN: 60)."""

    def __init__(self, data_dir: str = "data/nturgbd_skeletons", actions: Sequence[int] = tuple(range(1, 50)),
                 train_performers: Sequence[int] = NTU_CROSS_SUBJECT_TRAIN, min_frames: int = 60, **kwargs):
        super().__init__(**kwargs)
        self.save_hyperparameters()

    def split_clips(self) -> tuple[list[Clip], list[Clip]]:
        hp = self.hparams
        clips = ntu_clips(hp.data_dir, hp.actions, None, hp.min_frames)
        is_train = [int(NTU_NAME.search(c.name).group(3)) in set(hp.train_performers) for c in clips]
        return ([c for c, t in zip(clips, is_train, strict=True) if t],
                [c for c, t in zip(clips, is_train, strict=True) if not t])
