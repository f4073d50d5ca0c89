"""CIFAR-10 / CIFAR-100 from Krizhevsky's "python version" release, read from a local folder.

Layout (as unpacked from ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``)::

    <root>/cifar-10-batches-py/data_batch_1 … data_batch_5, test_batch    pickled dicts
    <root>/cifar-100-python/train, test                                    pickled dicts

Each pickle holds ``b"data"`` (N × 3072 uint8, the red, green then blue 32 × 32 planes) and the labels
under ``b"labels"`` (CIFAR-10) or ``b"fine_labels"`` (CIFAR-100). ``root`` may also be the
batches folder itself. The root is, in order: the ``data_dir`` argument, then the ``REPRO_ZOO_CIFAR``
environment variable. The pickles are read with an unpickler that accepts numpy arrays and nothing else.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from shared.errors import CorruptDataError, DatasetNotFoundError
from shared.sampling import SplitLoaders, default_seed

ENV_VAR = "REPRO_ZOO_CIFAR"
# Per-channel mean and std of the training images, in [0, 1] units (the values torchvision recipes use).
MEAN = {10: (0.4914, 0.4822, 0.4465), 100: (0.5071, 0.4865, 0.4409)}
STD = {10: (0.2470, 0.2435, 0.2616), 100: (0.2673, 0.2564, 0.2762)}
_LAYOUT = {
    10: ("cifar-10-batches-py", {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
         b"labels"),
    100: ("cifar-100-python", {"train": ["train"], "test": ["test"]}, b"fine_labels"),
}
_NUMPY_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                  ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}


def _how_to_get(classes: int) -> str:
    return (f"Download cifar-{classes}-python.tar.gz from the CIFAR page (Krizhevsky, 2009), unpack it, and pass "
            f"its parent folder as data_dir or set {ENV_VAR}. Nothing is downloaded at run time.")


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def read_batch(path: str | os.PathLike, label_key: bytes = b"labels") -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> images (N, 32, 32, 3) uint8 and labels (N,) int64, with checks."""
    path = Path(path)
    classes = 100 if label_key == b"fine_labels" else 10
    try:
        with open(path, "rb") as f:
            batch = _NumpyOnly(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise CorruptDataError(f"{path} is not a CIFAR python batch ({err}). {_how_to_get(classes)}") from None
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise CorruptDataError(f"{path} lacks the keys b'data' and {label_key!r} (found {keys}). "
                               f"{_how_to_get(classes)}")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise CorruptDataError(f"{path}: b'data' has shape {data.shape} and dtype {data.dtype} with {len(labels)} "
                               f"labels; expected N × 3072 uint8 and N labels. {_how_to_get(classes)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise CorruptDataError(f"{path}: label {labels.max()} is outside 0..{classes - 1}. {_how_to_get(classes)}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_split(split: str, classes: int = 10, data_dir: str | os.PathLike | None = None):
    """Images (N, 32, 32, 3) uint8 and labels (N,) of ``split`` in {"train", "test"} of CIFAR-``classes``."""
    if classes not in _LAYOUT:
        raise ValueError(f"classes must be 10 or 100, got {classes}")
    folder, files, label_key = _LAYOUT[classes]
    if split not in files:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    given = data_dir or os.environ.get(ENV_VAR)
    if not given:
        raise DatasetNotFoundError(f"No CIFAR-{classes} folder given. {_how_to_get(classes)}")
    root = Path(given)
    root = root / folder if (root / folder).is_dir() else root
    missing = [name for name in files[split] if not (root / name).is_file()]
    if missing:
        raise DatasetNotFoundError(f"CIFAR-{classes} {split} file(s) {', '.join(missing)} not found in {root}. "
                                   f"{_how_to_get(classes)}")
    parts = [read_batch(root / name, label_key) for name in files[split]]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class CIFAR(Dataset):
    """CIFAR images as normalised (3, 32, 32) float tensors; ``augment`` = 4-pixel reflect pad, random 32 crop,
    horizontal flip (the usual CIFAR recipe, openmixup's included)."""

    def __init__(self, split: str = "train", classes: int = 10, data_dir: str | None = None,
                 subset: int | None = None, seed: int = 0, augment: bool = False):
        images, labels = load_split(split, classes, data_dir)
        if subset is not None and subset < len(labels):
            keep = np.sort(np.random.default_rng(seed).choice(len(labels), size=subset, replace=False))
            images, labels = images[keep], labels[keep]
        self.images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        self.labels = torch.from_numpy(labels)
        self.mean = torch.tensor(MEAN[classes]).view(3, 1, 1)
        self.std = torch.tensor(STD[classes]).view(3, 1, 1)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = (self.images[index].float() / 255 - self.mean) / self.std
        if self.augment:
            x = torch.nn.functional.pad(x[None], (4, 4, 4, 4), mode="reflect")[0]
            i, j = torch.randint(0, 9, (2,)).tolist()
            x = x[:, i:i + 32, j:j + 32]
            if torch.rand(()) < 0.5:
                x = x.flip(-1)
        return x, self.labels[index]


class CIFARDataModule(SplitLoaders, L.LightningDataModule):
    """Train on the training batches (augmented), validate and test on the test batch.

    ``seed`` (default: the CLI's ``seed_everything``) picks the subsets and the training order."""

    def __init__(self, data_dir: str | None = None, classes: int = 10, batch_size: int = 128,
                 num_workers: int = 0, train_subset: int | None = None, val_subset: int | None = None,
                 augment: bool = True, seed: int | None = None):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        common = dict(classes=hp.classes, data_dir=hp.data_dir, seed=default_seed(hp.seed))
        if stage in (None, "fit") and not hasattr(self, "train_set"):
            self.train_set = CIFAR("train", subset=hp.train_subset, augment=hp.augment, **common)
        if not hasattr(self, "val_set"):
            self.val_set = CIFAR("test", subset=hp.val_subset, **common)

