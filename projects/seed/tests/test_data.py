"""Two-view data modules on fixture files in the real formats (Fashion-MNIST IDX, ImageNet folders)."""

from pathlib import Path

import numpy as np
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


def test_place_at_random_moves_each_image_whole_and_always_to_the_same_place():
    from projects.seed.data import place_at_random, placed_fashion_mnist

    images = torch.full((50, 28, 28), 200, dtype=torch.uint8)  # a full frame: shrunk, it fills its box exactly
    placed = place_at_random(images, 14, seed=0)
    assert placed.shape == images.shape and placed.dtype == torch.uint8
    assert torch.equal(placed, place_at_random(images, 14, seed=0))
    assert not torch.equal(placed, place_at_random(images, 14, seed=1))
    corners = {tuple(torch.nonzero(p).min(0).values.tolist()) for p in placed}
    assert len(corners) > 10  # offsets vary between images
    assert all(0 <= r <= 14 and 0 <= c <= 14 for r, c in corners)
    assert all(int((p > 0).sum()) == 14 * 14 for p in placed)  # the whole image, shrunk, inside the frame
    assert torch.equal(place_at_random(images, 28, seed=0), images)
    # a subset holds the same placed images as the full split (placement happens before the subset is drawn)
    full = placed_fashion_mnist("train", place=20)
    part = placed_fashion_mnist("train", subset=100, seed=3, place=20)
    plain = placed_fashion_mnist("train", subset=100, seed=3)
    assert torch.equal(part.labels, plain.labels) and not torch.equal(part.images, plain.images)
    keep = np.sort(np.random.default_rng(3).choice(60000, size=100, replace=False))  # FashionMNIST's subset rule
    assert torch.equal(part.images, full.images[torch.from_numpy(keep)])
