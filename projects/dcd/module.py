"""LightningModule for image classification with static, DY-Conv or DCD backbones."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F

from projects.dcd.nets import Arch, ConvType, DyConv2d, build_model
from shared.schedules import per_step_scheduler, scaled_lr


def temperature_at(epoch: float, start: float = 30.0, end: float = 1.0, anneal_epochs: float = 10.0) -> float:
    """DY-Conv's softmax temperature after ``epoch`` (fractional) epochs, linear from ``start`` to ``end``:

    ``tau(e) = start - (start - end) * min(e / anneal_epochs, 1)``   (Chen et al. 2020: 30 -> 1 over 10 epochs).
    """
    if anneal_epochs <= 0:
        return end
    return start - (start - end) * min(max(epoch, 0.0) / anneal_epochs, 1.0)


class DCDClassifier(L.LightningModule):
    """Cross-entropy training of :func:`projects.dcd.nets.build_model` with SGD, as the official recipe.

    Args:
        arch, conv, num_classes, in_channels, width_mult, small_input, dropout, fc_squeeze:
            passed to :func:`build_model`.
        lr: base learning rate. With ``lr_base_batch_size`` set it is scaled linearly to the global batch
            (per-device batch x devices x nodes x accumulation), so a recipe keeps its meaning on 1 GPU.
        schedule: "cosine" or "step" (``milestones`` in epochs, multiplied by ``gamma``), stepped per batch.
        warmup_epochs: linear warm-up length.
        label_smoothing: for the training loss.
        temperature_start, temperature_end, temperature_epochs: DY-Conv's annealing (no effect otherwise).
    """

    def __init__(self, arch: Arch = "resnet18", conv: ConvType = "dcd", num_classes: int = 10, in_channels: int = 3,
                 width_mult: float = 1.0, small_input: bool = False, dropout: float = 0.0, fc_squeeze: int = 16,
                 lr: float = 0.1, lr_base_batch_size: int | None = None, momentum: float = 0.9,
                 weight_decay: float = 1e-4, nesterov: bool = False, schedule: str = "cosine",
                 milestones: tuple[int, ...] = (30, 60, 90), gamma: float = 0.1, warmup_epochs: float = 0.0,
                 label_smoothing: float = 0.0, temperature_start: float = 30.0, temperature_end: float = 1.0,
                 temperature_epochs: float = 10.0):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(arch, conv, num_classes, in_channels=in_channels, width_mult=width_mult,
                                 small_input=small_input, dropout=dropout, fc_squeeze=fc_squeeze)
        self._dy_layers = [m for m in self.model.modules() if isinstance(m, DyConv2d)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    # -- DY-Conv temperature --------------------------------------------------------------------
    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        if not self._dy_layers:
            return
        hp = self.hparams
        epoch = self.current_epoch + batch_idx / max(self.trainer.num_training_batches, 1)
        tau = temperature_at(epoch, hp.temperature_start, hp.temperature_end, hp.temperature_epochs)
        for layer in self._dy_layers:
            layer.temperature.fill_(tau)
        self.log("train/temperature", tau, on_step=True, on_epoch=False)

    # -- steps ----------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        acc = (logits.argmax(1) == y).float().mean()
        self.log_dict({"train/loss": loss, "train/acc1": acc}, on_step=True, on_epoch=True, prog_bar=True,
                      batch_size=len(y))
        return loss

    def _evaluate(self, batch, prefix: str) -> None:
        x, y = batch
        logits = self(x)
        metrics = {f"{prefix}/loss": F.cross_entropy(logits, y),
                   f"{prefix}/acc1": (logits.argmax(1) == y).float().mean(),
                   # images whose logits overflowed (see the README: DCD early in training)
                   f"{prefix}/nonfinite": (~torch.isfinite(logits).all(1)).float().mean()}
        if logits.shape[1] >= 5:
            top5 = logits.topk(5, dim=1).indices
            metrics[f"{prefix}/acc5"] = (top5 == y[:, None]).any(1).float().mean()
        self.log_dict(metrics, prog_bar=True, sync_dist=True, batch_size=len(y))

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    # -- optimisation ---------------------------------------------------------------------------
    def configure_optimizers(self):
        hp = self.hparams
        lr = scaled_lr(self, hp.lr, hp.lr_base_batch_size)
        optimizer = torch.optim.SGD(self.parameters(), lr=lr, momentum=hp.momentum, weight_decay=hp.weight_decay,
                                    nesterov=hp.nesterov)
        scheduler = per_step_scheduler(self, optimizer, hp.warmup_epochs, hp.schedule, tuple(hp.milestones), hp.gamma)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
