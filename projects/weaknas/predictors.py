"""Accuracy predictors: ``fit(X, y)`` on queried cells, ``predict(X)`` over the whole space.

X is the (n, 30) one-hot encoding of :func:`projects.weaknas.space.encode`, y the accuracies. Each
predictor is fitted on y standardised with the mean and std of the samples it is given (the official code
standardises with the whole benchmark's statistics, which a real search does not know) and predicts in
accuracy units again; the search rebuilds it from scratch at every iteration.

* ``mlp``: the official predictor, scikit-learn's ``MLPRegressor`` with 4 hidden layers of 1000 units,
  ReLU, Adam (lr 1e-3, L2 1e-4, batch min(200, n)), 100 epochs: sklearn's defaults but for the sizes.
* ``rf``: random forest (the official code's alternative): 1000 trees of depth at most 10.
* ``gcn``: a graph convolutional network on the cell's operation graph, trained as a LightningModule
  (:class:`projects.weaknas.module.GCNRegressor`) on a :class:`~projects.weaknas.data.PredictorDataModule`.
"""

from __future__ import annotations

import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class Predictor(ABC):
    name = "base"

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray) -> Predictor:
        """Fit on encodings X (n, 30) and accuracies y (n,); returns self."""

    @abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted accuracies (n,) in the units of the y it was fitted on."""

    mean, scale = 0.0, 1.0

    def _standardise(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        self.mean, std = float(y.mean()), float(y.std())
        self.scale = std if std > 0 else 1.0
        return (y - self.mean) / self.scale

    def _unstandardise(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64) * self.scale + self.mean


class MLPPredictor(Predictor):
    """y = MLP(x): ReLU layers of ``hidden`` units, squared loss + alpha/2 ||W||^2, fitted by Adam."""

    name = "mlp"

    def __init__(self, hidden: Sequence[int] = (1000, 1000, 1000, 1000), max_iter: int = 100,
                 seed: int = 0, **kwargs):
        from sklearn.neural_network import MLPRegressor

        self.model = MLPRegressor(hidden_layer_sizes=tuple(hidden), max_iter=max_iter, random_state=seed, **kwargs)

    def fit(self, X, y):
        target = self._standardise(y)
        with warnings.catch_warnings():  # 100 epochs on ~100 samples does not "converge" by sklearn's tol
            warnings.filterwarnings("ignore", message=".*Maximum iterations.*")
            self.model.fit(X, target)
        return self

    def predict(self, X):
        return self._unstandardise(self.model.predict(X))


class RandomForestPredictor(Predictor):
    """Mean of ``n_estimators`` regression trees grown on bootstrap samples (depth <= ``max_depth``)."""

    name = "rf"

    def __init__(self, n_estimators: int = 1000, max_depth: int | None = 10, seed: int = 0, n_jobs: int = 2):
        from sklearn.ensemble import RandomForestRegressor

        self.model = RandomForestRegressor(n_estimators=n_estimators, max_depth=max_depth, random_state=seed,
                                           n_jobs=n_jobs)

    def fit(self, X, y):
        self.model.fit(X, self._standardise(y))
        return self

    def predict(self, X):
        return self._unstandardise(self.model.predict(X))


class GCNPredictor(Predictor):
    """Fits :class:`~projects.weaknas.module.GCNRegressor` with a Lightning ``Trainer`` (CPU, no logging)."""

    name = "gcn"

    def __init__(self, hidden: int = 64, layers: int = 3, epochs: int = 100, lr: float = 3e-3,
                 batch_size: int = 64, weight_decay: float = 1e-4, seed: int = 0, accelerator: str = "cpu"):
        self.kwargs = dict(hidden=hidden, layers=layers, lr=lr, weight_decay=weight_decay)
        self.epochs, self.batch_size, self.seed, self.accelerator = epochs, batch_size, seed, accelerator

    def fit(self, X, y):
        target = self._standardise(y)
        quiet = logging.getLogger("lightning.pytorch")
        level = quiet.level
        quiet.setLevel(logging.WARNING)  # no "GPU available" banner at every refit
        try:
            self._fit(X, target)
        finally:
            quiet.setLevel(level)
        return self

    def _fit(self, X, target) -> None:
        import lightning as L
        import torch

        from projects.weaknas.data import PredictorDataModule
        from projects.weaknas.module import GCNRegressor

        with torch.random.fork_rng(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
            warnings.filterwarnings("ignore", ".*LeafSpec.*")
            torch.manual_seed(self.seed)
            self.model = GCNRegressor(**self.kwargs)
            data = PredictorDataModule.from_arrays(X, target, batch_size=self.batch_size, seed=self.seed)
            trainer = L.Trainer(max_epochs=self.epochs, accelerator=self.accelerator, devices=1, logger=False,
                                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                                num_sanity_val_steps=0, limit_val_batches=0)
            trainer.fit(self.model, datamodule=data)

    def predict(self, X):
        import torch

        self.model.eval()
        with torch.no_grad():
            z = self.model(torch.as_tensor(np.asarray(X), dtype=torch.float32)).double().numpy()
        return self._unstandardise(z)


PREDICTORS = {"mlp": MLPPredictor, "rf": RandomForestPredictor, "gcn": GCNPredictor}


def make_predictor(name: str, seed: int = 0, **kwargs) -> Predictor:
    if name not in PREDICTORS:
        from shared.errors import UserFacingError

        raise UserFacingError(f"unknown predictor {name!r}; choose one of: {', '.join(PREDICTORS)}")
    return PREDICTORS[name](seed=seed, **kwargs)
