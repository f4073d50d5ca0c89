"""Data loaders whose order depends only on (seed, epoch), so that a resumed run sees what an
uninterrupted one would have seen.

A plain ``shuffle=True`` loader draws its permutation (and its worker base seed) from the global
random generator at whatever moment Lightning first iterates it, which differs between a fresh run
and one resumed from a checkpoint. Here the permutation comes from ``seed + epoch`` (Lightning calls
``set_epoch`` before every epoch, as it does for ``DistributedSampler``) and the loader has its own
generator, so iterating it never consumes the global generator that augmentations and dropout use.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochShuffleSampler(Sampler[int]):
    """A permutation of ``range(n)`` drawn from ``seed + epoch``."""

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.randperm(self.n, generator=generator).tolist()

    def __len__(self) -> int:
        return self.n


def default_seed(seed: int | None = None) -> int:
    """``seed``, else the one ``seed_everything`` set (the CLI's ``seed_everything``), else 0."""
    return seed if seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int = 0, seed: int | None = None,
                **kwargs) -> DataLoader:
    """A DataLoader that shuffles with :class:`EpochShuffleSampler` and drops the last partial batch
    when training (``shuffle=True``), and keeps order and every sample otherwise.

    With ``num_workers > 0`` the order stays exact on resume, but random augmentations drawn inside
    worker processes are not replayed bit for bit (worker seeds are drawn when Lightning first
    iterates the loader, which differs between a fresh and a resumed run)."""
    seed = default_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, drop_last=shuffle,
                      sampler=EpochShuffleSampler(len(dataset), seed) if shuffle else None,
                      generator=torch.Generator().manual_seed(seed),
                      persistent_workers=num_workers > 0, **kwargs)


class SplitLoaders:
    """Mixin for a LightningDataModule whose ``setup`` fills ``train_set`` and ``val_set`` (and, if it has
    one, ``test_set``; otherwise testing uses ``val_set``) and whose hyperparameters hold ``batch_size``,
    ``num_workers`` and ``seed``: the three loaders through :func:`make_loader`."""

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        hp = self.hparams
        return make_loader(dataset, hp.batch_size, shuffle, hp.get("num_workers", 0), hp.get("seed"))

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(getattr(self, "test_set", self.val_set), shuffle=False)
