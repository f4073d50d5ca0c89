"""LightningModule for image classification with static, DY-Conv or DCD backbones."""

from __future__ import annotations

import contextlib

import lightning as L
import torch
import torch.nn.functional as F

from projects.dcd.nets import Arch, ConvType, DyConv2d, LinearInit, build_model
from shared.schedules import per_step_scheduler, scaled_lr


def temperature_at(epoch: float, start: float = 30.0, end: float = 1.0, anneal_epochs: float = 10.0) -> float:
    """DY-Conv's softmax temperature after ``epoch`` (fractional) epochs, linear from ``start`` to ``end``:

    ``tau(e) = start - (start - end) * min(e / anneal_epochs, 1)``   (Chen et al. 2020: 30 -> 1 over 10 epochs).
    """
    if anneal_epochs <= 0:
        return end
    return start - (start - end) * min(max(epoch, 0.0) / anneal_epochs, 1.0)


def mixup_alpha_at(epoch: int, alpha: float, ramp_epochs: int) -> float:
    """The official mixup schedule: ``alpha_e = alpha * e / ramp_epochs`` for ``e < ramp_epochs``, then ``alpha``
    (liyunsheng13/dcd ``main.py``: 0.2 reached after 100 epochs; epoch 0 does not mix)."""
    if ramp_epochs <= 0 or epoch >= ramp_epochs:
        return alpha
    return alpha * epoch / ramp_epochs


def smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """The official label-smoothing loss: ``-sum_k q_k log p_k`` with ``q_y = 1 - eps`` and ``q_k = eps / (K - 1)``
    for every wrong class k. PyTorch's ``label_smoothing`` spreads eps over all K classes (``q_y = 1 - eps +
    eps / K``); the two agree when PyTorch's is given ``eps * K / (K - 1)``."""
    k = logits.shape[-1]
    return F.cross_entropy(logits, target, label_smoothing=smoothing * k / (k - 1) if k > 1 else 0.0)


@contextlib.contextmanager
def batch_statistics(model: torch.nn.Module):
    """Run BatchNorm layers on the batch's own statistics (train-mode BN) without touching the running ones:
    momentum 0 leaves ``running_mean`` and ``running_var`` as they are. Dropout stays in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
             for m in norms]
    for m in norms:
        m.train()
        m.momentum = 0.0
    try:
        yield model
    finally:
        for m, (training, momentum, tracked) in zip(norms, saved, strict=True):
            m.train(training)
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


class DCDClassifier(L.LightningModule):
    """Cross-entropy training of :func:`projects.dcd.nets.build_model` with SGD, as the official recipe.

    Args:
        arch, conv, num_classes, in_channels, width_mult, small_input, dropout, fc_squeeze:
            passed to :func:`build_model`.
        lr: base learning rate. With ``lr_base_batch_size`` set it is scaled linearly to the global batch
            (per-device batch x devices x nodes x accumulation), so a recipe keeps its meaning on 1 GPU.
        schedule: "cosine" or "step" (``milestones`` in epochs, multiplied by ``gamma``), stepped per batch.
        warmup_epochs: linear warm-up length.
        label_smoothing: eps of the official label-smoothing loss (:func:`smoothed_cross_entropy`).
        mixup_alpha, mixup_ramp_epochs: the official mixup, Beta(alpha_e, alpha_e) with one lambda per batch and
            alpha_e ramped linearly from 0 over the first ``mixup_ramp_epochs`` epochs (:func:`mixup_alpha_at`).
        linear_init: initialisation of every linear layer, see :func:`projects.dcd.nets.build_model`.
        batch_stats_eval: also log validation accuracy with train-mode BN (``val/acc1_batch_stats``, batch
            statistics of each validation batch), which shows whether an eval-mode gap comes from BN's running
            statistics.
        temperature_start, temperature_end, temperature_epochs: DY-Conv's annealing (no effect otherwise).
    """

    def __init__(self, arch: Arch = "resnet18", conv: ConvType = "dcd", num_classes: int = 10, in_channels: int = 3,
                 width_mult: float = 1.0, small_input: bool = False, dropout: float = 0.0, fc_squeeze: int = 16,
                 lr: float = 0.1, lr_base_batch_size: int | None = None, momentum: float = 0.9,
                 weight_decay: float = 1e-4, nesterov: bool = False, schedule: str = "cosine",
                 milestones: tuple[int, ...] = (30, 60, 90), gamma: float = 0.1, warmup_epochs: float = 0.0,
                 label_smoothing: float = 0.0, mixup_alpha: float = 0.0, mixup_ramp_epochs: int = 0,
                 linear_init: LinearInit = "official", batch_stats_eval: bool = False,
                 temperature_start: float = 30.0, temperature_end: float = 1.0, temperature_epochs: float = 10.0):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(arch, conv, num_classes, in_channels=in_channels, width_mult=width_mult,
                                 small_input=small_input, dropout=dropout, fc_squeeze=fc_squeeze,
                                 linear_init=linear_init)
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
        smoothing = self.hparams.label_smoothing
        alpha = mixup_alpha_at(self.current_epoch, self.hparams.mixup_alpha, self.hparams.mixup_ramp_epochs)
        if alpha > 0:  # one lambda and one random pairing per batch, as the official mixup_data
            lam = float(torch.distributions.Beta(alpha, alpha).sample())
            perm = torch.randperm(len(y), device=x.device)
            logits = self(lam * x + (1 - lam) * x[perm])
            loss = lam * smoothed_cross_entropy(logits, y, smoothing) + (1 - lam) * smoothed_cross_entropy(
                logits, y[perm], smoothing)
            hits = lam * (logits.argmax(1) == y).float() + (1 - lam) * (logits.argmax(1) == y[perm]).float()
            acc = hits.mean()
        else:
            logits = self(x)
            loss = smoothed_cross_entropy(logits, y, smoothing)
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
        if self.hparams.batch_stats_eval:
            with batch_statistics(self.model):
                batch_logits = self(x)
            metrics[f"{prefix}/acc1_batch_stats"] = (batch_logits.argmax(1) == y).float().mean()
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
