"""Loaders: MeshTransformer TSV fixtures (good, composite, malformed) and the embedded anny hands."""

from pathlib import Path

import numpy as np
import pytest
import torch

from projects.meshgraphormer.data import MeshDataModule, TsvMeshSet, denormalise
from projects.meshgraphormer.nets import orthographic_projection
from projects.meshgraphormer.synthetic import HandSetSpec, load_or_generate
from projects.meshgraphormer.tsv import MeshTsvSplit, TsvFile
from shared.errors import CorruptDataError, DatasetNotFoundError, UserFacingError

FIXTURES = Path(__file__).parent / "fixtures"


def dot_position(image: torch.Tensor) -> np.ndarray:
    """Centre (x, y) of the brightest blob of a normalised image."""
    gray = denormalise(image).astype(float).mean(-1)
    ys, xs = np.nonzero(gray > gray.max() * 0.8)
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize(("yaml_file", "kind", "joints"), [("freihand/train.yaml", "hand", 21),
                                                            ("human3.6m/train.yaml", "body", 14)])
def test_tsv_samples_have_the_documented_shapes(yaml_file, kind, joints):
    ds = TsvMeshSet(FIXTURES / yaml_file, kind, image_size=32)
    s = ds[0]
    assert len(ds) == 6 and s["image"].shape == (3, 32, 32)
    assert s["joints"].shape == (joints, 3) and s["joints_2d"].shape == (joints, 2)
    assert s["pose"].shape == ((48,) if kind == "hand" else (72,)) and s["betas"].shape == (10,)
    assert s["has_mesh"] == 1 and s["joints_2d"].abs().max() <= 1.2


@pytest.mark.parametrize("train", [False, True])
def test_the_crop_and_the_2d_label_agree(train):
    ds = TsvMeshSet(FIXTURES / "freihand" / "train.yaml", "hand", image_size=96, train=train, seed=3)
    for i in range(len(ds)):
        s = ds[i]
        expected = (s["joints_2d"][0].numpy() + 1) * 96 / 2
        assert np.linalg.norm(dot_position(s["image"]) - expected) < 4.0, i


def test_rotation_turns_2d_and_3d_joints_alike():
    ds = TsvMeshSet(FIXTURES / "freihand" / "train.yaml", "hand", image_size=64, train=True, seed=0)
    plain = TsvMeshSet(FIXTURES / "freihand" / "train.yaml", "hand", image_size=64)
    turned = 0
    for i in range(len(ds)):
        a, b = ds[i], plain[i]
        ra = torch.atan2(a["joints"][5, 1], a["joints"][5, 0]) - torch.atan2(b["joints"][5, 1], b["joints"][5, 0])
        d2a, d2b = a["joints_2d"][5] - a["joints_2d"][0], b["joints_2d"][5] - b["joints_2d"][0]
        r2 = torch.atan2(d2a[1], d2a[0]) - torch.atan2(d2b[1], d2b[0])
        assert torch.cos(ra - r2) > 0.999, i  # the same in-plane angle
        turned += bool(torch.cos(ra) < 0.999)
    assert turned > 0, "some training samples were rotated"


def test_composite_split_follows_its_linelist():
    split = MeshTsvSplit(FIXTURES / "mixed" / "train.yaml")
    assert split.rows == [(0, 1), (1, 0), (0, 3), (1, 2)]
    ds = TsvMeshSet(FIXTURES / "mixed" / "train.yaml", "body", image_size=32)
    direct = TsvMeshSet(FIXTURES / "coco_smpl" / "train.yaml", "body", image_size=32)
    torch.testing.assert_close(ds[1]["joints"], direct[0]["joints"])


def test_rotation_of_the_global_orientation():
    from scipy.spatial.transform import Rotation

    from projects.meshgraphormer.data import _axis_angle_rotate, _rotz

    aa = np.array([0.3, -0.2, 0.9], dtype=np.float32)
    got = Rotation.from_rotvec(_axis_angle_rotate(aa, _rotz(30.0))).as_matrix()
    np.testing.assert_allclose(got, _rotz(30.0) @ Rotation.from_rotvec(aa).as_matrix(), atol=1e-5)


def test_split_level_errors(tmp_path):
    src = FIXTURES / "freihand"
    (tmp_path / "train.img.tsv").write_bytes((src / "train.img.tsv").read_bytes())
    (tmp_path / "train.label.tsv").write_text("".join((src / "train.label.tsv").read_text().splitlines(True)[:4]))
    (tmp_path / "s.yaml").write_text("img: train.img.tsv\nlabel: train.label.tsv\n")
    with pytest.raises(CorruptDataError, match="train.label.tsv has 4 rows but .*train.img.tsv has 6"):
        MeshTsvSplit(tmp_path / "s.yaml")
    (tmp_path / "c.yaml").write_text("composite: true\nimg: list.txt\nlabel: [train.label.tsv]\n")
    with pytest.raises(CorruptDataError, match="c.yaml: 'img' of a composite split must be a YAML list"):
        MeshTsvSplit(tmp_path / "c.yaml")
    (tmp_path / "train.img.lineidx").write_text("0\n99999999\n")
    with pytest.raises(CorruptDataError, match="train.img.lineidx: its offsets do not fit"):
        TsvFile(tmp_path / "train.img.tsv")


