"""LightningModules: the NB201 cell network trained on images, and the GCN accuracy predictor."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F

from projects.weaknas.nets import GCN, CellNetwork
from shared.schedules import per_step_scheduler, scaled_lr


class CellClassifier(L.LightningModule):
    """One NB201 cell network trained with NB201's recipe: SGD (Nesterov, momentum 0.9, weight decay 5e-4),
    lr 0.1 for a batch of 256 decayed to 0 by a cosine, cross-entropy; NB201 runs 200 epochs at C=16, N=5.

    Logs ``val/acc`` (the selection accuracy) and ``test/acc`` (reported, from ``trainer.test``).
    """

    def __init__(self, arch: str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                                   "nor_conv_3x3~1|nor_conv_3x3~2|",
                 channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10, in_channels: int = 3,
                 lr: float = 0.1, lr_base_batch_size: int | None = 256, momentum: float = 0.9,
                 weight_decay: float = 5e-4, nesterov: bool = True, warmup_epochs: float = 0.0):
        super().__init__()
        self.save_hyperparameters()
        self.net = CellNetwork(arch, channels, cells_per_stage, num_classes, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch, prefix: str) -> None:
        x, y = batch
        logits = self(x)
        self.log(f"{prefix}/loss", F.cross_entropy(logits, y), sync_dist=True)
        self.log(f"{prefix}/acc", (logits.argmax(1) == y).float().mean() * 100, prog_bar=True, sync_dist=True)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def configure_optimizers(self):
        hp = self.hparams
        lr = scaled_lr(self, hp.lr, hp.lr_base_batch_size)
        optimizer = torch.optim.SGD(self.parameters(), lr=lr, momentum=hp.momentum, weight_decay=hp.weight_decay,
                                    nesterov=hp.nesterov)
        return {"optimizer": optimizer, "lr_scheduler": per_step_scheduler(self, optimizer, hp.warmup_epochs)}


def kendall_tau(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """τ = (concordant − discordant) / (n(n−1)/2) over all pairs (τ-a; ties count as neither)."""
    da = torch.sign(a[:, None] - a[None, :])
    db = torch.sign(b[:, None] - b[None, :])
    n = a.numel()
    return (da * db).sum() / max(n * (n - 1), 1)


class GCNRegressor(L.LightningModule):
    """GCN accuracy predictor (:class:`projects.weaknas.nets.GCN`), loss = mean squared error on standardised
    accuracies, Adam; logs ``val/kendall_tau`` between predicted and true accuracy on held-out cells."""

    def __init__(self, hidden: int = 64, layers: int = 3, lr: float = 3e-3, weight_decay: float = 1e-4):
        super().__init__()
        self.save_hyperparameters()
        self.net = GCN(hidden, layers)

    def forward(self, encoding: torch.Tensor) -> torch.Tensor:
        return self.net(encoding)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.mse_loss(self(x), y)
        self.log("train/mse", loss, prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        pred = self(x)
        self.log("val/mse", F.mse_loss(pred, y), batch_size=len(y))
        self.log("val/kendall_tau", kendall_tau(pred, y), prog_bar=True, batch_size=len(y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
