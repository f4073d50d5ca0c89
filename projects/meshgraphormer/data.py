"""Datasets and the LightningDataModule of Mesh Graphormer.

``MeshDataModule(source=...)``:

* ``anny-hands`` (default, embedded): the FreiHAND-style rendered hands of :mod:`projects.meshgraphormer.synthetic`,
  generated on first use and cached; samples carry the full ground-truth mesh;
* ``tsv``: MeshTransformer's TSV splits (:mod:`projects.meshgraphormer.tsv`) of Human3.6M / 3DPW / the mixed body
  set (``kind: body``, 24 joints in the labels, the 14 evaluated ones kept) or FreiHAND (``kind: hand``, 21
  joints); samples carry SMPL / MANO parameters, turned into meshes by the module's body model.

Every sample is a dict: ``image`` (3, S, S) normalised with ImageNet's mean and std; ``joints`` (J, 3) metres,
root-centred, and ``joints_conf`` (J,); ``joints_2d`` (J, 2) in [-1, 1] of the crop and ``joints_2d_conf``;
``has_3d``, ``has_mesh``; then ``vertices`` (V, 3) or ``pose`` / ``betas``.

Training augmentation as the official loaders: per-channel pixel noise x U(0.6, 1.4); on TSV data also a scale
jitter clip(N(1, 0.25), 0.75, 1.25) of the box and an in-plane rotation (body: N(0, 30) deg clipped to 60; hand:
N(0, 90) clipped to 180; 0 with probability 0.6), applied to image, 2D and 3D joints and the global orientation.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from projects.meshgraphormer.synthetic import HandSetSpec, load_or_generate
from projects.meshgraphormer.tsv import MeshTsvSplit, parse_label
from shared.errors import UserFacingError
from shared.sampling import SplitLoaders

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
J24_TO_J14 = list(range(12)) + [12, 18]
J24_PELVIS = 14


def normalise(image: np.ndarray) -> torch.Tensor:
    """uint8 / float [0, 255] (H, W, 3) -> (3, H, W) standardised with ImageNet's mean and std."""
    x = image.astype(np.float32) / 255.0
    return torch.from_numpy(((x - MEAN) / STD).transpose(2, 0, 1).copy())


def denormalise(image: torch.Tensor) -> np.ndarray:
    """The inverse of :func:`normalise`, as uint8 (H, W, 3)."""
    x = image.detach().cpu().numpy().transpose(1, 2, 0) * STD + MEAN
    return (x.clip(0, 1) * 255).round().astype(np.uint8)


def augmentation_seed() -> int:
    """A draw from torch's generator of this process: the main process's is reseeded every epoch
    (shared.cli.ReseedEveryEpoch, so resumed runs augment alike), a persistent worker's advances with every
    sample, so augmentations differ from epoch to epoch either way."""
    return int(torch.randint(2**31 - 1, ()))


