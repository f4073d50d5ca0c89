"""The dataset readers on fixture files in the released layouts (Human3.6M exponential maps, NTU .skeleton),
malformed files, the embedded mocap, the segment split and the augmentations."""

from pathlib import Path

import numpy as np
import pytest
import torch

from projects.hpgan import data
from projects.hpgan.mocap import JOINTS
from shared.errors import CorruptDataError, DatasetNotFoundError

FIXTURES = Path(__file__).parent / "fixtures"
H36M = FIXTURES / "h3.6m" / "dataset"
NTU = FIXTURES / "nturgbd_skeletons"
SMALL = dict(n_obs=2, n_pred=3, batch_size=2, test_stride=1)


def _martinez_fkl(expmap: np.ndarray) -> np.ndarray:
    """Martinez et al.'s row-vector recursion (xyz_i = o_i · R_parent + xyz_parent, R_i = r_i · R_parent) for one
    frame, without their angle-added-to-offset term, as an independent check of our column-vector form."""
    rotations = data.expmap_to_matrix(expmap.reshape(33, 3)[1:])
    rotations[0] = np.eye(3)
    world, xyz = [None] * 32, np.zeros((32, 3))
    for i, parent in enumerate(data.H36M_PARENTS):
        offset = np.asarray(data.H36M_OFFSETS[i], float)
        if parent < 0:
            world[i], xyz[i] = rotations[i], offset
        else:
            xyz[i] = offset @ world[parent] + xyz[parent]
            world[i] = rotations[i] @ world[parent]
    return xyz


def test_h36m_rest_pose_is_the_summed_offsets_and_a_turn_moves_the_children():
    rest = data.h36m_positions(np.zeros((1, 99)))[0]
    np.testing.assert_allclose(rest[3], [-132.948591, -442.894612 - 454.206447, 0])  # right ankle
    np.testing.assert_allclose(rest[14], [0, 0.1 + 233.383263 + 257.077681 + 121.134938, 0])  # neck/nose
    turned = np.zeros((1, 99))
    turned[0, 3 + 3 * 1: 6 + 3 * 1] = [0, 0, np.pi / 2]  # right hip: exponential map of 90° about z
    positions = data.h36m_positions(turned)[0]
    np.testing.assert_allclose(positions[1], rest[1])  # the hip itself stays
    # row vectors: (0, -442.9, 0) · Rz(90°) = (-442.9, 0, 0): the thigh points to -x
    np.testing.assert_allclose(positions[2] - positions[1], [-442.894612, 0, 0], atol=1e-6)


def test_h36m_forward_kinematics_matches_the_row_vector_recursion():
    rng = np.random.default_rng(0)
    frames = rng.normal(0, 0.5, (3, 99))
    ours = data.h36m_positions(frames)
    for t in range(3):
        np.testing.assert_allclose(ours[t], _martinez_fkl(frames[t]), atol=1e-6)


def test_h36m_module_reads_the_release_layout():
    dm = data.H36MDataModule(data_dir=str(H36M), actions=("walking",), train_subjects=(1,), test_subjects=(5,),
                             test_protocol="all", **SMALL)
    dm.setup("fit")
    # 24 frames a file, every 2nd → 12; windows of 5 → 8 per file, 2 files a subject
    assert len(dm.train_set) == 16 and len(dm.val_set) == 16 and dm.classes == ["walking"]
    item = dm.val_set[0]
    assert item["poses"].shape == (5, 15, 3) and item["label"] == 0
    assert torch.equal(item["poses"][:, 0], torch.zeros(5, 3))  # pelvis-centred


def test_martinez_test_windows():
    starts = data.martinez_test_starts(400, 300)
    assert [sub for sub, _ in starts] == [1, 2] * 4
    assert all(16 <= i < (400 if sub == 1 else 300) - 150 for sub, i in starts)
    assert starts == data.martinez_test_starts(400, 300)  # a fresh generator with the fixed seed each time
    positions = np.arange(400, dtype=float)[:, None, None] * np.ones((1, 15, 3))
    clips = [data.Clip("S5/walking_1", "walking", positions), data.Clip("S5/walking_2", "walking", positions[:300])]
    windows = data.martinez_test_windows(clips, n_obs=10, n_pred=20)
    assert len(windows) == 8
    for window, (sub, i) in zip(windows, starts, strict=True):
        assert window.name.startswith(f"S5/walking_{sub}")
        assert window.positions[9, 0, 0] == i + 49 and len(window.positions) == 30  # last observed frame: i + 49
    with pytest.raises(CorruptDataError, match="167 frames"):
        data.martinez_test_windows([clips[0], data.Clip("S5/walking_2", "walking", positions[:100])], 10, 20)


