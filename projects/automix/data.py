"""Readers for the released layouts of Tiny-ImageNet, CUB-200-2011 and FGVC-Aircraft, and one DataModule.

CIFAR-10/100 (:mod:`shared.cifar`), ImageNet (:mod:`shared.imagenet`) and Fashion-MNIST
(:mod:`shared.fashion_mnist`) come from ``shared``. Layouts, as the archives unpack::

    tiny-imagenet-200/wnids.txt                       200 class ids, one a line
    tiny-imagenet-200/train/<wnid>/images/*.JPEG      500 a class
    tiny-imagenet-200/val/val_annotations.txt         <file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>
    tiny-imagenet-200/val/images/*.JPEG

    CUB_200_2011/images.txt               <id> <relative path>
    CUB_200_2011/image_class_labels.txt   <id> <class 1..200>
    CUB_200_2011/train_test_split.txt     <id> <1 = train, 0 = test>
    CUB_200_2011/images/<relative path>

    fgvc-aircraft-2013b/data/variants.txt                   100 variant names, one a line
    fgvc-aircraft-2013b/data/images_variant_<split>.txt     <image id> <variant name>  (split: train|val|trainval|test)
    fgvc-aircraft-2013b/data/images/<image id>.jpg

Every malformed line is reported with its file and line number.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from torch.utils.data import Dataset
from torchvision import transforms

from shared.errors import CorruptDataError, DatasetNotFoundError
from shared.imagenet import IMAGENET_MEAN, IMAGENET_STD, load_rgb, spread_subset
from shared.sampling import SplitLoaders

Samples = list[tuple[str, int]]


def _lines(path: Path, what: str) -> list[tuple[int, str]]:
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} not found: {what}")
    return [(n, line.strip()) for n, line in enumerate(path.read_text().splitlines(), start=1) if line.strip()]


def _check_files(samples: Samples, root: Path) -> Samples:
    missing = [p for p, _ in samples if not Path(p).is_file()]
    if missing:
        raise DatasetNotFoundError(f"{len(missing)} image(s) listed for {root} are missing, e.g. {missing[0]}.")
    return samples


def tiny_imagenet(root: str | Path, split: str) -> tuple[Samples, list[str]]:
    root = Path(root)
    how = "the Tiny-ImageNet archive (tiny-imagenet-200.zip) unpacked; pass its folder as root"
    wnids = [line for _, line in _lines(root / "wnids.txt", how)]
    label = {w: i for i, w in enumerate(wnids)}
    if split == "train":
        samples = []
        for wnid in wnids:
            folder = root / "train" / wnid / "images"
            if not folder.is_dir():
                raise DatasetNotFoundError(f"{folder} is missing: expected {how}")
            samples += [(str(p), label[wnid]) for p in sorted(folder.glob("*.JPEG"))]
        return _check_files(samples, root), wnids
    if split != "val":
        raise ValueError("Tiny-ImageNet splits are 'train' and 'val' (the test labels are not released)")
    path = root / "val" / "val_annotations.txt"
    samples = []
    for n, line in _lines(path, how):
        parts = line.split("\t")
        if len(parts) < 2 or parts[1] not in label:
            raise CorruptDataError(f"{path}, line {n}: expected '<file>\\t<wnid>\\t…' with a wnid from wnids.txt, "
                                   f"got {line[:80]!r}")
        samples.append((str(root / "val" / "images" / parts[0]), label[parts[1]]))
    return _check_files(samples, root), wnids


def cub200(root: str | Path, split: str) -> tuple[Samples, list[str]]:
    root = Path(root)
    how = "CUB_200_2011.tgz unpacked; pass the CUB_200_2011 folder as root"

    def table(name: str) -> dict[int, str]:
        out = {}
        for n, line in _lines(root / name, how):
            parts = line.split(maxsplit=1)
            if len(parts) != 2 or not parts[0].isdigit():
                raise CorruptDataError(f"{root / name}, line {n}: expected '<image id> <value>', got {line[:80]!r}")
            out[int(parts[0])] = parts[1]
        return out

    paths, labels, is_train = table("images.txt"), table("image_class_labels.txt"), table("train_test_split.txt")
    if split not in ("train", "test"):
        raise ValueError("CUB-200 splits are 'train' and 'test'")
    samples = []
    for image_id, rel in sorted(paths.items()):
        if image_id not in labels or image_id not in is_train:
            raise CorruptDataError(f"{root}: image id {image_id} ({rel}) has no class or no train/test flag in "
                                   "image_class_labels.txt / train_test_split.txt")
        label = labels[image_id]
        if not label.isdigit() or not 1 <= int(label) <= 200:
            raise CorruptDataError(f"{root / 'image_class_labels.txt'}: image {image_id} has class {label!r}, "
                                   "expected 1..200")
        if (is_train[image_id] == "1") == (split == "train"):
            samples.append((str(root / "images" / rel), int(label) - 1))
    classes = sorted({Path(rel).parent.name for rel in paths.values()})
    return _check_files(samples, root), classes


def aircraft(root: str | Path, split: str) -> tuple[Samples, list[str]]:
    root = Path(root)
    data = root / "data" if (root / "data").is_dir() else root
    how = "fgvc-aircraft-2013b.tar.gz unpacked; pass the fgvc-aircraft-2013b folder as root"
    if split not in ("train", "val", "trainval", "test"):
        raise ValueError("FGVC-Aircraft splits are 'train', 'val', 'trainval' and 'test'")
    variants = [line for _, line in _lines(data / "variants.txt", how)]
    label = {v: i for i, v in enumerate(variants)}
    path = data / f"images_variant_{split}.txt"
    samples = []
    for n, line in _lines(path, how):
        image_id, _, variant = line.partition(" ")
        if not variant or variant not in label:
            raise CorruptDataError(f"{path}, line {n}: expected '<image id> <variant from variants.txt>', "
                                   f"got {line[:80]!r}")
        samples.append((str(data / "images" / f"{image_id}.jpg"), label[variant]))
    return _check_files(samples, root), variants


READERS = {"tiny-imagenet": tiny_imagenet, "cub200": cub200, "aircraft": aircraft}
SPLITS = {"tiny-imagenet": ("train", "val"), "cub200": ("train", "test"), "aircraft": ("trainval", "test")}


class ImageList(Dataset):
    def __init__(self, samples: Samples, transform):
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        return self.transform(load_rgb(path)), label


class ImageListDataModule(SplitLoaders, L.LightningDataModule):
    """Tiny-ImageNet (64 px: RandomResizedCrop 64 + flip / as is), CUB-200 and FGVC-Aircraft (224 px:
    RandomResizedCrop 224 + flip / Resize 256 + CenterCrop 224), ImageNet mean/std, as openmixup trains them."""

    def __init__(self, dataset: str, root: str, batch_size: int = 64, num_workers: int = 4,
                 image_size: int | None = None, train_subset: int | None = None, val_subset: int | None = None,
                 seed: int | None = None):
        super().__init__()
        if dataset not in READERS:
            raise ValueError(f"dataset must be one of {sorted(READERS)}, got {dataset!r}")
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        size = hp.image_size or (64 if hp.dataset == "tiny-imagenet" else 224)
        normalize = [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
        train_tf = transforms.Compose([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(),
                                       *normalize])
        val_tf = transforms.Compose(([transforms.Resize(size)] if hp.dataset == "tiny-imagenet" else
                                     [transforms.Resize(size * 256 // 224), transforms.CenterCrop(size)]) + normalize)
        train_split, val_split = SPLITS[hp.dataset]
        reader = READERS[hp.dataset]
        train, self.classes = reader(hp.root, train_split)
        val, _ = reader(hp.root, val_split)
        self.train_set = spread_subset(ImageList(train, train_tf), hp.train_subset)
        self.val_set = spread_subset(ImageList(val, val_tf), hp.val_subset)

