"""The CIFAR reader on fixture files in Krizhevsky's python-pickle layout, well-formed and malformed."""

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.cifar import CIFAR, ENV_VAR, CIFARDataModule, load_split, read_batch
from shared.errors import CorruptDataError, DatasetNotFoundError

FIXTURES = Path(__file__).parent / "fixtures" / "cifar"


def test_cifar10_train_concatenates_the_five_batches_in_order():
    images, labels = load_split("train", 10, FIXTURES)
    assert images.shape == (20, 32, 32, 3) and images.dtype == np.uint8 and labels.shape == (20,)
    first, first_labels = read_batch(FIXTURES / "cifar-10-batches-py" / "data_batch_1")
    np.testing.assert_array_equal(images[:4], first)
    np.testing.assert_array_equal(labels[:4], first_labels)


def test_rows_are_red_green_blue_planes():
    with open(FIXTURES / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")[b"data"]
    images, labels = load_split("test", 10, FIXTURES)
    assert labels.tolist() == [0, 1, 2, 9]
    # pixel (row 3, col 5) of image 1: red at 3*32+5, green 1024 later, blue 2048 later
    assert images[1, 3, 5].tolist() == [raw[1, 101], raw[1, 1024 + 101], raw[1, 2048 + 101]]


def test_cifar100_uses_fine_labels_and_batches_folder_as_root():
    images, labels = load_split("test", 100, FIXTURES / "cifar-100-python")
    assert images.shape == (4, 32, 32, 3) and labels.max() < 100


def test_missing_folder_and_env_var(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(DatasetNotFoundError, match="No CIFAR-10 folder given"):
        load_split("train", 10)
    with pytest.raises(DatasetNotFoundError, match="data_batch_1"):
        load_split("train", 10, tmp_path)
    monkeypatch.setenv(ENV_VAR, str(FIXTURES))
    assert len(load_split("test", 10)[1]) == 4


@pytest.mark.parametrize("damage, match", [
    (lambda p: p.write_bytes(p.read_bytes()[:100]), "not a CIFAR python batch"),
    (lambda p: p.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)})), "lacks the keys"),
    (lambda p: p.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})), "N × 3072"),
    (lambda p: p.write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]})), "outside 0..9"),
    (lambda p: p.write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [1],
                                           b"x": torch.nn.Linear})), "not allowed"),
])
def test_malformed_batches_name_the_file(tmp_path, damage, match):
    root = tmp_path / "c"
    shutil.copytree(FIXTURES, root)
    target = root / "cifar-10-batches-py" / "data_batch_3"
    damage(target)
    with pytest.raises(CorruptDataError, match=match) as info:
        load_split("train", 10, root)
    assert "data_batch_3" in str(info.value)


def test_dataset_normalises_and_augments_with_fixed_shape():
    ds = CIFAR("train", 10, FIXTURES, augment=True)
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= int(y) < 10
    plain = CIFAR("train", 10, FIXTURES, subset=5, seed=1)
    assert len(plain) == 5
    x0 = plain[0][0]
    assert torch.allclose(x0 * plain.std + plain.mean, plain.images[0].float() / 255, atol=1e-6)


def test_datamodule_batches():
    dm = CIFARDataModule(FIXTURES, classes=100, batch_size=3, seed=0)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (3, 3, 32, 32) and y.shape == (3,)
    assert len(dm.val_dataloader().dataset) == 4