def test_h36m_malformed_and_missing_files(tmp_path: Path):
    (tmp_path / "S1").mkdir()
    (tmp_path / "S1" / "walking_1.txt").write_text("0," * 98 + "0\n" + "0,0,0\n")
    with pytest.raises(CorruptDataError, match=r"walking_1.txt, line 2: 3 values, expected 99"):
        data.h36m_clips(tmp_path, [1], ["walking"])
    (tmp_path / "S1" / "walking_1.txt").write_text("0," * 98 + "x\n")
    with pytest.raises(CorruptDataError, match="line 1: a value that is not a number"):
        data.h36m_clips(tmp_path, [1], ["walking"])
    with pytest.raises(DatasetNotFoundError, match="h3.6m.zip"):
        data.h36m_clips(tmp_path / "nowhere", [1], ["walking"])
    with pytest.raises(DatasetNotFoundError, match="walking_1.txt not found"):
        data.h36m_clips(tmp_path, [7], ["walking"])


def test_ntu_reader_keeps_the_first_body_in_millimetres():
    two_bodies = data.read_ntu_skeleton(NTU / "S001C002P003R001A001.skeleton")
    assert two_bodies.shape == (12, 25, 3)
    one_body = data.read_ntu_skeleton(NTU / "S001C001P001R001A001.skeleton")
    assert one_body[0, 0, 2] == pytest.approx(3.0991311)  # z of the first joint, as written in the file
    clips = data.ntu_clips(NTU, actions=[1], min_frames=10)
    assert [c.name for c in clips] == ["S001C001P001R001A001", "S001C002P003R001A001"]
    assert clips[0].label == "A001" and clips[0].positions.shape == (12, 15, 3)


def test_ntu_module_splits_by_performer():
    dm = data.NTUDataModule(data_dir=str(NTU), actions=(1, 8), train_performers=(1, 2), min_frames=10, **SMALL)
    dm.setup("fit")
    assert dm.classes == ["A001", "A008"]
    assert len(dm.train_set) == 2 * 8 and len(dm.val_set) == 2 * 8  # 12 frames → 8 windows of 5, two clips each
    assert sorted({dm.val_set.labels[c] for c, _ in dm.val_set.index}) == [0, 1]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda lines: lines[:40], "ends at line 40"),
    (lambda lines: [lines[0], lines[1], lines[2], "20", *lines[4:]], "20 joints"),
    (lambda lines: [*lines[:5], "0.1 0.2", *lines[6:]], "line 6: a joint line needs 12 numbers"),
    (lambda lines: ["twelve", *lines[1:]], "line 1: expected the frame count"),
])
def test_malformed_ntu_files_name_the_line(tmp_path: Path, edit, message: str):
    lines = (NTU / "S001C001P001R001A001.skeleton").read_text().splitlines()
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_text("\n".join(edit(lines)) + "\n")
    with pytest.raises(CorruptDataError, match=message):
        data.read_ntu_skeleton(path)


def test_ntu_file_without_bodies_and_bad_names(tmp_path: Path):
    (tmp_path / "S001C001P001R001A001.skeleton").write_text("2\n0\n0\n")
    with pytest.raises(CorruptDataError, match="no frame holds a body"):
        data.read_ntu_skeleton(tmp_path / "S001C001P001R001A001.skeleton")
    (tmp_path / "S001C001P001R001A001.skeleton").unlink()
    (tmp_path / "clip.skeleton").write_text("0\n")
    with pytest.raises(CorruptDataError, match="SsssCcccPpppRrrrAaaa"):
        data.ntu_clips(tmp_path)


