"""Data modules: (encoding, accuracy) pairs for a predictor, and image splits for the live cell network."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from shared.sampling import SplitLoaders, default_seed, make_loader


class PredictorDataModule(L.LightningDataModule):
    """Serves (30-d one-hot cell, standardised accuracy) pairs.

    From the Lightning CLI it samples ``train_size`` cells of ``benchmark`` at random to train on and
    ``val_size`` others to measure the ranking (Kendall τ) on; inside a search, :meth:`from_arrays`
    wraps the queried cells (no validation set).
    """

    def __init__(self, benchmark: str = "nb201-cifar10-analog", train_size: int = 100, val_size: int = 1000,
                 batch_size: int = 64, split: str = "valid", seed: int | None = None):
        super().__init__()
        self.save_hyperparameters()
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_arrays(cls, X: np.ndarray, y: np.ndarray, batch_size: int = 64, seed: int = 0) -> PredictorDataModule:
        dm = cls(benchmark="", train_size=len(y), val_size=0, batch_size=batch_size, seed=seed)
        dm._arrays = (np.asarray(X, dtype=np.float32), np.asarray(y, dtype=np.float32))
        return dm

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "train_set"):
            return
        hp = self.hparams
        if self._arrays is not None:
            X, y = self._arrays
            self.train_set = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
            self.val_set = None
            return
        from projects.weaknas.benchmarks import load_benchmark
        from projects.weaknas.space import encode

        bench = load_benchmark(hp.benchmark)
        rng = np.random.default_rng(default_seed(hp.seed))
        order = rng.permutation(len(bench))
        train, val = order[:hp.train_size], order[hp.train_size:hp.train_size + hp.val_size]
        X = encode(bench.arch_strings())
        acc = bench.accuracies(np.arange(len(bench)), hp.split).astype(np.float32)
        mean, std = acc[train].mean(), acc[train].std() or 1.0  # statistics of the training cells only
        y = (acc - mean) / std
        self.train_set = TensorDataset(torch.from_numpy(X[train]), torch.from_numpy(y[train]))
        self.val_set = TensorDataset(torch.from_numpy(X[val]), torch.from_numpy(y[val])) if len(val) else None

    def train_dataloader(self) -> DataLoader:
        return make_loader(self.train_set, min(self.hparams.batch_size, len(self.train_set)), True, 0,
                           self.hparams.seed)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return make_loader(self.val_set, 1024, False, 0, self.hparams.seed)


class HoldoutDataModule(SplitLoaders, L.LightningDataModule):
    """Train / validation / test images for one live query, NB201's protocol at any size.

    ``train_size`` images of the training split to train on, ``valid_size`` *other* training images to
    select with (NB201's ``cifar10-valid`` splits the 50k training images in half), ``test_size`` images of
    the test split to report. ``dataset``: ``fashion-mnist`` (embedded default) or ``cifar10`` / ``cifar100``
    (python-pickle folder in ``data_dir``).
    """

    def __init__(self, dataset: str = "fashion-mnist", data_dir: str | None = None, train_size: int | None = 2000,
                 valid_size: int = 1000, test_size: int | None = 1000, batch_size: int = 64, num_workers: int = 0,
                 augment: bool = True, seed: int | None = None):
        super().__init__()
        self.save_hyperparameters()

    def _datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        hp = self.hparams
        if hp.dataset == "fashion-mnist":
            from shared.fashion_mnist import FashionMNIST

            train, plain = (FashionMNIST("train", hp.data_dir, flip=f) for f in (hp.augment, False))
            test = FashionMNIST("test", hp.data_dir)
        elif hp.dataset in ("cifar10", "cifar100"):
            from shared.cifar import CIFAR

            classes = int(hp.dataset[5:])
            train, plain = (CIFAR("train", classes, hp.data_dir, augment=a) for a in (hp.augment, False))
            test = CIFAR("test", classes, hp.data_dir)
        else:
            raise ValueError(f"dataset must be fashion-mnist, cifar10 or cifar100, got {hp.dataset!r}")
        return train, plain, test

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "train_set"):
            return
        hp = self.hparams
        train, plain, test = self._datasets()
        rng = np.random.default_rng(default_seed(hp.seed))
        order = rng.permutation(len(train))
        n_valid = min(hp.valid_size, len(order) // 2)
        n_train = len(order) - n_valid if hp.train_size is None else min(hp.train_size, len(order) - n_valid)
        self.train_set = Subset(train, np.sort(order[:n_train]).tolist())
        self.val_set = Subset(plain, np.sort(order[n_train:n_train + n_valid]).tolist())
        n_test = len(test) if hp.test_size is None else min(hp.test_size, len(test))
        self.test_set = Subset(test, np.sort(rng.permutation(len(test))[:n_test]).tolist())
