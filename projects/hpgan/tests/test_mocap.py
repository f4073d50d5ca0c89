"""Forward kinematics against hand-computed positions, rotations against their formulas, and the BVH / DeepMimic
readers on fixture, real and malformed files."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from projects.hpgan import mocap
from shared.errors import CorruptDataError

FIXTURES = Path(__file__).parent / "fixtures"
CMU = Path("/usr/share/assimp/models/BVH/01_01.bvh")


def test_fk_reproduces_hand_computed_positions_of_the_fixture_bvh():
    motion = mocap.read_bvh(FIXTURES / "two_bones.bvh")
    assert motion.skeleton.names == ["Hips", "Spine", "Spine_end", "Leg", "Leg_end"]
    assert motion.skeleton.parents == [-1, 0, 1, 0, 3]
    np.testing.assert_allclose(motion.times, [0.0, 0.5])
    positions = mocap.forward_kinematics(motion.skeleton, motion.root_position, motion.rotations)
    # frame 0: no rotation, root at (1, 2, 3): every joint is the root plus its summed offsets
    np.testing.assert_allclose(positions[0], [[1, 2, 3], [1, 12, 3], [1, 17, 3], [3, 2, 3], [3, -6, 3]], atol=1e-9)
    # frame 1: root turned 90° about z ((x, y, z) → (−y, x, z)), the spine a further 90° about its x axis
    np.testing.assert_allclose(positions[1], [[0, 0, 0], [-10, 0, 0], [-10, 0, 5], [0, 2, 0], [8, 2, 0]], atol=1e-9)


def test_quaternions_round_trip_and_match_axis_rotations():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(500, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.sign(q[:, :1])
    np.testing.assert_allclose(mocap.matrix_to_quat(mocap.quat_to_matrix(q)), q, atol=1e-12)
    half = math.radians(30) / 2  # 30° about y: (cos 15°, 0, sin 15°, 0)
    np.testing.assert_allclose(mocap.matrix_to_quat(mocap.axis_rotation("Y", np.array(30.0))),
                               [math.cos(half), 0, math.sin(half), 0], atol=1e-12)


def test_slerp_halfway_is_half_the_angle():
    q0 = np.array([1.0, 0, 0, 0])
    q1 = mocap.matrix_to_quat(mocap.axis_rotation("Z", np.array(120.0)))
    mid = mocap.slerp(q0, q1, np.array(0.5))
    np.testing.assert_allclose(mocap.quat_to_matrix(mid), mocap.axis_rotation("Z", np.array(60.0)), atol=1e-12)


def _random_motion(frames: int = 7, joints: int = 6, seed: int = 0) -> mocap.Motion:
    rng = np.random.default_rng(seed)
    skeleton = mocap.Skeleton([f"j{i}" for i in range(joints)], [-1, 0, 1, 0, 3, 4], rng.normal(size=(joints, 3)))
    q = rng.normal(size=(frames, joints, 4))
    return mocap.Motion("random", skeleton, rng.normal(size=(frames, 3)), q / np.linalg.norm(q, axis=-1, keepdims=True),
                        np.arange(frames) / 10.0)


def test_fk_and_resampling_keep_every_bone_length():
    motion = _random_motion()
    lengths = np.linalg.norm(motion.skeleton.offsets[1:], axis=1)
    for m in (motion, mocap.resample(motion, 23.0)):
        positions = mocap.forward_kinematics(m.skeleton, m.root_position, m.rotations)
        bones = np.linalg.norm(positions[:, 1:] - positions[:, m.skeleton.parents[1:]], axis=-1)
        np.testing.assert_allclose(bones, np.broadcast_to(lengths, bones.shape), rtol=1e-10)


def test_resample_keeps_source_frames_that_fall_on_the_new_grid():
    motion = _random_motion(frames=9)  # 10 fps
    half = mocap.resample(motion, 5.0)
    np.testing.assert_allclose(half.times, [0.0, 0.2, 0.4, 0.6, 0.8])
    np.testing.assert_allclose(half.rotations, motion.rotations[::2] * np.sign(motion.rotations[::2, :, :1]) *
                               np.sign(half.rotations[..., :1]), atol=1e-12)


@pytest.mark.skipif(not CMU.is_file(), reason="assimp-testmodels is not installed (make data)")
def test_cmu_clip_bone_lengths_stay_constant_on_the_common_joints():
    positions = mocap.to_common(mocap.read_bvh(CMU), mocap.BVH_NAMES, 25.0, None, str(CMU))
    bones = np.linalg.norm(positions[:, 1:] - positions[:, list(mocap.PARENTS[1:])], axis=-1)
    # common joints that are not direct children in the file span fixed chains of bones, so lengths stay
    # constant only where the chain has no joint in between that turns: the limbs do not.
    limbs = [mocap.JOINTS.index(j) - 1 for j in ("r_knee", "r_ankle", "l_knee", "l_ankle", "r_elbow", "r_wrist")]
    np.testing.assert_allclose(bones[:, limbs].std(axis=0), 0, atol=1e-9)


def test_deepmimic_clip_reads_on_the_pybullet_humanoid():
    pybullet_data = pytest.importorskip("pybullet_data")
    data = Path(pybullet_data.getDataPath())
    skeleton = mocap.read_urdf_skeleton(data / "humanoid" / "humanoid.urdf")
    assert skeleton.names[:3] == ["root", "chest", "neck"] and len(skeleton.names) == 15
    np.testing.assert_allclose(skeleton.offsets[skeleton.index("chest")], [0, 0.944604 * 0.25, 0])
    walk = mocap.read_deepmimic(data / "data" / "motions" / "humanoid3d_walk.txt", skeleton)
    assert walk.rotations.shape == (39, 15, 4) and walk.times[1] == pytest.approx(0.033332)
    legs = mocap.leg_length(skeleton, mocap.common_indices(skeleton, mocap.DEEPMIMIC_NAMES, "x"))
    assert legs == pytest.approx((1.686184 + 1.639480) * 0.25)


def _bvh_lines() -> list[str]:
    return (FIXTURES / "two_bones.bvh").read_text().splitlines()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda lines: lines[:-1], "only 1 frame lines"),
    (lambda lines: [*lines[:-1], "0 0 0 90 0 0"], "6 values where the channels need 12"),
    (lambda lines: [*lines[:-1], "0 0 0 90 0 0 0 abc 0 0 0 0"], "not a number"),
    (lambda lines: [line.replace("OFFSET 0.0 10.0 0.0", "OFFSET 0.0 ten 0.0") for line in lines], "OFFSET needs three"),
    (lambda lines: [line for line in lines if line.strip() != "}"][:-1], "braces"),
    (lambda lines: [line.replace("Zrotation Xrotation Yrotation", "Zrotation Qrotation Yrotation") for line in lines],
     "unknown channel 'Qrotation'"),
    (lambda lines: [line.replace("Frames: 2", "Frames: 0") for line in lines], "must both be positive"),
    (lambda lines: [line.replace("Frame Time: 0.5", "Frame Time: 0") for line in lines], "must both be positive"),
])
def test_malformed_bvh_names_the_file_and_line(tmp_path: Path, edit, message: str):
    path = tmp_path / "bad.bvh"
    path.write_text("\n".join(edit(_bvh_lines())) + "\n")
    with pytest.raises(CorruptDataError, match=message) as err:
        mocap.read_bvh(path)
    assert str(path) in str(err.value) and "line" in str(err.value)


def test_a_bvh_without_the_common_joints_says_which_and_how_to_map(tmp_path: Path):
    motion = mocap.read_bvh(FIXTURES / "two_bones.bvh")
    with pytest.raises(CorruptDataError, match="no joint for 'neck'.*joint_map"):
        mocap.to_common(motion, mocap.BVH_NAMES, 10.0, None, "two_bones.bvh")


def test_malformed_deepmimic_clip_names_the_frame(tmp_path: Path):
    pybullet_data = pytest.importorskip("pybullet_data")
    skeleton = mocap.read_urdf_skeleton(Path(pybullet_data.getDataPath()) / "humanoid" / "humanoid.urdf")
    path = tmp_path / "humanoid3d_bad.txt"
    path.write_text(json.dumps({"Loop": "none", "Frames": [[0.1] + [0.0] * 43, [0.1] * 40]}))
    with pytest.raises(CorruptDataError, match="frame 1 should hold 44 numbers"):
        mocap.read_deepmimic(path, skeleton)
    path.write_text("{not json")
    with pytest.raises(CorruptDataError, match="not a DeepMimic clip"):
        mocap.read_deepmimic(path, skeleton)
    path.write_text(json.dumps({"Frames": [[0.1] + [0.0] * 43]}))
    with pytest.raises(CorruptDataError, match="1 frame"):
        mocap.read_deepmimic(path, skeleton)
    path.write_text(json.dumps({"Frames": [[0.1] + [0.0] * 43] * 2}))  # all quaternions zero
    with pytest.raises(CorruptDataError, match="frame 0 has a zero quaternion for 'root'"):
        mocap.read_deepmimic(path, skeleton)


def test_malformed_urdf_names_the_joint(tmp_path: Path):
    path = tmp_path / "robot.urdf"
    path.write_text('<robot><joint name="hip"><parent link="a"/><origin xyz="0 1"/></joint></robot>')
    with pytest.raises(CorruptDataError, match="joint 'hip' needs"):
        mocap.read_urdf_skeleton(path)
