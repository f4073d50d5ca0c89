"""Learning-rate helpers used unchanged by every paper (dcd, seed, weaknas, automix)."""

from __future__ import annotations

import math

import lightning as L


def scaled_lr(module: L.LightningModule, lr: float, base_batch_size: int | None) -> float:
    """``lr`` given for ``base_batch_size`` images, scaled linearly to the global batch actually run
    (per-device batch x devices x accumulation; mmpretrain's ``auto_scale_lr``, SEED's ``lr_mult``).
    Unchanged when no base is given or the datamodule declares no ``batch_size``."""
    batch = getattr(module.trainer.datamodule, "hparams", {}).get("batch_size")
    if not base_batch_size or not batch:
        return lr
    trainer = module.trainer
    return lr * batch * trainer.world_size * trainer.accumulate_grad_batches / base_batch_size


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str = "cosine",
              milestone_steps: tuple[int, ...] = (), gamma: float = 0.1, floor: float = 0.0) -> float:
    """Multiplier of the base learning rate at optimiser step ``step``.

    Linear warm-up over ``warmup_steps``; then ``cosine``: ``floor + (1 - floor) 0.5 (1 + cos(pi t))`` with t
    the fraction of the remaining steps done (``floor`` = final lr / base lr), or ``step``:
    ``gamma ** (number of milestones passed)``.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "cosine":
        t = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))
    if schedule == "step":
        return gamma ** sum(step >= m for m in milestone_steps)
    raise ValueError(f"schedule must be 'cosine' or 'step', got {schedule!r}")


def per_step_scheduler(module: L.LightningModule, optimizer, warmup_epochs: float = 0.0, schedule: str = "cosine",
                       milestone_epochs: tuple[float, ...] = (), gamma: float = 0.1, floor: float = 0.0) -> dict:
    """Lightning's ``lr_scheduler`` entry for :func:`lr_factor`, stepped at every optimiser step; warm-up and
    milestones are given in epochs and converted with the trainer's steps per epoch."""
    import torch

    trainer = module.trainer
    total = max(int(trainer.estimated_stepping_batches), 1)
    per_epoch = total / max(trainer.max_epochs or 1, 1)
    warmup = int(round(warmup_epochs * per_epoch))
    milestones = tuple(int(round(m * per_epoch)) for m in milestone_epochs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, warmup, schedule, milestones, gamma, floor))
    return {"scheduler": scheduler, "interval": "step"}
