"""Motion capture to 3D joint positions: BVH files and DeepMimic clips, each through forward kinematics of
its own skeleton, resampled to one frame rate and reduced to one common joint set (:data:`JOINTS`).

Both sources become a :class:`Motion`: a :class:`Skeleton` (joint names, parents, rest offsets) plus per
frame a root position and one local rotation per joint. :func:`forward_kinematics` then places every joint:

    R_j = R_parent(j) · r_j        p_j = p_parent(j) + R_parent(j) · o_j        (p_root = root position + o_root)

with r_j the joint's local rotation and o_j its rest offset, so bone lengths are the offsets' norms in every
frame. Resampling interpolates the root position linearly and the local rotations by slerp before the FK,
which keeps bone lengths exact (interpolating joint positions would shorten bones in fast motion).
"""

from __future__ import annotations

import dataclasses
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from shared.errors import CorruptDataError, DatasetNotFoundError

# The common joint set every source is reduced to; "neck" is where the head turns (DeepMimic's neck joint,
# a BVH's Head joint). Parents index into the same tuple.
JOINTS = ("pelvis", "spine", "neck", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
          "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist")
PARENTS = (-1, 0, 1, 0, 3, 4, 0, 6, 7, 1, 9, 10, 1, 12, 13)
# Left/right partners, for mirroring.
MIRROR = (0, 1, 2, 6, 7, 8, 3, 4, 5, 12, 13, 14, 9, 10, 11)

# BVH joint names for each common joint, tried in order (the first present wins). CMU's cgspeed
# conversion names the upper arm "RightArm" and the clavicle "RightShoulder", so "RightArm" comes first.
BVH_NAMES: dict[str, tuple[str, ...]] = {
    "pelvis": ("Hips", "Hip", "hip", "pelvis", "Pelvis"),
    "spine": ("Spine1", "Chest", "chest", "Spine", "spine"),
    "neck": ("Head", "head"),
    **{f"{s}_{j}": tuple(f"{side}{n}" for n in names)
       for s, side in (("r", "Right"), ("l", "Left"))
       for j, names in (("hip", ("UpLeg", "Hip", "Thigh")), ("knee", ("Leg", "Knee", "Shin")),
                        ("ankle", ("Foot", "Ankle")), ("shoulder", ("Arm", "Shoulder", "UpArm")),
                        ("elbow", ("ForeArm", "Elbow", "LowArm")), ("wrist", ("Hand", "Wrist")))},
}

# DeepMimic's humanoid3d frame: [duration, root position (3), root rotation (w x y z), then per joint a
# quaternion (w x y z) or, for the knees and elbows, one angle about the joint's z axis]. Start and size
# of each joint's entries, as pybullet's humanoid_pose_interpolator reads them.
DEEPMIMIC_LAYOUT: dict[str, tuple[int, int]] = {
    "root": (4, 4), "chest": (8, 4), "neck": (12, 4), "right_hip": (16, 4), "right_knee": (20, 1),
    "right_ankle": (21, 4), "right_shoulder": (25, 4), "right_elbow": (29, 1), "left_hip": (30, 4),
    "left_knee": (34, 1), "left_ankle": (35, 4), "left_shoulder": (39, 4), "left_elbow": (43, 1)}