def test_tsv_offsets_without_lineidx_match_the_lineidx(tmp_path):
    src = FIXTURES / "freihand" / "test.label.tsv"
    copy = tmp_path / "test.label.tsv"
    copy.write_bytes(src.read_bytes())
    assert TsvFile(copy).offsets == TsvFile(src).offsets
    assert TsvFile(copy).row(2) == TsvFile(src).row(2)


@pytest.mark.parametrize(("name", "message"), [
    ("bad_image", r"bad_image.img.tsv, line 2: the image column is not a base64-encoded image"),
    ("bad_json", r"bad_json.label.tsv, line 2: the label column is not a JSON list"),
    ("no_center", r"no_center.label.tsv, line 2: the label lacks center"),
    ("key_mismatch", r"key_mismatch.label.tsv, line 2: key 'k9' does not match the image key 'k1'"),
])
def test_malformed_rows_name_file_and_line(name, message):
    ds = TsvMeshSet(FIXTURES / "malformed" / f"{name}.yaml", "hand", image_size=32)
    ds[0]  # the first row is good
    with pytest.raises(CorruptDataError, match=message):
        ds[1]


def test_malformed_shapes_and_splits_are_reported():
    ds = TsvMeshSet(FIXTURES / "malformed" / "short_joints.yaml", "hand", image_size=32)
    with pytest.raises(CorruptDataError, match=r"'3d_joints' has shape \(20, 4\), expected \(21, 4\)"):
        ds[1]
    with pytest.raises(CorruptDataError, match="linelist_range.linelist.tsv, line 2: row 0/7 is beyond"):
        MeshTsvSplit(FIXTURES / "malformed" / "linelist_range.yaml")
    with pytest.raises(CorruptDataError, match="no_label.yaml: missing key 'label'"):
        MeshTsvSplit(FIXTURES / "malformed" / "no_label.yaml")
    with pytest.raises(DatasetNotFoundError, match="nowhere.yaml: no such split file"):
        MeshTsvSplit(FIXTURES / "nowhere.yaml")
    with pytest.raises(UserFacingError, match="needs train_yaml and val_yaml"):
        MeshDataModule(source="tsv")
    with pytest.raises(UserFacingError, match="'body' or 'hand'"):
        TsvMeshSet(FIXTURES / "freihand" / "train.yaml", "paw")


@pytest.fixture(scope="module")
def hands(tmp_path_factory):
    return load_or_generate(HandSetSpec(size=12, image_size=48, seed=5), tmp_path_factory.mktemp("hands"),
                            verbose=False)


def test_generated_hands_have_consistent_labels(hands):
    assert hands["images"].shape == (12, 48, 48, 3) and hands["images"].dtype == np.uint8
    assert hands["vertices"].shape == (12, 1609, 3) and hands["joints"].shape == (12, 21, 3)
    np.testing.assert_allclose(hands["joints"][:, 0], 0.0, atol=1e-6)  # wrist-centred
    cam = torch.as_tensor(hands["camera"])
    proj = orthographic_projection(torch.as_tensor(hands["joints"]), cam)
    torch.testing.assert_close(proj, torch.as_tensor(hands["joints_2d"]), atol=1e-5, rtol=0)
    verts_2d = orthographic_projection(torch.as_tensor(hands["vertices"]), cam)
    assert verts_2d.abs().max() <= 1.0, "the whole hand is inside the image"
    bones = np.linalg.norm(hands["joints"][:, 1:] - hands["joints"][:, :1], axis=-1)
    assert (bones.max(1) > 0.05).all() and (bones.max(1) < 0.25).all(), "hand-sized, in metres"


def test_generation_is_seeded_and_cached(hands, tmp_path):
    again = load_or_generate(HandSetSpec(size=12, image_size=48, seed=5), tmp_path, verbose=False)
    np.testing.assert_array_equal(again["images"], hands["images"])
    other = load_or_generate(HandSetSpec(size=12, image_size=48, seed=6), tmp_path, verbose=False)
    assert not np.array_equal(other["images"], hands["images"])
    assert len(list(tmp_path.glob("anny-hands-*.npz"))) == 2
    spec = HandSetSpec(size=12, image_size=48, seed=5)
    (tmp_path / f"anny-hands-{spec.digest()}.npz").write_bytes(b"truncated")
    with pytest.raises(CorruptDataError, match=f"anny-hands-{spec.digest()}.npz: unreadable.*delete it"):
        load_or_generate(spec, tmp_path, verbose=False)
    cached = tmp_path / f"anny-hands-{HandSetSpec(size=12, image_size=48, seed=6).digest()}.npz"
    cached.write_bytes(cached.read_bytes()[:cached.stat().st_size // 2])  # a copy that did not finish: BadZipFile
    with pytest.raises(CorruptDataError, match=f"{cached.name}: unreadable cached hand set.*delete it"):
        load_or_generate(HandSetSpec(size=12, image_size=48, seed=6), tmp_path, verbose=False)
