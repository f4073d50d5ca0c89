"""Two-view data modules on fixture files in the real formats (Fashion-MNIST IDX, ImageNet folders)."""

from pathlib import Path

import pytest
import torch

from projects.seed.data import FashionMNISTSSLDataModule, ImageNetSSLDataModule
from shared.errors import DatasetNotFoundError

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "tests" / "fixtures"


def test_fashion_mnist_gives_two_different_views_and_plain_bank_and_query_sets():
    dm = FashionMNISTSSLDataModule(data_dir=str(FIXTURES / "fashion-mnist"), batch_size=4, bank_subset=8,
                                   val_subset=6)
    dm.setup("fit")
    (v1, v2), y = next(iter(dm.train_dataloader()))
    assert v1.shape == v2.shape == (4, 1, 28, 28) and v1.dtype == torch.float32 and y.shape == (4,)
    assert not torch.equal(v1, v2)  # independent augmentations of the same images
    bank, query = dm.val_dataloader()
    assert len(bank.dataset) == 8 and len(query.dataset) == 6
    x, labels = next(iter(query))
    assert x.shape == (4, 1, 28, 28) and labels.dtype == torch.long


def test_views_are_normalised_like_the_plain_images():
    dm = FashionMNISTSSLDataModule(data_dir=str(FIXTURES / "fashion-mnist"), batch_size=20)
    dm.setup("fit")
    (v1, _), _ = next(iter(dm.train_dataloader()))
    plain = torch.stack([dm.bank_set[i][0] for i in range(len(dm.bank_set))])
    assert abs(v1.mean() - plain.mean()) < 0.5 and abs(v1.std() - plain.std()) < 0.5


def test_imagenet_folders_two_views_at_the_requested_size():
    dm = ImageNetSSLDataModule(str(FIXTURES / "imagenet"), batch_size=2, num_workers=0, image_size=32,
                               bank_subset=2, val_subset=2)
    dm.setup("fit")
    (v1, v2), _ = next(iter(dm.train_dataloader()))
    assert v1.shape == v2.shape == (2, 3, 32, 32)
    bank, query = dm.val_dataloader()
    assert next(iter(bank))[0].shape == (2, 3, 32, 32) and len(query.dataset) == 2


def test_missing_imagenet_names_the_folder(tmp_path: Path):
    with pytest.raises(DatasetNotFoundError, match=f"{tmp_path}/none does not exist"):
        ImageNetSSLDataModule(str(tmp_path / "none")).setup("fit")
