"""Data for SEED and MoCo-v2: augmented views of each image for training (two for MoCo-v2, one for
SEED), plain images for the kNN monitor (validation loader 0: a bank of training images; loader 1:
test images). Labels are returned so that the monitor can score, and are never used by the training
losses.

* :class:`FashionMNISTSSLDataModule` the embedded default: Fashion-MNIST's IDX files
  (:mod:`shared.fashion_mnist`) with MoCo-v2's augmentations adapted to 28 px grey images.
* :class:`ImageNetSSLDataModule` ImageNet train/val folders (:mod:`shared.imagenet`) with MoCo-v2's
  augmentations at 224 px.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets
from torchvision.transforms import v2

from shared.fashion_mnist import MEAN, STD, FashionMNIST
from shared.imagenet import IMAGENET_MEAN, IMAGENET_STD, check_image_folders, load_rgb, spread_subset
from shared.sampling import default_seed, make_loader


def mocov2_augment(size: int, mean, std, grey: bool = False, crop_scale: tuple[float, float] = (0.2, 1.0)):
    """MoCo-v2's augmentation: RandomResizedCrop(scale 0.2-1), colour jitter 0.4/0.4/0.4/0.1 with p=0.8,
    grayscale p=0.2, Gaussian blur (sigma 0.1-2) p=0.5, horizontal flip. For grey images the colour
    jitter keeps brightness and contrast, and grayscale is dropped."""
    jitter = v2.ColorJitter(0.4, 0.4) if grey else v2.ColorJitter(0.4, 0.4, 0.4, 0.1)
    blur_kernel = 3 if size < 64 else 23  # ~10% of the image side, odd
    steps = [v2.RandomResizedCrop(size, scale=crop_scale, antialias=True), v2.RandomApply([jitter], p=0.8)]
    if not grey:
        steps.append(v2.RandomGrayscale(p=0.2))
    steps += [v2.RandomApply([v2.GaussianBlur(blur_kernel, sigma=(0.1, 2.0))], p=0.5), v2.RandomHorizontalFlip(),
              v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    return v2.Compose(steps)


def place_at_random(images: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """A harder view of registered images (N, H, W) uint8: each shrunk to ``size`` px (bilinear, antialiased) and
    pasted at a random offset in a blank frame of the original size; the offsets are drawn with ``seed``, so an
    image always lands at the same place. Raw pixels stop being a good representation (as on natural images,
    whose objects are not centred), while a convolutional encoder with global pooling can still be one."""
    n, height, width = images.shape
    if size >= min(height, width):
        return images
    small = torch.nn.functional.interpolate(images[:, None].float(), size=size, mode="bilinear", antialias=True,
                                            align_corners=False)[:, 0].round().clamp(0, 255).to(images.dtype)
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, height - size + 1, (n,), generator=generator)
    cols = torch.randint(0, width - size + 1, (n,), generator=generator)
    framed = torch.zeros_like(images)
    for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        framed[i, r:r + size, c:c + size] = small[i]
    return framed


PLACEMENT_SEEDS = {"train": 0, "test": 1}  # fixed per split: every run and every seed sees the same placements


def placed_fashion_mnist(split: str, data_dir: str | None = None, subset: int | None = None, seed: int = 0,
                         place: int | None = None) -> FashionMNIST:
    """``FashionMNIST(split, ...)``, with every image of the split placed at random (:func:`place_at_random`,
    offsets fixed per split, before the subset is drawn) when ``place`` (the object's side in px) is given."""
    dataset = FashionMNIST(split, data_dir, subset=None if place else subset, seed=seed)
    if place:
        dataset.images = place_at_random(dataset.images, place, PLACEMENT_SEEDS[split])
        if subset is not None and subset < len(dataset.labels):
            keep = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(dataset.labels), size=subset,
                                                                                replace=False)))
            dataset.images, dataset.labels = dataset.images[keep], dataset.labels[keep]
    return dataset


class Views(Dataset):
    """``((augment(x), ...), label)``: ``views`` independent augmentations of each item of ``images``
    (a dataset of (image, label)). MoCo-v2 needs two; SEED shows one view to both networks."""

    def __init__(self, images: Dataset, augment, views: int = 2):
        self.images, self.augment, self.views = images, augment, views

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image, label = self.images[index]
        return tuple(self.augment(image) for _ in range(self.views)), label


class _RawFashionMNIST(Dataset):
    """uint8 (1, 28, 28) tensors, for the augmentation pipeline."""

    def __init__(self, base: FashionMNIST):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        return self.base.images[index][None], int(self.base.labels[index])


class _SSLDataModule(L.LightningDataModule):
    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        return make_loader(self.train_set, hp.batch_size, True, hp.num_workers, hp.seed)

    def val_dataloader(self) -> list[DataLoader]:
        hp = self.hparams
        return [make_loader(self.bank_set, hp.batch_size, False, hp.num_workers),
                make_loader(self.query_set, hp.batch_size, False, hp.num_workers)]


class FashionMNISTSSLDataModule(_SSLDataModule):
    """``views`` augmented views of (a subset of) the 60k training images; kNN bank from ``bank_subset``
    training images, queries from ``val_subset`` test images. ``crop_scale``: the RandomResizedCrop area range
    (MoCo-v2's 0.2-1 by default). ``place``: shrink every image to this side and put it at a random place in the
    frame, fixed per image (:func:`place_at_random`; None keeps the registered images)."""

    def __init__(self, data_dir: str | None = None, batch_size: int = 256, num_workers: int = 0,
                 train_subset: int | None = None, bank_subset: int | None = 5000, val_subset: int | None = 2000,
                 views: int = 2, seed: int | None = None, crop_scale: tuple[float, float] = (0.2, 1.0),
                 place: int | None = None):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        seed = default_seed(hp.seed)
        split = lambda name, subset, s: placed_fashion_mnist(name, hp.data_dir, subset, s, hp.place)  # noqa: E731
        augment = mocov2_augment(28, [MEAN], [STD], grey=True, crop_scale=tuple(hp.crop_scale))
        self.train_set = Views(_RawFashionMNIST(split("train", hp.train_subset, seed)), augment, hp.views)
        self.bank_set = split("train", hp.bank_subset, seed + 1)
        self.query_set = split("test", hp.val_subset, seed)


class ImageNetSSLDataModule(_SSLDataModule):
    """``views`` MoCo-v2 views of ImageNet training images; the kNN bank is ``bank_subset`` training images
    and the queries ``val_subset`` validation images, both resized to 256 and centre-cropped to 224."""

    def __init__(self, root: str, batch_size: int = 32, num_workers: int = 8, image_size: int = 224,
                 bank_subset: int | None = 50000, val_subset: int | None = 10000, views: int = 2,
                 seed: int | None = None):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        check_image_folders(hp.root)
        plain = v2.Compose([v2.PILToTensor(), v2.Resize(int(hp.image_size * 256 / 224), antialias=True),
                            v2.CenterCrop(hp.image_size), v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
        train = datasets.ImageFolder(str(Path(hp.root) / "train"), loader=load_rgb, transform=v2.PILToTensor())
        self.train_set = Views(train, mocov2_augment(hp.image_size, IMAGENET_MEAN, IMAGENET_STD), hp.views)
        folder = lambda split: datasets.ImageFolder(str(Path(hp.root) / split), plain, loader=load_rgb)  # noqa: E731
        self.bank_set = spread_subset(folder("train"), hp.bank_subset)
        self.query_set = spread_subset(folder("val"), hp.val_subset)
