"""Readers of Tiny-ImageNet, CUB-200-2011 and FGVC-Aircraft on fixture files in their released layouts."""

import shutil
from pathlib import Path

import pytest
import torch

from projects.automix.data import ImageListDataModule, aircraft, cub200, tiny_imagenet
from shared.errors import CorruptDataError, DatasetNotFoundError

FIXTURES = Path(__file__).parent / "fixtures"


def test_tiny_imagenet_train_and_val():
    train, wnids = tiny_imagenet(FIXTURES / "tiny-imagenet-200", "train")
    assert wnids == ["n01443537", "n01629819"] and len(train) == 4
    assert [label for _, label in train] == [0, 0, 1, 1] and train[0][0].endswith("n01443537_0.JPEG")
    val, _ = tiny_imagenet(FIXTURES / "tiny-imagenet-200", "val")
    assert [label for _, label in val] == [0, 1, 0, 1] and val[1][0].endswith("val/images/val_1.JPEG")


def test_cub_uses_the_split_file_and_zero_based_labels():
    train, classes = cub200(FIXTURES / "CUB_200_2011", "train")
    test, _ = cub200(FIXTURES / "CUB_200_2011", "test")
    assert [(Path(p).name, y) for p, y in train] == [("a_1.jpg", 0), ("b_1.jpg", 1)]
    assert [(Path(p).name, y) for p, y in test] == [("a_2.jpg", 0), ("b_2.jpg", 1)]
    assert classes == ["001.Black_footed_Albatross", "002.Laysan_Albatross"]


def test_aircraft_variants_with_spaces():
    trainval, variants = aircraft(FIXTURES / "fgvc-aircraft-2013b", "trainval")
    assert variants == ["707-320", "Cessna 172", "Falcon 2000"]
    assert [y for _, y in trainval] == [0, 1, 2] and trainval[1][0].endswith("0034958.jpg")
    assert [y for _, y in aircraft(FIXTURES / "fgvc-aircraft-2013b", "test")[0]] == [1, 0]


@pytest.fixture
def copy(tmp_path: Path):
    def make(name: str) -> Path:
        shutil.copytree(FIXTURES / name, tmp_path / name)
        return tmp_path / name
    return make


def test_malformed_lines_name_file_and_line(copy):
    root = copy("tiny-imagenet-200")
    ann = root / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text() + "val_9.JPEG n99999999\t0\t0\n")
    with pytest.raises(CorruptDataError, match=r"val_annotations.txt, line 5"):
        tiny_imagenet(root, "val")
    cub = copy("CUB_200_2011")
    (cub / "image_class_labels.txt").write_text("1 1\n2 1\n3 2\nfour 2\n")
    with pytest.raises(CorruptDataError, match=r"image_class_labels.txt, line 4"):
        cub200(cub, "train")
    air = copy("fgvc-aircraft-2013b")
    (air / "data" / "images_variant_test.txt").write_text("1514522 Cessna 172\n1236289 Boeing 999\n")
    with pytest.raises(CorruptDataError, match=r"images_variant_test.txt, line 2"):
        aircraft(air, "test")


def test_missing_files_say_what_to_unpack(copy, tmp_path: Path):
    with pytest.raises(DatasetNotFoundError, match="CUB_200_2011.tgz"):
        cub200(tmp_path / "nowhere", "train")
    root = copy("fgvc-aircraft-2013b")
    (root / "data" / "images" / "0034309.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match="0034309.jpg"):
        aircraft(root, "trainval")
    cub = copy("CUB_200_2011")
    (cub / "train_test_split.txt").write_text("1 1\n2 0\n3 1\n")
    with pytest.raises(CorruptDataError, match="image id 4"):
        cub200(cub, "train")


@pytest.mark.parametrize("dataset, folder, size", [("tiny-imagenet", "tiny-imagenet-200", 64),
                                                   ("cub200", "CUB_200_2011", 224),
                                                   ("aircraft", "fgvc-aircraft-2013b", 224)])
def test_datamodule_batches(dataset, folder, size):
    dm = ImageListDataModule(dataset, str(FIXTURES / folder), batch_size=2, num_workers=0, seed=0)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 3, size, size) and y.dtype == torch.int64
    xv, _ = next(iter(dm.val_dataloader()))
    assert xv.shape[-2:] == (size, size)
