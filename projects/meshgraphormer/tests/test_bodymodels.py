"""The body-model adapter: a synthetic SMPL-layout file through smplx, the joint-regressor fit, the anny hand."""

import math
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from projects.meshgraphormer.bodymodels import build_body_model, fit_joint_regressor, smpl_body
from projects.meshgraphormer.tests.meshes import uv_sphere
from shared.errors import CorruptDataError, DatasetNotFoundError, UserFacingError


def write_fake_smpl(path, seed: int = 0):
    """An SMPL-layout pickle (24 joints, 10 betas, 207 pose blend shapes) on a 98-vertex sphere."""
    rng = np.random.default_rng(seed)
    verts, faces = uv_sphere(8, 12)
    n = len(verts)
    parents = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
    weights = rng.uniform(size=(n, 24))
    regressor = rng.uniform(size=(24, n)) * (rng.uniform(size=(24, n)) < 0.1)
    regressor[:, 0] += 1e-3
    data = {"v_template": verts, "f": faces.astype(np.uint32),
            "shapedirs": rng.normal(0, 0.01, size=(n, 3, 10)), "posedirs": rng.normal(0, 0.001, size=(n, 3, 207)),
            "J_regressor": sp.csc_matrix(regressor / regressor.sum(1, keepdims=True)),
            "weights": weights / weights.sum(1, keepdims=True),
            "kintree_table": np.array([[4294967295] + parents[1:], list(range(24))], dtype=np.int64)}
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return verts, faces


def test_smpl_adapter_on_a_synthetic_smpl_file(tmp_path):
    verts, _ = write_fake_smpl(tmp_path / "SMPL_NEUTRAL.pkl")
    body = smpl_body(tmp_path / "SMPL_NEUTRAL.pkl", cache_dir=tmp_path)
    n = len(verts)
    assert body.hierarchy.sizes == [n, math.ceil(n / 4), math.ceil(math.ceil(n / 4) / 4)]
    assert body.joint_regressor.shape == (24, n) and body.root == [0]
    joints, coarse = body.template_tokens()
    assert joints.shape == (24, 3) and coarse.shape == (body.hierarchy.sizes[-1], 3)
    torch.testing.assert_close(joints[0], torch.zeros(3), atol=1e-6, rtol=0)  # centred on the root
    # the template is the T-pose turned upright (pi about x: y and z change sign), centred on the root joint
    expected = torch.as_tensor(verts, dtype=torch.float32) * torch.tensor([1.0, -1.0, -1.0])
    torch.testing.assert_close(body.template - body.template.mean(0), expected - expected.mean(0), atol=1e-5, rtol=0)
    pose, betas = torch.zeros(2, 72), torch.zeros(2, 10)
    pose[1, 5] = 0.5
    mesh = body.mesh(pose, betas)
    assert mesh.shape == (2, n, 3) and not torch.allclose(mesh[0], mesh[1])
    assert (tmp_path / f"smpl-hierarchy-{n}.npz").is_file()


def test_h36m_regressor_gives_14_joints_centred_on_the_hips(tmp_path):
    verts, _ = write_fake_smpl(tmp_path / "smpl.pkl")
    reg = np.random.default_rng(1).uniform(size=(17, len(verts)))
    np.save(tmp_path / "J_regressor_h36m_correct.npy", reg / reg.sum(1, keepdims=True))
    body = smpl_body(tmp_path / "smpl.pkl", tmp_path / "J_regressor_h36m_correct.npy", cache_dir=tmp_path)
    assert body.num_joints == 14 and body.root == [2, 3]
    joints, _ = body.template_tokens()
    torch.testing.assert_close(joints[[2, 3]].mean(0), torch.zeros(3), atol=1e-6, rtol=0)


def test_missing_and_malformed_model_files_are_reported(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="nope.pkl.*smpl.is.tue.mpg.de"):
        smpl_body(tmp_path / "nope.pkl")
    (tmp_path / "bad.pkl").write_bytes(b"not a pickle")
    with pytest.raises(CorruptDataError, match="bad.pkl: not an SMPL model file"):
        smpl_body(tmp_path / "bad.pkl")
    with pytest.raises(UserFacingError, match="needs model.body_model_path"):
        build_body_model("mano")
    with pytest.raises(UserFacingError, match="anny-hand, smpl or mano"):
        build_body_model("star")


def test_joint_regressor_fit_recovers_a_known_linear_joint():
    rng = np.random.default_rng(0)
    rest = rng.normal(size=(40, 3))
    true = np.zeros(40)
    near = np.argsort(np.linalg.norm(rest - rest[5], axis=1))[:6]
    true[near] = rng.dirichlet(np.ones(6))
    posed = rest[None] + rng.normal(0, 0.3, size=(200, 40, 3))
    joints = np.einsum("v,nvc->nc", true, posed)[:, None]
    reg = fit_joint_regressor(posed, joints, rest, (true @ rest)[None], tips={}, neighbours=12, ridge=1e-9)
    np.testing.assert_allclose(reg[0], true, atol=1e-6)
    assert reg[0].sum() == pytest.approx(1.0)
    tip = fit_joint_regressor(posed, joints, rest, rest[:1], tips={0: 7})
    assert tip[0, 7] == 1 and tip.sum() == 1


def test_anny_hand_model():
    body = build_body_model("anny-hand")  # the default cache, shared with the other tests
    assert body.hierarchy.sizes == [1609, 403, 101] and body.num_joints == 21 and body.root == [0]
    np.testing.assert_allclose(body.joint_regressor.sum(1).numpy(), 1.0, atol=1e-4)
    joints, coarse = body.template_tokens()
    assert coarse.shape == (101, 3) and joints[0].abs().max() < 1e-6
    span = (body.template.max(0).values - body.template.min(0).values).max()
    assert 0.1 < span < 0.3, "a hand is 10-30 cm long (metres)"
