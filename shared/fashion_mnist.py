"""Fashion-MNIST from the real IDX files, as shipped by Debian's ``dataset-fashion-mnist``.

Layout (Zalando's release, gzipped or not)::

    <root>/train-images-idx3-ubyte.gz   60000 x 28 x 28 uint8, 16-byte header
    <root>/train-labels-idx1-ubyte.gz   60000 uint8, 8-byte header
    <root>/t10k-images-idx3-ubyte.gz    10000 x 28 x 28
    <root>/t10k-labels-idx1-ubyte.gz    10000

The root is, in order: the ``data_dir`` argument, the ``REPRO_ZOO_FASHION_MNIST`` environment
variable, then ``/usr/share/datasets/fashion-mnist``.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from shared.errors import CorruptDataError, DatasetNotFoundError
from shared.sampling import SplitLoaders, default_seed

ENV_VAR = "REPRO_ZOO_FASHION_MNIST"
DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")
# Mean and standard deviation of the 60k training images, in [0, 1] units.
MEAN, STD = 0.2860, 0.3530
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPE = {0x08: np.uint8}
_HOW_TO_GET = (
    "Install the Debian package with `apt-get install dataset-fashion-mnist` (as `make install` does), "
    f"or point {ENV_VAR} at a folder holding Zalando's four IDX files."
)


def resolve_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder to read from: argument, then environment variable, then the Debian path."""
    return Path(data_dir or os.environ.get(ENV_VAR) or DEFAULT_ROOT)


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise DatasetNotFoundError(
        f"Fashion-MNIST file {stem}(.gz) not found in {root}. {_HOW_TO_GET}"
    )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a numpy array, checking header and length.

    IDX: 2 zero bytes, a dtype byte (0x08 = uint8), a byte with the number of dimensions n,
    then n big-endian uint32 sizes, then the data.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # a cut-off gzip stream ends up here
        raise CorruptDataError(
            f"{path} could not be read ({err}); the file is truncated or not gzip. "
            f"Delete it and reinstall it. {_HOW_TO_GET}"
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPE:
        raise CorruptDataError(
            f"{path} is not an IDX file of unsigned bytes (first bytes {raw[:4].hex() or 'empty'}, "
            f"expected 0000 08 followed by the number of dimensions). {_HOW_TO_GET}"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDataError(f"{path} ends inside its header ({len(raw)} bytes). {_HOW_TO_GET}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise CorruptDataError(
            f"{path} has {len(raw)} bytes but its header announces shape {shape}, i.e. {expected} bytes: "
            f"the file is {'truncated' if len(raw) < expected else 'longer than announced'}. "
            f"Delete it and reinstall it. {_HOW_TO_GET}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_split(split: str, data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of ``split`` in {"train", "test"}."""
    if split not in _FILES:
        raise ValueError(f"split must be one of {sorted(_FILES)}, got {split!r}")
    root = resolve_root(data_dir)
    if not root.is_dir():
        raise DatasetNotFoundError(f"Fashion-MNIST folder {root} does not exist. {_HOW_TO_GET}")
    image_path, label_path = (_find(root, stem) for stem in _FILES[split])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise CorruptDataError(
            f"{image_path} holds shape {images.shape} and {label_path} shape {labels.shape}; expected "
            f"(N, 28, 28) images and N labels. {_HOW_TO_GET}"
        )
    if labels.max(initial=0) >= len(CLASSES):
        raise CorruptDataError(f"{label_path} has label {labels.max()}, above 9. {_HOW_TO_GET}")
    return images, labels.astype(np.int64)


class FashionMNIST(Dataset):
    """Fashion-MNIST as normalised float tensors.

    Args:
        split: "train" (60k) or "test" (10k).
        subset: keep this many samples, drawn without replacement with ``seed`` (None keeps all).
        channels: 1, or 3 to repeat the grey channel for RGB backbones.
        image_size: resize (bilinear) to this side length; 28 keeps the original.
        flip: random horizontal flip (training augmentation).
    """

    def __init__(self, split: str = "train", data_dir: str | None = None, subset: int | None = None,
                 seed: int = 0, channels: int = 1, image_size: int = 28, flip: bool = False):
        images, labels = load_split(split, data_dir)
        if subset is not None and subset < len(labels):
            keep = np.random.default_rng(seed).choice(len(labels), size=subset, replace=False)
            images, labels = images[np.sort(keep)], labels[np.sort(keep)]
        self.images = torch.from_numpy(images.copy())
        self.labels = torch.from_numpy(labels)
        self.channels, self.image_size, self.flip = channels, image_size, flip

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = (self.images[index].float().div_(255).sub_(MEAN).div_(STD))[None]
        if self.image_size != x.shape[-1]:
            x = torch.nn.functional.interpolate(x[None], size=self.image_size, mode="bilinear",
                                                align_corners=False)[0]
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        if self.channels != 1:
            x = x.expand(self.channels, -1, -1)
        return x, self.labels[index]


class FashionMNISTDataModule(SplitLoaders, L.LightningDataModule):
    """Train on (a subset of) the 60k training images, validate and test on (a subset of) the 10k test set.

    ``seed`` (default: the CLI's ``seed_everything``) picks the subsets and the training order."""

    def __init__(self, data_dir: str | None = None, batch_size: int = 128, num_workers: int = 0,
                 train_subset: int | None = None, val_subset: int | None = None, channels: int = 1,
                 image_size: int = 28, flip: bool = True, seed: int | None = None):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        common = dict(data_dir=hp.data_dir, seed=default_seed(hp.seed), channels=hp.channels, image_size=hp.image_size)
        if stage in (None, "fit") and not hasattr(self, "train_set"):
            self.train_set = FashionMNIST("train", subset=hp.train_subset, flip=hp.flip, **common)
        if not hasattr(self, "val_set"):
            self.val_set = FashionMNIST("test", subset=hp.val_subset, **common)



def nearest_class_mean(seed: int, train_subset: int | None, val_subset: int | None) -> float:
    """Top-1 (%) of a nearest-class-mean classifier on raw pixels, fitted on the training subset drawn with
    ``seed`` and scored on the test subset drawn with it: the no-learning reference row of the claims that
    train on Fashion-MNIST subsets (dcd, automix)."""
    train = FashionMNIST("train", subset=train_subset, seed=seed)
    test = FashionMNIST("test", subset=val_subset, seed=seed)
    x, y = train.images.reshape(len(train), -1).float(), train.labels
    present = y.unique()  # a class absent from a tiny subset has no mean and is never predicted
    means = torch.stack([x[y == k].mean(0) for k in present])
    pred = present[torch.cdist(test.images.reshape(len(test), -1).float(), means).argmin(1)]
    return 100 * (pred == test.labels).float().mean().item()