def pixel_noise(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    return np.clip(image.astype(np.float32) * rng.uniform(0.6, 1.4, size=3), 0, 255)


class HandSet(Dataset):
    """Rows ``indices`` of a generated anny hand set (:func:`projects.meshgraphormer.synthetic.generate_hands`)."""

    def __init__(self, arrays: dict[str, np.ndarray], indices: np.ndarray, train: bool, seed: int = 0):
        self.arrays, self.indices, self.train, self.seed = arrays, indices, train, seed

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        k = int(self.indices[i])
        a = self.arrays
        image = a["images"][k]
        if self.train:
            image = pixel_noise(np.random.default_rng([self.seed, k, augmentation_seed()]), image)
        j = a["joints"].shape[1]
        return {"image": normalise(image), "joints": torch.from_numpy(a["joints"][k]), "joints_conf": torch.ones(j),
                "joints_2d": torch.from_numpy(a["joints_2d"][k]), "joints_2d_conf": torch.ones(j),
                "vertices": torch.from_numpy(a["vertices"][k]), "has_3d": torch.tensor(1.0),
                "has_mesh": torch.tensor(1.0)}


class FeatureHandSet(HandSet):
    """:class:`HandSet` with a frozen backbone's features in place of the image: ``global_features`` (N, C) and
    ``grid_features`` (N, G, C), computed once for every hand of ``arrays`` (row k belongs to hand k). No pixel
    noise: the features are fixed."""

    def __init__(self, arrays: dict[str, np.ndarray], features: dict[str, torch.Tensor], indices: np.ndarray):
        super().__init__(arrays, indices, train=False)
        self.features = features

    def __getitem__(self, i: int) -> dict:
        k = int(self.indices[i])
        a = self.arrays
        j = a["joints"].shape[1]
        return {"global_features": self.features["global_features"][k],
                "grid_features": self.features["grid_features"][k],
                "joints": torch.from_numpy(a["joints"][k]), "joints_conf": torch.ones(j),
                "joints_2d": torch.from_numpy(a["joints_2d"][k]), "joints_2d_conf": torch.ones(j),
                "vertices": torch.from_numpy(a["vertices"][k]), "has_3d": torch.tensor(1.0),
                "has_mesh": torch.tensor(1.0)}


def _rotz(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float32)


def _axis_angle_rotate(aa: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Axis-angle of ``rot @ R(aa)``."""
    from scipy.spatial.transform import Rotation

    return (Rotation.from_matrix(rot) * Rotation.from_rotvec(aa)).as_rotvec().astype(np.float32)


class TsvMeshSet(Dataset):
    """A MeshTransformer TSV split as samples (module docstring). ``kind``: ``body`` (24 label joints -> the 14
    evaluated) or ``hand`` (21)."""

    def __init__(self, yaml_file: str | Path, kind: str, image_size: int = 224, train: bool = False, seed: int = 0):
        if kind not in ("body", "hand"):
            raise UserFacingError(f"data.init_args.kind must be 'body' or 'hand', got {kind!r}")
        self.split = MeshTsvSplit(yaml_file)
        self.kind, self.size, self.train, self.seed = kind, image_size, train, seed
        self.joints = 24 if kind == "body" else 21

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict:
        image, raw, where = self.split.record(i)
        lab = parse_label(raw, where, self.joints, self.joints)
        rng = np.random.default_rng([self.seed, i, augmentation_seed()])
        scale, rot = lab["scale"], 0.0
        if self.train:
            scale *= float(np.clip(rng.normal(1, 0.25), 0.75, 1.25))
            spread = 30 if self.kind == "body" else 90
            rot = 0.0 if rng.random() < 0.6 else float(np.clip(rng.normal(0, spread), -2 * spread, 2 * spread))
            image = pixel_noise(rng, image)
        box = 200.0 * scale
        cx, cy = lab["center"]
        # inverse affine map: output pixel (u, v) -> input pixel, rotating about the box centre
        c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))
        k = box / self.size
        a, b = k * c, k * s
        half = self.size / 2
        coeffs = (a, b, cx - a * half - b * half, -b, a, cy + b * half - a * half)
        crop = Image.fromarray(np.asarray(image).astype(np.uint8)).transform(
            (self.size, self.size), Image.AFFINE, coeffs, resample=Image.BILINEAR)
        kp2 = lab["2d_joints"].copy()
        d = kp2[:, :2] - np.array([cx, cy])
        rotated = np.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]], 1)  # as the image turns
        kp2[:, :2] = rotated / box * 2  # [-1, 1]
        j3 = lab["3d_joints"].copy()
        rz = _rotz(rot)  # the same turn about the camera axis (x right, y down)
        if self.kind == "body":
            j3[:, :3] -= j3[J24_PELVIS, :3]
            j3, kp2 = j3[J24_TO_J14], kp2[J24_TO_J14]
        else:
            j3[:, :3] -= j3[0, :3]
        j3[:, :3] = j3[:, :3] @ rz.T
        pose = lab["pose"].copy()
        if rot and pose.size >= 3:
            pose[:3] = _axis_angle_rotate(pose[:3], rz)
        return {"image": normalise(np.asarray(crop)), "joints": torch.from_numpy(j3[:, :3]),
                "joints_conf": torch.from_numpy(j3[:, 3] * lab["has_3d_joints"]),
                "joints_2d": torch.from_numpy(kp2[:, :2]),
                "joints_2d_conf": torch.from_numpy(kp2[:, 2] * lab["has_2d_joints"]),
                "pose": torch.from_numpy(pose), "betas": torch.from_numpy(lab["betas"][:10]),
                "has_3d": torch.tensor(lab["has_3d_joints"]), "has_mesh": torch.tensor(lab["has_smpl"])}


class MeshDataModule(SplitLoaders, L.LightningDataModule):
    """See the module docstring. Embedded hands: ``size`` samples at ``image_size`` px, the last ``val_size``
    held out for validation and testing; the camera sees the palm (the back too with ``back_views``), tilted by
    up to ``max_tilt`` and turned in the image by up to ``max_roll`` degrees. TSV: ``train_yaml`` / ``val_yaml``
    (``test_yaml`` defaults to
    ``val_yaml``)."""

    def __init__(self, source: str = "anny-hands", size: int = 4000, val_size: int = 500, image_size: int = 64,
                 train_yaml: str | None = None, val_yaml: str | None = None, test_yaml: str | None = None,
                 kind: str = "hand", batch_size: int = 32, num_workers: int = 0, seed: int = 0,
                 cache_dir: str | None = None, max_tilt: float = 20.0, max_roll: float = 20.0,
                 back_views: bool = False):
        super().__init__()
        self.save_hyperparameters()
        if source not in ("anny-hands", "tsv"):
            raise UserFacingError(f"data.init_args.source must be 'anny-hands' or 'tsv', got {source!r}")
        if source == "anny-hands" and not 0 < val_size < size:
            raise UserFacingError(f"data.init_args.val_size={val_size} must be between 0 and size={size}")
        if source == "tsv" and not (train_yaml and val_yaml):
            raise UserFacingError("data.init_args.source=tsv needs train_yaml and val_yaml (MeshTransformer split "
                                  "YAML files, e.g. human3.6m/train.yaml and human3.6m/valid.protocol2.yaml; "
                                  "FreiHAND's test labels are hidden, so validate on a labelled split)")

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if hp.source == "anny-hands":
            spec = HandSetSpec(size=hp.size, image_size=hp.image_size, seed=hp.seed, max_tilt=hp.max_tilt,
                               max_roll=hp.max_roll, back_views=hp.back_views)
            arrays = load_or_generate(spec, hp.cache_dir)
            idx = np.arange(hp.size)
            self.train_set = HandSet(arrays, idx[: -hp.val_size], train=True, seed=hp.seed)
            self.val_set = HandSet(arrays, idx[-hp.val_size:], train=False)
        else:
            self.train_set = TsvMeshSet(hp.train_yaml, hp.kind, hp.image_size, train=True, seed=hp.seed)
            self.val_set = TsvMeshSet(hp.val_yaml, hp.kind, hp.image_size)
            self.test_set = TsvMeshSet(hp.test_yaml or hp.val_yaml, hp.kind, hp.image_size)

    def predict_dataloader(self):
        """The test split (``test_yaml``, else ``val_yaml``; the held-out hands for the embedded data), in order."""
        return self._loader(getattr(self, "test_set", self.val_set), shuffle=False)