def test_segment_split():
    assert data.split_segments(59, 30, 0.2) == (slice(0, 59), None)  # shorter than two windows: training only
    assert data.split_segments(60, 30, 0.2) == (slice(0, 30), slice(30, 60))
    assert data.split_segments(500, 30, 0.2) == (slice(0, 400), slice(400, 500))


def test_statistics_of_turned_frames():
    frames = torch.zeros(4, 15, 3)
    frames[:, 3] = torch.tensor([-100.0, -20.0, 0.0])  # a hip that never moves sideways in the files
    frames[:, 4] = torch.tensor([[30.0, -400, 40], [-30, -420, -40], [30, -400, -40], [-30, -420, 40]])
    mean, std = data.frame_statistics(frames, turned=False)
    assert std[3, 0] == 0 and mean[3, 0] == -100
    mean, std = data.frame_statistics(frames, turned=True)
    # after a uniform turn about y: x and z have mean 0 and variance E[x² + z²] / 2; y is untouched
    assert mean[3, 0] == mean[3, 2] == 0 and std[3, 0] == std[3, 2] == pytest.approx(100 / 2**0.5)
    assert std[4, 0] == pytest.approx((30**2 + 40**2) ** 0.5 / 2**0.5) and mean[4, 1] == -410
    turned = data.rotate_y(frames, 1.1)
    assert ((turned[:, 3, [0, 2]] - mean[3, [0, 2]]) / std[3, [0, 2]]).abs().max() <= 2**0.5 + 1e-5


def test_mirror_and_turn():
    poses = torch.randn(4, 15, 3)
    flipped = data.mirror(poses)
    assert torch.equal(data.mirror(flipped), poses)
    right, left = JOINTS.index("r_wrist"), JOINTS.index("l_wrist")
    assert torch.equal(flipped[:, left, 1:], poses[:, right, 1:])
    assert torch.equal(flipped[:, left, 0], -poses[:, right, 0])
    turned = data.rotate_y(poses, 0.7)
    torch.testing.assert_close(turned.norm(dim=-1), poses.norm(dim=-1))
    torch.testing.assert_close(turned[..., 1], poses[..., 1])


EMBEDDED = pytest.mark.skipif(not Path(data.DEFAULT_BVH_DIR).is_dir(), reason="make data installs assimp-testmodels")


@EMBEDDED
def test_embedded_mocap_windows_and_split():
    pytest.importorskip("pybullet_data")
    dm = data.MocapDataModule(batch_size=4)
    dm.setup("fit")
    assert len(dm.clip_names) == 18 and "deepmimic/backflip" in dm.clip_names and "bvh/01_01" in dm.clip_names
    assert {"cartwheel", "spin", "Boxing_Toes"} <= set(dm.classes)
    assert len(dm.classes) == 9 and len(dm.val_set) == 81  # the numbers the README gives
    # each clip's test windows come from its last fifth (at least one window), after its training windows
    clips = data.embedded_clips(25.0)
    tested = [c for c in clips if data.split_segments(len(c.positions), 30, 0.2)[1] is not None]
    assert len(dm.val_set.segments) == len(tested)
    for clip, segment in zip(tested, dm.val_set.segments, strict=True):
        train, test = data.split_segments(len(clip.positions), 30, 0.2)
        assert train.stop <= test.start and len(segment) == test.stop - test.start >= 30
        np.testing.assert_allclose(segment.numpy(), clip.positions[test], atol=1e-3)
    item = dm.train_set[0]
    assert item["poses"].shape == (30, 15, 3)
    # a standing human: hip-to-ankle about the DeepMimic leg, in millimetres
    walk = next(c for c in clips if c.name == "deepmimic/walk").positions
    leg = np.linalg.norm(walk[:, 3] - walk[:, 4], axis=1) + np.linalg.norm(walk[:, 4] - walk[:, 5], axis=1)
    np.testing.assert_allclose(leg, data.LEG_MM, rtol=1e-6)


def test_missing_bvh_folder_says_how_to_get_it(tmp_path: Path):
    pytest.importorskip("pybullet_data")
    with pytest.raises(DatasetNotFoundError, match="apt-get install assimp-testmodels"):
        data.embedded_clips(25.0, None, str(tmp_path))