DEEPMIMIC_FRAME_SIZE = 44
DEEPMIMIC_SCALE = 0.25  # DeepMimic loads humanoid.urdf with globalScaling=0.25 (metres)
DEEPMIMIC_NAMES = {"pelvis": "root", "spine": "chest", "neck": "neck",
                   **{f"{s}_{j}": f"{side}_{j}" for s, side in (("r", "right"), ("l", "left"))
                      for j in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")}}


@dataclasses.dataclass
class Skeleton:
    """Joint names, parent indices (-1 for the root; parents come first) and rest offsets (J, 3), each in its
    parent's frame."""

    names: list[str]
    parents: list[int]
    offsets: np.ndarray

    def index(self, name: str) -> int:
        return self.names.index(name)


@dataclasses.dataclass
class Motion:
    """A clip: ``root_position`` (T, 3), local ``rotations`` (T, J, 4) as unit quaternions (w, x, y, z) and
    ``times`` (T,) in seconds."""

    name: str
    skeleton: Skeleton
    root_position: np.ndarray
    rotations: np.ndarray
    times: np.ndarray


# --------------------------------------------------------------------------------------------- rotations

def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of unit quaternions (..., 4) in (w, x, y, z) order."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1).reshape(*q.shape[:-1], 3, 3)


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4), w ≥ 0, of rotation matrices (..., 3, 3): of the four ways to recover
    (w, x, y, z) from the diagonal and the off-diagonal sums, each element uses the best-conditioned one."""
    r = m.reshape(-1, 3, 3)
    d0, d1, d2 = r[:, 0, 0], r[:, 1, 1], r[:, 2, 2]
    # 4·q_i² for i = w, x, y, z, and the candidate quaternions scaled by 4·q_i
    squares = np.stack([1 + d0 + d1 + d2, 1 + d0 - d1 - d2, 1 - d0 + d1 - d2, 1 - d0 - d1 + d2], axis=1)
    a, b, c = r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]
    e, f, g = r[:, 1, 0] + r[:, 0, 1], r[:, 0, 2] + r[:, 2, 0], r[:, 2, 1] + r[:, 1, 2]
    candidates = np.stack([
        np.stack([squares[:, 0], a, b, c], axis=1), np.stack([a, squares[:, 1], e, f], axis=1),
        np.stack([b, e, squares[:, 2], g], axis=1), np.stack([c, f, g, squares[:, 3]], axis=1)], axis=1)
    best = np.argmax(squares, axis=1)
    q = candidates[np.arange(len(r)), best]
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q.reshape(*m.shape[:-2], 4)


def axis_rotation(axis: str, degrees: np.ndarray) -> np.ndarray:
    """Matrices (..., 3, 3) rotating by ``degrees`` about the x, y or z axis (right-handed)."""
    a = np.radians(degrees)
    c, s, one, zero = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    rows = {"X": [one, zero, zero, zero, c, -s, zero, s, c],
            "Y": [c, zero, s, zero, one, zero, -s, zero, c],
            "Z": [c, -s, zero, s, c, zero, zero, zero, one]}[axis.upper()]
    return np.stack(rows, axis=-1).reshape(*a.shape, 3, 3)


def slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between unit quaternions (..., 4) at fractions ``t`` (...,), shortest path."""
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.clip(np.abs(dot), -1.0, 1.0)
    t = t[..., None]
    theta = np.arccos(dot)
    sin = np.sin(theta)
    near = sin < 1e-6
    w0 = np.where(near, 1 - t, np.sin((1 - t) * theta) / np.where(near, 1, sin))
    w1 = np.where(near, t, np.sin(t * theta) / np.where(near, 1, sin))
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


# --------------------------------------------------------------------------------------------- kinematics

def forward_kinematics(skeleton: Skeleton, root_position: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """World positions (T, J, 3) of every joint (see the module docstring for the recursion)."""
    local = quat_to_matrix(rotations)
    world = np.empty_like(local)
    positions = np.empty((*rotations.shape[:-1], 3))
    for j, parent in enumerate(skeleton.parents):
        if parent < 0:
            world[:, j] = local[:, j]
            positions[:, j] = root_position + skeleton.offsets[j]
        else:
            world[:, j] = world[:, parent] @ local[:, j]
            positions[:, j] = positions[:, parent] + world[:, parent] @ skeleton.offsets[j]
    return positions


def rest_positions(skeleton: Skeleton) -> np.ndarray:
    """Joint positions (J, 3) with every rotation the identity and the root at the origin."""
    identity = np.zeros((1, len(skeleton.names), 4))
    identity[..., 0] = 1
    return forward_kinematics(skeleton, np.zeros((1, 3)), identity)[0]


def resample(motion: Motion, fps: float) -> Motion:
    """``motion`` at ``fps`` frames a second from its first frame to its last: root positions linearly,
    rotations by slerp, between the two source frames around each new time."""
    start, end = float(motion.times[0]), float(motion.times[-1])
    times = start + np.arange(int(math.floor((end - start) * fps + 1e-9)) + 1) / fps
    right = np.clip(np.searchsorted(motion.times, times, side="right"), 1, len(motion.times) - 1)
    left = right - 1
    span = motion.times[right] - motion.times[left]
    frac = np.clip((times - motion.times[left]) / np.where(span > 0, span, 1), 0, 1)
    root = motion.root_position[left] * (1 - frac[:, None]) + motion.root_position[right] * frac[:, None]
    joints = len(motion.skeleton.names)
    rotations = slerp(motion.rotations[left], motion.rotations[right], np.repeat(frac[:, None], joints, axis=1))
    return dataclasses.replace(motion, root_position=root, rotations=rotations, times=times)


def common_indices(skeleton: Skeleton, names: Mapping[str, Sequence[str] | str], source: str) -> list[int]:
    """For each of :data:`JOINTS`, the index of the first of its candidate names the skeleton has."""
    indices = []
    for joint in JOINTS:
        candidates = (names[joint],) if isinstance(names[joint], str) else names[joint]
        found = next((skeleton.index(n) for n in candidates if n in skeleton.names), None)
        if found is None:
            raise CorruptDataError(
                f"{source}: no joint for '{joint}' (looked for {', '.join(candidates)}; the file has "
                f"{', '.join(skeleton.names[:40])}). Name the file's joint for it in a joint_map "
                f"(MocapDataModule(joint_map={{'{joint}': '<name in the file>', …}})).")
        indices.append(found)
    return indices


def leg_length(skeleton: Skeleton, indices: Sequence[int]) -> float:
    """Mean rest-pose length of the two legs (hip → knee → ankle) of the common joints ``indices``."""
    rest = rest_positions(skeleton)[list(indices)]
    legs = [(3, 4, 5), (6, 7, 8)]
    return float(np.mean([np.linalg.norm(rest[h] - rest[k]) + np.linalg.norm(rest[k] - rest[a]) for h, k, a in legs]))


# --------------------------------------------------------------------------------------------- BVH

def _bvh_error(path: Path, line: int, what: str) -> CorruptDataError:
    return CorruptDataError(f"{path}, line {line}: {what}. A BVH file has a HIERARCHY of ROOT/JOINT blocks with "
                            "OFFSET and CHANNELS, then MOTION, 'Frames: N', 'Frame Time: t' and N lines of numbers.")


def read_bvh(path: str | Path) -> Motion:
    """A BVH file as a :class:`Motion` (angles in the file's channel order, R = R_c1 · R_c2 · R_c3).

    Frame lines beyond the declared ``Frames:`` count are ignored; fewer are an error. End sites become joints
    named ``<parent>_end`` without channels. Only the root may have position
    channels; it is placed at its offset plus their values."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} not found: expected a BVH motion-capture file.")
    lines = path.read_text(errors="replace").splitlines()
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[int, list[str]]] = []  # (joint, channel names) in file order
    stack: list[int] = []
    pending: tuple[str, int] | None = None
    n = 0
    while n < len(lines):
        tokens = lines[n].split()
        n += 1
        if not tokens:
            continue
        key = tokens[0].upper()
        if key == "HIERARCHY":
            continue
        if key in ("ROOT", "JOINT"):
            if (key == "ROOT") != (not stack):
                raise _bvh_error(path, n, f"{tokens[0]} where a {'ROOT' if not stack else 'JOINT'} was expected")
            pending = (tokens[1] if len(tokens) > 1 else f"joint{len(names)}", stack[-1] if stack else -1)
        elif key == "END":
            if not stack:
                raise _bvh_error(path, n, "End Site outside a joint")
            pending = (f"{names[stack[-1]]}_end", stack[-1])
        elif key == "{":
            if pending is None:
                raise _bvh_error(path, n, "'{' without a ROOT, JOINT or End Site before it")
            names.append(pending[0])
            parents.append(pending[1])
            offsets.append([0.0, 0.0, 0.0])
            stack.append(len(names) - 1)
            pending = None
        elif key == "}":
            if not stack:
                raise _bvh_error(path, n, "unbalanced '}'")
            stack.pop()
        elif key == "OFFSET":
            try:
                values = [float(v) for v in tokens[1:4]]
            except ValueError:
                values = []
            if len(values) != 3 or not stack:
                raise _bvh_error(path, n, f"OFFSET needs three numbers inside a joint, got {lines[n - 1].strip()!r}")
            offsets[stack[-1]] = values
        elif key == "CHANNELS":
            try:
                count = int(tokens[1])
            except (ValueError, IndexError):
                raise _bvh_error(path, n, "CHANNELS needs a count") from None
            kinds = tokens[2:2 + count]
            if len(kinds) != count or not stack:
                raise _bvh_error(path, n, f"CHANNELS declares {count} channels but names {len(kinds)}")
            unknown = [k for k in kinds if k[:1].upper() not in "XYZ" or k[1:].lower() not in ("position", "rotation")
                       or len(k) < 2]
            if unknown:
                raise _bvh_error(path, n, f"unknown channel {unknown[0]!r} (expected Xposition … Zrotation)")
            if any(k[1:].lower() == "position" for k in kinds) and parents[stack[-1]] != -1:
                raise _bvh_error(path, n, f"position channels on the non-root joint {names[stack[-1]]}")
            channels.append((stack[-1], kinds))
        elif key == "MOTION":
            break
        else:
            raise _bvh_error(path, n, f"unexpected {tokens[0]!r}")
    if not names or stack:
        raise _bvh_error(path, n, "the HIERARCHY is empty or its braces are unbalanced")
    header = {}
    while n < len(lines) and len(header) < 2:
        text = lines[n].strip()
        n += 1
        if text:
            field, _, value = text.partition(":")
            header[field.strip().lower()] = (value.strip(), n)
    try:
        frames, frame_time = int(header["frames"][0]), float(header["frame time"][0])
    except (KeyError, ValueError):
        raise _bvh_error(path, n, "expected 'Frames: N' and 'Frame Time: t' after MOTION") from None
    if frames < 1 or not frame_time > 0:
        raise _bvh_error(path, n, f"'Frames: {frames}' and 'Frame Time: {frame_time}' must both be positive")
    width = sum(len(k) for _, k in channels)
    rows = []
    for line_no in range(n, len(lines)):
        if not lines[line_no].strip():
            continue
        values = lines[line_no].split()
        if len(values) != width:
            raise _bvh_error(path, line_no + 1, f"{len(values)} values where the channels need {width}")
        try:
            rows.append([float(v) for v in values])
        except ValueError:
            raise _bvh_error(path, line_no + 1, "a value that is not a number") from None
    if len(rows) < frames:  # more lines than declared is common (exporters add one); those are ignored
        raise _bvh_error(path, len(lines), f"'Frames: {frames}' but only {len(rows)} frame lines (truncated file?)")
    data = np.asarray(rows[:frames], dtype=np.float64).reshape(frames, width)
    skeleton = Skeleton(names, parents, np.asarray(offsets, dtype=np.float64))
    local = np.broadcast_to(np.eye(3), (frames, len(names), 3, 3)).copy()
    root = np.zeros((frames, 3))
    column = 0
    for joint, kinds in channels:
        for kind in kinds:
            axis, what = kind[0].upper(), kind[1:].lower()
            if what == "position":
                root[:, "XYZ".index(axis)] = data[:, column]
            else:
                local[:, joint] = local[:, joint] @ axis_rotation(axis, data[:, column])
            column += 1
    times = np.arange(frames) * frame_time
    return Motion(path.stem, skeleton, root, matrix_to_quat(local), times)


# --------------------------------------------------------------------------------------------- DeepMimic

def read_urdf_skeleton(path: str | Path, scale: float = DEEPMIMIC_SCALE) -> Skeleton:
    """The joint tree of a URDF (joint names, parents, origins × ``scale``); the root is the first joint's
    parent link's child, as in DeepMimic's humanoid where every joint's rpy is zero."""
    path = Path(path)
    try:
        root = ET.fromstring(path.read_text().replace("\x00", ""))  # pybullet's copy ends in a NUL byte
    except (OSError, ET.ParseError) as err:
        raise CorruptDataError(f"{path}: cannot read the URDF skeleton ({err}).") from None
    names, parents, offsets, link_to_joint = [], [], [], {}
    for joint in root.iter("joint"):
        parent, child, origin = joint.find("parent"), joint.find("child"), joint.find("origin")
        try:
            parent_link, child_link = parent.get("link"), child.get("link")
            xyz = [float(v) * scale for v in origin.get("xyz", "0 0 0").split()] if origin is not None else [0.0] * 3
            if len(xyz) != 3 or None in (parent_link, child_link):
                raise ValueError
        except (AttributeError, ValueError):
            raise CorruptDataError(f"{path}: joint {joint.get('name')!r} needs <parent link=…>, <child link=…> and an "
                                   "origin xyz of three numbers.") from None
        names.append(joint.get("name"))
        parents.append(link_to_joint.get(parent_link, -1))
        offsets.append(xyz)
        link_to_joint[child_link] = len(names) - 1
    if not names or parents.count(-1) != 1:
        raise CorruptDataError(f"{path}: expected one joint tree with a single root, got roots "
                               f"{[n for n, p in zip(names, parents, strict=True) if p < 0]}.")
    return Skeleton(names, parents, np.asarray(offsets, dtype=np.float64))


def read_deepmimic(path: str | Path, skeleton: Skeleton) -> Motion:
    """A DeepMimic ``humanoid3d_*.txt`` clip (JSON with ``"Frames"``) on the humanoid ``skeleton``.

    Frame k is shown at the sum of the durations of the frames before it. Knees and elbows turn about their
    z axis; joints absent from the frame (the wrists) keep the identity rotation."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} not found: expected a DeepMimic motion clip (pybullet_data/data/motions).")
    try:
        frames = json.loads(path.read_text())["Frames"]
    except (ValueError, KeyError, TypeError) as err:
        frames, reason = None, f"{type(err).__name__}: {err}"
    if not isinstance(frames, list):
        raise CorruptDataError(f"{path}: not a DeepMimic clip, expected JSON with a 'Frames' list of number lists "
                               f"({reason if frames is None else 'Frames is not a list'}).")
    if len(frames) < 2:
        raise CorruptDataError(f"{path}: {len(frames)} frame(s); a clip needs two or more.")
    bad = next((i for i, f in enumerate(frames) if not isinstance(f, list) or len(f) != DEEPMIMIC_FRAME_SIZE
                or not all(isinstance(v, (int, float)) for v in f)), None)
    if bad is not None:
        raise CorruptDataError(f"{path}: frame {bad} should hold {DEEPMIMIC_FRAME_SIZE} numbers (duration, root "
                               "position, root rotation, 12 joint rotations).")
    data = np.asarray(frames, dtype=np.float64)
    rotations = np.zeros((len(data), len(skeleton.names), 4))
    rotations[..., 0] = 1
    for name, (start, size) in DEEPMIMIC_LAYOUT.items():
        j = skeleton.index(name)
        if size == 4:
            norms = np.linalg.norm(data[:, start:start + 4], axis=1, keepdims=True)
            if (norms < 1e-8).any():
                raise CorruptDataError(f"{path}: frame {int(np.argmin(norms))} has a zero quaternion for '{name}'.")
            rotations[:, j] = data[:, start:start + 4] / norms
        else:
            half = data[:, start] / 2
            rotations[:, j, 0], rotations[:, j, 3] = np.cos(half), np.sin(half)
    times = np.concatenate([[0.0], np.cumsum(data[:-1, 0])])
    return Motion(path.stem.removeprefix("humanoid3d_"), skeleton, data[:, 1:4], rotations, times)


def to_common(motion: Motion, names: Mapping[str, Sequence[str] | str], fps: float, leg: float | None,
              source: str) -> np.ndarray:
    """``motion`` resampled to ``fps``, through FK, as positions (T, 15, 3) of :data:`JOINTS`; scaled so that
    the rest-pose leg length is ``leg`` (None: keep the file's units)."""
    indices = common_indices(motion.skeleton, names, source)
    motion = resample(motion, fps)
    positions = forward_kinematics(motion.skeleton, motion.root_position, motion.rotations)[:, indices]
    if leg is not None:
        positions = positions * (leg / leg_length(motion.skeleton, indices))
    return positions
